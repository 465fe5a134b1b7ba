//! Shared by the Kubernetes tests of the CLI: a kube-rs client for a kube-sim.

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube_sim::KubeSim;

/// A kube-rs client from kube-sim's kubeconfig.
pub async fn client_for(sim: &KubeSim) -> kube::Client {
    let config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::from_yaml(&sim.kubeconfig()).expect("kubeconfig parses"),
        &KubeConfigOptions::default(),
    )
    .await
    .expect("kube-rs accepts the kubeconfig");
    kube::Client::try_from(config).expect("client builds")
}
