//! A redis-server of a test's own, on a spare port, so the test can stop it.

use std::process::{Child, Command, Stdio};

use crate::child_log::ChildLog;

/// A redis-server of this test's own, on `port`, keeping nothing on disk.
pub struct RedisServer(Child);

impl RedisServer {
    /// Starts it and waits until it says it accepts connections.
    pub fn start(port: u16) -> Self {
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts (Debian package redis-server; .ci/run installs it)");
        let stdout = child.stdout.take().expect("redis-server's stdout");
        let server = RedisServer(child);
        ChildLog::follow(format!("redis-server on port {port}"), stdout)
            .wait_for("Ready to accept connections");
        server
    }

    /// Stops it (SIGKILL: nothing is kept anyway).
    pub fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
