//! Putting a freshly written model directory where the old one was, with no moment in which
//! the path holds no model, and tidying what a crash in the middle of that leaves behind.
//!
//! On Linux the staged directory and the model directory trade places in one
//! `renameat2(RENAME_EXCHANGE)`; the old model, now under the staging name, is then removed.
//! Where the exchange is unsupported (an old kernel, some filesystems, other systems) the old
//! model is renamed aside to `.knockoff-old-<pid>-<name>` and the new one renamed into place:
//! between those two renames the path is missing, so [`interrupted_save`] lets a reader find
//! the old model aside, and the next save puts it back if its writer died there.
//!
//! Names beside the model directory, each carrying the writer's process id so that only a
//! dead writer's leftovers are touched:
//! - `.knockoff-staging-<pid>-<random>`: a model being written, or (after an exchange) the
//!   old model about to be removed;
//! - `.knockoff-old-<pid>-<name>`: the old model during the fallback's two renames.

use super::artifact::{io, ArtifactError};
use std::path::{Path, PathBuf};

const STAGING_PREFIX: &str = ".knockoff-staging-";
const OLD_PREFIX: &str = ".knockoff-old-";

/// How [`replace_dir`] put the new directory in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Swapped {
    /// Exchanged with the old directory in one step (then the old one was removed).
    Exchanged,
    /// The old directory renamed aside, then the new one renamed in (the fallback).
    Renamed,
    /// There was no old directory: one rename.
    Moved,
}

/// Which ways [`replace_dir`] may use; tests force the fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    /// The atomic exchange where the system supports it, else the two renames.
    Exchange,
    /// Always the two renames.
    #[cfg_attr(not(test), allow(dead_code))] // only tests force the fallback
    TwoRenames,
}

/// A new staging directory in `parent`, named for this process; deleted when dropped unless
/// kept (a failed write leaves nothing).
pub(super) fn staging_dir(parent: &Path) -> Result<tempfile::TempDir, ArtifactError> {
    tempfile::Builder::new()
        .prefix(&format!("{STAGING_PREFIX}{}-", std::process::id()))
        .tempdir_in(parent)
        .map_err(io(parent))
}

/// Moves the staged model directory `staged` to `dir` (both in `parent`): exchanged with the
/// old model where the system allows it, so `dir` always holds a whole model, else by two
/// renames (the old model put back if the second fails).
pub(super) fn replace_dir(
    staged: &Path,
    dir: &Path,
    parent: &Path,
) -> Result<Swapped, ArtifactError> {
    replace_dir_with(staged, dir, parent, Method::Exchange, &mut || {})
}

/// [`replace_dir`], calling `midway` once both models exist and the swap is half done:
/// after the exchange, before the old model is removed; or between the two renames.
fn replace_dir_with(
    staged: &Path,
    dir: &Path,
    parent: &Path,
    method: Method,
    midway: &mut dyn FnMut(),
) -> Result<Swapped, ArtifactError> {
    if std::fs::symlink_metadata(dir).is_err() {
        return match std::fs::rename(staged, dir) {
            Ok(()) => Ok(Swapped::Moved),
            Err(source) => {
                let _ = std::fs::remove_dir_all(staged);
                Err(ArtifactError::Io {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        };
    }
    if method == Method::Exchange {
        match exchange(staged, dir) {
            Ok(Ok(())) => {
                midway();
                // `staged` now holds the old model; the new one is already in place.
                if let Err(e) = remove_any(staged) {
                    tracing::warn!(path = %staged.display(), error = %e,
                        "model saved, but the previous one could not be removed");
                }
                return Ok(Swapped::Exchanged);
            }
            Ok(Err(Unsupported)) => tracing::debug!(path = %dir.display(),
                "atomic directory exchange unsupported here; renaming in two steps"),
            Err(source) => {
                let _ = std::fs::remove_dir_all(staged);
                return Err(ArtifactError::Io {
                    path: dir.to_path_buf(),
                    source,
                });
            }
        }
    }
    two_renames(staged, dir, parent, midway)
}

/// The fallback: the old model renamed aside, the new one renamed in, the old one removed.
fn two_renames(
    staged: &Path,
    dir: &Path,
    parent: &Path,
    midway: &mut dyn FnMut(),
) -> Result<Swapped, ArtifactError> {
    let backup = parent.join(backup_name(dir, std::process::id()));
    if std::fs::symlink_metadata(&backup).is_ok() {
        // Left by an earlier save of this process whose clean-up failed: `dir` is newer.
        remove_any(&backup).map_err(io(&backup))?;
    }
    if let Err(source) = std::fs::rename(dir, &backup) {
        let _ = std::fs::remove_dir_all(staged);
        return Err(ArtifactError::Io {
            path: dir.to_path_buf(),
            source,
        });
    }
    midway();
    if let Err(source) = std::fs::rename(staged, dir) {
        // Put the previous model back so the target still holds a good one.
        let _ = std::fs::rename(&backup, dir);
        let _ = std::fs::remove_dir_all(staged);
        return Err(ArtifactError::Io {
            path: dir.to_path_buf(),
            source,
        });
    }
    remove_any(&backup).map_err(io(&backup))?;
    Ok(Swapped::Renamed)
}

/// The exchange is not available here: fall back to two renames.
struct Unsupported;

/// Swaps `a` and `b` in one step; `Ok(Err(Unsupported))` where the kernel or filesystem
/// cannot.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn exchange(a: &Path, b: &Path) -> Result<Result<(), Unsupported>, std::io::Error> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    use rustix::io::Errno;
    match renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE) {
        Ok(()) => Ok(Ok(())),
        Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => Ok(Err(Unsupported)),
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn exchange(_a: &Path, _b: &Path) -> Result<Result<(), Unsupported>, std::io::Error> {
    Ok(Err(Unsupported))
}

/// Removes a directory tree, or a file or symlink.
fn remove_any(path: &Path) -> std::io::Result<()> {
    if std::fs::symlink_metadata(path)?.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    }
}

/// `.knockoff-old-<pid>-<name>` for the model directory `dir`.
fn backup_name(dir: &Path, pid: u32) -> String {
    format!("{OLD_PREFIX}{pid}-{}", file_name(dir))
}

fn file_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn parent_of(dir: &Path) -> PathBuf {
    match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The process id in `name` after `prefix` (`<prefix><pid>-<rest>`), and the rest.
fn pid_in<'a>(name: &'a str, prefix: &str) -> Option<(u32, &'a str)> {
    let (pid, rest) = name.strip_prefix(prefix)?.split_once('-')?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((pid.parse().ok()?, rest))
}

/// Whether the process `pid` may still be running (a leftover of a live writer is not
/// touched). Only "no such process" counts as dead; this process counts as alive.
fn alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    #[cfg(unix)]
    {
        let Some(pid) = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        else {
            return false;
        };
        !matches!(
            rustix::process::test_kill_process(pid),
            Err(rustix::io::Errno::SRCH)
        )
    }
    #[cfg(not(unix))]
    {
        true
    }
}

/// Where the previous model of `dir` is while a save has it renamed aside (the fallback's
/// two renames, or a writer that died between them): `None` when there is no such copy.
/// With several, the newest.
pub(super) fn interrupted_save(dir: &Path) -> Option<PathBuf> {
    let name = file_name(dir);
    std::fs::read_dir(parent_of(dir))
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| {
            let entry = e.file_name();
            let entry = entry.to_string_lossy();
            pid_in(&entry, OLD_PREFIX).is_some_and(|(_, rest)| rest == name)
                && e.file_type().is_ok_and(|t| t.is_dir())
        })
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
}

/// Tidies what dead writers left beside `dir` in `parent`: their staging directories are
/// removed; the old model a writer left aside between its two renames is put back when
/// `dir` is missing, else removed. Leftovers of live processes are left alone.
pub(super) fn clean_leftovers(dir: &Path, parent: &Path) -> Result<(), ArtifactError> {
    let name = file_name(dir);
    for entry in std::fs::read_dir(parent).map_err(io(parent))? {
        let entry = entry.map_err(io(parent))?;
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        let path = entry.path();
        if let Some((pid, _)) = pid_in(&file_name, STAGING_PREFIX) {
            if !alive(pid) {
                tracing::info!(path = %path.display(), "removing an interrupted save's staging directory");
                remove_any(&path).map_err(io(&path))?;
            }
        } else if let Some((pid, rest)) = pid_in(&file_name, OLD_PREFIX) {
            if rest != name || alive(pid) {
                continue;
            }
            if std::fs::symlink_metadata(dir).is_err() {
                tracing::warn!(path = %dir.display(), from = %path.display(),
                    "a save was interrupted between its renames; putting the previous model back");
                std::fs::rename(&path, dir).map_err(io(dir))?;
            } else {
                remove_any(&path).map_err(io(&path))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    const FILES: [&str; 3] = ["config.json", "model.safetensors", "tokenizer.json"];

    /// A stand-in model directory at `dir`: every file names `version`.
    fn write_model(dir: &Path, version: &str) {
        std::fs::create_dir_all(dir).unwrap();
        for file in FILES {
            std::fs::write(dir.join(file), format!("{file} of {version}")).unwrap();
        }
    }

    /// The version of the model at `dir` if it is whole (every file there, all of one
    /// version), else `None`.
    fn whole(dir: &Path) -> Option<String> {
        let mut versions = FILES.iter().map(|file| {
            let text = std::fs::read_to_string(dir.join(file)).ok()?;
            text.strip_prefix(&format!("{file} of "))
                .map(str::to_string)
        });
        let first = versions.next()??;
        versions
            .all(|v| v.as_deref() == Some(&first))
            .then_some(first)
    }

    /// A staged directory in `parent` holding `version`.
    fn staged(parent: &Path, version: &str) -> PathBuf {
        let staged = staging_dir(parent).unwrap().keep();
        write_model(&staged, version);
        staged
    }

    fn names(parent: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(parent)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// The id of a process that has exited (and been reaped).
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_exchange_keeps_a_whole_model_in_place_throughout() {
        let work = tempfile::tempdir().unwrap();
        let dir = work.path().join("model");
        write_model(&dir, "old");
        let stage = staged(work.path(), "new");
        let mut checked = false;
        let how = replace_dir_with(&stage, &dir, work.path(), Method::Exchange, &mut || {
            // Both models whole: the new one in place, the old one under the staging name.
            assert_eq!(whole(&dir).as_deref(), Some("new"));
            assert_eq!(whole(&stage).as_deref(), Some("old"));
            checked = true;
        })
        .unwrap();
        assert_eq!(how, Swapped::Exchanged);
        assert!(checked);
        assert_eq!(whole(&dir).as_deref(), Some("new"));
        assert_eq!(names(work.path()), ["model"]);
    }

    /// Opens `dir` once and reads its files through that handle (so a swap meanwhile cannot
    /// mix two models): the versions read, files already removed left out; `None` when the
    /// path holds no directory.
    #[cfg(target_os = "linux")]
    fn versions_through_one_handle(dir: &Path) -> Option<Vec<String>> {
        use rustix::fs::{open, openat, Mode, OFlags};
        let handle = open(dir, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).ok()?;
        let versions = FILES.iter().filter_map(|file| {
            // A file gone: this is the old model, being removed after the exchange.
            let fd = openat(&handle, *file, OFlags::RDONLY, Mode::empty()).ok()?;
            let text = std::io::read_to_string(std::fs::File::from(fd)).ok()?;
            text.strip_prefix(&format!("{file} of "))
                .map(str::to_string)
        });
        Some(versions.collect())
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_reader_never_finds_the_path_without_a_whole_model() {
        let work = tempfile::tempdir().unwrap();
        let dir = work.path().join("model");
        write_model(&dir, "v0");
        let stop = AtomicBool::new(false);
        let (reads, missing, mixed) = (
            AtomicUsize::new(0),
            AtomicUsize::new(0),
            AtomicUsize::new(0),
        );
        std::thread::scope(|scope| {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    match versions_through_one_handle(&dir) {
                        None => missing.fetch_add(1, Ordering::Relaxed),
                        Some(v) if v.windows(2).any(|w| w[0] != w[1]) => {
                            mixed.fetch_add(1, Ordering::Relaxed)
                        }
                        Some(_) => reads.fetch_add(1, Ordering::Relaxed),
                    };
                }
            });
            for i in 1..=100 {
                let stage = staged(work.path(), &format!("v{i}"));
                let how = replace_dir(&stage, &dir, work.path()).unwrap();
                assert_eq!(how, Swapped::Exchanged);
            }
            stop.store(true, Ordering::Relaxed);
        });
        assert!(reads.load(Ordering::Relaxed) > 0);
        assert_eq!(missing.load(Ordering::Relaxed), 0, "the path was missing");
        assert_eq!(mixed.load(Ordering::Relaxed), 0, "two models mixed");
        assert_eq!(whole(&dir).as_deref(), Some("v100"));
        assert_eq!(names(work.path()), ["model"]);
    }

    #[test]
    fn the_fallback_renames_and_readers_find_the_old_model_midway() {
        let work = tempfile::tempdir().unwrap();
        let dir = work.path().join("model");
        write_model(&dir, "old");
        let stage = staged(work.path(), "new");
        let mut checked = false;
        let how = replace_dir_with(&stage, &dir, work.path(), Method::TwoRenames, &mut || {
            // The gap the exchange closes: the path is missing, the old model aside.
            assert!(!dir.exists());
            let aside = interrupted_save(&dir).expect("the old model aside");
            assert_eq!(whole(&aside).as_deref(), Some("old"));
            checked = true;
        })
        .unwrap();
        assert_eq!(how, Swapped::Renamed);
        assert!(checked);
        assert_eq!(whole(&dir).as_deref(), Some("new"));
        assert_eq!(names(work.path()), ["model"]);
        assert_eq!(interrupted_save(&dir), None);
    }

    #[test]
    fn a_first_save_is_one_rename_and_a_failed_one_leaves_the_old_model() {
        let work = tempfile::tempdir().unwrap();
        let dir = work.path().join("model");
        let stage = staged(work.path(), "first");
        assert_eq!(
            replace_dir(&stage, &dir, work.path()).unwrap(),
            Swapped::Moved
        );
        assert_eq!(whole(&dir).as_deref(), Some("first"));
        // A staged directory that vanished: an error naming the model, the old one kept.
        let gone = work.path().join(".knockoff-staging-gone");
        for method in [Method::Exchange, Method::TwoRenames] {
            let err = replace_dir_with(&gone, &dir, work.path(), method, &mut || {})
                .unwrap_err()
                .to_string();
            assert!(err.contains("model"), "{err}");
            assert_eq!(whole(&dir).as_deref(), Some("first"));
            assert_eq!(names(work.path()), ["model"]);
        }
    }

    #[test]
    fn dead_writers_leftovers_are_tidied_and_the_old_model_put_back() {
        let work = tempfile::tempdir().unwrap();
        let parent = work.path();
        let dir = parent.join("model");
        let dead = dead_pid();
        let live = std::process::id();
        // A writer died between its two renames: the path missing, the old model aside.
        write_model(&parent.join(format!(".knockoff-old-{dead}-model")), "old");
        write_model(&parent.join(format!(".knockoff-staging-{dead}-x1")), "half");
        write_model(
            &parent.join(format!(".knockoff-staging-{live}-x2")),
            "writing",
        );
        write_model(
            &parent.join(format!(".knockoff-old-{dead}-model-2")),
            "other",
        );
        write_model(&parent.join(".knockoff-staging-nopid"), "unknown");
        assert_eq!(
            interrupted_save(&dir),
            Some(parent.join(format!(".knockoff-old-{dead}-model")))
        );
        clean_leftovers(&dir, parent).unwrap();
        assert_eq!(whole(&dir).as_deref(), Some("old"));
        let mut kept = vec![
            format!(".knockoff-old-{dead}-model-2"),
            ".knockoff-staging-nopid".to_string(),
            format!(".knockoff-staging-{live}-x2"),
            "model".to_string(),
        ];
        kept.sort();
        assert_eq!(names(parent), kept);
        // With the model in place, a dead writer's old copy is removed instead.
        write_model(&parent.join(format!(".knockoff-old-{dead}-model")), "older");
        clean_leftovers(&dir, parent).unwrap();
        assert_eq!(whole(&dir).as_deref(), Some("old"));
        assert_eq!(names(parent), kept);
    }

    #[test]
    fn process_ids_are_read_from_leftover_names() {
        assert_eq!(
            pid_in(".knockoff-old-42-my-model", OLD_PREFIX),
            Some((42, "my-model"))
        );
        assert_eq!(
            pid_in(".knockoff-staging-7-abc", STAGING_PREFIX),
            Some((7, "abc"))
        );
        for name in [
            ".knockoff-old--model",
            ".knockoff-old-x1-model",
            ".knockoff-old-42",
            "model",
        ] {
            assert_eq!(pid_in(name, OLD_PREFIX), None, "{name}");
        }
        assert!(alive(std::process::id()));
        assert!(!alive(dead_pid()));
    }
}
