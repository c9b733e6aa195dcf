//! Statistical keywords of a set of texts, plus the word-level helpers the other analysers
//! share (tokenizer, stopwords, word lists).
//!
//! There is no corpus to take document frequencies from, so rarity is estimated from the
//! word itself: longer words and words outside a list of very common English words count
//! as rarer. Term frequency is damped (1 + ln tf) so that one chatty turn repeating a word
//! cannot drown out the rest, and words spread over several texts get a small bonus.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

/// FNV-1a: the word lists are fixed and their keys are short, so a simple hash beats
/// SipHash several times over and flooding is not a concern (input is only looked up,
/// never inserted).
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type WordSet = HashSet<&'static str, BuildHasherDefault<Fnv>>;

/// A set of lower-case words (or phrases) written as text in the source, turned into a hash
/// set on first use so lookups are O(1) without a build step or a lazy-init crate.
pub(crate) struct Lexicon {
    text: &'static str,
    /// Entries are separated by `|` and newlines (so they may contain spaces) instead of
    /// by any whitespace.
    phrases: bool,
    set: OnceLock<WordSet>,
}

impl Lexicon {
    /// Whitespace-separated words; lines starting with `#` are comments.
    pub(crate) const fn words(text: &'static str) -> Self {
        Self {
            text,
            phrases: false,
            set: OnceLock::new(),
        }
    }

    /// Entries separated by `|` or newlines, each trimmed; may hold spaces.
    pub(crate) const fn phrases(text: &'static str) -> Self {
        Self {
            text,
            phrases: true,
            set: OnceLock::new(),
        }
    }

    /// Whether `word` (already lower case) is in the set.
    pub(crate) fn contains(&self, word: &str) -> bool {
        self.set.get_or_init(|| self.build()).contains(word)
    }

    fn build(&self) -> WordSet {
        let lines = self
            .text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'));
        if self.phrases {
            lines
                .flat_map(|l| l.split('|'))
                .map(str::trim)
                .filter(|w| !w.is_empty())
                .collect()
        } else {
            lines.flat_map(str::split_whitespace).collect()
        }
    }
}

/// English stopwords and chat filler, one file so it can be reviewed as a list.
static STOPWORDS: Lexicon = Lexicon::words(mnemo_storage::index::STOPWORDS);

/// Very common English content words: the stand-in for a high document frequency. They
/// may still be keywords, but weigh about a third of an unlisted word.
static COMMON: Lexicon = Lexicon::words(
    "able add age air almost answer area ask back bad bag bed best better big black blue
    body book box boy break bring brother build buy call car care carry case cause change
    check child children city class clean clear close cold color company cool country
    course cut dad dark day dead deal dear door drink drive early easy eat end enjoy
    evening eye eyes face fact fall family far fast father feel feeling fight fill final
    find fine finish fire first fit food foot free friend friends front full fun game girl
    give glad good great green ground group grow guy guys half hand happen happy hard head
    hear heart help high hold home hope hot hour house huge idea important issue job keep
    kid kids kill large last late later lead learn leave left level life light line list
    little live long lose love low main man matter meet member men mind minute miss moment
    money month morning mother move music name near need new news next nice night number
    old open order part party pay people person pick place plan play point power problem
    pull put question quick read ready real reason remember rest right room run sad school
    second send set short show side simple sit small sound speak stand start state stay
    step stop story street strong study sure talk team tell thank thanks time tired top
    true turn type use wait walk watch water week weekend well white whole wife win woman
    women word work world write wrong year years young",
);

/// Longest keyword, in chars: longer terms are usually URLs, hashes or keyboard mashing,
/// not words people talk about.
const MAX_TERM_CHARS: usize = 32;

/// Whether `word` is an English stopword or chat filler ("the", "lol", "gonna", "im").
/// Case-insensitive; typographic apostrophes count as straight ones.
pub fn is_stopword(word: &str) -> bool {
    STOPWORDS.contains(&lower(word))
}

/// Whether `word` (lower case) is a very common English content word, trying a crude
/// singular/base form too so "friends" and "played" match "friend" and "play".
pub(crate) fn is_common(word: &str) -> bool {
    if COMMON.contains(word) {
        return true;
    }
    // Endings are ASCII, so slicing them off stays on a char boundary.
    if let Some(stem) = word.strip_suffix("ies") {
        return common_with(stem, b'y');
    }
    if let Some(stem) = word.strip_suffix("ing") {
        return COMMON.contains(stem) || common_with(stem, b'e');
    }
    if let Some(stem) = word.strip_suffix("ed") {
        return COMMON.contains(stem) || common_with(stem, b'e');
    }
    if let Some(stem) = word.strip_suffix('s') {
        return COMMON.contains(stem);
    }
    false
}

/// Whether `stem` followed by the ASCII letter `last` is a common word, spelled on the
/// stack: this runs for many words of every text.
fn common_with(stem: &str, last: u8) -> bool {
    let mut buf = [0u8; 24];
    let Some(head) = buf.get_mut(..stem.len()) else {
        // Longer than any listed word.
        return false;
    };
    head.copy_from_slice(stem.as_bytes());
    let Some(slot) = buf.get_mut(stem.len()) else {
        return false;
    };
    *slot = last;
    std::str::from_utf8(&buf[..=stem.len()]).is_ok_and(|w| COMMON.contains(w))
}

/// Whether `c` is an apostrophe, straight or typographic.
pub(crate) fn is_apostrophe(c: char) -> bool {
    c == '\'' || c == '\u{2019}'
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || is_apostrophe(c)
}

/// Lower case with typographic apostrophes made straight; borrows when nothing changes,
/// which is the common case for chat text.
pub(crate) fn lower(word: &str) -> Cow<'_, str> {
    if word.chars().any(|c| c.is_uppercase() || c == '\u{2019}') {
        Cow::Owned(word.to_lowercase().replace('\u{2019}', "'"))
    } else {
        Cow::Borrowed(word)
    }
}

/// The term a word counts as: lower case, without a possessive "'s", so "Pottery's"
/// and "pottery" are one keyword.
pub(crate) fn term(word: &str) -> Cow<'_, str> {
    match lower(word) {
        Cow::Borrowed(w) => Cow::Borrowed(w.strip_suffix("'s").unwrap_or(w)),
        Cow::Owned(mut w) => {
            if w.ends_with("'s") {
                w.truncate(w.len() - 2);
            }
            Cow::Owned(w)
        }
    }
}

/// Laughter and stretched words ("hahaha", "lolol", "sooo", "hmmm") that stopword lists
/// cannot enumerate.
pub(crate) fn is_filler(word: &str) -> bool {
    let laugh = |set: &[char]| word.len() >= 3 && word.chars().all(|c| set.contains(&c));
    if laugh(&['h', 'a']) || laugh(&['h', 'e']) || laugh(&['l', 'o']) || laugh(&['x', 'd']) {
        return true;
    }
    let mut run = 0;
    let mut prev = None;
    for c in word.chars() {
        run = if Some(c) == prev { run + 1 } else { 1 };
        if run >= 3 && c.is_alphabetic() {
            return true;
        }
        prev = Some(c);
    }
    false
}

/// Byte spans of the words of a text, in order: runs of letters, digits and inner
/// apostrophes. Kept as spans (not slices) so callers can look at the text between words.
pub(crate) fn spans(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut pos = 0;
    std::iter::from_fn(move || loop {
        let rest = text.get(pos..)?;
        let start = pos + rest.find(is_word_char)?;
        let len = text[start..]
            .find(|c: char| !is_word_char(c))
            .unwrap_or(text.len() - start);
        let end = start + len;
        pos = end;
        let word = &text[start..end];
        let trimmed = word.trim_start_matches(is_apostrophe);
        let s = end - trimmed.len();
        let e = s + trimmed.trim_end_matches(is_apostrophe).len();
        if s < e {
            return Some((s, e));
        }
    })
}

/// The words of `text`: split on anything that is not a letter or digit, keeping inner
/// apostrophes ("don't", "Sarah's") and dropping leading or trailing ones.
pub fn words(text: &str) -> impl Iterator<Item = &str> {
    spans(text).map(move |(s, e)| &text[s..e])
}

/// Whether a word may be a keyword at all; `term` is its lower-cased form.
fn is_candidate(word: &str, term: &str) -> bool {
    let chars = term.chars().count();
    let long_enough = chars >= 3
        // Two-letter acronyms ("AI", "UK") are meaningful; "ai" typed lower case is not
        // distinguishable from noise, so require the capitals.
        || (chars == 2 && word.chars().all(|c| c.is_uppercase()));
    long_enough
        && chars <= MAX_TERM_CHARS
        && term.chars().any(char::is_alphabetic)
        && !STOPWORDS.contains(term)
        && !is_filler(term)
}

/// Estimated rarity of a term: the document-frequency stand-in.
fn rarity(term: &str) -> f64 {
    let chars = term.chars().count().min(12) as f64;
    let mut r = 0.7 + 0.06 * chars;
    if is_common(term) {
        r *= 0.35;
    }
    if term.len() >= 6 && term.ends_with("ly") {
        // Adverbs ("finally", "basically") colour a sentence but are rarely its subject.
        r *= 0.5;
    }
    if term.chars().any(|c| c.is_ascii_digit()) {
        // "2024", "5k": often noise in chat, sometimes not.
        r *= 0.5;
    }
    r
}

#[derive(Default)]
struct Stat {
    count: u32,
    docs: u32,
    last_doc: usize,
    /// Occurrences inside a repeated bigram (unigrams only).
    in_bigrams: u32,
}

impl Stat {
    fn add(&mut self, doc: usize) {
        if self.count == 0 || self.last_doc != doc {
            self.docs += 1;
        }
        self.count += 1;
        self.last_doc = doc;
    }

    /// Damped frequency times a bonus for being spread over several texts.
    fn frequency(&self) -> f64 {
        (1.0 + f64::from(self.count).ln()) * (1.0 + 0.25 * f64::from(self.docs).ln())
    }
}

/// Keywords of `texts` with their scores, best first (ties alphabetical). Bigrams are
/// keyed "first second". Used by [`keywords`] and by the summarizer, which needs weights.
pub(crate) fn scored_keywords(texts: &[&str], k: usize) -> Vec<(String, f64)> {
    let mut unigrams: HashMap<String, Stat> = HashMap::new();
    let mut bigrams: HashMap<String, Stat> = HashMap::new();
    for (doc, text) in texts.iter().enumerate() {
        // The previous candidate term and where it ended, for bigrams.
        let mut prev: Option<(String, usize)> = None;
        for (s, e) in spans(text) {
            let word = &text[s..e];
            let t = term(word);
            if !is_candidate(word, &t) {
                prev = None;
                continue;
            }
            let t = t.into_owned();
            if let Some((p, pe)) = &prev {
                // Only words separated by plain whitespace form a phrase; punctuation
                // between them means a clause or sentence boundary.
                if text[*pe..s].chars().all(char::is_whitespace) {
                    bigrams.entry(format!("{p} {t}")).or_default().add(doc);
                }
            }
            unigrams.entry(t.clone()).or_default().add(doc);
            prev = Some((t, e));
        }
    }

    let mut scored: Vec<(String, f64)> = Vec::new();
    for (bigram, stat) in &bigrams {
        // A phrase is only a keyword when it repeats; once is a coincidence of word order.
        if stat.count < 2 {
            continue;
        }
        let Some((a, b)) = bigram.split_once(' ') else {
            continue;
        };
        for part in [a, b] {
            if let Some(u) = unigrams.get_mut(part) {
                u.in_bigrams += stat.count;
            }
        }
        let score = stat.frequency() * (rarity(a) + rarity(b)) * 0.6;
        scored.push((bigram.clone(), score));
    }
    for (unigram, stat) in &unigrams {
        // A word that never occurs outside its phrase ("york" of "new york") adds nothing.
        if stat.in_bigrams >= stat.count {
            continue;
        }
        scored.push((unigram.clone(), stat.frequency() * rarity(unigram)));
    }
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    scored.truncate(k);
    scored
}

/// The `k` best keywords of `texts`, lower case, best first (ties alphabetical): words and
/// repeated two-word phrases ("machine learning"), scored by damped frequency across the
/// texts times an estimated rarity. Stopwords and filler never appear.
pub fn keywords(texts: &[&str], k: usize) -> Vec<String> {
    scored_keywords(texts, k)
        .into_iter()
        .map(|(term, _)| term)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_on_punctuation_and_keep_inner_apostrophes() {
        let got: Vec<&str> = words("Don't stop—'quoted' Sarah's rock-climbing, 3.5km!").collect();
        assert_eq!(
            got,
            vec!["Don't", "stop", "quoted", "Sarah's", "rock", "climbing", "3", "5km"]
        );
        assert_eq!(words("''''  ... !!").count(), 0);
        assert_eq!(words("").count(), 0);
        assert_eq!(
            words("東京 ☕ café").collect::<Vec<_>>(),
            vec!["東京", "café"]
        );
    }

    #[test]
    fn stopwords_cover_chat_filler_and_ignore_case() {
        for w in [
            "the", "The", "lol", "yeah", "ok", "gonna", "im", "I’m", "don't",
        ] {
            assert!(is_stopword(w), "{w} should be a stopword");
        }
        for w in ["pottery", "marathon", "Sarah"] {
            assert!(!is_stopword(w), "{w} should not be a stopword");
        }
        assert!(is_filler("hahaha") && is_filler("sooo") && is_filler("lolol"));
        assert!(!is_filler("coffee") && !is_filler("hall"));
    }

    #[test]
    fn common_words_match_simple_inflections() {
        assert!(is_common("friends") && is_common("played") && is_common("living"));
        assert!(!is_common("pottery") && !is_common("marathon"));
    }

    #[test]
    fn the_topic_word_comes_first() {
        let texts = [
            "I started a pottery class last week!",
            "Pottery is so relaxing, honestly I love the wheel.",
            "lol yeah ok",
            "My pottery teacher says my bowls are getting better",
            "pottery class again tomorrow haha",
        ];
        let got = keywords(&texts, 5);
        assert_eq!(got.first().map(String::as_str), Some("pottery"), "{got:?}");
        assert!(got.contains(&"pottery class".to_string()), "{got:?}");
        for filler in ["lol", "yeah", "ok", "haha", "the", "tomorrow"] {
            assert!(!got.iter().any(|k| k == filler), "{filler} in {got:?}");
        }
    }

    #[test]
    fn repeated_bigrams_replace_their_words() {
        let texts = [
            "Machine learning is hard.",
            "I want to get into machine learning.",
            "We moved to New York, and New York is loud.",
        ];
        let got = keywords(&texts, 10);
        assert!(got.contains(&"machine learning".to_string()), "{got:?}");
        assert!(got.contains(&"new york".to_string()), "{got:?}");
        assert!(!got.contains(&"machine".to_string()), "{got:?}");
        assert!(!got.contains(&"york".to_string()), "{got:?}");
        // A phrase seen once is not a keyword.
        assert!(!got.contains(&"york loud".to_string()), "{got:?}");
    }

    #[test]
    fn bigrams_do_not_cross_punctuation() {
        let texts = ["pizza. party", "pizza, party", "pizza party"];
        let got = keywords(&texts, 10);
        assert!(!got.contains(&"pizza party".to_string()), "{got:?}");
    }

    #[test]
    fn output_is_lower_case_deterministic_and_tie_broken_alphabetically() {
        // Punctuation between the words, so no phrase repeats.
        let texts = ["Zebra, apple, Mango", "MANGO; zebra; APPLE"];
        let a = keywords(&texts, 10);
        assert_eq!(a, keywords(&texts, 10));
        // Equal length, count and spread: alphabetical, lower case.
        assert_eq!(a, vec!["apple", "mango", "zebra"]);
        assert_eq!(keywords(&texts, 1).len(), 1);
        assert!(keywords(&[], 5).is_empty());
        assert!(keywords(&["lol ok yeah", "''''"], 5).is_empty());
    }

    #[test]
    fn rarer_words_outrank_common_ones_at_equal_frequency() {
        let got = keywords(&["good time at the astronomy club"], 10);
        let astronomy = got.iter().position(|k| k == "astronomy");
        let time = got.iter().position(|k| k == "time");
        assert!(astronomy.is_some() && astronomy < time, "{got:?}");
    }

    #[test]
    fn two_letter_acronyms_need_capitals_and_long_junk_is_dropped() {
        let junk = "x".repeat(40) + "y";
        let text = format!("AI is fun, ai, {junk}");
        let got = keywords(&[&text], 10);
        assert!(got.contains(&"ai".to_string()), "{got:?}");
        assert!(!got.iter().any(|k| k.len() > MAX_TERM_CHARS), "{got:?}");
    }

    #[test]
    fn handles_adversarial_text() {
        let long = "word ".repeat(2_000) + &"ü".repeat(10_000);
        for text in [
            "😀😀",
            "東京タワーに行った",
            "مرحبا بالعالم",
            "''''",
            "\u{0}\u{202e}x",
            &long,
        ] {
            let _ = keywords(&[text], 8);
            let _ = words(text).count();
        }
    }
}
