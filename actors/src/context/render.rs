//! Rendering context as prompt text within a token budget (cl100k tokens): the user's
//! mood, the newest recent turns that fit, then the ranked items while they fit. A pure
//! function, run on the assembler's thread.
//!
//! The prompt is made of pieces that each end with a newline, and the next begins with
//! no whitespace (`## `, `[`, `- `): no token of cl100k spans such a seam, so the tokens
//! of the prompt are the sum of its pieces' tokens, each counted once and remembered.

use mnemo_storage::model::{EmotionState, Turn};

use super::ranking::{speaker_of, ContextItem, ItemKind};
use super::tokens::TokenCounter;

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
    tokens: &TokenCounter,
    recent: &[Turn],
    items: Vec<ContextItem>,
    emotion: Option<&EmotionState>,
    budget: usize,
) -> Rendered {
    // Pieces are counted one by one, and their sum is the prompt's count (see the module
    // docs); should a piece ever break that, drop the weakest until the prompt fits.
    let mut rendered = render_pieces(tokens, recent, items, emotion, budget);
    while rendered.tokens > budget {
        if rendered.items.pop().is_none() && rendered.recent.is_empty() {
            break;
        }
        let recent = if rendered.items.is_empty() && !rendered.recent.is_empty() {
            rendered.recent[1..].to_vec()
        } else {
            rendered.recent.clone()
        };
        rendered = render_pieces(tokens, &recent, rendered.items, emotion, budget);
    }
    rendered
}

fn render_pieces(
    tokens: &TokenCounter,
    recent: &[Turn],
    items: Vec<ContextItem>,
    emotion: Option<&EmotionState>,
    budget: usize,
) -> Rendered {
    let mut used = 0;
    // Takes a piece (ending with a newline) if it fits, giving its tokens.
    let mut take = |piece: &str| -> Option<usize> {
        let cost = tokens.count_piece(piece);
        if used + cost > budget {
            return None;
        }
        used += cost;
        Some(cost)
    };
    const RECENT: &str = "## Recent conversation\n";
    const MEMORIES: &str = "## Relevant memories\n";
    let mood = emotion
        .map(|e| format!("## User mood\n{}\n", emotion_line(e)))
        .and_then(|m| take(&m).map(|cost| (m, cost)));

    let mut kept_recent: Vec<Turn> = Vec::new();
    let mut recent_lines: Vec<(String, usize)> = Vec::new();
    let recent_header = take(RECENT);
    if recent_header.is_some() {
        for turn in recent.iter().rev() {
            let line = format!("{}\n", turn_line(turn));
            let Some(cost) = take(&line) else {
                break;
            };
            recent_lines.push((line, cost));
            kept_recent.push(turn.clone());
        }
    }
    kept_recent.reverse();
    recent_lines.reverse();

    let mut kept_items = Vec::new();
    let mut memory_lines = Vec::new();
    let mut entity_lines = Vec::new();
    let memories_header = take(MEMORIES);
    for item in items {
        let line = match (item.kind, item.event_time) {
            (ItemKind::Entity, _) => format!("- {}\n", item.text),
            (_, Some(t)) => format!("- [{}] {}\n", t.format("%Y-%m-%d"), item.text),
            (_, None) => format!("- {}\n", item.text),
        };
        if memories_header.is_none() {
            continue;
        }
        let Some(cost) = take(&line) else {
            continue;
        };
        if item.kind == ItemKind::Entity {
            entity_lines.push((line, cost));
        } else {
            memory_lines.push((line, cost));
        }
        kept_items.push(item);
    }

    let mut prompt = String::new();
    let mut total = 0;
    let mut put = |piece: &str, cost: usize| {
        prompt.push_str(piece);
        total += cost;
    };
    if let Some((mood, cost)) = &mood {
        put(mood, *cost);
    }
    if let (Some(cost), false) = (recent_header, recent_lines.is_empty()) {
        put(RECENT, cost);
        for (line, cost) in &recent_lines {
            put(line, *cost);
        }
    }
    if let (Some(cost), false) = (
        memories_header,
        memory_lines.is_empty() && entity_lines.is_empty(),
    ) {
        put(MEMORIES, cost);
        for (line, cost) in memory_lines.iter().chain(&entity_lines) {
            put(line, *cost);
        }
    }
    Rendered {
        recent: kept_recent,
        items: kept_items,
        prompt,
        tokens: total,
    }
}

#[cfg(test)]
mod tests {
    use mnemo_storage::model::TurnId;

    use super::*;
    use crate::context::ranking::tests::turn;

    #[test]
    fn rendering_stays_within_the_token_budget() {
        let tokens = TokenCounter::new(tiktoken_rs::cl100k_base().unwrap());
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
            let rendered = render(&tokens, &recent, items.clone(), None, budget);
            assert!(
                rendered.tokens <= budget,
                "{} tokens over {budget}",
                rendered.tokens
            );
            assert_eq!(rendered.tokens, tokens.count(&rendered.prompt));
            if budget >= 120 {
                assert!(!rendered.recent.is_empty());
                assert_eq!(
                    rendered.recent.last().unwrap().id,
                    TurnId(20),
                    "newest kept first"
                );
            }
        }
        let all = render(&tokens, &recent, items.clone(), None, 5000);
        assert_eq!((all.recent.len(), all.items.len()), (20, 20));
    }

    /// The prompt's tokens are the sum of its pieces' whatever their text ends or begins
    /// with (punctuation, spaces, newlines, digits, other scripts).
    #[test]
    fn the_tokens_of_the_pieces_add_up_to_the_prompts() {
        let tokens = TokenCounter::new(tiktoken_rs::cl100k_base().unwrap());
        let texts = [
            "Ends with a full stop.",
            "ends with spaces   ",
            "two lines\nand a blank one\n\n",
            "\tstarts with a tab",
            " starts with a space",
            "'s and 're at the start",
            "numbers 1234567 and 3.14159",
            "?!... punctuation only?!",
            "emoji 🎉🎉 and 日本語のテキスト",
            "",
            "trailing newline\n",
            "\r\nwindows line\r\n",
        ];
        let recent: Vec<Turn> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| turn(i as i64 + 1, t))
            .collect();
        let items: Vec<ContextItem> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| ContextItem {
                kind: if i % 3 == 0 {
                    ItemKind::Entity
                } else {
                    ItemKind::Turn
                },
                id: 100 + i as i64,
                text: (*t).to_owned(),
                score: 1.0,
                event_time: None,
                session_id: None,
            })
            .collect();
        for budget in [5, 40, 100, 5000] {
            let rendered = render(&tokens, &recent, items.clone(), None, budget);
            assert_eq!(
                rendered.tokens,
                tokens.count(&rendered.prompt),
                "{:?}",
                rendered.prompt
            );
            assert!(rendered.tokens <= budget);
        }
    }
}
