//! Fault injection for tests: make an actor slow, hold its requests until released, or
//! make its next handlers panic, to check that deadlines, degraded answers, backpressure
//! and restarts work. Disarmed it costs one atomic
//! load per request.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

/// Faults armed per actor name (and `refill`, which recent-tier refills wait on).
#[derive(Debug, Default)]
pub struct Faults {
    armed: AtomicBool,
    delays: Mutex<HashMap<String, Duration>>,
    panics: Mutex<HashMap<String, u32>>,
    held: Mutex<HashSet<String>>,
    released: tokio::sync::Notify,
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

    /// Every request the actor `name` handles waits until [`Faults::release`] or
    /// [`Faults::clear`]: a pause the test ends when it chooses.
    pub fn hold(&self, name: &str) {
        self.held.lock().insert(name.to_owned());
        self.armed.store(true, Ordering::Release);
    }

    /// Lets the requests held for the actor `name` go on.
    pub fn release(&self, name: &str) {
        self.held.lock().remove(name);
        self.released.notify_waiters();
    }

    /// Disarms every fault, releasing what is held.
    pub fn clear(&self) {
        self.delays.lock().clear();
        self.panics.lock().clear();
        self.held.lock().clear();
        self.armed.store(false, Ordering::Release);
        self.released.notify_waiters();
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
        loop {
            // Registered before the check, so a release between the two is not missed.
            let released = self.released.notified();
            if !self.held.lock().contains(name) {
                break;
            }
            released.await;
        }
        let delay = self.delays.lock().get(name).copied();
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
    }
}
