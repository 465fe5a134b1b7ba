//! Kubeflow `convert` on any text: never a panic, and a converted job is one that
//! `trainctl run` accepts: the YAML `convert` prints parses back to the same job.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trainctl_kube::{convert, job_document};
use trainctl_spec::parse_job_str;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(converted) = convert(text) {
        let yaml = serde_yaml_ng::to_string(&job_document(&converted.job)).expect("YAML");
        let again = parse_job_str("converted.yaml", &yaml)
            .unwrap_or_else(|e| panic!("the converted job is refused: {e:?}\n{yaml}"));
        assert_eq!(again, converted.job, "printed:\n{yaml}");
    }
});
