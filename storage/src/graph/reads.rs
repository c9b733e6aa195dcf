//! The read side every graph backend shares: ranking a user's entities, walking a
//! neighbourhood hop by hop, finding entities by name. A backend answers a handful of
//! primitive lookups ([`GraphLookups`]); the semantics the conformance suite checks
//! (decay, tie-breaks, per-hop limits, exact name before alias) live here once.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;

use super::{name_key, ContextEntities, Edge, Entity, Neighbourhood, RankedEntity, Recency};
use crate::error::{Error, Result};
use crate::model::{Scope, Timestamp};

/// The user's MENTIONS edge to one entity.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MentionStat {
    /// The entity.
    pub entity: i64,
    /// Sum of the supporting weights.
    pub weight: f64,
    /// Supporting turns.
    pub count: u64,
    /// Event time of the last supporting turn.
    pub last_seen: Timestamp,
}

/// The primitive lookups a graph backend answers, all within one user's scope.
#[async_trait]
pub(crate) trait GraphLookups: Send + Sync {
    /// Every MENTIONS edge of the user.
    async fn mention_stats(&self, scope: &Scope) -> Result<Vec<MentionStat>>;

    /// The entities with these ids, aliases filled in, in any order.
    async fn entities_by_ids(&self, scope: &Scope, ids: &[i64]) -> Result<Vec<Entity>>;

    /// The id of the entity whose canonical name has this key.
    async fn id_by_name_key(&self, scope: &Scope, key: &str) -> Result<Option<i64>>;

    /// The ids of the entities whose name or an alias has one of these keys.
    async fn ids_by_keys(&self, scope: &Scope, keys: &[String]) -> Result<Vec<i64>>;

    /// Every MENTIONS edge of the user and the ids of the entities whose name or an
    /// alias has one of `keys`: what a context request asks the graph first. A backend
    /// that can answers both in one round trip.
    async fn mentions_and_matches(
        &self,
        scope: &Scope,
        keys: &[String],
    ) -> Result<(Vec<MentionStat>, Vec<i64>)> {
        let (stats, ids) = tokio::join!(self.mention_stats(scope), async {
            if keys.is_empty() {
                Ok(Vec::new())
            } else {
                self.ids_by_keys(scope, keys).await
            }
        });
        Ok((stats?, ids?))
    }

    /// RELATED_TO edges touching any of `nodes`, each once, ordered by weight, then last
    /// seen (both descending), then ends; at most `limit`.
    async fn related_edges(&self, scope: &Scope, nodes: &[i64], limit: usize) -> Result<Vec<Edge>>;
}

/// MENTIONS edges scored by their decayed weight, best first.
fn ranked_mentions(stats: Vec<MentionStat>, recency: Recency) -> Vec<(MentionStat, f64)> {
    // Every MENTIONS edge is scored: a cut by weight or by recency alone can miss the
    // entity whose decayed weight is best (heavier ones are older, newer ones lighter).
    let mut scored: Vec<(MentionStat, f64)> = stats
        .into_iter()
        .map(|s| {
            let score = recency.decay(s.weight, s.last_seen);
            (s, score)
        })
        .collect();
    scored.sort_by(|(a, sa), (b, sb)| {
        sb.total_cmp(sa)
            .then(b.last_seen.cmp(&a.last_seen))
            .then(a.entity.cmp(&b.entity))
    });
    scored
}

/// An entity with the rank of its MENTIONS edge (`None`: never mentioned, weight 0).
fn ranked(entity: Entity, mention: Option<&(MentionStat, f64)>) -> RankedEntity {
    match mention {
        Some((s, score)) => RankedEntity {
            entity,
            weight: s.weight,
            mentions: s.count,
            score: *score,
        },
        None => RankedEntity {
            entity,
            weight: 0.0,
            mentions: 0,
            score: 0.0,
        },
    }
}

/// The user's entities ranked by MENTIONS weight decayed by recency, best first.
pub(crate) async fn user_entities(
    lookups: &dyn GraphLookups,
    scope: &Scope,
    recency: Recency,
    limit: usize,
) -> Result<Vec<RankedEntity>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let mut scored = ranked_mentions(lookups.mention_stats(scope).await?, recency);
    scored.truncate(limit);
    let ids: Vec<i64> = scored.iter().map(|(s, _)| s.entity).collect();
    let mut entities: HashMap<i64, Entity> = lookups
        .entities_by_ids(scope, &ids)
        .await?
        .into_iter()
        .map(|e| (e.id, e))
        .collect();
    Ok(scored
        .iter()
        .filter_map(|m| Some(ranked(entities.remove(&m.0.entity)?, Some(m))))
        .collect())
}

/// What a context answer shows of the graph: the entities `names` match (as
/// [`find_entities`]) and the `top` best ranked (as [`user_entities`]), each with its
/// rank. Only the entities shown are read in full.
pub(crate) async fn context_entities(
    lookups: &dyn GraphLookups,
    scope: &Scope,
    recency: Recency,
    names: &[String],
    top: usize,
) -> Result<ContextEntities> {
    let keys = name_keys(names);
    let (stats, mut matched_ids) = lookups.mentions_and_matches(scope, &keys).await?;
    let scored = ranked_mentions(stats, recency);
    matched_ids.sort_unstable();
    matched_ids.dedup();
    let top_ids: Vec<i64> = scored.iter().take(top).map(|(s, _)| s.entity).collect();
    let mut wanted: Vec<i64> = matched_ids.iter().chain(&top_ids).copied().collect();
    wanted.sort_unstable();
    wanted.dedup();
    let entities: HashMap<i64, Entity> = lookups
        .entities_by_ids(scope, &wanted)
        .await?
        .into_iter()
        .map(|e| (e.id, e))
        .collect();
    let rank_of: HashMap<i64, &(MentionStat, f64)> =
        scored.iter().map(|m| (m.0.entity, m)).collect();
    let pick = |id: &i64| {
        let entity = entities.get(id)?.clone();
        Some(ranked(entity, rank_of.get(id).copied()))
    };
    Ok(ContextEntities {
        matched: matched_ids.iter().filter_map(pick).collect(),
        top: top_ids.iter().filter_map(pick).collect(),
    })
}

/// Whether a lookup key can name a stored entity: names are refused with control
/// characters on write, and a server may refuse some in a query (PostgreSQL: NUL), so
/// such a key finds nothing, on every backend alike, without asking.
fn storable(key: &str) -> bool {
    !key.is_empty() && !key.contains(char::is_control)
}

/// The lookup keys of `names` that can name a stored entity.
fn name_keys(names: &[String]) -> Vec<String> {
    names
        .iter()
        .map(|n| name_key(n))
        .filter(|k| storable(k))
        .collect()
}

/// The entity named `name` (or an alias) and its RELATED_TO neighbours up to `depth`
/// hops, at most `limit` new edges per hop.
pub(crate) async fn neighbourhood(
    lookups: &dyn GraphLookups,
    scope: &Scope,
    name: &str,
    depth: usize,
    limit: usize,
) -> Result<Option<Neighbourhood>> {
    if !(1..=2).contains(&depth) {
        return Err(Error::invalid("depth", format!("{depth} is not 1 or 2")));
    }
    let key = name_key(name);
    if !storable(&key) {
        return Ok(None);
    }
    // An entity with exactly this name wins over one that has it as an alias.
    let center_id = match lookups.id_by_name_key(scope, &key).await? {
        Some(id) => id,
        None => match lookups.ids_by_keys(scope, &[key]).await?.into_iter().min() {
            Some(id) => id,
            None => return Ok(None),
        },
    };
    let mut seen: HashSet<i64> = HashSet::from([center_id]);
    let mut edges: Vec<Edge> = Vec::new();
    let mut frontier = vec![center_id];
    for _ in 0..depth {
        if frontier.is_empty() || limit == 0 {
            break;
        }
        // Edges walked on an earlier hop may come back; they must not use up this hop's
        // budget, so ask for that many more and skip them.
        let hop = lookups
            .related_edges(scope, &frontier, limit.saturating_add(edges.len()))
            .await?;
        let mut next = Vec::new();
        let mut taken = 0;
        for edge in hop {
            if taken == limit {
                break;
            }
            if edges.iter().any(|e| e.src == edge.src && e.dst == edge.dst) {
                continue;
            }
            taken += 1;
            for node in [edge.src, edge.dst] {
                if seen.insert(node) {
                    next.push(node);
                }
            }
            edges.push(edge);
        }
        frontier = next;
    }
    let all: Vec<i64> = seen.into_iter().collect();
    let mut entities = lookups.entities_by_ids(scope, &all).await?;
    let Some(pos) = entities.iter().position(|e| e.id == center_id) else {
        return Ok(None);
    };
    let center = entities.swap_remove(pos);
    entities.sort_by(|a, b| a.name.cmp(&b.name));
    edges.sort_by(|a, b| b.weight.total_cmp(&a.weight));
    Ok(Some(Neighbourhood {
        center,
        entities,
        edges,
    }))
}

/// The user's entities whose name or an alias matches one of `names`, by id.
pub(crate) async fn find_entities(
    lookups: &dyn GraphLookups,
    scope: &Scope,
    names: &[String],
) -> Result<Vec<Entity>> {
    let keys = name_keys(names);
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let ids = lookups.ids_by_keys(scope, &keys).await?;
    let mut entities = lookups.entities_by_ids(scope, &ids).await?;
    entities.sort_by_key(|e| e.id);
    entities.dedup_by_key(|e| e.id);
    Ok(entities)
}
