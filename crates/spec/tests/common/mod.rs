//! The job file reference, docs/job-file.md, as the spec tests read it.

#![allow(dead_code)]

use std::path::PathBuf;

/// The path of docs/job-file.md.
pub fn reference_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/job-file.md")
}

/// The text of docs/job-file.md.
pub fn reference() -> String {
    let path = reference_path();
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every ```yaml block of the reference, in order.
pub fn reference_examples() -> Vec<String> {
    let text = reference();
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match current.as_mut() {
            None if line.trim_end() == "```yaml" => current = Some(String::new()),
            None => {}
            Some(block) if line.trim_end() == "```" => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    blocks
}

/// The reference's example that uses most fields (the job `mnist-dist`).
pub fn full_example() -> String {
    reference_examples()
        .into_iter()
        .find(|e| e.contains("name: mnist-dist"))
        .expect("docs/job-file.md has the full example, the job mnist-dist")
}
