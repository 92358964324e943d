//! knockoff-train refuses bad flag values (from the command line or the environment) with
//! the flag's name and the allowed range, before reading any data, instead of clamping them.

use std::process::Command;

/// Runs knockoff-train with `args` and returns its stderr; asserts it failed.
fn refused(args: &[&str], env: &[(&str, &str)]) -> String {
    let out_dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_knockoff-train"))
        .arg("--out")
        .arg(out_dir.path().join("model"))
        .args([
            "--train",
            "no-such-train.csv",
            "--valid",
            "no-such-valid.csv",
        ])
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success(),
        "accepted {args:?} {env:?}: {stderr}"
    );
    assert!(
        !out_dir.path().join("model").exists(),
        "wrote a model for {args:?}"
    );
    stderr
}

#[test]
fn out_of_range_flags_are_refused_with_name_and_range() {
    for (args, flag, range) in [
        (&["--max-epochs", "0"][..], "--max-epochs", "at least 1"),
        (&["--patience", "0"], "--patience", "at least 1"),
        (&["--batch-size", "0"], "--batch-size", "at least 1"),
        (&["--embedding-dim", "0"], "--embedding-dim", "at least 1"),
        (&["--hidden", "0"], "--hidden", "at least 1"),
        (&["--hash-bits", "31"], "--hash-bits", "between 1 and 30"),
        (
            &["--holdout-brand-share", "1.5"],
            "--holdout-brand-share",
            "between 0 and 1",
        ),
        (
            &["--token-dropout", "0.95"],
            "--token-dropout",
            "between 0 and 0.9",
        ),
        (
            &["--brand-dropout=-0.1"],
            "--brand-dropout",
            "between 0 and 1",
        ),
        (
            &["--category-dropout", "2"],
            "--category-dropout",
            "between 0 and 1",
        ),
    ] {
        let stderr = refused(args, &[]);
        assert!(
            stderr.contains(flag) && stderr.contains(range),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn out_of_range_environment_values_are_refused_too() {
    let stderr = refused(&[], &[("KNOCKOFF_PATIENCE", "0")]);
    assert!(
        stderr.contains("--patience") && stderr.contains("at least 1"),
        "{stderr}"
    );
}

#[test]
fn values_at_the_ends_of_the_range_are_accepted_by_the_parser() {
    // Accepted flags get as far as reading the (missing) training file.
    let stderr = refused(
        &[
            "--max-epochs",
            "1",
            "--token-dropout",
            "0.9",
            "--holdout-brand-share",
            "1",
            "--hash-bits",
            "12",
        ],
        &[],
    );
    assert!(stderr.contains("no-such-train.csv"), "{stderr}");
}
