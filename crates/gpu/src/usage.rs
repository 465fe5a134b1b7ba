//! CPU time and resident memory of process groups, read from `/proc`: what `top job`
//! shows per replica (each replica leads its own process group).
//!
//! A sample follows each group's process tree from its leader through
//! `/proc/PID/task/TID/children`, so it reads only the replicas' own processes; where the
//! kernel lacks those files (built without `CONFIG_PROC_CHILDREN`), it scans all of `/proc`.

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

/// One process's line of `/proc/PID/stat`, the fields a sample needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stat {
    /// Its process group.
    pub(crate) group: u32,
    cpu_ticks: u64,
    rss_pages: u64,
}

/// Reads `/proc/PID/stat`; None when the process is gone or the line is malformed.
pub(crate) fn read_stat(pid: u32) -> Option<Stat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    // After the name: state(0) ppid(1) pgrp(2) ... utime(11) stime(12) ... rss(21) pages.
    let number = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Some(Stat {
        group: number(2) as u32,
        cpu_ticks: number(11) + number(12),
        rss_pages: number(21),
    })
}

/// The children of every thread of `pid`; None when the kernel has no `children` files.
fn children(pid: u32) -> Option<Vec<u32>> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut out = Vec::new();
    let mut any = false;
    for task in tasks.flatten() {
        let Ok(text) = std::fs::read_to_string(task.path().join("children")) else {
            continue;
        };
        any = true;
        out.extend(
            text.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    any.then_some(out)
}

/// Whether this kernel lists a process's children in `/proc/PID/task/TID/children`.
fn kernel_lists_children() -> bool {
    let me = std::process::id();
    std::path::Path::new(&format!("/proc/{me}/task/{me}/children")).exists()
}

/// Adds one process's stat to `usage`.
fn add(usage: &mut GroupUsage, stat: &Stat, page: u64, ticks: f64) {
    usage.cpu_seconds += stat.cpu_ticks as f64 / ticks;
    usage.rss_bytes += stat.rss_pages * page;
    usage.processes += 1;
}

/// Usage of every process group in `groups`: their process trees when the kernel lists
/// children, else one scan of `/proc`.
pub fn groups(groups: &[u32]) -> BTreeMap<u32, GroupUsage> {
    if kernel_lists_children() {
        by_tree(groups)
    } else {
        by_scan(groups)
    }
}

/// The page size in bytes and the clock ticks per second.
fn units() -> (u64, f64) {
    // SAFETY: sysconf has no preconditions; it returns -1 for unknown names.
    let (page, ticks) = unsafe {
        (
            libc::sysconf(libc::_SC_PAGESIZE),
            libc::sysconf(libc::_SC_CLK_TCK),
        )
    };
    (page.max(1) as u64, ticks.max(1) as f64)
}

/// Usage of every group in `groups` by walking each group's tree from its leader (the group
/// id is the leader's pid), counting the descendants still in the group. Processes that left
/// the tree (orphans re-parented to init) are not seen, nor are those that started a group of
/// their own. Needs the kernel's `children` files ([`groups`] picks).
pub fn by_tree(groups: &[u32]) -> BTreeMap<u32, GroupUsage> {
    let (page, ticks) = units();
    let mut usage = BTreeMap::new();
    for &group in groups {
        let mut total = GroupUsage::default();
        let mut pending = vec![group];
        while let Some(pid) = pending.pop() {
            let Some(stat) = read_stat(pid) else {
                continue;
            };
            if stat.group == group {
                add(&mut total, &stat, page, ticks);
            }
            pending.extend(children(pid).unwrap_or_default());
        }
        usage.insert(group, total);
    }
    usage
}

/// Usage of every group in `groups` by reading `/proc/PID/stat` of every process on the
/// machine once: what [`groups`] falls back to.
pub fn by_scan(groups: &[u32]) -> BTreeMap<u32, GroupUsage> {
    let (page, ticks) = units();
    let mut usage: BTreeMap<u32, GroupUsage> =
        groups.iter().map(|g| (*g, GroupUsage::default())).collect();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return usage;
    };
    for entry in entries.flatten() {
        let Some(stat) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
            .and_then(read_stat)
        else {
            continue;
        };
        if let Some(total) = usage.get_mut(&stat.group) {
            add(total, &stat, page, ticks);
        }
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
    fn the_tree_walk_and_the_full_scan_agree_on_a_group_with_grandchildren() {
        // sh -> (sleep, sh -> sleep) all in one group, plus a grandchild in a group of its own.
        let mut child = std::process::Command::new("sh")
            .args([
                "-c",
                "sleep 30 & sh -c 'sleep 30 & setsid sleep 30 & wait' & wait",
            ])
            .process_group(0)
            .spawn()
            .unwrap();
        let group = child.id();
        let started = std::time::Instant::now();
        // Until the shells have started everything (the setsid one leaves the group then).
        let (mut tree, mut scan) = (GroupUsage::default(), GroupUsage::default());
        while (tree.processes, scan.processes) != (4, 4) && started.elapsed().as_secs() < 20 {
            std::thread::sleep(std::time::Duration::from_millis(100));
            tree = by_tree(&[group])[&group];
            scan = by_scan(&[group])[&group];
        }
        // SAFETY: kill on our own child's process group.
        unsafe { libc::kill(-(group as i32), libc::SIGKILL) };
        child.wait().ok();
        assert!(
            kernel_lists_children(),
            "this test needs /proc/PID/task/TID/children"
        );
        assert_eq!(
            tree.processes, 4,
            "sh, sleep, sh, sleep; not the setsid one"
        );
        assert_eq!(scan.processes, 4);
        let (a, b) = (tree.rss_bytes as f64, scan.rss_bytes as f64);
        assert!((a - b).abs() <= 0.2 * b, "{tree:?} against {scan:?}");
    }

    #[test]
    fn an_unknown_group_reads_as_nothing() {
        assert_eq!(by_tree(&[u32::MAX])[&u32::MAX], GroupUsage::default());
        assert_eq!(by_scan(&[u32::MAX])[&u32::MAX], GroupUsage::default());
    }
}
