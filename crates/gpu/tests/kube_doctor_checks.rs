//! `doctor --kube` over clusters built to fail in each way it knows, and the smoke pod's
//! verdict for each way it can end, table-driven: which check says what, and that a fix is
//! offered for every problem.

use std::collections::BTreeMap;

use trainctl_gpu::doctor::{verdict, Check, Status};
use trainctl_gpu::kube_doctor::{
    check, ClusterFacts, DaemonSetFacts, DeploymentFacts, NodeFacts, ProfileNeeds, Taint,
};
use trainctl_gpu::kube_smoke::{explain, SmokePod, Toleration};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn gpu_node(name: &str, gpus: u64) -> NodeFacts {
    NodeFacts {
        name: name.into(),
        ready: true,
        gpu_capacity: gpus,
        gpu_allocatable: gpus,
        gpu_requested: 0,
        labels: labels(&[
            ("nvidia.com/gpu.product", "NVIDIA-H200"),
            ("nvidia.com/gpu.memory", "143771"),
            ("nvidia.com/cuda.driver-version.major", "550"),
        ]),
        taints: vec![],
    }
}

fn cpu_node(name: &str) -> NodeFacts {
    NodeFacts {
        name: name.into(),
        ready: true,
        ..NodeFacts::default()
    }
}

/// A cluster where everything is right: one CPU node, one node with 8 H200s labelled by
/// GPU Feature Discovery, the device plugin ready on it, RuntimeClass nvidia, the CRD and
/// the operator.
fn healthy() -> ClusterFacts {
    ClusterFacts {
        server: "https://cluster".into(),
        nodes: Ok(vec![cpu_node("cpu-1"), gpu_node("gpu-1", 8)]),
        device_plugins: Ok(vec![DaemonSetFacts {
            namespace: "nvidia-device-plugin".into(),
            name: "nvidia-device-plugin".into(),
            desired: 1,
            ready: 1,
            ready_nodes: vec!["gpu-1".into()],
        }]),
        runtime_classes: Ok(vec!["nvidia".into()]),
        crd_versions: Ok(Some(vec!["v1alpha1".into()])),
        operators: Ok(vec![DeploymentFacts {
            namespace: "trainctl".into(),
            name: "trainctl-operator".into(),
            desired: 1,
            available: 1,
        }]),
        profile: ProfileNeeds {
            profile: "generic".into(),
            gpu_label: Some("nvidia.com/gpu.product".into()),
            gpu_annotation: None,
            gpu_type: None,
        },
    }
}

fn find<'a>(checks: &'a [Check], name: &str) -> &'a Check {
    checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name} in {checks:#?}"))
}

#[test]
fn a_healthy_cluster_passes_every_check() {
    let checks = check(&healthy());
    assert_eq!(verdict(&checks), Status::Ok, "{checks:#?}");
    assert!(find(&checks, "gpu-nodes")
        .detail
        .contains("gpu-1 8/8 allocatable"));
    assert!(find(&checks, "gpu-labels").detail.contains("NVIDIA-H200"));
}

#[test]
fn each_broken_cluster_fails_the_right_check_with_a_fix() {
    type Breakage = fn(&mut ClusterFacts);
    // (what is wrong, how to break the cluster, the check, its status, words in its detail)
    let table: Vec<(&str, Breakage, &str, Status, &str)> = vec![
        (
            "no GPU node",
            |f| f.nodes = Ok(vec![cpu_node("cpu-1")]),
            "gpu-nodes",
            Status::Fail,
            "none of the 1 node(s) advertises nvidia.com/gpu",
        ),
        (
            "unhealthy GPUs",
            |f| f.nodes.as_mut().unwrap()[1].gpu_allocatable = 6,
            "gpu-nodes",
            Status::Warn,
            "gpu-1 6/8 allocatable, 0 requested, 2 unhealthy",
        ),
        (
            "GPU node NotReady",
            |f| f.nodes.as_mut().unwrap()[1].ready = false,
            "gpu-nodes",
            Status::Warn,
            "NotReady",
        ),
        (
            "no feature discovery",
            |f| f.nodes.as_mut().unwrap()[1].labels.clear(),
            "gpu-labels",
            Status::Warn,
            "gpu-1 lacks nvidia.com/gpu.product, nvidia.com/gpu.memory",
        ),
        (
            "no plugin and no GPUs",
            |f| {
                f.device_plugins = Ok(vec![]);
                f.nodes = Ok(vec![cpu_node("cpu-1")]);
            },
            "device-plugin",
            Status::Fail,
            "no NVIDIA device plugin DaemonSet",
        ),
        (
            "plugin pods not ready",
            |f| {
                let p = &mut f.device_plugins.as_mut().unwrap()[0];
                p.ready = 0;
                p.ready_nodes.clear();
            },
            "device-plugin",
            Status::Fail,
            "no ready plugin pod on GPU node(s) gpu-1",
        ),
        (
            "plugin missing on one GPU node",
            |f| {
                f.nodes.as_mut().unwrap().push(gpu_node("gpu-2", 4));
                f.device_plugins.as_mut().unwrap()[0].desired = 2;
            },
            "device-plugin",
            Status::Warn,
            "1/2 ready; no ready plugin pod on GPU node(s) gpu-2",
        ),
        (
            "daemonsets unreadable",
            |f| f.device_plugins = Err("forbidden".into()),
            "device-plugin",
            Status::Warn,
            "cannot list DaemonSets: forbidden",
        ),
        (
            "no nvidia runtime class",
            |f| f.runtime_classes = Ok(vec!["gvisor".into()]),
            "runtime-class",
            Status::Warn,
            "no RuntimeClass nvidia (classes: gvisor)",
        ),
        (
            "no CRD",
            |f| f.crd_versions = Ok(None),
            "crd",
            Status::Fail,
            "not installed",
        ),
        (
            "no operator",
            |f| f.operators = Ok(vec![]),
            "operator",
            Status::Fail,
            "no trainctl operator Deployment",
        ),
        (
            "operator not available",
            |f| f.operators.as_mut().unwrap()[0].available = 0,
            "operator",
            Status::Fail,
            "trainctl/trainctl-operator 0/1 available",
        ),
        (
            "gpu type nobody offers",
            |f| f.profile.gpu_type = Some("Tesla-V100".into()),
            "cloud-profile",
            Status::Fail,
            "no node offers gpu type \"Tesla-V100\" (label nvidia.com/gpu.product; offered: NVIDIA-H200)",
        ),
        (
            "ACK label missing",
            |f| {
                f.profile.profile = "alibaba-ack".into();
                f.profile.gpu_label = Some("aliyun.accelerator/nvidia_name".into());
            },
            "cloud-profile",
            Status::Warn,
            "no GPU node carries the label aliyun.accelerator/nvidia_name",
        ),
    ];
    for (what, breakage, name, status, words) in table {
        let mut facts = healthy();
        breakage(&mut facts);
        let checks = check(&facts);
        let c = find(&checks, name);
        assert_eq!(c.status, status, "{what}: {c:#?}");
        assert!(c.detail.contains(words), "{what}: {:?}", c.detail);
        assert!(c.fix.is_some(), "{what}: no fix offered: {c:#?}");
        assert!(verdict(&checks) >= status, "{what}: {checks:#?}");
    }
}

#[test]
fn a_serverless_profile_is_information_only() {
    let mut facts = healthy();
    facts.profile = ProfileNeeds {
        profile: "tencent-eks".into(),
        gpu_label: None,
        gpu_annotation: Some("eks.tke.cloud.tencent.com/gpu-type".into()),
        gpu_type: Some("V100".into()),
    };
    let c = check(&facts)
        .into_iter()
        .find(|c| c.name == "cloud-profile")
        .unwrap();
    assert_eq!(c.status, Status::Info);
    assert!(c.detail.contains("eks.tke.cloud.tencent.com/gpu-type"));
}

fn pod(phase: &str) -> SmokePod {
    SmokePod {
        image: "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04".into(),
        phase: phase.into(),
        tolerations: vec![Toleration {
            key: Some("nvidia.com/gpu".into()),
            value: None,
            effect: None,
        }],
        ..SmokePod::default()
    }
}

#[test]
fn the_smoke_pod_is_explained_in_the_users_words() {
    let tainted = NodeFacts {
        taints: vec![Taint {
            key: "dedicated".into(),
            value: "infer".into(),
            effect: "NoSchedule".into(),
        }],
        ..gpu_node("gpu-tainted", 2)
    };
    let tolerated = NodeFacts {
        taints: vec![Taint {
            key: "nvidia.com/gpu".into(),
            value: String::new(),
            effect: "NoSchedule".into(),
        }],
        gpu_requested: 1,
        ..gpu_node("gpu-free", 2)
    };
    let busy = NodeFacts {
        gpu_requested: 4,
        ..gpu_node("gpu-busy", 4)
    };
    let a100 = NodeFacts {
        labels: labels(&[("nvidia.com/gpu.product", "A100")]),
        ..gpu_node("gpu-a100", 1)
    };
    let nodes = vec![cpu_node("cpu-1"), tainted, busy, a100];
    let pending = SmokePod {
        unschedulable: Some("0/4 nodes are available".into()),
        node_selector: labels(&[("nvidia.com/gpu.product", "NVIDIA-H200")]),
        ..pod("Pending")
    };
    // (what happened, the pod, its nodes, the status, words in the detail)
    let table: Vec<(&str, SmokePod, Vec<NodeFacts>, Status, &str)> = vec![
        (
            "success",
            SmokePod {
                node: Some("gpu-1".into()),
                exit_code: Some(0),
                log: "GPU 0: NVIDIA H200 (UUID: GPU-1)\n".into(),
                ..pod("Succeeded")
            },
            vec![],
            Status::Ok,
            "ran nvidia-smi on node gpu-1: GPU 0: NVIDIA H200",
        ),
        (
            "why each node refuses",
            pending.clone(),
            nodes.clone(),
            Status::Fail,
            "Insufficient nvidia.com/gpu: cpu-1: does not match the node selector nvidia.com/gpu.product=NVIDIA-H200; \
             gpu-tainted: taint dedicated=infer:NoSchedule not tolerated; gpu-busy: all 4 GPUs allocated to other pods; \
             gpu-a100: does not match the node selector",
        ),
        (
            "no GPUs anywhere",
            SmokePod {
                node_selector: BTreeMap::new(),
                ..pending.clone()
            },
            vec![cpu_node("cpu-1")],
            Status::Fail,
            "cpu-1: no GPUs",
        ),
        (
            "the GPU taint is tolerated, a free GPU is not a reason",
            SmokePod {
                node_selector: BTreeMap::new(),
                ..pending.clone()
            },
            vec![tolerated, cpu_node("cpu-1")],
            Status::Fail,
            "Insufficient nvidia.com/gpu: cpu-1: no GPUs",
        ),
        (
            "image pull",
            SmokePod {
                node: Some("gpu-1".into()),
                waiting: Some((
                    "ImagePullBackOff".into(),
                    "Back-off pulling image".into(),
                )),
                ..pod("Pending")
            },
            vec![],
            Status::Fail,
            "cannot pull image nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04 on node gpu-1: ImagePullBackOff",
        ),
        (
            "no NVML in the container",
            SmokePod {
                node: Some("gpu-1".into()),
                exit_code: Some(9),
                log: "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.\n".into(),
                ..pod("Failed")
            },
            vec![],
            Status::Fail,
            "the container cannot load NVML on node gpu-1",
        ),
        (
            "other failure",
            SmokePod {
                exit_code: Some(3),
                log: "one\ntwo\nthree\nfour\n".into(),
                ..pod("Failed")
            },
            vec![],
            Status::Fail,
            "exit code 3: two / three / four",
        ),
        (
            "timeout",
            SmokePod {
                timed_out: true,
                waiting: Some(("ContainerCreating".into(), String::new())),
                ..pod("Pending")
            },
            vec![],
            Status::Fail,
            "still Pending: ContainerCreating",
        ),
    ];
    for (what, pod, nodes, status, words) in table {
        let c = explain(&pod, &nodes);
        assert_eq!(c.status, status, "{what}: {c:#?}");
        assert!(c.detail.contains(words), "{what}: {:?}", c.detail);
        assert_eq!(c.fix.is_some(), status != Status::Ok, "{what}: {c:#?}");
    }
}
