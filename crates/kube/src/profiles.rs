//! What differs between the clusters trainctl renders for, one small table per cloud
//! profile. The render and lint code reads these tables; nothing else knows a cloud's name.

use std::collections::BTreeMap;

use trainctl_spec::{Cloud, CloudProfile, Quantity, Resources};

use crate::quantity;

/// Where a replica's GPU model (`resources.gpuType`) is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuTypeKey<'a> {
    /// A pod annotation with this key (serverless clusters pick the machine from it).
    Annotation(&'a str),
    /// A node selector on this node label (clusters with GPU node pools).
    NodeLabel(&'a str),
    /// The profile has no key for it; the instance type decides (alibaba-eci).
    None,
}

/// The conventions of one cloud profile. Each profile below states only how it differs
/// from [`GENERIC`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileTable {
    /// The profile this table describes.
    pub profile: CloudProfile,
    /// Where the GPU model goes.
    pub gpu_type: GpuTypeKey<'static>,
    /// Annotations every replica pod gets.
    pub pod_annotations: &'static [(&'static str, &'static str)],
    /// Whether pods reach the internet without extra set-up.
    pub egress: bool,
    /// Whether an `nfs` volume becomes a labelled PersistentVolume plus a claim selecting it.
    pub nfs_as_persistent_volume: bool,
    /// The annotation prefix that pins a serverless pod's size (cpu, mem, gpu-count).
    pub pin_annotation_prefix: Option<&'static str>,
    /// The annotation that names the instance types to run on.
    pub instance_type_annotation: Option<&'static str>,
    /// The image `doctor --kube --smoke` runs nvidia-smi in (the NVIDIA runtime injects
    /// nvidia-smi and the driver; the image only has to be pullable from the cluster).
    pub smoke_image: &'static str,
}

/// Any Kubernetes with the NVIDIA device plugin: GPU model from GPU feature discovery's label.
pub const GENERIC: ProfileTable = ProfileTable {
    profile: CloudProfile::Generic,
    gpu_type: GpuTypeKey::NodeLabel("nvidia.com/gpu.product"),
    pod_annotations: &[],
    egress: true,
    nfs_as_persistent_volume: false,
    pin_annotation_prefix: None,
    instance_type_annotation: None,
    smoke_image: "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04",
};

/// A CUDA image on Alibaba's registry (the one Arena's GPU examples run), pulled without
/// leaving Alibaba Cloud.
const ALIBABA_SMOKE_IMAGE: &str =
    "registry.cn-beijing.aliyuncs.com/ai-samples/tensorflow:1.5.0-devel-gpu";

/// Tencent EKS, serverless pods: the GPU model is an annotation; cpu, mem and gpu-count
/// annotations are optional but only valid all together; no internet without a NAT gateway.
pub const TENCENT_EKS: ProfileTable = ProfileTable {
    profile: CloudProfile::TencentEks,
    gpu_type: GpuTypeKey::Annotation("eks.tke.cloud.tencent.com/gpu-type"),
    egress: false,
    pin_annotation_prefix: Some("eks.tke.cloud.tencent.com/"),
    ..GENERIC
};

/// Tencent TKE, GPU node pools: no annotations, the GPU model by node selector (on the GPU
/// feature discovery label, as on any cluster; `spec.cloud.gpuNodeLabel` names another).
pub const TENCENT_TKE: ProfileTable = ProfileTable {
    profile: CloudProfile::TencentTke,
    ..GENERIC
};

/// Alibaba ECI (ASK), serverless pods: instance types by annotation, image cache on, no
/// internet without a NAT gateway.
pub const ALIBABA_ECI: ProfileTable = ProfileTable {
    profile: CloudProfile::AlibabaEci,
    gpu_type: GpuTypeKey::None,
    pod_annotations: &[("k8s.aliyun.com/eci-image-cache", "true")],
    egress: false,
    instance_type_annotation: Some("k8s.aliyun.com/eci-use-specs"),
    smoke_image: ALIBABA_SMOKE_IMAGE,
    ..GENERIC
};

/// Alibaba ACK, GPU node pools: NAS shares as labelled PersistentVolumes with claims that
/// select them, GPU model from the node label ACK sets on GPU nodes.
pub const ALIBABA_ACK: ProfileTable = ProfileTable {
    profile: CloudProfile::AlibabaAck,
    gpu_type: GpuTypeKey::NodeLabel("aliyun.accelerator/nvidia_name"),
    nfs_as_persistent_volume: true,
    smoke_image: ALIBABA_SMOKE_IMAGE,
    ..GENERIC
};

/// The table of a profile.
pub fn table(profile: CloudProfile) -> &'static ProfileTable {
    match profile {
        CloudProfile::Generic => &GENERIC,
        CloudProfile::TencentEks => &TENCENT_EKS,
        CloudProfile::TencentTke => &TENCENT_TKE,
        CloudProfile::AlibabaEci => &ALIBABA_ECI,
        CloudProfile::AlibabaAck => &ALIBABA_ACK,
    }
}

/// Whether the job's pods can reach the internet: the job's own statement, else the
/// profile's default.
pub fn has_egress(cloud: &Cloud, table: &ProfileTable) -> bool {
    cloud.egress.unwrap_or(table.egress)
}

/// The node label carrying the GPU model: the job's override, else the profile's.
pub fn gpu_type_key<'a>(cloud: &'a Cloud, table: &ProfileTable) -> GpuTypeKey<'a> {
    match &cloud.gpu_node_label {
        Some(label) => GpuTypeKey::NodeLabel(label),
        None => table.gpu_type,
    }
}

/// The annotations a replica pod gets from its cloud profile: the profile's fixed ones, the
/// GPU model where the profile takes it as an annotation, the pinned pod size (tencent-eks,
/// all of cpu, mem and gpu-count) and the instance types (alibaba-eci).
pub fn pod_annotations(
    cloud: &Cloud,
    table: &ProfileTable,
    resources: &Resources,
) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = table
        .pod_annotations
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let gpus = resources.gpus();
    if let (GpuTypeKey::Annotation(key), Some(model), true) =
        (gpu_type_key(cloud, table), &resources.gpu_type, gpus > 0)
    {
        out.insert(key.to_string(), model.clone());
    }
    if let (Some(prefix), true) = (table.pin_annotation_prefix, cloud.pin_resources) {
        // EKS reads cpu in cores and mem only in Gi ("16Gi"; "16G" is refused).
        let amount = |q: &Option<Quantity>| q.as_ref().and_then(|q| quantity::amount(&q.0));
        let pinned = [
            ("cpu", amount(&resources.cpu).map(quantity::decimal)),
            (
                "mem",
                amount(&resources.memory)
                    .map(|bytes| format!("{}Gi", quantity::decimal(bytes / quantity::GIB))),
            ),
            ("gpu-count", (gpus > 0).then(|| gpus.to_string())),
        ];
        for (name, value) in pinned {
            if let Some(value) = value {
                out.insert(format!("{prefix}{name}"), value);
            }
        }
    }
    if let (Some(key), Some(types)) = (table.instance_type_annotation, &cloud.instance_type) {
        out.insert(key.to_string(), types.clone());
    }
    out
}

/// The node selector of a replica pod: the GPU model, where the profile takes it from a
/// node label.
pub fn node_selector(
    cloud: &Cloud,
    table: &ProfileTable,
    resources: &Resources,
) -> BTreeMap<String, String> {
    match (gpu_type_key(cloud, table), &resources.gpu_type) {
        (GpuTypeKey::NodeLabel(key), Some(model)) if resources.gpus() > 0 => {
            BTreeMap::from([(key.to_string(), model.clone())])
        }
        _ => BTreeMap::new(),
    }
}
