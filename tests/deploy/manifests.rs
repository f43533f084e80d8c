//! The manifests: rendered runs against golden files, every kustomization
//! in deploy/ built by kubectl and checked against the Kubernetes schemas,
//! and the GitOps templates kept equal to the overlays they come from.

use std::path::Path;

use medallion_deploy::layout::LAYERS;
use medallion_deploy::render::{render, to_multi_document_yaml};
use medallion_deploy::schema::{check_object, check_yaml_documents};
use medallion_deploy::template::Templates;

use crate::support::*;

/// Compares with a golden file; `UPDATE_GOLDEN=1` rewrites it.
fn golden(name: &str, actual: &str) {
    let path = repo_root().join("tests/deploy/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} is missing; run with UPDATE_GOLDEN=1", path.display()));
    assert!(
        expected == actual,
        "{name} differs from the golden file; if the change is intended, run with UPDATE_GOLDEN=1 and review the diff.\n--- actual:\n{actual}"
    );
}

#[test]
fn rendered_reference_run_matches_the_golden_file() {
    let mut run = reference_run("2026-11-29");
    run.input = Some("s3://raw/2026-11-29".into());
    let jobs = render(&run, &Templates::embedded()).unwrap();
    let text = to_multi_document_yaml(&jobs).unwrap();
    assert_eq!(check_yaml_documents(&text).unwrap(), 7);
    golden("reference-run.yaml", &text);
}

#[test]
fn rendered_jobs_carry_waves_labels_and_no_inline_secrets() {
    let jobs = render(
        &reference_run("2026-11-29T06:00:00Z"),
        &Templates::embedded(),
    )
    .unwrap();
    let waves: Vec<(&str, String)> = jobs
        .iter()
        .map(|j| {
            let a = j.job.metadata.annotations.as_ref().unwrap();
            (j.name(), a["argocd.argoproj.io/sync-wave"].clone())
        })
        .collect();
    // silver_orders waits for silver_customers; dq_report for silver_orders.
    let wave_of = |prefix: &str| {
        waves
            .iter()
            .find(|(n, _)| n.starts_with(prefix))
            .map(|(_, w)| w.as_str())
            .unwrap()
    };
    assert_eq!(wave_of("bronze-orders"), "0");
    assert_eq!(wave_of("silver-customers"), "1");
    assert_eq!(wave_of("silver-orders"), "2");
    assert_eq!(wave_of("silver-dq-report"), "3");
    assert_eq!(wave_of("gold-sales-dashboard"), "3");

    for job in &jobs {
        let labels = job.job.metadata.labels.as_ref().unwrap();
        for key in [
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/component",
            "app.kubernetes.io/part-of",
            "app.kubernetes.io/managed-by",
            "medallion/layer",
            "medallion/job-id",
        ] {
            assert!(labels.contains_key(key), "{} lacks label {key}", job.name());
        }
        // The exact id with its colons is in the annotation; the label is cleaned.
        assert_eq!(
            job.job.metadata.annotations.as_ref().unwrap()["medallion/job-id"],
            "2026-11-29T06:00:00Z"
        );
        let pod = job
            .job
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap();
        assert_eq!(
            pod.node_selector.as_ref().unwrap()["workload"],
            "data-processing"
        );
        let toleration = &pod.tolerations.as_ref().unwrap()[0];
        assert_eq!(toleration.key.as_deref(), Some("workload"));
        assert_eq!(toleration.value.as_deref(), Some("data-processing"));
        let container = &pod.containers[0];
        assert_eq!(
            container.args.as_ref().unwrap()[..2],
            [
                "run".to_string(),
                format!("/pipelines/reference/{}.yaml", spec_file(job.name()))
            ]
        );
        for env in container.env.as_ref().unwrap() {
            let secret_like = ["KEY", "SECRET", "CREDENTIAL", "TOKEN", "PASSWORD"]
                .iter()
                .any(|word| env.name.contains(word));
            if secret_like {
                assert!(env.value.is_none(), "{} has an inline value", env.name);
                assert!(
                    env.value_from
                        .as_ref()
                        .and_then(|v| v.secret_key_ref.as_ref())
                        .is_some(),
                    "{} does not come from a Secret",
                    env.name
                );
            }
        }
        let security = container.security_context.as_ref().unwrap();
        assert_eq!(security.read_only_root_filesystem, Some(true));
        assert_eq!(security.allow_privilege_escalation, Some(false));
        let spec = job.job.spec.as_ref().unwrap();
        assert!(spec.backoff_limit.is_some() && spec.active_deadline_seconds.is_some());
        assert!(
            spec.ttl_seconds_after_finished.unwrap() > 7 * 24 * 3600,
            "TTL must outlive prune's 7 days"
        );
    }
}

#[test]
fn a_sharded_bronze_job_renders_as_an_indexed_job_whose_failed_index_retries_alone() {
    let mut run = reference_run("2026-12-02");
    let bronze = run
        .jobs
        .iter_mut()
        .find(|j| j.name == "bronze_orders")
        .unwrap();
    bronze.shards = Some(4);
    let jobs = render(&run, &Templates::embedded()).unwrap();
    let text = to_multi_document_yaml(&jobs).unwrap();
    assert_eq!(check_yaml_documents(&text).unwrap(), 7);
    for job in &jobs {
        let spec = job.job.spec.as_ref().unwrap();
        if job.name().starts_with("bronze-orders") {
            assert_eq!(spec.completion_mode.as_deref(), Some("Indexed"));
            assert_eq!((spec.completions, spec.parallelism), (Some(4), Some(4)));
            assert_eq!(spec.backoff_limit_per_index, Some(2));
            assert_eq!(
                spec.backoff_limit, None,
                "a Job-wide limit would pool the indexes' failures"
            );
            // Each pod finds its shard in JOB_COMPLETION_INDEX: one argument list for all.
            let args = spec.template.spec.as_ref().unwrap().containers[0]
                .args
                .as_ref()
                .unwrap();
            assert!(!args.iter().any(|a| a.contains("--shard")), "{args:?}");
        } else {
            assert_eq!(spec.completion_mode, None, "{}", job.name());
            assert!(spec.backoff_limit.is_some());
        }
    }
}

fn spec_file(job_name: &str) -> String {
    // bronze-customers-2026-... → bronze/customers
    let (layer, rest) = job_name.split_once('-').unwrap();
    let table = rest.split("-2026").next().unwrap().replace('-', "_");
    format!("{layer}/{table}")
}

#[test]
fn every_kustomization_in_deploy_builds_and_matches_the_schemas() {
    let deploy = deploy_dir();
    let mut dirs = vec![
        deploy.join("config"),
        deploy.join("job/base"),
        deploy.join("gitops/jobs"),
        deploy.join("servers"),
        deploy.join("workers"),
    ];
    for layer in LAYERS {
        dirs.push(deploy.join("job/overlays").join(layer));
    }
    // Every kustomization in deploy/ is in the list.
    let mut found = Vec::new();
    collect_kustomizations(&deploy, &mut found);
    for dir in &found {
        // Its custom resources (Prometheus Operator) have no schema here:
        // tests/deploy/monitoring.rs checks what that kustomization builds.
        assert!(
            dirs.contains(dir)
                || dir.starts_with(deploy.join("gitops/jobs"))
                || *dir == deploy.join("monitoring"),
            "{} is not built by this test",
            dir.display()
        );
    }
    for dir in &dirs {
        let output = kustomize(dir);
        check_yaml_documents(&output).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    }
}

fn collect_kustomizations(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() && !path.ends_with("src") {
            collect_kustomizations(&path, found);
        } else if path.file_name().is_some_and(|n| n == "kustomization.yaml") {
            found.push(dir.to_path_buf());
        }
    }
}

#[test]
fn gitops_templates_are_the_overlays_output() {
    for layer in LAYERS {
        let built = documents(&kustomize(&deploy_dir().join("job/overlays").join(layer)));
        let template_path = deploy_dir().join(format!("gitops/jobs/{layer}-layer/template.yaml"));
        let template = documents(&std::fs::read_to_string(&template_path).unwrap());
        assert_eq!(
            built,
            template,
            "{} is out of date: regenerate it with `kubectl kustomize deploy/job/overlays/{layer}`",
            template_path.display()
        );
        check_object(&template[0]).unwrap();
        assert_eq!(template[0]["metadata"]["labels"]["medallion/layer"], layer);
    }
}

#[test]
fn the_gitops_skeleton_is_what_submit_bootstraps() {
    let dir = tempfile::tempdir().unwrap();
    Templates::embedded().bootstrap(dir.path(), &[]).unwrap();
    let skeleton = deploy_dir().join("gitops");
    for relative in [
        "jobs/kustomization.yaml",
        "jobs/bronze-layer/kustomization.yaml",
        "jobs/silver-layer/kustomization.yaml",
        "jobs/gold-layer/kustomization.yaml",
        "jobs/gold-layer/template.yaml",
        "jobs/bronze-layer/jobs/.gitkeep",
    ] {
        assert_eq!(
            std::fs::read_to_string(dir.path().join(relative)).unwrap(),
            std::fs::read_to_string(skeleton.join(relative)).unwrap(),
            "deploy/gitops/{relative} differs from what submit writes into a new repository"
        );
    }
}

#[test]
fn config_and_argocd_manifests_hold_no_secrets() {
    for relative in [
        "config/medallion.yaml",
        "argocd/applications.yaml",
        "servers/serve.yaml",
        "servers/listen.yaml",
        "workers/workers.yaml",
    ] {
        let text = std::fs::read_to_string(deploy_dir().join(relative)).unwrap();
        for word in [
            "secret_access_key:",
            "access_key_id:",
            "credential:",
            "password",
            "token:",
        ] {
            assert!(!text.contains(word), "deploy/{relative} contains `{word}`");
        }
    }
    let apps =
        documents(&std::fs::read_to_string(deploy_dir().join("argocd/applications.yaml")).unwrap());
    assert_eq!(apps.len(), 4);
    for app in &apps {
        let sync = &app["spec"]["syncPolicy"];
        assert_eq!(sync["automated"]["prune"], true);
        assert_eq!(sync["automated"]["selfHeal"], true);
        assert!(sync["retry"]["backoff"]["duration"].is_string());
        assert!(
            sync["syncOptions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|o| o == "CreateNamespace=true")
        );
    }
}

#[test]
fn the_configured_workers_are_the_worker_pods_and_job_pods_may_reach_them() {
    let workers = documents(&kustomize(&deploy_dir().join("workers")));
    let of_kind = |kind: &str| {
        workers
            .iter()
            .find(|d| d["kind"] == kind)
            .unwrap_or_else(|| panic!("deploy/workers has no {kind}"))
    };
    let (service, set) = (of_kind("Service"), of_kind("StatefulSet"));
    assert_eq!(
        service["spec"]["clusterIP"], "None",
        "pod names need a headless Service"
    );
    let service_name = service["metadata"]["name"].as_str().unwrap();
    assert_eq!(set["spec"]["serviceName"], service_name);
    let port = service["spec"]["ports"][0]["port"].as_u64().unwrap();

    // Every pod of the StatefulSet, and only those, in the coordinators' config.
    let config: serde_json::Value = serde_yaml::from_str(
        &std::fs::read_to_string(deploy_dir().join("config/medallion.yaml")).unwrap(),
    )
    .unwrap();
    let set_name = set["metadata"]["name"].as_str().unwrap();
    let replicas = set["spec"]["replicas"].as_u64().unwrap();
    let expected: Vec<String> = (0..replicas)
        .map(|i| format!("http://{set_name}-{i}.{service_name}:{port}"))
        .collect();
    let configured: Vec<String> = config["execution"]["workers"]
        .as_array()
        .expect("execution.workers in deploy/config/medallion.yaml")
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect();
    assert_eq!(configured, expected);

    // Job pods may open the port; the workers take it from jobs and each other.
    let job_policy = documents(
        &std::fs::read_to_string(deploy_dir().join("config/network-policy.yaml")).unwrap(),
    );
    let to_workers = job_policy[0]["spec"]["egress"]
        .as_array()
        .unwrap()
        .iter()
        .any(|rule| {
            rule["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "worker"
                && rule["ports"][0]["port"].as_u64() == Some(port)
        });
    assert!(to_workers, "job pods cannot reach the workers on {port}");
    let policy = of_kind("NetworkPolicy");
    let from = &policy["spec"]["ingress"][0];
    assert_eq!(from["ports"][0]["port"].as_u64(), Some(port));
    let components = &from["from"][0]["podSelector"]["matchExpressions"][0]["values"];
    assert_eq!(components, &serde_json::json!(["job", "worker"]));
}
