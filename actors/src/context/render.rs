//! Rendering context as prompt text within a token budget (cl100k tokens): the user's
//! mood, the newest recent turns that fit, then the ranked items while they fit. A pure
//! function, run on the assembler's thread.

use mnemo_storage::model::{EmotionState, Turn};
use tiktoken_rs::CoreBPE;

use super::ranking::{speaker_of, ContextItem, ItemKind};

/// The line a turn is rendered as.
pub fn turn_line(turn: &Turn) -> String {
    format!(
        "[{}] {}: {}",
        turn.event_time.format("%Y-%m-%d %H:%M"),
        speaker_of(turn),
        turn.content
    )
}

/// The prompt text and what went into it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The recent turns kept, oldest first.
    pub recent: Vec<Turn>,
    /// The items kept, best first.
    pub items: Vec<ContextItem>,
    /// The prompt text.
    pub prompt: String,
    /// Its length in tokens.
    pub tokens: usize,
}

/// Counts tokens as the model's tokenizer does.
pub fn count_tokens(bpe: &CoreBPE, text: &str) -> usize {
    bpe.encode_ordinary(text).len()
}

fn emotion_line(state: &EmotionState) -> String {
    let mut labels: Vec<(&String, &f32)> = state.scores.labels.iter().collect();
    labels.sort_by(|a, b| b.1.total_cmp(a.1).then(a.0.cmp(b.0)));
    let top: Vec<String> = labels
        .iter()
        .filter(|(_, v)| **v > 0.05)
        .take(3)
        .map(|(k, v)| format!("{k} {v:.2}"))
        .collect();
    format!(
        "valence {:+.2}, arousal {:.2}{}{}",
        state.scores.valence,
        state.scores.arousal,
        if top.is_empty() { "" } else { "; " },
        top.join(", ")
    )
}

/// Renders the prompt within `budget` tokens: the mood line, then the newest recent
/// turns that fit (shown oldest first), then items best first while they fit.
pub fn render(
    bpe: &CoreBPE,
    recent: &[Turn],
    items: Vec<ContextItem>,
    emotion: Option<&EmotionState>,
    budget: usize,
) -> Rendered {
    // Pieces are counted one by one; the whole text can tokenize a little differently
    // at the seams, so drop the weakest piece until the exact count fits.
    let mut rendered = render_pieces(bpe, recent, items, emotion, budget);
    while rendered.tokens > budget {
        if rendered.items.pop().is_none() && rendered.recent.is_empty() {
            break;
        }
        let recent = if rendered.items.is_empty() && !rendered.recent.is_empty() {
            rendered.recent[1..].to_vec()
        } else {
            rendered.recent.clone()
        };
        rendered = render_pieces(bpe, &recent, rendered.items, emotion, budget);
    }
    rendered
}

fn render_pieces(
    bpe: &CoreBPE,
    recent: &[Turn],
    items: Vec<ContextItem>,
    emotion: Option<&EmotionState>,
    budget: usize,
) -> Rendered {
    let mut used = 0;
    let mut take = |text: &str| -> bool {
        let cost = count_tokens(bpe, text) + 1;
        if used + cost > budget {
            return false;
        }
        used += cost;
        true
    };
    let mood = emotion.map(|e| format!("## User mood\n{}\n", emotion_line(e)));
    let mood = mood.filter(|m| take(m));

    let mut kept_recent: Vec<Turn> = Vec::new();
    let mut recent_lines: Vec<String> = Vec::new();
    if take("## Recent conversation\n") {
        for turn in recent.iter().rev() {
            let line = turn_line(turn);
            if !take(&line) {
                break;
            }
            recent_lines.push(line);
            kept_recent.push(turn.clone());
        }
    }
    kept_recent.reverse();
    recent_lines.reverse();

    let mut kept_items = Vec::new();
    let mut memory_lines = Vec::new();
    let mut entity_lines = Vec::new();
    let memories_header = take("## Relevant memories\n");
    for item in items {
        let line = match (item.kind, item.event_time) {
            (ItemKind::Entity, _) => format!("- {}", item.text),
            (_, Some(t)) => format!("- [{}] {}", t.format("%Y-%m-%d"), item.text),
            (_, None) => format!("- {}", item.text),
        };
        if !memories_header || !take(&line) {
            continue;
        }
        if item.kind == ItemKind::Entity {
            entity_lines.push(line);
        } else {
            memory_lines.push(line);
        }
        kept_items.push(item);
    }

    let mut prompt = String::new();
    if let Some(mood) = mood {
        prompt.push_str(&mood);
    }
    if !recent_lines.is_empty() {
        prompt.push_str("## Recent conversation\n");
        for line in &recent_lines {
            prompt.push_str(line);
            prompt.push('\n');
        }
    }
    if !memory_lines.is_empty() || !entity_lines.is_empty() {
        prompt.push_str("## Relevant memories\n");
        for line in memory_lines.iter().chain(&entity_lines) {
            prompt.push_str(line);
            prompt.push('\n');
        }
    }
    let tokens = count_tokens(bpe, &prompt);
    Rendered {
        recent: kept_recent,
        items: kept_items,
        prompt,
        tokens,
    }
}

#[cfg(test)]
mod tests {
    use mnemo_storage::model::TurnId;

    use super::*;
    use crate::context::ranking::tests::turn;

    #[test]
    fn rendering_stays_within_the_token_budget() {
        let bpe = tiktoken_rs::cl100k_base().unwrap();
        let recent: Vec<Turn> = (1..=20)
            .map(|i| turn(i, &format!("recent line number {i} with some words in it")))
            .collect();
        let items: Vec<ContextItem> = (0..20)
            .map(|i| ContextItem {
                kind: ItemKind::Turn,
                id: 100 + i,
                text: format!("memory {i}: a longer remembered sentence about many things"),
                score: 1.0 - i as f64 / 100.0,
                event_time: None,
                session_id: None,
            })
            .collect();
        for budget in [0, 10, 50, 120, 400, 5000] {
            let rendered = render(&bpe, &recent, items.clone(), None, budget);
            assert!(
                rendered.tokens <= budget,
                "{} tokens over {budget}",
                rendered.tokens
            );
            assert_eq!(rendered.tokens, count_tokens(&bpe, &rendered.prompt));
            if budget >= 120 {
                assert!(!rendered.recent.is_empty());
                assert_eq!(
                    rendered.recent.last().unwrap().id,
                    TurnId(20),
                    "newest kept first"
                );
            }
        }
        let all = render(&bpe, &recent, items.clone(), None, 5000);
        assert_eq!((all.recent.len(), all.items.len()), (20, 20));
    }
}
