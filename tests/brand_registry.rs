//! The brand registry through the real binaries and a store file on disk: registration and
//! tokens over a socket, a restart on the same store, durability across `kill -9`, and
//! `knockoff-brands import`/`export`.

mod common;

use common::server::{start, Running, START_TIMEOUT};
use knockoff::store::Store;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const TOKEN: &str = "brand-registry-admin-token-7";

fn entry() -> String {
    json!({"aliases": ["维丹妮"], "products": [
        {"name": "Aurora tote", "category": "bags", "list_price": 420.0, "currency": "EUR"},
        {"name": "Lumen wallet", "category": "bags", "list_price": 180.0, "currency": "EUR"},
        {"name": "Halo scarf", "category": "accessories", "list_price": 95.0, "currency": "EUR"}]})
    .to_string()
}

fn start_on(model: &Path, store: &Path, admin: bool) -> Running {
    let store = store.to_str().expect("UTF-8 temp path");
    let env: &[(&str, &str)] = if admin {
        &[("KNOCKOFF_ADMIN_TOKEN", TOKEN)]
    } else {
        &[]
    };
    let server = start(model, &["--store", store], env);
    server.wait_ready();
    server
}

/// The tiny model, a temporary directory and a store path in it.
fn fresh() -> (tempfile::TempDir, tempfile::TempDir, PathBuf) {
    let model = common::tiny_model_dir();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("registry.db");
    (model, dir, store)
}

#[test]
fn brands_register_over_http_and_survive_a_restart() {
    let (model, dir, store) = fresh();
    let mut server = start_on(model.path(), &store, true);

    let (status, created) = server.call("PUT", "/v1/brands/Verdanne", Some(TOKEN), &entry());
    assert_eq!(status, 201, "{created}");
    let brand_token = created["token"]
        .as_str()
        .expect("a token for a new brand")
        .to_string();
    let (status, own) = server.call("GET", "/v1/brands/verdanne", Some(&brand_token), "");
    assert_eq!(status, 200, "{own}");
    assert_eq!(own["products"].as_array().unwrap().len(), 3);
    let (status, replaced) =
        server.call("PUT", "/v1/brands/VERDANNE", Some(&brand_token), &entry());
    assert_eq!((status, replaced.get("token")), (200, None), "{replaced}");
    assert_eq!(replaced["name"], "VERDANNE");

    let (status, _) = server.call(
        "PUT",
        "/v1/brands/Other",
        Some(TOKEN),
        &entry().replace("维丹妮", "OTR"),
    );
    assert_eq!(status, 201);
    let (status, body) = server.call("GET", "/v1/brands/Other", Some(&brand_token), "");
    assert_eq!(status, 403, "{body}");
    let (status, body) = server.call("GET", "/v1/brands/Other", Some("wrong-token"), "");
    assert_eq!(status, 401, "{body}");
    let (status, body) = server.call("GET", "/v1/brands/Other", None, "");
    assert_eq!(status, 401, "{body}");

    // A refused entry names the field and leaves the store as it was.
    let (_, before) = server.call("GET", "/v1/brands", Some(TOKEN), "");
    let taken = entry().replace("维丹妮", "ver danne");
    let (status, body) = server.call("PUT", "/v1/brands/Third", Some(TOKEN), &taken);
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("aliases[0]")),
        "{body}"
    );
    let negative = entry().replace("420.0", "-420.0");
    let (status, body) = server.call("PUT", "/v1/brands/Third", Some(TOKEN), &negative);
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("products[0].list_price")),
        "{body}"
    );
    let (_, after) = server.call("GET", "/v1/brands", Some(TOKEN), "");
    assert_eq!(before, after);

    server.signal(libc::SIGTERM);
    assert_eq!(server.wait_exit(Duration::from_secs(30)).code(), Some(0));

    // Restarted on the same store (and without an admin token): the brand and its token
    // are still there; writes are off.
    let server = start_on(model.path(), &store, false);
    let (status, again) = server.call("GET", "/v1/brands/Verdanne", Some(&brand_token), "");
    assert_eq!((status, &again), (200, &replaced), "{again}");
    let (status, body) = server.call("PUT", "/v1/brands/Verdanne", Some(&brand_token), &entry());
    assert_eq!(status, 403, "{body}");
    let (status, history) =
        server.call("GET", "/v1/brands/Verdanne/history", Some(&brand_token), "");
    assert_eq!(status, 200, "{history}");
    let actions: Vec<&str> = history["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["created", "replaced"]);

    // Brands imported beside the running server are scored with after SIGHUP.
    let mut server = server;
    let lines = dir.path().join("more.jsonl");
    std::fs::write(
        &lines,
        format!(
            "{}\n",
            entry()
                .replacen('{', "{\"name\": \"Nova\", ", 1)
                .replace("维丹妮", "NVA")
        ),
    )
    .unwrap();
    let import = brands_bin(&[
        "import",
        "--store",
        store.to_str().unwrap(),
        "--model",
        model.path().to_str().unwrap(),
        lines.to_str().unwrap(),
    ]);
    assert!(import.status.success(), "{}", text(&import.stderr));
    server.signal(libc::SIGHUP);
    let reloaded = server.wait_for_log("brand registry reloaded", START_TIMEOUT);
    assert_eq!(reloaded["fields"]["brands"], 3, "{reloaded}");
}

#[test]
fn an_acknowledged_write_survives_kill_9() {
    let (model, _dir, store) = fresh();
    let mut server = start_on(model.path(), &store, true);
    let (status, body) = server.call("PUT", "/v1/brands/Verdanne", Some(TOKEN), &entry());
    assert_eq!(status, 201, "{body}");
    server.signal(libc::SIGKILL);
    assert_eq!(
        server.wait_exit(Duration::from_secs(30)).code(),
        None,
        "killed by a signal"
    );

    let server = start_on(model.path(), &store, true);
    let (status, body) = server.call("GET", "/v1/brands/Verdanne", Some(TOKEN), "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["aliases"], json!(["维丹妮"]));
}

fn brands_bin(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_knockoff-brands"));
    for (key, _) in std::env::vars() {
        if key.starts_with("KNOCKOFF_") {
            command.env_remove(key);
        }
    }
    command
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("running knockoff-brands")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn import_reports_bad_lines_and_export_round_trips() {
    let model = common::tiny_model_dir();
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let lines = [
        json!({"name": "Verdanne", "aliases": ["维丹妮"], "products": [
            {"name": "Aurora tote", "category": "bags", "list_price": 420.5, "currency": "eur"}]}),
        json!({"name": "Broken", "products": [{"name": "x", "list_price": 3, "currency": "XYZ"}]}),
        json!({"name": "Lumen", "products": [{"name": "wallet", "list_price": 90, "currency": "USD"}]}),
    ];
    let file: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(path("in.jsonl"), file).unwrap();
    let model_dir = model.path().to_str().unwrap();

    let first = brands_bin(&[
        "import",
        "--store",
        &path("a.db"),
        "--model",
        model_dir,
        &path("in.jsonl"),
    ]);
    assert_eq!(first.status.code(), Some(1), "{}", text(&first.stderr));
    let stderr = text(&first.stderr);
    assert!(
        stderr.contains("line 2: products[0].currency: unknown currency `XYZ`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("imported 2 brands (2 created, 0 replaced); 1 lines failed"),
        "{stderr}"
    );
    let tokens: Vec<Value> = text(&first.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(tokens.len(), 2, "one token per new brand");
    let store = Store::open(Path::new(&path("a.db"))).unwrap();
    assert_eq!(store.brand_history("Lumen").unwrap()[0].who, "import");
    for shown in &tokens {
        let owner = store
            .brand_of_token(shown["token"].as_str().unwrap())
            .unwrap();
        assert_eq!(owner.as_deref(), shown["name"].as_str(), "{shown}");
    }
    drop(store);

    let exported = brands_bin(&[
        "export",
        "--store",
        &path("a.db"),
        "--out",
        &path("out.jsonl"),
    ]);
    assert!(exported.status.success(), "{}", text(&exported.stderr));
    let again = brands_bin(&[
        "import",
        "--store",
        &path("b.db"),
        "--model",
        model_dir,
        &path("out.jsonl"),
    ]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    let to_stdout = brands_bin(&["export", "--store", &path("b.db")]);
    assert!(to_stdout.status.success(), "{}", text(&to_stdout.stderr));
    let first_export = std::fs::read_to_string(path("out.jsonl")).unwrap();
    assert_eq!(text(&to_stdout.stdout), first_export);
    assert!(
        first_export.contains("\"currency\":\"EUR\""),
        "{first_export}"
    );

    let missing = brands_bin(&[
        "import",
        "--store",
        &path("c.db"),
        "--model",
        model_dir,
        &path("nope.jsonl"),
    ]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("nope.jsonl"));
}
