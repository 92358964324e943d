//! The brand registry's tables and queries: brands with their folded names, brand tokens
//! (kept only as SHA-256 digests), and the history of every change.

use super::{Store, StoreError};
use crate::registry::{validate::folded, BrandEntry, RegisteredBrand, RegistryError, ValidEntry};
use rand::RngCore;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Schema of migration 1. `brands.key` is the folded name; `brand_names` holds the folded
/// name and aliases of every brand, so no two brands share one.
pub const SCHEMA: &str = "
CREATE TABLE brands (
    key          TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    entry        TEXT NOT NULL,
    token_sha256 BLOB NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE TABLE brand_names (
    folded    TEXT PRIMARY KEY,
    brand_key TEXT NOT NULL REFERENCES brands(key) ON DELETE CASCADE
);
CREATE TABLE brand_history (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    brand_key TEXT NOT NULL,
    name      TEXT NOT NULL,
    at        TEXT NOT NULL,
    who       TEXT NOT NULL,
    action    TEXT NOT NULL CHECK (action IN ('created', 'replaced', 'deleted')),
    entry     TEXT NOT NULL
);
CREATE INDEX brand_history_by_brand ON brand_history (brand_key, id);
";

/// Random bytes in a brand token (shown as hex).
const TOKEN_BYTES: usize = 32;

/// Who made a change, as history records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    Admin,
    /// A brand through its own token (its display name).
    Brand(String),
    /// `knockoff-brands import`.
    Import,
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::Admin => f.write_str("admin"),
            Actor::Brand(name) => write!(f, "brand:{name}"),
            Actor::Import => f.write_str("import"),
        }
    }
}

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Created,
    Replaced,
    Deleted,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Replaced => "replaced",
            Action::Deleted => "deleted",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Action::Created, Action::Replaced, Action::Deleted]
            .into_iter()
            .find(|a| a.as_str() == text)
    }
}

/// One recorded change of a brand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    /// RFC 3339 time of the change.
    pub at: String,
    /// `admin`, `brand:<name>` or `import`.
    pub who: String,
    pub action: Action,
    /// The brand's name at the time.
    pub name: String,
    /// The entry as stored by the change (as it was, for a deletion).
    pub entry: BrandEntry,
}

/// The outcome of a create-or-replace.
#[derive(Debug, Clone, PartialEq)]
pub struct Put {
    pub brand: RegisteredBrand,
    /// The brand token, only when the brand is new: it is not stored and cannot be shown again.
    pub token: Option<String>,
}

impl Put {
    pub fn created(&self) -> bool {
        self.token.is_some()
    }
}

impl Store {
    /// Calls `listener` with the whole registry after every committed brand change (and
    /// never again with an older state). Set once; later calls are ignored with a warning.
    pub fn on_brands_change(
        &self,
        listener: impl Fn(Vec<RegisteredBrand>) + Send + Sync + 'static,
    ) {
        if self.inner.on_brands.set(Box::new(listener)).is_err() {
            tracing::warn!("a brand-change listener is already set; ignoring another");
        }
    }

    /// Creates or replaces a brand, with its history row, in one transaction.
    pub fn put_brand(&self, valid: &ValidEntry, who: &Actor) -> Result<Put, StoreError> {
        self.write(|tx| put(tx, valid, who), |conn| self.publish(conn))
    }

    /// Deletes a brand (and its token), recording it; `None` if it is not registered.
    pub fn delete_brand(
        &self,
        name: &str,
        who: &Actor,
    ) -> Result<Option<RegisteredBrand>, StoreError> {
        self.write(|tx| delete(tx, name, who), |conn| self.publish(conn))
    }

    pub fn brand(&self, name: &str) -> Result<Option<RegisteredBrand>, StoreError> {
        self.with(|conn| get(conn, &folded(name)))
    }

    /// Every registered brand, by folded name.
    pub fn brands(&self) -> Result<Vec<RegisteredBrand>, StoreError> {
        self.with(|conn| list(conn))
    }

    /// The brand's changes, oldest first (also after it was deleted); empty if it never was.
    pub fn brand_history(&self, name: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        self.with(|conn| history(conn, &folded(name)))
    }

    /// The brand a token belongs to (its display name), if any.
    pub fn brand_of_token(&self, token: &str) -> Result<Option<String>, StoreError> {
        let digest = Sha256::digest(token.as_bytes()).to_vec();
        self.with(|conn| {
            Ok(conn
                .query_row(
                    "SELECT name FROM brands WHERE token_sha256 = ?1",
                    [digest],
                    |row| row.get(0),
                )
                .optional()?)
        })
    }

    /// Writes many entries in one transaction, each on its own: one that fails is rolled
    /// back alone and reported at its index; the others are kept.
    pub fn put_brands(
        &self,
        entries: &[ValidEntry],
        who: &Actor,
    ) -> Result<Vec<Result<Put, StoreError>>, StoreError> {
        self.with(|conn| {
            let mut tx =
                conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut outcomes = Vec::with_capacity(entries.len());
            for valid in entries {
                let savepoint = tx.savepoint()?;
                let outcome = put(&savepoint, valid, who);
                if outcome.is_ok() {
                    savepoint.commit()?;
                }
                outcomes.push(outcome);
            }
            tx.commit()?;
            self.publish(conn);
            Ok(outcomes)
        })
    }

    /// Tells the listener the registry as stored now (after another process, e.g.
    /// `knockoff-brands import`, changed the file); the number of brands.
    pub fn republish_brands(&self) -> Result<usize, StoreError> {
        self.with(|conn| {
            let brands = list(conn)?;
            let count = brands.len();
            if let Some(listener) = self.inner.on_brands.get() {
                listener(brands);
            }
            Ok(count)
        })
    }

    fn publish(&self, conn: &Connection) {
        let Some(listener) = self.inner.on_brands.get() else {
            return;
        };
        match list(conn) {
            Ok(brands) => listener(brands),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the registry after a change; scoring keeps the previous one")
            }
        }
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn new_token() -> (String, Vec<u8>) {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    let digest = Sha256::digest(token.as_bytes()).to_vec();
    (token, digest)
}

/// Refuses a name or alias another brand already holds.
fn check_conflicts(conn: &Connection, valid: &ValidEntry) -> Result<(), StoreError> {
    let mut owner = conn.prepare_cached(
        "SELECT b.name FROM brand_names n JOIN brands b ON b.key = n.brand_key
         WHERE n.folded = ?1 AND n.brand_key <> ?2",
    )?;
    for (field, fold) in &valid.names {
        let taken: Option<String> = owner
            .query_row(params![fold, valid.key], |row| row.get(0))
            .optional()?;
        if let Some(other) = taken {
            return Err(RegistryError::new(
                field.clone(),
                format!("is already registered to the brand `{other}`"),
            )
            .into());
        }
    }
    Ok(())
}

fn put(conn: &Connection, valid: &ValidEntry, who: &Actor) -> Result<Put, StoreError> {
    check_conflicts(conn, valid)?;
    let at = now();
    let entry_json = entry_json(&valid.entry)?;
    let created_at: Option<String> = conn
        .query_row(
            "SELECT created_at FROM brands WHERE key = ?1",
            [&valid.key],
            |row| row.get(0),
        )
        .optional()?;
    let (created_at, token, action) = match created_at {
        Some(created_at) => {
            conn.execute(
                "UPDATE brands SET name = ?2, entry = ?3, updated_at = ?4 WHERE key = ?1",
                params![valid.key, valid.name, entry_json, at],
            )?;
            conn.execute("DELETE FROM brand_names WHERE brand_key = ?1", [&valid.key])?;
            (created_at, None, Action::Replaced)
        }
        None => {
            let (token, digest) = new_token();
            conn.execute(
                "INSERT INTO brands (key, name, entry, token_sha256, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![valid.key, valid.name, entry_json, digest, at],
            )?;
            (at.clone(), Some(token), Action::Created)
        }
    };
    let mut insert =
        conn.prepare_cached("INSERT INTO brand_names (folded, brand_key) VALUES (?1, ?2)")?;
    for (_, fold) in &valid.names {
        insert.execute(params![fold, valid.key])?;
    }
    record(conn, &valid.key, &valid.name, &at, who, action, &entry_json)?;
    let brand = RegisteredBrand {
        name: valid.name.clone(),
        entry: valid.entry.clone(),
        created_at,
        updated_at: at,
    };
    Ok(Put { brand, token })
}

fn delete(
    conn: &Connection,
    name: &str,
    who: &Actor,
) -> Result<Option<RegisteredBrand>, StoreError> {
    let key = folded(name);
    let Some(brand) = get(conn, &key)? else {
        return Ok(None);
    };
    conn.execute("DELETE FROM brand_names WHERE brand_key = ?1", [&key])?;
    conn.execute("DELETE FROM brands WHERE key = ?1", [&key])?;
    let entry_json = entry_json(&brand.entry)?;
    record(
        conn,
        &key,
        &brand.name,
        &now(),
        who,
        Action::Deleted,
        &entry_json,
    )?;
    Ok(Some(brand))
}

fn record(
    conn: &Connection,
    key: &str,
    name: &str,
    at: &str,
    who: &Actor,
    action: Action,
    entry_json: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO brand_history (brand_key, name, at, who, action, entry)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![key, name, at, who.to_string(), action.as_str(), entry_json],
    )?;
    Ok(())
}

fn entry_json(entry: &BrandEntry) -> Result<String, StoreError> {
    serde_json::to_string(entry)
        .map_err(|e| StoreError::Task(format!("cannot encode an entry: {e}")))
}

fn parse_entry(name: &str, json: &str) -> Result<BrandEntry, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
        name: name.to_string(),
        reason: e.to_string(),
    })
}

const BRAND_COLUMNS: &str = "SELECT name, entry, created_at, updated_at FROM brands";

fn brand_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, String, String)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

fn to_brand(
    (name, entry, created_at, updated_at): (String, String, String, String),
) -> Result<RegisteredBrand, StoreError> {
    Ok(RegisteredBrand {
        entry: parse_entry(&name, &entry)?,
        name,
        created_at,
        updated_at,
    })
}

fn get(conn: &Connection, key: &str) -> Result<Option<RegisteredBrand>, StoreError> {
    conn.query_row(&format!("{BRAND_COLUMNS} WHERE key = ?1"), [key], brand_row)
        .optional()?
        .map(to_brand)
        .transpose()
}

fn list(conn: &Connection) -> Result<Vec<RegisteredBrand>, StoreError> {
    let mut statement = conn.prepare_cached(&format!("{BRAND_COLUMNS} ORDER BY key"))?;
    let rows = statement.query_map([], brand_row)?;
    rows.map(|row| to_brand(row?)).collect()
}

fn history(conn: &Connection, key: &str) -> Result<Vec<HistoryEntry>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT at, who, action, name, entry FROM brand_history WHERE brand_key = ?1 ORDER BY id",
    )?;
    let rows = statement.query_map([key], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, String>(3)?,
            row.get::<_, String>(4)?,
        ))
    })?;
    rows.map(|row| {
        let (at, who, action, name, entry) = row?;
        let action = Action::parse(&action).ok_or_else(|| StoreError::Corrupt {
            name: name.clone(),
            reason: format!("unknown history action `{action}`"),
        })?;
        Ok(HistoryEntry {
            entry: parse_entry(&name, &entry)?,
            at,
            who,
            action,
            name,
        })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{validate, RegisteredProduct};

    fn valid(name: &str, aliases: &[&str], prices: &[f64]) -> ValidEntry {
        let entry = BrandEntry {
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            products: prices
                .iter()
                .enumerate()
                .map(|(i, &p)| RegisteredProduct {
                    name: format!("product {i}"),
                    category: "bags".into(),
                    list_price: p,
                    currency: "EUR".into(),
                })
                .collect(),
        };
        validate(name, &entry, &|c| c == "EUR").unwrap()
    }

    fn count(store: &Store, table: &str) -> i64 {
        store
            .with(|c| Ok(c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?))
            .unwrap()
    }

    #[test]
    fn put_creates_with_a_token_then_replaces_without_one() {
        let store = Store::open_in_memory().unwrap();
        let created = store
            .put_brand(&valid("Verdanne", &["维丹妮"], &[420.0]), &Actor::Admin)
            .unwrap();
        let token = created.token.clone().expect("a new brand gets a token");
        assert_eq!(token.len(), 2 * TOKEN_BYTES);
        assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(created.brand.created_at, created.brand.updated_at);
        let replaced = store
            .put_brand(
                &valid("VERDANNE", &["VDN"], &[400.0, 90.0]),
                &Actor::Brand("Verdanne".into()),
            )
            .unwrap();
        assert!(!replaced.created());
        assert_eq!(replaced.brand.name, "VERDANNE");
        assert_eq!(replaced.brand.created_at, created.brand.created_at);
        let stored = store.brand("ver danne").unwrap().unwrap();
        assert_eq!(stored, replaced.brand);
        // The replaced alias is free again; the new one is taken.
        store
            .put_brand(&valid("Other", &["维丹妮"], &[1.0]), &Actor::Admin)
            .unwrap();
        let error = store
            .put_brand(&valid("Third", &["v d n"], &[1.0]), &Actor::Admin)
            .unwrap_err();
        let StoreError::Invalid(error) = error else {
            panic!("{error}")
        };
        assert_eq!(error.field, "aliases[0]");
        assert!(error.message.contains("`VERDANNE`"), "{error}");
    }

    #[test]
    fn the_token_is_stored_only_as_its_digest_and_finds_its_brand() {
        let store = Store::open_in_memory().unwrap();
        let token = store
            .put_brand(&valid("Verdanne", &[], &[420.0]), &Actor::Admin)
            .unwrap()
            .token
            .unwrap();
        let stored: Vec<u8> = store
            .with(|c| Ok(c.query_row("SELECT token_sha256 FROM brands", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(stored, Sha256::digest(token.as_bytes()).to_vec());
        assert_eq!(
            store.brand_of_token(&token).unwrap().as_deref(),
            Some("Verdanne")
        );
        assert_eq!(store.brand_of_token("not-a-token").unwrap(), None);
        assert_eq!(store.brand_of_token("").unwrap(), None);
    }

    #[test]
    fn a_name_taken_by_another_brands_alias_is_refused_and_nothing_is_written() {
        let store = Store::open_in_memory().unwrap();
        store
            .put_brand(&valid("Verdanne", &["Aurora"], &[420.0]), &Actor::Admin)
            .unwrap();
        let before = (
            count(&store, "brands"),
            count(&store, "brand_names"),
            count(&store, "brand_history"),
        );
        let error = store
            .put_brand(&valid("AURORA", &[], &[1.0]), &Actor::Admin)
            .unwrap_err();
        let StoreError::Invalid(error) = error else {
            panic!("{error}")
        };
        assert_eq!(error.field, "name");
        let after = (
            count(&store, "brands"),
            count(&store, "brand_names"),
            count(&store, "brand_history"),
        );
        assert_eq!(before, after);
    }

    #[test]
    fn list_delete_and_history_record_every_change() {
        let store = Store::open_in_memory().unwrap();
        store
            .put_brand(&valid("Zeta", &[], &[5.0]), &Actor::Import)
            .unwrap();
        store
            .put_brand(&valid("Verdanne", &[], &[420.0]), &Actor::Admin)
            .unwrap();
        store
            .put_brand(
                &valid("Verdanne", &[], &[410.0]),
                &Actor::Brand("Verdanne".into()),
            )
            .unwrap();
        let names: Vec<String> = store
            .brands()
            .unwrap()
            .into_iter()
            .map(|b| b.name)
            .collect();
        assert_eq!(names, ["Verdanne", "Zeta"]);
        let deleted = store
            .delete_brand("verdanne", &Actor::Admin)
            .unwrap()
            .unwrap();
        assert_eq!(deleted.entry.products[0].list_price, 410.0);
        assert!(store
            .delete_brand("verdanne", &Actor::Admin)
            .unwrap()
            .is_none());
        assert!(store.brand("Verdanne").unwrap().is_none());
        let history = store.brand_history("VERDANNE").unwrap();
        let summary: Vec<(&str, Action, f64)> = history
            .iter()
            .map(|h| (h.who.as_str(), h.action, h.entry.products[0].list_price))
            .collect();
        assert_eq!(
            summary,
            [
                ("admin", Action::Created, 420.0),
                ("brand:Verdanne", Action::Replaced, 410.0),
                ("admin", Action::Deleted, 410.0)
            ]
        );
        assert_eq!(store.brand_history("Zeta").unwrap()[0].who, "import");
        assert!(store.brand_history("nobody").unwrap().is_empty());
        // A deleted brand's names are free again.
        assert!(store
            .put_brand(&valid("Verdanne", &[], &[1.0]), &Actor::Admin)
            .unwrap()
            .created());
    }

    #[test]
    fn listeners_see_the_whole_registry_after_each_commit() {
        use std::sync::{Arc, Mutex};
        let store = Store::open_in_memory().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        store.on_brands_change(move |brands| sink.lock().unwrap().push(brands.len()));
        store
            .put_brand(&valid("A", &[], &[1.0]), &Actor::Admin)
            .unwrap();
        store
            .put_brand(&valid("B", &[], &[1.0]), &Actor::Admin)
            .unwrap();
        let _ = store.put_brand(&valid("b", &[], &[1.0, 2.0]), &Actor::Admin);
        assert!(store
            .put_brand(&valid("C", &["a"], &[1.0]), &Actor::Admin)
            .is_err());
        store.delete_brand("a", &Actor::Admin).unwrap();
        assert_eq!(
            *seen.lock().unwrap(),
            [1, 2, 2, 1],
            "a refused write tells no one"
        );
        assert_eq!(store.republish_brands().unwrap(), 1);
        assert_eq!(seen.lock().unwrap().last(), Some(&1));
    }

    #[test]
    fn put_brands_keeps_the_good_entries_and_rolls_back_each_bad_one_alone() {
        let store = Store::open_in_memory().unwrap();
        let entries = [
            valid("A", &["alpha"], &[1.0]),
            valid("B", &["ALPHA"], &[1.0]),
            valid("C", &[], &[1.0]),
        ];
        let outcomes = store.put_brands(&entries, &Actor::Import).unwrap();
        assert!(outcomes[0].is_ok() && outcomes[1].is_err() && outcomes[2].is_ok());
        assert_eq!(count(&store, "brands"), 2);
        assert_eq!(count(&store, "brand_history"), 2);
        assert_eq!(count(&store, "brand_names"), 3);
    }
}
