//! This machine's GPUs: `TRAINCTL_GPUS` (a comma-separated list of device indices, empty for
//! none) when set, else what `nvidia-smi` lists, else none.

use std::process::Command;

/// The device indices usable by jobs.
pub fn inventory() -> Vec<u32> {
    match std::env::var("TRAINCTL_GPUS") {
        Ok(list) => parse_list(&list),
        Err(_) => nvidia_smi().unwrap_or_default(),
    }
}

/// Where the inventory came from, for messages.
pub fn source() -> &'static str {
    if std::env::var_os("TRAINCTL_GPUS").is_some() {
        "TRAINCTL_GPUS"
    } else {
        "nvidia-smi"
    }
}

fn parse_list(list: &str) -> Vec<u32> {
    let mut ids: Vec<u32> = list
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

fn nvidia_smi() -> Option<Vec<u32>> {
    let out = Command::new("nvidia-smi")
        .args(["--query-gpu=index", "--format=csv,noheader"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| parse_list(&String::from_utf8_lossy(&out.stdout).replace('\n', ",")))
}

#[cfg(test)]
mod tests {
    use super::parse_list;

    #[test]
    fn parses_lists_leniently() {
        assert_eq!(parse_list("0,1, 3"), vec![0, 1, 3]);
        assert_eq!(parse_list(""), Vec::<u32>::new());
        assert_eq!(parse_list("2,2,x,0"), vec![0, 2]);
    }
}
