//! The job's volumes on Kubernetes: NFS (or Alibaba NAS through its flexVolume driver),
//! existing claims, node directories and scratch space; and, for a new share, a labelled
//! PersistentVolume with a claim that selects it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    EmptyDirVolumeSource, FlexPersistentVolumeSource, FlexVolumeSource, HostPathVolumeSource,
    NFSVolumeSource, PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimVolumeSource, PersistentVolumeSpec, Volume as PodVolume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde_json::Value;
use trainctl_spec::{NfsSource, Volume};

use super::meta::{job_labels, object_meta};
use super::{to_value, Ctx};

/// The flexVolume driver of Alibaba Cloud NAS.
const NAS_DRIVER: &str = "alibaba/nas";
/// Size of a new share when the job names none (NFS does not enforce it).
const DEFAULT_SHARE_SIZE: &str = "10Gi";

/// Whether `v` is mounted through a new PersistentVolume and claim.
fn is_new_share(ctx: &Ctx, v: &Volume) -> bool {
    v.nfs.is_some() && (v.persistent_volume.is_some() || ctx.profile.nfs_as_persistent_volume)
}

/// The name of the PersistentVolume and claim of a new share.
fn share_name(ctx: &Ctx, v: &Volume) -> String {
    format!("{}-{}", ctx.job.name(), v.name)
}

/// The options of the `alibaba/nas` driver for an export.
fn nas_options(nfs: &NfsSource) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("server".to_string(), nfs.server.clone()),
        ("path".to_string(), nfs.path.clone()),
        ("vers".to_string(), "3".to_string()),
        ("options".to_string(), "nolock,tcp,noresvport".to_string()),
    ])
}

/// The pod volumes of the job's volumes that `keep` accepts.
pub fn pod_volumes(ctx: &Ctx, keep: impl Fn(&Volume) -> bool) -> Vec<PodVolume> {
    ctx.job
        .spec
        .volumes
        .iter()
        .filter(|v| keep(v))
        .map(|v| {
            let mut pv = PodVolume {
                name: v.name.clone(),
                ..PodVolume::default()
            };
            if is_new_share(ctx, v) {
                pv.persistent_volume_claim = Some(PersistentVolumeClaimVolumeSource {
                    claim_name: share_name(ctx, v),
                    read_only: None,
                });
            } else if let Some(nfs) = v.nfs.as_ref().filter(|n| n.nas_flex_volume) {
                pv.flex_volume = Some(FlexVolumeSource {
                    driver: NAS_DRIVER.into(),
                    options: Some(nas_options(nfs)),
                    ..FlexVolumeSource::default()
                });
            } else if let Some(nfs) = &v.nfs {
                pv.nfs = Some(NFSVolumeSource {
                    server: nfs.server.clone(),
                    path: nfs.path.clone(),
                    read_only: None,
                });
            } else if let Some(pvc) = &v.persistent_volume_claim {
                pv.persistent_volume_claim = Some(PersistentVolumeClaimVolumeSource {
                    claim_name: pvc.claim_name.clone(),
                    read_only: None,
                });
            } else if let Some(host) = &v.host_path {
                pv.host_path = Some(HostPathVolumeSource {
                    path: host.path.clone(),
                    type_: None,
                });
            } else if let Some(empty) = &v.empty_dir {
                pv.empty_dir = Some(EmptyDirVolumeSource {
                    medium: None,
                    size_limit: empty.size_limit.as_ref().map(|q| Quantity(q.to_string())),
                });
            }
            pv
        })
        .collect()
}

/// The mounts of the job's volumes that `keep` accepts; all read-only when `read_only`.
pub fn mounts(ctx: &Ctx, keep: impl Fn(&Volume) -> bool, read_only: bool) -> Vec<VolumeMount> {
    ctx.job
        .spec
        .volumes
        .iter()
        .filter(|v| keep(v))
        .map(|v| VolumeMount {
            name: v.name.clone(),
            mount_path: v.mount_path.clone(),
            read_only: (read_only || v.read_only).then_some(true),
            ..VolumeMount::default()
        })
        .collect()
}

/// A PersistentVolume with labels and a claim selecting it, per new NFS/NAS share.
pub fn share_objects(ctx: &Ctx) -> Vec<Value> {
    let mut out = Vec::new();
    for v in ctx.job.spec.volumes.iter().filter(|v| is_new_share(ctx, v)) {
        let Some(nfs) = &v.nfs else { continue };
        let share = v.persistent_volume.clone().unwrap_or_default();
        let size = Quantity(
            share
                .capacity
                .map_or(DEFAULT_SHARE_SIZE.to_string(), |q| q.to_string()),
        );
        let selector = if share.labels.is_empty() {
            BTreeMap::from([("train".to_string(), ctx.job.name().to_string())])
        } else {
            share.labels
        };
        let mut pv_labels = job_labels(ctx);
        pv_labels.extend(selector.clone());
        let access = Some(vec!["ReadWriteMany".to_string()]);
        let pv = PersistentVolume {
            metadata: ObjectMeta {
                name: Some(share_name(ctx, v)),
                labels: Some(pv_labels),
                ..ObjectMeta::default()
            },
            spec: Some(PersistentVolumeSpec {
                capacity: Some(BTreeMap::from([("storage".to_string(), size.clone())])),
                access_modes: access.clone(),
                persistent_volume_reclaim_policy: Some("Retain".into()),
                nfs: (!nfs.nas_flex_volume).then(|| NFSVolumeSource {
                    server: nfs.server.clone(),
                    path: nfs.path.clone(),
                    read_only: None,
                }),
                flex_volume: nfs.nas_flex_volume.then(|| FlexPersistentVolumeSource {
                    driver: NAS_DRIVER.into(),
                    options: Some(nas_options(nfs)),
                    ..FlexPersistentVolumeSource::default()
                }),
                ..PersistentVolumeSpec::default()
            }),
            status: None,
        };
        let pvc = PersistentVolumeClaim {
            metadata: object_meta(ctx, share_name(ctx, v), job_labels(ctx)),
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: access,
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([("storage".to_string(), size)])),
                    limits: None,
                }),
                selector: Some(LabelSelector {
                    match_labels: Some(selector),
                    match_expressions: None,
                }),
                // "" binds to a pre-made volume instead of asking the default class for one.
                storage_class_name: Some(String::new()),
                ..PersistentVolumeClaimSpec::default()
            }),
            status: None,
        };
        out.push(to_value(&pv));
        out.push(to_value(&pvc));
    }
    out
}
