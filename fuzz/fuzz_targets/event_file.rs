//! The TensorBoard event-file reader on any bytes: no panic, and reading a file in two
//! pieces (a writer still at it) gives the same series as reading it whole.
#![no_main]

use std::io::Write;
use std::path::PathBuf;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use trainctl_metrics::event_file::EventFileReader;
use trainctl_metrics::series::Run;

/// One scratch directory for the whole run.
static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().unwrap());

fn read_whole(path: &PathBuf, data: &[u8]) -> Run {
    std::fs::write(path, data).unwrap();
    let mut run = Run::default();
    EventFileReader::new(path).poll(&mut run).unwrap();
    run
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, data)) = data.split_first() else {
        return;
    };
    let path = DIR.path().join("events.out.tfevents.fuzz");
    let whole = read_whole(&path, data);

    let cut = usize::from(cut) * data.len() / 255;
    std::fs::write(&path, &data[..cut]).unwrap();
    let mut reader = EventFileReader::new(&path);
    let mut pieces = Run::default();
    reader.poll(&mut pieces).unwrap();
    let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(&data[cut..]).unwrap();
    reader.poll(&mut pieces).unwrap();
    assert_eq!(
        format!("{:?}", pieces.tags),
        format!("{:?}", whole.tags),
        "cut at {cut}"
    );
});
