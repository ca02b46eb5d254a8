//! What the devnet's benchmarks read the same way: settings from the environment, CPU time and
//! bytes written to storage from Linux's `/proc`.

use std::time::Duration;

/// The environment variable `name` parsed, or `default` when unset or unparsable.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// User + system CPU time from a `/proc/.../stat` file (`/proc/self/stat` for this process,
/// `/proc/thread-self/stat` for this thread), in clock ticks of 10 ms.
pub fn cpu_time(stat_file: &str) -> Duration {
    let stat = std::fs::read_to_string(stat_file).unwrap_or_default();
    Duration::from_millis(cpu_ticks(&stat) * 10)
}

/// User + system CPU clock ticks in the text of a `/proc/.../stat` file.
pub fn cpu_ticks(stat: &str) -> u64 {
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    rest.split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum()
}

/// Bytes this process has caused to be written to storage so far (`/proc/self/io`,
/// `write_bytes`): block files, databases and their fsyncs, the ledgers' write amplification.
pub fn disk_write_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}
