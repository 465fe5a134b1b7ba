//! The job-file parser and validator: any text gives a job or located errors, never a
//! panic, and a job that parses writes back to YAML that parses to the same job.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trainctl_spec::parse_job_str;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_job_str("job.yaml", text) {
        Ok(job) => {
            let yaml = serde_yaml_ng::to_string(&job).expect("a job serializes");
            let again = parse_job_str("again.yaml", &yaml)
                .unwrap_or_else(|e| panic!("a valid job written back is refused: {e:?}\n{yaml}"));
            assert_eq!(again, job, "written back:\n{yaml}");
        }
        Err(errors) => assert!(!errors.is_empty()),
    }
});
