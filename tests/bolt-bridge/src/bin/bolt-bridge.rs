//! `bolt-bridge --listen ADDR --upstream ADDR`: runs the Bolt 4 → FalkorDB bridge in the
//! foreground, for trying a Bolt 4 client against FalkorDB by hand. Stops on Ctrl-C
//! (the default signal handling ends the process).

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;

const USAGE: &str = "usage: bolt-bridge --listen ADDR --upstream ADDR
  --listen ADDR     where Bolt 4 clients connect, e.g. 127.0.0.1:7687
  --upstream ADDR   FalkorDB's Bolt port, e.g. 127.0.0.1:17687";

fn main() -> ExitCode {
    let (listen, upstream) = match parse(std::env::args().skip(1)) {
        Ok(addrs) => addrs,
        Err(why) => {
            eprintln!("bolt-bridge: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("bolt-bridge: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        eprintln!("bolt-bridge: bolt://{listen} -> FalkorDB at {upstream}");
        mnemo_bolt_bridge::run(listener, upstream, std::future::pending())
            .await
            .map_err(|e| e.to_string())
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("bolt-bridge: {why}");
            ExitCode::FAILURE
        }
    }
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<(SocketAddr, SocketAddr), String> {
    let (mut listen, mut upstream) = (None, None);
    while let Some(flag) = args.next() {
        let slot = match flag.as_str() {
            "--listen" => &mut listen,
            "--upstream" => &mut upstream,
            "-h" | "--help" => return Err("help".into()),
            other => return Err(format!("unknown argument {other:?}")),
        };
        let value = args.next().ok_or(format!("{flag} needs an address"))?;
        let addr = value
            .to_socket_addrs()
            .map_err(|e| format!("{flag} {value}: {e}"))?
            .next()
            .ok_or(format!("{flag} {value}: no address"))?;
        *slot = Some(addr);
    }
    match (listen, upstream) {
        (Some(l), Some(u)) => Ok((l, u)),
        _ => Err("both --listen and --upstream are needed".into()),
    }
}
