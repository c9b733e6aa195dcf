//! `mnemo serve` as a real process, for the tests of the binary.
// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};

use mnemo_engine::http;

/// A `mnemo serve` process on an embedded store in a temporary directory, listening on
/// a free port, with one API key for tenant `acme`.
pub struct Served {
    /// Where the store and the configuration live; removed when dropped.
    _dir: tempfile::TempDir,
    /// The configuration file (a test binary may not need it).
    #[allow(dead_code)]
    pub config_path: PathBuf,
    pub child: Child,
    stderr: Option<BufReader<ChildStderr>>,
}

/// Writes the configuration (`extra` appended) and starts `mnemo serve` on it, with
/// `RUST_LOG` unset so the configuration decides the logs.
pub fn serve(key: &str, extra: &str) -> Served {
    let dir = tempfile::TempDir::new().unwrap();
    let config_path = dir.path().join("mnemo.toml");
    std::fs::write(&config_path, config(dir.path(), key, extra)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mnemo"))
        .args(["serve", "--config"])
        .arg(&config_path)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mnemo serve starts");
    let stderr = child.stderr.take().map(BufReader::new);
    Served {
        _dir: dir,
        config_path,
        child,
        stderr,
    }
}

fn config(dir: &Path, key: &str, extra: &str) -> String {
    format!(
        "[storage]\ndata_dir = {data:?}\n\n[server]\nlisten = \"127.0.0.1:0\"\n\n\
         [auth]\nkeys = [{entry}]\n\n{extra}",
        data = dir.join("data").display().to_string(),
        entry = http::config_entry("acme", key),
    )
}

impl Served {
    /// Reads stderr up to the line saying where the server listens; returns the lines
    /// read and the base url.
    pub fn wait_listening(&mut self) -> (Vec<String>, String) {
        let stderr = self
            .stderr
            .as_mut()
            .expect("stderr not handed to a drain yet");
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            assert!(
                stderr.read_line(&mut line).unwrap() > 0,
                "mnemo serve exited early: {lines:?}"
            );
            if let Some(base) = serving_base(&line) {
                lines.push(line);
                return (lines, base);
            }
            lines.push(line);
        }
    }

    /// Keeps reading stderr on a thread of its own, so the server never blocks on a full
    /// pipe; the thread answers every line read until the server exits.
    pub fn drain(&mut self) -> std::thread::JoinHandle<Vec<String>> {
        let stderr = self.stderr.take().expect("stderr drained once");
        std::thread::spawn(move || stderr.lines().map_while(Result::ok).collect())
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
    }
}

/// The base url a `mnemo serve` log line says it serves on, if it is that line.
pub fn serving_base(line: &str) -> Option<String> {
    let (_, rest) = line.split_once("mnemo serving on ")?;
    Some(
        rest.split(|c: char| c.is_whitespace() || c == '"')
            .next()
            .unwrap_or_default()
            .to_owned(),
    )
}
