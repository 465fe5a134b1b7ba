//! Watches: resuming from a resourceVersion without gaps or duplicates, 410 Gone past the
//! history, live events held back by an injected watch delay, kube-rs watcher/reflector
//! staying in sync through dropped watches and a 410, and a kube-rs Controller reconciling
//! a toy CRD to completion.

mod common;

use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::controller::Action;
use kube::runtime::{reflector, watcher, Controller, WatchStreamExt};
use kube::ResourceExt;
use kube_sim::{FaultRule, InjectedError, SchemaSource, ServerConfig};
use serde_json::json;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}})).unwrap()
}

fn small_history() -> ServerConfig {
    ServerConfig {
        history_limit: 5,
        schemas: SchemaSource::Off,
        ..ServerConfig::default()
    }
}

#[tokio::test]
async fn watch_resumes_from_a_resource_version_without_gaps_or_duplicates() {
    let s = common::start().await;
    let api = Api::<ConfigMap>::default_namespaced(s.client.clone());
    let first = api.create(&PostParams::default(), &cm("c0")).await.unwrap();
    let from = first.resource_version().unwrap();
    for i in 1..4 {
        api.create(&PostParams::default(), &cm(&format!("c{i}")))
            .await
            .unwrap();
    }
    let stream = api.watch(&WatchParams::default(), &from).await.unwrap();
    tokio::pin!(stream);
    let writer = {
        let api = api.clone();
        tokio::spawn(async move {
            for i in 4..8 {
                api.create(&PostParams::default(), &cm(&format!("c{i}")))
                    .await
                    .unwrap();
            }
        })
    };
    let mut seen = Vec::new();
    while seen.len() < 7 {
        let event = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match event {
            WatchEvent::Added(o) => seen.push((
                o.name_any(),
                o.resource_version().unwrap().parse::<u64>().unwrap(),
            )),
            WatchEvent::Bookmark(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    writer.await.unwrap();
    let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["c1", "c2", "c3", "c4", "c5", "c6", "c7"]);
    assert!(
        seen.windows(2).all(|w| w[0].1 < w[1].1),
        "resourceVersions increase: {seen:?}"
    );
}

/// Waits for `future`, failing the test after 10 s.
async fn within<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .expect("in time")
}

#[tokio::test]
async fn a_watch_delay_holds_back_live_events_in_order_for_that_resource_only() {
    let s = common::start().await;
    let delay = Duration::from_millis(300);
    s.sim.set_watch_delay("configmaps", delay);
    let api = Api::<ConfigMap>::default_namespaced(s.client.clone());
    let now = api.create(&PostParams::default(), &cm("c0")).await.unwrap();
    let stream = api
        .watch(&WatchParams::default(), &now.resource_version().unwrap())
        .await
        .unwrap();
    tokio::pin!(stream);
    let secrets = Api::<k8s_openapi::api::core::v1::Secret>::default_namespaced(s.client.clone());
    let unlagged = secrets.watch(&WatchParams::default(), "0").await.unwrap();
    tokio::pin!(unlagged);
    let sent = std::time::Instant::now();
    for i in 1..4 {
        api.create(&PostParams::default(), &cm(&format!("c{i}")))
            .await
            .unwrap();
    }
    let secret: k8s_openapi::api::core::v1::Secret =
        serde_json::from_value(json!({"metadata": {"name": "s"}})).unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    loop {
        match within(unlagged.try_next()).await.unwrap().unwrap() {
            WatchEvent::Added(o) => break assert_eq!(o.name_any(), "s"),
            WatchEvent::Bookmark(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(sent.elapsed() < delay, "other resources are not held back");
    let mut names = Vec::new();
    while names.len() < 3 {
        match within(stream.try_next()).await.unwrap().unwrap() {
            WatchEvent::Added(o) => {
                assert!(sent.elapsed() >= delay, "held back at least the delay");
                names.push(o.name_any());
            }
            WatchEvent::Bookmark(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(names, ["c1", "c2", "c3"]);
}

#[tokio::test]
async fn watch_from_a_version_older_than_the_history_is_410_gone() {
    let s = common::start_with(small_history()).await;
    let api = Api::<ConfigMap>::default_namespaced(s.client.clone());
    let first = api
        .create(&PostParams::default(), &cm("old"))
        .await
        .unwrap();
    for i in 0..10 {
        api.create(&PostParams::default(), &cm(&format!("n{i}")))
            .await
            .unwrap();
    }
    let stream = api
        .watch(&WatchParams::default(), &first.resource_version().unwrap())
        .await
        .unwrap();
    tokio::pin!(stream);
    match stream.try_next().await.unwrap().unwrap() {
        WatchEvent::Error(e) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("expected 410, got {other:?}"),
    }
}

#[tokio::test]
async fn reflector_stays_in_sync_through_dropped_watches_and_a_410() {
    let s = common::start_with(small_history()).await;
    let api = Api::<ConfigMap>::default_namespaced(s.client.clone());
    let (reader, writer) = reflector::store::<ConfigMap>();
    let stream = reflector(
        writer,
        watcher(api.clone(), watcher::Config::default()).default_backoff(),
    )
    .applied_objects();
    tokio::spawn(stream.for_each(|_| async {}));
    let names = |reader: &reflector::Store<ConfigMap>| {
        let mut n: Vec<String> = reader.state().iter().map(|o| o.name_any()).collect();
        n.sort();
        n
    };
    for name in ["a", "b"] {
        api.create(&PostParams::default(), &cm(name)).await.unwrap();
    }
    common::eventually("initial sync", || async {
        (names(&reader) == ["a", "b"]).then_some(())
    })
    .await;

    s.sim.drop_watches();
    api.create(&PostParams::default(), &cm("c")).await.unwrap();
    common::eventually("sync after a dropped watch", || async {
        (names(&reader) == ["a", "b", "c"]).then_some(())
    })
    .await;

    s.sim.inject_fault(FaultRule {
        verb: Some("watch".into()),
        resource: None,
        rate: 1.0,
        error: InjectedError::ServerError,
    });
    s.sim.drop_watches();
    api.delete("a", &Default::default()).await.unwrap();
    for i in 0..8 {
        api.create(&PostParams::default(), &cm(&format!("x{i}")))
            .await
            .unwrap();
    }
    s.sim.clear_faults();
    let expected: Vec<String> = ["b", "c", "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    common::eventually("resync after 410", || async {
        (names(&reader) == expected).then_some(())
    })
    .await;
}

#[tokio::test]
async fn controller_reconciles_a_toy_crd_to_completion() {
    let s = common::start().await;
    let crds = Api::<DynamicObject>::all_with(
        s.client.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
            "customresourcedefinitions",
        ),
    );
    crds.create(
        &PostParams::default(),
        &serde_json::from_value(common::widget_crd()).unwrap(),
    )
    .await
    .unwrap();
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    );
    let widgets: Api<DynamicObject> = Api::default_namespaced_with(s.client.clone(), &ar);
    for name in ["w1", "w2"] {
        let w = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": {"size": 2}});
        widgets
            .create(&PostParams::default(), &serde_json::from_value(w).unwrap())
            .await
            .unwrap();
    }

    async fn reconcile(
        w: Arc<DynamicObject>,
        api: Arc<Api<DynamicObject>>,
    ) -> Result<Action, kube::Error> {
        if w.data["status"]["phase"] != "Done" {
            let status = json!({"status": {"phase": "Done"}});
            api.patch_status(
                &w.name_any(),
                &PatchParams::default(),
                &Patch::Merge(status),
            )
            .await?;
        }
        Ok(Action::await_change())
    }
    let controller = Controller::new_with(widgets.clone(), watcher::Config::default(), ar.clone())
        .run(
            reconcile,
            |_, _, _| Action::requeue(Duration::from_millis(100)),
            Arc::new(widgets.clone()),
        )
        .for_each(|_| async {});
    let handle = tokio::spawn(controller);
    common::eventually("both widgets Done", || async {
        let list = widgets.list(&Default::default()).await.ok()?;
        list.items
            .iter()
            .all(|w| w.data["status"]["phase"] == "Done")
            .then_some(())
    })
    .await;
    handle.abort();
}
