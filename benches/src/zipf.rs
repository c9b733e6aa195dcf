//! A Zipf distribution over ranks `0..n`: rank `r` is drawn with probability
//! proportional to `1 / (r + 1)^s`. Natural-language word frequencies follow it with `s`
//! near 1, which is what makes a full-text index's posting lists uneven.

use rand::Rng;

/// A Zipf distribution over `0..n`, sampled by binary search in its cumulative table.
#[derive(Debug, Clone)]
pub struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    /// The distribution over `n` ranks (at least one) with exponent `s` (>= 0).
    pub fn new(n: usize, s: f64) -> Self {
        let n = n.max(1);
        let s = s.max(0.0);
        let mut cumulative = Vec::with_capacity(n);
        let mut total = 0.0;
        for rank in 0..n {
            total += 1.0 / ((rank + 1) as f64).powf(s);
            cumulative.push(total);
        }
        for c in &mut cumulative {
            *c /= total;
        }
        Self { cumulative }
    }

    /// Number of ranks.
    pub fn len(&self) -> usize {
        self.cumulative.len()
    }

    /// Always false: a distribution has at least one rank.
    pub fn is_empty(&self) -> bool {
        self.cumulative.is_empty()
    }

    /// The probability of `rank`.
    pub fn probability(&self, rank: usize) -> f64 {
        match rank {
            0 => self.cumulative[0],
            r if r < self.cumulative.len() => self.cumulative[r] - self.cumulative[r - 1],
            _ => 0.0,
        }
    }

    /// Draws a rank.
    pub fn sample(&self, rng: &mut impl Rng) -> usize {
        let u: f64 = rng.random();
        self.cumulative
            .partition_point(|&c| c < u)
            .min(self.cumulative.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    use super::*;

    #[test]
    fn probabilities_follow_the_power_law_and_sum_to_one() {
        let zipf = Zipf::new(1000, 1.0);
        let total: f64 = (0..zipf.len()).map(|r| zipf.probability(r)).sum();
        assert!((total - 1.0).abs() < 1e-9);
        // p(r) / p(2r) = 2^s for s = 1.
        for r in [1usize, 5, 50] {
            let ratio = zipf.probability(r - 1) / zipf.probability(2 * r - 1);
            assert!((ratio - 2.0).abs() < 1e-9, "rank {r}: ratio {ratio}");
        }
    }

    #[test]
    fn samples_have_the_zipf_shape() {
        let zipf = Zipf::new(1000, 1.0);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        let mut counts = vec![0u64; zipf.len()];
        let draws = 200_000;
        for _ in 0..draws {
            counts[zipf.sample(&mut rng)] += 1;
        }
        // The most frequent ranks come first, about twice as often as their double.
        assert!(counts[0] > counts[1] && counts[1] > counts[3] && counts[3] > counts[9]);
        let ratio = counts[0] as f64 / counts[1] as f64;
        assert!((1.8..2.2).contains(&ratio), "rank 1 / rank 2 = {ratio}");
        // Each empirical frequency of the top ranks is near its probability.
        for (rank, &count) in counts.iter().enumerate().take(20) {
            let expected = zipf.probability(rank) * draws as f64;
            let error = (count as f64 - expected).abs() / expected;
            assert!(
                error < 0.1,
                "rank {rank}: {count} drawn, {expected:.0} expected"
            );
        }
        // The log-log slope over the top 100 ranks is near -s.
        let points: Vec<(f64, f64)> = (0..100)
            .map(|r| (((r + 1) as f64).ln(), (counts[r] as f64).ln()))
            .collect();
        let n = points.len() as f64;
        let (mx, my) = (
            points.iter().map(|p| p.0).sum::<f64>() / n,
            points.iter().map(|p| p.1).sum::<f64>() / n,
        );
        let slope = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f64>()
            / points.iter().map(|p| (p.0 - mx).powi(2)).sum::<f64>();
        assert!((-1.15..-0.85).contains(&slope), "slope {slope}");
    }

    #[test]
    fn a_flat_exponent_is_uniform() {
        let zipf = Zipf::new(4, 0.0);
        for r in 0..4 {
            assert!((zipf.probability(r) - 0.25).abs() < 1e-12);
        }
        assert_eq!(zipf.probability(9), 0.0);
    }
}
