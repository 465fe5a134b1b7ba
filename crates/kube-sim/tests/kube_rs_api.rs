//! kube-rs typed and dynamic clients against the server: CRUD on every built-in kind,
//! conflicts, status subresource, generation, CRDs, selectors, patches, garbage collection.

mod common;

use std::fmt::Debug;

use k8s_openapi::api::{apps, batch, coordination, core::v1 as core, events};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::Discovery;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;

fn object<K: DeserializeOwned>(value: serde_json::Value) -> K {
    serde_json::from_value(value).expect("test object deserializes")
}

/// Create, get, replace, merge-patch, list and delete one object through a typed Api.
async fn crud<K>(api: Api<K>, obj: K)
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug,
{
    let name = obj.name_any();
    let created = api
        .create(&PostParams::default(), &obj)
        .await
        .expect("create");
    assert!(created.uid().is_some(), "{name}: uid assigned");
    assert!(
        created.meta().creation_timestamp.is_some(),
        "{name}: creationTimestamp"
    );
    let mut got = api.get(&name).await.expect("get");
    assert_eq!(got.uid(), created.uid());
    got.labels_mut().insert("touched".into(), "yes".into());
    let replaced = api
        .replace(&name, &PostParams::default(), &got)
        .await
        .expect("replace");
    assert_eq!(
        replaced.labels().get("touched").map(String::as_str),
        Some("yes")
    );
    assert_ne!(replaced.resource_version(), created.resource_version());
    let patch = Patch::Merge(json!({"metadata": {"annotations": {"patched": "1"}}}));
    let patched = api
        .patch(&name, &PatchParams::default(), &patch)
        .await
        .expect("patch");
    assert_eq!(
        patched.annotations().get("patched").map(String::as_str),
        Some("1")
    );
    let listed = api
        .list(&ListParams::default().labels("touched=yes"))
        .await
        .expect("list");
    assert!(
        listed.items.iter().any(|o| o.name_any() == name),
        "{name} listed"
    );
    api.delete(&name, &DeleteParams::default())
        .await
        .expect("delete");
    assert!(
        api.get_opt(&name).await.expect("get_opt").is_none(),
        "{name} gone"
    );
}

#[tokio::test]
async fn typed_crud_works_on_every_builtin_kind() {
    let s = common::start_api_only().await;
    let c = &s.client;
    let meta = |name: &str| json!({"name": name});
    crud(
        Api::<core::Namespace>::all(c.clone()),
        object(json!({"metadata": meta("team-a")})),
    )
    .await;
    crud(
        Api::<core::Node>::all(c.clone()),
        object(json!({"metadata": meta("node-x")})),
    )
    .await;
    crud(
        Api::<core::Pod>::default_namespaced(c.clone()),
        object(json!({"metadata": meta("p"), "spec": {"containers": [{"name": "c", "image": "busybox"}]}})),
    )
    .await;
    crud(
        Api::<core::Service>::default_namespaced(c.clone()),
        object(json!({"metadata": meta("svc"), "spec": {"clusterIP": "None", "ports": [{"port": 80}]}})),
    )
    .await;
    crud(
        Api::<core::ConfigMap>::default_namespaced(c.clone()),
        object(json!({"metadata": meta("cm"), "data": {"k": "v"}})),
    )
    .await;
    crud(
        Api::<core::Secret>::default_namespaced(c.clone()),
        object(json!({"metadata": meta("s"), "stringData": {"k": "v"}})),
    )
    .await;
    crud(
        Api::<core::Event>::default_namespaced(c.clone()),
        object(json!({"metadata": meta("ev1"), "involvedObject": {"kind": "Pod", "name": "p"}, "reason": "Test"})),
    )
    .await;
    crud(
        Api::<core::PersistentVolume>::all(c.clone()),
        object(json!({"metadata": meta("pv"), "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/tmp"}}})),
    )
    .await;
    crud(
        Api::<core::PersistentVolumeClaim>::default_namespaced(c.clone()),
        object(json!({"metadata": meta("pvc"), "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})),
    )
    .await;
    let template = json!({"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}], "restartPolicy": "Never"}});
    crud(
        Api::<apps::v1::Deployment>::default_namespaced(c.clone()),
        object(json!({"metadata": meta("dep"), "spec": {"selector": {"matchLabels": {"app": "a"}}, "template": template}})),
    )
    .await;
    crud(
        Api::<batch::v1::Job>::default_namespaced(c.clone()),
        object(json!({"metadata": meta("job"), "spec": {"template": template}})),
    )
    .await;
    crud(
        Api::<events::v1::Event>::default_namespaced(c.clone()),
        object(json!({"metadata": meta("ev2"), "eventTime": "2025-01-01T00:00:00.000000Z", "reportingController": "t", "reportingInstance": "t", "action": "A", "reason": "R"})),
    )
    .await;
    crud(
        Api::<coordination::v1::Lease>::default_namespaced(c.clone()),
        object(json!({"metadata": meta("lease"), "spec": {"holderIdentity": "me"}})),
    )
    .await;
    crud(
        Api::<CustomResourceDefinition>::all(c.clone()),
        object(common::widget_crd()),
    )
    .await;
}

#[tokio::test]
async fn stale_resource_version_is_a_409_conflict_and_duplicates_already_exist() {
    let s = common::start_api_only().await;
    let api = Api::<core::ConfigMap>::default_namespaced(s.client.clone());
    let cm: core::ConfigMap = object(json!({"metadata": {"name": "cfg"}, "data": {"n": "0"}}));
    let first = api.create(&PostParams::default(), &cm).await.unwrap();
    let dup = api.create(&PostParams::default(), &cm).await.unwrap_err();
    assert!(
        matches!(dup, kube::Error::Api(ref e) if e.code == 409 && e.reason == "AlreadyExists"),
        "{dup:?}"
    );
    let mut a = first.clone();
    a.data
        .get_or_insert_default()
        .insert("n".into(), "1".into());
    api.replace("cfg", &PostParams::default(), &a)
        .await
        .unwrap();
    let mut b = first;
    b.data
        .get_or_insert_default()
        .insert("n".into(), "2".into());
    let err = api
        .replace("cfg", &PostParams::default(), &b)
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref e) if e.code == 409 && e.reason == "Conflict"),
        "{err:?}"
    );
    let stored = api.get("cfg").await.unwrap();
    assert_eq!(
        stored.data.unwrap()["n"],
        "1",
        "the stale write changed nothing"
    );
    let missing = api.get("nope").await.unwrap_err();
    assert!(matches!(missing, kube::Error::Api(ref e) if e.code == 404 && e.reason == "NotFound"));
}

#[tokio::test]
async fn status_is_written_only_through_the_subresource_and_generation_tracks_spec() {
    let s = common::start_with(kube_sim::ServerConfig {
        schemas: kube_sim::SchemaSource::Off,
        simulate_cluster: false,
        ..Default::default()
    })
    .await;
    let api = Api::<batch::v1::Job>::default_namespaced(s.client.clone());
    let job: batch::v1::Job = object(
        json!({"metadata": {"name": "j"}, "spec": {"parallelism": 1, "template": {"spec": {"containers": [{"name": "c", "image": "x"}], "restartPolicy": "Never"}}}, "status": {"active": 5}}),
    );
    let created = api.create(&PostParams::default(), &job).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.status.is_none(), "status dropped on create");
    let pp = PatchParams::default();
    let labelled = api
        .patch(
            "j",
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}, "status": {"active": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(
        labelled.metadata.generation,
        Some(1),
        "metadata changes keep generation"
    );
    assert!(
        labelled.status.is_none(),
        "status ignored on the main resource"
    );
    let scaled = api
        .patch("j", &pp, &Patch::Merge(json!({"spec": {"parallelism": 2}})))
        .await
        .unwrap();
    assert_eq!(
        scaled.metadata.generation,
        Some(2),
        "spec change bumps generation"
    );
    let status = api
        .patch_status(
            "j",
            &pp,
            &Patch::Merge(json!({"status": {"active": 2}, "spec": {"parallelism": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(status.status.unwrap().active, Some(2));
    assert_eq!(
        status.spec.unwrap().parallelism,
        Some(2),
        "spec ignored on the status subresource"
    );
    assert_eq!(status.metadata.generation, Some(2));
}

#[tokio::test]
async fn crds_are_served_with_discovery_scope_status_and_schema_validation() {
    let s = common::start_api_only().await;
    let crds = Api::<CustomResourceDefinition>::all(s.client.clone());
    crds.create(&PostParams::default(), &object(common::widget_crd()))
        .await
        .unwrap();
    let established = crds.get("widgets.example.com").await.unwrap();
    let conditions = established.status.unwrap().conditions.unwrap();
    assert!(conditions
        .iter()
        .any(|c| c.type_ == "Established" && c.status == "True"));

    let discovery = Discovery::new(s.client.clone()).run().await.unwrap();
    let gvk = GroupVersionKind::gvk("example.com", "v1", "Widget");
    let (ar, caps) = discovery.resolve_gvk(&gvk).expect("Widget discovered");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    assert!(discovery
        .resolve_gvk(&GroupVersionKind::gvk("batch", "v1", "Job"))
        .is_some());

    let widgets: Api<DynamicObject> = Api::default_namespaced_with(s.client.clone(), &ar);
    let widget: DynamicObject = object(
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 3}}),
    );
    widgets
        .create(&PostParams::default(), &widget)
        .await
        .unwrap();
    let bad: DynamicObject = object(
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w2"}, "spec": {"size": "big"}}),
    );
    let err = widgets
        .create(&PostParams::default(), &bad)
        .await
        .unwrap_err();
    common::assert_invalid(err, &["Widget \"w2\" is invalid", "spec.size"]);
    let status = widgets
        .patch_status(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Ready"}})),
        )
        .await
        .unwrap();
    assert_eq!(status.data["status"]["phase"], "Ready");

    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    let gone = widgets.list(&ListParams::default()).await.unwrap_err();
    assert!(
        matches!(gone, kube::Error::Api(ref e) if e.code == 404),
        "unserved after CRD deletion: {gone:?}"
    );
}

#[tokio::test]
async fn label_and_field_selectors_filter_lists() {
    let s = common::start_api_only().await;
    let api = Api::<core::ConfigMap>::default_namespaced(s.client.clone());
    for (name, tier) in [("a", "front"), ("b", "back"), ("c", "front")] {
        let cm = object(json!({"metadata": {"name": name, "labels": {"tier": tier}}}));
        api.create(&PostParams::default(), &cm).await.unwrap();
    }
    let names = |l: kube::core::ObjectList<core::ConfigMap>| {
        l.items.iter().map(|o| o.name_any()).collect::<Vec<_>>()
    };
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("tier=front"))
                .await
                .unwrap()
        ),
        ["a", "c"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("tier notin (front)"))
                .await
                .unwrap()
        ),
        ["b"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().fields("metadata.name=c"))
                .await
                .unwrap()
        ),
        ["c"]
    );
    let all = Api::<core::ConfigMap>::all(s.client.clone());
    assert_eq!(
        names(
            all.list(&ListParams::default().fields("metadata.namespace!=default"))
                .await
                .unwrap()
        ),
        Vec::<String>::new()
    );
    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("tier=front"),
    )
    .await
    .unwrap();
    assert_eq!(
        names(api.list(&ListParams::default()).await.unwrap()),
        ["b"]
    );
}

#[tokio::test]
async fn server_side_apply_strategic_merge_and_json_patches_edit_a_pod_as_kubernetes_does() {
    let s = common::start_api_only().await;
    let api = Api::<core::Pod>::default_namespaced(s.client.clone());
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}});
    let ssa = PatchParams::apply("tester");
    let created = api
        .patch("p", &ssa, &Patch::Apply(pod.clone()))
        .await
        .unwrap();
    assert_eq!(
        created.spec.as_ref().unwrap().containers.len(),
        2,
        "apply creates"
    );
    let applied = api.patch("p", &ssa, &Patch::Apply(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"l": "1"}}, "spec": {"containers": [{"name": "b", "image": "b:2"}]}}))).await.unwrap();
    let containers = applied.spec.unwrap().containers;
    assert_eq!(
        containers
            .iter()
            .map(|c| (c.name.as_str(), c.image.as_deref().unwrap()))
            .collect::<Vec<_>>(),
        [("a", "a:1"), ("b", "b:2")],
        "apply merges by container name"
    );
    let strategic = api
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"containers": [{"name": "a", "$patch": "delete"}]}})),
        )
        .await
        .unwrap();
    assert_eq!(strategic.spec.unwrap().containers.len(), 1);
    let ops: json_patch::Patch =
        serde_json::from_value(json!([{"op": "add", "path": "/metadata/labels/j", "value": "2"}]))
            .unwrap();
    let patched = api
        .patch("p", &PatchParams::default(), &Patch::<()>::Json(ops))
        .await
        .unwrap();
    assert_eq!(patched.labels().get("j").map(String::as_str), Some("2"));
    let no_manager = api
        .patch("q", &PatchParams::default(), &Patch::Apply(pod))
        .await
        .unwrap_err();
    assert!(
        matches!(no_manager, kube::Error::Api(ref e) if e.code == 400),
        "{no_manager:?}"
    );
}

/// Creates a ConfigMap `name` and returns ownerReferences naming it.
async fn create_owner(cms: &Api<core::ConfigMap>, name: &str) -> serde_json::Value {
    let owner = cms
        .create(
            &PostParams::default(),
            &object(json!({"metadata": {"name": name}})),
        )
        .await
        .unwrap();
    json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": name, "uid": owner.uid().unwrap(), "blockOwnerDeletion": true}])
}

#[tokio::test]
async fn garbage_collection_follows_owner_references_and_finalizers_block_deletion() {
    let s = common::start_api_only().await;
    let cms = Api::<core::ConfigMap>::default_namespaced(s.client.clone());
    let owner_ref = create_owner(&cms, "owner").await;
    for name in ["dep-1", "dep-2"] {
        cms.create(
            &PostParams::default(),
            &object(json!({"metadata": {"name": name, "ownerReferences": owner_ref}})),
        )
        .await
        .unwrap();
    }
    // A grand-dependent goes with its owner's owner.
    let dep_ref = {
        let dep = cms.get("dep-1").await.unwrap();
        json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "dep-1", "uid": dep.uid().unwrap()}])
    };
    cms.create(
        &PostParams::default(),
        &object(json!({"metadata": {"name": "grand", "ownerReferences": dep_ref}})),
    )
    .await
    .unwrap();
    cms.delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    for name in ["owner", "dep-1", "dep-2", "grand"] {
        assert!(
            cms.get_opt(name).await.unwrap().is_none(),
            "{name} collected"
        );
    }

    let owner_ref = create_owner(&cms, "owner2").await;
    cms.create(&PostParams::default(), &object(json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"], "ownerReferences": owner_ref}}))).await.unwrap();
    cms.delete("owner2", &DeleteParams::foreground())
        .await
        .unwrap();
    let waiting = cms
        .get("owner2")
        .await
        .expect("foreground owner waits for its dependent");
    assert!(waiting.metadata.deletion_timestamp.is_some());
    let held = cms
        .get("held")
        .await
        .expect("finalizer keeps the dependent");
    assert!(held.metadata.deletion_timestamp.is_some());
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(
        cms.get_opt("held").await.unwrap().is_none(),
        "removing the finalizer deletes"
    );
    assert!(
        cms.get_opt("owner2").await.unwrap().is_none(),
        "then the foreground owner goes"
    );

    let owner_ref = create_owner(&cms, "owner3").await;
    cms.create(
        &PostParams::default(),
        &object(json!({"metadata": {"name": "kept", "ownerReferences": owner_ref}})),
    )
    .await
    .unwrap();
    cms.delete("owner3", &DeleteParams::orphan()).await.unwrap();
    let kept = cms.get("kept").await.expect("orphaned dependent stays");
    assert!(kept.owner_references().is_empty());
}
