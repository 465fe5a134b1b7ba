//! The Kubernetes commands of the CLI: `crd` prints the TrainingJob and Experiment CRDs, `operator` runs the
//! controller (with `/metrics` and `/healthz`, leading through a Lease) until SIGINT or
//! SIGTERM.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use kube::config::{KubeConfigOptions, Kubeconfig};
use trainctl_operator::leader::{run_as_leader, LeaseConfig};
use trainctl_operator::metrics::Metrics;
use trainctl_operator::{http, OperatorConfig};

/// `operator` arguments.
#[derive(Debug, Args)]
pub struct OperatorArgs {
    /// The kubeconfig context (default: in-cluster config, else the current context).
    #[arg(long)]
    pub context: Option<String>,
    /// Watch only this namespace (default: all).
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Where `/metrics` and `/healthz` are served.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
}

/// Prints the CRDs (trainingjobs, then experiments) as YAML documents.
pub fn crd() -> Result<ExitCode> {
    print!(
        "{}---\n{}",
        serde_yaml_ng::to_string(&trainctl_kube_client::crd())?,
        serde_yaml_ng::to_string(&trainctl_kube_client::experiment_crd())?
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs the operator until SIGINT or SIGTERM; in-flight reconciles finish first.
pub fn operator(args: &OperatorArgs) -> Result<ExitCode> {
    trainctl_operator::telemetry::init_logging();
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let client = client(args.context.as_deref()).await?;
        let config = OperatorConfig {
            namespace: args.namespace.clone(),
            ..OperatorConfig::from_env()
        };
        let metrics = Arc::new(Metrics::default());
        let (stop, _) = tokio::sync::broadcast::channel::<()>(1);
        let server = {
            let mut stopped = stop.subscribe();
            let listener = tokio::net::TcpListener::bind(args.metrics_addr)
                .await
                .with_context(|| format!("cannot listen on {}", args.metrics_addr))?;
            eprintln!(
                "trainctl operator: metrics on http://{}/metrics",
                listener.local_addr()?
            );
            tokio::spawn(http::serve(listener, metrics.clone(), async move {
                let _ = stopped.recv().await;
            }))
        };
        let mut stopped = stop.subscribe();
        let lease = LeaseConfig::from_env();
        let mut controller =
            tokio::spawn(run_as_leader(client, config, metrics, lease, async move {
                let _ = stopped.recv().await;
            }));
        let outcome = tokio::select! {
            signal = shutdown_signal() => {
                signal?;
                eprintln!("trainctl operator: shutting down");
                let _ = stop.send(());
                controller.await
            }
            ended = &mut controller => ended,
        };
        let _ = stop.send(());
        let _ = server.await;
        match outcome.context("the controller task failed")? {
            Ok(()) => Ok(ExitCode::SUCCESS),
            Err(lost) => {
                eprintln!("trainctl operator: {lost}; exiting so that a new instance can lead");
                Ok(ExitCode::FAILURE)
            }
        }
    })
}

/// Waits for SIGINT or SIGTERM.
async fn shutdown_signal() -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}

/// A client from the kubeconfig (`--context`) or the in-cluster config.
async fn client(context: Option<&str>) -> Result<kube::Client> {
    let config = match context {
        Some(name) => {
            let options = KubeConfigOptions {
                context: Some(name.into()),
                ..KubeConfigOptions::default()
            };
            let kubeconfig = Kubeconfig::read().context("cannot read the kubeconfig")?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .with_context(|| format!("cannot use kubeconfig context {name:?}"))?
        }
        None => kube::Config::infer()
            .await
            .context("no Kubernetes configuration: set KUBECONFIG, create ~/.kube/config, or run in a cluster")?,
    };
    kube::Client::try_from(config).context("cannot build a Kubernetes client")
}
