//! Admission at the engine's door: how many stores, and how many context requests, may
//! be in flight at once. The limit adapts to the latency the admitted requests get, the
//! way TCP adapts its window: it grows while no more than one in a hundred overruns its
//! target (their p99 is within it) and shrinks by a quarter, once per round of requests,
//! when more do. Past the limit a request is refused at once as busy (429 with
//! `Retry-After` over HTTP), so beyond the engine's capacity the admitted requests still
//! answer within their target and the rest are told to come back, instead of every
//! request queueing inside the engine until its deadline passes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mnemo_actors::processors::pressure::Pressure;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::error::Error;

/// Section `[engine.admission]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdmissionConfig {
    /// Adapt the limits and refuse past them (false: admit everything).
    pub enabled: bool,
    /// Latency a single store should answer within, in milliseconds.
    pub store_target_ms: u64,
    /// The store limit never goes below this many stores in flight...
    pub store_min_in_flight: usize,
    /// ...nor above this many; it starts here.
    pub store_max_in_flight: usize,
    /// Share of a context request's deadline it should answer within.
    pub context_target_share: f64,
    /// The context limit never goes below this many requests in flight...
    pub context_min_in_flight: usize,
    /// ...nor above this many; it starts here.
    pub context_max_in_flight: usize,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            store_target_ms: 1_000,
            store_min_in_flight: 1_024,
            store_max_in_flight: 4_096,
            context_target_share: 0.5,
            context_min_in_flight: 16,
            context_max_in_flight: 128,
        }
    }
}

impl AdmissionConfig {
    /// Refuses settings the gates cannot work with.
    pub fn validate(&self) -> Result<(), String> {
        for (operation, min, max) in [
            ("store", self.store_min_in_flight, self.store_max_in_flight),
            (
                "context",
                self.context_min_in_flight,
                self.context_max_in_flight,
            ),
        ] {
            if min == 0 || min > max {
                return Err(format!(
                    "engine.admission: {operation}_min_in_flight ({min}) must be at least 1 \
                     and at most {operation}_max_in_flight ({max})"
                ));
            }
        }
        if !(self.context_target_share > 0.0 && self.context_target_share <= 1.0) {
            return Err(format!(
                "engine.admission: context_target_share ({}) must be in (0, 1]",
                self.context_target_share
            ));
        }
        if self.store_target_ms == 0 {
            return Err("engine.admission: store_target_ms must be at least 1".into());
        }
        Ok(())
    }
}

/// Share of the limit kept after an overrun.
const BACKOFF: f64 = 0.75;
/// The last answers whose overruns are counted...
const WINDOW: usize = 100;
/// ...and how many of them may overrun their target: the gate holds the admitted
/// requests' p99 within it (a lone slow answer among a hundred is the tail, not load).
const TAIL: usize = 1;
/// Growth of the limit per round of requests answered within target, as a share of it
/// (at least one request per round).
const GROWTH: f64 = 0.125;

/// The gates of the engine's door.
#[derive(Debug)]
pub(crate) struct Admission {
    /// Stores and store batches.
    pub(crate) store: Gate,
    /// Context requests.
    pub(crate) context: Gate,
}

impl Admission {
    /// The gates of `config`; each tells `pressure` whether its requests overrun their
    /// target, so the processors step less often meanwhile.
    pub(crate) fn new(config: &AdmissionConfig, pressure: Arc<Pressure>) -> Self {
        Self {
            store: Gate::new(
                "store",
                config.enabled,
                config.store_min_in_flight,
                config.store_max_in_flight,
            )
            .reporting_to(pressure.clone(), 0),
            context: Gate::new(
                "context",
                config.enabled,
                config.context_min_in_flight,
                config.context_max_in_flight,
            )
            .reporting_to(pressure, 1),
        }
    }
}

/// One operation's limit of requests in flight.
#[derive(Debug)]
pub(crate) struct Gate {
    operation: &'static str,
    enabled: bool,
    min: f64,
    max: f64,
    state: Mutex<GateState>,
    /// Woken whenever a request leaves, for callers that wait for room.
    room: Notify,
    /// Told, as source `.1`, whether the admitted requests overrun their target.
    pressure: Option<(Arc<Pressure>, u32)>,
}

/// How an admitted request left the gate.
enum Outcome {
    /// Answered at the instant, against its target latency.
    Answered(Instant, Duration),
    /// Failed in a way that tells of load (a deadline, a queue inside that was full).
    Overran(Instant),
    /// Nothing that says anything about load.
    Left,
}

#[derive(Debug)]
struct GateState {
    limit: f64,
    in_flight: usize,
    /// Whether each of the last [`WINDOW`] answers overran its target...
    recent: std::collections::VecDeque<bool>,
    /// ...and how many did.
    recent_overruns: usize,
    /// When the limit last shrank: requests that entered before it saw the old limit's
    /// queues, so their overruns do not shrink it again.
    shrunk_at: Option<Instant>,
}

impl Gate {
    fn new(operation: &'static str, enabled: bool, min: usize, max: usize) -> Self {
        let max = max.max(1) as f64;
        Self {
            operation,
            enabled,
            min: (min.max(1) as f64).min(max),
            max,
            state: Mutex::new(GateState {
                limit: max,
                in_flight: 0,
                recent: std::collections::VecDeque::with_capacity(WINDOW + 1),
                recent_overruns: 0,
                shrunk_at: None,
            }),
            room: Notify::new(),
            pressure: None,
        }
    }

    /// Tells `pressure`, as `source`, whether this gate's requests overrun their target.
    fn reporting_to(mut self, pressure: Arc<Pressure>, source: u32) -> Self {
        self.pressure = Some((pressure, source));
        self
    }

    /// Whether more than one of the last hundred admitted requests overran its target.
    pub(crate) fn overrunning(&self) -> bool {
        self.state.lock().overrunning()
    }

    /// Admits a request now, or refuses it as busy.
    pub(crate) fn enter(&self) -> Result<Ticket<'_>, Error> {
        self.enter_at(Instant::now())
    }

    /// Admits a request at `now`, or refuses it as busy.
    pub(crate) fn enter_at(&self, now: Instant) -> Result<Ticket<'_>, Error> {
        let mut state = self.state.lock();
        let limit = state.limit.floor() as usize;
        if self.enabled && state.in_flight >= limit {
            return Err(mnemo_actors::Error::AtCapacity {
                operation: self.operation,
                limit,
            }
            .into());
        }
        state.in_flight += 1;
        Ok(Ticket {
            gate: self,
            entered: now,
        })
    }

    /// Requests in flight now, and the limit.
    pub(crate) fn load(&self) -> (usize, usize) {
        let state = self.state.lock();
        (state.in_flight, state.limit.floor() as usize)
    }

    /// The operation this gate admits.
    pub(crate) fn operation(&self) -> &'static str {
        self.operation
    }

    /// A wake-up for the next request leaving. Enable it before trying to enter, so a
    /// request that leaves in between is not missed.
    pub(crate) fn room(&self) -> tokio::sync::futures::Notified<'_> {
        self.room.notified()
    }

    fn leave(&self, entered: Instant, outcome: Outcome) {
        let mut state = self.state.lock();
        state.in_flight = state.in_flight.saturating_sub(1);
        let answered = !matches!(outcome, Outcome::Left);
        let was_overrunning = state.overrunning();
        let overran_at = match outcome {
            Outcome::Answered(now, target) if now.saturating_duration_since(entered) <= target => {
                state.remember(false);
                if state.recent_overruns <= TAIL {
                    let round = state.limit.max(1.0);
                    state.limit = (state.limit + (round * GROWTH).max(1.0) / round).min(self.max);
                }
                None
            }
            Outcome::Answered(now, _) | Outcome::Overran(now) => {
                state.remember(true);
                Some(now)
            }
            Outcome::Left => None,
        };
        if let Some((pressure, _)) = self.pressure.as_ref().filter(|_| answered) {
            pressure.heard();
        }
        let overrunning = state.overrunning();
        let turned = overrunning != was_overrunning;
        let shrink = overran_at.filter(|_| {
            state.recent_overruns > TAIL && state.shrunk_at.is_none_or(|at| entered >= at)
        });
        if let Some(now) = shrink {
            state.limit = (state.limit * BACKOFF).max(self.min);
            state.shrunk_at = Some(now);
            tracing::debug!(
                operation = self.operation,
                limit = state.limit.floor(),
                "a request overran its target: the admission limit shrinks"
            );
        }
        if let Some((pressure, source)) = self.pressure.as_ref().filter(|_| turned) {
            // Told under the gate's lock, so two turns of one gate arrive in order.
            pressure.report(*source, overrunning);
        }
        drop(state);
        self.room.notify_waiters();
    }
}

impl GateState {
    /// Whether more than [`TAIL`] of the last [`WINDOW`] answers overran.
    fn overrunning(&self) -> bool {
        self.recent_overruns > TAIL
    }

    /// Counts one answer among the last [`WINDOW`].
    fn remember(&mut self, overran: bool) {
        self.recent.push_back(overran);
        self.recent_overruns += usize::from(overran);
        if self.recent.len() > WINDOW {
            let forgotten = self.recent.pop_front().unwrap_or(false);
            self.recent_overruns -= usize::from(forgotten);
        }
    }
}

/// An admitted request; it leaves the gate when finished or dropped.
#[derive(Debug)]
#[must_use = "a ticket leaves the gate when dropped"]
pub(crate) struct Ticket<'a> {
    gate: &'a Gate,
    entered: Instant,
}

impl Ticket<'_> {
    /// The request answered now (or failed in a way that tells of load: a deadline);
    /// its latency against `target` adapts the limit.
    pub(crate) fn finish(self, target: Duration) {
        self.finish_at(Instant::now(), target);
    }

    /// As [`Ticket::finish`], at `now`.
    pub(crate) fn finish_at(self, now: Instant, target: Duration) {
        self.leave(Outcome::Answered(now, target));
    }

    /// The request failed in a way that tells of load: its deadline passed, or a queue
    /// inside the engine was full. Counts as an overrun.
    pub(crate) fn overran(self) {
        self.leave(Outcome::Overran(Instant::now()));
    }

    fn leave(self, outcome: Outcome) {
        let ticket = std::mem::ManuallyDrop::new(self);
        ticket.gate.leave(ticket.entered, outcome);
    }
}

impl Drop for Ticket<'_> {
    /// Left without an answer that says anything about load (refused input, an error
    /// of its own, a caller that stopped waiting): the limit stays.
    fn drop(&mut self) {
        self.gate.leave(self.entered, Outcome::Left);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(min: usize, max: usize) -> Gate {
        Gate::new("test", true, min, max)
    }

    const TARGET: Duration = Duration::from_millis(25);

    fn is_busy(result: Result<Ticket<'_>, Error>) -> bool {
        matches!(result, Err(e) if e.kind() == crate::ErrorKind::Busy)
    }

    #[test]
    fn past_the_limit_requests_are_refused_at_once_and_admitted_again_when_one_leaves() {
        let gate = gate(1, 3);
        let t0 = Instant::now();
        let tickets: Vec<_> = (0..3).map(|_| gate.enter_at(t0).expect("room")).collect();
        assert!(is_busy(gate.enter_at(t0)));
        assert_eq!(gate.load(), (3, 3));
        drop(tickets);
        assert_eq!(
            gate.load(),
            (0, 3),
            "dropped tickets leave, the limit stays"
        );
        assert!(gate.enter_at(t0).is_ok());
    }

    #[test]
    fn overruns_shrink_the_limit_once_per_round_down_to_the_floor() {
        let gate = gate(4, 64);
        let t0 = Instant::now();
        // 32 requests enter together and all overrun: one shrink, not 32.
        let tickets: Vec<_> = (0..32).map(|_| gate.enter_at(t0).expect("room")).collect();
        for ticket in tickets {
            ticket.finish_at(t0 + Duration::from_millis(40), TARGET);
        }
        assert_eq!(gate.load().1, 48, "64 x 0.75");
        // Each later round that overruns shrinks it again, never under the floor.
        let mut now = t0 + Duration::from_millis(40);
        for _ in 0..20 {
            let ticket = gate.enter_at(now).expect("room");
            now += Duration::from_millis(40);
            ticket.finish_at(now, TARGET);
        }
        assert_eq!(gate.load().1, 4);
        let floor: Vec<_> = (0..4).map(|_| gate.enter_at(now).expect("floor")).collect();
        assert!(is_busy(gate.enter_at(now)));
        drop(floor);
    }

    #[test]
    fn a_lone_overrun_in_a_hundred_is_the_tail_and_more_shrink_the_limit() {
        // One in 200 overruns: the p99 is within target, the limit stays at its ceiling.
        let gate = gate(4, 64);
        let mut now = Instant::now();
        for n in 1..=2_000 {
            let ticket = gate.enter_at(now).expect("room");
            now += Duration::from_millis(if n % 200 == 0 { 40 } else { 5 });
            ticket.finish_at(now, TARGET);
        }
        assert_eq!(gate.load().1, 64);
        // One in 20: the p99 is past it, and the limit shrinks.
        for n in 1..=2_000 {
            let ticket = gate.enter_at(now).expect("room");
            now += Duration::from_millis(if n % 20 == 0 { 40 } else { 5 });
            ticket.finish_at(now, TARGET);
        }
        assert!(gate.load().1 < 32, "{:?}", gate.load());
    }

    #[test]
    fn answers_within_target_grow_the_limit_back_to_its_ceiling() {
        let gate = gate(4, 256);
        let mut now = Instant::now();
        for _ in 0..30 {
            let ticket = gate.enter_at(now).expect("room");
            now += Duration::from_millis(100);
            ticket.finish_at(now, TARGET);
        }
        assert_eq!(gate.load().1, 4);
        let mut answered = 0;
        while gate.load().1 < 256 {
            let ticket = gate.enter_at(now).expect("room");
            now += Duration::from_millis(5);
            ticket.finish_at(now, TARGET);
            answered += 1;
            assert!(answered < 10_000, "the limit should grow back");
        }
        // Growth is about an eighth per round of `limit` answers, at least one per round.
        assert!(answered > 100, "{answered} answers");
    }

    #[test]
    fn a_limit_converges_where_latency_meets_the_target() {
        // A server whose latency is proportional to the work in flight: 1 ms per request.
        let gate = gate(4, 256);
        let mut now = Instant::now();
        let mut in_flight = std::collections::VecDeque::new();
        let mut limits = Vec::new();
        for _ in 0..20_000 {
            // Offered far beyond capacity: fill up to the limit each step.
            while let Ok(ticket) = gate.enter_at(now) {
                in_flight.push_back((ticket, now));
            }
            let (ticket, entered) = in_flight.pop_front().expect("one in flight");
            let latency = Duration::from_millis(in_flight.len() as u64 + 1);
            now = now.max(entered + latency);
            ticket.finish_at(now, TARGET);
            limits.push(gate.load().1);
        }
        let tail = &limits[limits.len() - 2_000..];
        let (low, high) = (tail.iter().min().unwrap(), tail.iter().max().unwrap());
        assert!(
            *low >= 12 && *high <= 40,
            "limit should hover around 25 in flight, saw {low}..{high}"
        );
    }

    #[test]
    fn a_gate_tells_the_pressure_while_more_than_one_in_a_hundred_overrun() {
        let pressure = Arc::new(Pressure::default());
        let gate = gate(4, 64).reporting_to(pressure.clone(), 1);
        let mut now = Instant::now();
        let mut answer = |ms: u64| {
            let ticket = gate.enter_at(now).expect("room");
            now += Duration::from_millis(ms);
            ticket.finish_at(now, TARGET);
        };
        answer(40);
        assert!(!pressure.is_on(), "one overrun is the tail");
        answer(40);
        assert!(pressure.is_on(), "two in a hundred are not");
        assert!(gate.overrunning());
        for _ in 0..98 {
            answer(5);
        }
        assert!(pressure.is_on(), "both are still among the last hundred");
        answer(5);
        assert!(!pressure.is_on(), "the first has left the window");
        assert!(!gate.overrunning());
    }

    #[test]
    fn a_disabled_gate_admits_everything() {
        let gate = Gate::new("test", false, 1, 1);
        let t0 = Instant::now();
        let tickets: Vec<_> = (0..10)
            .map(|_| gate.enter_at(t0).expect("admitted"))
            .collect();
        assert_eq!(gate.load().0, 10);
        drop(tickets);
    }

    #[test]
    fn settings_that_cannot_work_are_refused() {
        let refused = |tweak: fn(&mut AdmissionConfig)| {
            let mut config = AdmissionConfig::default();
            tweak(&mut config);
            config.validate().is_err()
        };
        assert!(refused(|c| c.store_min_in_flight = 0));
        assert!(refused(
            |c| c.context_min_in_flight = c.context_max_in_flight + 1
        ));
        assert!(refused(|c| c.context_target_share = 0.0));
        assert!(refused(|c| c.store_target_ms = 0));
        assert!(AdmissionConfig::default().validate().is_ok());
    }
}
