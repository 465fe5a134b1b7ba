//! Shared test setup: kube-sim over HTTP with two nodes, the TrainingJob CRD installed, and
//! the operator running in this process against it (stoppable and restartable).
#![allow(dead_code)]

pub mod audit;
pub mod chart;
pub mod scenarios;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Api;
use kube_sim::{KubeSim, NodeSpec};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use trainctl_core::state_machine::Backoff;
use trainctl_operator::metrics::Metrics;
use trainctl_operator::{crd, run_controller, OperatorConfig, TrainingJobResource};

pub const NS: &str = "default";

/// The user the operator's requests carry (kube-sim tallies and faults requests by user).
pub const OPERATOR_USER: &str = "trainctl-operator";

/// A simulated cluster with the CRD installed and (usually) the operator running.
pub struct Cluster {
    pub sim: KubeSim,
    pub client: kube::Client,
    /// The operator's client: it impersonates [`OPERATOR_USER`].
    operator_client: kube::Client,
    operator: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

/// A kube-rs client from kube-sim's kubeconfig.
pub async fn client_for(sim: &KubeSim) -> kube::Client {
    client_as(sim, None).await
}

/// A kube-rs client from kube-sim's kubeconfig that impersonates `user` when given.
pub async fn client_as(sim: &KubeSim, user: Option<&str>) -> kube::Client {
    let kubeconfig = Kubeconfig::from_yaml(&sim.kubeconfig()).expect("kubeconfig parses");
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .expect("kube-rs accepts the kubeconfig");
    config.auth_info.impersonate = user.map(String::from);
    kube::Client::try_from(config).expect("client builds")
}

impl Cluster {
    /// kube-sim with nodes node-1 and node-2, the CRD, and the operator started.
    pub async fn start() -> Cluster {
        let mut cluster = Cluster::without_operator().await;
        cluster.start_operator();
        cluster
    }

    /// kube-sim with nodes node-1 and node-2 and the CRD, no operator.
    pub async fn without_operator() -> Cluster {
        let sim = KubeSim::start().await.expect("kube-sim starts");
        for name in ["node-1", "node-2"] {
            sim.add_node(&NodeSpec {
                cpu: "64".into(),
                memory: "256Gi".into(),
                ..NodeSpec::new(name)
            })
            .expect("node added");
        }
        let client = client_for(&sim).await;
        let operator_client = client_as(&sim, Some(OPERATOR_USER)).await;
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        crds.create(&PostParams::default(), &crd())
            .await
            .expect("the CRD is accepted");
        crds.create(
            &PostParams::default(),
            &trainctl_kube_client::experiment_crd(),
        )
        .await
        .expect("the Experiment CRD is accepted");
        Cluster {
            sim,
            client,
            operator_client,
            operator: None,
        }
    }

    /// Starts the operator (restart backoff 50ms).
    pub fn start_operator(&mut self) {
        self.operator = Some(self.spawn_operator());
    }

    /// Starts an operator this cluster does not keep: the caller stops it (dropping the
    /// sender stops it gracefully, aborting the task kills it).
    pub fn spawn_operator(&self) -> (oneshot::Sender<()>, JoinHandle<()>) {
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(run_controller(
            self.operator_client.clone(),
            test_config(),
            Arc::new(Metrics::default()),
            async move {
                let _ = stopped.await;
            },
        ));
        (stop, handle)
    }

    /// Kills the operator at once (no graceful shutdown), as a crashed process.
    pub async fn kill_operator(&mut self) {
        if let Some((_, handle)) = self.operator.take() {
            handle.abort();
            let _ = handle.await;
        }
    }

    pub fn jobs(&self) -> Api<TrainingJobResource> {
        Api::namespaced(self.client.clone(), NS)
    }

    pub fn pods_api(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), NS)
    }

    /// Submits a job file's text.
    pub async fn submit(&self, yaml: &str) -> TrainingJobResource {
        let job = trainctl_spec::parse_job_str("job.yaml", yaml).expect("valid job");
        self.jobs()
            .create(
                &PostParams::default(),
                &TrainingJobResource::from_job(&job, NS),
            )
            .await
            .expect("job created")
    }

    /// The job's pods, by name.
    pub async fn pods(&self, job: &str) -> Vec<Pod> {
        self.pods_api()
            .list(&ListParams::default().labels(&format!("trainctl.dev/job-name={job}")))
            .await
            .expect("pods listed")
            .items
    }

    pub async fn services(&self, job: &str) -> Vec<Service> {
        let api: Api<Service> = Api::namespaced(self.client.clone(), NS);
        api.list(&ListParams::default().labels(&format!("trainctl.dev/job-name={job}")))
            .await
            .expect("services listed")
            .items
    }

    /// `reason: message` of every Event recorded on the job, oldest first.
    pub async fn events(&self, job: &str) -> Vec<String> {
        let api: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(self.client.clone(), NS);
        let mut events = api
            .list(&ListParams::default().fields(&format!("involvedObject.name={job}")))
            .await
            .expect("events listed")
            .items;
        events.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0));
        events
            .into_iter()
            .map(|e| {
                format!(
                    "{}: {}",
                    e.reason.unwrap_or_default(),
                    e.message.unwrap_or_default()
                )
            })
            .collect()
    }

    /// Waits until an Event `reason: message` equal to `text` is recorded on the job.
    pub async fn wait_event(&self, job: &str, text: &str) {
        eventually(&format!("event {text:?} on {job}"), || async {
            self.events(job)
                .await
                .iter()
                .any(|e| e == text)
                .then_some(())
        })
        .await;
    }

    pub async fn status(&self, job: &str) -> Option<trainctl_operator::JobStatus> {
        self.jobs().get_opt(job).await.expect("job read")?.status
    }

    /// Waits until the job's phase is `phase`; returns the status.
    pub async fn wait_phase(&self, job: &str, phase: &str) -> trainctl_operator::JobStatus {
        eventually(&format!("{job} to be {phase}"), || async {
            self.status(job)
                .await
                .filter(|s| s.phase.as_deref() == Some(phase))
        })
        .await
    }

    /// Waits until pod `name` runs attempt `attempt`, then returns it.
    pub async fn running_pod(&self, name: &str, attempt: u32) -> Pod {
        eventually(&format!("{name} attempt {attempt} running"), || async {
            let pod = self.pods_api().get_opt(name).await.ok()??;
            let labels = pod.metadata.labels.clone().unwrap_or_default();
            let running = pod.status.as_ref()?.phase.as_deref() == Some("Running");
            (running && labels.get("trainctl.dev/attempt") == Some(&attempt.to_string()))
                .then_some(pod)
        })
        .await
    }

    /// Waits for pod `name` (attempt `attempt`) to run, then ends it with `code`.
    pub async fn finish(&self, name: &str, attempt: u32, code: i64) {
        self.running_pod(name, attempt).await;
        self.sim.finish_pod(NS, name, code).expect("pod finished");
    }

    /// Waits until pod `name` is gone.
    pub async fn gone(&self, name: &str) {
        eventually(&format!("{name} to be deleted"), || async {
            self.pods_api()
                .get_opt(name)
                .await
                .ok()
                .and_then(|p| p.is_none().then_some(()))
        })
        .await
    }
}

/// Operator settings for tests: restart backoff 50ms doubling to 1s, retries after 50ms,
/// triggers gathered for 50ms.
pub fn test_config() -> OperatorConfig {
    OperatorConfig {
        backoff: Backoff {
            base: 0.05,
            max: 1.0,
        },
        retry: Duration::from_millis(50),
        namespace: None,
        debounce: Duration::from_millis(50),
        experiment_poll: Duration::from_millis(100),
        ..OperatorConfig::default()
    }
}

/// A job file: `replicas` and `run_policy` are YAML flow mappings.
pub fn job_yaml(name: &str, replicas: &str, run_policy: &str) -> String {
    format!(
        "apiVersion: trainctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {{name: {name}}}\n\
         spec:\n  framework: tensorflow\n  image: registry.example.com/train:1\n  \
         command: [python3, train.py]\n  replicas: {replicas}\n  runPolicy: {run_policy}\n"
    )
}

/// Polls `check` every 20ms until it returns Some, failing after 60s.
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    kube_sim::eventually(what, Duration::from_secs(60), check).await
}

/// A condition of the status, if present.
pub fn condition<'a>(
    status: &'a trainctl_operator::JobStatus,
    type_: &str,
) -> Option<&'a trainctl_operator::status::JobCondition> {
    status.conditions.iter().find(|c| c.type_ == type_)
}
