//! `trainctl ui`: the dashboard (crate `trainctl-web`) over this machine's jobs, or with
//! `--kube` (`--context`, `-n`, or `backend: kube` in the config) over a cluster's.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::{anyhow, Context, Result};
use clap::Args;
use trainctl_kube_client::client::Cluster;
use trainctl_local::Home;
use trainctl_web::access::check_address;
use trainctl_web::Dashboard;

use crate::backend::{resolve, Target};

/// `ui` arguments.
#[derive(Debug, Args)]
pub struct UiArgs {
    /// Where to listen (port 0 picks a free one). Anything but loopback needs --token.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub address: SocketAddr,
    /// A secret every request must carry (open the app once as /?token=SECRET).
    #[arg(long)]
    pub token: Option<String>,
    /// This machine's jobs or a cluster's.
    #[command(flatten)]
    pub target: Target,
}

/// Serves the dashboard until interrupted.
pub fn ui(a: &UiArgs) -> Result<ExitCode> {
    check_address(&a.address, a.token.as_deref()).map_err(|e| anyhow!(e))?;
    let kube = resolve(&a.target)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the web server")?;
    runtime.block_on(async {
        let dashboard = match kube {
            Some(k) => {
                let cluster =
                    Cluster::connect(k.context.as_deref(), k.namespace.as_deref()).await?;
                // Fail now, with the client's explanation, rather than on every page.
                cluster.list().await?;
                Dashboard::for_cluster(cluster, a.token.clone())
            }
            None => Dashboard::new(Home::from_env(), a.token.clone()),
        };
        let listener = tokio::net::TcpListener::bind(a.address)
            .await
            .with_context(|| format!("cannot listen on {}", a.address))?;
        let bound = listener.local_addr()?;
        let query = a
            .token
            .as_ref()
            .map_or(String::new(), |t| format!("?token={t}"));
        println!("trainctl dashboard on http://{bound}/{query}");
        trainctl_web::serve(listener, dashboard)
            .await
            .context("the web server stopped")
    })?;
    Ok(ExitCode::SUCCESS)
}
