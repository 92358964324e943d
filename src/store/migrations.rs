//! The store's schema history: migrations applied in order, each once, inside one
//! transaction; the version reached is SQLite's `user_version`.
//!
//! To add tables, write their `CREATE` statements beside their queries (as
//! [`super::brands::SCHEMA`]) and append a migration with the next version here. Never edit
//! a migration that has shipped: stores in the field already ran it.

use super::{brands, reviews, StoreError};
use rusqlite::{Connection, TransactionBehavior};

/// One step of the schema.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// 1, 2, 3, ...: the `user_version` after it ran.
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// The version that added the review queue and reviews.
pub const REVIEWS_VERSION: i64 = 2;

/// Every migration, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "brand registry",
        sql: brands::SCHEMA,
    },
    Migration {
        version: REVIEWS_VERSION,
        name: "reviews",
        sql: reviews::SCHEMA,
    },
];

/// The schema version this code writes.
pub fn latest(migrations: &[Migration]) -> i64 {
    migrations.last().map_or(0, |m| m.version)
}

/// Applies the migrations `conn` has not run yet, all in one transaction: a store is at
/// one version or the next, never in between. Refuses a store newer than `migrations`.
pub fn migrate(
    conn: &mut Connection,
    label: &str,
    migrations: &[Migration],
) -> Result<i64, StoreError> {
    let supported = latest(migrations);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > supported {
        return Err(StoreError::TooNew {
            path: label.to_string(),
            found,
            supported,
        });
    }
    for migration in migrations.iter().filter(|m| m.version > found) {
        tx.execute_batch(migration.sql)
            .and_then(|()| tx.pragma_update(None, "user_version", migration.version))
            .map_err(|source| StoreError::Migration {
                version: migration.version,
                name: migration.name,
                source,
            })?;
        tracing::info!(
            store = label,
            version = migration.version,
            name = migration.name,
            "store migrated"
        );
    }
    tx.commit()?;
    Ok(supported.max(found))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn version(conn: &Connection) -> i64 {
        conn.pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn versions_count_up_from_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "{}", m.name);
        }
    }

    #[test]
    fn migrations_run_once_and_the_version_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        drop(Store::open(&path).unwrap());
        let mut conn = Connection::open(&path).unwrap();
        assert_eq!(version(&conn), latest(MIGRATIONS));
        // A second run finds nothing to do (the CREATE statements would fail if rerun).
        assert_eq!(
            migrate(&mut conn, "k.db", MIGRATIONS).unwrap(),
            latest(MIGRATIONS)
        );
        drop(conn);
        drop(Store::open(&path).unwrap());
    }

    #[test]
    fn a_later_migration_applies_on_top_and_a_failing_one_leaves_nothing() {
        let mut conn = Connection::open_in_memory().unwrap();
        let first = [Migration {
            version: 1,
            name: "a",
            sql: "CREATE TABLE a (x INTEGER);",
        }];
        migrate(&mut conn, "mem", &first).unwrap();
        let broken = [
            first[0],
            Migration {
                version: 2,
                name: "b",
                sql: "CREATE TABLE b (x INTEGER); INSERT INTO nowhere VALUES (1);",
            },
        ];
        let error = migrate(&mut conn, "mem", &broken).unwrap_err();
        assert!(
            matches!(error, StoreError::Migration { version: 2, .. }),
            "{error}"
        );
        assert_eq!(version(&conn), 1);
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'b'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0, "the failed migration's table was rolled back");
        let fixed = [
            first[0],
            Migration {
                version: 2,
                name: "b",
                sql: "CREATE TABLE b (x INTEGER);",
            },
        ];
        assert_eq!(migrate(&mut conn, "mem", &fixed).unwrap(), 2);
    }

    #[test]
    fn a_store_newer_than_the_code_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        drop(Store::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", latest(MIGRATIONS) + 1)
            .unwrap();
        drop(conn);
        let error = Store::open(&path).unwrap_err();
        assert!(matches!(error, StoreError::TooNew { .. }), "{error}");
        assert!(
            error.to_string().contains("newer than this knockoff"),
            "{error}"
        );
    }
}
