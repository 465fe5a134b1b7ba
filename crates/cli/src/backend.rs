//! Which backend a verb acts on: this machine by default; a Kubernetes cluster with `--kube`
//! (or `--context`, `-n`), or when the config file (`$XDG_CONFIG_HOME/trainctl/config.yaml`,
//! else `~/.config/trainctl/config.yaml`) says `backend: kube`. `--local` overrides the file.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use serde::Deserialize;

/// The flags that pick the backend, shared by every verb that has both.
#[derive(Debug, Clone, Default, Args)]
pub struct Target {
    /// Act on the Kubernetes cluster of the kubeconfig (default: this machine, unless the
    /// config file says `backend: kube`).
    #[arg(long)]
    pub kube: bool,
    /// Act on this machine even when the config file says `backend: kube`.
    #[arg(long, conflicts_with_all = ["kube", "context", "namespace"])]
    pub local: bool,
    /// The kubeconfig context (implies --kube).
    #[arg(long)]
    pub context: Option<String>,
    /// The namespace (implies --kube; default: the context's).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
}

/// A verb on one job, with the backend flags.
#[derive(Debug, Args)]
pub struct JobOnTarget {
    /// The job.
    pub job: String,
    /// This machine or a cluster.
    #[command(flatten)]
    pub target: Target,
}

/// A cluster to act on: the kubeconfig context and namespace (None: the kubeconfig's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeTarget {
    /// The kubeconfig context.
    pub context: Option<String>,
    /// The namespace.
    pub namespace: Option<String>,
}

/// The config file's settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// `local` or `kube`.
    #[serde(default)]
    backend: Option<BackendName>,
    /// The default kubeconfig context for the kube backend.
    #[serde(default)]
    context: Option<String>,
    /// The default namespace for the kube backend.
    #[serde(default)]
    namespace: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum BackendName {
    Local,
    Kube,
}

/// Where the config file is.
fn config_path() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".config"),
    };
    Some(base.join("trainctl").join("config.yaml"))
}

fn settings() -> Result<Settings> {
    let Some(path) = config_path().filter(|p| p.exists()) else {
        return Ok(Settings::default());
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if text.trim().is_empty() {
        return Ok(Settings::default());
    }
    serde_yaml_ng::from_str(&text).with_context(|| {
        format!(
            "{}: not a valid trainctl config (keys: backend: local|kube, context, namespace)",
            path.display()
        )
    })
}

/// The cluster a verb acts on, or None for this machine.
pub fn resolve(target: &Target) -> Result<Option<KubeTarget>> {
    if target.local {
        return Ok(None);
    }
    let flagged = target.kube || target.context.is_some() || target.namespace.is_some();
    let settings = settings()?;
    if !flagged && settings.backend != Some(BackendName::Kube) {
        return Ok(None);
    }
    Ok(Some(KubeTarget {
        context: target.context.clone().or(settings.context),
        namespace: target.namespace.clone().or(settings.namespace),
    }))
}
