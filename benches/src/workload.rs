//! The workload generator: many users, each with sessions of conversation turns, all
//! deterministic from one seed.
//!
//! - Words come from a Zipf-distributed vocabulary (common English content words first,
//!   then a long tail of built words), so the index sees natural posting-list skew.
//! - Each user has a few recurring named entities (people with a relation, a pet, places),
//!   themselves drawn Zipf-wise, so some come up again and again.
//! - From the second session on, some user turns ask about something the user said in an
//!   earlier session ("Do you remember what I told you about Lena and the pottery?");
//!   [`UserStream::question`] makes such questions for context requests.
//! - Sessions are hours to days apart, so a user's history spreads over weeks and months.
//!
//! Each user's stream is generated from its own seed (the workload seed and the user's
//! index), so users can be generated lazily, in any interleaving, on any thread, and the
//! same seed always gives the same turns.

use std::collections::HashSet;
use std::io::Write;
use std::sync::Arc;

use chrono::{DateTime, Duration};
use mnemo_engine::cli::record::TurnRecord;
use mnemo_engine::storage::model::{
    ExternalId, NewTurn, Role, Scope, SessionId, Timestamp, Turn, TurnId,
};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::words;
use crate::zipf::Zipf;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadConfig {
    /// Everything follows from it.
    pub seed: u64,
    /// The tenant of every user.
    pub tenant: String,
    /// Number of users.
    pub users: usize,
    /// Turns per session, inclusive range.
    pub turns_per_session: (usize, usize),
    /// Words in the vocabulary (the common words, then built ones).
    pub vocabulary: usize,
    /// Exponent of the vocabulary's Zipf distribution.
    pub zipf_exponent: f64,
    /// Named entities per user.
    pub entities_per_user: usize,
    /// Time of each user's first session (before its per-user offset).
    pub start: Timestamp,
    /// Hours between two sessions of a user, inclusive range.
    pub session_gap_hours: (u64, u64),
    /// Seconds between two turns of a session, inclusive range.
    pub turn_gap_secs: (u64, u64),
    /// Share of user turns, from the second session on, that ask about an earlier one.
    pub recall_share: f64,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            tenant: "bench".into(),
            users: 100,
            turns_per_session: (6, 24),
            vocabulary: 20_000,
            zipf_exponent: 1.0,
            entities_per_user: 8,
            // 2026-01-01T00:00:00Z
            start: DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default(),
            session_gap_hours: (6, 24 * 10),
            turn_gap_secs: (20, 240),
            recall_share: 0.15,
        }
    }
}

/// One generated turn.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedTurn {
    /// The tenant.
    pub tenant: String,
    /// The user.
    pub user_id: String,
    /// The session.
    pub session_id: String,
    /// `user` or `assistant`.
    pub role: Role,
    /// The speaker's name.
    pub speaker: String,
    /// What was said.
    pub content: String,
    /// When it was said.
    pub event_time: Timestamp,
    /// A stable id: storing the workload twice stores each turn once.
    pub external_id: String,
}

impl GeneratedTurn {
    /// The turn to store.
    pub fn to_new_turn(&self) -> mnemo_engine::storage::Result<NewTurn> {
        let mut turn = NewTurn::new(
            Scope::parse(&self.tenant, &self.user_id)?,
            SessionId::new(self.session_id.clone())?,
            self.role,
            self.content.clone(),
        );
        turn.speaker = Some(self.speaker.clone());
        turn.event_time = Some(self.event_time);
        turn.external_id = Some(ExternalId::new(self.external_id.clone())?);
        Ok(turn)
    }

    /// The turn as the archive would hand it out once stored under `id` (ingest time =
    /// event time, no scores yet): for benches that drive a tier taking stored turns
    /// (recent tier, processors' analysis) without an archive in front.
    pub fn to_turn(&self, id: i64) -> mnemo_engine::storage::Result<Turn> {
        Ok(Turn {
            id: TurnId(id),
            external_id: ExternalId::new(self.external_id.clone())?,
            scope: Scope::parse(&self.tenant, &self.user_id)?,
            session_id: SessionId::new(self.session_id.clone())?,
            role: self.role,
            speaker: Some(self.speaker.clone()),
            content: self.content.clone(),
            event_time: self.event_time,
            ingest_time: self.event_time,
            metadata: serde_json::Value::Object(Default::default()),
            emotion: None,
            importance: None,
        })
    }

    /// The turn as a line of `mnemo import`'s JSON lines format.
    pub fn to_record(&self) -> TurnRecord {
        TurnRecord {
            id: None,
            tenant: Some(self.tenant.clone()),
            user_id: self.user_id.clone(),
            session_id: self.session_id.clone(),
            role: self.role,
            speaker: Some(self.speaker.clone()),
            content: self.content.clone(),
            event_time: Some(self.event_time),
            ingest_time: None,
            metadata: None,
            external_id: Some(self.external_id.clone()),
        }
    }
}

/// What every user's stream shares: the vocabulary and its distribution.
#[derive(Debug)]
struct Shared {
    config: WorkloadConfig,
    vocabulary: Vec<String>,
    zipf: Zipf,
}

impl Shared {
    fn word(&self, rng: &mut impl Rng) -> &str {
        &self.vocabulary[self.zipf.sample(rng)]
    }
}

/// The vocabulary: the common words, then words built from syllables, `size` in all,
/// each distinct.
fn vocabulary(size: usize) -> Vec<String> {
    let mut seen: HashSet<String> = HashSet::with_capacity(size);
    let mut words: Vec<String> = Vec::with_capacity(size);
    let mut add = |word: String, words: &mut Vec<String>| {
        if words.len() < size && seen.insert(word.clone()) {
            words.push(word);
        }
    };
    for w in words::COMMON {
        add((*w).to_owned(), &mut words);
    }
    let s = words::SYLLABLES;
    let mut n = 0usize;
    while words.len() < size {
        // Syllables picked by the digits of `n` in base `s.len()`: deterministic, and
        // longer words once the shorter ones run out.
        let mut word = String::new();
        let mut rest = n;
        loop {
            word.push_str(s[rest % s.len()]);
            rest /= s.len();
            if rest == 0 {
                break;
            }
            rest -= 1;
        }
        if word.len() > 3 {
            add(word, &mut words);
        }
        n += 1;
    }
    words
}

/// A named entity of one user.
#[derive(Debug, Clone, PartialEq)]
struct Entity {
    /// Its name.
    name: String,
    /// How the user refers to it ("my sister Lena", "Lisbon").
    mention: String,
}

/// One user's endless stream of turns.
#[derive(Debug)]
pub struct UserStream {
    shared: Arc<Shared>,
    rng: Xoshiro256PlusPlus,
    user_id: String,
    name: String,
    entities: Vec<Entity>,
    entity_zipf: Zipf,
    session: usize,
    session_len: usize,
    turn_in_session: usize,
    turns: u64,
    clock: Timestamp,
    /// (entity, word) pairs the user mentioned, with their session: what questions refer
    /// back to. Bounded: the oldest are overwritten.
    said: Vec<(usize, String, String)>,
}

/// How many earlier mentions a user remembers for back-references.
const SAID_CAPACITY: usize = 64;

impl UserStream {
    fn new(shared: Arc<Shared>, index: usize) -> Self {
        let config = &shared.config;
        let seed = config
            .seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(index as u64);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let name = words::NAMES[rng.random_range(0..words::NAMES.len())].to_owned();
        let mut entities: Vec<Entity> = Vec::new();
        let wanted = config.entities_per_user.max(1);
        let mut attempts = 0;
        while entities.len() < wanted && attempts < wanted * 20 {
            attempts += 1;
            let entity = match rng.random_range(0..10) {
                0..=5 => {
                    let person = words::NAMES[rng.random_range(0..words::NAMES.len())];
                    let relation = words::RELATIONS[rng.random_range(0..words::RELATIONS.len())];
                    Entity {
                        name: person.to_owned(),
                        mention: format!("my {relation} {person}"),
                    }
                }
                6..=7 => {
                    let pet = words::PETS[rng.random_range(0..words::PETS.len())];
                    Entity {
                        name: pet.to_owned(),
                        mention: format!("our dog {pet}"),
                    }
                }
                _ => {
                    let place = words::PLACES[rng.random_range(0..words::PLACES.len())];
                    Entity {
                        name: place.to_owned(),
                        mention: format!("my friends in {place}"),
                    }
                }
            };
            if entity.name != name && !entities.iter().any(|e| e.name == entity.name) {
                entities.push(entity);
            }
        }
        let entity_zipf = Zipf::new(entities.len(), 1.0);
        // Users start at different times within the first month.
        let offset = Duration::seconds(rng.random_range(0..30 * 24 * 3600));
        let clock = config.start + offset;
        let mut stream = Self {
            rng,
            user_id: format!("user-{index:05}"),
            name,
            entities,
            entity_zipf,
            session: 0,
            session_len: 0,
            turn_in_session: 0,
            turns: 0,
            clock,
            said: Vec::new(),
            shared,
        };
        stream.session_len = stream.draw_session_len();
        stream
    }

    fn draw_session_len(&mut self) -> usize {
        let (lo, hi) = self.shared.config.turns_per_session;
        let lo = lo.max(1);
        self.rng.random_range(lo..=hi.max(lo))
    }

    /// The user's id.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The user's scope.
    pub fn scope(&self) -> mnemo_engine::storage::Result<Scope> {
        Scope::parse(&self.shared.config.tenant, &self.user_id)
    }

    /// The session the next turn belongs to.
    pub fn session_id(&self) -> String {
        format!("s{:04}", self.session + 1)
    }

    /// Turns generated so far.
    pub fn turns(&self) -> u64 {
        self.turns
    }

    fn entity(&mut self) -> usize {
        self.entity_zipf.sample(&mut self.rng)
    }

    fn word(&mut self) -> String {
        let shared = self.shared.clone();
        shared.word(&mut self.rng).to_owned()
    }

    fn remember(&mut self, entity: usize, word: &str) {
        let item = (
            self.session,
            self.entities[entity].name.clone(),
            word.to_owned(),
        );
        if self.said.len() < SAID_CAPACITY {
            self.said.push(item);
        } else {
            let slot = self.rng.random_range(0..SAID_CAPACITY);
            self.said[slot] = item;
        }
    }

    /// Something said in an earlier session, if there is any.
    fn earlier(&mut self) -> Option<(String, String)> {
        let earlier: Vec<&(usize, String, String)> = self
            .said
            .iter()
            .filter(|(session, _, _)| *session < self.session)
            .collect();
        if earlier.is_empty() {
            return None;
        }
        let (_, entity, word) = earlier[self.rng.random_range(0..earlier.len())];
        Some((entity.clone(), word.clone()))
    }

    fn user_text(&mut self) -> String {
        if self.session > 0
            && self
                .rng
                .random_bool(self.shared.config.recall_share.clamp(0.0, 1.0))
        {
            if let Some((entity, word)) = self.earlier() {
                let templates = [
                    format!("Do you remember what I told you about {entity} and the {word}?"),
                    format!("Remind me, what did I say about {entity}'s {word} last time?"),
                    format!("Going back to the {word} thing with {entity}, how did that go again?"),
                ];
                let n = self.rng.random_range(0..templates.len());
                return templates[n].clone();
            }
        }
        let e = self.entity();
        let mention = self.entities[e].mention.clone();
        let (w1, w2, w3, w4) = (self.word(), self.word(), self.word(), self.word());
        self.remember(e, &w1);
        let text = match self.rng.random_range(0..8) {
            0 => format!("{mention} and I went to the {w1} {w2} yesterday, it was {w3}."),
            1 => format!(
                "I've been thinking about {w1} and {w2} since {mention} brought up the {w3}."
            ),
            2 => {
                format!("So {mention} wants to try {w1} next week, maybe with some {w2} and {w3}.")
            }
            3 => format!(
                "Today was all about the {w1}. {mention} kept talking about {w2} and {w3} {w4}."
            ),
            4 => format!("I finally finished the {w1} {w2}! {mention} said the {w3} looked great."),
            5 => format!(
                "Not sure how I feel about the {w1}, {mention} thinks the {w2} is a bad idea."
            ),
            6 => {
                format!("We're planning a {w1} trip with {mention}, there's a {w2} near the {w3}.")
            }
            _ => format!("{mention} got me a {w1} for the {w2}, I was so happy, and the {w3} too."),
        };
        capitalise(&text)
    }

    fn assistant_text(&mut self) -> String {
        let e = self.entity();
        let name = self.entities[e].name.clone();
        let (w1, w2) = (self.word(), self.word());
        match self.rng.random_range(0..5) {
            0 => format!("That sounds wonderful! How did {name} feel about the {w1}?"),
            1 => format!("I remember you mentioned {name} before. Is the {w1} going better now?"),
            2 => format!("It makes sense to worry about the {w1}. What would help with the {w2}?"),
            3 => format!("Good luck with the {w1}! Tell me how it goes with {name}."),
            _ => format!("Interesting, I didn't know {name} was into {w1} and {w2}."),
        }
    }

    /// The next turn of this user: user and assistant alternate within a session; a new
    /// session starts hours or days after the last.
    pub fn next_turn(&mut self) -> GeneratedTurn {
        let config = self.shared.config.clone();
        if self.turn_in_session >= self.session_len {
            self.session += 1;
            self.turn_in_session = 0;
            self.session_len = self.draw_session_len();
            let (lo, hi) = config.session_gap_hours;
            let hours = self.rng.random_range(lo..=hi.max(lo));
            self.clock += Duration::hours(i64::try_from(hours).unwrap_or(i64::MAX / 4_000_000));
        } else if self.turn_in_session > 0 {
            let (lo, hi) = config.turn_gap_secs;
            let secs = self.rng.random_range(lo..=hi.max(lo));
            self.clock += Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 4_000));
        }
        let user_speaks = self.turn_in_session.is_multiple_of(2);
        let (role, speaker, content) = if user_speaks {
            (Role::User, self.name.clone(), self.user_text())
        } else {
            (
                Role::Assistant,
                "Assistant".to_owned(),
                self.assistant_text(),
            )
        };
        let turn = GeneratedTurn {
            tenant: config.tenant.clone(),
            user_id: self.user_id.clone(),
            session_id: self.session_id(),
            role,
            speaker,
            content,
            event_time: self.clock,
            external_id: format!("{}-{}", self.user_id, self.turns + 1),
        };
        self.turn_in_session += 1;
        self.turns += 1;
        turn
    }

    /// A question for a context request: about something the user said in an earlier
    /// session when there is one (else in this one), or about their strongest entity.
    pub fn question(&mut self) -> String {
        let pick = if self.said.is_empty() {
            None
        } else {
            let n = self.rng.random_range(0..self.said.len());
            let (_, entity, word) = &self.said[n];
            Some((entity.clone(), word.clone()))
        };
        // A second word from the vocabulary makes questions about the same memory differ,
        // as people's do (and keeps the per-user answer cache from answering them).
        let other = self.word();
        match pick.or_else(|| self.earlier()) {
            Some((entity, word)) => match self.rng.random_range(0..3) {
                0 => format!(
                    "What did I tell you about {entity} and the {word}? Was it about {other}?"
                ),
                1 => format!("How is the {word} going with {entity}, any news on the {other}?"),
                _ => format!("When did {entity} bring up the {word} and the {other}?"),
            },
            None => {
                let e = self.entity();
                let name = self.entities[e].name.clone();
                let word = self.word();
                format!("What's new with {name} and the {word} or the {other}?")
            }
        }
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A workload: every user's stream.
#[derive(Debug)]
pub struct Workload {
    shared: Arc<Shared>,
    users: Vec<UserStream>,
    next_user: usize,
}

impl Workload {
    /// The workload of `config`.
    pub fn new(config: WorkloadConfig) -> Self {
        let vocabulary = vocabulary(config.vocabulary.max(1));
        let zipf = Zipf::new(vocabulary.len(), config.zipf_exponent);
        let users = config.users.max(1);
        let shared = Arc::new(Shared {
            config,
            vocabulary,
            zipf,
        });
        let users = (0..users)
            .map(|i| UserStream::new(shared.clone(), i))
            .collect();
        Self {
            shared,
            users,
            next_user: 0,
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &WorkloadConfig {
        &self.shared.config
    }

    /// The vocabulary, most frequent first.
    pub fn vocabulary(&self) -> &[String] {
        &self.shared.vocabulary
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Always false: a workload has at least one user.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// User `index`'s stream.
    pub fn user(&mut self, index: usize) -> &mut UserStream {
        let n = self.users.len();
        &mut self.users[index % n]
    }

    /// Takes every user's stream out (for one task per simulated user).
    pub fn into_users(self) -> Vec<UserStream> {
        self.users
    }

    /// The next `n` turns, one user after the other (round robin): after `k * users`
    /// turns every user has `k`.
    pub fn next_turns(&mut self, n: usize) -> Vec<GeneratedTurn> {
        (0..n)
            .map(|_| {
                let i = self.next_user;
                self.next_user = (self.next_user + 1) % self.users.len();
                self.users[i].next_turn()
            })
            .collect()
    }

    /// Writes `turns_per_user` turns of every user as JSON lines for `mnemo import`,
    /// user after user.
    pub fn write_jsonl(
        &mut self,
        turns_per_user: usize,
        out: &mut impl Write,
    ) -> std::io::Result<u64> {
        let mut written = 0;
        for user in &mut self.users {
            for _ in 0..turns_per_user {
                serde_json::to_writer(&mut *out, &user.next_turn().to_record())?;
                out.write_all(b"\n")?;
                written += 1;
            }
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use mnemo_engine::storage::limits::InputLimits;

    use super::*;

    fn small(seed: u64) -> WorkloadConfig {
        WorkloadConfig {
            seed,
            users: 20,
            ..WorkloadConfig::default()
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_workload() {
        let a = Workload::new(small(42)).next_turns(2_000);
        let b = Workload::new(small(42)).next_turns(2_000);
        assert_eq!(a, b);
        let c = Workload::new(small(43)).next_turns(2_000);
        assert_ne!(a, c);
        // Questions too.
        let mut x = Workload::new(small(42));
        let mut y = Workload::new(small(42));
        x.next_turns(500);
        y.next_turns(500);
        assert_eq!(x.user(3).question(), y.user(3).question());
        // A user's stream does not depend on how users are interleaved.
        let mut one = Workload::new(small(42));
        let alone: Vec<GeneratedTurn> = (0..100).map(|_| one.user(5).next_turn()).collect();
        let mixed: Vec<GeneratedTurn> = Workload::new(small(42))
            .next_turns(100 * 20)
            .into_iter()
            .filter(|t| t.user_id == "user-00005")
            .collect();
        assert_eq!(alone, mixed);
    }

    #[test]
    fn a_stored_turn_keeps_what_was_generated() {
        let generated = Workload::new(small(2)).next_turns(1).remove(0);
        let turn = generated.to_turn(7).unwrap();
        let new = generated.to_new_turn().unwrap();
        assert_eq!(turn.id, TurnId(7));
        assert_eq!(turn.scope, new.scope);
        assert_eq!(turn.session_id, new.session_id);
        assert_eq!(turn.content, new.content);
        assert_eq!(turn.speaker, new.speaker);
        assert_eq!(Some(turn.event_time), new.event_time);
        assert_eq!(Some(turn.external_id), new.external_id);
    }

    #[test]
    fn turns_are_valid_and_round_robin_over_users() {
        let mut workload = Workload::new(small(1));
        let turns = workload.next_turns(20 * 30);
        let mut per_user: HashMap<&str, usize> = HashMap::new();
        let mut ids = HashSet::new();
        for t in &turns {
            *per_user.entry(t.user_id.as_str()).or_default() += 1;
            assert!(ids.insert(t.external_id.clone()), "external ids are unique");
            t.to_new_turn()
                .unwrap()
                .validate(&InputLimits::default())
                .unwrap();
        }
        assert_eq!(per_user.len(), 20);
        assert!(per_user.values().all(|&n| n == 30));
    }

    #[test]
    fn sessions_spread_over_months_with_times_rising() {
        let mut workload = Workload::new(small(9));
        let turns: Vec<GeneratedTurn> = (0..400).map(|_| workload.user(0).next_turn()).collect();
        for pair in turns.windows(2) {
            assert!(pair[1].event_time > pair[0].event_time);
            assert!(pair[1].session_id >= pair[0].session_id);
        }
        let sessions: HashSet<&str> = turns.iter().map(|t| t.session_id.as_str()).collect();
        assert!(sessions.len() >= 15, "{} sessions", sessions.len());
        let span = turns[399].event_time - turns[0].event_time;
        assert!(span > Duration::days(60), "{span}");
        assert_eq!(turns[0].role, Role::User);
        assert_eq!(turns[1].role, Role::Assistant);
    }

    #[test]
    fn later_sessions_refer_back_and_entities_recur() {
        let mut workload = Workload::new(small(3));
        let turns: Vec<GeneratedTurn> = (0..400).map(|_| workload.user(2).next_turn()).collect();
        let back: Vec<&GeneratedTurn> = turns
            .iter()
            .filter(|t| {
                t.content.contains("remember")
                    || t.content.contains("Remind me")
                    || t.content.contains("Going back")
            })
            .collect();
        assert!(back.len() >= 5, "{} back-references", back.len());
        assert!(back.iter().all(|t| t.session_id != "s0001"));
        // The user's most frequent entity recurs across many sessions.
        let names: Vec<&str> = words::NAMES
            .iter()
            .chain(words::PETS)
            .chain(words::PLACES)
            .copied()
            .collect();
        let mut sessions_per_name: HashMap<&str, HashSet<&str>> = HashMap::new();
        for t in &turns {
            for name in &names {
                if t.content.contains(name) {
                    sessions_per_name
                        .entry(name)
                        .or_default()
                        .insert(&t.session_id);
                }
            }
        }
        let most = sessions_per_name
            .values()
            .map(HashSet::len)
            .max()
            .unwrap_or(0);
        assert!(most >= 10, "the strongest entity spans {most} sessions");
        assert!(workload.user(2).question().len() > 10);
    }

    #[test]
    fn the_vocabulary_is_distinct_and_its_head_is_common_words() {
        let workload = Workload::new(WorkloadConfig {
            vocabulary: 30_000,
            ..small(1)
        });
        let vocab = workload.vocabulary();
        assert_eq!(vocab.len(), 30_000);
        let distinct: HashSet<&String> = vocab.iter().collect();
        assert_eq!(distinct.len(), vocab.len());
        assert_eq!(vocab[0], "time");
    }

    #[test]
    fn jsonl_lines_import_as_records() {
        let mut workload = Workload::new(small(5));
        let mut out = Vec::new();
        let written = workload.write_jsonl(3, &mut out).unwrap();
        assert_eq!(written, 60);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 60);
        for line in text.lines() {
            let record: TurnRecord = serde_json::from_str(line).unwrap();
            record
                .into_new_turn("ignored", &InputLimits::default())
                .unwrap();
        }
    }
}
