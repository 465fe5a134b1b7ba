//! `doctor` (is this machine ready to run GPU jobs, and if not, what to do) and `top`
//! (what its GPUs and replicas are doing now).

use std::collections::BTreeSet;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use trainctl_backend::view::table;
use trainctl_gpu::doctor::{self, Check, Machine, Status};
use trainctl_gpu::kube_doctor::ClusterFacts;
use trainctl_gpu::System;
use trainctl_local::store::ReplicaStatus;
use trainctl_local::{Home, LocalEngine};
use trainctl_spec::CloudProfile;

use crate::args::Output;

/// `doctor` arguments.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Output format (json or yaml; the default is a checklist).
    #[arg(short, long, value_enum)]
    pub output: Option<Output>,
    /// The Python interpreter whose frameworks' CUDA builds are checked (and that runs the
    /// smoke jobs).
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// Also run a real job on every GPU: a matrix multiply through PyTorch, TensorFlow or
    /// CuPy, reporting TFLOP/s (nvidia-smi when none is installed).
    #[arg(long)]
    pub smoke: bool,
    /// How long each smoke job may take.
    #[arg(long, default_value = "5m", value_parser = crate::args::parse_duration)]
    pub smoke_timeout: std::time::Duration,
    /// Check a Kubernetes cluster instead of this machine (--kube, --context, -n).
    #[command(flatten)]
    pub target: crate::backend::Target,
    /// With --kube: the cloud profile whose requirements are checked.
    #[arg(long, default_value = "generic", value_parser = parse_profile)]
    pub profile: CloudProfile,
    /// With --kube: a GPU model that some node must offer (and the smoke pod asks for).
    #[arg(long)]
    pub gpu_type: Option<String>,
    /// With --kube --smoke: the image that runs nvidia-smi (default: the cloud profile's,
    /// e.g. nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04 for generic).
    #[arg(long)]
    pub smoke_image: Option<String>,
    /// With --kube --smoke: the RuntimeClass of the smoke pod (e.g. nvidia).
    #[arg(long)]
    pub runtime_class: Option<String>,
}

fn parse_profile(text: &str) -> std::result::Result<CloudProfile, String> {
    serde_json::from_value(serde_json::json!(text)).map_err(|_| {
        "expected one of generic, tencent-eks, tencent-tke, alibaba-eci, alibaba-ack".to_string()
    })
}

/// Runs the checks (of this machine, or with `--kube` of a cluster) and prints the
/// checklist; exits 1 when a blocking check fails.
pub fn doctor(args: &DoctorArgs) -> Result<ExitCode> {
    if let Some(kube) = crate::backend::resolve(&args.target)? {
        let (checks, facts) = kube_checks(args, &kube)?;
        return report(args.output, &checks, ("cluster", &facts));
    }
    let machine = Machine::observe(&args.python, &replica_groups());
    let mut checks = doctor::check(&machine);
    if args.smoke {
        checks.extend(crate::gpu_smoke::smoke(&args.python, args.smoke_timeout)?);
    }
    report(args.output, &checks, ("machine", &machine))
}

/// An async runtime and a client of the cluster `kube` names.
fn connect(
    kube: &crate::backend::KubeTarget,
) -> Result<(
    tokio::runtime::Runtime,
    trainctl_kube_client::client::Cluster,
)> {
    let runtime = tokio::runtime::Runtime::new()?;
    let cluster = runtime.block_on(trainctl_kube_client::client::Cluster::connect(
        kube.context.as_deref(),
        kube.namespace.as_deref(),
    ))?;
    Ok((runtime, cluster))
}

/// `doctor --kube [--smoke]`: the cluster's checklist and the facts it judged.
fn kube_checks(
    args: &DoctorArgs,
    kube: &crate::backend::KubeTarget,
) -> Result<(Vec<Check>, ClusterFacts)> {
    use trainctl_backend::kube_doctor as kd;
    let (runtime, cluster) = connect(kube)?;
    runtime.block_on(async {
        let needs = kd::profile_needs(args.profile, args.gpu_type.as_deref());
        let facts = kd::facts(&cluster, needs.clone()).await;
        let mut checks = trainctl_gpu::kube_doctor::check(&facts);
        if args.smoke {
            let spec = kd::SmokeSpec {
                image: args.smoke_image.clone().unwrap_or_else(|| {
                    trainctl_backend::kube_doctor::smoke_image(args.profile).to_string()
                }),
                runtime_class: args.runtime_class.clone(),
                timeout: args.smoke_timeout,
            };
            let pod = kd::smoke(&cluster, &needs, &spec).await?;
            let nodes = facts.nodes.clone().unwrap_or_default();
            checks.push(trainctl_gpu::kube_smoke::explain(&pod, &nodes));
        }
        Ok((checks, facts))
    })
}

/// Prints the checklist (or `-o json|yaml` with `what` observed); exit 1 on a failure.
fn report<T: serde::Serialize>(
    output: Option<Output>,
    checks: &[Check],
    (label, observed): (&str, &T),
) -> Result<ExitCode> {
    let verdict = doctor::verdict(checks);
    match output {
        Some(Output::Json) => {
            let report = serde_json::json!({"verdict": verdict, "checks": checks, label: observed});
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Some(Output::Yaml) => {
            let report = serde_json::json!({"verdict": verdict, "checks": checks, label: observed});
            print!("{}", serde_yaml_ng::to_string(&report)?);
        }
        _ => {
            let mut rows = Vec::new();
            for c in checks {
                rows.push(vec![
                    c.name.to_string(),
                    c.status.label().to_string(),
                    c.detail.clone(),
                ]);
                if let Some(fix) = &c.fix {
                    rows.push(vec![String::new(), String::new(), format!("fix: {fix}")]);
                }
            }
            print!("{}", table(&["CHECK", "STATUS", "DETAIL"], &rows));
            let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
            match verdict {
                Status::Fail => println!(
                    "\nverdict: FAIL ({failed} blocking problem(s)): GPU jobs cannot run here yet"
                ),
                Status::Warn => println!("\nverdict: WARN: GPU jobs run; read the warnings above"),
                _ => println!("\nverdict: OK: ready for GPU jobs"),
            }
        }
    }
    Ok(if verdict == Status::Fail {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The local engine when trainctl has a state directory here (doctor and top never create
/// one).
fn existing_engine() -> Result<Option<LocalEngine>> {
    let home = Home::from_env();
    if !home.db_path().exists() {
        return Ok(None);
    }
    Ok(Some(LocalEngine::open(home)?))
}

/// The process groups of the local engine's running replicas.
fn replica_groups() -> BTreeSet<u32> {
    let Ok(Some(engine)) = existing_engine() else {
        return BTreeSet::new();
    };
    let store = engine.store();
    let jobs = store.jobs().unwrap_or_default();
    jobs.iter()
        .filter(|j| j.finished.is_none())
        .flat_map(|j| store.replicas(&j.name).unwrap_or_default())
        .filter(|r| r.pid > 0 && r.state == ReplicaStatus::Running)
        .map(|r| r.pid as u32)
        .collect()
}

/// `top` arguments.
#[derive(Debug, Args)]
pub struct TopArgs {
    /// What to show.
    #[command(subcommand)]
    pub what: TopWhat,
    /// Output format (json or yaml; the default is a table).
    #[arg(short, long, value_enum, global = true)]
    pub output: Option<Output>,
    /// Refresh in place until interrupted.
    #[arg(long, short = 'w', global = true)]
    pub watch: bool,
    /// Time between refreshes, and the CPU sampling interval (e.g. 2s).
    #[arg(long, default_value = "2s", value_parser = crate::args::parse_duration, global = true)]
    pub interval: std::time::Duration,
    /// With --kube: a Prometheus that scrapes the DCGM exporter (e.g.
    /// http://prometheus.monitoring:9090), for GPU utilization and memory.
    #[arg(long, global = true)]
    pub prometheus: Option<String>,
}

/// What `top` shows.
#[derive(Debug, clap::Subcommand)]
pub enum TopWhat {
    /// This machine's GPUs: total, allocated to trainctl jobs, in use, and per-GPU readings
    /// (with --kube: each node's GPUs, allocated from pod requests).
    Node {
        /// A Kubernetes cluster instead of this machine (--kube, --context).
        #[command(flatten)]
        target: crate::backend::Target,
    },
    /// Running replicas (of one job, or all): CPU, memory, GPU utilization and memory
    /// (with --kube: each replica's pod, its node and GPU requests).
    Job {
        /// Only this job.
        job: Option<String>,
        /// A Kubernetes cluster instead of this machine (--kube, --context, -n).
        #[command(flatten)]
        target: crate::backend::Target,
    },
}

/// Prints `top node` or `top job`, once or (`--watch`) until interrupted.
pub fn top(args: &TopArgs) -> Result<ExitCode> {
    let target = match &args.what {
        TopWhat::Node { target } | TopWhat::Job { target, .. } => target,
    };
    if let Some(kube) = crate::backend::resolve(target)? {
        return kube_top(args, &kube);
    }
    let engine = existing_engine()?;
    let store = engine.as_ref().map(LocalEngine::store);
    loop {
        let text = match &args.what {
            TopWhat::Node { .. } => {
                let node = trainctl_backend::top::node(store, &System)?;
                format_or(args.output, &node, || node_table(&node))?
            }
            TopWhat::Job { job, .. } => {
                if let Some(name) = job {
                    store
                        .map(|s| s.job(name))
                        .transpose()?
                        .flatten()
                        .ok_or_else(|| anyhow::anyhow!("job {name:?} not found"))?;
                }
                let interval = if args.watch {
                    args.interval
                } else {
                    args.interval.min(std::time::Duration::from_secs(1))
                };
                let used =
                    trainctl_backend::top::replicas(store, &System, job.as_deref(), interval)?;
                format_or(args.output, &used, || replicas_table(&used))?
            }
        };
        if !args.watch {
            print!("{text}");
            return Ok(ExitCode::SUCCESS);
        }
        // Clear the screen and home the cursor, then draw.
        print!("\x1b[2J\x1b[H{text}");
        std::io::Write::flush(&mut std::io::stdout())?;
        if matches!(args.what, TopWhat::Node { .. }) {
            std::thread::sleep(args.interval);
        }
    }
}

/// `top node|job --kube`, once or (`--watch`) until interrupted.
fn kube_top(args: &TopArgs, kube: &crate::backend::KubeTarget) -> Result<ExitCode> {
    use trainctl_backend::kube_top as kt;
    let (runtime, cluster) = connect(kube)?;
    let prometheus = args.prometheus.as_deref();
    runtime.block_on(async {
        loop {
            let (text, notes) = match &args.what {
                TopWhat::Node { .. } => {
                    let top = kt::nodes_with_usage(&cluster, prometheus).await?;
                    let text = format_or(args.output, &top.items, || kube_nodes_table(&top.items))?;
                    (text, top.notes)
                }
                TopWhat::Job { job, .. } => {
                    let top = kt::replicas(&cluster, job.as_deref(), prometheus).await?;
                    let text =
                        format_or(args.output, &top.items, || kube_replicas_table(&top.items))?;
                    (text, top.notes)
                }
            };
            let text = with_notes(args.output, text, &notes);
            if !args.watch {
                print!("{text}");
                return Ok(ExitCode::SUCCESS);
            }
            print!("\x1b[2J\x1b[H{text}");
            std::io::Write::flush(&mut std::io::stdout())?;
            tokio::time::sleep(args.interval).await;
        }
    })
}

/// The notes on missing readings: under the table, or on stderr beside `-o json|yaml`.
fn with_notes(output: Option<Output>, text: String, notes: &[String]) -> String {
    if notes.is_empty() {
        return text;
    }
    let lines: String = notes.iter().map(|n| format!("note: {n}\n")).collect();
    match output {
        Some(Output::Json | Output::Yaml) => {
            eprint!("{lines}");
            text
        }
        _ => format!("{text}\n{lines}"),
    }
}

/// CPU and memory, or `-` when metrics.k8s.io did not say.
fn usage_cells(usage: Option<trainctl_backend::kube_usage::Usage>) -> [String; 2] {
    match usage {
        Some(u) => [
            format!("{}m", u.cpu_millicores),
            format!("{} MiB", u.memory_mib),
        ],
        None => ["-".into(), "-".into()],
    }
}

/// GPU utilization and memory, or `-` when DCGM did not say.
fn gpu_cells(gpu: Option<trainctl_backend::kube_usage::GpuUse>) -> [String; 2] {
    let gpu = gpu.unwrap_or_default();
    [
        or_dash(gpu.utilization_pct.map(|u| format!("{u:.0}%"))),
        or_dash(gpu.memory_mib.map(|m| format!("{m} MiB"))),
    ]
}

fn kube_replicas_table(replicas: &[trainctl_backend::kube_top::ReplicaPod]) -> String {
    if replicas.is_empty() {
        return "no running replicas\n".into();
    }
    let rows: Vec<Vec<String>> = replicas
        .iter()
        .map(|r| {
            let mut row = vec![
                r.job.clone(),
                r.replica.clone(),
                r.pod.clone(),
                r.phase.clone(),
                or_dash(r.node.clone()),
                r.gpus.to_string(),
            ];
            row.extend(usage_cells(r.usage));
            row.extend(gpu_cells(r.gpu));
            row
        })
        .collect();
    table(
        &[
            "JOB",
            "REPLICA",
            "POD",
            "PHASE",
            "NODE",
            "GPUS",
            "CPU",
            "MEMORY",
            "GPU UTIL",
            "GPU MEMORY",
        ],
        &rows,
    )
}

fn kube_nodes_table(nodes: &[trainctl_backend::kube_top::NodeGpus]) -> String {
    if nodes.is_empty() {
        return "no node advertises nvidia.com/gpu; `trainctl doctor --kube` says why\n".into();
    }
    let total: u64 = nodes.iter().map(|n| n.allocatable).sum();
    let allocated: u64 = nodes.iter().map(|n| n.allocated).sum();
    let rows: Vec<Vec<String>> = nodes
        .iter()
        .map(|n| {
            let pods: Vec<String> = n
                .pods
                .iter()
                .map(|p| format!("{}({})", p.pod, p.gpus))
                .collect();
            let mut row = vec![
                n.node.clone(),
                n.capacity.to_string(),
                n.allocatable.to_string(),
                n.allocated.to_string(),
            ];
            row.extend(usage_cells(n.usage));
            row.extend(gpu_cells(n.gpu));
            row.push(trainctl_backend::view::list_or_dash(&pods));
            row
        })
        .collect();
    format!("GPUs: {total} allocatable, {allocated} allocated\n\n")
        + &table(
            &[
                "NODE",
                "CAPACITY",
                "ALLOCATABLE",
                "ALLOCATED",
                "CPU",
                "MEMORY",
                "GPU UTIL",
                "GPU MEMORY",
                "PODS",
            ],
            &rows,
        )
}

fn format_or<T: serde::Serialize>(
    output: Option<Output>,
    value: &T,
    table: impl Fn() -> String,
) -> Result<String> {
    Ok(match output {
        Some(Output::Json) => serde_json::to_string_pretty(value)? + "\n",
        Some(Output::Yaml) => serde_yaml_ng::to_string(value)?,
        _ => table(),
    })
}

fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or("-".into(), |v| v.to_string())
}

fn node_table(node: &trainctl_backend::top::Node) -> String {
    if node.gpus.is_empty() {
        return format!(
            "no GPUs visible ({}); `trainctl doctor` says why\n",
            match node.source {
                trainctl_gpu::Source::Variable => "TRAINCTL_GPUS is empty",
                _ => "neither NVML nor nvidia-smi answered",
            }
        );
    }
    let header = format!(
        "GPUs: {} total, {} allocated to trainctl jobs, {} in use (read through {})\n\n",
        node.total,
        node.allocated,
        node.in_use,
        node.source.label()
    );
    let rows: Vec<Vec<String>> = node
        .gpus
        .iter()
        .map(|g| {
            let gpu = &g.gpu;
            let memory = match (gpu.memory_used_mib, gpu.memory_total_mib) {
                (Some(u), Some(t)) => format!("{u}/{t} MiB"),
                _ => "-".into(),
            };
            vec![
                gpu.index.to_string(),
                or_dash(gpu.name.clone()),
                or_dash(g.allocated_to.clone()),
                or_dash(gpu.utilization_pct.map(|u| format!("{u}%"))),
                memory,
                or_dash(gpu.temperature_c.map(|t| format!("{t}C"))),
                or_dash(gpu.power_w.map(|w| format!("{w:.0}W"))),
            ]
        })
        .collect();
    header
        + &table(
            &[
                "GPU",
                "MODEL",
                "ALLOCATED TO",
                "UTIL",
                "MEMORY",
                "TEMP",
                "POWER",
            ],
            &rows,
        )
}

fn replicas_table(used: &[trainctl_backend::top::ReplicaUse]) -> String {
    if used.is_empty() {
        return "no running replicas\n".into();
    }
    let rows: Vec<Vec<String>> = used
        .iter()
        .map(|r| {
            vec![
                r.job.clone(),
                r.replica.clone(),
                r.pid.to_string(),
                format!("{:.1}%", r.cpu_pct),
                format!("{} MiB", r.rss_mib),
                trainctl_backend::view::list_or_dash(&r.gpus),
                or_dash(r.gpu_utilization_pct.map(|u| format!("{u}%"))),
                or_dash(r.gpu_memory_mib.map(|m| format!("{m} MiB"))),
            ]
        })
        .collect();
    table(
        &[
            "JOB",
            "REPLICA",
            "PID",
            "CPU",
            "RSS",
            "GPUS",
            "GPU UTIL",
            "GPU MEMORY",
        ],
        &rows,
    )
}
