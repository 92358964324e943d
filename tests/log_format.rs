//! Logs as a container's collector reads them: the real `knockoff-score` binary with stderr
//! written to a file carries no ANSI colour codes; `KNOCKOFF_LOG_FORMAT=json` makes every log
//! line a JSON object; at a terminal (a pseudo-terminal here) text logs keep their colours.

mod common;

use std::fs::File;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Stdio};

const ESC: char = '\u{1b}';

/// `knockoff-score` on two rows of the fixture with the tiny model, at `info` level, with
/// stderr sent to `stderr`; returns whether it succeeded.
fn score_with_stderr(dir: &Path, format: Option<&str>, stderr: Stdio) -> bool {
    let model = common::tiny_model_dir();
    let input = dir.join("two.csv");
    let fixture = std::fs::read_to_string(common::fixture("tiny-listings.csv")).unwrap();
    let two: Vec<&str> = fixture.lines().take(3).collect();
    std::fs::write(&input, two.join("\n") + "\n").unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_knockoff-score"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("KNOCKOFF_") {
            command.env_remove(key);
        }
    }
    command
        .arg("--model")
        .arg(model.path())
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(dir.join("scores.csv"))
        .arg("--store")
        .arg(dir.join("knockoff.db"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(stderr);
    if let Some(format) = format {
        command.env("KNOCKOFF_LOG_FORMAT", format);
    }
    command.status().unwrap().success()
}

fn stderr_in_file(format: Option<&str>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    let file = File::create(&log).unwrap();
    assert!(score_with_stderr(dir.path(), format, Stdio::from(file)));
    std::fs::read_to_string(&log).unwrap()
}

#[test]
fn text_logs_written_to_a_file_have_no_colour_codes() {
    let log = stderr_in_file(None);
    assert!(log.contains("scoring"), "{log}");
    assert!(!log.contains(ESC), "ANSI escape in a log file: {log:?}");
}

#[test]
fn json_logs_by_env_are_one_object_a_line() {
    let log = stderr_in_file(Some("json"));
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}")))
        .collect();
    assert!(!log.contains(ESC), "{log:?}");
    let scoring = lines
        .iter()
        .find(|l| l["fields"]["message"] == "scoring")
        .unwrap_or_else(|| panic!("no `scoring` line: {log}"));
    assert_eq!(scoring["level"], "INFO");
    assert!(scoring["fields"]["model"].is_string(), "{scoring}");
}

#[test]
fn text_logs_at_a_terminal_keep_their_colours() {
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two new descriptors into the given integers; the null pointers
    // mean no name, default terminal settings and window size.
    let opened = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(opened, 0, "openpty failed");
    // SAFETY: both descriptors were just opened by openpty and are owned by nothing else.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let reader = std::thread::spawn(move || {
        let mut master = File::from(master);
        let mut out = Vec::new();
        // Reading the master ends with EIO once the child closes the terminal.
        let _ = master.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    });
    let dir = tempfile::tempdir().unwrap();
    assert!(score_with_stderr(dir.path(), None, Stdio::from(slave)));
    let log = reader.join().unwrap();
    assert!(log.contains("scoring"), "{log:?}");
    assert!(
        log.contains(&format!("{ESC}[")),
        "no colours at a terminal: {log:?}"
    );
}
