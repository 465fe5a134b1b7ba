//! Reading GPUs through the `nvidia-smi` command (`--query-gpu` and `--query-compute-apps`
//! in CSV without header or units), when NVML cannot be loaded.

use std::collections::HashMap;
use std::process::Command;

use crate::{Driver, Gpu, GpuProcess};

/// The fields asked of `--query-gpu`, in the order [`parse_gpus`] reads them.
pub const GPU_FIELDS: &str = "index,uuid,name,memory.total,memory.used,utilization.gpu,\
temperature.gpu,power.draw,ecc.errors.uncorrected.volatile.total,driver_version";

/// The fields asked of `--query-compute-apps`, in the order [`parse_processes`] reads them.
pub const PROCESS_FIELDS: &str = "gpu_uuid,pid,used_memory";

/// The driver and every GPU, or why `nvidia-smi` could not be used.
pub(crate) fn read() -> Result<(Driver, Vec<Gpu>), String> {
    let gpus_csv = run(&[&format!("--query-gpu={GPU_FIELDS}")])?;
    let (version, mut gpus) = parse_gpus(&gpus_csv)?;
    if let Ok(apps) = run(&[&format!("--query-compute-apps={PROCESS_FIELDS}")]) {
        let mut by_uuid = parse_processes(&apps);
        for gpu in &mut gpus {
            if let Some(uuid) = &gpu.uuid {
                gpu.processes = by_uuid.remove(uuid).unwrap_or_default();
            }
        }
    }
    let cuda = run_plain().ok().and_then(|banner| cuda_in_banner(&banner));
    Ok((Driver { version, cuda }, gpus))
}

fn run(query: &[&str]) -> Result<String, String> {
    let out = Command::new("nvidia-smi")
        .args(query)
        .arg("--format=csv,noheader,nounits")
        .output()
        .map_err(|e| format!("cannot run nvidia-smi: {e}"))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
        return Err(format!("nvidia-smi failed ({}): {said}", out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn run_plain() -> Result<String, String> {
    let out = Command::new("nvidia-smi")
        .output()
        .map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The `CUDA Version: 12.4` of `nvidia-smi`'s banner.
pub fn cuda_in_banner(banner: &str) -> Option<String> {
    let re = regex::Regex::new(r"CUDA Version:\s*([0-9]+\.[0-9]+)").expect("valid regex");
    re.captures(banner).map(|c| c[1].to_string())
}

/// A value of a CSV cell: `[N/A]`, `[Not Supported]` and blanks are absent.
fn cell(value: &str) -> Option<&str> {
    let v = value.trim();
    (!v.is_empty() && !v.starts_with('[') && v != "N/A").then_some(v)
}

/// Parses `--query-gpu=GPU_FIELDS` output: the driver version and the GPUs.
pub fn parse_gpus(csv: &str) -> Result<(Option<String>, Vec<Gpu>), String> {
    let mut driver = None;
    let mut gpus = Vec::new();
    for (n, line) in csv
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let cells: Vec<&str> = line.split(',').collect();
        if cells.len() != 10 {
            return Err(format!(
                "line {} of nvidia-smi's output has {} fields, expected 10: {line:?}",
                n + 1,
                cells.len()
            ));
        }
        let index = cell(cells[0])
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("line {} of nvidia-smi's output has no index", n + 1))?;
        driver = driver.or_else(|| cell(cells[9]).map(str::to_string));
        gpus.push(Gpu {
            index,
            uuid: cell(cells[1]).map(str::to_string),
            name: cell(cells[2]).map(str::to_string),
            memory_total_mib: cell(cells[3]).and_then(|v| v.parse().ok()),
            memory_used_mib: cell(cells[4]).and_then(|v| v.parse().ok()),
            utilization_pct: cell(cells[5]).and_then(|v| v.parse().ok()),
            temperature_c: cell(cells[6]).and_then(|v| v.parse().ok()),
            power_w: cell(cells[7]).and_then(|v| v.parse().ok()),
            ecc_uncorrected: cell(cells[8]).and_then(|v| v.parse().ok()),
            processes: Vec::new(),
        });
    }
    gpus.sort_by_key(|g| g.index);
    Ok((driver, gpus))
}

/// Parses `--query-compute-apps=PROCESS_FIELDS` output: processes by GPU UUID. Lines that
/// do not parse are skipped.
pub fn parse_processes(csv: &str) -> HashMap<String, Vec<GpuProcess>> {
    let mut by_uuid: HashMap<String, Vec<GpuProcess>> = HashMap::new();
    for line in csv.lines() {
        let cells: Vec<&str> = line.split(',').collect();
        let [uuid, pid, memory] = cells[..] else {
            continue;
        };
        let (Some(uuid), Some(pid)) = (cell(uuid), cell(pid).and_then(|p| p.parse().ok())) else {
            continue;
        };
        by_uuid
            .entry(uuid.to_string())
            .or_default()
            .push(GpuProcess {
                pid,
                memory_mib: cell(memory).and_then(|m| m.parse().ok()),
            });
    }
    by_uuid
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_GPUS: &str = "\
0, GPU-11111111-2222-3333-4444-555555555555, NVIDIA H200, 143771, 1024, 87, 45, 312.55, 0, 550.54.15
1, GPU-aaaaaaaa-2222-3333-4444-555555555555, NVIDIA H200, 143771, 0, 0, 30, [N/A], [N/A], 550.54.15
";

    #[test]
    fn gpu_rows_give_every_reading_and_not_available_cells_are_absent() {
        let (driver, gpus) = parse_gpus(TWO_GPUS).unwrap();
        assert_eq!(driver.as_deref(), Some("550.54.15"));
        assert_eq!(gpus.len(), 2);
        assert_eq!(gpus[0].name.as_deref(), Some("NVIDIA H200"));
        assert_eq!(gpus[0].memory_used_mib, Some(1024));
        assert_eq!(gpus[0].utilization_pct, Some(87));
        assert_eq!(gpus[0].power_w, Some(312.55));
        assert_eq!(gpus[1].power_w, None);
        assert_eq!(gpus[1].ecc_uncorrected, None);
    }

    #[test]
    fn a_row_of_the_wrong_shape_is_an_error_naming_its_line() {
        let err = parse_gpus("0, GPU-1, x\n").unwrap_err();
        assert!(err.contains("line 1") && err.contains("3 fields"), "{err}");
    }

    #[test]
    fn processes_are_grouped_by_gpu_and_junk_lines_skipped() {
        let apps = "GPU-a, 4242, 1000\nGPU-a, 4343, [N/A]\ngarbage\nGPU-b, 7, 5\n";
        let by = parse_processes(apps);
        assert_eq!(by["GPU-a"].len(), 2);
        assert_eq!(by["GPU-a"][1].memory_mib, None);
        assert_eq!(by["GPU-b"][0].pid, 7);
    }

    #[test]
    fn the_banner_gives_the_drivers_cuda_version() {
        let banner =
            "| NVIDIA-SMI 550.54.15   Driver Version: 550.54.15   CUDA Version: 12.4     |";
        assert_eq!(cuda_in_banner(banner).as_deref(), Some("12.4"));
        assert_eq!(cuda_in_banner("no gpu"), None);
    }
}
