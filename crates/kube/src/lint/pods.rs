//! Finding the pod specs inside Kubernetes objects of any workload kind, with their paths.

use serde_json::Value;

/// One pod spec inside an object.
pub struct PodSite<'a> {
    /// `kind/name` of the object.
    pub object: String,
    /// The object's kind.
    pub kind: String,
    /// Path of the pod template (or pod) inside the object, such as `spec.template`.
    pub path: String,
    /// The pod's metadata (labels, annotations), if any.
    pub metadata: Option<&'a Value>,
    /// The pod spec.
    pub spec: &'a Value,
    /// Kubeflow's per-replica restartPolicy and its path, for TFJob / PyTorchJob.
    pub replica_restart: Option<(String, &'a Value)>,
}

/// Kinds that run to completion.
pub const BATCH_KINDS: &[&str] = &["Job", "CronJob", "JobSet", "TFJob", "PyTorchJob", "Pod"];

/// The pod specs of `object`.
pub fn sites<'a>(object: &'a Value) -> Vec<PodSite<'a>> {
    let kind = object["kind"].as_str().unwrap_or_default().to_string();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let id = format!("{}/{name}", kind.to_lowercase());
    // A pod template at `path`, if it has a pod spec.
    let template = |path: String, t: &'a Value, restart: Option<(String, &'a Value)>| {
        t.get("spec").map(|spec| PodSite {
            object: id.clone(),
            kind: kind.clone(),
            path,
            metadata: t.get("metadata"),
            spec,
            replica_restart: restart,
        })
    };
    let mut out = Vec::new();
    match kind.as_str() {
        "Pod" => out.push(PodSite {
            object: id.clone(),
            kind: kind.clone(),
            path: String::new(),
            metadata: object.get("metadata"),
            spec: &object["spec"],
            replica_restart: None,
        }),
        "CronJob" => out.extend(template(
            "spec.jobTemplate.spec.template".into(),
            &object["spec"]["jobTemplate"]["spec"]["template"],
            None,
        )),
        "JobSet" => {
            for (i, rj) in array(&object["spec"]["replicatedJobs"]).iter().enumerate() {
                out.extend(template(
                    format!("spec.replicatedJobs[{i}].template.spec.template"),
                    &rj["template"]["spec"]["template"],
                    None,
                ));
            }
        }
        "TFJob" | "PyTorchJob" => {
            let field = if kind == "TFJob" {
                "tfReplicaSpecs"
            } else {
                "pytorchReplicaSpecs"
            };
            for (role, rs) in object["spec"][field].as_object().into_iter().flatten() {
                let at = format!("spec.{field}.{role}");
                let restart = rs
                    .get("restartPolicy")
                    .map(|v| (format!("{at}.restartPolicy"), v));
                out.extend(template(format!("{at}.template"), &rs["template"], restart));
            }
        }
        _ => out.extend(template(
            "spec.template".into(),
            &object["spec"]["template"],
            None,
        )),
    }
    out
}

/// The items of a JSON array (none for anything else).
pub fn array(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}
