//! Reading the Prometheus text exposition in tests.

/// The sample lines of `family` (not its HELP or TYPE lines).
pub fn samples<'a>(text: &'a str, family: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    text.lines().filter(move |line| {
        line.strip_prefix(family)
            .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
    })
}

/// Whether `family` has a sample carrying every one of `labels`.
pub fn has_sample(text: &str, family: &str, labels: &[(&str, &str)]) -> bool {
    samples(text, family).any(|line| {
        labels
            .iter()
            .all(|(key, value)| line.contains(&format!("{key}=\"{value}\"")))
    })
}
