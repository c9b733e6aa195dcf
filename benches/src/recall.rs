//! The retrieval metric of the LoCoMo benchmark: recall@k = the share of a question's
//! evidence turns among the first k retrieved, averaged over questions, per category
//! (1 multi-hop, 2 temporal, 3 open-domain, 4 single-hop, 5 adversarial) and overall.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{json, Map, Value};

/// The cut-offs reported.
pub const KS: [usize; 4] = [5, 10, 25, 50];

/// The categories, in order, with their names.
pub const CATEGORIES: [(u8, &str); 5] = [
    (1, "multi-hop"),
    (2, "temporal"),
    (3, "open-domain"),
    (4, "single-hop"),
    (5, "adversarial"),
];

/// The share of `evidence` found among the first `k` of `retrieved` (0 without evidence).
pub fn recall_at(evidence: &[String], retrieved: &[String], k: usize) -> f64 {
    if evidence.is_empty() {
        return 0.0;
    }
    let top = &retrieved[..k.min(retrieved.len())];
    let found = evidence.iter().filter(|e| top.contains(e)).count();
    found as f64 / evidence.len() as f64
}

/// Sums of recall@k over questions, per category.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecallTable {
    /// category -> (questions, sum of recall@k for each k of [`KS`])
    sums: BTreeMap<u8, (u64, [f64; KS.len()])>,
}

impl RecallTable {
    /// Adds one question's result; answers its recall@k for each k of [`KS`].
    pub fn add(
        &mut self,
        category: u8,
        evidence: &[String],
        retrieved: &[String],
    ) -> [f64; KS.len()] {
        let recalls = KS.map(|k| recall_at(evidence, retrieved, k));
        let entry = self.sums.entry(category).or_default();
        entry.0 += 1;
        for (sum, r) in entry.1.iter_mut().zip(recalls) {
            *sum += r;
        }
        recalls
    }

    /// Questions counted.
    pub fn questions(&self) -> u64 {
        self.sums.values().map(|(n, _)| n).sum()
    }

    /// Questions counted in `category`.
    pub fn questions_in(&self, category: u8) -> u64 {
        self.sums.get(&category).map_or(0, |(n, _)| *n)
    }

    /// Mean recall@k of `category` for each k, or `None` without questions.
    pub fn category(&self, category: u8) -> Option<[f64; KS.len()]> {
        let (n, sums) = self.sums.get(&category)?;
        (*n > 0).then(|| sums.map(|s| s / *n as f64))
    }

    /// Mean recall@k over every question, for each k.
    pub fn overall(&self) -> [f64; KS.len()] {
        let n = self.questions();
        if n == 0 {
            return [0.0; KS.len()];
        }
        let mut sums = [0.0; KS.len()];
        for (_, s) in self.sums.values() {
            for (total, x) in sums.iter_mut().zip(s) {
                *total += x;
            }
        }
        sums.map(|s| s / n as f64)
    }

    /// The summary file: `{ "overall": { "5": r, ... }, "by_category": { "1": { ... } },
    /// "questions": n }`, recall as a fraction.
    pub fn summary_json(&self) -> Value {
        let at = |values: [f64; KS.len()]| -> Value {
            let mut map = Map::new();
            for (k, v) in KS.iter().zip(values) {
                map.insert(k.to_string(), json!(v));
            }
            Value::Object(map)
        };
        let mut by_category = Map::new();
        for category in self.sums.keys() {
            if let Some(values) = self.category(*category) {
                by_category.insert(category.to_string(), at(values));
            }
        }
        json!({
            "overall": at(self.overall()),
            "by_category": by_category,
            "questions": self.questions(),
        })
    }

    /// The table for people: a row per category and overall, recall in percent, and
    /// the reference rows under it.
    pub fn render(&self, references: &[(&str, [f64; KS.len()])]) -> String {
        let mut out = String::new();
        let _ = write!(out, "{:<28} {:>6}", "", "n");
        for k in KS {
            let _ = write!(out, " {:>6}", format!("R@{k}"));
        }
        out.push('\n');
        let row = |out: &mut String, name: &str, n: Option<u64>, values: [f64; KS.len()]| {
            let n = n.map_or(String::new(), |n| n.to_string());
            let _ = write!(out, "{name:<28} {n:>6}");
            for v in values {
                let _ = write!(out, " {:>6.1}", v * 100.0);
            }
            out.push('\n');
        };
        for (category, name) in CATEGORIES {
            if let Some(values) = self.category(category) {
                let label = format!("{category} {name}");
                row(&mut out, &label, Some(self.questions_in(category)), values);
            }
        }
        row(
            &mut out,
            "overall (1-5)",
            Some(self.questions()),
            self.overall(),
        );
        for (name, values) in references {
            row(&mut out, name, None, *values);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn recall_counts_evidence_within_the_cut() {
        let evidence = ids(&["D1:1", "D2:2"]);
        let mut retrieved: Vec<String> = (0..60).map(|i| format!("D9:{i}")).collect();
        retrieved[3] = "D1:1".into();
        retrieved[30] = "D2:2".into();
        assert_eq!(recall_at(&evidence, &retrieved, 5), 0.5);
        assert_eq!(recall_at(&evidence, &retrieved, 25), 0.5);
        assert_eq!(recall_at(&evidence, &retrieved, 50), 1.0);
        assert_eq!(recall_at(&evidence, &retrieved[..2], 50), 0.0);
        assert_eq!(recall_at(&[], &retrieved, 5), 0.0);
    }

    #[test]
    fn the_summary_averages_per_category_and_overall() {
        let mut table = RecallTable::default();
        table.add(1, &ids(&["a"]), &ids(&["a"]));
        table.add(1, &ids(&["b"]), &ids(&["x"]));
        table.add(4, &ids(&["c", "d"]), &ids(&["c"]));
        let summary = table.summary_json();
        assert_eq!(summary["questions"], 3);
        assert_eq!(summary["by_category"]["1"]["10"], 0.5);
        assert_eq!(summary["by_category"]["4"]["50"], 0.5);
        assert!(summary["by_category"].get("2").is_none());
        assert_eq!(summary["overall"]["5"], json!((1.0 + 0.0 + 0.5) / 3.0));
        let text = table.render(&[("BM25 reference", [0.5, 0.6, 0.7, 0.8])]);
        assert!(text.contains("1 multi-hop"));
        assert!(text.contains("BM25 reference"));
        assert!(text.contains("50.0"));
    }
}
