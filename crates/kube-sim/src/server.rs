//! Starting and stopping the server, the state its handlers share, and the kubeconfig.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::json;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::faults::Faults;
use crate::requests::RequestCounts;
use crate::store::Store;
use crate::validation::{SchemaSource, Validator};

/// How to start a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on; port 0 picks a free one.
    pub addr: SocketAddr,
    /// How many changes watches can resume from before 410 Gone.
    pub history_limit: usize,
    /// Where the built-in kinds' schemas come from.
    pub schemas: SchemaSource,
    /// Whether the simulated scheduler and kubelet run.
    pub simulate_cluster: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            history_limit: 10_000,
            schemas: SchemaSource::Auto,
            simulate_cluster: true,
        }
    }
}

/// One line a container printed, with the (simulated) time the kubelet read it.
#[derive(Debug, Clone)]
pub(crate) struct LogLine {
    /// When it was printed.
    pub at: jiff::Timestamp,
    /// The text, without the newline.
    pub text: String,
}

/// Log lines of one pod, by container ("" when the test gave none).
pub(crate) type PodLogs = HashMap<String, Vec<LogLine>>;

/// State shared by the HTTP handlers, the simulated cluster and the test handle.
pub(crate) struct Shared {
    pub store: Mutex<Store>,
    pub faults: Mutex<Faults>,
    /// Log lines by (namespace, pod).
    pub logs: Mutex<HashMap<(String, String), PodLogs>>,
    /// Bumped to end every open watch stream.
    pub watch_epoch: watch::Sender<u64>,
    /// Whether pods of gang schedulers (volcano, coscheduling) are bound by the stand-in.
    pub gang_scheduling: Mutex<bool>,
    /// Wakes the simulated cluster after a control call.
    pub wake: Notify,
    /// The resource requests answered so far, counted by kind.
    pub requests: Mutex<RequestCounts>,
    /// The simulated clock (log timestamps, scripts, print schedules).
    pub clock: Mutex<Clock>,
    /// Bytes of log text the pods/log endpoint has sent, by (namespace, pod).
    pub log_bytes: Mutex<HashMap<(String, String), u64>>,
    /// Images the simulated registry lacks: pods using them fail to pull.
    pub missing_images: Mutex<std::collections::HashSet<String>>,
}

impl Shared {
    /// The store, locked (a poisoned lock is taken over: the data stays consistent because
    /// every write finishes before it can panic).
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The fault rules, locked.
    pub fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The images the simulated registry lacks, locked.
    pub fn missing_images(&self) -> MutexGuard<'_, std::collections::HashSet<String>> {
        self.missing_images
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The request tally, locked.
    pub fn requests(&self) -> MutexGuard<'_, RequestCounts> {
        self.requests.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The simulated time now.
    pub fn now(&self) -> jiff::Timestamp {
        self.clock.lock().unwrap_or_else(|e| e.into_inner()).now()
    }

    /// The pod logs, locked.
    pub fn logs(&self) -> MutexGuard<'_, HashMap<(String, String), PodLogs>> {
        self.logs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running server. Dropping it stops the server (use [`KubeSim::shutdown`] to wait).
pub struct KubeSim {
    pub(crate) shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    cluster: Option<JoinHandle<()>>,
}

impl KubeSim {
    /// Starts a server with the default config on 127.0.0.1 and a free port.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(ServerConfig::default()).await
    }

    /// Starts a server with `config`.
    pub async fn start_with(config: ServerConfig) -> anyhow::Result<Self> {
        let validator = Validator::new(&config.schemas)?;
        let mut store = Store::new(config.history_limit, validator);
        crate::cluster::seed(&mut store);
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            faults: Mutex::new(Faults::default()),
            logs: Mutex::new(HashMap::new()),
            watch_epoch: watch::channel(0).0,
            gang_scheduling: Mutex::new(false),
            wake: Notify::new(),
            requests: Mutex::new(RequestCounts::new()),
            clock: Mutex::new(Clock::new()),
            log_bytes: Mutex::new(HashMap::new()),
            missing_images: Mutex::new(Default::default()),
        });
        let listener = tokio::net::TcpListener::bind(config.addr).await?;
        let addr = listener.local_addr()?;
        let app = crate::handlers::router(shared.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                eprintln!("kube-sim: server error: {e}");
            }
        });
        let cluster = config
            .simulate_cluster
            .then(|| tokio::spawn(crate::cluster::run(shared.clone())));
        Ok(KubeSim {
            shared,
            addr,
            stop: Some(stop),
            server: Some(server),
            cluster,
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Whether built-in kinds are validated against the official schemas.
    pub fn validates_builtins(&self) -> bool {
        self.shared.store().validator.validates_builtins()
    }

    /// The kubeconfig (YAML) that points kubectl and kube-rs at this server.
    pub fn kubeconfig(&self) -> String {
        let config = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kube-sim", "cluster": {"server": self.url()}}],
            "users": [{"name": "kube-sim", "user": {}}],
            "contexts": [{"name": "kube-sim", "context": {"cluster": "kube-sim", "user": "kube-sim", "namespace": "default"}}],
            "current-context": "kube-sim",
            "preferences": {},
        });
        serde_yaml_ng::to_string(&config).expect("a JSON value always serializes to YAML")
    }

    /// Writes the kubeconfig to `path` and returns the path.
    pub fn write_kubeconfig(&self, path: &Path) -> anyhow::Result<PathBuf> {
        std::fs::write(path, self.kubeconfig())
            .map_err(|e| anyhow::anyhow!("cannot write kubeconfig {}: {e}", path.display()))?;
        Ok(path.to_path_buf())
    }

    /// Stops accepting requests, ends open watches and waits for the server to finish.
    pub async fn shutdown(mut self) {
        self.stop_tasks();
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    fn stop_tasks(&mut self) {
        self.drop_watches();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(cluster) = self.cluster.take() {
            cluster.abort();
        }
    }
}

impl Drop for KubeSim {
    fn drop(&mut self) {
        self.stop_tasks();
    }
}
