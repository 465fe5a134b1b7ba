//! The TrainingJob types, documented field by field in docs/job-file.md (a test keeps the two
//! in step). Every struct rejects unknown fields so a typo is an error, not a silently
//! ignored setting.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::quantity::Quantity;

/// The only apiVersion this build understands.
pub const API_VERSION: &str = "trainctl.dev/v1alpha1";
/// The kind of a job file.
pub const KIND: &str = "TrainingJob";

/// The most replicas a job may have, per role and over all its roles together.
///
/// Far above any real training job, low enough that a mistyped or hostile count is refused
/// at the file instead of exhausting memory (every replica gets an id, env, log, port and,
/// on a cluster, a pod). The largest published training runs use on the order of 16,000
/// GPUs, that is about 2,000 hosts of 8 GPUs with one replica each; Kubernetes itself is
/// tested up to 5,000 nodes per cluster. 10,000 leaves room above both.
pub const MAX_REPLICAS: u32 = 10_000;

/// A training job as written in a job file: a Kubernetes-style object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrainingJob {
    /// Must be `trainctl.dev/v1alpha1`.
    pub api_version: String,
    /// Must be `TrainingJob`.
    pub kind: String,
    /// Name, namespace, labels and annotations.
    pub metadata: ObjectMeta,
    /// What to run and how.
    pub spec: TrainingJobSpec,
}

/// The subset of Kubernetes object metadata a job file may carry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectMeta {
    /// The job name: a DNS-1035 label, so it is valid on any cluster.
    #[serde(default)]
    pub name: String,
    /// Kubernetes namespace; ignored by the local engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels copied to every object the job creates.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations copied to every object the job creates.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The desired state of a training job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrainingJobSpec {
    /// Which wiring env the replicas get.
    #[serde(default)]
    pub framework: Framework,
    /// Container image; required on Kubernetes, optional locally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The argv every replica runs unless its role overrides it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Run the command through `sh -c` (joined by spaces). Off by default: argv is never
    /// passed through a shell unless asked.
    #[serde(default, skip_serializing_if = "is_false")]
    pub shell: bool,
    /// Extra environment for every replica.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Working directory of the replicas. Locally, relative paths are resolved against the
    /// job file's directory, which is also the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Passed as `--name=value` arguments and as `HP_NAME` variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hyperparameters: BTreeMap<String, HyperValue>,
    /// The replica roles of the job.
    #[serde(default)]
    pub replicas: Replicas,
    /// Storage mounted into every replica.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// Kept across restarts; replicas resume from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_dir: Option<String>,
    /// Where TensorBoard reads the job's event files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tensorboard: Option<TensorBoard>,
    /// How metrics are read from what the replicas print (event files in the log dir are
    /// always read). Default: the built-in line formats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MetricsSpec>,
    /// Restart, success and cleanup rules.
    #[serde(default)]
    pub run_policy: RunPolicy,
    /// Gang scheduling, queue and priority.
    #[serde(default)]
    pub scheduling: Scheduling,
    /// The cluster flavour the job is rendered for.
    #[serde(default)]
    pub cloud: Cloud,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The framework decides the wiring env a replica gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Framework {
    /// `TF_CONFIG`, Kubeflow TFJob style.
    Tensorflow,
    /// `MASTER_ADDR`, `WORLD_SIZE`, `RANK` and `PET_*`, Kubeflow PyTorchJob style.
    Pytorch,
    /// Only the `TRAINCTL_*` variables.
    #[default]
    Generic,
}

/// A hyperparameter value: a number, a string or a boolean.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum HyperValue {
    /// `true` or `false`.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// Anything else, verbatim.
    String(String),
}

/// Deserialized by hand rather than as an untagged enum: serde's untagged enums buffer the
/// value and lose its position, and say only "did not match any variant". This reads the
/// same values (a boolean, a whole number that fits i64, else a float, else a string) and
/// says what is allowed at the bad value itself.
impl<'de> Deserialize<'de> for HyperValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(HyperValueVisitor)
    }
}

struct HyperValueVisitor;

impl HyperValueVisitor {
    fn refuse<E: serde::de::Error>(what: &str) -> E {
        E::custom(format!(
            "{what} is not a hyperparameter value: use a number, a string or a boolean \
             (quote it to pass it as text)"
        ))
    }
}

impl<'de> serde::de::Visitor<'de> for HyperValueVisitor {
    type Value = HyperValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number, a string or a boolean")
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<HyperValue, E> {
        Ok(HyperValue::Bool(v))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<HyperValue, E> {
        Ok(HyperValue::Int(v))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<HyperValue, E> {
        Ok(i64::try_from(v).map_or(HyperValue::Float(v as f64), HyperValue::Int))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<HyperValue, E> {
        Ok(HyperValue::Float(v))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<HyperValue, E> {
        Ok(HyperValue::String(v.to_string()))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<HyperValue, E> {
        Ok(HyperValue::String(v))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<HyperValue, E> {
        Err(Self::refuse("null"))
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<HyperValue, E> {
        Err(Self::refuse("null"))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _: A) -> Result<HyperValue, A::Error> {
        Err(Self::refuse("a list"))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, _: A) -> Result<HyperValue, A::Error> {
        Err(Self::refuse("a map"))
    }
}

impl fmt::Display for HyperValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HyperValue::Bool(b) => write!(f, "{b}"),
            HyperValue::Int(i) => write!(f, "{i}"),
            // Keep `1.0` a float for the training code: `--lr=1.0`, not `--lr=1`.
            HyperValue::Float(x) if x.is_finite() && x.fract() == 0.0 => write!(f, "{x:.1}"),
            HyperValue::Float(x) => write!(f, "{x}"),
            HyperValue::String(s) => f.write_str(s),
        }
    }
}

/// The roles a replica can have, in the order TF_CONFIG lists them (lower-case, sorted).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ReplicaType {
    /// TensorFlow chief: decides success.
    Chief,
    /// TensorFlow evaluator (at most one).
    Evaluator,
    /// PyTorch master (rank 0), or a TensorFlow chief under its legacy name.
    Master,
    /// Parameter server: never exits by itself.
    Ps,
    /// Worker.
    Worker,
}

impl ReplicaType {
    /// Every role, in TF_CONFIG order.
    pub const ALL: [ReplicaType; 5] = [
        ReplicaType::Chief,
        ReplicaType::Evaluator,
        ReplicaType::Master,
        ReplicaType::Ps,
        ReplicaType::Worker,
    ];

    /// The lower-case name used in TF_CONFIG, object names and log prefixes.
    pub fn as_str(self) -> &'static str {
        match self {
            ReplicaType::Chief => "chief",
            ReplicaType::Evaluator => "evaluator",
            ReplicaType::Master => "master",
            ReplicaType::Ps => "ps",
            ReplicaType::Worker => "worker",
        }
    }

    /// Parses a lower-case role name.
    pub fn parse(s: &str) -> Option<ReplicaType> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for ReplicaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry per role; a role that is absent has no replicas.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Replicas {
    /// TensorFlow chief.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chief: Option<ReplicaSpec>,
    /// PyTorch master.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master: Option<ReplicaSpec>,
    /// Parameter servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ps: Option<ReplicaSpec>,
    /// Workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<ReplicaSpec>,
    /// TensorFlow evaluator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluator: Option<ReplicaSpec>,
}

impl Replicas {
    /// The spec of one role, if present.
    pub fn get(&self, role: ReplicaType) -> Option<&ReplicaSpec> {
        match role {
            ReplicaType::Chief => self.chief.as_ref(),
            ReplicaType::Master => self.master.as_ref(),
            ReplicaType::Ps => self.ps.as_ref(),
            ReplicaType::Worker => self.worker.as_ref(),
            ReplicaType::Evaluator => self.evaluator.as_ref(),
        }
    }

    /// Mutable access to one role's slot.
    pub fn slot_mut(&mut self, role: ReplicaType) -> &mut Option<ReplicaSpec> {
        match role {
            ReplicaType::Chief => &mut self.chief,
            ReplicaType::Master => &mut self.master,
            ReplicaType::Ps => &mut self.ps,
            ReplicaType::Worker => &mut self.worker,
            ReplicaType::Evaluator => &mut self.evaluator,
        }
    }

    /// The roles present with at least one replica, in TF_CONFIG order.
    pub fn roles(&self) -> impl Iterator<Item = (ReplicaType, &ReplicaSpec)> {
        ReplicaType::ALL
            .into_iter()
            .filter_map(|r| self.get(r).filter(|s| s.count > 0).map(|s| (r, s)))
    }

    /// The number of replicas of one role (0 when absent).
    pub fn count(&self, role: ReplicaType) -> u32 {
        self.get(role).map_or(0, |s| s.count)
    }

    /// The number of replicas over all roles (validation bounds it by [`MAX_REPLICAS`];
    /// saturating, so an unvalidated job cannot overflow it).
    pub fn total(&self) -> u32 {
        self.roles()
            .fold(0u32, |sum, (_, s)| sum.saturating_add(s.count))
    }
}

/// How many replicas of a role run, and with what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplicaSpec {
    /// Number of replicas of this role.
    #[serde(default = "one")]
    pub count: u32,
    /// The port the replica listens on in a cluster (locally a free port is chosen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// CPU, memory and GPUs of each replica.
    #[serde(default, skip_serializing_if = "Resources::is_empty")]
    pub resources: Resources,
    /// Overrides `spec.command` for this role.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Overrides `spec.image` for this role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Added to (and overriding) `spec.env` for this role.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

fn one() -> u32 {
    1
}

impl Default for ReplicaSpec {
    fn default() -> Self {
        ReplicaSpec {
            count: 1,
            port: None,
            resources: Resources::default(),
            command: Vec::new(),
            image: None,
            env: BTreeMap::new(),
        }
    }
}

/// Compute resources of one replica.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Resources {
    /// CPU, a Kubernetes quantity such as `1` or `500m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Quantity>,
    /// Memory, a Kubernetes quantity such as `2Gi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Quantity>,
    /// Whole GPUs per replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<f64>,
    /// GPU model, such as `T4` or `V100`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_type: Option<String>,
}

impl Resources {
    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == Resources::default()
    }

    /// Whole GPUs asked for (validation guarantees a non-negative integer).
    pub fn gpus(&self) -> u32 {
        self.gpu.map_or(0, |g| g as u32)
    }
}

/// Storage mounted into every replica. Exactly one source is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Volume {
    /// A DNS-1123 label, unique within the job.
    pub name: String,
    /// Absolute path inside the replica.
    pub mount_path: String,
    /// Mount read-only.
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only: bool,
    /// An NFS (or NAS) export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nfs: Option<NfsSource>,
    /// An existing PersistentVolumeClaim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim: Option<PvcSource>,
    /// A directory of the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<HostPathSource>,
    /// Scratch space that lives as long as the replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_dir: Option<EmptyDirSource>,
    /// On Kubernetes, create the `nfs` share as a new PersistentVolume with labels plus a
    /// PersistentVolumeClaim that selects it (the `alibaba-ack` profile does so by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume: Option<SharePersistentVolume>,
}

/// A new PersistentVolume (and its claim) for an NFS/NAS share.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SharePersistentVolume {
    /// Size written on the volume and asked for by the claim (default `10Gi`; NFS does not
    /// enforce it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<Quantity>,
    /// Labels of the volume, matched by the claim's selector (default `train: <job>`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// An NFS export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NfsSource {
    /// Server address.
    pub server: String,
    /// Exported path.
    pub path: String,
    /// Mount through Alibaba Cloud's `alibaba/nas` flexVolume driver instead of the
    /// kernel NFS client.
    #[serde(default, skip_serializing_if = "is_false")]
    pub nas_flex_volume: bool,
}

/// A PersistentVolumeClaim reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PvcSource {
    /// Name of the claim in the job's namespace.
    pub claim_name: String,
}

/// A node directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostPathSource {
    /// Absolute path on the node.
    pub path: String,
}

/// An emptyDir volume.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmptyDirSource {
    /// Optional size limit, a Kubernetes quantity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_limit: Option<Quantity>,
}

/// TensorBoard settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TensorBoard {
    /// Directory holding the event files.
    pub log_dir: String,
    /// How the TensorBoard Service is exposed on Kubernetes.
    #[serde(default)]
    pub service_type: ServiceType,
    /// Image of the TensorBoard Deployment (default: the job's image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// How a Kubernetes Service is exposed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ServiceType {
    /// Reachable inside the cluster only (`kubectl port-forward` to view).
    #[default]
    ClusterIP,
    /// A port on every node.
    NodePort,
    /// A cloud load balancer.
    LoadBalancer,
}

impl ServiceType {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::ClusterIP => "ClusterIP",
            ServiceType::NodePort => "NodePort",
            ServiceType::LoadBalancer => "LoadBalancer",
        }
    }
}

/// How trainctl reads metrics from the replicas' output.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricsSpec {
    /// Which line formats are parsed.
    #[serde(default)]
    pub format: MetricsFormat,
    /// A regular expression tried on every line. Each named group is a metric of that name,
    /// except `step` (the step of the line) and the pair `name`/`value` (a metric named by
    /// the line itself), e.g. `loss (?P<loss>[0-9.]+) at (?P<step>[0-9]+)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

/// The line formats metrics are parsed from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MetricsFormat {
    /// Katib's `name=value` pairs, the `Step: 120, Epoch: 2, Cost: 0.53` progress form, and
    /// `regex` when given.
    #[default]
    Auto,
    /// Only `regex`.
    Regex,
    /// None: metrics come from event files only.
    None,
}

/// What happens when replicas exit, fail or run too long.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunPolicy {
    /// When a failed replica is restarted.
    #[serde(default)]
    pub restart_policy: RestartPolicy,
    /// Restarts allowed over the whole job before it fails.
    #[serde(default = "default_backoff_limit")]
    pub backoff_limit: u32,
    /// The job fails when it has run this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<u64>,
    /// A finished job is deleted after this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds_after_finished: Option<u64>,
    /// Which replicas are stopped when the job ends.
    #[serde(default)]
    pub clean_pod_policy: CleanPodPolicy,
    /// Which replicas decide that the job succeeded.
    #[serde(default)]
    pub success_policy: SuccessPolicy,
    /// A suspended job runs no replicas.
    #[serde(default, skip_serializing_if = "is_false")]
    pub suspend: bool,
    /// Seconds a replica has between SIGTERM and SIGKILL when it is stopped (suspend,
    /// preemption, the job's end) to write a checkpoint; unset: the engine's default (10 s
    /// locally, Kubernetes' 30 s on a cluster). Rendered as the pods'
    /// `terminationGracePeriodSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<u64>,
}

fn default_backoff_limit() -> u32 {
    3
}

impl Default for RunPolicy {
    fn default() -> Self {
        RunPolicy {
            restart_policy: RestartPolicy::default(),
            backoff_limit: default_backoff_limit(),
            active_deadline_seconds: None,
            ttl_seconds_after_finished: None,
            clean_pod_policy: CleanPodPolicy::default(),
            success_policy: SuccessPolicy::default(),
            suspend: false,
            termination_grace_period_seconds: None,
        }
    }
}

/// When a failed replica is restarted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RestartPolicy {
    /// A failure fails the job (Kubeflow's default).
    #[default]
    Never,
    /// Any non-zero exit is restarted, up to backoffLimit.
    OnFailure,
    /// Exit codes >= 128 (signals, OOM kills) are retried; 1..127 are fatal.
    ExitCode,
}

/// Which replicas are stopped when the job ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum CleanPodPolicy {
    /// Stop the replicas still running (parameter servers, evaluators).
    #[default]
    Running,
    /// Stop and remove every replica.
    All,
    /// Leave running replicas alone.
    None,
}

/// Which replicas decide that the job succeeded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SuccessPolicy {
    /// The chief (or master) when there is one, else worker 0.
    #[default]
    ChiefOrWorker0,
    /// Every worker; a chief or master, when present, still decides (as in Kubeflow v1).
    AllWorkers,
}

/// Gang scheduling, queue and priority.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scheduling {
    /// Start every replica together or none.
    #[serde(default)]
    pub gang: bool,
    /// The queue the job waits in.
    #[serde(default = "default_queue")]
    pub queue: String,
    /// Higher runs first.
    #[serde(default)]
    pub priority: i32,
    /// The queue may suspend the job (checkpoint, stop, resume later) to give its GPUs to
    /// another job: a higher-priority one, or under least attained service one that has
    /// received less GPU time. Off by default: such a job is never suspended by the queue.
    #[serde(default, skip_serializing_if = "is_false")]
    pub preemptible: bool,
    /// Which cluster add-on gangs the replicas on Kubernetes (default: volcano, as in
    /// Kubeflow's training operator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gang_scheduler: Option<GangScheduler>,
}

/// The cluster add-ons that can start a job's replicas all together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GangScheduler {
    /// Volcano: a `scheduling.volcano.sh` PodGroup and schedulerName `volcano`.
    #[default]
    Volcano,
    /// The scheduler-plugins coscheduling plugin: a `scheduling.x-k8s.io` PodGroup.
    Coscheduling,
    /// Kueue: the queue-name label; the workload is created suspended and Kueue admits it.
    Kueue,
}

fn default_queue() -> String {
    "default".to_string()
}

impl Default for Scheduling {
    fn default() -> Self {
        Scheduling {
            gang: false,
            queue: default_queue(),
            priority: 0,
            preemptible: false,
            gang_scheduler: None,
        }
    }
}

/// The cluster flavour the job is rendered for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Cloud {
    /// Which cloud's GPU conventions apply.
    #[serde(default)]
    pub profile: CloudProfile,
    /// alibaba-eci: also create an `ImageCache` of the job's images, so pods start without
    /// pulling them.
    #[serde(default, skip_serializing_if = "is_false")]
    pub image_cache: bool,
    /// alibaba-eci: the ECS instance types to run on (`k8s.aliyun.com/eci-use-specs`),
    /// such as `ecs.gn6i-c4g1.xlarge`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    /// tencent-eks: pin the pod size with the cpu, mem and gpu-count annotations (taken
    /// from the replica's resources) instead of letting EKS derive it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub pin_resources: bool,
    /// Whether pods can reach the internet; the default is the profile's (serverless pods
    /// on tencent-eks and alibaba-eci have none without a NAT gateway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<bool>,
    /// The node label that carries the GPU model, overriding the profile's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_node_label: Option<String>,
}

/// Cloud profiles: each differs in annotations, node selectors and storage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CloudProfile {
    /// Any Kubernetes with the NVIDIA device plugin.
    #[default]
    Generic,
    /// Tencent EKS (serverless pods).
    TencentEks,
    /// Tencent TKE (GPU nodes).
    TencentTke,
    /// Alibaba ECI (ASK, serverless pods).
    AlibabaEci,
    /// Alibaba ACK (GPU nodes).
    AlibabaAck,
}

impl TrainingJob {
    /// The job name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// The command of one role: its own, else the job's.
    pub fn command_of(&self, role: ReplicaType) -> &[String] {
        match self.spec.replicas.get(role) {
            Some(r) if !r.command.is_empty() => &r.command,
            _ => &self.spec.command,
        }
    }

    /// GPUs the whole job needs at once.
    pub fn total_gpus(&self) -> u32 {
        self.spec.replicas.roles().fold(0u32, |sum, (_, r)| {
            sum.saturating_add(r.count.saturating_mul(r.resources.gpus()))
        })
    }

    /// The JSON schema of the job file, generated from these types.
    pub fn json_schema() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(TrainingJob)).unwrap_or_default()
    }
}
