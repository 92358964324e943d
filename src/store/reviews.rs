//! Reviewers' tables and queries: the review queue (listings knockoff-serve decided
//! `review`, waiting for a person) and the reviews people gave, kept forever in the order
//! they were given.

use super::{Store, StoreError};
use crate::data::currency::CurrencyRates;
use crate::data::listing::{FieldLimits, RawListing};
use crate::data::reviews::{
    latest_reviews, read_reviews, ReviewError, ReviewLabel, ReviewRecord, Reviewed,
};
use crate::decision::Decision;
use crate::model::Reason;
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::collections::HashMap;
use std::path::Path;

/// Schema of migration 2. `review_queue.seq` orders entries by arrival (a re-scored id is
/// written anew, so it counts as newest); `priority` is how close the listing's score was
/// to the block threshold (smaller first). `reviews.seq` is the order reviews were given.
/// Listings are stored as JSON in the listing schema (`RawListing`).
pub const SCHEMA: &str = "
CREATE TABLE review_queue (
    seq           INTEGER PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    listing       TEXT NOT NULL,
    probability   REAL NOT NULL,
    decision      TEXT NOT NULL,
    reasons       TEXT NOT NULL,
    model_name    TEXT NOT NULL,
    model_version TEXT NOT NULL,
    scored_at     TEXT NOT NULL,
    priority      REAL NOT NULL
);
CREATE INDEX review_queue_by_priority ON review_queue (priority, seq);
CREATE TABLE reviews (
    seq           INTEGER PRIMARY KEY,
    id            TEXT NOT NULL,
    listing       TEXT NOT NULL,
    label         TEXT NOT NULL CHECK (label IN ('counterfeit', 'genuine')),
    reviewer      TEXT NOT NULL,
    note          TEXT,
    reviewed_at   TEXT NOT NULL,
    model_version TEXT,
    probability   REAL
);
CREATE INDEX reviews_by_time ON reviews (reviewed_at, seq);
CREATE INDEX reviews_by_id ON reviews (id, seq);
";

/// A listing waiting for a reviewer: how it was scored, by which model, when.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueEntry {
    /// The listing's id (never empty: listings without one cannot be reviewed by id).
    pub id: String,
    /// The listing in the listing schema.
    pub listing: RawListing,
    pub probability: f32,
    pub decision: Decision,
    pub reasons: Vec<Reason>,
    pub model_name: String,
    pub model_version: String,
    pub scored_at: DateTime<Utc>,
    /// Sort key of the queue, smallest first (the caller's measure of usefulness).
    pub priority: f64,
}

/// What a write to the queue did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Queued {
    /// Entries written (new ids, or replacing the entry of their id).
    pub written: usize,
    /// Entries left out: the same listing (id and content) was reviewed already.
    pub already_reviewed: usize,
    /// The oldest entries dropped to keep the queue within its bound.
    pub dropped_oldest: usize,
}

/// What a listing under review was, as the store knows it: from the queue, or else from
/// the last review of its id.
#[derive(Debug, Clone, PartialEq)]
pub struct KnownListing {
    pub listing: RawListing,
    pub model_version: Option<String>,
    pub probability: Option<f32>,
    /// True when it came from the queue (false: from an earlier review).
    pub queued: bool,
}

/// A stored review with its place in the order reviews were given.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReview {
    pub seq: i64,
    pub record: ReviewRecord,
}

/// The time format stored: fixed width, so text order is time order.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Now, to the millisecond the store keeps.
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::parse_from_rfc3339(&timestamp(now))
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now)
}

impl Store {
    /// Writes queue entries in one transaction (an id already queued is replaced and
    /// becomes the newest), then drops the oldest entries beyond `max`. An entry whose
    /// listing was reviewed already, unchanged, is left out.
    pub fn queue_for_review(
        &self,
        entries: &[QueueEntry],
        max: usize,
    ) -> Result<Queued, StoreError> {
        self.write(|tx| queue(tx, entries, max), |_| {})
    }

    /// Up to `limit` queued entries, smallest priority first (ties: newest first).
    pub fn review_queue(&self, limit: usize) -> Result<Vec<QueueEntry>, StoreError> {
        self.with(|conn| {
            let mut statement = conn.prepare_cached(&format!(
                "{QUEUE_COLUMNS} ORDER BY priority, seq DESC LIMIT ?1"
            ))?;
            let rows = statement.query_map([limit_param(limit)], |row| QueueRow::try_from(row))?;
            rows.map(|row| to_entry(row?)).collect()
        })
    }

    /// Entries in the queue.
    pub fn review_queue_len(&self) -> Result<usize, StoreError> {
        self.with(|conn| {
            let n: i64 = conn.query_row("SELECT count(*) FROM review_queue", [], |r| r.get(0))?;
            Ok(usize::try_from(n).unwrap_or(0))
        })
    }

    /// What the store knows of each of `ids`: the queued listing, or else the listing of
    /// its last review. Ids it never saw are absent from the answer.
    pub fn known_listings(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, KnownListing>, StoreError> {
        self.with(|conn| {
            let mut queued = conn.prepare_cached(
                "SELECT listing, model_version, probability FROM review_queue WHERE id = ?1",
            )?;
            let mut reviewed = conn.prepare_cached(
                "SELECT listing, model_version, probability FROM reviews
                 WHERE id = ?1 ORDER BY seq DESC LIMIT 1",
            )?;
            let row = |row: &rusqlite::Row<'_>| -> rusqlite::Result<(String, Option<String>, Option<f64>)> {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            };
            let mut known = HashMap::new();
            for id in ids {
                let (found, from_queue) = match queued.query_row([id], row).optional()? {
                    Some(found) => (Some(found), true),
                    None => (reviewed.query_row([id], row).optional()?, false),
                };
                if let Some((listing, model_version, probability)) = found {
                    known.insert(
                        id.clone(),
                        KnownListing {
                            listing: parse_listing(id, &listing)?,
                            model_version,
                            probability: probability.map(|p| p as f32),
                            queued: from_queue,
                        },
                    );
                }
            }
            Ok(known)
        })
    }

    /// Stores reviews in one transaction (all or none); their ids leave the queue. Each
    /// record's listing must carry its id. Returns how many queue entries they closed.
    pub fn add_reviews(&self, reviews: &[ReviewRecord]) -> Result<usize, StoreError> {
        self.write(|tx| add(tx, reviews), |_| {})
    }

    /// Reviews given at or after `since` (all when `None`), in the order they were given,
    /// after the review `after` (a `seq`; 0 for the start) and up to the review `until`
    /// included: at most `limit` of them. Pages of an export taken at one moment.
    pub fn reviews_page(
        &self,
        since: Option<DateTime<Utc>>,
        after: i64,
        until: i64,
        limit: usize,
    ) -> Result<Vec<StoredReview>, StoreError> {
        let since = since.map(timestamp).unwrap_or_default();
        self.with(|conn| {
            let mut statement = conn.prepare_cached(&format!(
                "{REVIEW_COLUMNS} WHERE seq > ?1 AND seq <= ?2 AND reviewed_at >= ?3
                 ORDER BY seq LIMIT ?4"
            ))?;
            let rows = statement
                .query_map(params![after, until, since, limit_param(limit)], |row| {
                    ReviewRow::try_from(row)
                })?;
            rows.map(|row| to_review(row?)).collect()
        })
    }

    /// The `seq` of the last review given (0 when there is none).
    pub fn last_review(&self) -> Result<i64, StoreError> {
        self.with(|conn| {
            Ok(
                conn.query_row("SELECT coalesce(max(seq), 0) FROM reviews", [], |r| {
                    r.get(0)
                })?,
            )
        })
    }
}

/// Reads the reviews to learn from: a store file (recognised by its SQLite header, not its
/// name) or a JSON Lines export. Either way the last review of each id wins and every
/// listing is validated; a store's bad review is named by its row (`seq`).
pub fn load_reviews(
    path: &Path,
    rates: &CurrencyRates,
    limits: &FieldLimits,
) -> Result<Vec<Reviewed>, ReviewError> {
    let name = path.display().to_string();
    let is_store = super::is_store_file(path).map_err(|source| ReviewError::Open {
        path: name.clone(),
        source,
    })?;
    if !is_store {
        return read_reviews(path, rates, limits);
    }
    let failed = |e: StoreError| ReviewError::Store {
        path: name.clone(),
        message: e.to_string(),
    };
    let store = Store::open_read_only(path).map_err(failed)?;
    if !store.has_reviews().map_err(failed)? {
        return Ok(Vec::new());
    }
    let until = store.last_review().map_err(failed)?;
    let mut records = Vec::new();
    let mut after = 0;
    loop {
        let page = store
            .reviews_page(None, after, until, EXPORT_PAGE)
            .map_err(failed)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        records.extend(page.into_iter().map(|r| Ok((r.seq as u64, r.record))));
    }
    latest_reviews(&name, records, rates, limits)
}

/// Reviews read per store call when exporting or loading.
pub const EXPORT_PAGE: usize = 1000;

const QUEUE_COLUMNS: &str = "SELECT id, listing, probability, decision, reasons, model_name, \
    model_version, scored_at, priority FROM review_queue";
const REVIEW_COLUMNS: &str = "SELECT seq, id, listing, label, reviewer, note, reviewed_at, \
    model_version, probability FROM reviews";

type QueueRow = (
    String,
    String,
    f64,
    String,
    String,
    String,
    String,
    String,
    f64,
);

fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn corrupt(id: &str, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        name: id.to_string(),
        reason: reason.to_string(),
    }
}

fn parse_listing(id: &str, json: &str) -> Result<RawListing, StoreError> {
    serde_json::from_str(json).map_err(|e| corrupt(id, e))
}

fn parse_time(id: &str, text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| corrupt(id, format!("time `{text}`: {e}")))
}

fn to_entry(
    (id, listing, probability, decision, reasons, model_name, model_version, scored_at, priority): QueueRow,
) -> Result<QueueEntry, StoreError> {
    let decision = Decision::ALL
        .into_iter()
        .find(|d| d.as_str() == decision)
        .ok_or_else(|| corrupt(&id, format!("unknown decision `{decision}`")))?;
    Ok(QueueEntry {
        listing: parse_listing(&id, &listing)?,
        probability: probability as f32,
        decision,
        reasons: serde_json::from_str(&reasons).map_err(|e| corrupt(&id, e))?,
        model_name,
        model_version,
        scored_at: parse_time(&id, &scored_at)?,
        priority,
        id,
    })
}

type ReviewRow = (
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<f64>,
);

fn to_review(
    (seq, id, listing, label, reviewer, note, reviewed_at, model_version, probability): ReviewRow,
) -> Result<StoredReview, StoreError> {
    let label = [ReviewLabel::Counterfeit, ReviewLabel::Genuine]
        .into_iter()
        .find(|l| l.as_str() == label)
        .ok_or_else(|| corrupt(&id, format!("unknown label `{label}`")))?;
    Ok(StoredReview {
        seq,
        record: ReviewRecord {
            listing: parse_listing(&id, &listing)?,
            label,
            reviewer,
            reviewed_at: parse_time(&id, &reviewed_at)?,
            model_version,
            probability: probability.map(|p| p as f32),
            note,
        },
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Task(format!("cannot encode: {e}")))
}

fn queue(tx: &Transaction<'_>, entries: &[QueueEntry], max: usize) -> Result<Queued, StoreError> {
    let mut outcome = Queued::default();
    {
        let mut reviewed = tx.prepare_cached(
            "SELECT listing FROM reviews WHERE id = ?1 ORDER BY seq DESC LIMIT 1",
        )?;
        let mut insert = tx.prepare_cached(
            "INSERT OR REPLACE INTO review_queue (id, listing, probability, decision, reasons,
                 model_name, model_version, scored_at, priority)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for entry in entries {
            let listing = to_json(&entry.listing)?;
            let last: Option<String> = reviewed.query_row([&entry.id], |r| r.get(0)).optional()?;
            if last.as_deref() == Some(listing.as_str()) {
                outcome.already_reviewed += 1;
                continue;
            }
            insert.execute(params![
                entry.id,
                listing,
                f64::from(entry.probability),
                entry.decision.as_str(),
                to_json(&entry.reasons)?,
                entry.model_name,
                entry.model_version,
                timestamp(entry.scored_at),
                entry.priority,
            ])?;
            outcome.written += 1;
        }
    }
    outcome.dropped_oldest = trim(tx, max)?;
    Ok(outcome)
}

/// Drops the oldest entries beyond `max`.
fn trim(conn: &Connection, max: usize) -> Result<usize, StoreError> {
    let Some(oldest_kept): Option<i64> = conn
        .query_row(
            "SELECT seq FROM review_queue ORDER BY seq DESC LIMIT 1 OFFSET ?1",
            [limit_param(max.saturating_sub(1))],
            |r| r.get(0),
        )
        .optional()?
    else {
        return Ok(0);
    };
    Ok(conn.execute("DELETE FROM review_queue WHERE seq < ?1", [oldest_kept])?)
}

fn add(tx: &Transaction<'_>, reviews: &[ReviewRecord]) -> Result<usize, StoreError> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO reviews (id, listing, label, reviewer, note, reviewed_at, model_version,
             probability)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    let mut dequeue = tx.prepare_cached("DELETE FROM review_queue WHERE id = ?1")?;
    let mut closed = 0;
    for review in reviews {
        let id = match &review.listing.id {
            Some(id) => id.clone().into_string(),
            None => return Err(corrupt("", "a review's listing has no id")),
        };
        insert.execute(params![
            id,
            to_json(&review.listing)?,
            review.label.as_str(),
            review.reviewer,
            review.note,
            timestamp(review.reviewed_at),
            review.model_version,
            review.probability.map(f64::from),
        ])?;
        closed += dequeue.execute([&id])?;
    }
    Ok(closed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::listing::RawId;
    use chrono::Duration;

    fn listing(id: &str, title: &str) -> RawListing {
        RawListing {
            id: Some(RawId::Text(id.into())),
            title: Some(title.into()),
            ..RawListing::default()
        }
    }

    fn entry(id: &str, priority: f64) -> QueueEntry {
        QueueEntry {
            id: id.into(),
            listing: listing(id, &format!("listing {id}")),
            probability: 0.4,
            decision: Decision::Review,
            reasons: vec![Reason {
                text: "word `replica`".into(),
                weight: 1.5,
            }],
            model_name: "m".into(),
            model_version: "v1".into(),
            scored_at: now(),
            priority,
        }
    }

    fn review(id: &str, title: &str, label: ReviewLabel, at: DateTime<Utc>) -> ReviewRecord {
        ReviewRecord {
            listing: listing(id, title),
            label,
            reviewer: "kim".into(),
            reviewed_at: at,
            model_version: Some("v1".into()),
            probability: Some(0.4),
            note: None,
        }
    }

    fn ids(entries: &[QueueEntry]) -> Vec<&str> {
        entries.iter().map(|e| e.id.as_str()).collect()
    }

    #[test]
    fn the_queue_keeps_its_bound_by_dropping_the_oldest() {
        let store = Store::open_in_memory().unwrap();
        let first: Vec<QueueEntry> = ["a", "b", "c"].map(|id| entry(id, 1.0)).into();
        assert_eq!(store.queue_for_review(&first, 4).unwrap().written, 3);
        // Re-scoring `a` makes it the newest: `b` and `c` are now the oldest.
        let later = [entry("a", 1.0), entry("d", 1.0), entry("e", 1.0)];
        let queued = store.queue_for_review(&later, 4).unwrap();
        assert_eq!(
            queued,
            Queued {
                written: 3,
                already_reviewed: 0,
                dropped_oldest: 1
            }
        );
        assert_eq!(store.review_queue_len().unwrap(), 4);
        let mut kept = ids(&store.review_queue(10).unwrap())
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        kept.sort();
        assert_eq!(kept, ["a", "c", "d", "e"]);
        assert_eq!(
            store
                .queue_for_review(&[entry("f", 1.0)], 1)
                .unwrap()
                .dropped_oldest,
            4
        );
        assert_eq!(ids(&store.review_queue(10).unwrap()), ["f"]);
    }

    #[test]
    fn the_queue_comes_smallest_priority_first_and_a_rescored_id_replaces_its_entry() {
        let store = Store::open_in_memory().unwrap();
        let entries = [
            entry("far", 3.0),
            entry("near", 0.1),
            entry("mid", 1.0),
            entry("tie", 1.0),
        ];
        store.queue_for_review(&entries, 100).unwrap();
        assert_eq!(
            ids(&store.review_queue(10).unwrap()),
            ["near", "tie", "mid", "far"]
        );
        assert_eq!(ids(&store.review_queue(2).unwrap()), ["near", "tie"]);
        let rescored = QueueEntry {
            probability: 0.7,
            listing: listing("far", "a new title"),
            ..entry("far", 0.01)
        };
        store
            .queue_for_review(std::slice::from_ref(&rescored), 100)
            .unwrap();
        let queue = store.review_queue(10).unwrap();
        assert_eq!(queue.len(), 4);
        assert_eq!(queue[0], rescored, "every field round-trips");
    }

    #[test]
    fn reviewed_ids_leave_the_queue_and_come_back_only_changed() {
        let store = Store::open_in_memory().unwrap();
        store
            .queue_for_review(&[entry("a", 1.0), entry("b", 1.0)], 100)
            .unwrap();
        let known = store
            .known_listings(&["a".into(), "nobody".into()])
            .unwrap();
        assert_eq!(known.len(), 1);
        assert!(known["a"].queued);
        assert_eq!(known["a"].listing, entry("a", 1.0).listing);
        let reviewed = review("a", "listing a", ReviewLabel::Counterfeit, now());
        assert_eq!(store.add_reviews(&[reviewed]).unwrap(), 1);
        assert_eq!(ids(&store.review_queue(10).unwrap()), ["b"]);
        // Still known, from its review, for a correction.
        let known = store.known_listings(&["a".into()]).unwrap();
        assert!(!known["a"].queued);
        assert_eq!(known["a"].probability, Some(0.4));
        // Scored again unchanged: not queued again; changed: queued.
        let again = store.queue_for_review(&[entry("a", 1.0)], 100).unwrap();
        assert_eq!((again.written, again.already_reviewed), (0, 1));
        let changed = QueueEntry {
            listing: listing("a", "now a different listing"),
            ..entry("a", 1.0)
        };
        assert_eq!(store.queue_for_review(&[changed], 100).unwrap().written, 1);
        assert_eq!(store.review_queue_len().unwrap(), 2);
    }

    #[test]
    fn a_review_without_an_id_writes_nothing() {
        let store = Store::open_in_memory().unwrap();
        let mut bad = review("x", "t", ReviewLabel::Genuine, now());
        bad.listing.id = None;
        let good = review("y", "t", ReviewLabel::Genuine, now());
        assert!(store.add_reviews(&[good, bad]).is_err());
        assert_eq!(store.last_review().unwrap(), 0, "all or none");
    }

    #[test]
    fn pages_of_reviews_follow_the_order_given_from_a_time_on() {
        let store = Store::open_in_memory().unwrap();
        let start = now();
        let reviews: Vec<ReviewRecord> = (0..5)
            .map(|i| {
                review(
                    &format!("r{i}"),
                    "t",
                    ReviewLabel::Genuine,
                    start + Duration::seconds(i),
                )
            })
            .collect();
        store.add_reviews(&reviews[..3]).unwrap();
        store.add_reviews(&reviews[3..]).unwrap();
        let until = store.last_review().unwrap();
        let all = store.reviews_page(None, 0, until, 100).unwrap();
        assert_eq!(
            all.iter().map(|r| &r.record).collect::<Vec<_>>(),
            reviews.iter().collect::<Vec<_>>()
        );
        let page = store.reviews_page(None, all[1].seq, until, 2).unwrap();
        assert_eq!(page.len(), 2);
        assert_eq!(page[0].record, reviews[2]);
        let since = store
            .reviews_page(Some(start + Duration::seconds(3)), 0, until, 100)
            .unwrap();
        assert_eq!(since.len(), 2);
        let before_more = store.reviews_page(None, 0, all[2].seq, 100).unwrap();
        assert_eq!(before_more.len(), 3, "later reviews are past `until`");
    }

    #[test]
    fn training_reads_reviews_from_a_store_whatever_its_name_and_from_an_export() {
        let dir = tempfile::tempdir().unwrap();
        // A store named like an export is still read as a store.
        let path = dir.path().join("reviews.jsonl");
        let store = Store::open(&path).unwrap();
        let at = now();
        store
            .add_reviews(&[
                review("a", "Rolex watch", ReviewLabel::Counterfeit, at),
                review("b", "leash", ReviewLabel::Genuine, at),
                review("a", "Rolex watch", ReviewLabel::Genuine, at),
            ])
            .unwrap();
        drop(store);
        assert!(crate::store::is_store_file(&path).unwrap());
        let rates = CurrencyRates::default();
        let limits = FieldLimits::default();
        let got = load_reviews(&path, &rates, &limits).unwrap();
        let summary: Vec<(&str, bool, u64)> = got
            .iter()
            .map(|r| (r.listing.id.as_str(), r.counterfeit, r.line))
            .collect();
        assert_eq!(summary, [("a", false, 3), ("b", false, 2)]);

        // An export named like a store is read as JSON Lines.
        let export = dir.path().join("export.db");
        let line =
            serde_json::to_string(&review("c", "bag", ReviewLabel::Counterfeit, at)).unwrap();
        std::fs::write(&export, format!("{line}\n")).unwrap();
        assert!(!crate::store::is_store_file(&export).unwrap());
        let got = load_reviews(&export, &rates, &limits).unwrap();
        assert_eq!(
            (got[0].listing.id.as_str(), got[0].counterfeit),
            ("c", true)
        );

        // A bad review in a store is named by its row.
        let store = Store::open(&path).unwrap();
        store
            .add_reviews(&[review("d", "   ", ReviewLabel::Genuine, at)])
            .unwrap();
        drop(store);
        let error = load_reviews(&path, &rates, &limits)
            .unwrap_err()
            .to_string();
        assert!(error.contains("reviews.jsonl:4: field `title`"), "{error}");
        let missing = load_reviews(&dir.path().join("nothing.db"), &rates, &limits);
        assert!(matches!(missing, Err(ReviewError::Open { .. })));
    }

    #[test]
    fn a_store_from_before_the_reviews_reads_as_having_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let mut conn = Connection::open(&path).unwrap();
        super::super::migrations::migrate(
            &mut conn,
            "old",
            &super::super::migrations::MIGRATIONS[..1],
        )
        .unwrap();
        drop(conn);
        let got = load_reviews(&path, &CurrencyRates::default(), &FieldLimits::default()).unwrap();
        assert!(got.is_empty());
        // Reading did not migrate it.
        let conn = Connection::open(&path).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, 1);
    }
}
