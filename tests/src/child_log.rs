//! The log a server child process writes to a pipe, read line by line on a thread of its
//! own (so the pipe never fills and stalls the server), and awaited for a given line:
//! tests wait for "ready" on the server's own word, never on time.

use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Instant;

use crate::PATIENCE;

/// The lines a child writes to one of its pipes.
pub struct ChildLog {
    what: String,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl ChildLog {
    /// Reads `pipe` (the stdout or stderr of `what`) until it closes.
    pub fn follow(what: impl Into<String>, pipe: impl Read + Send + 'static) -> Self {
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    // Nobody listens any more; keep draining so the child never blocks.
                    continue;
                }
            }
        });
        Self {
            what: what.into(),
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `needle`; panics, showing the log so far, when the
    /// pipe closes first (the child exited) or the wait outlasts [`PATIENCE`].
    pub fn wait_for(&mut self, needle: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(needle);
                    self.seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "{} closed its log before saying {needle:?}:\n{}",
                    self.what,
                    self.seen.join("\n")
                ),
                Err(RecvTimeoutError::Timeout) => panic!(
                    "gave up waiting for {} to say {needle:?}:\n{}",
                    self.what,
                    self.seen.join("\n")
                ),
            }
        }
    }
}
