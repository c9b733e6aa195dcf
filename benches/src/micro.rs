//! What the criterion micro-benches (`benches/benches/`) share with nothing else: whether a
//! run measures or only checks that every bench works, so a check run can use small
//! sizes and finish in seconds.

/// How a criterion bench binary was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `cargo bench`: measure, on the full sizes.
    Measure,
    /// `cargo test --benches`, `cargo bench -- --test` or `-- --list`: criterion runs each
    /// bench once (or none), so the setup uses small sizes.
    Check,
}

impl Mode {
    /// The mode criterion itself picks from the same arguments: `cargo bench` passes
    /// `--bench`; `--test` (added by hand) or `--list` make it a check, and so does the
    /// absence of `--bench` (`cargo test --benches`).
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Self {
        let (mut bench, mut check) = (false, false);
        for arg in args {
            match arg.as_str() {
                "--bench" => bench = true,
                "--test" | "--list" => check = true,
                _ => {}
            }
        }
        if bench && !check {
            Mode::Measure
        } else {
            Mode::Check
        }
    }

    /// `measure` when measuring, else `check`.
    pub fn pick<T>(self, measure: T, check: T) -> T {
        match self {
            Mode::Measure => measure,
            Mode::Check => check,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|a| (*a).to_owned()).collect()
    }

    #[test]
    fn only_a_plain_cargo_bench_measures() {
        assert_eq!(Mode::from_args(args(&["bin", "--bench"])), Mode::Measure);
        assert_eq!(
            Mode::from_args(args(&["bin", "--bench", "search"])),
            Mode::Measure
        );
        assert_eq!(
            Mode::from_args(args(&["bin", "--bench", "--test"])),
            Mode::Check
        );
        assert_eq!(
            Mode::from_args(args(&["bin", "--bench", "--list"])),
            Mode::Check
        );
        assert_eq!(Mode::from_args(args(&["bin"])), Mode::Check);
        assert_eq!(Mode::Measure.pick(100, 2), 100);
        assert_eq!(Mode::Check.pick(100, 2), 2);
    }
}
