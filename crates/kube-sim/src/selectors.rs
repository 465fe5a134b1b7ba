//! Label selectors (`a=b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`) and field
//! selectors (`path=value`, `path!=value` on any dotted field such as `metadata.name`,
//! `status.phase`, `spec.nodeName`, `involvedObject.uid`).

use serde_json::Value;

use crate::error::{ApiError, ApiResult};

#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed selector: every requirement must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

/// Splits on commas outside parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn set_values(text: &str) -> ApiResult<Vec<String>> {
    let inner = text
        .trim()
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "unable to parse requirement: expected (values) in {text:?}"
            ))
        })?;
    Ok(inner.split(',').map(|v| v.trim().to_string()).collect())
}

fn parse_requirement(text: &str, set_based: bool) -> ApiResult<Requirement> {
    let text = text.trim();
    let pair = |sep: &str| {
        text.split_once(sep)
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
    };
    if let Some((k, v)) = pair("!=") {
        return Ok(Requirement::NotEquals(k, v));
    }
    if let Some((k, v)) = pair("==").or_else(|| pair("=")) {
        return Ok(Requirement::Equals(k, v));
    }
    if set_based {
        if let Some((k, v)) = text.split_once(" notin ") {
            return Ok(Requirement::NotIn(k.trim().into(), set_values(v)?));
        }
        if let Some((k, v)) = text.split_once(" in ") {
            return Ok(Requirement::In(k.trim().into(), set_values(v)?));
        }
        if let Some(k) = text.strip_prefix('!') {
            return Ok(Requirement::NotExists(k.trim().into()));
        }
        if !text.contains(|c: char| c.is_whitespace() || "()=!".contains(c)) {
            return Ok(Requirement::Exists(text.into()));
        }
    }
    Err(ApiError::bad_request(format!(
        "unable to parse requirement: {text:?}"
    )))
}

impl Selector {
    fn parse(text: Option<&str>, set_based: bool) -> ApiResult<Self> {
        let requirements = match text.map(str::trim) {
            None | Some("") => Vec::new(),
            Some(text) => split_top_level(text)
                .into_iter()
                .map(|r| parse_requirement(r, set_based))
                .collect::<ApiResult<_>>()?,
        };
        Ok(Selector { requirements })
    }

    /// Parses a `labelSelector` query parameter.
    pub fn labels(text: Option<&str>) -> ApiResult<Self> {
        Self::parse(text, true)
    }

    /// Parses a `fieldSelector` query parameter.
    pub fn fields(text: Option<&str>) -> ApiResult<Self> {
        Self::parse(text, false)
    }

    fn holds(&self, lookup: impl Fn(&str) -> Option<String>) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::Equals(k, v) => lookup(k).as_deref() == Some(v),
            Requirement::NotEquals(k, v) => lookup(k).as_deref() != Some(v),
            Requirement::In(k, vs) => lookup(k).is_some_and(|x| vs.contains(&x)),
            Requirement::NotIn(k, vs) => !lookup(k).is_some_and(|x| vs.contains(&x)),
            Requirement::Exists(k) => lookup(k).is_some(),
            Requirement::NotExists(k) => lookup(k).is_none(),
        })
    }

    /// Whether the object's labels satisfy this (label) selector.
    pub fn matches_labels(&self, obj: &Value) -> bool {
        let labels = &obj["metadata"]["labels"];
        self.holds(|k| labels.get(k).and_then(Value::as_str).map(String::from))
    }

    /// Whether the object's fields satisfy this (field) selector; a missing field reads as "".
    pub fn matches_fields(&self, obj: &Value) -> bool {
        self.holds(|path| {
            let field = path.split('.').fold(obj, |v, part| &v[part]);
            Some(match field {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            })
        })
    }
}

/// The label and field selectors of one request.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// From `labelSelector`.
    pub labels: Selector,
    /// From `fieldSelector`.
    pub fields: Selector,
}

impl Filter {
    /// Whether the object passes both selectors.
    pub fn matches(&self, obj: &Value) -> bool {
        self.labels.matches_labels(obj) && self.fields.matches_fields(obj)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equality_and_set_based_label_selectors_match_as_kubernetes_defines_them() {
        let pod = json!({"metadata": {"labels": {"app": "web", "tier": "front"}}});
        let matches = |s: &str| Selector::labels(Some(s)).unwrap().matches_labels(&pod);
        assert!(matches("app=web,tier in (front,back)"));
        assert!(matches("app,!missing"));
        assert!(!matches("app notin (web)"));
        assert!(!matches("tier!=front"));
    }

    #[test]
    fn field_selectors_read_dotted_paths() {
        let ev = json!({"involvedObject": {"name": "p", "kind": "Pod"}, "metadata": {"name": "e"}});
        let fields =
            Selector::fields(Some("involvedObject.name=p,involvedObject.kind==Pod")).unwrap();
        assert!(fields.matches_fields(&ev));
        assert!(Selector::fields(Some("spec.nodeName="))
            .unwrap()
            .matches_fields(&ev));
        assert!(Selector::labels(Some("a in x")).is_err());
    }
}
