//! Process memory (RSS) and CPU time read from the operating system.
//!
//! On Linux these come from `/proc/self/statm` and `/proc/self/stat`; the page
//! size and clock tick rate come from the auxiliary vector through `rustix`.
//! Other systems report [`ObservabilityError::ProcessStats`].

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::ObservabilityError;

/// One reading of this process's resource use.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProcessStats {
    /// Resident set size in bytes.
    pub rss_bytes: u64,
    /// User plus system CPU time consumed since the process started.
    pub cpu_time: Duration,
}

/// Turns successive CPU time readings into a usage percentage.
///
/// The percentage is of one core, over the time since the previous sample, so
/// a process busy on two cores reads 200.
#[derive(Debug, Default)]
pub(crate) struct CpuSampler {
    last: Mutex<Option<(Instant, Duration)>>,
}

// === impl ProcessStats ===

impl ProcessStats {
    /// Reads the current statistics of this process.
    ///
    /// # Errors
    ///
    /// [`ObservabilityError::ProcessStats`] when `/proc` cannot be read or
    /// parsed, which includes every non-Linux system.
    pub fn read() -> Result<Self, ObservabilityError> {
        let statm = read_proc(STATM)?;
        let stat = read_proc(STAT)?;
        let rss_pages = parse_statm_resident(&statm).ok_or_else(|| malformed(STATM))?;
        let ticks = parse_stat_cpu_ticks(&stat).ok_or_else(|| malformed(STAT))?;
        let page_size = page_size();
        let tick_rate = clock_ticks_per_second().max(1);
        Ok(Self {
            rss_bytes: rss_pages.saturating_mul(page_size),
            cpu_time: ticks_to_duration(ticks, tick_rate),
        })
    }
}

const STATM: &str = "/proc/self/statm";
const STAT: &str = "/proc/self/stat";

fn read_proc(path: &'static str) -> Result<String, ObservabilityError> {
    std::fs::read_to_string(path)
        .map_err(|source| ObservabilityError::ProcessStats { path, source })
}

fn malformed(path: &'static str) -> ObservabilityError {
    ObservabilityError::ProcessStats {
        path,
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, "unexpected format"),
    }
}

#[cfg(target_os = "linux")]
fn page_size() -> u64 {
    u64::try_from(rustix::param::page_size()).unwrap_or(4096)
}

#[cfg(not(target_os = "linux"))]
fn page_size() -> u64 {
    4096
}

#[cfg(target_os = "linux")]
fn clock_ticks_per_second() -> u64 {
    rustix::param::clock_ticks_per_second()
}

#[cfg(not(target_os = "linux"))]
fn clock_ticks_per_second() -> u64 {
    100
}

/// The second field of `/proc/self/statm`: resident pages.
fn parse_statm_resident(statm: &str) -> Option<u64> {
    statm.split_ascii_whitespace().nth(1)?.parse().ok()
}

/// `utime + stime` (fields 14 and 15) of `/proc/self/stat`, in clock ticks.
///
/// The command name (field 2) is in parentheses and may itself contain spaces
/// and parentheses, so the fields are counted from the last `)`.
fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // After the command come: state (3), ppid (4), ... utime (14), stime (15).
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime.saturating_add(stime))
}

fn ticks_to_duration(ticks: u64, tick_rate: u64) -> Duration {
    let secs = ticks / tick_rate;
    let rem = ticks % tick_rate;
    Duration::from_secs(secs) + Duration::from_nanos(rem.saturating_mul(1_000_000_000) / tick_rate)
}

// === impl CpuSampler ===

impl CpuSampler {
    /// Records `cpu_time` read at `now` and returns the usage percentage since
    /// the previous sample, or `None` for the first sample.
    pub(crate) fn sample(&self, now: Instant, cpu_time: Duration) -> Option<f64> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let previous = last.replace((now, cpu_time));
        let (then, cpu_then) = previous?;
        let wall = now.checked_duration_since(then)?.as_secs_f64();
        if wall <= 0.0 {
            return None;
        }
        let used = cpu_time.saturating_sub(cpu_then).as_secs_f64();
        Some(used / wall * 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing_survives_parentheses_and_spaces_in_the_command_name() {
        let stat =
            "4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 1 2 3";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(300));
        assert_eq!(parse_statm_resident("1000 250 30 1 0 200 0\n"), Some(250));
        assert_eq!(parse_statm_resident("garbage"), None);
        assert_eq!(parse_stat_cpu_ticks("no parenthesis here"), None);
    }

    #[test]
    fn ticks_convert_to_duration_with_the_tick_rate() {
        assert_eq!(ticks_to_duration(250, 100), Duration::from_millis(2500));
        assert_eq!(ticks_to_duration(1, 3), Duration::from_nanos(333_333_333));
    }

    #[test]
    fn cpu_sampler_reports_percent_of_one_core_since_the_previous_sample() {
        let sampler = CpuSampler::default();
        let t0 = Instant::now();
        assert_eq!(sampler.sample(t0, Duration::from_secs(1)), None);
        let pct = sampler
            .sample(t0 + Duration::from_secs(2), Duration::from_secs(2))
            .unwrap();
        assert!((pct - 50.0).abs() < 1e-9, "{pct}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_a_nonzero_resident_size_of_this_process() {
        let stats = ProcessStats::read().unwrap();
        assert!(stats.rss_bytes > 0);
    }
}
