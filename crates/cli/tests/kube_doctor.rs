//! `trainctl doctor --kube [--smoke]`: the real binary against kube-sim clusters built to
//! fail in each way the in-memory server can simulate (no GPU nodes, no device plugin, CRD or
//! operator, all GPUs taken, a GPU type nobody offers, a taint the smoke pod does not
//! tolerate, an image the registry lacks, a node whose runtime gives containers no NVML)
//! and one where everything is right; and `top node|job --kube`, which count GPUs from pod
//! requests and read CPU and memory from the metrics API and GPU use from a fake Prometheus
//! on loopback with the DCGM exporter's series.

mod kube_support;

use kube_support::Run;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::node::v1::RuntimeClass;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::Api;
use kube_sim::{KubeSim, NodeSpec, NodeTaint};
use serde_json::{json, Value};

struct Cluster {
    sim: KubeSim,
    client: kube::Client,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Run {
    fn report(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}\nstderr: {}", self.stdout, self.stderr))
    }

    /// `(status, detail)` of the check `name`.
    fn check(&self, name: &str) -> (String, String) {
        let report = self.report();
        let c = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no check {name}: {report:#}"))
            .clone();
        (
            c["status"].as_str().unwrap().to_string(),
            c["detail"].as_str().unwrap().to_string(),
        )
    }
}

fn gfd_labels(product: &str) -> BTreeMap<String, String> {
    [
        ("nvidia.com/gpu.product", product),
        ("nvidia.com/gpu.memory", "143771"),
        ("nvidia.com/cuda.driver-version.major", "550"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

impl Cluster {
    /// kube-sim with one CPU node and nothing installed.
    async fn bare() -> Cluster {
        let sim = KubeSim::start().await.unwrap();
        sim.add_node(&NodeSpec::new("cpu-1")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = sim
            .write_kubeconfig(&dir.path().join("kubeconfig"))
            .unwrap();
        let client = kube_support::client_for(&sim).await;
        Cluster {
            sim,
            client,
            dir,
            kubeconfig,
        }
    }

    /// Everything right: a node with `gpus` H200s labelled by GPU Feature Discovery, the
    /// device plugin DaemonSet with a ready pod on it, RuntimeClass nvidia, the CRD and an
    /// available operator Deployment.
    async fn healthy(gpus: u32) -> Cluster {
        Cluster::installed_on(NodeSpec {
            gpus,
            ..NodeSpec::new("gpu-1")
        })
        .await
    }

    /// The healthy cluster's installation, with its GPU node `gpu-1` as `node` says
    /// (labelled by GPU Feature Discovery as H200s).
    async fn installed_on(mut node: NodeSpec) -> Cluster {
        let c = Cluster::bare().await;
        node.labels.extend(gfd_labels("NVIDIA-H200"));
        c.sim.add_node(&node).unwrap();
        kube_support::install_crd(&c.client).await;
        let daemonsets: Api<DaemonSet> = Api::namespaced(c.client.clone(), "kube-system");
        c.create_with_status(
            daemonsets.clone(),
            json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
                   "metadata": {"name": "nvidia-device-plugin-daemonset", "namespace": "kube-system"},
                   "spec": {"selector": {"matchLabels": {"name": "nvidia-device-plugin-ds"}},
                            "template": {"metadata": {"labels": {"name": "nvidia-device-plugin-ds"}},
                                         "spec": {"containers": [{"name": "plugin", "image": "nvcr.io/nvidia/k8s-device-plugin:v0.17.0"}]}}}}),
            json!({"desiredNumberScheduled": 1, "numberReady": 1, "currentNumberScheduled": 1, "numberMisscheduled": 0}),
        )
        .await;
        let ds = daemonsets
            .get("nvidia-device-plugin-daemonset")
            .await
            .unwrap();
        let plugin_pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "nvidia-device-plugin-daemonset-abcde", "namespace": "kube-system",
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet",
                             "name": "nvidia-device-plugin-daemonset", "uid": ds.metadata.uid}]},
            "spec": {"nodeName": "gpu-1",
                     "containers": [{"name": "plugin", "image": "nvcr.io/nvidia/k8s-device-plugin:v0.17.0"}]},
        }))
        .unwrap();
        Api::<Pod>::namespaced(c.client.clone(), "kube-system")
            .create(&PostParams::default(), &plugin_pod)
            .await
            .unwrap();
        c.create_with_status(
            Api::<RuntimeClass>::all(c.client.clone()),
            json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                   "metadata": {"name": "nvidia"}, "handler": "nvidia"}),
            Value::Null,
        )
        .await;
        c.create_with_status(
            Api::<Deployment>::namespaced(c.client.clone(), "default"),
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "trainctl-operator", "namespace": "default",
                                "labels": {"app.kubernetes.io/name": "trainctl-operator"}},
                   "spec": {"replicas": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": "trainctl-operator"}},
                            "template": {"metadata": {"labels": {"app.kubernetes.io/name": "trainctl-operator"}},
                                         "spec": {"containers": [{"name": "operator", "image": "trainctl:dev"}]}}}}),
            json!({"replicas": 1, "availableReplicas": 1, "readyReplicas": 1}),
        )
        .await;
        // The plugin pod is ready once the simulated kubelet started it.
        kube_sim::eventually("the plugin pod runs", Duration::from_secs(20), || async {
            let pod = Api::<Pod>::namespaced(c.client.clone(), "kube-system")
                .get("nvidia-device-plugin-daemonset-abcde")
                .await
                .ok()?;
            (pod.status?.phase.as_deref() == Some("Running")).then_some(())
        })
        .await;
        c
    }

    /// Creates `object` and, unless `status` is null, sets its status through the status
    /// subresource (a create drops it).
    async fn create_with_status<K>(&self, api: Api<K>, object: Value, status: Value)
    where
        K: kube::Resource
            + Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
    {
        let name = object["metadata"]["name"].as_str().unwrap().to_string();
        let typed: K = serde_json::from_value(object).unwrap();
        api.create(&PostParams::default(), &typed).await.unwrap();
        if !status.is_null() {
            api.patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": status })),
            )
            .await
            .unwrap();
        }
    }

    /// A running pod holding `gpus` GPUs on `node`.
    async fn occupy(&self, node: &str, gpus: u32) {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "someone-elses-training"},
            "spec": {"nodeName": node, "containers": [{"name": "train", "image": "train:1",
                     "resources": {"limits": {"nvidia.com/gpu": gpus.to_string()}}}]},
        }))
        .unwrap();
        Api::<Pod>::namespaced(self.client.clone(), "default")
            .create(&PostParams::default(), &pod)
            .await
            .unwrap();
    }

    async fn doctor(&self, args: &[&str]) -> Run {
        let mut all = vec!["doctor", "--kube", "-o", "json"];
        all.extend(args);
        self.trainctl(&all).await
    }

    async fn trainctl(&self, args: &[&str]) -> Run {
        kube_support::trainctl_in(self.dir.path(), &self.kubeconfig, args).await
    }

    /// Runs `doctor --kube --smoke` with `extra` arguments, ending the smoke pod with `exit_code` and `log` once
    /// it runs (as nvidia-smi would).
    async fn smoke_ending(&self, exit_code: i64, log: &[&str], extra: &[&str]) -> Run {
        let mut args = vec!["--smoke", "--smoke-timeout", "30s"];
        args.extend(extra);
        let doctor = self.doctor(&args);
        let finisher = async {
            let pods: Api<Pod> = Api::namespaced(self.client.clone(), "default");
            let name =
                kube_sim::eventually("the smoke pod runs", Duration::from_secs(20), || async {
                    let list = pods
                        .list(
                            &ListParams::default().labels("app.kubernetes.io/name=trainctl-doctor"),
                        )
                        .await
                        .ok()?;
                    let pod = list.items.into_iter().next()?;
                    (pod.status.as_ref()?.phase.as_deref() == Some("Running"))
                        .then(|| pod.metadata.name.clone())?
                })
                .await;
            self.sim.append_log("default", &name, "smoke", log);
            self.sim.finish_pod("default", &name, exit_code).unwrap();
        };
        let (run, ()) = tokio::join!(doctor, finisher);
        run
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_gpu_cluster_passes_and_its_smoke_pod_sees_the_gpu() {
    let c = Cluster::healthy(8).await;
    let run = c.doctor(&[]).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.report()["verdict"], "ok", "{}", run.stdout);
    assert_eq!(
        run.check("gpu-nodes").1,
        "gpu-1 8/8 allocatable, 0 requested"
    );
    assert!(run
        .check("device-plugin")
        .1
        .contains("kube-system/nvidia-device-plugin-daemonset 1/1 ready"));
    assert_eq!(run.check("runtime-class").0, "ok");
    assert!(run.check("crd").1.contains("v1alpha1"));
    assert!(run
        .check("operator")
        .1
        .contains("default/trainctl-operator 1/1 available"));
    assert!(run.check("cloud-profile").1.contains("NVIDIA-H200"));

    let run = c
        .smoke_ending(0, &["GPU 0: NVIDIA H200 (UUID: GPU-5a1f)"], &[])
        .await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let (status, detail) = run.check("smoke");
    assert_eq!(status, "ok");
    assert_eq!(
        detail,
        "a one-GPU pod ran nvidia-smi on node gpu-1: GPU 0: NVIDIA H200 (UUID: GPU-5a1f)"
    );
    let left = Api::<Pod>::namespaced(c.client.clone(), "default")
        .list(&ListParams::default().labels("app.kubernetes.io/name=trainctl-doctor"))
        .await
        .unwrap();
    assert!(left.items.is_empty(), "the smoke pod is deleted");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_without_gpus_plugin_crd_or_operator_fails_each_check_and_the_smoke_pod_says_why()
{
    let c = Cluster::bare().await;
    let run = c.doctor(&[]).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    for name in ["gpu-nodes", "device-plugin", "crd", "operator"] {
        assert_eq!(run.check(name).0, "fail", "{name}: {}", run.stdout);
    }
    assert_eq!(
        run.check("runtime-class").1,
        "no RuntimeClass nvidia (classes: none)"
    );

    let run = c.doctor(&["--smoke", "--smoke-timeout", "20s"]).await;
    assert_eq!(run.code, 1);
    assert_eq!(
        run.check("smoke").1,
        "Pending, Insufficient nvidia.com/gpu: cpu-1: no GPUs (the scheduler: 0/1 nodes are available: 1 Insufficient nvidia.com/gpu.)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_smoke_pod_explains_gpus_all_taken_and_a_gpu_type_nobody_offers() {
    let c = Cluster::healthy(1).await;
    c.occupy("gpu-1", 1).await;
    let run = c.doctor(&["--smoke", "--smoke-timeout", "20s"]).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(run
        .check("gpu-nodes")
        .1
        .contains("gpu-1 1/1 allocatable, 1 requested"));
    assert_eq!(
        run.check("smoke").1,
        "Pending, Insufficient nvidia.com/gpu: cpu-1: no GPUs; gpu-1: all 1 GPUs allocated to other pods \
         (the scheduler: 0/2 nodes are available: 2 Insufficient nvidia.com/gpu.)"
    );

    let run = c
        .doctor(&[
            "--gpu-type",
            "Tesla-V100",
            "--smoke",
            "--smoke-timeout",
            "20s",
        ])
        .await;
    let (status, detail) = run.check("cloud-profile");
    assert_eq!(status, "fail");
    assert!(
        detail.contains("no node offers gpu type \"Tesla-V100\""),
        "{detail}"
    );
    let detail = run.check("smoke").1;
    assert!(
        detail
            .contains("gpu-1: does not match the node selector nvidia.com/gpu.product=Tesla-V100"),
        "{detail}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_without_the_nvidia_runtime_fails_the_smoke_pod_and_is_blamed_on_the_runtime() {
    let c = Cluster::installed_on(NodeSpec {
        gpus: 2,
        nvidia_runtime: false,
        ..NodeSpec::new("gpu-1")
    })
    .await;
    let run = c.doctor(&["--smoke", "--smoke-timeout", "20s"]).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let report = run.report();
    let smoke = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "smoke")
        .unwrap();
    assert_eq!(
        smoke["detail"],
        "the container cannot load NVML on node gpu-1: NVIDIA-SMI couldn't find libnvidia-ml.so library in your system. Please make sure that the NVIDIA Display Driver is properly installed and present in your system."
    );
    assert!(smoke["fix"]
        .as_str()
        .unwrap()
        .contains("nvidia-ctk runtime configure"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_taint_the_smoke_pod_does_not_tolerate_is_named_with_the_node() {
    let c = Cluster::installed_on(NodeSpec {
        gpus: 8,
        taints: vec![NodeTaint::no_schedule("dedicated", "ml")],
        ..NodeSpec::new("gpu-1")
    })
    .await;
    let run = c.doctor(&["--smoke", "--smoke-timeout", "20s"]).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        run.check("smoke").1,
        "Pending, Insufficient nvidia.com/gpu: cpu-1: no GPUs; gpu-1: taint dedicated=ml:NoSchedule not tolerated \
         (the scheduler: 0/2 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s) had untolerated taint {dedicated: ml}.)"
    );
    let table = c
        .trainctl(&["doctor", "--kube", "--smoke", "--smoke-timeout", "20s"])
        .await;
    assert!(
        table
            .stdout
            .contains("fix: free or add GPUs, tolerate the taints"),
        "{}",
        table.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_the_registry_lacks_is_reported_as_a_pull_failure_and_another_can_be_chosen() {
    let c = Cluster::healthy(1).await;
    let generic = "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04";
    c.sim.remove_image(generic);
    let run = c.doctor(&["--smoke", "--smoke-timeout", "20s"]).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let detail = run.check("smoke").1;
    // The kubelet alternates between the two reasons; a slow poll may see the back-off first.
    let reasons = [
        format!("ErrImagePull: Failed to pull image \"{generic}\""),
        format!("ImagePullBackOff: Back-off pulling image \"{generic}\""),
    ];
    assert!(
        reasons.iter().any(|r| detail
            .starts_with(&format!("cannot pull image {generic} on node gpu-1: {r}"))),
        "{detail}"
    );

    let aliyun = "registry.cn-beijing.aliyuncs.com/ai-samples/tensorflow:1.5.0-devel-gpu";
    c.sim.remove_image(aliyun);
    let run = c
        .doctor(&[
            "--profile",
            "alibaba-ack",
            "--smoke",
            "--smoke-timeout",
            "20s",
        ])
        .await;
    let detail = run.check("smoke").1;
    assert!(
        detail.starts_with(&format!("cannot pull image {aliyun}")),
        "the profile picks the image: {detail}"
    );

    let run = c
        .smoke_ending(
            0,
            &["GPU 0: NVIDIA H200 (UUID: GPU-5a1f)"],
            &["--smoke-image", "mirror.local/cuda:12.4.1-base"],
        )
        .await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.check("smoke").0, "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn top_node_kube_counts_each_nodes_gpus_from_the_requests_of_its_live_pods() {
    let c = Cluster::healthy(4).await;
    c.occupy("gpu-1", 3).await;
    let run = c.trainctl(&["top", "node", "--kube", "-o", "json"]).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        run.report(),
        json!([{"node": "gpu-1", "capacity": 4, "allocatable": 4, "allocated": 3,
                "pods": [{"pod": "default/someone-elses-training", "gpus": 3}],
                "usage": null, "gpu": null}])
    );
    let table = c.trainctl(&["top", "node", "--kube"]).await.stdout;
    assert!(
        table.starts_with("GPUs: 4 allocatable, 3 allocated"),
        "{table}"
    );
    assert!(
        table.contains("default/someone-elses-training(3)"),
        "{table}"
    );
    c.sim
        .finish_pod("default", "someone-elses-training", 0)
        .unwrap();
    let run = c.trainctl(&["top", "node", "--kube", "-o", "json"]).await;
    assert_eq!(run.report()[0]["allocated"], 0, "an ended pod holds no GPU");
}

/// A fake Prometheus on loopback: answers `/api/v1/query` for each metric name with the
/// series given for it (`(labels, value)`), an empty vector for other queries.
fn fake_prometheus(series: Vec<(&'static str, Value, f64)>) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut request_line = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            reader.read_line(&mut request_line).unwrap();
            // Read the headers to the blank line, so the client sees its request consumed.
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 2 {
                line.clear();
            }
            let query = request_line
                .split_whitespace()
                .nth(1)
                .and_then(|path| path.split_once("query="))
                .map_or("", |(_, q)| q);
            let result: Vec<Value> = series
                .iter()
                .filter(|(metric, _, _)| *metric == query)
                .map(|(metric, labels, value)| {
                    let mut labels = labels.clone();
                    labels["__name__"] = json!(metric);
                    json!({"metric": labels, "value": [1764650000.0, value.to_string()]})
                })
                .collect();
            let body = json!({"status": "success",
                              "data": {"resultType": "vector", "result": result}})
            .to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

impl Cluster {
    /// Submits a job of two one-GPU workers through the operator and waits for their pods
    /// to run; returns the pods' names.
    async fn two_gpu_workers(&self) -> Vec<String> {
        kube_support::spawn_operator(&self.client);
        let file = self.dir.path().join("job.yaml");
        std::fs::write(
            &file,
            kube_support::job_yaml("train", "{worker: {count: 2, resources: {gpu: 1}}}"),
        )
        .unwrap();
        let run = self
            .trainctl(&["submit", file.to_str().unwrap(), "--kube"])
            .await;
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), "default");
        kube_sim::eventually("both workers run", Duration::from_secs(30), || async {
            let list = pods
                .list(&ListParams::default().labels("trainctl.dev/job-name=train"))
                .await
                .ok()?;
            let running: Vec<String> = list
                .items
                .iter()
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .filter_map(|p| p.metadata.name.clone())
                .collect();
            (running.len() == 2).then_some(running)
        })
        .await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn top_job_kube_shows_each_replica_pod_and_says_why_usage_is_missing() {
    let c = Cluster::healthy(4).await;
    c.two_gpu_workers().await;
    let run = c
        .trainctl(&["top", "job", "train", "--kube", "-o", "json"])
        .await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let rows = run.report();
    let replicas: Vec<(&str, &str, u64)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["replica"].as_str().unwrap(),
                r["node"].as_str().unwrap(),
                r["gpus"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        replicas,
        [("worker-0", "gpu-1", 1), ("worker-1", "gpu-1", 1)]
    );
    assert!(
        rows[0]["usage"].is_null() && rows[0]["gpu"].is_null(),
        "{rows:#}"
    );
    assert!(
        run.stderr.contains(
            "note: CPU and memory: metrics.k8s.io is not served (install metrics-server)"
        ),
        "{}",
        run.stderr
    );
    assert!(run
        .stderr
        .contains("note: GPU utilization and memory: pass --prometheus URL"));

    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let table = c
        .trainctl(&["top", "job", "--kube", "--prometheus", &closed])
        .await
        .stdout;
    assert!(table.contains("worker-0"), "{table}");
    assert!(
        table.contains(&format!(
            "note: GPU utilization and memory: Prometheus does not answer: {closed}/api/v1/query"
        )),
        "{table}"
    );

    let missing = c.trainctl(&["top", "job", "nope", "--kube"]).await;
    assert_ne!(missing.code, 0);
    assert!(missing.stderr.contains("nope"), "{}", missing.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn top_kube_reads_cpu_and_memory_from_the_metrics_api_and_gpu_use_from_dcgm() {
    let c = Cluster::healthy(4).await;
    let pods = c.two_gpu_workers().await;
    c.sim.serve_metrics_api();
    for (pod, cpu) in pods.iter().zip(["1500m", "250000000n"]) {
        c.sim
            .set_pod_usage("default", pod, &[("tensorflow", cpu, "2Gi")])
            .unwrap();
    }
    c.sim.set_node_usage("gpu-1", "3", "12Gi").unwrap();
    let gpu = |pod: &str, gpu: &str| json!({"pod": pod, "namespace": "default", "gpu": gpu, "Hostname": "gpu-1"});
    let url = fake_prometheus(vec![
        ("DCGM_FI_DEV_GPU_UTIL", gpu(&pods[0], "0"), 87.0),
        ("DCGM_FI_DEV_GPU_UTIL", gpu(&pods[1], "1"), 13.0),
        ("DCGM_FI_DEV_FB_USED", gpu(&pods[0], "0"), 30000.0),
        ("DCGM_FI_DEV_FB_USED", gpu(&pods[1], "1"), 1024.0),
        ("DCGM_FI_DEV_GPU_UTIL", gpu("elsewhere", "2"), 50.0),
    ]);
    let run = c
        .trainctl(&[
            "top",
            "job",
            "train",
            "--kube",
            "--prometheus",
            &url,
            "-o",
            "json",
        ])
        .await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(!run.stderr.contains("note:"), "{}", run.stderr);
    let rows = run.report();
    let by_pod = |pod: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["pod"] == pod)
            .unwrap()
            .clone()
    };
    let first = by_pod(&pods[0]);
    let second = by_pod(&pods[1]);
    assert_eq!(
        first["usage"],
        json!({"cpu_millicores": 1500, "memory_mib": 2048})
    );
    assert_eq!(second["usage"]["cpu_millicores"], 250);
    assert_eq!(
        first["gpu"],
        json!({"utilization_pct": 87.0, "memory_mib": 30000})
    );
    assert_eq!(
        second["gpu"],
        json!({"utilization_pct": 13.0, "memory_mib": 1024})
    );
    let table = c
        .trainctl(&["top", "job", "--kube", "--prometheus", &url])
        .await
        .stdout;
    assert!(
        table.contains("1500m") && table.contains("87%") && table.contains("30000 MiB"),
        "{table}"
    );

    let run = c
        .trainctl(&["top", "node", "--kube", "--prometheus", &url, "-o", "json"])
        .await;
    let node = &run.report()[0];
    assert_eq!(
        node["usage"],
        json!({"cpu_millicores": 3000, "memory_mib": 12288})
    );
    assert_eq!(
        node["gpu"],
        json!({"utilization_pct": 50.0, "memory_mib": 31024}),
        "the mean over the node's three GPUs and their summed memory"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn top_job_kube_watch_redraws_with_new_readings_until_interrupted() {
    use tokio::io::AsyncReadExt;
    let c = Cluster::healthy(2).await;
    let pods = c.two_gpu_workers().await;
    let home = c.dir.path();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_trainctl"))
        .args([
            "top",
            "job",
            "train",
            "--kube",
            "--watch",
            "--interval",
            "200ms",
        ])
        .current_dir(home)
        .env("KUBECONFIG", &c.kubeconfig)
        .env("HOME", home.join("home"))
        .env("XDG_CONFIG_HOME", home.join("xdg"))
        .env("TRAINCTL_HOME", home.join("state"))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = String::new();
    let mut read_until = async |want: &str| {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut buf = [0u8; 4096];
        while !seen.rsplit("\x1b[2J").next().unwrap_or("").contains(want) {
            let n = tokio::time::timeout_at(deadline, stdout.read(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("no frame with {want:?} in:\n{seen}"))
                .unwrap();
            assert!(n > 0, "top exited early:\n{seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        let frame = seen.rsplit("\x1b[2J").next().unwrap_or("").to_string();
        (seen.matches("\x1b[2J").count(), frame)
    };
    let (first, frame) = read_until("worker-1").await;
    assert!(
        frame.contains("note: CPU and memory: metrics.k8s.io is not served"),
        "{frame}"
    );
    c.sim.serve_metrics_api();
    c.sim
        .set_pod_usage("default", &pods[0], &[("tensorflow", "750m", "1Gi")])
        .unwrap();
    let (later, _) = read_until("750m").await;
    assert!(
        later > first,
        "a new frame, not the first one, shows the new reading"
    );
    child.kill().await.unwrap();
}
