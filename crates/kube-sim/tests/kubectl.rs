//! The real `kubectl` against the `kube-sim` binary: apply, get -o json, describe, logs,
//! delete, and a CRD's plural; plus the binary's control API and its bad-input handling.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The running binary; killed on drop.
struct Server {
    child: Child,
    kubeconfig: PathBuf,
    addr: String,
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-sim"))
        .args([
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--node",
            "n1:1",
            "--no-schemas",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("unexpected banner {first:?}"))
        .to_string();
    Server {
        child,
        kubeconfig,
        addr,
        dir,
    }
}

impl Server {
    /// Runs kubectl; returns stdout, failing the test with stderr when kubectl fails.
    fn kubectl(&self, args: &[&str]) -> String {
        let output = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .args(args)
            .output()
            .expect("kubectl must be installed on PATH for these tests");
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(
            output.status.success(),
            "kubectl {args:?} failed: {}{stdout}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// POSTs JSON to the control API; returns the status line.
    fn control(&self, path: &str, body: &str) -> String {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        write!(stream, "POST {path} HTTP/1.1\r\nHost: sim\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response.lines().next().unwrap_or_default().to_string()
    }

    fn wait_for(&self, args: &[&str], want: &str) -> String {
        for _ in 0..200 {
            let out = self.kubectl(args);
            if out.contains(want) {
                return out;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("kubectl {args:?} never printed {want:?}");
    }
}

fn path_arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn kubectl_apply_get_describe_logs_delete_against_the_binary() {
    let server = start();
    let pod = server.write("pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: trainer\n  labels: {app: train}\nspec:\n  containers:\n  - name: main\n    image: busybox:1\n    resources: {limits: {nvidia.com/gpu: 1}}\n");
    assert!(server
        .kubectl(&["apply", "-f", path_arg(&pod)])
        .contains("pod/trainer created"));
    let edited = server.write(
        "pod.yaml",
        &std::fs::read_to_string(&pod)
            .unwrap()
            .replace("busybox:1", "busybox:2"),
    );
    assert!(server
        .kubectl(&["apply", "-f", path_arg(&edited)])
        .contains("pod/trainer configured"));
    let json = server.wait_for(&["get", "pods", "-o", "json"], "\"Running\"");
    let list: serde_json::Value = serde_json::from_str(&json).unwrap();
    let item = &list["items"][0];
    assert_eq!(
        item["spec"]["containers"][0]["image"], "busybox:2",
        "the second apply patched the image"
    );
    assert_eq!(item["spec"]["nodeName"], "n1");
    assert!(
        item["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string()
    );

    let described = server.kubectl(&["describe", "pod", "trainer"]);
    for expected in [
        "Name:",
        "trainer",
        "Node:",
        "n1",
        "Status:",
        "Running",
        "nvidia.com/gpu:  1",
    ] {
        assert!(
            described.contains(expected),
            "describe lacks {expected:?}:\n{described}"
        );
    }
    assert!(server
        .control(
            "/kube-sim/v1/namespaces/default/pods/trainer/log",
            r#"{"lines": ["step 1", "step 2"]}"#
        )
        .contains("204"));
    assert_eq!(server.kubectl(&["logs", "trainer"]), "step 1\nstep 2\n");
    assert!(server
        .control(
            "/kube-sim/v1/namespaces/default/pods/trainer/finish",
            r#"{"exitCode": 0}"#
        )
        .contains("204"));
    assert!(server
        .kubectl(&["get", "pod", "trainer", "-o", "jsonpath={.status.phase}"])
        .contains("Succeeded"));
    assert!(server
        .kubectl(&["delete", "pod", "trainer"])
        .contains("pod \"trainer\" deleted"));
    assert!(!server
        .kubectl(&["get", "pods", "-o", "name"])
        .contains("trainer"));
}

#[test]
fn kubectl_serves_a_crd_plural_once_the_crd_is_applied() {
    let server = start();
    let crd = server.write("crd.yaml", "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.example.com}\nspec:\n  group: example.com\n  scope: Namespaced\n  names: {plural: widgets, singular: widget, kind: Widget}\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n        type: object\n        properties:\n          spec: {type: object, properties: {size: {type: integer}}}\n");
    server.kubectl(&["apply", "-f", path_arg(&crd)]);
    let cr = server.write(
        "w.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: 3}\n",
    );
    assert!(server
        .kubectl(&["apply", "-f", path_arg(&cr)])
        .contains("widget.example.com/w1 created"));
    assert!(server.kubectl(&["get", "widgets"]).contains("w1"));
    let bad = server.write(
        "bad.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w2}\nspec: {size: big}\n",
    );
    let output = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&server.kubeconfig)
        .args(["apply", "-f", path_arg(&bad)])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("is invalid") && stderr.contains("spec.size"),
        "{stderr}"
    );
}

#[test]
fn the_binary_rejects_a_bad_node_flag_with_a_clear_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_kube-sim"))
        .args(["--node", "n1:many", "--kubeconfig", "/nonexistent/kc"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--node n1:many") && stderr.contains("NAME[:GPUS]"),
        "{stderr}"
    );
}
