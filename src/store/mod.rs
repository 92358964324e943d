//! The embedded store: one SQLite file (WAL, `synchronous=FULL`, so a committed write is on
//! disk), its versioned schema migrations, and a thread-safe handle to it.
//!
//! Each kind of record keeps its tables and queries in a module of its own ([`brands`],
//! [`reviews`]);
//! its schema is a migration listed in [`migrations`]. Calls block: async code goes through
//! [`Store::blocking`].

pub mod brands;
pub mod migrations;
pub mod reviews;

use crate::registry::{RegisteredBrand, RegistryError};
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

/// The store file knockoff-serve and knockoff-score use when given none (in the working
/// directory, created on first start).
pub const DEFAULT_STORE: &str = "knockoff.db";
/// How long a write waits for another process (e.g. `knockoff-brands import`) holding the
/// write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// The first bytes of every SQLite database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Whether `path` is a SQLite database (a store), judged by its first bytes, not its name.
pub fn is_store_file(path: &Path) -> std::io::Result<bool> {
    let mut header = [0u8; 16];
    let mut file = std::fs::File::open(path)?;
    let mut read = 0;
    while read < header.len() {
        match file.read(&mut header[read..])? {
            0 => return Ok(false),
            n => read += n,
        }
    }
    Ok(&header == SQLITE_HEADER)
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "the store {path} has schema version {found}, newer than this knockoff knows \
         (up to {supported}); use the knockoff release that wrote it"
    )]
    TooNew {
        path: String,
        found: i64,
        supported: i64,
    },
    #[error("store migration {version} ({name}) failed: {source}")]
    Migration {
        version: i64,
        name: &'static str,
        source: rusqlite::Error,
    },
    #[error("store query failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the store holds a damaged record of `{name}`: {reason}")]
    Corrupt { name: String, reason: String },
    /// An entry was refused; nothing was written.
    #[error(transparent)]
    Invalid(#[from] RegistryError),
    #[error("store task failed: {0}")]
    Task(String),
}

/// Called with the whole registry after every committed brand change.
type BrandsListener = Box<dyn Fn(Vec<RegisteredBrand>) + Send + Sync>;

/// A handle to the store; cheap to clone, safe to share between threads (one connection
/// behind a mutex: SQLite writes one at a time anyway).
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Mutex<Connection>,
    /// What the store is, for messages: a path or `:memory:`.
    label: String,
    on_brands: OnceLock<BrandsListener>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.label)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store at `path`, creating the file on first use, and brings its schema
    /// up to date. A store written by a newer knockoff is refused.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open_error = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(open_error)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
        // WAL: readers never block the writer; FULL: a commit is fsynced before it returns.
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))
            .map_err(open_error)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_error)?;
        Self::start(conn, path.display().to_string())
    }

    /// Opens an existing store to read it, without migrating or writing anything (another
    /// process, e.g. knockoff-serve, may be writing it meanwhile). A store written by a
    /// newer knockoff is refused; an older one reads as it is.
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        let open_error = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_error)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
        let label = path.display().to_string();
        let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        let supported = migrations::latest(migrations::MIGRATIONS);
        if found > supported {
            return Err(StoreError::TooNew {
                path: label,
                found,
                supported,
            });
        }
        Ok(Store {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                label,
                on_brands: OnceLock::new(),
            }),
        })
    }

    /// Whether the store has the review tables (a store from before migration 2, opened
    /// read-only, has none).
    pub fn has_reviews(&self) -> Result<bool, StoreError> {
        self.with(|conn| {
            let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
            Ok(version >= migrations::REVIEWS_VERSION)
        })
    }

    /// A store that lives in memory and is gone when the last handle is dropped: for tests
    /// and embedders that want no file.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Open {
            path: PathBuf::from(":memory:"),
            source,
        })?;
        Self::start(conn, ":memory:".to_string())
    }

    fn start(mut conn: Connection, label: String) -> Result<Self, StoreError> {
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrations::migrate(&mut conn, &label, migrations::MIGRATIONS)?;
        Ok(Store {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                label,
                on_brands: OnceLock::new(),
            }),
        })
    }

    /// The store's path (or `:memory:`).
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// Runs `f` on the connection. A panic elsewhere cannot leave the connection
    /// half-way: an open transaction rolls back when dropped.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self
            .inner
            .conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        f(&mut conn)
    }

    /// Runs `f` in one immediate transaction, committed if it succeeds, rolled back if not;
    /// then, still holding the connection, `after` sees the committed state (so listeners
    /// are told of changes in the order they were made).
    fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
        after: impl FnOnce(&Connection),
    ) -> Result<T, StoreError> {
        self.with(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = f(&tx)?;
            tx.commit()?;
            after(conn);
            Ok(value)
        })
    }

    /// Runs a blocking store call off the async runtime.
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_creates_the_file_in_wal_mode_and_reopening_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        let store = Store::open(&path).unwrap();
        assert!(path.exists());
        let (mode, sync): (String, i64) = store
            .with(|c| {
                let mode = c.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
                let sync = c.pragma_query_value(None, "synchronous", |r| r.get(0))?;
                Ok((mode, sync))
            })
            .unwrap();
        assert_eq!(
            (mode.as_str(), sync),
            ("wal", 2),
            "WAL and synchronous=FULL"
        );
        drop(store);
        let again = Store::open(&path).unwrap();
        assert_eq!(again.label(), path.display().to_string());
    }

    #[test]
    fn a_directory_that_does_not_exist_is_an_open_error_naming_the_path() {
        let error = Store::open(Path::new("/nonexistent/dir/k.db")).unwrap_err();
        assert!(matches!(error, StoreError::Open { .. }), "{error}");
        assert!(
            error.to_string().contains("/nonexistent/dir/k.db"),
            "{error}"
        );
    }
}
