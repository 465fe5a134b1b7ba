//! `trainctl ui`: the dashboard (crate `trainctl-web`) over this machine's jobs, or with
//! `--kube` (`--context`, `-n`, or `backend: kube` in the config) over a cluster's.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, Context, Result};
use clap::Args;
use trainctl_kube_client::client::Cluster;
use trainctl_local::Home;
use trainctl_web::access::{check_address, encode_token, Access, TOKEN_ENV};
use trainctl_web::hosts::Hosts;
use trainctl_web::Dashboard;

use crate::backend::{resolve, Target};

/// `ui` arguments.
#[derive(Debug, Args)]
pub struct UiArgs {
    /// Where to listen (port 0 picks a free one). Anything but loopback needs a token.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub address: SocketAddr,
    /// A secret every request must carry (open the app once as /?token=SECRET). Other users
    /// of this machine can read it with `ps`: prefer --token-file or $TRAINCTL_UI_TOKEN.
    #[arg(long, conflicts_with = "token_file")]
    pub token: Option<String>,
    /// Read the token from this file (its first line).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Also answer to this host name (repeatable), e.g. the name a reverse proxy or another
    /// machine uses. On loopback only localhost and loopback addresses are answered otherwise.
    #[arg(long = "allow-host", value_name = "NAME")]
    pub allow_hosts: Vec<String>,
    /// This machine's jobs or a cluster's.
    #[command(flatten)]
    pub target: Target,
}

/// Where the token came from, for the first lines `ui` prints.
enum TokenFrom {
    Flag,
    File(PathBuf),
    Env,
}

/// The token: `--token`, else `--token-file`, else `$TRAINCTL_UI_TOKEN` (if set).
fn token(a: &UiArgs) -> Result<Option<(String, TokenFrom)>> {
    if let Some(t) = &a.token {
        return Ok(Some((t.clone(), TokenFrom::Flag)));
    }
    if let Some(path) = &a.token_file {
        return Ok(Some((
            read_token_file(path)?,
            TokenFrom::File(path.clone()),
        )));
    }
    Ok(std::env::var(TOKEN_ENV).ok().map(|t| (t, TokenFrom::Env)))
}

/// The first line of `path`, without surrounding white space.
fn read_token_file(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the token file {}", path.display()))?;
    let token = text.lines().next().unwrap_or_default().trim();
    if token.is_empty() {
        return Err(anyhow!(
            "the token file {} is empty: put the token on its first line",
            path.display()
        ));
    }
    Ok(token.to_string())
}

/// Serves the dashboard until interrupted.
pub fn ui(a: &UiArgs) -> Result<ExitCode> {
    let token = token(a)?;
    check_address(&a.address, token.as_ref().map(|(t, _)| t.as_str())).map_err(|e| anyhow!(e))?;
    let kube = resolve(&a.target)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the web server")?;
    runtime.block_on(async {
        let cluster = match kube {
            Some(k) => {
                let cluster =
                    Cluster::connect(k.context.as_deref(), k.namespace.as_deref()).await?;
                // Fail now, with the client's explanation, rather than on every page.
                cluster.list().await?;
                Some(cluster)
            }
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(a.address)
            .await
            .with_context(|| format!("cannot listen on {}", a.address))?;
        let bound = listener.local_addr()?;
        let access = Access::new(
            token.as_ref().map(|(t, _)| t.clone()),
            Hosts::new(bound, &a.allow_hosts),
        );
        let dashboard = match cluster {
            Some(cluster) => Dashboard::for_cluster(cluster, access),
            None => Dashboard::new(Home::from_env(), access),
        };
        match &token {
            Some((t, TokenFrom::Flag)) => {
                println!(
                    "trainctl dashboard on http://{bound}/?token={}",
                    encode_token(t)
                );
            }
            Some((_, from)) => {
                println!("trainctl dashboard on http://{bound}/");
                let from = match from {
                    TokenFrom::File(path) => path.display().to_string(),
                    _ => format!("${TOKEN_ENV}"),
                };
                eprintln!(
                    "open it once as http://{bound}/?token=TOKEN, with the token from {from}"
                );
            }
            None => println!("trainctl dashboard on http://{bound}/"),
        }
        trainctl_web::serve(listener, dashboard)
            .await
            .context("the web server stopped")
    })?;
    Ok(ExitCode::SUCCESS)
}
