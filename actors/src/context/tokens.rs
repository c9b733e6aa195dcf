//! Token counting for rendering (cl100k), with the counts of the pieces a prompt is made
//! of remembered: the same turns and memories are rendered again and again, and running
//! the tokenizer was about a fifth of a context request's CPU (BENCHMARKS.md).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use tiktoken_rs::CoreBPE;

/// Pieces whose counts are remembered; past that the memory starts again empty.
const REMEMBERED: usize = 200_000;

/// Counts tokens as the model's tokenizer does.
pub struct TokenCounter {
    bpe: CoreBPE,
    /// Token counts by a hash of the piece's text.
    remembered: Mutex<HashMap<u64, u32>>,
}

impl std::fmt::Debug for TokenCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCounter").finish_non_exhaustive()
    }
}

impl TokenCounter {
    /// A counter with the given tokenizer.
    pub fn new(bpe: CoreBPE) -> Self {
        Self {
            bpe,
            remembered: Mutex::new(HashMap::new()),
        }
    }

    /// The tokens of `text`.
    pub fn count(&self, text: &str) -> usize {
        self.bpe.encode_ordinary(text).len()
    }

    /// The tokens of one piece of a prompt, remembered for the next time it is rendered.
    pub fn count_piece(&self, piece: &str) -> usize {
        let mut hasher = DefaultHasher::new();
        piece.hash(&mut hasher);
        let key = hasher.finish();
        if let Some(&n) = self.lock().get(&key) {
            return n as usize;
        }
        let n = self.count(piece);
        let mut remembered = self.lock();
        if remembered.len() >= REMEMBERED {
            remembered.clear();
        }
        remembered.insert(key, u32::try_from(n).unwrap_or(u32::MAX));
        n
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, u32>> {
        // A panic while holding it leaves only counts behind, all still right.
        self.remembered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_counts_are_the_tokenizers() {
        let counter = TokenCounter::new(tiktoken_rs::cl100k_base().unwrap());
        for text in [
            "",
            "hello world\n",
            "## Relevant memories\n",
            "- [2024-01-02] x.\n",
        ] {
            let exact = counter.count(text);
            assert_eq!(counter.count_piece(text), exact, "{text:?}");
            assert_eq!(counter.count_piece(text), exact, "{text:?}, remembered");
        }
    }
}
