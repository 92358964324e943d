//! Crashes and full disks at the worst moments of each write, through the real binaries:
//! `kill -9` of knockoff-train while it writes a model (the old model stays whole and
//! loadable, or the new one is complete), `kill -9` of knockoff-serve during a hot reload
//! (it restarts on a valid model), and a model, a report and scores written to a full
//! filesystem (a clear error, a failed exit, nothing half-written under the final name).

mod common;

use common::server::start;
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

/// The staging directory knockoff-train writes into beside the model, once it exists.
fn staging(parent: &Path) -> Option<PathBuf> {
    std::fs::read_dir(parent)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".knockoff-staging-"))
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
            seen = staging(parent).map(|s| (s, Instant::now()));
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
