//! Reading what a process used: `/proc`, GNU time's line, JSON fields, medians.

use super::*;

/// utime + stime of a live process, in seconds (assuming 100 ticks per second).
pub(super) fn proc_cpu_s(pid: u32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat_cpu_s(&stat)
}

pub(super) fn stat_cpu_s(stat: &str) -> Option<f64> {
    // The command name may hold spaces; the fields after its ')' are fixed.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3 overall, utime 14 and stime 15.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

pub(super) fn status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Reads GNU time's line: (user + sys seconds, peak RSS in KiB).
pub(super) fn parse_time(text: &str) -> Option<(f64, u64)> {
    let line = text.lines().find(|l| l.starts_with("xtask-time "))?;
    let get = |k: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
    };
    let user: f64 = get("user")?.parse().ok()?;
    let sys: f64 = get("sys")?.parse().ok()?;
    let rss: u64 = get("maxrss_kb")?.parse().ok()?;
    Some((user + sys, rss))
}

/// The value of `key` in a flat JSON object as serde_json prints it
/// (no spaces): a number, `true`/`false`/`null`, or a string without escapes.
pub(super) fn json_field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":");
    let start = json.find(&pat)? + pat.len();
    let rest = &json[start..];
    if let Some(s) = rest.strip_prefix('"') {
        return s.find('"').map(|end| &s[..end]);
    }
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim())
}

pub(super) fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}
