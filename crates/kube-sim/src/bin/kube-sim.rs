//! `kube-sim`: starts the in-memory API server, writes its kubeconfig, and serves until
//! interrupted (Ctrl-C or SIGTERM).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use kube_sim::{KubeSim, NodeSpec, SchemaSource, ServerConfig};

/// In-memory Kubernetes API server for tests.
#[derive(Parser)]
#[command(name = "kube-sim", version)]
struct Args {
    /// Where to write the kubeconfig.
    #[arg(long, default_value = "kubeconfig")]
    kubeconfig: PathBuf,
    /// Address to listen on (port 0: a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Nodes to add at start, as NAME[:GPUS] (8 cpu, 32Gi each).
    #[arg(long = "node")]
    nodes: Vec<String>,
    /// Do not validate built-in kinds against the kubernetes-validate schemas.
    #[arg(long)]
    no_schemas: bool,
    /// Do not run the simulated scheduler and kubelet (pods stay as written).
    #[arg(long)]
    no_cluster: bool,
    /// Changes kept for resuming watches before 410 Gone.
    #[arg(long, default_value_t = 10_000)]
    history: usize,
}

fn node_spec(text: &str) -> anyhow::Result<NodeSpec> {
    let (name, gpus) = text.split_once(':').unwrap_or((text, "0"));
    let gpus = gpus.parse().map_err(|_| {
        anyhow::anyhow!("--node {text}: GPU count {gpus:?} is not a number (use NAME[:GPUS])")
    })?;
    anyhow::ensure!(
        !name.is_empty(),
        "--node {text}: the node needs a name (use NAME[:GPUS])"
    );
    Ok(NodeSpec {
        gpus,
        ..NodeSpec::new(name)
    })
}

#[tokio::main]
async fn main() {
    if let Err(e) = run(Args::parse()).await {
        eprintln!("kube-sim: {e:#}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let nodes = args
        .nodes
        .iter()
        .map(|n| node_spec(n))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let config = ServerConfig {
        addr: args.listen,
        history_limit: args.history.max(1),
        schemas: if args.no_schemas {
            SchemaSource::Off
        } else {
            SchemaSource::Auto
        },
        simulate_cluster: !args.no_cluster,
    };
    let sim = KubeSim::start_with(config).await?;
    for node in &nodes {
        sim.add_node(node)
            .map_err(|e| anyhow::anyhow!("adding node {}: {e}", node.name))?;
    }
    let path = sim.write_kubeconfig(&args.kubeconfig)?;
    println!(
        "kube-sim listening on {}; kubeconfig written to {}",
        sim.url(),
        path.display()
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    sim.shutdown().await;
    Ok(())
}
