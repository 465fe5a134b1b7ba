//! A fake `nvidia-smi` on PATH that prints what the real one prints for two H200s, so the
//! GPU commands run end to end without a GPU.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Writes an executable script.
pub fn executable(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Creates `dir/bin/nvidia-smi` (GPU 0 busy at 87% with 1,024 MiB used; GPU 1 idle with
/// 2 uncorrected ECC errors). Its compute processes are the pids listed, one per line, in
/// the file [`gpu_pids_file`] (`GPU-aaa, PID, 2048`). Returns a PATH with it first.
pub fn install(dir: &Path) -> String {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let pids = gpu_pids_file(dir);
    executable(
        &bin.join("nvidia-smi"),
        &format!(
            r#"#!/bin/sh
case "$1" in
  --query-gpu=*) printf '0, GPU-aaa, NVIDIA H200, 143771, 1024, 87, 45, 312.55, 0, 550.54.15\n1, GPU-bbb, NVIDIA H200, 143771, 0, 0, 30, 75.00, 2, 550.54.15\n' ;;
  --query-compute-apps=*) [ -f '{pids}' ] && while read pid; do echo "GPU-aaa, $pid, 2048"; done < '{pids}' ;;
  *) echo '| NVIDIA-SMI 550.54.15      Driver Version: 550.54.15      CUDA Version: 12.4     |' ;;
esac
exit 0
"#,
            pids = pids.display()
        ),
    );
    let path = std::env::var("PATH").unwrap_or_default();
    format!("{}:{path}", bin.display())
}

/// The file of pids the fake reports as compute processes on GPU 0.
pub fn gpu_pids_file(dir: &Path) -> PathBuf {
    dir.join("gpu-pids")
}
