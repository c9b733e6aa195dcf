//! Lexicon-based emotion scores, turn importance and the decayed per-user emotion state.
//!
//! Everything here is deterministic and local (no model, no network) so that replaying a
//! turn after a restart yields exactly the scores it had before, and so that scoring costs
//! microseconds: one tokenising pass and a hash lookup per token.
//!
//! - [`EmotionLexicon::score`]: per-turn [`EmotionScores`] from our own lexicon
//!   (`emotion_lexicon.tsv`), with negation, intensifiers, exclamation marks and ALL-CAPS.
//! - [`importance`]: how worth remembering a turn is, in [0, 1].
//! - [`fold`]: the user's running aggregate, decayed by a half-life and idempotent by turn.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use mnemo_storage::model::{EmotionScores, EmotionState, Timestamp, TurnId};

/// The emotion labels every [`EmotionScores`] produced here carries, in a fixed order.
pub const EMOTIONS: [&str; 8] = [
    "joy",
    "sadness",
    "anger",
    "fear",
    "surprise",
    "disgust",
    "trust",
    "anticipation",
];

const JOY: usize = 0;
const SADNESS: usize = 1;
const ANGER: usize = 2;
const FEAR: usize = 3;
const SURPRISE: usize = 4;
const DISGUST: usize = 5;
const TRUST: usize = 6;
const ANTICIPATION: usize = 7;

/// The shipped lexicon; compiled in so the engine has no data file to lose at runtime.
const BUILTIN_TSV: &str = include_str!("emotion_lexicon.tsv");

/// How many tokens after a negator it still applies to ("not at all happy").
const NEGATION_SCOPE: u8 = 3;
/// A negated word's valence is flipped and damped: "not happy" is less negative than "sad".
const NEGATED_VALENCE: f32 = -0.5;
/// Negated statements are calmer than the word itself.
const NEGATED_AROUSAL: f32 = 0.7;

/// Where a negated emotion goes, and how much of it: "not happy" reads as mild sadness,
/// "not afraid" as some trust, "don't trust" as wariness. `emotion` indexes [`EMOTIONS`].
fn negation_shift(emotion: usize) -> &'static [(usize, f32)] {
    match emotion {
        JOY => &[(SADNESS, 0.5)],
        SADNESS => &[(JOY, 0.2)],
        ANGER | DISGUST => &[(TRUST, 0.2)],
        FEAR => &[(TRUST, 0.4)],
        SURPRISE => &[(ANTICIPATION, 0.2)],
        TRUST => &[(FEAR, 0.3), (ANGER, 0.2)],
        ANTICIPATION => &[(SADNESS, 0.3)],
        _ => &[],
    }
}

/// Weight of a comparative after "never"/"couldn't" ("never been happier").
const SUPERLATIVE_BOOST: f32 = 1.3;
/// How many following tokens an intensifier waits for an emotional word.
const MODIFIER_REACH: u8 = 2;
/// Stacked intensifiers ("very very very") stop compounding here.
const MODIFIER_RANGE: (f32, f32) = (0.25, 2.5);
/// Boost for a shouted (ALL-CAPS) emotional word.
const CAPS_BOOST: f32 = 1.3;
/// Exclamation marks counted at most; more do not add intensity.
const MAX_BANGS: usize = 3;
/// Per counted `!`: extra intensity of labels and valence, and extra arousal.
const BANG_INTENSITY: f32 = 0.1;
const BANG_AROUSAL: f32 = 0.05;
/// Per ALL-CAPS word: extra arousal, for at most this many words.
const CAPS_AROUSAL: f32 = 0.05;
const MAX_CAPS_WORDS: usize = 3;
/// Words longer than this are not stemmed or de-elongated (CJK runs, URLs, base64).
const MAX_STEM_BYTES: usize = 48;
/// Shortest stem accepted by the suffix stripper; shorter ones match too much.
const MIN_STEM_CHARS: usize = 3;

/// One lexicon entry: per-emotion weights, valence and arousal.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    emotions: [f32; 8],
    valence: f32,
    arousal: f32,
}

/// An emotion lexicon and the scorer that uses it.
///
/// Keys are lower-case words, two-word phrases (looked up before their first word, so
/// "can't wait" is not read as a negation), single-code-point emoji and ASCII emoticons.
#[derive(Clone)]
pub struct EmotionLexicon {
    entries: HashMap<String, Entry>,
    /// First words of the two-word phrases, so the scorer only builds a phrase key when
    /// one can match.
    phrase_heads: HashSet<String>,
    /// ASCII emoticons, longest first so ">:(" wins over ":(".
    emoticons: Vec<String>,
}

impl fmt::Debug for EmotionLexicon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A thousand entries are noise in logs; the size is what matters.
        f.debug_struct("EmotionLexicon")
            .field("entries", &self.entries.len())
            .field("phrases", &self.phrase_heads.len())
            .field("emoticons", &self.emoticons.len())
            .finish()
    }
}

impl EmotionLexicon {
    /// The lexicon shipped with Mnemo (`emotion_lexicon.tsv`), parsed on first use and
    /// cloned from that parse afterwards.
    ///
    /// # Panics
    ///
    /// If the shipped file is malformed, which is a build defect caught by the tests.
    pub fn builtin() -> Self {
        Self::shared().clone()
    }

    /// The shipped lexicon as a process-wide shared value, for callers that only need
    /// to borrow it.
    ///
    /// # Panics
    ///
    /// As [`EmotionLexicon::builtin`].
    pub fn shared() -> &'static Self {
        static BUILTIN: OnceLock<EmotionLexicon> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            Self::parse(BUILTIN_TSV).expect("the built-in emotion_lexicon.tsv is malformed")
        })
    }

    /// Parses a lexicon in the `emotion_lexicon.tsv` format: per line
    /// `key<TAB>emotion:weight,...<TAB>valence<TAB>arousal` (`-` for no emotion), `#`
    /// comments and blank lines ignored. Errors name the offending line.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut entries = HashMap::new();
        let mut phrase_heads = HashSet::new();
        let mut emoticons = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line_no = index + 1;
            let line = raw.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let err = |msg: String| format!("emotion lexicon line {line_no}: {msg}");
            let fields: Vec<&str> = line.split('\t').collect();
            let &[key, emotions, valence, arousal] = fields.as_slice() else {
                return Err(err(format!(
                    "expected 4 tab-separated fields, found {}",
                    fields.len()
                )));
            };
            let key = normalize_key(key.trim());
            let entry = Entry {
                emotions: parse_emotions(emotions.trim()).map_err(&err)?,
                valence: parse_bounded(valence, -1.0, 1.0).map_err(&err)?,
                arousal: parse_bounded(arousal, 0.0, 1.0).map_err(&err)?,
            };
            match classify_key(&key).map_err(&err)? {
                KeyKind::Word | KeyKind::Emoji => {}
                KeyKind::Phrase(head) => {
                    phrase_heads.insert(head.to_owned());
                }
                KeyKind::Emoticon => emoticons.push(key.clone()),
            }
            if entries.insert(key.clone(), entry).is_some() {
                return Err(err(format!("duplicate key {key:?}")));
            }
        }
        emoticons.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        Ok(Self {
            entries,
            phrase_heads,
            emoticons,
        })
    }

    /// Number of entries (words, phrases, emoji and emoticons).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the lexicon has no entries (then every text scores neutral).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Scores one text.
    ///
    /// Words are looked up as written, then with a common suffix stripped ("scaring"),
    /// then de-elongated ("happyyy"); two-word phrases are tried before single words. A negator (not, no, never, -n't, without, hardly, ...) applies to
    /// the next three tokens or up to punctuation or "but": it flips and damps valence
    /// and moves each emotion to a weaker opposite. Intensifiers (very, so, extremely,
    /// ...) and downtoners (slightly, a bit, ...) scale the next emotional word; an
    /// ALL-CAPS word counts more; exclamation marks add intensity and arousal.
    ///
    /// Labels are `1 - exp(-sum)` of the evidence, so each is in [0, 1] and grows with
    /// more evidence without ever saturating past 1; valence is `tanh` of the summed
    /// valence, in [-1, 1]; arousal is the mean arousal of the emotional words, plus the
    /// exclamation and shouting bumps, in [0, 1]. Text without emotional tokens scores
    /// all labels 0, valence 0 and arousal 0 (or a little for `!` and shouting).
    pub fn score(&self, text: &str) -> EmotionScores {
        let toks = tokenize(text, &self.emoticons);
        let mut acc = Accumulator::default();
        let mut negation_left: u8 = 0;
        let mut modifier = 1.0f32;
        let mut modifier_left: u8 = 0;
        let mut caps_words = 0usize;
        let mut caps_hits = 0usize;
        let mut superlative_negator = false;
        let mut buf = String::new();
        let tokens = &toks.tokens;
        let mut i = 0;
        while i < tokens.len() {
            let token = &tokens[i];
            if token.kind == Kind::Break {
                // A clause boundary ends both negation and pending intensifiers.
                negation_left = 0;
                modifier = 1.0;
                modifier_left = 0;
                i += 1;
                continue;
            }
            let word = toks.text(token);
            let next_word = tokens
                .get(i + 1)
                .filter(|t| t.kind == Kind::Word)
                .map(|t| toks.text(t));
            let is_word = token.kind == Kind::Word;
            if is_word && token.caps {
                caps_words += 1;
            }
            let negated = negation_left > 0;

            // Two-word phrases come first: "can't wait" and "no worries" are not negations.
            if let Some(next) = next_word.filter(|_| is_word && self.phrase_heads.contains(word)) {
                buf.clear();
                buf.push_str(word);
                buf.push(' ');
                buf.push_str(next);
                if let Some(entry) = self.entries.get(buf.as_str()) {
                    let shouted = token.caps || tokens.get(i + 1).is_some_and(|t| t.caps);
                    caps_hits += usize::from(shouted);
                    let boost = if shouted { CAPS_BOOST } else { 1.0 };
                    acc.add(entry, modifier * boost, negated);
                    modifier = 1.0;
                    modifier_left = 0;
                    negation_left = negation_left.saturating_sub(2);
                    i += 2;
                    continue;
                }
            }
            if is_word {
                if let Some(factor) = next_word.and_then(|next| phrase_modifier(word, next)) {
                    modifier = (modifier * factor).clamp(MODIFIER_RANGE.0, MODIFIER_RANGE.1);
                    modifier_left = MODIFIER_REACH;
                    negation_left = negation_left.saturating_sub(2);
                    i += 2;
                    continue;
                }
                if let Some(factor) = word_modifier(word).or_else(|| elongated_modifier(word)) {
                    modifier = (modifier * factor).clamp(MODIFIER_RANGE.0, MODIFIER_RANGE.1);
                    modifier_left = MODIFIER_REACH;
                    negation_left = negation_left.saturating_sub(1);
                    i += 1;
                    continue;
                }
                if is_negator(word) {
                    negation_left = NEGATION_SCOPE;
                    let previous = i.checked_sub(1).and_then(|p| tokens.get(p));
                    superlative_negator = matches!(word, "never" | "couldn't" | "couldnt")
                        || (word == "not" && previous.is_some_and(|p| toks.text(p) == "could"));
                    i += 1;
                    continue;
                }
                if word == "but" {
                    // "not great, but happy": the contrast closes the negated clause.
                    negation_left = 0;
                    i += 1;
                    continue;
                }
            }

            let entry = if is_word {
                self.lookup(word, &mut buf)
            } else {
                self.entries.get(word)
            };
            match entry {
                Some(entry) => {
                    caps_hits += usize::from(token.caps);
                    let mut weight = modifier * if token.caps { CAPS_BOOST } else { 1.0 };
                    // Emoji and emoticons state the writer's feeling directly: a preceding
                    // "not" is about the words, not the smiley.
                    let mut negate = negated && is_word;
                    if negate && superlative_negator {
                        let previous = i.checked_sub(1).and_then(|p| tokens.get(p));
                        if is_comparative(word) || previous.is_some_and(|p| toks.text(p) == "more")
                        {
                            // "never been happier", "couldn't be more excited": the
                            // negation makes a superlative, not an opposite.
                            negate = false;
                            weight *= SUPERLATIVE_BOOST;
                        }
                    }
                    acc.add(entry, weight, negate);
                    modifier = 1.0;
                    modifier_left = 0;
                }
                None if modifier_left > 0 => {
                    modifier_left -= 1;
                    if modifier_left == 0 {
                        modifier = 1.0;
                    }
                }
                None => {}
            }
            negation_left = negation_left.saturating_sub(1);
            i += 1;
        }
        let shouting = caps_hits > 0 || caps_words >= 2;
        acc.finish(toks.bangs, if shouting { caps_words } else { 0 })
    }

    /// Looks a word up as written, then stemmed, then de-elongated; stemming first
    /// because it is far more common and elongation needs an allocation.
    fn lookup<'a>(&'a self, word: &str, buf: &mut String) -> Option<&'a Entry> {
        if let Some(entry) = self.entries.get(word) {
            return Some(entry);
        }
        if word.len() > MAX_STEM_BYTES {
            return None;
        }
        if is_laughter(word) {
            return self.entries.get("haha");
        }
        if let Some(entry) = self.stemmed(word, buf) {
            return Some(entry);
        }
        if has_long_run(word) {
            // Chat elongation: "sooo" -> "soo" -> "so", "happyyy" -> "happy".
            for max_run in [2, 1] {
                let collapsed = collapse_runs(word, max_run);
                if let Some(entry) = self.entries.get(collapsed.as_str()) {
                    return Some(entry);
                }
                if let Some(entry) = self.stemmed(&collapsed, buf) {
                    return Some(entry);
                }
            }
        }
        None
    }

    /// Tries the word with a common English suffix removed or rewritten.
    fn stemmed<'a>(&'a self, word: &str, buf: &mut String) -> Option<&'a Entry> {
        for &(suffix, replacement) in SUFFIXES {
            let Some(stem) = word.strip_suffix(suffix) else {
                continue;
            };
            if suffix == "s" && (stem.ends_with('s') || stem.ends_with('\'')) {
                continue;
            }
            buf.clear();
            buf.push_str(stem);
            buf.push_str(replacement);
            if buf.chars().count() >= MIN_STEM_CHARS {
                if let Some(entry) = self.entries.get(buf.as_str()) {
                    return Some(entry);
                }
            }
            // "sobbing" -> "sobb" -> "sob", "stopped" -> "stopp" -> "stop".
            if replacement.is_empty() && matches!(suffix, "ing" | "ed") {
                let mut chars = stem.chars().rev();
                if let (Some(a), Some(b)) = (chars.next(), chars.next()) {
                    if a == b && a.is_ascii_alphabetic() && !"aeiou".contains(a) {
                        let undoubled = &stem[..stem.len() - a.len_utf8()];
                        if undoubled.chars().count() >= MIN_STEM_CHARS {
                            if let Some(entry) = self.entries.get(undoubled) {
                                return Some(entry);
                            }
                        }
                    }
                }
            }
        }
        None
    }
}

/// Suffix rewrites tried in order when a word is not in the lexicon.
const SUFFIXES: &[(&str, &str)] = &[
    ("'s", ""),
    ("iness", "y"),
    ("ness", ""),
    ("iest", "y"),
    ("ier", "y"),
    ("ies", "y"),
    ("ied", "y"),
    ("ily", "y"),
    ("ing", ""),
    ("ing", "e"),
    ("ed", ""),
    ("ed", "e"),
    ("es", ""),
    ("s", ""),
    ("ly", ""),
];

/// Sums the evidence of one text before it is squashed into ranges.
#[derive(Default)]
struct Accumulator {
    emotions: [f32; 8],
    valence: f32,
    arousal: f32,
    hits: u32,
}

impl Accumulator {
    fn add(&mut self, entry: &Entry, weight: f32, negated: bool) {
        if negated {
            for (emotion, &w) in entry.emotions.iter().enumerate() {
                for &(target, share) in negation_shift(emotion) {
                    self.emotions[target] += w * share * weight;
                }
            }
            self.valence += NEGATED_VALENCE * entry.valence * weight;
            self.arousal += NEGATED_AROUSAL * entry.arousal * weight;
        } else {
            for (sum, &w) in self.emotions.iter_mut().zip(&entry.emotions) {
                *sum += w * weight;
            }
            self.valence += entry.valence * weight;
            self.arousal += entry.arousal * weight;
        }
        self.hits += 1;
    }

    fn finish(self, bangs: usize, caps_words: usize) -> EmotionScores {
        let bangs = bangs.min(MAX_BANGS) as f32;
        let intensity = 1.0 + BANG_INTENSITY * bangs;
        let labels = EMOTIONS
            .iter()
            .zip(self.emotions)
            .map(|(name, sum)| {
                let value = 1.0 - (-(sum * intensity).max(0.0)).exp();
                ((*name).to_owned(), clamp_unit(value))
            })
            .collect();
        let valence = clamp_finite((self.valence * intensity).tanh(), -1.0, 1.0);
        let mean_arousal = if self.hits == 0 {
            0.0
        } else {
            self.arousal / self.hits as f32
        };
        let arousal = mean_arousal
            + BANG_AROUSAL * bangs
            + CAPS_AROUSAL * caps_words.min(MAX_CAPS_WORDS) as f32;
        EmotionScores {
            labels,
            valence,
            arousal: clamp_unit(arousal),
        }
    }
}

/// Single-word intensifiers (> 1) and downtoners (< 1).
fn word_modifier(word: &str) -> Option<f32> {
    Some(match word {
        "extremely" | "utterly" => 1.8,
        "incredibly" | "insanely" => 1.7,
        "absolutely" | "deeply" | "terribly" | "ridiculously" => 1.6,
        "very" | "super" | "totally" | "completely" | "awfully" | "hella" | "mega" => 1.5,
        "fucking" => 1.5,
        "really" | "so" | "truly" | "highly" | "seriously" | "freaking" | "bloody" => 1.4,
        "too" | "especially" | "particularly" | "genuinely" | "soo" => 1.3,
        "quite" | "pretty" => 1.2,
        "fairly" => 0.7,
        "somewhat" | "kinda" | "sorta" | "partly" | "less" => 0.6,
        "slightly" | "mildly" | "marginally" => 0.5,
        _ => return None,
    })
}

/// An intensifier stretched for emphasis ("sooo", "reallyyy").
fn elongated_modifier(word: &str) -> Option<f32> {
    if word.len() > MAX_STEM_BYTES || !has_long_run(word) {
        return None;
    }
    [2, 1]
        .into_iter()
        .find_map(|max_run| word_modifier(&collapse_runs(word, max_run)))
}

/// Comparatives that "never been ..." / "couldn't be ..." turn into superlatives.
fn is_comparative(word: &str) -> bool {
    word.ends_with("ier")
        || matches!(
            word,
            "better" | "greater" | "nicer" | "calmer" | "sadder" | "madder" | "prouder" | "worse"
        )
}

/// Two-word downtoners ("a bit sad", "kind of worried").
fn phrase_modifier(word: &str, next: &str) -> Option<f32> {
    match (word, next) {
        ("a", "bit" | "little" | "tad") | ("kind" | "sort", "of") => Some(0.6),
        _ => None,
    }
}

/// Words that negate what follows them.
fn is_negator(word: &str) -> bool {
    matches!(
        word,
        "not"
            | "no"
            | "never"
            | "without"
            | "hardly"
            | "barely"
            | "scarcely"
            | "nor"
            | "neither"
            | "nobody"
            | "nothing"
            | "none"
            | "nowhere"
            | "cannot"
            // Chat spellings without the apostrophe.
            | "dont"
            | "doesnt"
            | "didnt"
            | "isnt"
            | "arent"
            | "wasnt"
            | "werent"
            | "cant"
            | "couldnt"
            | "wouldnt"
            | "shouldnt"
            | "wont"
            | "havent"
            | "hasnt"
            | "hadnt"
            | "aint"
    ) || word.ends_with("n't")
}

/// "hahaha", "ahahah", "hehehe" and the like, which have no fixed spelling.
fn is_laughter(word: &str) -> bool {
    let mut h = 0;
    let mut a = 0;
    let mut e = 0;
    for c in word.chars() {
        match c {
            'h' => h += 1,
            'a' => a += 1,
            'e' => e += 1,
            _ => return false,
        }
    }
    h >= 2 && ((a >= 2 && e == 0) || (e >= 2 && a == 0))
}

/// Whether a character repeats three or more times in a row.
fn has_long_run(word: &str) -> bool {
    let mut prev = None;
    let mut run = 0;
    for c in word.chars() {
        run = if Some(c) == prev { run + 1 } else { 1 };
        if run >= 3 {
            return true;
        }
        prev = Some(c);
    }
    false
}

/// Cuts every run of three or more of one character down to `max_run`; doubled letters
/// stay, since English has them ("happyyy" -> "happy", not "hapy").
fn collapse_runs(word: &str, max_run: usize) -> String {
    let mut out = String::with_capacity(word.len());
    let mut chars = word.chars().peekable();
    while let Some(c) = chars.next() {
        let mut run = 1;
        while chars.next_if_eq(&c).is_some() {
            run += 1;
        }
        let keep = if run >= 3 { max_run } else { run };
        out.extend(std::iter::repeat_n(c, keep));
    }
    out
}

/// Lower-cases a lexicon key and drops emoji variation selectors, as the tokenizer does.
fn normalize_key(key: &str) -> String {
    key.chars()
        .filter(|&c| !is_ignorable(c))
        .flat_map(char::to_lowercase)
        .map(|c| if is_apostrophe(c) { '\'' } else { c })
        .collect()
}

enum KeyKind<'a> {
    Word,
    Phrase(&'a str),
    Emoji,
    Emoticon,
}

/// Checks that a key is something the tokenizer can produce, so no entry is dead weight.
fn classify_key(key: &str) -> Result<KeyKind<'_>, String> {
    let mut chars = key.chars();
    let Some(first) = chars.next() else {
        return Err("empty key".to_owned());
    };
    if is_emoji(first) {
        return if chars.next().is_none() {
            Ok(KeyKind::Emoji)
        } else {
            Err(format!("emoji key {key:?} must be a single code point"))
        };
    }
    if first.is_ascii_punctuation() {
        return if key.chars().all(|c| c.is_ascii_graphic()) {
            Ok(KeyKind::Emoticon)
        } else {
            Err(format!("emoticon key {key:?} must be printable ASCII"))
        };
    }
    let is_word = |w: &str| {
        !w.is_empty()
            && w.chars().all(|c| c.is_alphanumeric() || c == '\'')
            && !w.starts_with('\'')
            && !w.ends_with('\'')
    };
    match key.split_once(' ') {
        None if is_word(key) => Ok(KeyKind::Word),
        Some((head, tail)) if is_word(head) && is_word(tail) => Ok(KeyKind::Phrase(head)),
        _ => Err(format!(
            "key {key:?} is not a word, a two-word phrase, an emoji or an emoticon"
        )),
    }
}

fn parse_emotions(field: &str) -> Result<[f32; 8], String> {
    let mut emotions = [0.0f32; 8];
    if field == "-" {
        return Ok(emotions);
    }
    let mut seen = [false; 8];
    for part in field.split(',') {
        let (name, weight) = part
            .split_once(':')
            .ok_or_else(|| format!("emotion {part:?} is not name:weight"))?;
        let name = name.trim();
        let index = EMOTIONS
            .iter()
            .position(|e| *e == name)
            .ok_or_else(|| format!("unknown emotion {name:?}"))?;
        if std::mem::replace(&mut seen[index], true) {
            return Err(format!("emotion {name:?} given twice"));
        }
        emotions[index] = parse_bounded(weight, 0.0, 1.0)?;
    }
    Ok(emotions)
}

fn parse_bounded(field: &str, min: f32, max: f32) -> Result<f32, String> {
    let value: f32 = field
        .trim()
        .parse()
        .map_err(|_| format!("{field:?} is not a number"))?;
    if value.is_finite() && (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{value} is outside [{min}, {max}]"))
    }
}

fn clamp_unit(value: f32) -> f32 {
    clamp_finite(value, 0.0, 1.0)
}

/// Clamps, mapping NaN to the bottom of the range so garbage never escapes.
fn clamp_finite(value: f32, min: f32, max: f32) -> f32 {
    if value.is_nan() {
        min.max(0.0).min(max)
    } else {
        value.clamp(min, max)
    }
}

// ---------------------------------------------------------------------------------------
// Tokenizer
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Letters and digits, with inner apostrophes ("don't").
    Word,
    /// One emoji code point.
    Emoji,
    /// An ASCII emoticon from the lexicon.
    Emoticon,
    /// Clause punctuation: ends negation and intensifier scope.
    Break,
}

#[derive(Debug, Clone, Copy)]
struct Token {
    kind: Kind,
    /// Byte range in [`Tokens::norm`].
    start: usize,
    end: usize,
    /// Two or more letters, all upper-case ("HATE").
    caps: bool,
    /// Starts upper-case and has lower-case letters ("Sarah").
    capitalised: bool,
    /// Contains a digit.
    digit: bool,
    /// First word of the text or of a sentence.
    sentence_start: bool,
}

/// A tokenised text: one normalised (lower-case) copy and ranges into it, so a turn costs
/// two allocations however many words it has.
struct Tokens {
    norm: String,
    tokens: Vec<Token>,
    /// Exclamation marks seen.
    bangs: usize,
}

impl Tokens {
    /// The normalised text of a token.
    fn text(&self, token: &Token) -> &str {
        &self.norm[token.start..token.end]
    }
}

#[derive(Default)]
struct WordState {
    start: usize,
    letters: usize,
    upper: usize,
    lower: usize,
    first_upper: bool,
    digit: bool,
}

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '\u{2019}' | '\u{02BC}')
}

/// Emoji presentation modifiers that carry no meaning of their own here.
fn is_ignorable(c: char) -> bool {
    matches!(c as u32,
        0xFE00..=0xFE0F      // variation selectors
        | 0x200D             // zero-width joiner
        | 0x1F3FB..=0x1F3FF  // skin tones
        | 0xE0020..=0xE007F  // tag characters
        | 0x20E3) // keycap
}

fn is_emoji(c: char) -> bool {
    matches!(c as u32,
        0x1F300..=0x1F5FF
        | 0x1F600..=0x1F64F
        | 0x1F680..=0x1F6FF
        | 0x1F900..=0x1F9FF
        | 0x1FA70..=0x1FAFF
        | 0x1F1E6..=0x1F1FF
        | 0x2600..=0x27BF
        | 0x2B50
        | 0x2B55)
}

fn tokenize(text: &str, emoticons: &[String]) -> Tokens {
    let mut out = Tokens {
        norm: String::with_capacity(text.len()),
        tokens: Vec::with_capacity(text.len() / 4 + 1),
        bangs: 0,
    };
    let mut word: Option<WordState> = None;
    let mut sentence_start = true;
    let mut after_space = true;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if c.is_alphanumeric() {
            let w = word.get_or_insert_with(|| WordState {
                start: out.norm.len(),
                first_upper: c.is_uppercase(),
                ..WordState::default()
            });
            if c.is_alphabetic() {
                w.letters += 1;
            }
            if c.is_uppercase() {
                w.upper += 1;
            } else if c.is_lowercase() {
                w.lower += 1;
            }
            w.digit |= c.is_numeric();
            out.norm.extend(c.to_lowercase());
            after_space = false;
            continue;
        }
        if is_apostrophe(c)
            && word.is_some()
            && chars.peek().is_some_and(|&(_, n)| n.is_alphanumeric())
        {
            out.norm.push('\'');
            continue;
        }
        if let Some(w) = word.take() {
            push_word(&mut out, w, &mut sentence_start);
        }
        if is_ignorable(c) {
            continue;
        }
        if is_emoji(c) {
            push_span(&mut out, Kind::Emoji, |s| s.push(c));
            after_space = false;
            continue;
        }
        if c.is_whitespace() || c == '\u{200B}' {
            after_space = true;
            continue;
        }
        if after_space && c.is_ascii_punctuation() {
            let rest = &text[at..];
            let found = emoticons.iter().find(|e| {
                rest.len() >= e.len()
                    && rest.as_bytes()[..e.len()].eq_ignore_ascii_case(e.as_bytes())
                    && rest
                        .get(e.len()..)
                        .and_then(|after| after.chars().next())
                        .is_none_or(|n| !n.is_alphanumeric())
            });
            if let Some(emoticon) = found {
                push_span(&mut out, Kind::Emoticon, |s| s.push_str(emoticon));
                // Emoticons are ASCII: one char per byte, the first already consumed.
                for _ in 1..emoticon.len() {
                    chars.next();
                }
                after_space = false;
                continue;
            }
        }
        after_space = false;
        match c {
            '!' | '\u{FF01}' | '\u{A1}' => {
                out.bangs += 1;
                sentence_start = true;
                push_span(&mut out, Kind::Break, |_| {});
            }
            '.' | '?' | '\u{2026}' | '\u{3002}' | '\u{FF1F}' | '\u{BF}' | '\u{61F}' => {
                sentence_start = true;
                push_span(&mut out, Kind::Break, |_| {});
            }
            ',' | ';' | ':' | '(' | ')' | '[' | ']' | '"' | '\u{2014}' | '\u{2013}'
            | '\u{201C}' | '\u{201D}' | '\u{3001}' | '\u{FF0C}' | '\u{FF1B}' | '\u{FF1A}'
            | '\u{60C}' => push_span(&mut out, Kind::Break, |_| {}),
            _ => {}
        }
    }
    if let Some(w) = word.take() {
        push_word(&mut out, w, &mut sentence_start);
    }
    out
}

fn push_word(out: &mut Tokens, w: WordState, sentence_start: &mut bool) {
    out.tokens.push(Token {
        kind: Kind::Word,
        start: w.start,
        end: out.norm.len(),
        caps: w.letters >= 2 && w.lower == 0 && w.upper == w.letters,
        capitalised: w.first_upper && w.lower > 0,
        digit: w.digit,
        sentence_start: *sentence_start,
    });
    *sentence_start = false;
}

fn push_span(out: &mut Tokens, kind: Kind, write: impl FnOnce(&mut String)) {
    let start = out.norm.len();
    write(&mut out.norm);
    out.tokens.push(Token {
        kind,
        start,
        end: out.norm.len(),
        caps: false,
        capitalised: false,
        digit: false,
        sentence_start: false,
    });
}

// ---------------------------------------------------------------------------------------
// Importance
// ---------------------------------------------------------------------------------------

/// Weights of the importance components; they sum to 1 so the score is in [0, 1].
const IMPORTANCE_EMOTION: f32 = 0.30;
const IMPORTANCE_SALIENT: f32 = 0.25;
const IMPORTANCE_FIRST_PERSON: f32 = 0.15;
const IMPORTANCE_LENGTH: f32 = 0.10;
const IMPORTANCE_DATES: f32 = 0.10;
const IMPORTANCE_NAMES: f32 = 0.10;
/// Words at which the length component is full: longer turns are not more important.
const IMPORTANCE_FULL_LENGTH: f32 = 40.0;

/// Life events and memory cues: turns with these are worth keeping.
fn salient_weight(word: &str) -> f32 {
    match word {
        "remember" | "remembered" | "important" | "birthday" | "anniversary" | "diagnosed"
        | "diagnosis" | "married" | "marry" | "marrying" | "wedding" | "engaged" | "divorce"
        | "divorced" | "moved" | "moving" | "relocated" | "job" | "promotion" | "promoted"
        | "hired" | "fired" | "quit" | "retired" | "retiring" | "pregnant" | "born" | "died"
        | "funeral" | "graduated" | "graduation" | "allergic" | "allergy" | "allergies"
        | "hospital" | "surgery" | "cancer" | "name" | "address" | "favorite" | "favourite"
        | "deadline" | "exam" | "interview" => 1.0,
        "mother" | "father" | "mom" | "mum" | "dad" | "wife" | "husband" | "son" | "daughter"
        | "brother" | "sister" | "grandma" | "grandmother" | "grandpa" | "grandfather"
        | "boyfriend" | "girlfriend" | "partner" | "baby" | "kids" | "children" | "family"
        | "dog" | "cat" => 0.5,
        _ => 0.0,
    }
}

fn is_first_person(word: &str) -> bool {
    matches!(
        word,
        "i" | "i'm"
            | "im"
            | "i've"
            | "i'd"
            | "i'll"
            | "me"
            | "my"
            | "mine"
            | "myself"
            | "we"
            | "we're"
            | "our"
            | "ours"
            | "us"
    )
}

fn is_date_word(word: &str) -> bool {
    matches!(
        word,
        "today"
            | "tonight"
            | "tomorrow"
            | "yesterday"
            | "week"
            | "weeks"
            | "weekend"
            | "month"
            | "months"
            | "year"
            | "years"
            | "ago"
            | "monday"
            | "tuesday"
            | "wednesday"
            | "thursday"
            | "friday"
            | "saturday"
            | "sunday"
            | "january"
            | "february"
            | "april"
            | "june"
            | "july"
            | "august"
            | "september"
            | "october"
            | "november"
            | "december"
    )
}

/// What a turn is scored with: its emotion scores from `lexicon` and its importance. A
/// store makes them before the insert, so the turn is written once; the emotion processor
/// makes them for turns stored without.
pub fn turn_scores(lexicon: &EmotionLexicon, text: &str) -> (EmotionScores, f32) {
    let emotion = lexicon.score(text);
    let importance = importance(text, &emotion);
    (emotion, importance)
}

/// How worth remembering a turn is, in [0, 1]; deterministic.
///
/// A weighted sum of saturating components, so no single signal dominates and long turns
/// do not win by length alone:
/// - 0.30 emotional intensity: the strongest label or |valence| of `scores`;
/// - 0.25 salient words: memory cues and life events (remember, important, never/don't
///   forget, birthday, anniversary, diagnosed, married, moved, job, promotion, ...), full
///   at two; family members count half;
/// - 0.15 first-person disclosure (I, my, me, we, ...), full at three;
/// - 0.10 length, full at 40 words;
/// - 0.10 numbers and dates (digits, weekdays, months, today, last week, ...), full at two;
/// - 0.10 capitalised names not at a sentence start, full at two.
pub fn importance(text: &str, scores: &EmotionScores) -> f32 {
    let toks = tokenize(text, &[]);
    let mut words = 0usize;
    let mut first_person = 0usize;
    let mut dates = 0usize;
    let mut names = 0usize;
    let mut salient = 0.0f32;
    let word_tokens: Vec<(&Token, &str)> = toks
        .tokens
        .iter()
        .filter(|t| t.kind == Kind::Word)
        .map(|t| (t, toks.text(t)))
        .collect();
    for (index, &(token, word)) in word_tokens.iter().enumerate() {
        words += 1;
        first_person += usize::from(is_first_person(word));
        let date = token.digit || is_date_word(word);
        dates += usize::from(date);
        if token.capitalised && !token.sentence_start && !date && !word.starts_with("i'") {
            names += 1;
        }
        salient += salient_weight(word);
        let next = word_tokens.get(index + 1).map(|&(_, w)| w);
        if matches!(
            (word, next),
            ("never" | "don't" | "dont", Some("forget")) | ("passed", Some("away"))
        ) {
            salient += 1.0;
        }
    }
    let saturate = |count: f32, full: f32| (count / full).min(1.0);
    let emotion = scores
        .labels
        .values()
        .copied()
        .map(clamp_unit)
        .fold(clamp_finite(scores.valence, -1.0, 1.0).abs(), f32::max);
    let total = IMPORTANCE_EMOTION * emotion
        + IMPORTANCE_SALIENT * saturate(salient, 2.0)
        + IMPORTANCE_FIRST_PERSON * saturate(first_person as f32, 3.0)
        + IMPORTANCE_LENGTH * saturate(words as f32, IMPORTANCE_FULL_LENGTH)
        + IMPORTANCE_DATES * saturate(dates as f32, 2.0)
        + IMPORTANCE_NAMES * saturate(names as f32, 2.0);
    clamp_unit(total)
}

// ---------------------------------------------------------------------------------------
// Aggregate state
// ---------------------------------------------------------------------------------------

/// Cap on the old state's weight in [`fold`]: however long the history, a new turn moves
/// the aggregate by at least 1/(cap + 1), so the state keeps tracking the user.
const MAX_EFFECTIVE_TURNS: f64 = 10.0;

/// Folds one turn's scores into the user's decayed running aggregate.
///
/// The old aggregate's weight is its effective turn count (`turns`, capped at ten)
/// decayed by `0.5^(dt / half_life)`, with `dt = time - state.updated` clamped at zero
/// because turns may arrive slightly out of event-time order; the new turn weighs 1. A
/// zero `half_life` means no memory: the result is the new turn's scores. Labels missing
/// from either side count as 0, and every label of [`EMOTIONS`] is present in the result.
///
/// Idempotent by turn id: if `state.last_turn >= turn` the state is returned unchanged,
/// so replaying turns after a restart does not count them twice.
pub fn fold(
    state: Option<&EmotionState>,
    turn: TurnId,
    time: Timestamp,
    scores: &EmotionScores,
    half_life: Duration,
) -> EmotionState {
    let Some(prev) = state else {
        return EmotionState {
            scores: blend(None, 0.0, scores),
            turns: 1,
            last_turn: turn,
            updated: time,
        };
    };
    if prev.last_turn >= turn {
        return prev.clone();
    }
    let dt_secs = (time - prev.updated).num_milliseconds().max(0) as f64 / 1000.0;
    let half_life_secs = half_life.as_secs_f64();
    let decay = if half_life_secs > 0.0 {
        0.5f64.powf(dt_secs / half_life_secs)
    } else {
        0.0
    };
    let weight = (prev.turns as f64).min(MAX_EFFECTIVE_TURNS) * decay;
    EmotionState {
        scores: blend(Some(&prev.scores), weight, scores),
        turns: prev.turns.saturating_add(1),
        last_turn: turn,
        updated: prev.updated.max(time),
    }
}

/// Weighted average of `old` (weight `old_weight`) and `new` (weight 1), sanitised to
/// the documented ranges.
fn blend(old: Option<&EmotionScores>, old_weight: f64, new: &EmotionScores) -> EmotionScores {
    let old_weight = if old.is_some() && old_weight.is_finite() {
        old_weight.max(0.0)
    } else {
        0.0
    };
    let mix = |old_value: f64, new_value: f64| -> f64 {
        (old_value * old_weight + new_value) / (old_weight + 1.0)
    };
    let label = |scores: Option<&EmotionScores>, name: &str| -> f64 {
        scores
            .and_then(|s| s.labels.get(name))
            .map_or(0.0, |&v| f64::from(clamp_unit(v)))
    };
    let mut names: BTreeSet<&str> = EMOTIONS.iter().copied().collect();
    names.extend(new.labels.keys().map(String::as_str));
    if let Some(old) = old {
        names.extend(old.labels.keys().map(String::as_str));
    }
    let labels: BTreeMap<String, f32> = names
        .into_iter()
        .map(|name| {
            let value = mix(label(old, name), label(Some(new), name));
            (name.to_owned(), clamp_unit(value as f32))
        })
        .collect();
    let valence = |s: &EmotionScores| f64::from(clamp_finite(s.valence, -1.0, 1.0));
    let arousal = |s: &EmotionScores| f64::from(clamp_unit(s.arousal));
    EmotionScores {
        labels,
        valence: clamp_finite(
            mix(old.map_or(0.0, valence), valence(new)) as f32,
            -1.0,
            1.0,
        ),
        arousal: clamp_unit(mix(old.map_or(0.0, arousal), arousal(new)) as f32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex() -> &'static EmotionLexicon {
        EmotionLexicon::shared()
    }

    fn label(scores: &EmotionScores, name: &str) -> f32 {
        scores.labels[name]
    }

    fn dominant(scores: &EmotionScores) -> &str {
        scores
            .labels
            .iter()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(name, _)| name.as_str())
            .unwrap_or("")
    }

    fn assert_valid(text: &str, scores: &EmotionScores) {
        for name in EMOTIONS {
            assert!(scores.labels.contains_key(name), "{text:?}: no {name}");
        }
        for (name, &v) in &scores.labels {
            assert!(
                v.is_finite() && (0.0..=1.0).contains(&v),
                "{text:?}: {name}={v}"
            );
        }
        assert!(
            scores.valence.is_finite() && (-1.0..=1.0).contains(&scores.valence),
            "{text:?}: valence {}",
            scores.valence
        );
        assert!(
            scores.arousal.is_finite() && (0.0..=1.0).contains(&scores.arousal),
            "{text:?}: arousal {}",
            scores.arousal
        );
    }

    fn ts(secs: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default()
    }

    #[test]
    fn builtin_lexicon_parses_and_is_large() {
        let lexicon = EmotionLexicon::builtin();
        assert!(lexicon.len() >= 600, "only {} entries", lexicon.len());
        for key in [
            "happy",
            "thrilled",
            "furious",
            "lonely",
            "lol",
            "😭",
            "can't wait",
            ":)",
        ] {
            assert!(lexicon.entries.contains_key(key), "missing {key:?}");
        }
        assert!(format!("{lexicon:?}").len() < 200);
    }

    #[test]
    fn parse_rejects_malformed_lines_with_line_numbers() {
        let cases = [
            ("happy\tjoy:0.8\t0.8", "4 tab-separated"),
            ("happy\tglee:0.8\t0.8\t0.5", "unknown emotion"),
            ("happy\tjoy:1.5\t0.8\t0.5", "outside"),
            ("happy\tjoy:0.8\t-2\t0.5", "outside"),
            ("happy\tjoy:0.8\t0.8\tNaN", "outside"),
            ("happy\tjoy\t0.8\t0.5", "name:weight"),
            ("happy\tjoy:0.1,joy:0.2\t0.8\t0.5", "twice"),
            ("a b c\tjoy:0.8\t0.8\t0.5", "not a word"),
            ("😀😀\tjoy:0.8\t0.8\t0.5", "single code point"),
            (
                "# comment\nhappy\tjoy:0.8\t0.8\t0.5\nHappy\tjoy:0.8\t0.8\t0.5",
                "line 3",
            ),
        ];
        for (text, expected) in cases {
            let err = EmotionLexicon::parse(text).err().unwrap_or_default();
            assert!(err.contains(expected), "{text:?}: got {err:?}");
        }
        let ok = EmotionLexicon::parse("# c\n\nmeh\t-\t-0.2\t0.1\r\n").map(|l| l.len());
        assert_eq!(ok, Ok(1));
    }

    #[test]
    fn happy_text_scores_joy_and_positive_valence() {
        let s = lex().score("I'm so happy today, this is wonderful!");
        assert!(label(&s, "joy") > 0.6, "{s:?}");
        assert_eq!(dominant(&s), "joy");
        assert!(s.valence > 0.3, "{s:?}");
        assert!(s.arousal > 0.3, "{s:?}");
    }

    #[test]
    fn negation_flips_valence_and_moves_joy_to_sadness() {
        let plain = lex().score("I am happy");
        let negated = lex().score("I am not happy");
        assert!(plain.valence > 0.0);
        assert!(negated.valence < 0.0, "{negated:?}");
        assert!(label(&negated, "joy") < label(&plain, "joy"));
        assert!(label(&negated, "sadness") > 0.0);
        // Contractions, chat spellings and curly apostrophes negate too.
        for text in [
            "I don't feel happy",
            "i dont feel happy",
            "I don’t feel happy",
        ] {
            let s = lex().score(text);
            assert!(s.valence < 0.0, "{text:?}: {s:?}");
        }
        // "never been happier" is a superlative, "not feeling better" still a negation.
        for text in [
            "I've never been happier",
            "I couldn't be happier",
            "could not be more excited",
        ] {
            let s = lex().score(text);
            assert!(
                s.valence > 0.5 && label(&s, "sadness") == 0.0,
                "{text:?}: {s:?}"
            );
        }
        assert!(lex().score("I'm not feeling better").valence < 0.0);
        // "not afraid" is reassurance, not fear.
        let s = lex().score("I'm not afraid");
        assert!(s.valence > 0.0 && label(&s, "fear") == 0.0, "{s:?}");
    }

    #[test]
    fn negation_scope_ends_at_punctuation_but_and_three_tokens() {
        for text in [
            "Not really. I'm happy",
            "I didn't sleep but I'm happy",
            "It was not the case that everyone was happy",
        ] {
            let s = lex().score(text);
            assert!(s.valence > 0.0, "{text:?}: {s:?}");
            assert!(label(&s, "joy") > 0.4, "{text:?}: {s:?}");
        }
    }

    #[test]
    fn phrases_are_not_read_as_negations() {
        let s = lex().score("I can't wait to see you");
        assert!(label(&s, "anticipation") > 0.5 && s.valence > 0.0, "{s:?}");
        let s = lex().score("no worries at all");
        assert!(s.valence > 0.0, "{s:?}");
        let s = lex().score("Her grandfather passed away");
        assert_eq!(dominant(&s), "sadness");
    }

    #[test]
    fn intensifiers_and_downtoners_order_joy() {
        let very = label(&lex().score("very happy"), "joy");
        let plain = label(&lex().score("happy"), "joy");
        let slightly = label(&lex().score("slightly happy"), "joy");
        let a_bit = label(&lex().score("a bit happy"), "joy");
        assert!(
            very > plain && plain > slightly,
            "{very} {plain} {slightly}"
        );
        assert!(a_bit < plain);
        // An intensifier only reaches the next couple of tokens.
        let far = label(&lex().score("very much the case that I am happy"), "joy");
        assert!((far - plain).abs() < 1e-6, "{far} vs {plain}");
    }

    #[test]
    fn caps_exclamation_and_elongation_raise_or_keep_intensity() {
        let calm = lex().score("I am so happy");
        let shouted = lex().score("I am SO HAPPY");
        let bangs = lex().score("I am so happy!!!");
        assert!(label(&shouted, "joy") > label(&calm, "joy"));
        assert!(shouted.arousal > calm.arousal);
        assert!(label(&bangs, "joy") > label(&calm, "joy"));
        assert!(bangs.arousal > calm.arousal);
        assert!(label(&lex().score("sooo happyyy"), "joy") > 0.5);
        assert!(label(&lex().score("hahahahaha"), "joy") > 0.3);
        assert!(label(&lex().score("yayyyyy"), "joy") > 0.5);
    }

    #[test]
    fn stemming_finds_unlisted_inflections() {
        for (text, emotion) in [
            ("he keeps scaring me", "fear"),
            ("it went terrifyingly", "fear"),
            ("that angers me", "anger"),
            ("she panics", "fear"),
            ("he was gloomily quiet", "sadness"),
            ("we were sobbing", "sadness"),
        ] {
            let s = lex().score(text);
            assert!(label(&s, emotion) > 0.2, "{text:?}: {s:?}");
        }
        // Short stems are refused: "ties" must not become the chat word "ty".
        assert_eq!(lex().score("ties").valence, 0.0);
    }

    #[test]
    fn anger_fear_and_sadness_examples() {
        let cases = [
            ("I'm furious, this is so annoying", "anger", -0.3),
            ("Ugh, I hate it when people are rude to me", "anger", -0.3),
            (
                "I'm really scared and anxious about the results",
                "fear",
                -0.3,
            ),
            ("I'm worried and nervous about tomorrow", "fear", -0.2),
            (
                "I feel so lonely, I miss my dad and I keep crying",
                "sadness",
                -0.3,
            ),
            ("She was devastated when her dog died", "sadness", -0.3),
            ("eww that is disgusting", "disgust", -0.3),
            (
                "wow, I did not see that coming, what a surprise",
                "surprise",
                -1.0,
            ),
        ];
        for (text, emotion, max_valence) in cases {
            let s = lex().score(text);
            assert_eq!(dominant(&s), emotion, "{text:?}: {s:?}");
            assert!(label(&s, emotion) > 0.4, "{text:?}: {s:?}");
            if max_valence > -1.0 {
                assert!(s.valence < max_valence, "{text:?}: {s:?}");
            }
        }
    }

    #[test]
    fn emoji_and_emoticons_score() {
        assert_eq!(dominant(&lex().score("😂😂😂")), "joy");
        assert_eq!(dominant(&lex().score("😭")), "sadness");
        assert_eq!(dominant(&lex().score("😡")), "anger");
        assert_eq!(dominant(&lex().score("😱")), "fear");
        assert_eq!(dominant(&lex().score("🎉")), "joy");
        // Variation selector and skin tone are presentation only.
        assert!(lex().score("love this ❤️").valence > 0.5);
        assert!(label(&lex().score("👍🏽"), "trust") > 0.2);
        assert!(label(&lex().score("👏🏾👏🏾"), "joy") > 0.4);
        assert!(lex().score("see you :)").valence > 0.0);
        assert!(lex().score("missed the bus :(").valence < 0.0);
        assert!(label(&lex().score(":D"), "joy") > 0.4);
        assert!(label(&lex().score("lol that was great xD"), "joy") > 0.5);
        // A URL is not an emoticon, nor is punctuation glued to a word.
        let url = lex().score("see https://example.com/a:(b) and note:)");
        assert_eq!(url.valence, 0.0, "{url:?}");
        // A smiley after a negation still smiles.
        assert!(lex().score("no 😀").valence > 0.0);
    }

    #[test]
    fn empty_and_neutral_text_score_zero() {
        for text in [
            "",
            "   \n\t",
            "The meeting is at the office on the third floor.",
            "What time is the train to Berlin?",
            "12345 67890",
        ] {
            let s = lex().score(text);
            assert_valid(text, &s);
            assert!(s.labels.values().all(|&v| v == 0.0), "{text:?}: {s:?}");
            assert_eq!(s.valence, 0.0, "{text:?}");
            assert_eq!(s.arousal, 0.0, "{text:?}");
        }
    }

    #[test]
    fn scores_stay_in_range_for_varied_inputs() {
        let long_angry = "I HATE this so much!!! ".repeat(5_000);
        let long_mixed = "happy sad angry scared 😀😭 not very ".repeat(2_000);
        let long_word = "a".repeat(100_000);
        let inputs = [
            "Hello world",
            "我今天很高兴，但是也有点累。",
            "今日はとても嬉しい！😊",
            "أنا سعيد جدا اليوم",
            "אני מאוד שמח היום!",
            "Ça va très bien, merci ! Je suis très heureux.",
            "Z̸̢̛a̵l̷g̸o̴ ̶t̵e̸x̷t̵ happy",
            "👩‍👩‍👧‍👦🏳️‍🌈🇩🇪 #️⃣ 1️⃣",
            "n't n't n't",
            "''' ’’’ don'",
            "not not not not happy",
            "very very very very very very very very very very happy",
            "slightly slightly slightly slightly slightly sad",
            "!!!!!!!!!!!!!!!!!!!!!!!!!!",
            "AAAAAAAA HHHHHH WHAT IS GOING ON",
            "\u{0}\u{1}\u{7f}\u{200b}\u{feff}",
            "ｈａｐｐｙ　ｆｕｌｌｗｉｄｔｈ！",
            ":):):):(:(:( <3 </3 >:( :'( =) ;-)",
            "İstanbul ǅ ß ﬁ ΣΑΣ",
            long_angry.as_str(),
            long_mixed.as_str(),
            long_word.as_str(),
        ];
        for text in inputs {
            let s = lex().score(text);
            assert_valid(&text.chars().take(40).collect::<String>(), &s);
            assert_eq!(s.labels.len(), 8);
            assert_eq!(s, lex().score(text), "scoring must be deterministic");
            let i = importance(text, &s);
            assert!(i.is_finite() && (0.0..=1.0).contains(&i));
        }
        assert!(label(&lex().score(&long_angry), "anger") > 0.9);
    }

    #[test]
    fn importance_prefers_disclosures_and_life_events() {
        let score = |text: &str| importance(text, &lex().score(text));
        let diagnosis = score("My mother was diagnosed with cancer last week");
        let ok = score("ok");
        let chatter = score("lol");
        let wedding = score("I will never forget the day Anna and I got married, June 3rd 2015");
        assert!(diagnosis > ok + 0.3, "{diagnosis} vs {ok}");
        assert!(wedding > 0.5, "{wedding}");
        assert!(chatter < 0.2 && ok < 0.1, "{chatter} {ok}");
        assert!(score("I'm so sad today") > score("the weather is fine"));
        assert_eq!(importance("", &EmotionScores::default()), 0.0);
        let garbage = EmotionScores {
            labels: [("joy".to_owned(), f32::NAN)].into_iter().collect(),
            valence: f32::INFINITY,
            arousal: -3.0,
        };
        let i = importance("my birthday", &garbage);
        assert!((0.0..=1.0).contains(&i), "{i}");
    }

    #[test]
    fn fold_starts_counts_and_is_idempotent() {
        let hl = Duration::from_secs(3_600);
        let joy = lex().score("I am so happy!");
        let first = fold(None, TurnId(1), ts(1_000), &joy, hl);
        assert_eq!(first.turns, 1);
        assert_eq!(first.last_turn, TurnId(1));
        assert_eq!(first.updated, ts(1_000));
        assert_eq!(first.scores.labels.len(), 8);
        assert!((first.scores.labels["joy"] - joy.labels["joy"]).abs() < 1e-6);

        let sad = lex().score("I am sad");
        let second = fold(Some(&first), TurnId(2), ts(1_010), &sad, hl);
        assert_eq!(second.turns, 2);
        assert_eq!(second.last_turn, TurnId(2));
        // Replays of the same or older turns change nothing.
        assert_eq!(fold(Some(&second), TurnId(2), ts(1_010), &sad, hl), second);
        assert_eq!(fold(Some(&second), TurnId(1), ts(9_999), &joy, hl), second);
        // Both turns count, roughly equally, at nearly zero elapsed time.
        let j = second.scores.labels["joy"];
        assert!(j > 0.2 && j < joy.labels["joy"], "{j}");
        assert!(second.scores.labels["sadness"] > 0.2);
    }

    #[test]
    fn fold_decays_old_state() {
        let hl = Duration::from_secs(3_600);
        let joy = lex().score("I'm thrilled, this is amazing, I love it!!");
        let neutral = lex().score("the train leaves at noon");
        let mut state = fold(None, TurnId(1), ts(0), &joy, hl);
        for n in 2..=20 {
            state = fold(Some(&state), TurnId(n), ts(n), &joy, hl);
        }
        let strong = state.scores.labels["joy"];
        let soon = fold(Some(&state), TurnId(21), ts(30), &neutral, hl);
        let later = fold(Some(&state), TurnId(21), ts(30 + 20 * 3_600), &neutral, hl);
        assert!(strong > 0.7);
        assert!(soon.scores.labels["joy"] > 0.6, "{soon:?}");
        assert!(later.scores.labels["joy"] < 0.01, "{later:?}");
        assert!(later.scores.labels["joy"] < soon.scores.labels["joy"]);
        assert_eq!(later.turns, 21);
        // Zero half-life: no memory.
        let forgetful = fold(Some(&state), TurnId(21), ts(30), &neutral, Duration::ZERO);
        assert_eq!(forgetful.scores.labels["joy"], 0.0);
    }

    #[test]
    fn fold_tolerates_out_of_order_time_and_garbage() {
        let hl = Duration::from_secs(60);
        let joy = lex().score("yay");
        let state = fold(None, TurnId(5), ts(10_000), &joy, hl);
        let earlier = fold(Some(&state), TurnId(6), ts(9_000), &joy, hl);
        assert_eq!(earlier.updated, ts(10_000), "updated never goes back");
        assert_eq!(earlier.turns, 2);
        assert!((earlier.scores.labels["joy"] - joy.labels["joy"]).abs() < 1e-5);

        let garbage = EmotionScores {
            labels: [("joy".to_owned(), f32::NAN), ("awe".to_owned(), 7.0)]
                .into_iter()
                .collect(),
            valence: f32::NEG_INFINITY,
            arousal: f32::NAN,
        };
        let mixed = fold(Some(&earlier), TurnId(7), ts(10_001), &garbage, hl);
        assert_valid("garbage", &mixed.scores);
        assert_eq!(mixed.scores.labels.len(), 9, "foreign labels are kept");
        let awe = mixed.scores.labels["awe"];
        assert!(awe > 0.0 && awe <= 1.0, "{awe}");
        let huge = fold(
            Some(&mixed),
            TurnId(8),
            ts(10_002),
            &joy,
            Duration::from_secs(u64::MAX),
        );
        assert_valid("huge half-life", &huge.scores);
    }
}
