//! The text analysis of the index: words split on anything not alphanumeric, with each
//! CJK character a token of its own (those scripts do not separate words by spaces),
//! lower-cased, over-long tokens dropped, English stemming.

use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, Stemmer, StopWordFilter, TextAnalyzer, Token,
    TokenStream, Tokenizer,
};

/// Name under which the analyzer is registered with the index.
pub(crate) const ANALYZER: &str = "mnemo";

/// Builds the analyzer used for documents and queries alike.
pub(crate) fn analyzer() -> TextAnalyzer {
    let stopwords = super::STOPWORDS
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .flat_map(str::split_whitespace)
        .map(str::to_owned);
    TextAnalyzer::builder(WordTokenizer::default())
        .filter(RemoveLongFilter::limit(48))
        .filter(LowerCaser)
        .filter(StopWordFilter::remove(stopwords))
        .filter(Stemmer::new(Language::English))
        .build()
}

/// Ideographs, kana and hangul: scripts written without spaces between words.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF      // hiragana, katakana
        | 0x3400..=0x4DBF    // CJK extension A
        | 0x4E00..=0x9FFF    // CJK unified ideographs
        | 0xAC00..=0xD7AF    // hangul syllables
        | 0xF900..=0xFAFF    // CJK compatibility ideographs
        | 0x20000..=0x2FA1F) // CJK extensions B and later
}

#[derive(Clone, Default)]
pub(crate) struct WordTokenizer {
    token: Token,
}

pub(crate) struct WordTokenStream<'a> {
    text: &'a str,
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
    token: &'a mut Token,
}

impl Tokenizer for WordTokenizer {
    type TokenStream<'a> = WordTokenStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> WordTokenStream<'a> {
        self.token.reset();
        WordTokenStream {
            text,
            chars: text.char_indices().peekable(),
            token: &mut self.token,
        }
    }
}

fn is_apostrophe(c: char) -> bool {
    c == '\'' || c == '\u{2019}'
}

impl TokenStream for WordTokenStream<'_> {
    fn advance(&mut self) -> bool {
        self.token.text.clear();
        self.token.position = self.token.position.wrapping_add(1);
        while let Some((start, c)) = self.chars.next() {
            if !c.is_alphanumeric() {
                continue;
            }
            let mut end = start + c.len_utf8();
            self.token.text.push(c);
            if !is_cjk(c) {
                // A word runs on through letters and digits, and through an apostrophe
                // between two of them ("don't", "Lena's": the stemmer strips the
                // possessive, the stopword list knows the contractions).
                while let Some(&(offset, next)) = self.chars.peek() {
                    if next.is_alphanumeric() && !is_cjk(next) {
                        self.token.text.push(next);
                        end = offset + next.len_utf8();
                        self.chars.next();
                    } else if is_apostrophe(next) {
                        let after = self.text[offset + next.len_utf8()..].chars().next();
                        if !after.is_some_and(|a| a.is_alphanumeric() && !is_cjk(a)) {
                            break;
                        }
                        self.token.text.push('\'');
                        end = offset + next.len_utf8();
                        self.chars.next();
                    } else {
                        break;
                    }
                }
            }
            self.token.offset_from = start;
            self.token.offset_to = end;
            return true;
        }
        false
    }

    fn token(&self) -> &Token {
        self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        self.token
    }
}

/// The distinct terms of `text` after analysis, in first-seen order.
pub(crate) fn terms(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut stream = analyzer.token_stream(text);
    while stream.advance() {
        let term = &stream.token().text;
        if !out.iter().any(|t| t == term) {
            out.push(term.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_words_and_cjk_characters() {
        let mut a = analyzer();
        assert_eq!(
            terms(&mut a, "Running to the 東京 café! 😀 مرحبا"),
            vec!["run", "東", "京", "café", "مرحبا"],
            "stopwords (to, the) are dropped"
        );
    }

    #[test]
    fn apostrophes_stay_inside_words() {
        let mut a = analyzer();
        assert_eq!(
            terms(&mut a, "What's Lena's dog’s name? rock 'n' roll"),
            vec!["lena", "dog", "name", "rock", "n", "roll"]
        );
    }
}
