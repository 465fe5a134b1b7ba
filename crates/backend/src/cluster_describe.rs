//! `describe` on a cluster: a job's spec summary, status, replica pods with node and status,
//! conditions, and the Events about the job and its pods.

use anyhow::Result;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use trainctl_kube_client::client::Cluster;
use trainctl_kube_client::names::pod_attempt;

use crate::cluster::seconds_since;
use crate::view::{age, section};

/// The description of one job.
pub async fn describe(cluster: &Cluster, name: &str) -> Result<String> {
    let job = cluster.get(name).await?;
    let pods = cluster.job_pods(name).await?;
    let events = cluster.job_events(name, &pods).await?;
    let spec = &job.spec.0;
    let status = job.status.clone().unwrap_or_default();
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let roles: Vec<String> = spec
        .replicas
        .roles()
        .map(|(role, r)| format!("{role} {}", r.count))
        .collect();
    let mut s = String::new();
    s += &format!("Name:          {name}\n");
    s += &format!("Namespace:     {}\n", cluster.namespace);
    s += &format!("Phase:         {}\n", job.phase());
    s += &format!("Reason:        {}\n", or_dash(status.reason.clone()));
    s += &format!("Message:       {}\n", or_dash(status.message.clone()));
    s += &format!("Framework:     {}\n", compact(&spec.framework));
    s += &format!("Image:         {}\n", or_dash(spec.image.clone()));
    s += &format!("Command:       {}\n", spec.command.join(" "));
    s += &format!("Replicas:      {}\n", roles.join(", "));
    s += &format!("Run policy:    {}\n", compact(&spec.run_policy));
    s += &format!(
        "Created:       {} ago\n",
        age(seconds_since(job.metadata.creation_timestamp.as_ref()))
    );
    s += &format!("Started:       {}\n", or_dash(status.start_time.clone()));
    s += &format!(
        "Completed:     {}\n",
        or_dash(status.completion_time.clone())
    );
    s += &format!("Restarts:      {}\n", status.restarts);
    let rows: Vec<Vec<String>> = pods.iter().map(pod_row).collect();
    s += &section(
        "Pods",
        &["NAME", "ATTEMPT", "NODE", "STATUS", "EXIT", "AGE"],
        &rows,
    );
    let rows: Vec<Vec<String>> = status
        .conditions
        .iter()
        .map(|c| {
            vec![
                c.type_.clone(),
                c.status.clone(),
                c.reason.clone(),
                c.message.clone(),
            ]
        })
        .collect();
    s += &section(
        "Conditions",
        &["TYPE", "STATUS", "REASON", "MESSAGE"],
        &rows,
    );
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                age(seconds_since(e.last_timestamp.as_ref())),
                e.type_.clone().unwrap_or_default(),
                e.reason.clone().unwrap_or_default(),
                e.involved_object.name.clone().unwrap_or_default(),
                e.message.clone().unwrap_or_default(),
            ]
        })
        .collect();
    s += &section(
        "Events",
        &["AGE", "TYPE", "REASON", "OBJECT", "MESSAGE"],
        &rows,
    );
    Ok(s)
}

/// A value as compact JSON without quotes around a bare string.
fn compact<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "-".into(),
    }
}

fn pod_row(pod: &Pod) -> Vec<String> {
    let status = pod.status.clone().unwrap_or_default();
    let exit = status
        .container_statuses
        .iter()
        .flatten()
        .find_map(|c| c.state.as_ref()?.terminated.as_ref())
        .map_or("-".into(), |t| t.exit_code.to_string());
    vec![
        pod.name_any(),
        pod_attempt(pod).to_string(),
        pod.spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_else(|| "-".into()),
        status.phase.unwrap_or_else(|| "-".into()),
        exit,
        age(seconds_since(pod.metadata.creation_timestamp.as_ref())),
    ]
}
