//! Extractive, deterministic session summaries: the session's most informative sentences,
//! verbatim, in their original order, each attributed to its speaker.
//!
//! Sentences are scored by the session's keyword weights (so what the session is about
//! wins over small talk), plus a bonus for named entities and for first-person statements
//! (what the user says about themselves is what a memory needs most). Near-duplicates of a
//! chosen sentence are skipped so the budget is not spent twice on one fact.

use std::collections::{HashMap, HashSet};

use mnemo_storage::model::{Role, Turn};

use super::entities::extract_entities;
use super::keywords::{is_stopword, scored_keywords, spans, term};
use super::word_set::WordSet;

/// Keywords reported with a summary.
const SUMMARY_KEYWORDS: usize = 8;
/// Keywords whose weights score sentences: the session's salient terms, not every word.
const SCORING_KEYWORDS: usize = 30;
/// Bonus per named entity in a sentence.
const ENTITY_BONUS: f64 = 0.5;
/// Bonus per topic ("pottery class") in a sentence: weaker evidence than a name.
const TOPIC_BONUS: f64 = 0.3;
/// Most entity bonus one sentence can collect.
const MAX_ENTITY_BONUS: f64 = 1.5;
/// Bonus for a first-person statement of some substance.
const DISCLOSURE_BONUS: f64 = 0.5;
/// Sentences sharing more than this share of their content words with a chosen one are
/// near-duplicates.
const MAX_SIMILARITY: f64 = 0.6;

/// An extractive summary of a session.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionSummary {
    /// Chosen sentences in original order, as "Speaker: sentence", within the char budget.
    pub text: String,
    /// The session's top keywords, best first.
    pub keywords: Vec<String>,
}

/// One sentence of the session.
struct Sentence<'a> {
    turn: usize,
    text: &'a str,
    score: f64,
    /// Content words, for near-duplicate detection.
    words: WordSet,
}

/// Summarises `turns` (in the order given) in at most `max_sentences` sentences and
/// `max_chars` characters: the best-scoring sentences, near-duplicates skipped, output in
/// original order as "Speaker: sentence" (the speaker's name, else the role), consecutive
/// sentences of one turn sharing the prefix, cut at a word boundary with "…" if still too
/// long. Ties go to the earlier sentence, so the same turns always give the same summary.
/// `None` when the turns hold no words, or either limit is zero.
pub fn summarize(turns: &[Turn], max_sentences: usize, max_chars: usize) -> Option<SessionSummary> {
    if max_sentences == 0 || max_chars == 0 {
        return None;
    }
    let contents: Vec<&str> = turns.iter().map(|t| t.content.as_str()).collect();
    let scored = scored_keywords(&contents, SCORING_KEYWORDS.max(SUMMARY_KEYWORDS));
    // The list is sorted before it is cut, so its head is exactly `keywords(.., 8)`.
    let top: Vec<String> = scored
        .iter()
        .take(SUMMARY_KEYWORDS)
        .map(|(k, _)| k.clone())
        .collect();
    let weights: HashMap<String, f64> = scored.into_iter().collect();
    let labels: Vec<String> = turns.iter().map(label).collect();

    let mut sentences: Vec<Sentence<'_>> = Vec::new();
    for (turn, content) in contents.iter().enumerate() {
        for text in split_sentences(content) {
            let (score, words) = score_sentence(text, &weights);
            sentences.push(Sentence {
                turn,
                text,
                score,
                words,
            });
        }
    }
    if sentences.is_empty() {
        return None;
    }

    let mut ranked: Vec<usize> = (0..sentences.len()).collect();
    ranked.sort_by(|&a, &b| {
        sentences[b]
            .score
            .total_cmp(&sentences[a].score)
            .then(a.cmp(&b))
    });
    let mut chosen: Vec<usize> = Vec::new();
    let mut used = 0usize;
    for &i in &ranked {
        if chosen.len() == max_sentences {
            break;
        }
        let s = &sentences[i];
        // Small talk ("ok", "lol") scores nothing and is only used when nothing else is.
        if s.score <= 0.0 {
            break;
        }
        if chosen
            .iter()
            .any(|&c| sentences[c].words.jaccard(&s.words) > MAX_SIMILARITY)
        {
            continue;
        }
        // Upper bound of what the sentence adds ("Label: " + text + " "); sharing a
        // prefix with a neighbour only makes it shorter. The best sentence is always
        // taken, and cut below if it alone is too long.
        let cost = labels[s.turn].chars().count() + 2 + s.text.chars().count() + 1;
        if !chosen.is_empty() && used + cost > max_chars + 1 {
            continue;
        }
        used += cost;
        chosen.push(i);
    }
    if chosen.is_empty() {
        chosen.push(0);
    }
    chosen.sort_unstable();

    let mut text = String::new();
    let mut last_turn = None;
    for &i in &chosen {
        let s = &sentences[i];
        if !text.is_empty() {
            text.push(' ');
        }
        if last_turn != Some(s.turn) {
            text.push_str(&labels[s.turn]);
            text.push_str(": ");
        }
        text.push_str(s.text);
        last_turn = Some(s.turn);
    }
    Some(SessionSummary {
        text: truncate(&text, max_chars),
        keywords: top,
    })
}

/// Who spoke a turn: the speaker's display name, else the role, capitalised.
fn label(turn: &Turn) -> String {
    let speaker: String = turn
        .speaker
        .as_deref()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    let speaker = speaker.trim();
    if !speaker.is_empty() {
        return speaker.to_string();
    }
    match turn.role {
        Role::User => "User",
        Role::Assistant => "Assistant",
        Role::System => "System",
    }
    .to_string()
}

/// Abbreviations whose period does not end a sentence.
fn is_abbreviation(word: &str) -> bool {
    let mut chars = word.chars();
    // An initial ("J."), not a number ("I have 2.").
    let initial = chars.next().is_some_and(char::is_uppercase) && chars.next().is_none();
    initial
        || matches!(
            word.to_ascii_lowercase().as_str(),
            "mr" | "mrs"
                | "ms"
                | "dr"
                | "prof"
                | "st"
                | "mt"
                | "jr"
                | "sr"
                | "vs"
                | "etc"
                | "e.g"
                | "i.e"
                | "inc"
                | "ltd"
                | "co"
        )
}

/// The sentences of `text`, trimmed, without those holding no letters or digits. Ends at
/// `.`, `!`, `?`, `…` (and their CJK forms) followed by a space or the end, and at line
/// breaks; a period after an abbreviation or an initial does not end a sentence.
fn split_sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let end = match c {
            '\n' | '\r' => Some(i),
            '\u{3002}' | '\u{ff01}' | '\u{ff1f}' => Some(i + c.len_utf8()),
            '.' | '!' | '?' | '\u{2026}' => {
                // Take the whole run of marks and closing quotes: "?!", "...", ".\"".
                let mut end = i + c.len_utf8();
                while let Some(&(j, d)) = chars.peek() {
                    if matches!(
                        d,
                        '.' | '!' | '?' | '\u{2026}' | '"' | '\'' | '\u{201d}' | '\u{2019}' | ')'
                    ) {
                        end = j + d.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                let at_break = chars.peek().is_none_or(|&(_, d)| d.is_whitespace());
                let word_before = text[start..i]
                    .rsplit(|ch: char| ch.is_whitespace())
                    .next()
                    .unwrap_or_default();
                let abbreviation = c == '.' && end == i + 1 && is_abbreviation(word_before);
                (at_break && !abbreviation).then_some(end)
            }
            _ => None,
        };
        if let Some(end) = end {
            push_sentence(&mut out, &text[start..end]);
            start = end;
        }
    }
    push_sentence(&mut out, &text[start..]);
    out
}

fn push_sentence<'a>(out: &mut Vec<&'a str>, candidate: &'a str) {
    let s = candidate.trim();
    if s.chars().any(char::is_alphanumeric) {
        out.push(s);
    }
}

/// A sentence's score and its content words.
fn score_sentence(text: &str, weights: &HashMap<String, f64>) -> (f64, WordSet) {
    let mut seen: HashSet<String> = HashSet::new();
    let mut all: HashSet<String> = HashSet::new();
    let mut score = 0.0;
    let mut first_person = false;
    let mut prev: Option<(String, usize)> = None;
    // Summed in sentence order, so the float result does not depend on hash order.
    for (s, e) in spans(text) {
        let t = term(&text[s..e]).into_owned();
        first_person |= matches!(
            t.as_str(),
            "i" | "i'm"
                | "im"
                | "i've"
                | "ive"
                | "i'd"
                | "i'll"
                | "my"
                | "me"
                | "we"
                | "we're"
                | "our"
        );
        if let Some((p, pe)) = &prev {
            if text[*pe..s].chars().all(char::is_whitespace) {
                let bigram = format!("{p} {t}");
                if let Some(w) = weights.get(&bigram) {
                    if seen.insert(bigram) {
                        score += w;
                    }
                }
            }
        }
        if let Some(w) = weights.get(&t) {
            if !seen.contains(&t) {
                score += w;
            }
        }
        if !is_stopword(&t) {
            seen.insert(t.clone());
        }
        all.insert(t.clone());
        prev = Some((t, e));
    }
    let content: Vec<&str> = seen
        .iter()
        .map(String::as_str)
        .filter(|w| !w.contains(' '))
        .collect();
    if score > 0.0 {
        let mut bonus = 0.0;
        for e in extract_entities(text) {
            bonus += if e.kind == "topic" {
                TOPIC_BONUS
            } else {
                ENTITY_BONUS
            };
        }
        score += bonus.min(MAX_ENTITY_BONUS);
        if first_person && all.len() >= 4 {
            score += DISCLOSURE_BONUS;
        }
    }
    let words = if content.is_empty() {
        WordSet::of_words(all.iter().map(String::as_str))
    } else {
        WordSet::of_words(content)
    };
    (score, words)
}

/// `text` cut to at most `max_chars` chars at a word boundary, marked with "…" when cut.
fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    // Leave room for the ellipsis.
    let budget = max_chars.saturating_sub(1);
    let cut = text
        .char_indices()
        .nth(budget)
        .map_or(text.len(), |(i, _)| i);
    let head = &text[..cut];
    let head = if text[cut..].starts_with(char::is_whitespace) {
        head
    } else {
        head.rfind(char::is_whitespace).map_or(head, |i| &head[..i])
    };
    let head =
        head.trim_end_matches(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | ':' | '-'));
    if head.is_empty() {
        // A single word longer than the budget: a hard cut beats an empty summary.
        return text.chars().take(max_chars).collect();
    }
    format!("{head}\u{2026}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::keywords::keywords;
    use mnemo_storage::model::{ExternalId, Scope, SessionId, TurnId};

    fn turn(id: i64, role: Role, speaker: Option<&str>, content: &str) -> Turn {
        let time = chrono::DateTime::from_timestamp(1_700_000_000 + id, 0).unwrap_or_default();
        Turn {
            id: TurnId(id),
            external_id: ExternalId::new(format!("t{id}")).expect("external id"),
            scope: Scope::parse("acme", "alice").expect("scope"),
            session_id: SessionId::new("s1").expect("session id"),
            role,
            speaker: speaker.map(str::to_string),
            content: content.to_string(),
            event_time: time,
            ingest_time: time,
            metadata: serde_json::json!({}),
            emotion: None,
            importance: None,
        }
    }

    fn session() -> Vec<Turn> {
        vec![
            turn(1, Role::User, Some("Alice"), "hey"),
            turn(2, Role::Assistant, None, "Hi Alice! How are you?"),
            turn(
                3,
                Role::User,
                Some("Alice"),
                "ok. I adopted a cat named Miso last week. lol",
            ),
            turn(4, Role::Assistant, None, "haha yeah"),
            turn(
                5,
                Role::User,
                Some("Alice"),
                "Miso loves the pottery studio where I take my pottery class.",
            ),
            turn(6, Role::User, Some("Alice"), "ok"),
            turn(
                7,
                Role::User,
                Some("Alice"),
                "My pottery teacher says Miso can stay during pottery class.",
            ),
        ]
    }

    #[test]
    fn picks_informative_sentences_in_order() {
        let got = summarize(&session(), 3, 500).expect("summary");
        let text = &got.text;
        assert!(
            text.starts_with("Alice: I adopted a cat named Miso last week."),
            "{text}"
        );
        let adopted = text.find("adopted").expect("adopted");
        let studio = text.find("pottery studio").expect("studio");
        let teacher = text.find("pottery teacher").expect("teacher");
        assert!(adopted < studio && studio < teacher, "{text}");
        for filler in ["ok", "lol", "haha", "hey"] {
            assert!(
                !text
                    .split_whitespace()
                    .any(|w| w.trim_matches('.') == filler),
                "{filler}: {text}"
            );
        }
        assert_eq!(
            got.keywords.first().map(String::as_str),
            Some("pottery"),
            "{got:?}"
        );
        let turns = session();
        let contents: Vec<&str> = turns.iter().map(|t| t.content.as_str()).collect();
        assert_eq!(got.keywords, keywords(&contents, SUMMARY_KEYWORDS));
    }

    #[test]
    fn respects_sentence_and_char_limits() {
        let one = summarize(&session(), 1, 500).expect("summary");
        assert_eq!(one.text.matches("Alice:").count(), 1, "{}", one.text);
        for max in [10, 40, 80, 120] {
            let got = summarize(&session(), 5, max).expect("summary");
            assert!(got.text.chars().count() <= max, "{max}: {}", got.text);
            assert!(!got.text.is_empty());
        }
        let cut = summarize(&session(), 5, 40).expect("summary");
        assert!(cut.text.ends_with('\u{2026}'), "{}", cut.text);
        // Cut between words, not inside one.
        let head = cut.text.trim_end_matches('\u{2026}');
        // The 40-char budget only fits the best sentence, so compare with it alone.
        let full = summarize(&session(), 1, 10_000).expect("summary");
        assert!(full.text.starts_with(head), "{head} / {}", full.text);
        let next = full.text[head.len()..].chars().next();
        assert!(
            next.is_some_and(char::is_whitespace),
            "{head} / {}",
            full.text
        );
    }

    #[test]
    fn skips_near_duplicates() {
        let turns = vec![
            turn(1, Role::User, None, "I love my pottery class so much."),
            turn(2, Role::User, None, "I love my pottery class."),
            turn(
                3,
                Role::User,
                None,
                "The pottery studio is downtown near the river.",
            ),
        ];
        let got = summarize(&turns, 3, 500).expect("summary");
        assert_eq!(
            got.text.matches("love my pottery class").count(),
            1,
            "{}",
            got.text
        );
        assert!(got.text.contains("downtown"), "{}", got.text);
        assert!(got.text.starts_with("User: "), "{}", got.text);
    }

    #[test]
    fn speaker_prefixes() {
        let turns = vec![
            turn(
                1,
                Role::User,
                Some("Alice"),
                "I adopted a kitten named Miso.",
            ),
            turn(
                2,
                Role::Assistant,
                None,
                "Miso is a lovely kitten name for a tabby.",
            ),
            turn(
                3,
                Role::User,
                Some("  "),
                "Miso sleeps on my keyboard. Miso also bites.",
            ),
        ];
        let got = summarize(&turns, 5, 1_000).expect("summary");
        assert!(got.text.contains("Alice: I adopted"), "{}", got.text);
        assert!(got.text.contains("Assistant: Miso is"), "{}", got.text);
        // One prefix for consecutive sentences of one turn; a blank speaker falls back
        // to the role.
        assert!(
            got.text
                .contains("User: Miso sleeps on my keyboard. Miso also bites."),
            "{}",
            got.text
        );
    }

    #[test]
    fn deterministic_across_runs() {
        let a = summarize(&session(), 2, 200);
        let b = summarize(&session(), 2, 200);
        assert!(a.is_some());
        assert_eq!(a, b);
        // Equal scores: the earlier sentence wins.
        let turns = vec![
            turn(1, Role::User, None, "zebra apple"),
            turn(2, Role::User, None, "apple zebra"),
        ];
        let got = summarize(&turns, 1, 500).expect("summary");
        assert_eq!(got.text, "User: zebra apple");
    }

    #[test]
    fn none_without_content_and_fallback_for_small_talk() {
        assert_eq!(summarize(&[], 3, 100), None);
        let blank = vec![turn(1, Role::User, None, " ... !!! ''''")];
        assert_eq!(summarize(&blank, 3, 100), None);
        assert_eq!(summarize(&session(), 0, 100), None);
        assert_eq!(summarize(&session(), 3, 0), None);
        let small_talk = vec![
            turn(1, Role::User, None, "ok"),
            turn(2, Role::User, None, "lol"),
        ];
        let got = summarize(&small_talk, 3, 100).expect("summary");
        assert_eq!(got.text, "User: ok");
        assert!(got.keywords.is_empty());
    }

    #[test]
    fn splits_sentences_sensibly() {
        assert_eq!(
            split_sentences("Dr. Smith met J. Doe at 5.30! Really?! Yes...\nnew line 東京。行く"),
            vec![
                "Dr. Smith met J. Doe at 5.30!",
                "Really?!",
                "Yes...",
                "new line 東京。",
                "行く"
            ]
        );
        assert!(split_sentences("''''").is_empty());
    }

    #[test]
    fn adversarial_turns_do_not_panic() {
        let long = "word ".repeat(2_500);
        let texts = [
            "😀😀😀",
            "東京タワーに行きました。楽しかった！",
            "مرحبا بالعالم. كيف حالك؟",
            "''''",
            long.as_str(),
            "a.b.c.d.e.f",
        ];
        let turns: Vec<Turn> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| turn(i as i64 + 1, Role::User, None, t))
            .collect();
        for max in [1, 2, 5, 50, 10_000] {
            if let Some(s) = summarize(&turns, 3, max) {
                assert!(s.text.chars().count() <= max);
                assert!(!s.text.is_empty());
            }
        }
    }

    #[test]
    fn truncates_at_word_boundaries() {
        assert_eq!(truncate("hello world", 20), "hello world");
        assert_eq!(truncate("hello wonderful world", 12), "hello\u{2026}");
        assert_eq!(truncate("hello world again", 12), "hello world\u{2026}");
        // No boundary to cut at: a hard cut, still marked.
        assert_eq!(truncate("supercalifragilistic", 5), "supe\u{2026}");
        assert_eq!(truncate("supercalifragilistic", 1), "s");
        assert_eq!(truncate("héllo wörld", 8), "héllo\u{2026}");
    }
}
