//! A job's TensorBoard on the cluster: the renderer's Deployment and Service (the objects
//! `trainctl render` prints), with the collector sidecar that records the job's metrics in
//! its logDir, and the collector's ServiceAccount, Role and RoleBinding. All are owned by
//! the job, so the garbage collector removes them with it; creating them again is a no-op.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::PostParams;
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;
use trainctl_kube::render::tensorboard_objects;

use crate::reconcile::ignore_exists;
use crate::Error;

/// Creates whatever of the job's TensorBoard objects is missing (nothing when the job asks
/// for no TensorBoard). The Role comes before the pod that needs it.
pub async fn ensure_tensorboard(
    client: &kube::Client,
    job: &trainctl_spec::TrainingJob,
    namespace: &str,
    owner: Option<OwnerReference>,
    collector_image: &str,
    post: &PostParams,
) -> Result<(), Error> {
    let Some(objects) = tensorboard_objects(job, namespace, collector_image) else {
        return Ok(());
    };
    let create = Creator {
        client,
        namespace,
        owner,
        post,
    };
    if let Some(access) = objects.collector {
        create.object(access.service_account).await?;
        create.object(access.role).await?;
        create.object(access.role_binding).await?;
    }
    create.object(objects.deployment).await?;
    create.object(objects.service).await
}

/// Creates namespaced objects owned by the job.
struct Creator<'a> {
    client: &'a kube::Client,
    namespace: &'a str,
    owner: Option<OwnerReference>,
    post: &'a PostParams,
}

impl Creator<'_> {
    async fn object<K>(&self, mut object: K) -> Result<(), Error>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + Debug
            + Serialize
            + DeserializeOwned,
    {
        let meta: &mut ObjectMeta = object.meta_mut();
        meta.owner_references = self.owner.clone().map(|o| vec![o]);
        let api: Api<K> = Api::namespaced(self.client.clone(), self.namespace);
        ignore_exists(api.create(self.post, &object).await).map(|_| ())
    }
}
