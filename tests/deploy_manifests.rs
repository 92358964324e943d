//! The container and deployment files agree with knockoff-serve: `Dockerfile`,
//! `deploy/kserve/inferenceservice.yaml` and `deploy/k8s/*.yaml` parse; every environment
//! variable they set is one the server reads, and their values pass the server's own flag
//! parsing and configuration check; the container port is the port the server listens on;
//! the probes' paths answer on the real router; the grace period covers the shutdown timeout;
//! the store lives in the mounted volume; the Kubernetes objects point at each other.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use clap::{CommandFactory, Parser};
use knockoff::http::{router, AppState, Cli, ServerConfig};
use knockoff::model::Model;
use serde_norway::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tower::ServiceExt;

/// Variables knockoff-serve reads besides its flags' (`RUST_LOG`: log level, see
/// `telemetry.rs`; `RAYON_NUM_THREADS`: worker threads, see `threads.rs`).
const OTHER_ENV: [&str; 2] = ["RUST_LOG", "RAYON_NUM_THREADS"];

/// Seconds past the shutdown timeout a pod gets before it is killed: the server's own
/// runtime shutdown and process exit after draining.
const GRACE_MARGIN_SECS: u64 = 5;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn text<'a>(value: &'a Value, what: &str) -> &'a str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not text: {value:?}"))
}

/// Environment variable → flag (`--long`) of knockoff-serve.
fn server_flags() -> BTreeMap<String, String> {
    Cli::command()
        .get_arguments()
        .filter_map(|arg| {
            let env = arg.get_env()?.to_str()?.to_string();
            Some((env, format!("--{}", arg.get_long()?)))
        })
        .collect()
}

/// The configuration knockoff-serve would build from `env` (flag variables only), checked
/// as the server checks it at start-up.
fn server_config(env: &BTreeMap<String, String>, file: &str) -> ServerConfig {
    let flags = server_flags();
    let mut args = vec!["knockoff-serve".to_string()];
    for (name, value) in env {
        if let Some(flag) = flags.get(name) {
            args.push(flag.clone());
            args.push(value.clone());
        }
    }
    Cli::try_parse_from(&args)
        .unwrap_or_else(|e| panic!("{file}: knockoff-serve refuses {args:?}: {e}"))
        .into_config()
        .unwrap_or_else(|e| panic!("{file}: invalid configuration: {e}"))
}

/// What a pod spec says about the knockoff container.
struct Pod {
    file: &'static str,
    /// Literal values; variables from secrets are checked by name only.
    env: BTreeMap<String, String>,
    env_names: Vec<String>,
    port: u16,
    port_names: BTreeMap<String, u16>,
    liveness: (String, u16),
    readiness: (String, u16),
    grace_secs: u64,
    mounts: Vec<String>,
}

fn pod(file: &'static str, spec: &Value) -> Pod {
    let containers = spec["containers"].as_sequence().expect("containers");
    assert_eq!(containers.len(), 1, "{file}: one container");
    let container = &containers[0];
    let mut env = BTreeMap::new();
    let mut env_names = Vec::new();
    for var in container["env"].as_sequence().expect("env") {
        let name = text(&var["name"], "env name").to_string();
        if let Some(value) = var["value"].as_str() {
            env.insert(name.clone(), value.to_string());
        } else {
            assert!(var["valueFrom"].is_mapping(), "{file}: {name} has no value");
        }
        env_names.push(name);
    }
    let ports = container["ports"].as_sequence().expect("ports");
    assert_eq!(ports.len(), 1, "{file}: one port");
    let port = ports[0]["containerPort"].as_u64().expect("containerPort") as u16;
    let port_names: BTreeMap<String, u16> = ports
        .iter()
        .filter_map(|p| Some((p["name"].as_str()?.to_string(), port)))
        .collect();
    let probe = |name: &str| {
        let get = &container[name]["httpGet"];
        let port = match &get["port"] {
            Value::Number(n) => n.as_u64().expect("port number") as u16,
            Value::String(named) => *port_names
                .get(named)
                .unwrap_or_else(|| panic!("{file}: {name} names no port `{named}`")),
            other => panic!("{file}: {name} port {other:?}"),
        };
        (text(&get["path"], name).to_string(), port)
    };
    let mounts = container["volumeMounts"]
        .as_sequence()
        .expect("volumeMounts")
        .iter()
        .map(|m| text(&m["mountPath"], "mountPath").to_string())
        .collect();
    Pod {
        file,
        liveness: probe("livenessProbe"),
        readiness: probe("readinessProbe"),
        grace_secs: spec["terminationGracePeriodSeconds"]
            .as_u64()
            .unwrap_or_else(|| panic!("{file}: terminationGracePeriodSeconds")),
        env,
        env_names,
        port,
        port_names,
        mounts,
    }
}

fn pods() -> Vec<Pod> {
    let kserve = yaml("deploy/kserve/inferenceservice.yaml");
    assert_eq!(kserve["kind"], "InferenceService");
    let deployment = yaml("deploy/k8s/deployment.yaml");
    assert_eq!(deployment["kind"], "Deployment");
    vec![
        pod(
            "deploy/kserve/inferenceservice.yaml",
            &kserve["spec"]["predictor"],
        ),
        pod(
            "deploy/k8s/deployment.yaml",
            &deployment["spec"]["template"]["spec"],
        ),
    ]
}

#[test]
fn every_variable_is_one_the_server_reads_and_the_values_are_valid() {
    let flags = server_flags();
    assert!(flags.contains_key("KNOCKOFF_ADDR"), "{flags:?}");
    for pod in pods() {
        for name in &pod.env_names {
            assert!(
                flags.contains_key(name) || OTHER_ENV.contains(&name.as_str()),
                "{}: knockoff-serve does not read {name}",
                pod.file
            );
        }
        let config = server_config(&pod.env, pod.file);
        assert!(
            config.addr.ip().is_unspecified(),
            "{}: must listen on all interfaces, not {}",
            pod.file,
            config.addr
        );
        assert_eq!(config.addr.port(), pod.port, "{}: container port", pod.file);
        let store = config.store_path.expect("a store path");
        let store_dir = store.parent().expect("store directory");
        assert!(
            pod.mounts.iter().any(|m| Path::new(m) == store_dir),
            "{}: the store {} is not in a mounted volume {:?}",
            pod.file,
            store.display(),
            pod.mounts
        );
    }
}

#[test]
fn the_grace_period_covers_the_shutdown_timeout() {
    for pod in pods() {
        let timeout = server_config(&pod.env, pod.file).shutdown_timeout.as_secs();
        assert!(
            pod.grace_secs >= timeout + GRACE_MARGIN_SECS,
            "{}: terminationGracePeriodSeconds {} < shutdown timeout {timeout} + {GRACE_MARGIN_SECS}",
            pod.file,
            pod.grace_secs
        );
    }
}

#[tokio::test]
async fn the_probes_answer_on_the_servers_router() {
    let dir = common::tiny_model_dir();
    let model = Model::load(dir.path()).unwrap();
    let app = router(AppState::new(ServerConfig::new(dir.path()), model).unwrap());
    for pod in pods() {
        assert_eq!(pod.liveness.0, "/v2/health/live", "{}", pod.file);
        assert_eq!(pod.readiness.0, "/v2/health/ready", "{}", pod.file);
        for (path, port) in [&pod.liveness, &pod.readiness] {
            assert_eq!(*port, pod.port, "{}: probe {path} port", pod.file);
            let request = Request::get(path.as_str()).body(Body::empty()).unwrap();
            let status = app.clone().oneshot(request).await.unwrap().status();
            assert_eq!(status, StatusCode::OK, "{}: {path}", pod.file);
        }
    }
}

#[test]
fn the_kubernetes_objects_point_at_each_other() {
    let deployment = yaml("deploy/k8s/deployment.yaml");
    let service = yaml("deploy/k8s/service.yaml");
    let hpa = yaml("deploy/k8s/hpa.yaml");
    let pvc = yaml("deploy/k8s/pvc.yaml");
    let name = text(&deployment["metadata"]["name"], "deployment name");
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    assert_eq!(&deployment["spec"]["selector"]["matchLabels"], labels);
    assert_eq!(
        &service["spec"]["selector"], labels,
        "service selects the pods"
    );

    let pod = pod(
        "deploy/k8s/deployment.yaml",
        &deployment["spec"]["template"]["spec"],
    );
    let target = &service["spec"]["ports"][0]["targetPort"];
    let target = match target {
        Value::Number(n) => n.as_u64().unwrap() as u16,
        Value::String(named) => pod.port_names[named.as_str()],
        other => panic!("targetPort {other:?}"),
    };
    assert_eq!(target, pod.port, "service targets the container port");

    assert_eq!(hpa["kind"], "HorizontalPodAutoscaler");
    assert_eq!(hpa["spec"]["scaleTargetRef"]["kind"], "Deployment");
    assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], name);
    assert!(hpa["spec"]["minReplicas"].as_u64() <= hpa["spec"]["maxReplicas"].as_u64());

    assert_eq!(pvc["kind"], "PersistentVolumeClaim");
    let volumes = deployment["spec"]["template"]["spec"]["volumes"]
        .as_sequence()
        .unwrap();
    assert!(
        volumes
            .iter()
            .any(|v| v["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]),
        "the deployment mounts the store's claim"
    );
}

#[test]
fn kserve_autoscales_on_concurrency() {
    let service = yaml("deploy/kserve/inferenceservice.yaml");
    let predictor = &service["spec"]["predictor"];
    assert_eq!(predictor["scaleMetric"], "concurrency");
    assert!(predictor["scaleTarget"].as_u64().unwrap_or(0) > 0);
    assert!(predictor["minReplicas"].as_u64() <= predictor["maxReplicas"].as_u64());
    let container = &predictor["containers"][0];
    assert_eq!(container["name"], "kserve-container");
    for kind in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(
                container["resources"][kind][resource].is_string(),
                "resources.{kind}.{resource}"
            );
        }
    }
}

/// `KEY=VALUE` pairs of the Dockerfile's `ENV` instructions (with `\` continuations).
fn dockerfile() -> (BTreeMap<String, String>, Vec<(String, String)>) {
    let text = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let joined = text.replace("\\\n", " ");
    let mut env = BTreeMap::new();
    let mut instructions = Vec::new();
    for line in joined.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (instruction, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = rest.trim().to_string();
        if instruction == "ENV" {
            for pair in rest.split_whitespace() {
                let (key, value) = pair.split_once('=').expect("ENV KEY=VALUE");
                env.insert(key.to_string(), value.to_string());
            }
        }
        instructions.push((instruction.to_string(), rest));
    }
    (env, instructions)
}

#[test]
fn the_image_runs_the_server_as_the_manifests_expect() {
    let (env, instructions) = dockerfile();
    let flags = server_flags();
    for name in env.keys() {
        assert!(
            flags.contains_key(name),
            "Dockerfile: knockoff-serve does not read {name}"
        );
    }
    let config = server_config(&env, "Dockerfile");
    let last = |name: &str| {
        instructions
            .iter()
            .rev()
            .find(|(i, _)| i == name)
            .map(|(_, rest)| rest.clone())
            .unwrap_or_else(|| panic!("Dockerfile: no {name}"))
    };
    assert!(config.addr.ip().is_unspecified(), "{}", config.addr);
    assert_eq!(last("EXPOSE"), config.addr.port().to_string());
    let user = last("USER");
    assert!(user != "root" && user != "0", "the image runs as root");
    let store = config.store_path.clone().unwrap();
    assert_eq!(Path::new(&last("VOLUME")), store.parent().unwrap());
    // The shipped model is copied to where KNOCKOFF_MODEL points.
    let model_copy = format!("models/default {}", config.model_path.display());
    assert!(
        instructions
            .iter()
            .any(|(i, rest)| i == "COPY" && *rest == model_copy),
        "Dockerfile: no `COPY {model_copy}`"
    );
    assert!(root().join("models/default/config.json").exists());
    // The multi-stage build: a builder stage, and a runtime stage that is not the Rust image.
    let froms: Vec<&String> = instructions
        .iter()
        .filter(|(i, _)| i == "FROM")
        .map(|(_, rest)| rest)
        .collect();
    assert_eq!(froms.len(), 2, "{froms:?}");
    assert!(froms[0].contains("/rust:") && froms[0].ends_with("AS builder"));
    assert!(froms[1].ends_with("-slim"), "slim runtime: {}", froms[1]);

    // The manifests run this image with the same model and store.
    for pod in pods() {
        let deployed = server_config(&pod.env, pod.file);
        assert_eq!(deployed.model_path, config.model_path, "{}", pod.file);
        assert_eq!(deployed.store_path, config.store_path, "{}", pod.file);
        assert_eq!(deployed.addr, config.addr, "{}", pod.file);
    }
}
