//! The env of a replica container: exactly `trainctl_core::wiring::replica_env` in its
//! cluster form, written for Kubernetes (where `$(NAME)` in a value is expanded).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector};
use trainctl_core::wiring::{replica_env, AttemptContext, Hosts};
use trainctl_core::ReplicaId;
use trainctl_spec::ReplicaType;

use super::{Ctx, RenderError};

/// The replica index variable; set from pod metadata where one template serves a role.
const INDEX_VAR: &str = "TRAINCTL_REPLICA_INDEX";
/// The attempt counter is known to a supervisor, not to a static manifest: left out.
const ATTEMPT_VAR: &str = "TRAINCTL_ATTEMPT";
/// An index no job has, to find which values depend on the index.
const PROBE_INDEX: u32 = 7_654_321;

/// Kubernetes expands `$(NAME)` in env values and commands; `$$(` keeps it literal.
pub fn literal(text: &str) -> String {
    text.replace("$(", "$$(")
}

fn wiring(ctx: &Ctx, id: ReplicaId) -> BTreeMap<String, String> {
    let spec = &ctx.job.spec;
    let dirs = AttemptContext {
        attempt: 0,
        checkpoint_dir: spec.checkpoint_dir.as_deref().unwrap_or(""),
        log_dir: spec.tensorboard.as_ref().map_or("", |t| t.log_dir.as_str()),
    };
    let hosts = Hosts::Cluster {
        namespace: &ctx.namespace,
    };
    let mut env = replica_env(&ctx.job, id, &hosts, &dirs);
    env.remove(ATTEMPT_VAR);
    env.retain(|k, v| !(k.starts_with("TRAINCTL_") && k.ends_with("_DIR") && v.is_empty()));
    env
}

fn var(name: &str, value: String) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value),
        value_from: None,
    }
}

/// The env of one replica, every value literal.
pub fn replica(ctx: &Ctx, id: ReplicaId) -> Vec<EnvVar> {
    wiring(ctx, id)
        .into_iter()
        .map(|(k, v)| var(&k, literal(&v)))
        .collect()
}

/// The env of a template shared by every replica of `role`: the index comes from the pod
/// metadata field `index_field`, and values that contain it refer to it as
/// `$(TRAINCTL_REPLICA_INDEX)`. Variables in `left_to_operator` are set by the operator
/// that runs the template and are left out. Fails when a value varies with the replica
/// in another way than by its index.
pub fn role_template(
    ctx: &Ctx,
    role: ReplicaType,
    index_field: &str,
    left_to_operator: &[&str],
    target: &'static str,
) -> Result<Vec<EnvVar>, RenderError> {
    let probe = PROBE_INDEX.to_string();
    let reference = format!("$({INDEX_VAR})");
    let mut out = vec![EnvVar {
        name: INDEX_VAR.into(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: None,
                field_path: index_field.to_string(),
            }),
            ..EnvVarSource::default()
        }),
    }];
    let count = ctx.job.spec.replicas.count(role);
    let actual: Vec<BTreeMap<String, String>> = (0..count)
        .map(|i| wiring(ctx, ReplicaId::new(role, i)))
        .collect();
    for (name, value) in wiring(ctx, ReplicaId::new(role, PROBE_INDEX)) {
        if name == INDEX_VAR || left_to_operator.contains(&name.as_str()) {
            continue;
        }
        let template = literal(&value).replace(&probe, &reference);
        let fits = actual.iter().enumerate().all(|(i, env)| {
            env.get(&name).map(|v| literal(v)) == Some(template.replace(&reference, &i.to_string()))
        });
        if !fits {
            return Err(RenderError::PerReplicaEnv {
                target,
                variable: name,
                role: role.to_string(),
            });
        }
        out.push(var(&name, template));
    }
    Ok(out)
}
