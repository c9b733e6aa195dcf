//! A PostgreSQL cluster of a test's own (initdb into a temporary directory, a spare
//! port, trust auth), so the test can stop it and start it again on the same port and
//! data directory.
//!
//! PostgreSQL refuses to run as root: when the tests run as root, the cluster's
//! directory is handed to the `postgres` OS user (created by Debian's `postgresql`
//! package) and every PostgreSQL program runs as that user.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use tempfile::TempDir;

use crate::child_log::ChildLog;

/// A PostgreSQL cluster of this test's own on `127.0.0.1:<port>`.
pub struct PostgresServer {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
    /// The `postgres` OS user's uid and gid, when running as root.
    owner: Option<(u32, u32)>,
    running: Option<Child>,
}

impl PostgresServer {
    /// Creates a cluster (initdb, trust auth) and starts it on `port`.
    pub fn start(port: u16) -> Self {
        let bin = bin_dir();
        let dir = TempDir::new().expect("a temporary directory");
        let owner = cluster_owner();
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .expect("the cluster directory is handed to the postgres user");
        }
        let mut server = Self {
            dir,
            bin,
            port,
            owner,
            running: None,
        };
        let out = server
            .command("initdb")
            .arg("-D")
            .arg(server.data_dir())
            .args(["--auth=trust", "--username=postgres", "--encoding=UTF8"])
            .args(["--no-locale", "--no-sync"])
            .output()
            .expect("initdb runs");
        assert!(
            out.status.success(),
            "initdb failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        server.start_again();
        server
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A url of the cluster's `postgres` database, as the `postgres` role.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Whether it is running.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Starts the (stopped) cluster on its port and data directory, and waits until it
    /// says it accepts connections.
    pub fn start_again(&mut self) {
        assert!(self.running.is_none(), "the cluster is already running");
        let mut child = self
            .command("postgres")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-p", &self.port.to_string()])
            .arg("-k")
            .arg(self.dir.path())
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "fsync=off", "-c", "logging_collector=off"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("postgres starts");
        let stderr = child.stderr.take().expect("postgres's stderr");
        let mut log = ChildLog::follow(format!("postgres on port {}", self.port), stderr);
        self.running = Some(child);
        log.wait_for("database system is ready to accept connections");
    }

    /// Stops it (fast shutdown: sessions are ended, nothing committed is lost) and waits
    /// until the server process has exited.
    pub fn stop(&mut self) {
        let Some(mut child) = self.running.take() else {
            return;
        };
        let stopped = self
            .command("pg_ctl")
            .arg("stop")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "fast", "-w"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !stopped.is_ok_and(|s| s.success()) {
            let _ = child.kill();
        }
        let _ = child.wait();
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A PostgreSQL program, run as the cluster's owner, from the cluster's directory
    /// (the postgres user may not read the caller's working directory).
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin.join(program));
        command.current_dir(self.dir.path());
        if let Some((uid, gid)) = self.owner {
            command.uid(uid).gid(gid);
        }
        command
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The directory of PostgreSQL's server programs: the newest
/// `/usr/lib/postgresql/<major>/bin` holding `initdb` (Debian's layout), else the one
/// `pg_config --bindir` names.
fn bin_dir() -> PathBuf {
    let debian = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let major: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((major, bin))
        })
        .max_by_key(|(major, _)| *major)
        .map(|(_, bin)| bin);
    if let Some(bin) = debian {
        return bin;
    }
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        .filter(|bin| bin.join("initdb").is_file());
    from_pg_config.unwrap_or_else(|| {
        panic!(
            "no PostgreSQL server programs (initdb) found under /usr/lib/postgresql/*/bin or \
             by pg_config: install the Debian package postgresql (.ci/run does)"
        )
    })
}

/// The uid and gid of the `postgres` OS user when this process runs as root (the
/// owner of `/proc/self` is the process's effective user), else `None`.
fn cluster_owner() -> Option<(u32, u32)> {
    let euid = std::fs::metadata(Path::new("/proc/self"))
        .map(|m| m.uid())
        .ok()?;
    if euid != 0 {
        return None;
    }
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .expect("id runs");
        assert!(
            out.status.success(),
            "PostgreSQL refuses to run as root and there is no postgres OS user to run it \
             as (the Debian package postgresql creates it)"
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("a numeric id")
    };
    Some((id("-u"), id("-g")))
}
