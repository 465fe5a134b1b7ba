//! The stdout metrics parser: the first line is the job's `spec.metrics.regex` (none when
//! empty), the others are what a replica prints. No panic; the built-in formats give only
//! finite values and named metrics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trainctl_metrics::stdout::StdoutParser;
use trainctl_spec::{MetricsFormat, MetricsSpec};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let regex = lines.next().unwrap_or_default();
    let spec = MetricsSpec {
        format: MetricsFormat::Auto,
        regex: (!regex.is_empty()).then(|| regex.to_string()),
    };
    let custom = StdoutParser::for_spec(Some(&spec));
    let builtin = StdoutParser::for_spec(None).expect("the built-in formats");
    for line in lines {
        if let Ok(parser) = &custom {
            parser.parse(line);
        }
        let parsed = builtin.parse(line);
        for (name, value) in &parsed.metrics {
            assert!(!name.is_empty(), "{line:?}");
            assert!(value.is_finite(), "{name}={value} from {line:?}");
        }
    }
});
