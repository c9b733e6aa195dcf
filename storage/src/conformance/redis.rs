//! A factory that opens [`RedisRecent`] stores on a running Redis server, for the suites.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;

use super::recent::RecentFactory;
use crate::clock::SharedClock;
use crate::recent::redis::RedisRecent;
use crate::recent::{RecentConfig, RecentStore};

/// Opens [`RedisRecent`] stores on the server at one URL, each under a key prefix of its
/// own (`mnemo-test-<random>-<n>`) so runs and tests never collide; every key under the
/// factory's prefix is deleted when the factory is dropped.
#[derive(Debug)]
pub struct RedisRecentFactory {
    url: String,
    base: String,
    opened: AtomicUsize,
}

impl RedisRecentFactory {
    /// A factory on the Redis server at `url` (e.g. `redis://127.0.0.1:6379`).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            base: format!("mnemo-test-{}", uuid::Uuid::new_v4().simple()),
            opened: AtomicUsize::new(0),
        }
    }

    /// A connection to the server, or a panic that says how to get one.
    fn connect(&self) -> ::redis::Connection {
        ::redis::Client::open(self.url.as_str())
            .and_then(|client| client.get_connection())
            .unwrap_or_else(|e| {
                panic!(
                    "Redis is not reachable at {}: {e}. Start a Redis server there \
                     (.ci/run does) or point MNEMO_TEST_REDIS_URL at one.",
                    self.url
                )
            })
    }
}

#[async_trait]
impl RecentFactory for RedisRecentFactory {
    async fn open(&self, config: RecentConfig, clock: SharedClock) -> Arc<dyn RecentStore> {
        let _: String = ::redis::cmd("PING")
            .query(&mut self.connect())
            .expect("Redis answers PING");
        let n = self.opened.fetch_add(1, Ordering::Relaxed);
        let config = RecentConfig {
            redis_url: self.url.clone(),
            key_prefix: format!("{}-{n}", self.base),
            ..config
        };
        Arc::new(RedisRecent::new(config, clock).expect("a valid Redis config"))
    }

    /// The memory cap is the server's own `maxmemory` policy.
    fn enforces_memory_cap(&self) -> bool {
        false
    }
}

impl Drop for RedisRecentFactory {
    fn drop(&mut self) {
        if self.opened.load(Ordering::Relaxed) == 0 {
            return;
        }
        delete_keys(&self.url, &format!("{}-*", self.base));
    }
}

/// Deletes every key matching `pattern` on the server at `url` (bounded `SCAN`), for test
/// clean-up; errors are ignored, as the keys expire anyway.
pub fn delete_keys(url: &str, pattern: &str) {
    let Ok(mut conn) = ::redis::Client::open(url).and_then(|c| c.get_connection()) else {
        return;
    };
    let mut cursor: u64 = 0;
    // Bounded: a test writes a handful of keys; a server of any size is walked in at
    // most this many SCAN pages.
    for _ in 0..100_000 {
        let Ok((next, keys)): ::redis::RedisResult<(u64, Vec<String>)> = ::redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query(&mut conn)
        else {
            return;
        };
        if !keys.is_empty() {
            let _: ::redis::RedisResult<()> = ::redis::cmd("DEL").arg(&keys).query(&mut conn);
        }
        if next == 0 {
            return;
        }
        cursor = next;
    }
}
