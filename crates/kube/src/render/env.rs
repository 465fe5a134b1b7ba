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
/// The replica role variable.
const TYPE_VAR: &str = "TRAINCTL_REPLICA_TYPE";
/// PyTorch's rank variable; set from pod metadata where one template serves every rank.
const RANK_VAR: &str = "RANK";
/// Variables that follow the rank on a template shared by every rank.
const RANK_FOLLOWERS: &[&str] = &["PET_NODE_RANK", INDEX_VAR];
/// Variables naming the rank-0 host.
const MASTER_ADDR_VARS: &[&str] = &["MASTER_ADDR", "PET_MASTER_ADDR"];
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

/// A variable read from the pod's metadata field `field_path`.
fn field_var(name: &str, field_path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: None,
                field_path: field_path.to_string(),
            }),
            ..EnvVarSource::default()
        }),
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
    let mut out = vec![field_var(INDEX_VAR, index_field)];
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

/// The env of one template that runs every rank of a PyTorch job (the master is rank 0,
/// worker `i` rank `i + 1`): `RANK` comes from the pod metadata field `rank_field`, the
/// variables that follow the rank refer to it as `$(RANK)`, `MASTER_ADDR` is `master_addr`
/// and the role is `role_name`. Every other variable must be the same for every rank;
/// fails naming the first one that is not.
pub fn ranked_template(
    ctx: &Ctx,
    rank_field: &str,
    master_addr: &str,
    role_name: &str,
    target: &'static str,
) -> Result<Vec<EnvVar>, RenderError> {
    let workers = ctx.job.spec.replicas.count(ReplicaType::Worker);
    let ranks: Vec<BTreeMap<String, String>> =
        std::iter::once(ReplicaId::new(ReplicaType::Master, 0))
            .chain((0..workers).map(|i| ReplicaId::new(ReplicaType::Worker, i)))
            .map(|id| wiring(ctx, id))
            .collect();
    let set_here = |name: &str| {
        name == RANK_VAR
            || name == TYPE_VAR
            || RANK_FOLLOWERS.contains(&name)
            || MASTER_ADDR_VARS.contains(&name)
    };
    let rank_ref = format!("$({RANK_VAR})");
    let mut out = vec![field_var(RANK_VAR, rank_field)];
    out.extend(
        RANK_FOLLOWERS
            .iter()
            .map(|name| var(name, rank_ref.clone())),
    );
    out.extend(
        MASTER_ADDR_VARS
            .iter()
            .map(|name| var(name, master_addr.to_string())),
    );
    out.push(var(TYPE_VAR, role_name.to_string()));
    let names: std::collections::BTreeSet<&String> =
        ranks.iter().flat_map(|env| env.keys()).collect();
    for name in names.into_iter().filter(|n| !set_here(n)) {
        let value = ranks[0].get(name);
        if ranks.iter().any(|env| env.get(name) != value) {
            return Err(RenderError::RanksDiffer {
                target,
                what: format!("env variable {name}"),
            });
        }
        out.push(var(name, literal(value.map_or("", String::as_str))));
    }
    Ok(out)
}
