//! Golden tests: the seeds of this domain rendered and compared with reviewed YAML under
//! tests/golden/. `UPDATE_GOLDEN=1 cargo test -p trainctl-kube --test golden` rewrites them
//! (then review the diff by eye).

mod common;

use trainctl_kube::{render, RenderOptions, Target};

fn check(seed: &str, target: Target, golden: &str) {
    let job = common::seed(seed);
    let objects = render(
        &job,
        &RenderOptions {
            target,
            ..RenderOptions::default()
        },
    )
    .unwrap();
    let yaml = trainctl_kube::to_yaml(&objects).unwrap();
    let path = common::crate_dir().join("tests/golden").join(golden);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &yaml).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run with UPDATE_GOLDEN=1 once", path.display()));
    assert!(
        yaml == expected,
        "{golden} differs from the render of {seed}:\n--- expected\n{expected}\n--- got\n{yaml}"
    );
}

#[test]
fn a_t4_job_on_tencent_eks_with_nfs_renders_as_reviewed() {
    check("eks-t4.yaml", Target::Plain, "eks-t4.plain.yaml");
}

#[test]
fn an_eci_job_with_image_cache_and_nas_renders_as_reviewed() {
    check("eci-nas.yaml", Target::Plain, "eci-nas.plain.yaml");
}

#[test]
fn an_ack_job_with_pv_selector_and_tensorboard_renders_as_reviewed() {
    check("ack-mnist.yaml", Target::Plain, "ack-mnist.plain.yaml");
}

#[test]
fn an_ack_job_renders_as_the_reviewed_jobset() {
    check("ack-mnist.yaml", Target::Jobset, "ack-mnist.jobset.yaml");
}

#[test]
fn an_ack_job_renders_as_the_reviewed_tfjob() {
    check(
        "ack-mnist.yaml",
        Target::Kubeflow,
        "ack-mnist.kubeflow.yaml",
    );
}

#[test]
fn eci_pytorch_master_and_worker_render_as_one_reviewed_indexed_jobset_job() {
    check("eci-nas.yaml", Target::Jobset, "eci-nas.jobset.yaml");
}
