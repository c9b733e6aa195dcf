//! Merging, ranking and cutting of context: pure functions, so they are easy to test and
//! can run on a worker thread. Rendering the prompt is [`super::render`].
//!
//! The score of an item is documented here, once:
//!
//! ```text
//! score = w_relevance  * relevance      (BM25 / best BM25 of this answer; entities: 1 when
//!                                        named in the query, else 0.5 * decayed weight / best)
//!       + w_recency    * 0.5^(age / half_life)
//!       + w_importance * importance     (from the emotion processor; 0.5 when unknown)
//!       + w_emotion    * salience       (max(|valence|, arousal) of the turn; 0 when unknown)
//! ```
//!
//! The weights and the half-life come from `[actors.context]`.
//!
//! Before scoring, [`lift_neighbours`] adds the session neighbours of the hits: in a
//! conversation the answer to a matching question is usually the next turn, and it often
//! shares no word with the query. A turn just after a hit gets at least
//! `neighbour_next` times its BM25, one just before at least `neighbour_previous` times.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use mnemo_storage::graph::RankedEntity;
use mnemo_storage::index::{DocKind, SearchHit};
use mnemo_storage::model::{EmotionState, SessionId, Timestamp, Turn};
use serde::{Deserialize, Serialize};

use crate::analysis::word_set::WordSet;
use crate::config::ContextConfig;

/// What a context item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    /// A past turn.
    Turn,
    /// A session summary.
    Summary,
    /// An entity of the user's graph.
    Entity,
}

/// One ranked piece of context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextItem {
    /// Turn, summary or entity.
    pub kind: ItemKind,
    /// Its id (turn id, summary id, entity id).
    pub id: i64,
    /// The text shown to the model.
    pub text: String,
    /// The ranking score.
    pub score: f64,
    /// When it was said (entities: last mentioned).
    pub event_time: Option<Timestamp>,
    /// Its session, for turns and summaries.
    pub session_id: Option<SessionId>,
}

/// A search hit with what the archive adds to it, for ranking.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The hit.
    pub hit: SearchHit,
    /// The stored turn, when the hit is a turn and the archive answered in time.
    pub turn: Option<Turn>,
    /// When its score comes from a session neighbour's lift: that hit's id and the lift
    /// factor. Ranking keeps it at most that factor of the hit's final score, so a
    /// neighbour never outranks the hit that brought it in.
    pub lifted_by: Option<(i64, f64)>,
}

/// The inputs of ranking.
#[derive(Debug)]
pub struct Gathered<'a> {
    /// The session's recent turns, oldest first.
    pub recent: &'a [Turn],
    /// Index hits.
    pub candidates: Vec<Candidate>,
    /// Entities named in the query.
    pub matched: Vec<RankedEntity>,
    /// The user's strongest entities.
    pub top: Vec<RankedEntity>,
    /// The user's emotion state.
    pub emotion: Option<&'a EmotionState>,
    /// The time of the request.
    pub now: Timestamp,
}

/// Adds the session neighbours of the hits in `expanded` (turn ids) to `candidates` and
/// lifts their scores: a turn right after an expanded hit in its session scores at least
/// `next` times that hit's score, one right before at least `previous` times it.
/// `neighbours` are the turns the archive found next to the expanded hits
/// (`turns_around`); a neighbour that is a candidate already keeps the higher score.
pub fn lift_neighbours(
    candidates: &mut Vec<Candidate>,
    expanded: &[i64],
    neighbours: Vec<Turn>,
    next: f64,
    previous: f64,
) {
    let mut position: HashMap<i64, usize> = candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| c.hit.kind == DocKind::Turn)
        .map(|(i, c)| (c.hit.id, i))
        .collect();
    // The expanded hits' own scores, before any lift (lifts do not chain).
    let base: HashMap<i64, f32> = expanded
        .iter()
        .filter_map(|id| position.get(id).map(|&i| (*id, candidates[i].hit.score)))
        .collect();
    // Per session, the ids of the expanded hits and their neighbours, in order: the
    // archive answers every hit's true neighbour, so the turn after an expanded hit in
    // this list is the one said right after it.
    let mut sessions: HashMap<SessionId, BTreeMap<i64, ()>> = HashMap::new();
    for id in base.keys() {
        let session = candidates[position[id]].hit.session_id.clone();
        sessions.entry(session).or_default().insert(*id, ());
    }
    for turn in neighbours {
        sessions
            .entry(turn.session_id.clone())
            .or_default()
            .insert(turn.id.0, ());
        if let std::collections::hash_map::Entry::Vacant(slot) = position.entry(turn.id.0) {
            slot.insert(candidates.len());
            candidates.push(Candidate {
                hit: SearchHit {
                    kind: DocKind::Turn,
                    id: turn.id.0,
                    session_id: turn.session_id.clone(),
                    event_time: turn.event_time,
                    text: turn.content.clone(),
                    score: 0.0,
                },
                turn: Some(turn),
                lifted_by: None,
            });
        }
    }
    for ids in sessions.values() {
        let ids: Vec<i64> = ids.keys().copied().collect();
        for pair in ids.windows(2) {
            let (before, after) = (pair[0], pair[1]);
            if let Some(&score) = base.get(&before) {
                lift(&mut candidates[position[&after]], (before, score), next);
            }
            if let Some(&score) = base.get(&after) {
                lift(&mut candidates[position[&before]], (after, score), previous);
            }
        }
    }
    // A neighbour on a side that is switched off was not lifted: it stays out.
    candidates.retain(|c| c.hit.score > 0.0);
}

/// Raises `neighbour`'s score to `factor` times the score of hit `by`, when that is
/// higher than its own, and remembers the lift.
fn lift(neighbour: &mut Candidate, (by, score): (i64, f32), factor: f64) {
    let lifted = (f64::from(score) * factor) as f32;
    if lifted > neighbour.hit.score {
        neighbour.hit.score = lifted;
        neighbour.lifted_by = Some((by, factor));
    }
}

fn decay(now: Timestamp, then: Timestamp, half_life_hours: f64) -> f64 {
    let age_hours = (now - then).num_seconds().max(0) as f64 / 3600.0;
    0.5f64.powf(age_hours / half_life_hours.max(1e-6))
}

/// Who said a turn: its speaker, else its role.
pub(crate) fn speaker_of(turn: &Turn) -> &str {
    turn.speaker.as_deref().unwrap_or(turn.role.as_str())
}

fn entity_text(e: &RankedEntity) -> String {
    let mut text = format!("{} ({})", e.entity.name, e.entity.kind);
    if e.mentions > 0 {
        let _ = write!(
            text,
            ": mentioned {} time{}",
            e.mentions,
            if e.mentions == 1 { "" } else { "s" }
        );
    }
    let _ = write!(text, ", last {}", e.entity.last_seen.format("%Y-%m-%d"));
    if !e.entity.aliases.is_empty() {
        let _ = write!(text, "; also called {}", e.entity.aliases.join(", "));
    }
    text
}

/// Merges the gathered pieces into ranked items: turns already in `recent` and near
/// duplicates are dropped, the rest scored as documented above and cut to `max_items`.
pub fn rank(gathered: Gathered<'_>, config: &ContextConfig, max_items: usize) -> Vec<ContextItem> {
    let recent_ids: HashSet<i64> = gathered.recent.iter().map(|t| t.id.0).collect();
    let best = gathered
        .candidates
        .iter()
        .map(|c| c.hit.score)
        .fold(0.0f32, f32::max)
        .max(f32::EPSILON) as f64;
    let mut items: Vec<ContextItem> = Vec::new();
    for c in &gathered.candidates {
        if c.hit.kind == DocKind::Turn && recent_ids.contains(&c.hit.id) {
            continue;
        }
        let relevance = c.hit.score as f64 / best;
        let recency = decay(
            gathered.now,
            c.hit.event_time,
            config.recency_half_life_hours,
        );
        let (importance, salience, text) = match (&c.turn, c.hit.kind) {
            (Some(turn), _) => (
                turn.importance.map_or(0.5, f64::from),
                turn.emotion
                    .as_ref()
                    .map_or(0.0, |e| f64::from(e.valence.abs().max(e.arousal))),
                format!("{}: {}", speaker_of(turn), turn.content),
            ),
            (None, DocKind::Summary) => (0.6, 0.0, format!("Summary: {}", c.hit.text)),
            (None, DocKind::Turn) => (0.5, 0.0, c.hit.text.clone()),
        };
        let score = config.weight_relevance * relevance
            + config.weight_recency * recency
            + config.weight_importance * importance
            + config.weight_emotion * salience;
        items.push(ContextItem {
            kind: match c.hit.kind {
                DocKind::Turn => ItemKind::Turn,
                DocKind::Summary => ItemKind::Summary,
            },
            id: c.hit.id,
            text,
            score,
            event_time: Some(c.hit.event_time),
            session_id: Some(c.hit.session_id.clone()),
        });
    }
    // A lifted neighbour stays below the hit that lifted it (when that hit is ranked).
    let lifted_by: HashMap<i64, (i64, f64)> = gathered
        .candidates
        .iter()
        .filter_map(|c| Some((c.hit.id, c.lifted_by?)))
        .collect();
    let turn_scores: HashMap<i64, f64> = items
        .iter()
        .filter(|i| i.kind == ItemKind::Turn)
        .map(|i| (i.id, i.score))
        .collect();
    for item in items.iter_mut().filter(|i| i.kind == ItemKind::Turn) {
        if let Some((by, factor)) = lifted_by.get(&item.id) {
            if let Some(&cap) = turn_scores.get(by) {
                item.score = item.score.min(cap * factor);
            }
        }
    }
    let best_entity = gathered
        .top
        .iter()
        .chain(&gathered.matched)
        .map(|e| e.score)
        .fold(0.0f64, f64::max)
        .max(f64::EPSILON);
    let mut seen_entities = HashSet::new();
    for (e, named) in gathered
        .matched
        .iter()
        .map(|e| (e, true))
        .chain(gathered.top.iter().map(|e| (e, false)))
    {
        if !seen_entities.insert(e.entity.id) {
            continue;
        }
        let relevance = if named {
            1.0
        } else {
            0.5 * e.score / best_entity
        };
        let recency = decay(
            gathered.now,
            e.entity.last_seen,
            config.recency_half_life_hours,
        );
        let score = config.weight_relevance * relevance
            + config.weight_recency * recency
            + config.weight_importance * 0.5;
        items.push(ContextItem {
            kind: ItemKind::Entity,
            id: e.entity.id,
            text: entity_text(e),
            score,
            event_time: Some(e.entity.last_seen),
            session_id: None,
        });
    }
    items.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));

    // Near duplicates: of items, and of items and the recent turns.
    let mut kept: Vec<(ContextItem, WordSet)> = Vec::new();
    let recent_sets: Vec<WordSet> = gathered
        .recent
        .iter()
        .map(|t| WordSet::of_text(&t.content))
        .collect();
    for item in items {
        if kept.len() >= max_items {
            break;
        }
        let words = WordSet::of_text(&item.text);
        let duplicate = kept
            .iter()
            .map(|(_, w)| w)
            .chain(recent_sets.iter())
            .any(|other| words.jaccard(other) >= config.near_duplicate_jaccard);
        if !duplicate {
            kept.push((item, words));
        }
    }
    kept.into_iter().map(|(item, _)| item).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use mnemo_storage::model::{ExternalId, Role, Scope, TurnId};

    /// A turn of user `u` in session `s`, said `id` seconds after a fixed time.
    pub(crate) fn turn(id: i64, content: &str) -> Turn {
        Turn {
            id: TurnId(id),
            external_id: ExternalId::new(format!("e{id}")).unwrap(),
            scope: Scope::parse("t", "u").unwrap(),
            session_id: SessionId::new("s").unwrap(),
            role: Role::User,
            speaker: Some("Ann".into()),
            content: content.into(),
            event_time: chrono::DateTime::from_timestamp(1_700_000_000 + id, 0).unwrap(),
            ingest_time: chrono::DateTime::from_timestamp(1_700_000_000 + id, 0).unwrap(),
            metadata: serde_json::json!({}),
            emotion: None,
            importance: None,
        }
    }

    fn hit(id: i64, score: f32, text: &str) -> Candidate {
        let t = turn(id, text);
        Candidate {
            hit: SearchHit {
                kind: DocKind::Turn,
                id,
                session_id: t.session_id.clone(),
                event_time: t.event_time,
                text: text.into(),
                score,
            },
            turn: Some(t),
            lifted_by: None,
        }
    }

    #[test]
    fn ranking_drops_recent_turns_and_near_duplicates_and_orders_by_score() {
        let recent = vec![turn(10, "we talked about the lake")];
        let gathered = Gathered {
            recent: &recent,
            candidates: vec![
                hit(10, 9.0, "we talked about the lake"),
                hit(1, 2.0, "Biscuit chased a squirrel at the park"),
                hit(2, 8.0, "Biscuit loves the beach"),
                hit(3, 7.9, "biscuit loves the beach!"),
            ],
            matched: Vec::new(),
            top: Vec::new(),
            emotion: None,
            now: chrono::DateTime::from_timestamp(1_700_000_100, 0).unwrap(),
        };
        let items = rank(gathered, &ContextConfig::default(), 10);
        let ids: Vec<i64> = items.iter().map(|i| i.id).collect();
        assert_eq!(
            ids,
            vec![2, 1],
            "recent turn 10 and near-duplicate 3 are gone"
        );
        assert!(items[0].score > items[1].score);
    }

    #[test]
    fn max_items_is_a_hard_cap_zero_included() {
        let gathered = |recent: &'static [Turn]| Gathered {
            recent,
            candidates: vec![
                hit(1, 3.0, "Biscuit chased a squirrel at the park"),
                hit(2, 2.0, "the garden needs water"),
                hit(3, 1.0, "pottery class on Tuesday"),
            ],
            matched: Vec::new(),
            top: Vec::new(),
            emotion: None,
            now: chrono::DateTime::from_timestamp(1_700_000_100, 0).unwrap(),
        };
        let config = ContextConfig::default();
        assert!(rank(gathered(&[]), &config, 0).is_empty());
        assert_eq!(rank(gathered(&[]), &config, 1).len(), 1);
        assert_eq!(rank(gathered(&[]), &config, 3).len(), 3);
    }

    fn in_session(id: i64, session: &str, text: &str) -> Turn {
        let mut t = turn(id, text);
        t.session_id = SessionId::new(session).unwrap();
        t
    }

    #[test]
    fn neighbours_of_the_best_hits_are_lifted() {
        // Session a: 1 2 3 4 5; session b: 10 11. Hits: 2 (score 10, expanded), 5 (score 1,
        // not expanded), 10 (score 4, expanded).
        let mut candidates = vec![
            hit(2, 10.0, "two"),
            hit(5, 1.0, "five"),
            hit(10, 4.0, "ten"),
        ];
        for c in &mut candidates {
            let session = if c.hit.id < 10 { "a" } else { "b" };
            c.hit.session_id = SessionId::new(session).unwrap();
        }
        let neighbours = vec![
            in_session(1, "a", "one"),
            in_session(3, "a", "three"),
            in_session(11, "b", "eleven"),
        ];
        lift_neighbours(&mut candidates, &[2, 10], neighbours, 0.8, 0.5);
        let score = |id: i64| {
            candidates
                .iter()
                .find(|c| c.hit.id == id)
                .map(|c| c.hit.score)
        };
        assert_eq!(score(2), Some(10.0), "a hit keeps its own score");
        assert_eq!(score(3), Some(8.0), "after a hit: 0.8 of it");
        assert_eq!(score(1), Some(5.0), "before a hit: 0.5 of it");
        assert_eq!(score(11), Some(3.2));
        assert_eq!(score(5), Some(1.0), "not next to an expanded hit");
        assert_eq!(score(4), None, "never fetched");
        assert_eq!(candidates.len(), 6);
        assert!(candidates.iter().all(|c| c.turn.is_some()));

        // A hit that is also a neighbour keeps the higher of both; a side switched off
        // adds nothing.
        let mut candidates = vec![hit(2, 10.0, "two"), hit(3, 1.0, "three")];
        lift_neighbours(
            &mut candidates,
            &[2, 3],
            vec![in_session(1, "s", "one"), in_session(4, "s", "four")],
            0.8,
            0.0,
        );
        let scores: Vec<(i64, f32)> = candidates.iter().map(|c| (c.hit.id, c.hit.score)).collect();
        assert_eq!(scores, vec![(2, 10.0), (3, 8.0), (4, 0.8)]);
    }
}
