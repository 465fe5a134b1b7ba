//! How `trainctl metrics` shows a job's training curves (a table, JSON or a PNG; the series
//! come from the backend, or from event files with `--logdir`), and `trainctl tensorboard`
//! (TensorBoard on a local job's event files).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use serde_json::json;
use trainctl_backend::run::collector;
use trainctl_backend::view;
use trainctl_local::Home;
use trainctl_metrics::plot::{plot_png, Curve};
use trainctl_metrics::series::Run;

use crate::args::{MetricsArgs, Output};

/// Size of `--plot` charts in pixels.
const PLOT_SIZE: (u32, u32) = (960, 540);
/// Tags `--plot` draws when `--tag` is not given, first found first.
const DEFAULT_TAGS: [&str; 3] = ["loss", "cost", "accuracy"];

/// `trainctl metrics --logdir PATH`: the series of the event files there.
pub fn logdir_metrics(a: &MetricsArgs) -> Result<ExitCode> {
    let Some(path) = &a.logdir else {
        bail!("give a job name or --logdir PATH");
    };
    report(
        a,
        &path.display().to_string(),
        &crate::logdir::read_logdir(path)?,
    )
}

/// Prints the stats of `runs`, or plots them with `--plot`.
pub fn report(a: &MetricsArgs, source: &str, owned: &[(String, Run)]) -> Result<ExitCode> {
    let runs: Vec<(&str, &Run)> = owned.iter().map(|(n, r)| (n.as_str(), r)).collect();
    if let Some(png) = &a.plot {
        return plot(&runs, a.tag.as_deref(), png, source);
    }
    print_stats(&runs, a.output, source)?;
    Ok(ExitCode::SUCCESS)
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
    if v == 0.0 {
        return "0".into();
    }
    if v.abs() >= 1e6 || v.abs() < 1e-4 {
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

#[cfg(test)]
mod tests {
    use super::number;

    #[test]
    fn numbers_print_with_six_significant_digits_and_zero_as_zero() {
        assert_eq!(number(0.0), "0");
        assert_eq!(number(-0.0), "0");
        assert_eq!(number(0.875), "0.875");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(1234.5678), "1234.57");
        assert_eq!(number(2e-5), "2.00000e-5");
    }
}
