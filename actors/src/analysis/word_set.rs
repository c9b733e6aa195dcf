//! The set of a text's words, for near-duplicate checks (context ranking, summaries):
//! each word is hashed once, lower-cased, and the set kept as sorted hashes, so the many
//! comparisons of one request are merges of two short arrays, without a string per word.
//! Two different words sharing a 64-bit hash would only make two texts look a little
//! more alike.

/// A set of words.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WordSet {
    /// The words' hashes, sorted, each once.
    hashes: Vec<u64>,
}

impl WordSet {
    /// The alphanumeric words of `text`, case ignored.
    pub fn of_text(text: &str) -> Self {
        Self::of_words(
            text.split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty()),
        )
    }

    /// The given words, case ignored.
    pub fn of_words<'a>(words: impl IntoIterator<Item = &'a str>) -> Self {
        let mut hashes: Vec<u64> = words.into_iter().map(word_hash).collect();
        hashes.sort_unstable();
        hashes.dedup();
        Self { hashes }
    }

    /// How many words.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether it has no words.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// The share of all their words the two sets have in common (Jaccard); two empty
    /// sets are alike.
    pub fn jaccard(&self, other: &WordSet) -> f64 {
        let (a, b) = (&self.hashes, &other.hashes);
        if a.is_empty() && b.is_empty() {
            return 1.0;
        }
        let (mut i, mut j, mut shared) = (0, 0, 0usize);
        while i < a.len() && j < b.len() {
            match a[i].cmp(&b[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    shared += 1;
                    i += 1;
                    j += 1;
                }
            }
        }
        shared as f64 / (a.len() + b.len() - shared) as f64
    }
}

/// FNV-1a over the word's lower-cased characters.
fn word_hash(word: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for c in word.chars().flat_map(char::to_lowercase) {
        let mut buf = [0u8; 4];
        for byte in c.encode_utf8(&mut buf).bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_compared_case_and_punctuation_ignored() {
        let a = WordSet::of_text("the cat sat");
        let b = WordSet::of_text("The cat sat! the");
        let c = WordSet::of_text("a dog ran");
        assert_eq!(a.len(), 3);
        assert_eq!(a, b);
        assert!((a.jaccard(&b) - 1.0).abs() < 1e-9);
        assert_eq!(a.jaccard(&c), 0.0);
        let d = WordSet::of_text("the cat ran");
        assert!((a.jaccard(&d) - 0.5).abs() < 1e-9, "2 shared of 4");
        assert_eq!(WordSet::of_text("").jaccard(&WordSet::of_text("...")), 1.0);
        assert_eq!(WordSet::of_text("").jaccard(&a), 0.0);
        assert_eq!(
            WordSet::of_text("ÉCOLE, Straße"),
            WordSet::of_words(["école", "straße"])
        );
    }
}
