//! File helpers shared by everything that writes or fingerprints files: a whole-or-nothing
//! file write and the SHA-256 of bytes or of a file.

use std::io::Write as _;
use std::path::Path;

use sha2::{Digest, Sha256};

/// Writes `contents` to `path` so that the file appears whole or not at all: into a
/// temporary file in the same directory (named `{prefix}<random>.tmp`), synced, made readable like
/// any shared file (0644 on Unix; temporary files start owner-only), then renamed over
/// `path`. A reader never sees half a file and a failed write leaves the old one.
pub fn write_atomically(path: &Path, contents: &[u8], prefix: &str) -> std::io::Result<()> {
    let mut tmp = staged_file(path, prefix)?;
    tmp.write_all(contents)?;
    publish(tmp, path)
}

/// A temporary file beside `path` (`{prefix}<random>.tmp`) to write a file into before
/// [`publish`]ing it; deleted if dropped unpublished (a failed or interrupted write).
pub fn staged_file(path: &Path, prefix: &str) -> std::io::Result<tempfile::NamedTempFile> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    tempfile::Builder::new()
        .prefix(prefix)
        .suffix(".tmp")
        .tempfile_in(dir)
}

/// Syncs a [`staged_file`], makes it readable (0644 on Unix) and renames it over `path`.
pub fn publish(tmp: tempfile::NamedTempFile, path: &Path) -> std::io::Result<()> {
    tmp.as_file().sync_all()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    // The rename is an entry in the directory: on disk only once the directory is.
    sync_dir(
        path.parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    )
}

/// Flushes a directory's entries (files created, renamed or removed in it) to disk. A no-op
/// where directories cannot be opened as files (not Unix).
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Flushes every file directly in `dir`, then the directory itself: what a writer calls
/// before renaming a staged directory into place, so a power cut after the rename cannot
/// leave a directory of empty or torn files.
pub fn sync_dir_and_files(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::File::open(entry.path())?.sync_all()?;
        }
    }
    sync_dir(dir)
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Lower-case hex SHA-256 of the file at `path`.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    Ok(sha256_hex(&std::fs::read(path)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syncing_a_directory_and_its_files_reports_failures() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), b"a").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        sync_dir_and_files(dir.path()).unwrap();
        let missing = dir.path().join("missing");
        assert_eq!(
            sync_dir_and_files(&missing).unwrap_err().kind(),
            std::io::ErrorKind::NotFound
        );
        #[cfg(unix)]
        assert!(sync_dir(&missing).is_err());
    }

    #[test]
    fn atomic_write_replaces_whole_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        write_atomically(&path, b"first", ".test-").unwrap();
        write_atomically(&path, b"second", ".test-").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o644);
        }
        let missing = dir.path().join("no-such-dir").join("x");
        assert!(write_atomically(&missing, b"x", ".test-").is_err());
    }

    #[test]
    fn sha256_of_bytes_and_file_agree() {
        // SHA-256 of "abc" (FIPS 180-2 test vector).
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(sha256_hex(b"abc"), abc);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(sha256_file(&path).unwrap(), abc);
        assert!(sha256_file(&dir.path().join("missing")).is_err());
    }
}
