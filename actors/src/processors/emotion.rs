//! The emotion processor: folds the user's own turns into their decayed emotion state.
//! A store scores its turns' emotions and importance before the insert; a turn stored
//! without them (while the processor was off, or copied from an archive that had none) is
//! scored here from the lexicon (on the processor's own thread) and annotated. Folding
//! skips turns already folded, so a replay counts nothing twice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mnemo_storage::model::{EmotionScores, Role, Scope, Turn, TurnAnnotation};

use super::tombstones::Guard;
use super::{Processor, Step};
use crate::analysis::emotion_scoring::{fold, turn_scores, EmotionLexicon};
use crate::config::EmotionConfig;
use crate::error::Result;

/// Checkpoint key and actor name.
pub const NAME: &str = "emotion";

/// The emotion processor.
#[derive(Debug, Clone)]
pub struct EmotionProcessor {
    lexicon: Arc<EmotionLexicon>,
    half_life: Duration,
}

impl EmotionProcessor {
    /// A processor scoring with `lexicon`.
    pub fn new(lexicon: Arc<EmotionLexicon>, config: &EmotionConfig) -> Self {
        Self {
            lexicon,
            half_life: Duration::from_secs_f64(config.half_life_hours.max(0.001) * 3600.0),
        }
    }
}

#[async_trait]
impl Processor for EmotionProcessor {
    /// Per turn, the scores made here (`None`: stored with the turn).
    type Analysis = Vec<Option<(EmotionScores, f32)>>;

    const NAME: &'static str = NAME;

    fn analyze(&self, turns: &[Turn]) -> Self::Analysis {
        turns
            .iter()
            .map(|t| match (&t.emotion, t.importance) {
                (Some(_), Some(_)) => None,
                _ => Some(turn_scores(&self.lexicon, &t.content)),
            })
            .collect()
    }

    async fn apply(
        &self,
        turns: &[Turn],
        analysis: Self::Analysis,
        step: &Step,
        _: &Guard<'_>,
    ) -> Result<()> {
        let archive = &step.deps.archive;
        let annotations: Vec<TurnAnnotation> = turns
            .iter()
            .zip(&analysis)
            .filter_map(|(t, made)| {
                made.as_ref().map(|(scores, importance)| TurnAnnotation {
                    id: t.id,
                    emotion: Some(scores.clone()),
                    importance: Some(*importance),
                })
            })
            .collect();
        if !annotations.is_empty() {
            archive.annotate(annotations).await?;
        }
        // Only what the user said shapes the user's emotion state.
        let mut by_user: BTreeMap<Scope, Vec<(&Turn, &EmotionScores)>> = BTreeMap::new();
        for (turn, made) in turns.iter().zip(&analysis) {
            let made = made.as_ref().map(|(scores, _)| scores);
            let Some(scores) = made.or(turn.emotion.as_ref()) else {
                continue;
            };
            if turn.role == Role::User {
                by_user
                    .entry(turn.scope.clone())
                    .or_default()
                    .push((turn, scores));
            }
        }
        if by_user.is_empty() {
            return Ok(());
        }
        // One read and one write for every user of the batch: a batch of single turns
        // from many users must not cost a transaction per user.
        let mut states = archive
            .emotion_states(by_user.keys().cloned().collect())
            .await?;
        let mut folded_states = Vec::with_capacity(by_user.len());
        for (scope, folded) in by_user {
            let mut state = states.remove(&scope);
            for (turn, scores) in folded {
                state = Some(fold(
                    state.as_ref(),
                    turn.id,
                    turn.event_time,
                    scores,
                    self.half_life,
                ));
            }
            folded_states.extend(state.map(|state| (scope, state)));
        }
        archive.put_emotion_states(folded_states).await
    }
}
