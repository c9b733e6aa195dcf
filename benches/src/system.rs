//! What the runners report about the machine and the process: cores, memory, resident
//! set size, and sizes of directories on disk.

use std::path::Path;

use serde::Serialize;

/// The machine a run was made on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Machine {
    /// CPU cores available to this process.
    pub cores: usize,
    /// Total memory in GiB (`MemTotal` of /proc/meminfo).
    pub memory_gib: f64,
}

impl Machine {
    /// This machine.
    pub fn this() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let memory_gib = proc_field("/proc/meminfo", "MemTotal:")
            .map_or(0.0, |kib| kib as f64 / (1024.0 * 1024.0));
        Self { cores, memory_gib }
    }
}

impl std::fmt::Display for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} cores, {:.1} GiB", self.cores, self.memory_gib)
    }
}

/// A `Name:   123 kB` field of a /proc file, in KiB.
fn proc_field(file: &str, name: &str) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.lines().find(|l| l.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

/// The process's resident set size now (`VmRSS`), in bytes; `None` off Linux.
pub fn resident_bytes() -> Option<u64> {
    proc_field("/proc/self/status", "VmRSS:").map(|kib| kib * 1024)
}

/// The process's peak resident set size (`VmHWM`), in bytes; `None` off Linux.
pub fn peak_resident_bytes() -> Option<u64> {
    proc_field("/proc/self/status", "VmHWM:").map(|kib| kib * 1024)
}

/// Bytes of the files under `path` (a file or a directory), following no links; 0 when
/// it does not exist.
pub fn disk_bytes(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_file() {
        return meta.len();
    }
    if !meta.is_dir() {
        return 0;
    }
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| disk_bytes(&e.path()))
                .sum()
        })
        .unwrap_or(0)
}

/// Bytes as MiB.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Store sizes to grow through, ascending, each once; `None` when there are none.
pub fn ascending_sizes(sizes: &[u64]) -> Option<Vec<u64>> {
    let mut sizes = sizes.to_vec();
    sizes.sort_unstable();
    sizes.dedup();
    (!sizes.is_empty()).then_some(sizes)
}

/// A count written like `10k` or `1M` (thousands, millions), or plain digits.
pub fn parse_count(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, factor) = match text.chars().last() {
        Some('k' | 'K') => (&text[..text.len() - 1], 1_000),
        Some('m' | 'M') => (&text[..text.len() - 1], 1_000_000),
        _ => (text, 1),
    };
    digits
        .parse::<u64>()
        .map(|n| n * factor)
        .map_err(|e| format!("{text:?} is not a count like 10k or 1M: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_grown_through_in_order_each_once() {
        assert_eq!(
            ascending_sizes(&[1_000_000, 10_000, 100_000, 10_000]),
            Some(vec![10_000, 100_000, 1_000_000])
        );
        assert_eq!(ascending_sizes(&[]), None);
    }

    #[test]
    fn sizes_and_memory_are_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), vec![0u8; 1000]).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/b"), vec![0u8; 24]).unwrap();
        assert_eq!(disk_bytes(dir.path()), 1024);
        assert_eq!(disk_bytes(&dir.path().join("missing")), 0);
        assert!(resident_bytes().unwrap() > 0);
        assert!(peak_resident_bytes().unwrap() >= resident_bytes().unwrap() / 2);
        assert!(Machine::this().cores >= 1);
    }

    #[test]
    fn counts_take_thousands_and_millions() {
        assert_eq!(parse_count("100k"), Ok(100_000));
        assert_eq!(parse_count(" 1M"), Ok(1_000_000));
        assert_eq!(parse_count("250"), Ok(250));
        assert!(parse_count("lots").is_err());
    }
}
