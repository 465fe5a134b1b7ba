//! CPU time and resident memory of process groups, read from `/proc`: what `top job`
//! shows per replica (each replica leads its own process group).

use std::collections::BTreeMap;

/// What one process group uses at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GroupUsage {
    /// CPU seconds used so far by its live processes (user + system).
    pub cpu_seconds: f64,
    /// Resident memory of its processes, bytes.
    pub rss_bytes: u64,
    /// How many processes it has.
    pub processes: usize,
}

impl GroupUsage {
    /// Resident memory in MiB.
    pub fn rss_mib(&self) -> u64 {
        self.rss_bytes / (1024 * 1024)
    }
}

/// Fields of `/proc/PID/stat` after the command name: state is field 0.
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    Some(stat[stat.rfind(')')? + 1..].split_whitespace().collect())
}

/// Usage of every process group in `groups`, scanning `/proc` once.
pub fn groups(groups: &[u32]) -> BTreeMap<u32, GroupUsage> {
    let mut usage: BTreeMap<u32, GroupUsage> =
        groups.iter().map(|g| (*g, GroupUsage::default())).collect();
    // SAFETY: sysconf has no preconditions; it returns -1 for unknown names.
    let (page, ticks) = unsafe {
        (
            libc::sysconf(libc::_SC_PAGESIZE),
            libc::sysconf(libc::_SC_CLK_TCK),
        )
    };
    let (page, ticks) = (page.max(1) as u64, ticks.max(1) as f64);
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return usage;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(fields) = stat_fields(&stat) else {
            continue;
        };
        // After the name: state(0) ppid(1) pgrp(2) ... utime(11) stime(12) ... rss(21) pages.
        let number = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let Some(group) = usage.get_mut(&(number(2) as u32)) else {
            continue;
        };
        group.cpu_seconds += (number(11) + number(12)) as f64 / ticks;
        group.rss_bytes += number(21) * page;
        group.processes += 1;
    }
    usage
}

/// CPU percent between two readings `seconds` apart (100 = one core busy).
pub fn cpu_percent(before: &GroupUsage, after: &GroupUsage, seconds: f64) -> f64 {
    if seconds <= 0.0 {
        return 0.0;
    }
    ((after.cpu_seconds - before.cpu_seconds).max(0.0) / seconds * 100.0 * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn a_busy_process_group_shows_cpu_time_and_memory() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done"])
            .process_group(0)
            .spawn()
            .unwrap();
        let group = child.id();
        let started = std::time::Instant::now();
        let before = groups(&[group])[&group];
        let mut after = before;
        while after.cpu_seconds <= before.cpu_seconds && started.elapsed().as_secs() < 20 {
            std::thread::sleep(std::time::Duration::from_millis(100));
            after = groups(&[group])[&group];
        }
        let pct = cpu_percent(&before, &after, started.elapsed().as_secs_f64());
        child.kill().ok();
        child.wait().ok();
        assert_eq!(after.processes, 1);
        assert!(after.rss_bytes > 100 * 1024, "{after:?}");
        assert!(pct > 0.0, "a spinning shell uses CPU: {after:?}");
    }

    #[test]
    fn an_unknown_group_reads_as_nothing() {
        let usage = groups(&[u32::MAX]);
        assert_eq!(usage[&u32::MAX], GroupUsage::default());
    }
}
