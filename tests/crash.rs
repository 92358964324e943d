//! Crashes and full disks at the worst moments of each write, through the real binaries:
//! `kill -9` of knockoff-train while it writes a model (the old model stays whole and
//! loadable, or the new one is complete), `kill -9` of knockoff-serve during a hot reload
//! (it restarts on a valid model), `kill -9` of knockoff-serve while clients post reviews
//! (every acknowledged review is in the store, which opens), and a model, a report and
//! scores written to a full filesystem (a clear error, a failed exit, nothing half-written
//! under the final name).

mod common;

use common::server::{start, START_TIMEOUT};
use knockoff::model::Model;
use serde_json::json;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "crash-test-admin-token-0123";

/// knockoff-train on the tiny fixture for one epoch, writing `out` as `name`.
fn trainer(out: &Path, name: &str) -> Command {
    let data = common::fixture("tiny-listings.csv");
    let mut command = Command::new(env!("CARGO_BIN_EXE_knockoff-train"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("KNOCKOFF_") {
            command.env_remove(key);
        }
    }
    command
        .arg("--train")
        .arg(&data)
        .arg("--valid")
        .arg(&data)
        .arg("--out")
        .arg(out)
        // A table big enough (8 MB of weights) that writing the model takes long enough
        // for a kill to land inside it.
        .args(["--name", name, "--max-epochs", "1", "--hash-bits", "18"])
        .args(["--embedding-dim", "16", "--hidden", "4"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// A directory holding the tiny model as `name`, at `parent/model`.
fn old_model(parent: &Path, name: &str) -> PathBuf {
    let source = common::tiny_model_dir_named(name, None);
    let target = parent.join("model");
    std::fs::create_dir(&target).unwrap();
    for entry in std::fs::read_dir(source.path()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), target.join(entry.file_name())).unwrap();
    }
    target
}

/// The staging directory the knockoff-train process `pid` writes into beside the model,
/// once it exists (not one a killed trainer left behind).
fn staging(parent: &Path, pid: u32) -> Option<PathBuf> {
    let prefix = format!(".knockoff-staging-{pid}-");
    std::fs::read_dir(parent)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
        })
}

/// When to kill the trainer, counted from the start of its model write.
#[derive(Debug, Clone, Copy)]
enum Moment {
    /// As soon as the staging directory appears.
    StagingCreated,
    /// Once the weights file is in the staging directory.
    WeightsWritten,
    /// Once config.json (written last) is in the staging directory: renames next.
    ConfigWritten,
    /// This long after the staging directory appeared.
    After(Duration),
}

impl Moment {
    fn reached(self, stage: &Path, since: Instant) -> bool {
        match self {
            Moment::StagingCreated => true,
            Moment::WeightsWritten => stage.join("model.safetensors").exists(),
            Moment::ConfigWritten => stage.join("config.json").exists(),
            Moment::After(d) => since.elapsed() >= d,
        }
    }
}

/// Runs the trainer into `model` and SIGKILLs it at `moment` of its model write; returns
/// whether the kill came before it exited on its own.
fn kill_trainer_at(model: &Path, moment: Moment) -> bool {
    let parent = model.parent().unwrap();
    let mut child = trainer(model, "new")
        .spawn()
        .expect("knockoff-train starts");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen: Option<(PathBuf, Instant)> = None;
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        assert!(
            Instant::now() < deadline,
            "knockoff-train never wrote a model"
        );
        if seen.is_none() {
            seen = staging(parent, child.id()).map(|s| (s, Instant::now()));
        }
        if let Some((stage, since)) = &seen {
            if moment.reached(stage, *since) || !stage.exists() {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                return true;
            }
        }
        std::thread::yield_now();
    }
}

/// The model at `path` loads and is one of `names`.
fn assert_whole(path: &Path, names: &[&str]) -> String {
    let model =
        Model::load(path).unwrap_or_else(|e| panic!("{} does not load: {e}", path.display()));
    let name = model.name().to_string();
    assert!(names.contains(&name.as_str()), "{name} not in {names:?}");
    name
}

#[test]
fn kill_9_while_training_writes_leaves_the_old_model_or_the_new_one() {
    let work = tempfile::tempdir().unwrap();
    let model = old_model(work.path(), "old");
    let moments = [
        Moment::StagingCreated,
        Moment::WeightsWritten,
        Moment::ConfigWritten,
        Moment::After(Duration::from_millis(1)),
        Moment::After(Duration::from_millis(5)),
        Moment::After(Duration::from_millis(20)),
    ];
    for moment in moments {
        let killed = kill_trainer_at(&model, moment);
        let name = assert_whole(&model, &["old", "new"]);
        eprintln!("{moment:?}: killed {killed}, model {name}");
    }
    // Left to finish, the trainer replaces the model whole.
    let output = trainer(&model, "done").output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_whole(&model, &["done"]);
    // What the killed trainers left beside the model was tidied by the last one's save.
    let left: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["model"]);
}

#[test]
fn kill_9_during_a_hot_reload_restarts_on_a_valid_model() {
    let work = tempfile::tempdir().unwrap();
    let model = old_model(work.path(), "old");
    let other = common::tiny_model_dir_named("other", None);
    let args = ["--admin-token", TOKEN];
    for round in 0..3 {
        let mut server = start(&model, &args, &[]);
        server.wait_ready();
        // A reload of the other model, killed while it loads (or just after).
        let addr = server.addr;
        let body = json!({"model": other.path()}).to_string();
        let auth = format!("Bearer {TOKEN}");
        let reload = std::thread::spawn(move || {
            common::http(
                addr,
                "POST",
                "/admin/reload",
                &[("Authorization", &auth)],
                body.as_bytes(),
            )
        });
        if round > 0 {
            // Later rounds let the trainer half-write the served directory first.
            kill_trainer_at(&model, Moment::After(Duration::from_millis(round * 2)));
        }
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        let _ = reload.join().unwrap(); // cut off or answered: either is fine
        assert_whole(&model, &["old", "new"]);
        let restarted = start(&model, &args, &[]);
        restarted.wait_ready();
        let (status, body) = restarted.post(
            "/v1/score",
            &json!({"title": "Rolex Submariner", "price": 40, "currency": "USD"}),
        );
        assert_eq!(status, 200, "{body}");
        assert!(
            ["old", "new"].contains(&body["model"]["name"].as_str().unwrap()),
            "{body}"
        );
    }
}

#[test]
fn a_model_left_aside_by_an_interrupted_save_loads_and_the_next_save_tidies_it() {
    let work = tempfile::tempdir().unwrap();
    let model = old_model(work.path(), "old");
    // A writer that could not exchange directories died between its two renames: the model
    // path missing, the previous model renamed aside under the dead writer's process id.
    let mut gone = Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    std::fs::rename(
        &model,
        work.path().join(format!(".knockoff-old-{dead}-model")),
    )
    .unwrap();
    assert_whole(&model, &["old"]);
    let mut new = common::tiny_model();
    new.config.name = "new".into();
    new.save(&model, &Default::default()).unwrap();
    assert_whole(&model, &["new"]);
    let left: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["model"]);
}

// ---------------------------------------------------------------- reviews in the store

const REVIEWER: &str = "crash-test-reviewer-token-0123";

/// Posts reviews to `addr` until the server stops answering, each with a new id
/// `{client}-{n}`, every third request a batch of three; sends the ids of each
/// acknowledged (201) request down `acked`. Returns any answer that was neither 201 nor a
/// refusal to wait (429).
fn post_reviews_until_cut(
    addr: std::net::SocketAddr,
    client: &str,
    acked: &std::sync::mpsc::Sender<Vec<String>>,
) -> Vec<String> {
    let auth = format!("Bearer {REVIEWER}");
    let mut unexpected = Vec::new();
    for n in 0.. {
        let ids: Vec<String> = (0..if n % 3 == 2 { 3 } else { 1 })
            .map(|k| format!("{client}-{n}-{k}"))
            .collect();
        let reviews: Vec<_> = ids
            .iter()
            .map(|id| {
                json!({"id": id, "label": "counterfeit", "reviewer": "kim", "listing":
                    {"title": format!("Rolex Submariner copy {id}"), "price": 40, "currency": "USD"}})
            })
            .collect();
        let body = json!({ "reviews": reviews }).to_string();
        let headers = [("Authorization", auth.as_str())];
        match common::http(addr, "POST", "/v1/reviews", &headers, body.as_bytes()) {
            Ok((201, _)) => {
                if acked.send(ids).is_err() {
                    break;
                }
            }
            Ok((429, _)) => {}
            Ok((status, text)) => unexpected.push(format!("{status}: {text}")),
            Err(_) => break, // the server was killed
        }
    }
    unexpected
}

/// The ids of every review the server at `running` exports.
fn exported_ids(running: &common::server::Running) -> std::collections::HashSet<String> {
    let auth = format!("Bearer {REVIEWER}");
    let (status, text) = common::http(
        running.addr,
        "GET",
        "/v1/reviews",
        &[("Authorization", &auth)],
        b"",
    )
    .unwrap();
    assert_eq!(status, 200, "{text}");
    text.lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            value["id"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn kill_9_while_reviews_are_posted_loses_no_acknowledged_review() {
    use rand::{Rng, SeedableRng};
    let seed: u64 = rand::random();
    eprintln!("kill points seeded with {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let model = common::tiny_model_dir();
    let work = tempfile::tempdir().unwrap();
    let store = work.path().join("reviews.db");
    let args = [
        "--store",
        store.to_str().unwrap(),
        "--reviewer-token",
        REVIEWER,
    ];
    let mut acknowledged: Vec<String> = Vec::new();
    for round in 0..4 {
        let mut server = start(model.path(), &args, &[]);
        server.wait_ready();
        // Every review acknowledged before this restart is there.
        let present = exported_ids(&server);
        let lost: Vec<_> = acknowledged
            .iter()
            .filter(|id| !present.contains(*id))
            .collect();
        assert!(
            lost.is_empty(),
            "round {round}: acknowledged, then lost: {lost:?}"
        );
        // Three clients post; the server is killed after a random number of answers.
        let kill_after = rng.random_range(0..12);
        let (sender, acks) = std::sync::mpsc::channel();
        let clients: Vec<_> = (0..3)
            .map(|c| {
                let (addr, sender) = (server.addr, sender.clone());
                std::thread::spawn(move || {
                    post_reviews_until_cut(addr, &format!("r{round}c{c}"), &sender)
                })
            })
            .collect();
        drop(sender);
        for _ in 0..kill_after {
            acknowledged.extend(
                acks.recv_timeout(START_TIMEOUT)
                    .expect("reviews are acknowledged"),
            );
        }
        server.child.kill().unwrap(); // SIGKILL, with requests in flight
        server.child.wait().unwrap();
        for client in clients {
            let unexpected = client.join().unwrap();
            assert!(unexpected.is_empty(), "{unexpected:?}");
        }
        acknowledged.extend(acks.into_iter().flatten());
        eprintln!(
            "round {round}: killed after {kill_after} answers, {} acknowledged in all",
            acknowledged.len()
        );
    }
    // The store opens outside the server too, and holds them all.
    let opened = knockoff::store::Store::open(&store).unwrap();
    assert!(opened.last_review().unwrap() >= acknowledged.len() as i64);
    drop(opened);
    let server = start(model.path(), &args, &[]);
    server.wait_ready();
    let present = exported_ids(&server);
    assert!(acknowledged.iter().all(|id| present.contains(id)));
    assert!(!acknowledged.is_empty());
}

// ---------------------------------------------------------------- full disk

/// A directory where writes fail for lack of space: a 64 KiB tmpfs filled to the brim when
/// this process may mount one (root); otherwise a plain directory, and the child's file
/// size is limited to 1 KiB instead.
struct FullDisk {
    dir: tempfile::TempDir,
    mounted: bool,
}

impl FullDisk {
    fn new() -> FullDisk {
        let dir = tempfile::tempdir().unwrap();
        let target = std::ffi::CString::new(dir.path().as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mount(2) with valid NUL-terminated strings; failure is only an error code.
        let rc = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                c"size=64k".as_ptr().cast(),
            )
        };
        if rc == 0 {
            fill(dir.path());
        }
        FullDisk {
            dir,
            mounted: rc == 0,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `command` with its writes failing: on the tmpfs for want of space, elsewhere by a
    /// 1 KiB file-size limit (with SIGXFSZ ignored, so a write fails with EFBIG instead of
    /// killing the process).
    fn run(&self, mut command: Command) -> Output {
        if !self.mounted {
            // SAFETY: only async-signal-safe calls (setrlimit, signal) between fork and exec.
            unsafe {
                command.pre_exec(|| {
                    let limit = libc::rlimit {
                        rlim_cur: 1024,
                        rlim_max: 1024,
                    };
                    if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                    Ok(())
                });
            }
        }
        command.output().unwrap()
    }

    /// Names left in the directory that do not start with a dot (what a reader would take).
    fn visible(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.path())
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        names
    }
}

/// Writes a hidden filler file into `dir` until the filesystem is full.
fn fill(dir: &Path) {
    use std::io::Write;
    let mut filler = std::fs::File::create(dir.join(".filler")).unwrap();
    let block = [0u8; 4096];
    while filler.write_all(&block).is_ok() {}
    let _ = filler.sync_all();
}

impl Drop for FullDisk {
    fn drop(&mut self) {
        if self.mounted {
            let target =
                std::ffi::CString::new(self.path().as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: umount(2) of the tmpfs this value mounted.
            unsafe { libc::umount(target.as_ptr()) };
        }
    }
}

fn assert_failed_clearly(output: &Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success(),
        "{what} succeeded on a full disk: {stderr}"
    );
    assert!(
        output.status.code().is_some(),
        "{what} died of a signal instead of failing: {:?}",
        output.status
    );
    let lower = stderr.to_lowercase();
    assert!(
        lower.contains("space") || lower.contains("too large") || lower.contains("file size"),
        "{what}: no clear error in {stderr}"
    );
    stderr
}

#[test]
fn a_model_written_to_a_full_disk_fails_clearly_and_leaves_nothing() {
    let disk = FullDisk::new();
    let output = disk.run(trainer(&disk.path().join("model"), "new"));
    assert_failed_clearly(&output, "knockoff-train");
    assert_eq!(disk.visible(), Vec::<String>::new());
}

#[test]
fn scores_and_a_report_written_to_a_full_disk_fail_clearly_and_leave_nothing() {
    let disk = FullDisk::new();
    let model = common::tiny_model_dir();
    let elsewhere = tempfile::tempdir().unwrap();
    let score = |output: &Path, report: Option<&Path>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_knockoff-score"));
        command
            .arg("--model")
            .arg(model.path())
            .arg("--input")
            .arg(common::fixture("tiny-listings.csv"))
            .arg("--output")
            .arg(output)
            .env("RUST_LOG", "warn");
        if let Some(report) = report {
            command.arg("--report").arg(report);
        }
        command
    };
    let output = disk.run(score(&disk.path().join("scores.csv"), None));
    assert_failed_clearly(&output, "knockoff-score (scores)");
    assert_eq!(disk.visible(), Vec::<String>::new());
    // Scores elsewhere, the report on the full disk.
    let output = disk.run(score(
        &elsewhere.path().join("scores.jsonl"),
        Some(&disk.path().join("report.html")),
    ));
    assert_failed_clearly(&output, "knockoff-score (report)");
    assert_eq!(disk.visible(), Vec::<String>::new());
}
