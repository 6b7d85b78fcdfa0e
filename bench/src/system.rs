//! What the machine is, and what this process may use and uses: all read from /proc.

use std::process::Command;

/// The machine the figures were measured on.
pub(crate) struct Machine {
    pub(crate) cpu: String,
    pub(crate) cores: usize,
    pub(crate) memory: String,
    pub(crate) os: String,
    pub(crate) rustc: String,
    pub(crate) open_files: String,
}

impl Machine {
    pub(crate) fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|line| line.starts_with("model name"))
            .and_then(|line| line.split_once(':'))
            .map_or_else(|| "unknown".into(), |(_, model)| model.trim().to_owned());
        let memory = meminfo_kb("MemTotal").map_or_else(
            || "unknown".into(),
            |kb| format!("{:.1} GiB", kb as f64 / 1_048_576.0),
        );
        let os = std::fs::read_to_string("/proc/sys/kernel/osrelease").map_or_else(
            |_| "unknown".into(),
            |release| format!("Linux {}", release.trim()),
        );
        let rustc = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
            .arg("--version")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .map_or_else(|| "unknown".into(), |version| version.trim().to_owned());
        let open_files = match open_files_limit() {
            Some((soft, hard)) => format!("{soft} (hard {hard})"),
            None => "unknown".into(),
        };
        Self {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            memory,
            os,
            rustc,
            open_files,
        }
    }
}

fn meminfo_kb(field: &str) -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    meminfo
        .lines()
        .find(|line| line.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// This process's resident set, in KiB (`VmRSS` of /proc/self/status).
pub(crate) fn rss_kib() -> Option<u64> {
    rss_kib_of("self")
}

/// A process's resident set, in KiB: `VmRSS` of `/proc/<pid>/status` (`"self"` for this one).
pub(crate) fn rss_kib_of(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The soft and hard limits on open files (`ulimit -n`), from /proc/self/limits.
pub(crate) fn open_files_limit() -> Option<(u64, u64)> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    let mut numbers = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .map(|value| {
            if value == "unlimited" {
                Some(u64::MAX)
            } else {
                value.parse().ok()
            }
        });
    Some((numbers.next()??, numbers.next()??))
}

/// How many sockets a process may hold beside the handful every process needs: the
/// connection counts are scaled down to this when `ulimit -n` is low.
pub(crate) fn socket_budget() -> usize {
    open_files_limit().map_or(1_000, |(soft, _)| {
        usize::try_from(soft.saturating_sub(256)).unwrap_or(usize::MAX)
    })
}

/// Scales `wanted` connections to what the open-files limit allows; the note says so when
/// it had to.
pub(crate) fn scale_to_fd_limit(wanted: usize) -> (usize, Option<String>) {
    let budget = socket_budget();
    if wanted <= budget {
        (wanted, None)
    } else {
        let (soft, hard) = open_files_limit().unwrap_or((0, 0));
        (
            budget,
            Some(format!(
                "scaled down from {wanted} to {budget} connections: the open-files soft limit is \
                 {soft} (hard {hard}); raising it needs setrlimit (the `rlimit` or `libc` crate) \
                 or `ulimit -n` before the run"
            )),
        )
    }
}

/// CPU time all of this process's threads have had, in ns (the first field of every
/// /proc/self/task/*/schedstat).
pub(crate) fn process_cpu_ns() -> u64 {
    per_thread(|tid| {
        std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

/// Context switches (voluntary and not) of all of this process's threads so far.
pub(crate) fn context_switches() -> u64 {
    per_thread(|tid| {
        let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).ok()?;
        Some(
            status
                .lines()
                .filter(|line| line.contains("ctxt_switches:"))
                .filter_map(|line| line.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum(),
        )
    })
}

fn per_thread(read: impl Fn(&str) -> Option<u64>) -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| read(&task.file_name().to_string_lossy()))
        .sum()
}
