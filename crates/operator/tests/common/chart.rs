//! Renders charts/trainctl without helm (none can be installed here): its templates use
//! only `{{ .Values.<path> }}`, `{{ .Release.Name }}` and `{{ .Release.Namespace }}`, which
//! this substitutes; anything else in `{{ }}` fails the test.

use std::path::PathBuf;

use serde_yaml_ng::Value;

/// The chart directory.
pub fn chart_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../charts/trainctl")
}

/// Every template rendered with the chart's values, as (file name, text), sorted by name.
pub fn render(release: &str, namespace: &str) -> Vec<(String, String)> {
    let values: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(chart_dir().join("values.yaml")).unwrap())
            .expect("values.yaml parses");
    let mut files: Vec<_> = std::fs::read_dir(chart_dir().join("templates"))
        .expect("templates/ exists")
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let rendered = substitute(&text, &values, release, namespace)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, rendered)
        })
        .collect()
}

/// The rendered template `name` parsed as one object.
pub fn object(release: &str, namespace: &str, name: &str) -> serde_json::Value {
    let (_, text) = render(release, namespace)
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no template {name}"));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{name} is not YAML: {e}"))
}

fn substitute(
    text: &str,
    values: &Value,
    release: &str,
    namespace: &str,
) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").ok_or("unclosed {{")? + start;
        let expr = rest[start + 2..end].trim();
        out.push_str(&match expr {
            ".Release.Name" => release.to_string(),
            ".Release.Namespace" => namespace.to_string(),
            _ => lookup(values, expr)?,
        });
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn lookup(values: &Value, expr: &str) -> Result<String, String> {
    let path = expr
        .strip_prefix(".Values.")
        .ok_or_else(|| format!("unsupported template expression {{{{ {expr} }}}}"))?;
    let found = path
        .split('.')
        .try_fold(values, |node, key| node.get(key))
        .ok_or_else(|| format!("values.yaml has no {path}"))?;
    match found {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!("{path} is not a scalar: {other:?}")),
    }
}
