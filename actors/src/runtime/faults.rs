//! Fault injection for tests: make an actor slow, or make its next handlers panic, to
//! check that deadlines, degraded answers and restarts work. Disarmed it costs one atomic
//! load per request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

/// Faults armed per actor name.
#[derive(Debug, Default)]
pub struct Faults {
    armed: AtomicBool,
    delays: Mutex<HashMap<String, Duration>>,
    panics: Mutex<HashMap<String, u32>>,
}

impl Faults {
    /// Every request the actor `name` handles first waits `delay`.
    pub fn delay(&self, name: &str, delay: Duration) {
        self.delays.lock().insert(name.to_owned(), delay);
        self.armed.store(true, Ordering::Release);
    }

    /// The next `count` requests the actor `name` handles panic.
    pub fn panic_next(&self, name: &str, count: u32) {
        self.panics.lock().insert(name.to_owned(), count);
        self.armed.store(true, Ordering::Release);
    }

    /// Disarms every fault.
    pub fn clear(&self) {
        self.delays.lock().clear();
        self.panics.lock().clear();
        self.armed.store(false, Ordering::Release);
    }

    /// Runs at the start of each request the actor `name` handles: panics or waits as
    /// armed.
    pub async fn before(&self, name: &str) {
        if !self.armed.load(Ordering::Acquire) {
            return;
        }
        let panic = {
            let mut panics = self.panics.lock();
            match panics.get_mut(name) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    true
                }
                _ => false,
            }
        };
        if panic {
            panic!("fault injected into {name}");
        }
        let delay = self.delays.lock().get(name).copied();
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
    }
}
