//! `trainctl metrics` (a job's training curves as a table, JSON or a PNG, for local and
//! cluster jobs), `trainctl tensorboard` (TensorBoard on the job's event files), the
//! collector that records a local job's metrics while it runs, and `trainctl collect`, which
//! does the same for a cluster job into a log directory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::json;
use trainctl_local::{Home, LocalEngine};
use trainctl_metrics::collect::Collector;
use trainctl_metrics::event_file::{EventFileReader, Problem};
use trainctl_metrics::job::JobMetrics;
use trainctl_metrics::plot::{plot_png, Curve};
use trainctl_metrics::run_reader::{discover_runs, RunReader};
use trainctl_metrics::series::Run;
use trainctl_metrics::stdout::StdoutParser;

use trainctl_kube_client::client::Cluster;
use trainctl_kube_client::job_metrics::{collect_job, job_metrics};

use crate::args::{CollectArgs, MetricsArgs, Output};
use crate::view;

/// Size of `--plot` charts in pixels.
const PLOT_SIZE: (u32, u32) = (960, 540);
/// Tags `--plot` draws when `--tag` is not given, first found first.
const DEFAULT_TAGS: [&str; 3] = ["loss", "cost", "accuracy"];

/// Opens the job's collector (with the parser its `spec.metrics` asks for).
fn collector(home: &Home, name: &str) -> Result<(Collector, bool)> {
    let mut engine = LocalEngine::open(home.clone())?;
    let job = engine.job(name)?;
    let parser = StdoutParser::for_spec(job.spec.spec.metrics.as_ref())?;
    let c = Collector::open(&home.job_dir(name), &home.tensorboard_dir(name), parser)?;
    Ok((c, job.phase.is_terminal()))
}

/// `trainctl metrics`.
pub fn metrics(a: &MetricsArgs) -> Result<ExitCode> {
    let (source, owned) = match (&a.job, &a.logdir) {
        (Some(name), None) => {
            let home = Home::from_env();
            let (mut c, ended) = collector(&home, name)?;
            c.collect(ended)?;
            let mut m = JobMetrics::new(&home.job_dir(name), &home.tensorboard_dir(name));
            warn(&m.poll()?);
            let runs: Vec<(String, Run)> = m
                .runs()
                .into_iter()
                .map(|(n, r)| (n.to_string(), r.clone()))
                .collect();
            (format!("job {name}"), runs)
        }
        (None, Some(path)) => (path.display().to_string(), read_logdir(path)?),
        _ => bail!("give a job name or --logdir PATH"),
    };
    report(a, &source, &owned)
}

/// `trainctl metrics JOB --kube`: the same report, parsed from the logs of every attempt
/// of the cluster job's replicas.
pub async fn cluster_metrics(cluster: &Cluster, a: &MetricsArgs) -> Result<ExitCode> {
    let Some(name) = &a.job else {
        bail!("give the name of a job on the cluster");
    };
    let runs = job_metrics(cluster, name).await?;
    report(a, &format!("job {name}"), &runs)
}

/// Prints the stats of `runs`, or plots them with `--plot`.
fn report(a: &MetricsArgs, source: &str, owned: &[(String, Run)]) -> Result<ExitCode> {
    let runs: Vec<(&str, &Run)> = owned.iter().map(|(n, r)| (n.as_str(), r)).collect();
    if let Some(png) = &a.plot {
        return plot(&runs, a.tag.as_deref(), png, source);
    }
    print_stats(&runs, a.output, source)?;
    Ok(ExitCode::SUCCESS)
}

/// How often `collect` reads the cluster job's logs.
const COLLECT_EVERY: Duration = Duration::from_secs(1);

/// `trainctl collect JOB --kube --logdir DIR`: records a cluster job's metrics under DIR
/// until the job ends (then, with `--keep-running`, waits until terminated).
pub async fn collect(cluster: &Cluster, a: &CollectArgs) -> Result<ExitCode> {
    let mut points = 0;
    collect_job(cluster, &a.job, &a.logdir, COLLECT_EVERY, &mut |n| {
        points += n
    })
    .await?;
    println!(
        "job {} ended: {points} points collected into {}",
        a.job,
        a.logdir.display()
    );
    if a.keep_running {
        std::io::stdout().flush()?;
        // A Deployment restarts a container that exits: stay until the pod is stopped.
        std::future::pending::<()>().await;
    }
    Ok(ExitCode::SUCCESS)
}

/// `collect` without a cluster: local jobs are collected while they run.
pub fn collect_local() -> Result<ExitCode> {
    bail!(
        "trainctl records the metrics of local jobs while they run (see `trainctl metrics JOB`); \
         collect is for cluster jobs: use --kube (or -n/--context)"
    )
}

/// The runs of an event file, or of every directory under `path` that holds event files.
fn read_logdir(path: &Path) -> Result<Vec<(String, Run)>> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_file() {
        let mut run = Run::default();
        warn(&EventFileReader::new(path).poll(&mut run)?);
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        return Ok(vec![(name.into_owned(), run)]);
    }
    let mut runs = Vec::new();
    for (name, dir) in discover_runs(path)? {
        let mut reader = RunReader::new(dir);
        warn(&reader.poll()?);
        runs.push((name, reader.run().clone()));
    }
    Ok(runs)
}

fn warn(problems: &[Problem]) {
    for p in problems {
        eprintln!("warning: {p}");
    }
}

/// Per run and tag: points, last step, last, min and max.
fn print_stats(runs: &[(&str, &Run)], output: Option<Output>, source: &str) -> Result<()> {
    let series: Vec<serde_json::Value> = runs
        .iter()
        .flat_map(|(run, r)| {
            r.tags.iter().filter_map(move |(tag, s)| {
                let st = s.stats()?;
                Some(
                    json!({"run": run, "tag": tag, "points": st.points, "step": st.step,
                            "last": st.last, "min": st.min, "max": st.max}),
                )
            })
        })
        .collect();
    let object = json!({"source": source, "series": series});
    let mut out = std::io::stdout().lock();
    match output {
        Some(Output::Json) => writeln!(out, "{}", serde_json::to_string_pretty(&object)?)?,
        Some(Output::Yaml) => write!(out, "{}", serde_yaml_ng::to_string(&object)?)?,
        _ if series.is_empty() => eprintln!("No metrics found for {source}."),
        _ => {
            let rows: Vec<Vec<String>> = series
                .iter()
                .map(|s| {
                    let text = |k: &str| s[k].as_str().map_or(s[k].to_string(), str::to_string);
                    let number = |k: &str| number(s[k].as_f64().unwrap_or(f64::NAN));
                    vec![
                        text("run"),
                        text("tag"),
                        text("points"),
                        text("step"),
                        number("last"),
                        number("min"),
                        number("max"),
                    ]
                })
                .collect();
            let header = ["RUN", "TAG", "POINTS", "STEP", "LAST", "MIN", "MAX"];
            write!(out, "{}", view::table(&header, &rows))?;
        }
    }
    Ok(())
}

/// Six significant digits, without trailing zeros.
fn number(v: f64) -> String {
    if v != 0.0 && (v.abs() >= 1e6 || v.abs() < 1e-4) {
        return format!("{v:.5e}");
    }
    let digits = (5 - v.abs().log10().floor() as i32).clamp(0, 9) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// `--plot`: one tag, every run that has it.
fn plot(runs: &[(&str, &Run)], tag: Option<&str>, png: &Path, source: &str) -> Result<ExitCode> {
    let mut tags: Vec<&str> = runs
        .iter()
        .flat_map(|(_, r)| r.tags.keys())
        .map(String::as_str)
        .collect();
    tags.sort();
    tags.dedup();
    let chosen = match tag {
        Some(t) if tags.contains(&t) => t,
        Some(t) => bail!("{source} has no metric {t:?}; it has: {}", list(&tags)),
        None => match DEFAULT_TAGS
            .iter()
            .find(|t| tags.contains(t))
            .or(tags.first())
        {
            Some(t) => t,
            None => bail!("{source} has no metrics to plot"),
        },
    };
    let curves: Vec<Curve> = runs
        .iter()
        .filter_map(|(run, r)| {
            let series = r.tags.get(chosen)?;
            Some(Curve {
                label: run.to_string(),
                points: series.points(),
            })
        })
        .collect();
    plot_png(png, &format!("{chosen} ({source})"), &curves, PLOT_SIZE)?;
    println!(
        "wrote {} ({chosen}, {} run(s))",
        png.display(),
        curves.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn list(items: &[&str]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// `trainctl tensorboard JOB`: runs TensorBoard on the job's event files when it is installed.
pub fn tensorboard(name: &str, port: Option<u16>) -> Result<ExitCode> {
    let home = Home::from_env();
    let (mut c, ended) = collector(&home, name)?;
    c.collect(ended)?;
    let dir = home.tensorboard_dir(name);
    let Some(program) = find_on_path("tensorboard") else {
        bail!(
            "TensorBoard is not installed (no `tensorboard` on PATH).\n\
             Install it with: python3 -m pip install tensorboard\n\
             then run `trainctl tensorboard {name}` again, or see the curves here with \
             `trainctl metrics {name}`. The job's event files are in {}",
            dir.display()
        );
    };
    std::fs::create_dir_all(&dir)?;
    eprintln!("starting {} on {}", program.display(), dir.display());
    let mut cmd = std::process::Command::new(&program);
    cmd.arg("--logdir").arg(&dir);
    if let Some(port) = port {
        cmd.arg("--port").arg(port.to_string());
    }
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {}", program.display()))?;
    Ok(ExitCode::from(
        status.code().unwrap_or(1).clamp(0, 255) as u8
    ))
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Records a job's metrics while it runs: a thread that collects its output every second.
pub struct Collecting {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Collecting {
    /// Starts collecting for the job in the background, once a second; a warning, and no
    /// collecting, when its `spec.metrics` cannot work. Opening the collector happens on the
    /// collecting thread, off the path that starts the replicas.
    pub fn start(home: &Home, name: &str) -> Collecting {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let (home, name) = (home.clone(), name.to_string());
        let thread = std::thread::spawn(move || {
            let mut c = match collector(&home, &name) {
                Ok((c, _)) => c,
                Err(e) => {
                    eprintln!("warning: metrics of job {name} are not collected: {e:#}");
                    return;
                }
            };
            loop {
                std::thread::park_timeout(Duration::from_secs(1));
                let last = stopping.load(Ordering::SeqCst);
                if let Err(e) = c.collect(last) {
                    eprintln!("warning: collecting the metrics of job {name}: {e:#}");
                    return;
                }
                if last {
                    return;
                }
            }
        });
        Collecting { stop, thread }
    }

    /// Reads the job's output one last time (it has ended) and stops.
    pub fn finish(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.thread().unpark();
        let _ = self.thread.join();
    }
}
