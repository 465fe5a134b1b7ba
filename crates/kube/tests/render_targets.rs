//! What each target, cloud profile and gang scheduler puts into the rendered objects.

mod common;

use std::collections::BTreeMap;

use serde_json::Value;
use trainctl_kube::{render, RenderError, RenderOptions, Target};
use trainctl_spec::{CloudProfile, GangScheduler, TrainingJob};

const PS_JOB: &str = "apiVersion: trainctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: psw}\nspec:\n  framework: tensorflow\n  image: tf:gpu\n  command: [python3, t.py]\n  replicas: {ps: {count: 1}, worker: {count: 3, resources: {gpu: 1, gpuType: T4, cpu: '8', memory: 32Gi}}}\n";

fn objects(
    job: &TrainingJob,
    target: Target,
    profile: CloudProfile,
    gang: Option<GangScheduler>,
) -> Vec<Value> {
    render(
        job,
        &RenderOptions {
            target,
            profile: Some(profile),
            namespace: None,
            gang,
        },
    )
    .unwrap()
}

fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

fn worker_pod(objects: &[Value]) -> Value {
    of_kind(objects, "Job")
        .into_iter()
        .find(|j| j["metadata"]["name"] == "psw-worker-0")
        .map(|j| j["spec"]["template"].clone())
        .unwrap()
}

#[test]
fn plain_renders_a_job_and_headless_service_per_replica() {
    let job = common::job(PS_JOB);
    let objs = objects(&job, Target::Plain, CloudProfile::Generic, None);
    let names = |kind| -> Vec<String> {
        of_kind(&objs, kind)
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    let expected = ["psw-ps-0", "psw-worker-0", "psw-worker-1", "psw-worker-2"];
    assert_eq!(names("Job"), expected);
    assert_eq!(names("Service"), expected);
    for svc in of_kind(&objs, "Service") {
        assert_eq!(svc["spec"]["clusterIP"], "None");
        assert_eq!(
            svc["spec"]["selector"]["trainctl.dev/replica-index"],
            svc["metadata"]["labels"]["trainctl.dev/replica-index"]
        );
    }
    let pod = worker_pod(&objs);
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["resources"]["limits"]["nvidia.com/gpu"], "1");
    assert_eq!(c["resources"]["requests"], c["resources"]["limits"]);
    assert_eq!(pod["spec"]["nodeSelector"]["nvidia.com/gpu.product"], "T4");
    assert_eq!(
        pod["metadata"]["labels"]["trainctl.dev/replica-type"],
        "worker"
    );
    assert_eq!(common::env_of(c)["TRAINCTL_JOB"], "psw");
    assert!(!common::env_of(c).contains_key("TRAINCTL_ATTEMPT"));
}

#[test]
fn profiles_put_the_gpu_model_where_the_cloud_reads_it() {
    let job = common::job(PS_JOB);
    let pod = |profile| worker_pod(&objects(&job, Target::Plain, profile, None));
    let eks = pod(CloudProfile::TencentEks);
    let annotations = eks["metadata"]["annotations"].as_object().unwrap();
    assert_eq!(annotations["eks.tke.cloud.tencent.com/gpu-type"], "T4");
    assert_eq!(
        annotations.len(),
        1,
        "only gpu-type by default: {annotations:?}"
    );
    assert!(eks["spec"]["nodeSelector"].is_null());
    let tke = pod(CloudProfile::TencentTke);
    assert!(tke["metadata"]["annotations"].is_null());
    assert_eq!(tke["spec"]["nodeSelector"]["nvidia.com/gpu.product"], "T4");
    let ack = pod(CloudProfile::AlibabaAck);
    assert_eq!(
        ack["spec"]["nodeSelector"]["aliyun.accelerator/nvidia_name"],
        "T4"
    );
    let eci = pod(CloudProfile::AlibabaEci);
    assert_eq!(
        eci["metadata"]["annotations"]["k8s.aliyun.com/eci-image-cache"],
        "true"
    );
    // A CPU-only replica gets no GPU settings anywhere.
    let ps = of_kind(
        &objects(&job, Target::Plain, CloudProfile::TencentEks, None),
        "Job",
    )[0]["spec"]["template"]
        .clone();
    assert!(ps["metadata"]["annotations"].is_null());
    assert!(ps["spec"]["tolerations"].is_null());
}

#[test]
fn pinned_eks_pods_get_cpu_mem_and_gpu_count_together() {
    let job = common::job(&format!(
        "{PS_JOB}  cloud: {{profile: tencent-eks, pinResources: true}}\n"
    ));
    let pod = worker_pod(&objects(
        &job,
        Target::Plain,
        CloudProfile::TencentEks,
        None,
    ));
    let a = &pod["metadata"]["annotations"];
    assert_eq!(a["eks.tke.cloud.tencent.com/cpu"], "8");
    assert_eq!(a["eks.tke.cloud.tencent.com/mem"], "32Gi");
    assert_eq!(a["eks.tke.cloud.tencent.com/gpu-count"], "1");
    assert_eq!(a["eks.tke.cloud.tencent.com/gpu-type"], "T4");
    assert_eq!(
        pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"],
        "1"
    );
    // EKS takes cpu in cores and mem only in Gi, whatever units the job uses.
    let other_units = common::job(&format!(
        "{}  cloud: {{profile: tencent-eks, pinResources: true}}\n",
        PS_JOB.replace("cpu: '8', memory: 32Gi", "cpu: 2500m, memory: 16384Mi")
    ));
    let a = worker_pod(&objects(
        &other_units,
        Target::Plain,
        CloudProfile::TencentEks,
        None,
    ))["metadata"]["annotations"]
        .clone();
    assert_eq!(a["eks.tke.cloud.tencent.com/cpu"], "2.5");
    assert_eq!(a["eks.tke.cloud.tencent.com/mem"], "16Gi");
}

#[test]
fn gang_schedulers_get_their_podgroup_label_or_suspended_workload() {
    let job = common::job(PS_JOB);
    let volcano = objects(
        &job,
        Target::Plain,
        CloudProfile::Generic,
        Some(GangScheduler::Volcano),
    );
    let group = of_kind(&volcano, "PodGroup")[0];
    assert_eq!(group["apiVersion"], "scheduling.volcano.sh/v1beta1");
    assert_eq!(group["spec"]["minMember"], 4);
    let pod = worker_pod(&volcano);
    assert_eq!(pod["spec"]["schedulerName"], "volcano");
    assert_eq!(
        pod["metadata"]["annotations"]["scheduling.k8s.io/group-name"],
        "psw"
    );

    let cosched = objects(
        &job,
        Target::Plain,
        CloudProfile::Generic,
        Some(GangScheduler::Coscheduling),
    );
    assert_eq!(
        of_kind(&cosched, "PodGroup")[0]["apiVersion"],
        "scheduling.x-k8s.io/v1alpha1"
    );
    assert_eq!(
        worker_pod(&cosched)["metadata"]["labels"]["scheduling.x-k8s.io/pod-group"],
        "psw"
    );

    let kueue = objects(
        &job,
        Target::Jobset,
        CloudProfile::Generic,
        Some(GangScheduler::Kueue),
    );
    assert!(of_kind(&kueue, "PodGroup").is_empty());
    let js = of_kind(&kueue, "JobSet")[0];
    assert_eq!(
        js["metadata"]["labels"]["kueue.x-k8s.io/queue-name"],
        "default"
    );
    assert_eq!(js["spec"]["suspend"], true);

    // No gang unless asked: by the job file or by --gang.
    assert!(of_kind(
        &objects(&job, Target::Plain, CloudProfile::Generic, None),
        "PodGroup"
    )
    .is_empty());
    let gang_job = common::job(&format!(
        "{PS_JOB}  scheduling: {{gang: true, queue: research}}\n"
    ));
    let by_file = objects(&gang_job, Target::Plain, CloudProfile::Generic, None);
    assert_eq!(
        of_kind(&by_file, "PodGroup")[0]["spec"]["queue"],
        "research"
    );
    let kf = objects(&gang_job, Target::Kubeflow, CloudProfile::Generic, None);
    assert_eq!(
        kf[0]["spec"]["runPolicy"]["schedulingPolicy"]["minAvailable"],
        4
    );
}

#[test]
fn jobset_gives_each_replica_the_plain_targets_env_through_its_index() {
    let job = common::job(PS_JOB);
    let plain = objects(&job, Target::Plain, CloudProfile::Generic, None);
    let jobset = objects(&job, Target::Jobset, CloudProfile::Generic, None);
    let js = of_kind(&jobset, "JobSet")[0];
    assert_eq!(
        js["spec"]["successPolicy"]["targetReplicatedJobs"][0],
        "worker"
    );
    assert_eq!(js["spec"]["failurePolicy"]["maxRestarts"], 0);
    for rj in js["spec"]["replicatedJobs"].as_array().unwrap() {
        let role = rj["name"].as_str().unwrap();
        let env = &rj["template"]["spec"]["template"]["spec"]["containers"][0]["env"];
        assert_eq!(env[0]["name"], "TRAINCTL_REPLICA_INDEX");
        assert_eq!(
            env[0]["valueFrom"]["fieldRef"]["fieldPath"],
            "metadata.annotations['jobset.sigs.k8s.io/job-index']"
        );
        for i in 0..rj["replicas"].as_u64().unwrap() {
            let expanded: BTreeMap<String, String> =
                common::env_of(&rj["template"]["spec"]["template"]["spec"]["containers"][0])
                    .into_iter()
                    .map(|(k, v)| (k, v.replace("$(TRAINCTL_REPLICA_INDEX)", &i.to_string())))
                    .collect();
            let name = format!("psw-{role}-{i}");
            let plain_job = of_kind(&plain, "Job")
                .into_iter()
                .find(|j| j["metadata"]["name"] == name.as_str())
                .unwrap();
            let mut want = common::env_of(&plain_job["spec"]["template"]["spec"]["containers"][0]);
            want.remove("TRAINCTL_REPLICA_INDEX");
            assert_eq!(expanded, want, "{name}");
        }
    }
    // The per-replica Services select the JobSet's pods by its labels.
    let svc = of_kind(&jobset, "Service")[1];
    assert_eq!(svc["metadata"]["name"], "psw-worker-0");
    assert_eq!(
        svc["spec"]["selector"]["jobset.sigs.k8s.io/replicatedjob-name"],
        "worker"
    );
}

#[test]
fn jobset_restarts_the_gang_up_to_backoff_limit_and_fails_on_fatal_exit_codes() {
    let job = common::job(&format!(
        "{PS_JOB}  runPolicy: {{restartPolicy: ExitCode, backoffLimit: 5}}\n"
    ));
    let objs = objects(&job, Target::Jobset, CloudProfile::Generic, None);
    let js = of_kind(&objs, "JobSet")[0];
    assert_eq!(js["spec"]["failurePolicy"]["maxRestarts"], 5);
    assert_eq!(
        js["spec"]["failurePolicy"]["rules"][0]["action"],
        "FailJobSet"
    );
    let job_spec = &js["spec"]["replicatedJobs"][0]["template"]["spec"];
    assert_eq!(job_spec["backoffLimit"], 0);
    let codes = &job_spec["podFailurePolicy"]["rules"][0]["onExitCodes"]["values"];
    assert_eq!(codes.as_array().unwrap().len(), 127);
    assert_eq!(codes[0], 1);
}

const PT_JOB: &str = "apiVersion: trainctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: pt}\nspec:\n  framework: pytorch\n  image: pt:cuda\n  command: [torchrun, t.py]\n  hyperparameters: {lr: 0.1}\n";

#[test]
fn jobset_runs_pytorch_master_and_workers_as_one_indexed_job_ranked_by_completion_index() {
    let job = common::job(&format!(
        "{PT_JOB}  replicas: {{master: {{port: 29500, resources: {{gpu: 1}}}}, worker: {{count: 2, resources: {{gpu: 1}}}}}}\n"
    ));
    let plain = objects(&job, Target::Plain, CloudProfile::Generic, None);
    let objs = objects(&job, Target::Jobset, CloudProfile::Generic, None);
    assert!(
        of_kind(&objs, "Service").is_empty(),
        "the JobSet's own headless Service names the pods"
    );
    let js = of_kind(&objs, "JobSet")[0];
    assert_eq!(js["spec"]["network"]["enableDNSHostnames"], true);
    assert_eq!(
        js["spec"]["successPolicy"]["targetReplicatedJobs"][0],
        "node"
    );
    let rjobs = js["spec"]["replicatedJobs"].as_array().unwrap();
    assert_eq!(rjobs.len(), 1);
    assert_eq!(rjobs[0]["name"], "node");
    assert_eq!(rjobs[0]["replicas"], 1);
    let job_spec = &rjobs[0]["template"]["spec"];
    assert_eq!(job_spec["completionMode"], "Indexed");
    assert_eq!(job_spec["completions"], 3);
    assert_eq!(job_spec["parallelism"], 3);
    let c = &job_spec["template"]["spec"]["containers"][0];
    assert_eq!(c["env"][0]["name"], "RANK");
    assert_eq!(
        c["env"][0]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    );
    assert_eq!(c["ports"][0]["containerPort"], 29500);
    // Rank r sees the plain target's env of the replica with rank r, but for the host name
    // of rank 0 and the role, which the shared template names by the JobSet's conventions.
    for (rank, replica) in ["pt-master-0", "pt-worker-0", "pt-worker-1"]
        .iter()
        .enumerate()
    {
        // RANK itself is read from the pod's annotation.
        let mut got: BTreeMap<String, String> = common::env_of(c)
            .into_iter()
            .map(|(k, v)| (k, v.replace("$(RANK)", &rank.to_string())))
            .collect();
        let plain_job = of_kind(&plain, "Job")
            .into_iter()
            .find(|j| j["metadata"]["name"] == *replica)
            .unwrap();
        let mut want = common::env_of(&plain_job["spec"]["template"]["spec"]["containers"][0]);
        want.insert("RANK".into(), rank.to_string());
        for var in ["MASTER_ADDR", "PET_MASTER_ADDR"] {
            assert_eq!(want[var], "pt-master-0");
            want.insert(var.into(), "pt-node-0-0.pt".into());
        }
        want.insert("TRAINCTL_REPLICA_TYPE".into(), "node".into());
        want.insert("TRAINCTL_REPLICA_INDEX".into(), rank.to_string());
        got.insert("RANK".into(), rank.to_string());
        assert_eq!(got, want, "{replica}");
    }
}

#[test]
fn jobset_refuses_pytorch_master_and_workers_that_run_differently() {
    for (replicas, what) in [
        (
            "{master: {resources: {cpu: '2'}}, worker: {count: 2, resources: {gpu: 1}}}",
            "resources",
        ),
        (
            "{master: {command: [python3, serve.py]}, worker: {count: 2}}",
            "commands",
        ),
        ("{master: {image: other:1}, worker: {count: 2}}", "images"),
        ("{master: {env: {A: '1'}}, worker: {count: 2}}", "env"),
    ] {
        let job = common::job(&format!("{PT_JOB}  replicas: {replicas}\n"));
        let err = render(
            &job,
            &RenderOptions {
                target: Target::Jobset,
                ..RenderOptions::default()
            },
        )
        .unwrap_err();
        assert!(matches!(err, RenderError::RanksDiffer { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains(&format!("their {what} differ")), "{text}");
        assert!(
            text.contains("use --target plain or --target kubeflow"),
            "{text}"
        );
    }
    // Workers only: the rank is the index, which a per-role replicated job gives.
    let workers = common::job(&format!("{PT_JOB}  replicas: {{worker: {{count: 2}}}}\n"));
    let objs = objects(&workers, Target::Jobset, CloudProfile::Generic, None);
    let env = common::env_of(
        &of_kind(&objs, "JobSet")[0]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]
            ["spec"]["containers"][0],
    );
    assert_eq!(env["RANK"], "$(TRAINCTL_REPLICA_INDEX)");
}

#[test]
fn kubeflow_leaves_the_wiring_to_the_operator() {
    let job = common::job(&format!(
        "{PS_JOB}  runPolicy: {{successPolicy: AllWorkers, restartPolicy: OnFailure}}\n"
    ));
    let objs = objects(&job, Target::Kubeflow, CloudProfile::Generic, None);
    let tfjob = &objs[0];
    assert_eq!(tfjob["kind"], "TFJob");
    assert_eq!(tfjob["spec"]["successPolicy"], "AllWorkers");
    let worker = &tfjob["spec"]["tfReplicaSpecs"]["Worker"];
    assert_eq!(worker["replicas"], 3);
    assert_eq!(worker["restartPolicy"], "OnFailure");
    let env = common::env_of(&worker["template"]["spec"]["containers"][0]);
    assert!(!env.contains_key("TF_CONFIG"));
    assert_eq!(env["TRAINCTL_REPLICA_TYPE"], "worker");
    assert!(of_kind(&objs, "Service").is_empty());
}

#[test]
fn trainingjob_target_is_the_job_itself_in_its_namespace() {
    let job = common::job(PS_JOB);
    let objs = render(
        &job,
        &RenderOptions {
            target: Target::Trainingjob,
            namespace: Some("ml".into()),
            ..RenderOptions::default()
        },
    )
    .unwrap();
    assert_eq!(objs.len(), 1);
    let back: TrainingJob = serde_json::from_value(objs[0].clone()).unwrap();
    assert_eq!(back.metadata.namespace.as_deref(), Some("ml"));
    assert_eq!(back.spec, job.spec);
}

#[test]
fn kubernetes_expansion_of_user_values_is_escaped() {
    let job = common::job("apiVersion: trainctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: esc}\nspec:\n  image: x:1\n  command: [echo, '$(HOME)']\n  env: {PATTERN: 'a$(b)'}\n  replicas: {worker: {}}\n");
    let objs = objects(&job, Target::Plain, CloudProfile::Generic, None);
    let c = &of_kind(&objs, "Job")[0]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["command"][1], "$$(HOME)");
    assert_eq!(common::env_of(c)["PATTERN"], "a$$(b)");
}

#[test]
fn a_job_without_an_image_cannot_be_rendered() {
    let job = common::job("apiVersion: trainctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: local}\nspec:\n  command: [python3, t.py]\n  replicas: {worker: {}}\n");
    let err = render(&job, &RenderOptions::default()).unwrap_err();
    assert!(err.to_string().contains("set spec.image"), "{err}");
}

#[test]
fn tensorboard_service_type_follows_the_job_and_mounts_the_log_volume() {
    let with_tb = |extra: &str| {
        common::job(&format!("{PS_JOB}  volumes: [{{name: logs, mountPath: /logs, nfs: {{server: s, path: /}}}}, {{name: other, mountPath: /other, emptyDir: {{}}}}]\n  tensorboard: {{logDir: /logs/run1{extra}}}\n"))
    };
    let objs = objects(&with_tb(""), Target::Plain, CloudProfile::Generic, None);
    let svc = of_kind(&objs, "Service")
        .into_iter()
        .find(|s| s["metadata"]["name"] == "psw-tensorboard")
        .unwrap();
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    let deploy = of_kind(&objs, "Deployment")[0];
    let pod = &deploy["spec"]["template"]["spec"];
    assert_eq!(pod["volumes"].as_array().unwrap().len(), 1);
    assert_eq!(pod["containers"][0]["volumeMounts"][0]["readOnly"], true);
    assert!(pod["containers"][0]["command"]
        .as_array()
        .unwrap()
        .contains(&"--logdir=/logs/run1".into()));
    let lb = objects(
        &with_tb(", serviceType: LoadBalancer"),
        Target::Plain,
        CloudProfile::Generic,
        None,
    );
    assert!(of_kind(&lb, "Service")
        .iter()
        .any(|s| s["spec"]["type"] == "LoadBalancer"));
    assert!(of_kind(
        &objects(
            &common::job(PS_JOB),
            Target::Plain,
            CloudProfile::Generic,
            None
        ),
        "Deployment"
    )
    .is_empty());
}

#[test]
fn json_output_is_a_v1_list() {
    let job = common::job(PS_JOB);
    let objs = objects(&job, Target::Plain, CloudProfile::Generic, None);
    let list: Value = serde_json::from_str(&trainctl_kube::to_json_list(&objs)).unwrap();
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"].as_array().unwrap().len(), objs.len());
}

/// Every value of `key` anywhere in `v`.
fn values_of<'a>(v: &'a Value, key: &str, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == key {
                    out.push(x);
                }
                values_of(x, key, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| values_of(x, key, out)),
        _ => {}
    }
}

#[test]
fn the_run_policy_grace_period_becomes_every_pods_termination_grace_period() {
    let with = common::job(&format!(
        "{PS_JOB}  runPolicy: {{terminationGracePeriodSeconds: 60}}\n"
    ));
    let without = common::job(PS_JOB);
    let grace_periods = |job: &TrainingJob, target| -> Vec<Value> {
        let mut found = Vec::new();
        for o in objects(job, target, CloudProfile::Generic, None) {
            let mut here = Vec::new();
            values_of(&o, "terminationGracePeriodSeconds", &mut here);
            found.extend(here.into_iter().cloned());
        }
        found
    };
    for target in [Target::Plain, Target::Jobset, Target::Kubeflow] {
        let found = grace_periods(&with, target);
        // One pod template per role (ps, worker) at least; every one says 60.
        assert!(found.len() >= 2, "{target:?}: {found:?}");
        assert!(found.iter().all(|v| *v == 60), "{target:?}: {found:?}");
        let none = grace_periods(&without, target);
        assert!(
            none.is_empty(),
            "{target:?}: unset means Kubernetes' default"
        );
    }
}
