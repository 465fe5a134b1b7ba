//! Alibaba ECI's ImageCache: a snapshot of the job's images from which ECI pods start
//! without pulling (the pods opt in with `k8s.aliyun.com/eci-image-cache: "true"`).

use std::collections::BTreeSet;

use serde_json::{json, Value};
use trainctl_spec::CloudProfile;

use super::meta::job_labels;
use super::Ctx;

/// The ImageCache of the job's images, when the job asks for one on alibaba-eci.
pub fn objects(ctx: &Ctx) -> Vec<Value> {
    let spec = &ctx.job.spec;
    if ctx.profile.profile != CloudProfile::AlibabaEci || !spec.cloud.image_cache {
        return Vec::new();
    }
    let mut images: BTreeSet<&str> = spec.image.iter().map(String::as_str).collect();
    images.extend(
        spec.replicas
            .roles()
            .filter_map(|(_, r)| r.image.as_deref()),
    );
    images.extend(spec.tensorboard.iter().filter_map(|t| t.image.as_deref()));
    // ImageCache is cluster-scoped: no namespace.
    vec![json!({
        "apiVersion": "eci.alibabacloud.com/v1",
        "kind": "ImageCache",
        "metadata": {"name": format!("{}-images", ctx.job.name()), "labels": job_labels(ctx)},
        "spec": {"images": images},
    })]
}
