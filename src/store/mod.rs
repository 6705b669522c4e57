//! The embedded state store: one SQLite file, `driftd.sqlite`, under the
//! state directory (operators can open it with `sqlite3`). A checkpoint
//! writes the engine's state, the consumed offsets and the windows closed
//! since the last checkpoint in one transaction, so after a crash the store
//! holds either all of a checkpoint or none of it. Offsets are committed to
//! Kafka only after that transaction, so Kafka's committed offsets never run
//! ahead of the state: on restart the consumer may see events the state
//! already holds, and skips them by offset.
//!
//! The journal is SQLite's write-ahead log with `synchronous = FULL`: a
//! committed transaction survives a process kill and a power cut.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

/// File name of the store inside the state directory.
pub const FILE_NAME: &str = "driftd.sqlite";
/// Schema version, kept in SQLite's `user_version`.
const SCHEMA_VERSION: i64 = 7;

/// A window report's end (`$.window.end`, RFC 3339) as epoch milliseconds,
/// in SQL: the windows are listed by it through an index.
const WINDOW_END_MS: &str = "CAST(ROUND((julianday(json_extract(report, '$.window.end')) - 2440587.5) * 86400000.0) AS INTEGER)";

/// Next offset to consume, by (topic, partition).
pub type Offsets = BTreeMap<(String, i32), i64>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    // `cause`, not `source`: the message carries it, so an error chain
    // printed with `{:#}` does not say it twice.
    #[error("state store {path}: {cause}")]
    Sqlite {
        path: PathBuf,
        cause: rusqlite::Error,
    },
    #[error("state directory {path}: {cause}")]
    Dir {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error(
        "state store {path} has schema version {found}; this driftd knows version {SCHEMA_VERSION}"
    )]
    Schema { path: PathBuf, found: i64 },
}

/// One model version's part of the engine state: (model, version, bytes).
pub type VersionState<'a> = (&'a str, &'a str, &'a [u8]);

/// What the last checkpoint holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// The core part of a [`crate::monitor::engine::Snapshot`] (or a whole
    /// snapshot of the format before parts).
    pub engine: Vec<u8>,
    /// Its parts per model version: (model, version, state).
    pub engine_versions: Vec<(String, String, Vec<u8>)>,
    pub offsets: Offsets,
    /// Checkpoints written so far (1 for the first).
    pub sequence: u64,
}

/// A closed window as stored: its identity and its JSON report.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredWindow {
    pub model: String,
    pub model_version: String,
    pub index: u64,
    pub report_json: String,
}

/// A rule's decision as stored. Fired decisions are the outbox: `delivery`
/// is `pending` until a delivery worker sends them.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDecision {
    /// Deterministic (model, version, window, rule): the same window judged
    /// twice (a replay after a crash) cannot store a second decision.
    pub id: String,
    pub model: String,
    pub model_version: String,
    pub window_index: u64,
    pub rule: String,
    pub action: String,
    /// `fired`, `dry_run` or `suppressed: <reason>`.
    pub outcome: String,
    pub window_end: String,
    /// `pending` for fired decisions (the outbox); `None` otherwise.
    pub delivery: Option<String>,
    pub decision_json: String,
    /// Targets to deliver a fired decision to (one `deliveries` row each).
    pub targets: Vec<String>,
}

/// A delivery due for an attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct DueDelivery {
    pub decision_id: String,
    pub target: String,
    pub attempts: u32,
    pub decision_json: String,
}

/// A delivery as the API lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRow {
    pub decision_id: String,
    pub target: String,
    pub state: String,
    pub attempts: u32,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub decision_json: String,
}

/// Where one target's delivery of a decision stands.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DeliveryTarget {
    pub target: String,
    pub state: String,
    pub attempts: u32,
    pub last_status: Option<u16>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    Delivered {
        status: u16,
    },
    Retry {
        status: Option<u16>,
        error: String,
        next_attempt_ms: i64,
    },
    Dead {
        status: Option<u16>,
        error: String,
    },
    /// The request may have been acted on but no answer came (a timeout
    /// after sending) to a target that does not deduplicate: not sent again
    /// until an operator says so (`POST /api/v1/deliveries/{id}/retry`).
    Unknown {
        error: String,
    },
}

/// Decisions made since the last checkpoint, and the rules' guardrail state
/// after them (and the estimator versions trained meanwhile): written in the
/// checkpoint's transaction.
#[derive(Debug, Clone, Copy, Default)]
pub struct DecisionBatch<'a> {
    pub decisions: &'a [StoredDecision],
    /// `rules::DeciderState` as JSON; `None` leaves the stored one.
    pub decider_state: Option<&'a str>,
    /// Settled decisions kept (0: all); the oldest beyond are pruned.
    pub keep: u64,
    /// Caption-quality estimator versions trained since the last checkpoint.
    pub estimator_versions: &'a [StoredEstimatorVersion],
}

/// A caption-quality estimator version as stored (`estimator_versions`).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEstimatorVersion {
    pub model: String,
    pub version: u32,
    pub trained_at: String,
    pub trigger: String,
    pub training_samples: u64,
    pub validation_rmse: f64,
    pub incumbent_rmse: Option<f64>,
    pub accepted: bool,
    /// The whole version (with the model's weights) as JSON.
    pub record_json: String,
}

/// The state store.
/// Every write transaction takes the write lock when it begins. A deferred
/// one that reads first and writes later cannot wait for another connection's
/// write (the daemon's checkpoints and the delivery worker's records are two
/// connections): SQLite answers `database is locked` at once instead of
/// using the busy timeout.
const IMMEDIATE: rusqlite::TransactionBehavior = rusqlite::TransactionBehavior::Immediate;

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Open (creating when missing) the store in `dir` for reading and writing.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|cause| StoreError::Dir {
            path: dir.to_owned(),
            cause,
        })?;
        let path = dir.join(FILE_NAME);
        let conn = Connection::open(&path).map_err(|cause| StoreError::Sqlite {
            path: path.clone(),
            cause,
        })?;
        let store = Self { conn, path };
        store.init()?;
        Ok(store)
    }

    /// Open an existing store read-only (the HTTP API's view; WAL lets it
    /// read while the daemon writes).
    pub fn open_read_only(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(FILE_NAME);
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|cause| StoreError::Sqlite {
            path: path.clone(),
            cause,
        })?;
        let store = Self { conn, path };
        store
            .conn
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| store.err(e))?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            cause: source,
        }
    }

    fn init(&self) -> Result<(), StoreError> {
        let c = &self.conn;
        c.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| self.err(e))?;
        c.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| self.err(e))?;
        c.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| self.err(e))?;
        let version: i64 = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| self.err(e))?;
        match version {
            0 => {
                c.execute_batch(
                    "BEGIN;
                     CREATE TABLE IF NOT EXISTS engine (
                         id INTEGER PRIMARY KEY CHECK (id = 1),
                         sequence INTEGER NOT NULL,
                         state BLOB NOT NULL,
                         written_at TEXT NOT NULL
                     );
                     CREATE TABLE IF NOT EXISTS offsets (
                         topic TEXT NOT NULL,
                         partition INTEGER NOT NULL,
                         next_offset INTEGER NOT NULL,
                         PRIMARY KEY (topic, partition)
                     );
                     CREATE TABLE IF NOT EXISTS windows (
                         model TEXT NOT NULL,
                         model_version TEXT NOT NULL,
                         window_index INTEGER NOT NULL,
                         report TEXT NOT NULL,
                         PRIMARY KEY (model, model_version, window_index)
                     );
                     PRAGMA user_version = 1;
                     COMMIT;",
                )
                .map_err(|e| self.err(e))?;
                self.init()
            }
            1 => {
                // Version 2 adds the rules' state and decisions (the outbox).
                c.execute_batch(
                    "BEGIN;
                     CREATE TABLE IF NOT EXISTS decider (
                         id INTEGER PRIMARY KEY CHECK (id = 1),
                         state TEXT NOT NULL
                     );
                     CREATE TABLE IF NOT EXISTS decisions (
                         id TEXT PRIMARY KEY,
                         model TEXT NOT NULL,
                         model_version TEXT NOT NULL,
                         window_index INTEGER NOT NULL,
                         rule TEXT NOT NULL,
                         action TEXT NOT NULL,
                         outcome TEXT NOT NULL,
                         window_end TEXT NOT NULL,
                         delivery TEXT,
                         decision TEXT NOT NULL
                     );
                     CREATE INDEX IF NOT EXISTS decisions_delivery ON decisions (delivery)
                         WHERE delivery IS NOT NULL;
                     PRAGMA user_version = 2;
                     COMMIT;",
                )
                .map_err(|e| self.err(e))?;
                self.init()
            }
            2 => {
                // Version 3 adds deliveries: one row per fired decision and target.
                c.execute_batch(
                    "BEGIN;
                     CREATE TABLE IF NOT EXISTS deliveries (
                         decision_id TEXT NOT NULL,
                         target TEXT NOT NULL,
                         state TEXT NOT NULL,
                         attempts INTEGER NOT NULL,
                         next_attempt_ms INTEGER NOT NULL,
                         last_status INTEGER,
                         last_error TEXT,
                         PRIMARY KEY (decision_id, target)
                     );
                     CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (next_attempt_ms)
                         WHERE state = 'pending';
                     CREATE TABLE IF NOT EXISTS disabled_targets (
                         name TEXT PRIMARY KEY,
                         reason TEXT NOT NULL
                     );
                     PRAGMA user_version = 3;
                     COMMIT;",
                )
                .map_err(|e| self.err(e))?;
                self.init()
            }
            3 => {
                // Version 4: when a delivery entered the outbox (wall clock),
                // for the age of the oldest pending one.
                c.execute_batch(
                    "BEGIN;
                     ALTER TABLE deliveries ADD COLUMN created_ms INTEGER NOT NULL DEFAULT 0;
                     PRAGMA user_version = 4;
                     COMMIT;",
                )
                .map_err(|e| self.err(e))?;
                self.init()
            }
            4 => {
                // Version 5: every caption-quality estimator version, with
                // its validation error and whether it replaced the current one.
                c.execute_batch(
                    "BEGIN;
                     CREATE TABLE IF NOT EXISTS estimator_versions (
                         model TEXT NOT NULL,
                         version INTEGER NOT NULL,
                         trained_at TEXT NOT NULL,
                         trigger TEXT NOT NULL,
                         training_samples INTEGER NOT NULL,
                         validation_rmse REAL NOT NULL,
                         incumbent_rmse REAL,
                         accepted INTEGER NOT NULL,
                         record TEXT NOT NULL,
                         PRIMARY KEY (model, version)
                     );
                     PRAGMA user_version = 5;
                     COMMIT;",
                )
                .map_err(|e| self.err(e))?;
                self.init()
            }
            5 => {
                // Version 6: windows carry their end time as a column with
                // indexes, so the newest are found without reading them all.
                c.execute_batch(&format!(
                    "BEGIN;
                     ALTER TABLE windows ADD COLUMN window_end_ms INTEGER NOT NULL DEFAULT 0;
                     UPDATE windows SET window_end_ms = {WINDOW_END_MS};
                     CREATE INDEX IF NOT EXISTS windows_newest
                         ON windows (window_end_ms DESC, window_index DESC);
                     CREATE INDEX IF NOT EXISTS windows_newest_by_model
                         ON windows (model, window_end_ms DESC, window_index DESC);
                     PRAGMA user_version = 6;
                     COMMIT;"
                ))
                .map_err(|e| self.err(e))?;
                self.init()
            }
            6 => {
                // Version 7: the engine's state in parts, one row per model
                // version beside the `engine` row (the rest), so no single
                // value grows with the number of versions.
                c.execute_batch(
                    "BEGIN;
                     CREATE TABLE IF NOT EXISTS engine_versions (
                         model TEXT NOT NULL,
                         model_version TEXT NOT NULL,
                         state BLOB NOT NULL,
                         PRIMARY KEY (model, model_version)
                     );
                     PRAGMA user_version = 7;
                     COMMIT;",
                )
                .map_err(|e| self.err(e))?;
                Ok(())
            }
            SCHEMA_VERSION => Ok(()),
            found => Err(StoreError::Schema {
                path: self.path.clone(),
                found,
            }),
        }
    }

    /// The last checkpoint, if any.
    pub fn load(&self) -> Result<Option<Checkpoint>, StoreError> {
        let row: Option<(u64, Vec<u8>)> = self
            .conn
            .query_row("SELECT sequence, state FROM engine WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(|e| self.err(e))?;
        let Some((sequence, engine)) = row else {
            return Ok(None);
        };
        let mut stmt = self
            .conn
            .prepare("SELECT model, model_version, state FROM engine_versions")
            .map_err(|e| self.err(e))?;
        let engine_versions = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        Ok(Some(Checkpoint {
            engine,
            engine_versions,
            offsets: self.offsets()?,
            sequence,
        }))
    }

    /// Offsets of the last checkpoint.
    pub fn offsets(&self) -> Result<Offsets, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT topic, partition, next_offset FROM offsets")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Offsets, _>>()
            .map_err(|e| self.err(e))
    }

    /// Write a checkpoint in one transaction: the engine state, the offsets
    /// (merged over the stored ones) and the windows closed since the last
    /// checkpoint; windows beyond `history` per model version are pruned.
    /// Returns the checkpoint's sequence number.
    pub fn checkpoint(
        &mut self,
        engine: &[u8],
        offsets: &Offsets,
        windows: &[StoredWindow],
        history: u64,
    ) -> Result<u64, StoreError> {
        self.checkpoint_with(engine, offsets, windows, DecisionBatch::default(), history)
    }

    /// [`Store::checkpoint`], with the rules' decisions and state in the same
    /// transaction: a crash can neither lose a decision nor make it twice.
    pub fn checkpoint_with(
        &mut self,
        engine: &[u8],
        offsets: &Offsets,
        windows: &[StoredWindow],
        decisions: DecisionBatch<'_>,
        history: u64,
    ) -> Result<u64, StoreError> {
        self.checkpoint_parts((engine, &[]), offsets, windows, decisions, history)
    }

    /// [`Store::checkpoint_with`] of an engine state in parts: the core and
    /// one (model, version, state) per model version. The stored parts are
    /// replaced by these.
    pub fn checkpoint_parts(
        &mut self,
        (engine, versions): (&[u8], &[VersionState<'_>]),
        offsets: &Offsets,
        windows: &[StoredWindow],
        decisions: DecisionBatch<'_>,
        history: u64,
    ) -> Result<u64, StoreError> {
        let path = self.path.clone();
        let err = |cause| StoreError::Sqlite {
            path: path.clone(),
            cause,
        };
        let tx = self
            .conn
            .transaction_with_behavior(IMMEDIATE)
            .map_err(err)?;
        let sequence: u64 = tx
            .query_row("SELECT sequence FROM engine WHERE id = 1", [], |r| r.get(0))
            .optional()
            .map_err(err)?
            .unwrap_or(0)
            + 1;
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        tx.execute(
            "INSERT INTO engine (id, sequence, state, written_at) VALUES (1, ?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET sequence = ?1, state = ?2, written_at = ?3",
            params![sequence, engine, now],
        )
        .map_err(err)?;
        tx.execute("DELETE FROM engine_versions", []).map_err(err)?;
        {
            let mut part = tx
                .prepare_cached(
                    "INSERT INTO engine_versions (model, model_version, state) VALUES (?1, ?2, ?3)",
                )
                .map_err(err)?;
            for (model, version, state) in versions {
                part.execute(params![model, version, state]).map_err(err)?;
            }
        }
        {
            let mut up = tx
                .prepare_cached(
                    "INSERT INTO offsets (topic, partition, next_offset) VALUES (?1, ?2, ?3)
                     ON CONFLICT (topic, partition) DO UPDATE SET next_offset = ?3",
                )
                .map_err(err)?;
            for ((topic, partition), next) in offsets {
                up.execute(params![topic, partition, next]).map_err(err)?;
            }
            let mut ins = tx
                .prepare_cached(&format!(
                    "INSERT OR REPLACE INTO windows (model, model_version, window_index, report, window_end_ms)
                     SELECT ?1, ?2, ?3, report, {WINDOW_END_MS} FROM (SELECT ?4 AS report)"
                ))
                .map_err(err)?;
            let mut prune = tx
                .prepare_cached(
                    "DELETE FROM windows WHERE model = ?1 AND model_version = ?2 AND window_index < ?3",
                )
                .map_err(err)?;
            for w in windows {
                ins.execute(params![w.model, w.model_version, w.index, w.report_json])
                    .map_err(err)?;
                if w.index >= history {
                    prune
                        .execute(params![w.model, w.model_version, w.index + 1 - history])
                        .map_err(err)?;
                }
            }
            let mut dec = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO decisions (id, model, model_version, window_index, rule,
                         action, outcome, window_end, delivery, decision)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .map_err(err)?;
            for d in decisions.decisions {
                dec.execute(params![
                    d.id,
                    d.model,
                    d.model_version,
                    d.window_index,
                    d.rule,
                    d.action,
                    d.outcome,
                    d.window_end,
                    d.delivery,
                    d.decision_json
                ])
                .map_err(err)?;
            }
            let mut dl = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO deliveries (decision_id, target, state, attempts, next_attempt_ms, created_ms)
                     VALUES (?1, ?2, 'pending', 0, 0, ?3)",
                )
                .map_err(err)?;
            let now = crate::event::wall_clock_ms();
            for d in decisions
                .decisions
                .iter()
                .filter(|d| d.delivery.as_deref() == Some("pending"))
            {
                for t in &d.targets {
                    dl.execute(params![d.id, t, now]).map_err(err)?;
                }
            }
            if decisions.keep > 0 && !decisions.decisions.is_empty() {
                Self::prune_decisions(&tx, decisions.keep).map_err(err)?;
            }
            let mut est = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO estimator_versions (model, version, trained_at, trigger,
                         training_samples, validation_rmse, incumbent_rmse, accepted, record)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .map_err(err)?;
            for v in decisions.estimator_versions {
                est.execute(params![
                    v.model,
                    v.version,
                    v.trained_at,
                    v.trigger,
                    v.training_samples,
                    v.validation_rmse,
                    v.incumbent_rmse,
                    v.accepted,
                    v.record_json
                ])
                .map_err(err)?;
            }
            if let Some(state) = decisions.decider_state {
                tx.execute(
                    "INSERT INTO decider (id, state) VALUES (1, ?1)
                     ON CONFLICT (id) DO UPDATE SET state = ?1",
                    params![state],
                )
                .map_err(err)?;
            }
        }
        tx.commit().map_err(err)?;
        Ok(sequence)
    }

    /// Stored windows of `model` (every model when `None`), newest first
    /// (by window end, then index), at most `limit`.
    pub fn windows(
        &self,
        model: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredWindow>, StoreError> {
        // Two statements, so each is answered from its index.
        let rows = match model {
            Some(m) => {
                let mut stmt = self
                    .conn
                    .prepare_cached(
                        "SELECT model, model_version, window_index, report FROM windows
                         WHERE model = ?1
                         ORDER BY window_end_ms DESC, window_index DESC
                         LIMIT ?2",
                    )
                    .map_err(|e| self.err(e))?;
                let rows = stmt
                    .query_map(params![m, limit as i64], window_row)
                    .map_err(|e| self.err(e))?;
                rows.collect::<Result<Vec<_>, _>>()
            }
            None => {
                let mut stmt = self
                    .conn
                    .prepare_cached(
                        "SELECT model, model_version, window_index, report FROM windows
                         ORDER BY window_end_ms DESC, window_index DESC
                         LIMIT ?1",
                    )
                    .map_err(|e| self.err(e))?;
                let rows = stmt
                    .query_map(params![limit as i64], window_row)
                    .map_err(|e| self.err(e))?;
                rows.collect::<Result<Vec<_>, _>>()
            }
        };
        rows.map_err(|e| self.err(e))
    }

    /// Deliveries due at `now_ms` (oldest first), skipping disabled targets.
    pub fn due_deliveries(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT d.decision_id, d.target, d.attempts, c.decision
                 FROM deliveries d JOIN decisions c ON c.id = d.decision_id
                 WHERE d.state = 'pending' AND d.next_attempt_ms <= ?1
                   AND d.target NOT IN (SELECT name FROM disabled_targets)
                 ORDER BY d.next_attempt_ms, c.window_end, d.target
                 LIMIT ?2",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![now_ms, limit as i64], |r| {
                Ok(DueDelivery {
                    decision_id: r.get(0)?,
                    target: r.get(1)?,
                    attempts: r.get(2)?,
                    decision_json: r.get(3)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// Record an attempt, and the decision's delivery state once every
    /// target is done (`delivered`, or `dead` if any target's is).
    pub fn record_attempt(
        &mut self,
        decision_id: &str,
        target: &str,
        attempt: &Attempt,
    ) -> Result<(), StoreError> {
        let (state, status, error, next) = match attempt {
            Attempt::Delivered { status } => ("delivered", Some(*status), None, 0),
            Attempt::Retry {
                status,
                error,
                next_attempt_ms,
            } => ("pending", *status, Some(error.as_str()), *next_attempt_ms),
            Attempt::Dead { status, error } => ("dead", *status, Some(error.as_str()), 0),
            Attempt::Unknown { error } => ("unknown", None, Some(error.as_str()), 0),
        };
        self.write(|tx| {
            tx.execute(
                "UPDATE deliveries SET state = ?3, attempts = attempts + 1, next_attempt_ms = ?4,
                     last_status = ?5, last_error = ?6
                 WHERE decision_id = ?1 AND target = ?2",
                params![decision_id, target, state, next, status, error],
            )?;
            Self::settle(tx, decision_id)
        })
    }

    fn settle(tx: &rusqlite::Transaction<'_>, decision_id: &str) -> rusqlite::Result<()> {
        tx.execute(
            "UPDATE decisions SET delivery = CASE
                 WHEN EXISTS (SELECT 1 FROM deliveries WHERE decision_id = ?1 AND state = 'dead') THEN 'dead'
                 WHEN EXISTS (SELECT 1 FROM deliveries WHERE decision_id = ?1 AND state = 'unknown') THEN 'unknown'
                 ELSE 'delivered' END
             WHERE id = ?1 AND NOT EXISTS
                 (SELECT 1 FROM deliveries WHERE decision_id = ?1 AND state IN ('pending', 'sending'))",
            params![decision_id],
        )?;
        Ok(())
    }

    /// Keep at most `keep` settled decisions (suppressed, delivered, no
    /// target), dropping the oldest by window end with their deliveries. It
    /// runs once the table is a tenth over, so its cost is spread out.
    fn prune_decisions(tx: &rusqlite::Transaction<'_>, keep: u64) -> rusqlite::Result<()> {
        let settled = "SELECT id FROM decisions
             WHERE delivery IS NULL OR delivery IN ('delivered', 'no_target')
             ORDER BY window_end DESC, id LIMIT -1 OFFSET ?1";
        let n: u64 = tx.query_row(
            "SELECT COUNT(*) FROM decisions WHERE delivery IS NULL OR delivery IN ('delivered', 'no_target')",
            [],
            |r| r.get(0),
        )?;
        if n <= keep + keep / 10 {
            return Ok(());
        }
        tx.execute(
            &format!("DELETE FROM deliveries WHERE decision_id IN ({settled})"),
            params![keep],
        )?;
        tx.execute(
            &format!("DELETE FROM decisions WHERE id IN ({settled})"),
            params![keep],
        )?;
        Ok(())
    }

    /// Mark a delivery as being sent, durably, before a request to a target
    /// that does not deduplicate: if driftd dies before the answer is
    /// recorded, [`Store::interrupted_sends`] turns it into `unknown`
    /// instead of sending it twice.
    pub fn begin_send(&mut self, decision_id: &str, target: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE deliveries SET state = 'sending' WHERE decision_id = ?1 AND target = ?2",
                params![decision_id, target],
            )?;
            Ok(())
        })
    }

    /// At start: sends interrupted by a stop have an unknown outcome.
    pub fn interrupted_sends(&mut self) -> Result<usize, StoreError> {
        self.write(|tx| {
            let ids: Vec<String> = tx
                .prepare("SELECT DISTINCT decision_id FROM deliveries WHERE state = 'sending'")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let n = tx.execute(
                "UPDATE deliveries SET state = 'unknown', attempts = attempts + 1,
                     last_error = 'driftd stopped while this request was being sent; it may have been acted on'
                 WHERE state = 'sending'",
                [],
            )?;
            for id in ids {
                Self::settle(tx, &id)?;
            }
            Ok(n)
        })
    }

    /// A target answered 410 Gone: it is disabled and its pending deliveries
    /// are dead.
    pub fn disable_target(&mut self, name: &str, reason: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO disabled_targets (name, reason) VALUES (?1, ?2)",
                params![name, reason],
            )?;
            let ids: Vec<String> = tx
                .prepare("SELECT decision_id FROM deliveries WHERE target = ?1 AND state = 'pending'")?
                .query_map(params![name], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            tx.execute(
                "UPDATE deliveries SET state = 'dead', last_error = ?2 WHERE target = ?1 AND state = 'pending'",
                params![name, reason],
            )?;
            ids.iter().try_for_each(|id| Self::settle(tx, id))
        })
    }

    /// Deliveries still pending, and when the oldest entered the outbox
    /// (wall clock, epoch ms), for the metrics.
    pub fn pending_deliveries(&self) -> Result<(u64, Option<i64>), StoreError> {
        self.conn
            .query_row(
                "SELECT COUNT(*), MIN(created_ms) FROM deliveries WHERE state IN ('pending', 'sending')",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| self.err(e))
    }

    /// Deliveries in `state` (`pending`, `delivered`, `dead`), newest
    /// decision first, at most `limit`.
    pub fn deliveries(&self, state: &str, limit: usize) -> Result<Vec<DeliveryRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT d.decision_id, d.target, d.state, d.attempts, d.last_status, d.last_error, c.decision
                 FROM deliveries d JOIN decisions c ON c.id = d.decision_id
                 WHERE d.state = ?1 ORDER BY c.window_end DESC, d.target LIMIT ?2",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![state, limit as i64], |r| {
                Ok(DeliveryRow {
                    decision_id: r.get(0)?,
                    target: r.get(1)?,
                    state: r.get(2)?,
                    attempts: r.get(3)?,
                    last_status: r.get(4)?,
                    last_error: r.get(5)?,
                    decision_json: r.get(6)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// The deliveries of one decision, by target: where each stands
    /// (without the error text, which the token-guarded
    /// [`Store::deliveries`] gives).
    pub fn delivery_targets(&self, decision_id: &str) -> Result<Vec<DeliveryTarget>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT target, state, attempts, last_status FROM deliveries
                 WHERE decision_id = ?1 ORDER BY target",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![decision_id], |r| {
                Ok(DeliveryTarget {
                    target: r.get(0)?,
                    state: r.get(1)?,
                    attempts: r.get(2)?,
                    last_status: r.get(3)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// An operator's retry of a decision's dead and unknown-outcome deliveries:
    /// pending again from their first attempt, their targets enabled again.
    /// Returns how many there were.
    pub fn retry_dead(&mut self, decision_id: &str) -> Result<usize, StoreError> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM disabled_targets WHERE name IN
                     (SELECT target FROM deliveries WHERE decision_id = ?1 AND state = 'dead')",
                params![decision_id],
            )?;
            let n = tx.execute(
                "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_ms = 0, created_ms = ?2
                 WHERE decision_id = ?1 AND state IN ('dead', 'unknown')",
                params![decision_id, crate::event::wall_clock_ms()],
            )?;
            if n > 0 {
                tx.execute(
                    "UPDATE decisions SET delivery = 'pending' WHERE id = ?1",
                    params![decision_id],
                )?;
            }
            Ok(n)
        })
    }

    /// Run `f` in a transaction and commit it.
    fn write<T>(
        &mut self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let run = |conn: &mut Connection| {
            let tx = conn.transaction_with_behavior(IMMEDIATE)?;
            let v = f(&tx)?;
            tx.commit()?;
            Ok(v)
        };
        run(&mut self.conn).map_err(|cause| StoreError::Sqlite {
            path: self.path.clone(),
            cause,
        })
    }

    /// The rules' guardrail state of the last checkpoint (JSON).
    pub fn decider_state(&self) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row("SELECT state FROM decider WHERE id = 1", [], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Stored decisions of `model` (every model when `None`), newest first
    /// (window end, then model, version, rule), at most `limit`; with
    /// `outbox_only`, only fired decisions still pending delivery.
    pub fn decisions(
        &self,
        model: Option<&str>,
        outbox_only: bool,
        limit: usize,
    ) -> Result<Vec<StoredDecision>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, model, model_version, window_index, rule, action, outcome,
                        window_end, delivery, decision FROM decisions
                 WHERE (?1 IS NULL OR model = ?1) AND (?2 = 0 OR delivery = 'pending')
                 ORDER BY window_end DESC, model, model_version, rule
                 LIMIT ?3",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![model, outbox_only, limit as i64], decision_row)
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// Stored estimator versions (of `model`, or all), by model and version.
    pub fn estimator_versions(
        &self,
        model: Option<&str>,
    ) -> Result<Vec<StoredEstimatorVersion>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT model, version, trained_at, trigger, training_samples, validation_rmse,
                        incumbent_rmse, accepted, record FROM estimator_versions
                 WHERE ?1 IS NULL OR model = ?1 ORDER BY model, version",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![model], |r| {
                Ok(StoredEstimatorVersion {
                    model: r.get(0)?,
                    version: r.get(1)?,
                    trained_at: r.get(2)?,
                    trigger: r.get(3)?,
                    training_samples: r.get(4)?,
                    validation_rmse: r.get(5)?,
                    incumbent_rmse: r.get(6)?,
                    accepted: r.get(7)?,
                    record_json: r.get(8)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// Every stored window in a stable order (model, version, index): for
    /// comparing runs.
    pub fn all_windows(&self) -> Result<Vec<StoredWindow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT model, model_version, window_index, report FROM windows
                 ORDER BY model, model_version, window_index",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], window_row).map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }
}

/// A `windows` row selected as (model, model_version, window_index, report).
fn decision_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredDecision> {
    Ok(StoredDecision {
        id: r.get(0)?,
        model: r.get(1)?,
        model_version: r.get(2)?,
        window_index: r.get(3)?,
        rule: r.get(4)?,
        action: r.get(5)?,
        outcome: r.get(6)?,
        window_end: r.get(7)?,
        delivery: r.get(8)?,
        decision_json: r.get(9)?,
        targets: Vec::new(),
    })
}

fn window_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredWindow> {
    Ok(StoredWindow {
        model: r.get(0)?,
        model_version: r.get(1)?,
        index: r.get(2)?,
        report_json: r.get(3)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(model: &str, index: u64) -> StoredWindow {
        StoredWindow {
            model: model.into(),
            model_version: "1".into(),
            index,
            report_json: format!(r#"{{"window":{{"end":"2026-11-24T00:{index:02}:00Z"}}}}"#),
        }
    }

    /// The daemon checkpoints on one connection while the delivery worker
    /// records attempts on another: neither write may fail for the other
    /// (a transaction that read first and then writes would get
    /// SQLITE_BUSY_SNAPSHOT without waiting, and a failed final checkpoint
    /// fails the shutdown).
    #[test]
    fn checkpoints_and_delivery_writes_on_two_connections_never_collide() {
        let dir = tempfile::tempdir().unwrap();
        let mut daemon = Store::open(dir.path()).unwrap();
        let mut worker = Store::open(dir.path()).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writes = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut n = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    worker.begin_send("d", "ci").unwrap();
                    worker.interrupted_sends().unwrap();
                    n += 1;
                }
                n
            })
        };
        let mut off = Offsets::new();
        for i in 0..5000 {
            off.insert(("logs".into(), 0), i);
            daemon
                .checkpoint(b"state", &off, &[w("m", i as u64)], 3)
                .unwrap_or_else(|e| panic!("checkpoint {i}: {e}"));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(writes.join().unwrap() > 0);
    }

    #[test]
    fn checkpoint_round_trip_and_history() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        assert_eq!(s.load().unwrap(), None);
        let mut off = Offsets::new();
        off.insert(("logs".into(), 0), 10);
        off.insert(("logs".into(), 1), 7);
        let ws: Vec<StoredWindow> = (0..5).map(|i| w("m", i)).collect();
        assert_eq!(s.checkpoint(b"one", &off, &ws, 3).unwrap(), 1);
        off.insert(("logs".into(), 0), 12);
        assert_eq!(
            s.checkpoint(b"two", &off, &[w("m", 5), w("n", 0)], 3)
                .unwrap(),
            2
        );
        drop(s);
        let s = Store::open(dir.path()).unwrap();
        let cp = s.load().unwrap().unwrap();
        assert_eq!(cp.engine, b"two");
        assert_eq!(cp.sequence, 2);
        assert_eq!(cp.offsets[&("logs".to_string(), 0)], 12);
        assert_eq!(cp.offsets[&("logs".to_string(), 1)], 7);
        let idx: Vec<u64> = s
            .windows(Some("m"), 100)
            .unwrap()
            .iter()
            .map(|w| w.index)
            .collect();
        assert_eq!(
            idx,
            vec![5, 4, 3],
            "history keeps the newest 3, newest first"
        );
        assert_eq!(s.windows(None, 100).unwrap().len(), 4);
        assert_eq!(s.windows(Some("m"), 1).unwrap()[0].index, 5);
        let r = Store::open_read_only(dir.path()).unwrap();
        assert_eq!(r.all_windows().unwrap().len(), 4);
    }

    fn decision(id: &str, rule: &str, delivery: Option<&str>) -> StoredDecision {
        StoredDecision {
            id: id.into(),
            model: "m".into(),
            model_version: "1".into(),
            window_index: 3,
            rule: rule.into(),
            action: "retrain".into(),
            outcome: if delivery.is_some() {
                "fired"
            } else {
                "suppressed: pending"
            }
            .into(),
            window_end: "2026-11-24T00:15:00Z".into(),
            delivery: delivery.map(str::to_owned),
            decision_json: "{}".into(),
            targets: vec!["ci".into()],
        }
    }

    #[test]
    fn decisions_are_stored_once_with_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let ds = [
            decision("a", "r1", Some("pending")),
            decision("b", "r2", None),
        ];
        let batch = DecisionBatch {
            decisions: &ds,
            decider_state: Some("{\"x\":1}"),
            keep: 0,
            estimator_versions: &[],
        };
        s.checkpoint_with(b"one", &Offsets::new(), &[], batch, 10)
            .unwrap();
        // The same window judged again after a crash: nothing is added.
        let again = [decision("a", "r1", Some("pending"))];
        s.checkpoint_with(
            b"two",
            &Offsets::new(),
            &[],
            DecisionBatch {
                decisions: &again,
                decider_state: None,
                keep: 0,
                estimator_versions: &[],
            },
            10,
        )
        .unwrap();
        drop(s);
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.decisions(None, false, 10).unwrap().len(), 2);
        let outbox = s.decisions(Some("m"), true, 10).unwrap();
        let mut want = decision("a", "r1", Some("pending"));
        want.targets.clear();
        assert_eq!(outbox, [want]);
        // Its delivery to "ci" is due, and settles the decision when done.
        let due = s.due_deliveries(0, 10).unwrap();
        assert_eq!(
            (due.len(), due[0].target.as_str(), due[0].attempts),
            (1, "ci", 0)
        );
        drop(s);
        let mut s = Store::open(dir.path()).unwrap();
        s.record_attempt(
            "a",
            "ci",
            &Attempt::Retry {
                status: Some(503),
                error: "HTTP 503".into(),
                next_attempt_ms: 1_000,
            },
        )
        .unwrap();
        assert!(s.due_deliveries(999, 10).unwrap().is_empty());
        assert_eq!(s.due_deliveries(1_000, 10).unwrap()[0].attempts, 1);
        assert_eq!(s.pending_deliveries().unwrap().0, 1);
        s.record_attempt("a", "ci", &Attempt::Delivered { status: 204 })
            .unwrap();
        assert!(s.due_deliveries(i64::MAX, 10).unwrap().is_empty());
        assert_eq!(
            s.decisions(None, false, 10).unwrap()[0].delivery.as_deref(),
            Some("delivered")
        );
        assert_eq!(s.pending_deliveries().unwrap().0, 0);
        assert!(s.decisions(Some("other"), false, 10).unwrap().is_empty());
        assert_eq!(s.decider_state().unwrap().as_deref(), Some("{\"x\":1}"));
    }

    #[test]
    fn a_version_1_store_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        {
            let c = Connection::open(dir.path().join(FILE_NAME)).unwrap();
            c.execute_batch(
                "CREATE TABLE engine (id INTEGER PRIMARY KEY CHECK (id = 1), sequence INTEGER NOT NULL,
                     state BLOB NOT NULL, written_at TEXT NOT NULL);
                 CREATE TABLE offsets (topic TEXT NOT NULL, partition INTEGER NOT NULL,
                     next_offset INTEGER NOT NULL, PRIMARY KEY (topic, partition));
                 CREATE TABLE windows (model TEXT NOT NULL, model_version TEXT NOT NULL,
                     window_index INTEGER NOT NULL, report TEXT NOT NULL,
                     PRIMARY KEY (model, model_version, window_index));
                 INSERT INTO engine VALUES (1, 7, x'01', 'then');
                 PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        let mut s = Store::open(dir.path()).unwrap();
        assert_eq!(s.load().unwrap().unwrap().sequence, 7);
        let ds = [decision("a", "r1", Some("pending"))];
        // Through every migration to the estimator versions of version 5.
        let v = StoredEstimatorVersion {
            model: "m".into(),
            version: 1,
            trained_at: "2026-11-24T00:00:00Z".into(),
            trigger: "labels".into(),
            training_samples: 800,
            validation_rmse: 0.1,
            incumbent_rmse: None,
            accepted: true,
            record_json: "{}".into(),
        };
        for _ in 0..2 {
            s.checkpoint_with(
                b"x",
                &Offsets::new(),
                &[],
                DecisionBatch {
                    decisions: &ds,
                    decider_state: None,
                    keep: 0,
                    estimator_versions: std::slice::from_ref(&v),
                },
                10,
            )
            .unwrap();
        }
        assert_eq!(s.decisions(None, true, 10).unwrap().len(), 1);
        assert_eq!(s.estimator_versions(Some("m")).unwrap(), vec![v.clone()]);
        assert!(s.estimator_versions(Some("other")).unwrap().is_empty());
        let version: i64 = s
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[test]
    fn settled_decisions_are_pruned_and_unknown_sends_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let d = |i: usize, delivery: Option<&str>| {
            let mut x = decision(&format!("d{i:03}"), "r", delivery);
            x.window_end = format!("2026-11-24T00:{:02}:{:02}Z", i / 60, i % 60);
            x
        };
        // One pending and one that will be dead, then 30 settled ones.
        let first = [d(0, Some("pending")), d(1, Some("pending"))];
        fn batch(ds: &[StoredDecision]) -> DecisionBatch<'_> {
            DecisionBatch {
                decisions: ds,
                decider_state: None,
                keep: 10,
                estimator_versions: &[],
            }
        }
        s.checkpoint_with(b"e", &Offsets::new(), &[], batch(&first), 10)
            .unwrap();
        s.record_attempt(
            "d001",
            "ci",
            &Attempt::Dead {
                status: Some(400),
                error: "HTTP 400".into(),
            },
        )
        .unwrap();
        for i in 2..32 {
            let one = [d(i, None)];
            s.checkpoint_with(b"e", &Offsets::new(), &[], batch(&one), 10)
                .unwrap();
        }
        let all = s.decisions(None, false, 1000).unwrap();
        let settled = all.iter().filter(|x| x.delivery.is_none()).count();
        assert!((10..=11).contains(&settled), "{settled} settled kept");
        assert_eq!(all[0].id, "d031", "the newest are kept");
        assert!(all.iter().any(|x| x.id == "d000"), "pending is kept");
        assert!(all.iter().any(|x| x.id == "d001"), "dead is kept");

        // A send cut off by a stop has an unknown outcome after the restart.
        s.begin_send("d000", "ci").unwrap();
        assert!(
            s.due_deliveries(i64::MAX, 10).unwrap().is_empty(),
            "not due while sending"
        );
        drop(s);
        let mut s = Store::open(dir.path()).unwrap();
        assert_eq!(s.interrupted_sends().unwrap(), 1);
        let unknown = s.deliveries("unknown", 10).unwrap();
        assert_eq!(unknown.len(), 1);
        assert!(unknown[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("may have been acted on"));
        let row = s.decisions(None, false, 1000).unwrap();
        let d0 = row.iter().find(|x| x.id == "d000").unwrap();
        assert_eq!(d0.delivery.as_deref(), Some("unknown"));
        // Only an operator's retry sends it again.
        assert!(s.due_deliveries(i64::MAX, 10).unwrap().is_empty());
        assert_eq!(s.retry_dead("d000").unwrap(), 1);
        assert_eq!(s.due_deliveries(i64::MAX, 10).unwrap().len(), 1);
        assert_eq!(s.pending_deliveries().unwrap().0, 1);
    }

    #[test]
    fn the_newest_windows_are_read_through_an_index() {
        // Regression (issue 15): each request sorted every row by
        // json_extract.
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let ws: Vec<StoredWindow> = (0..50)
            .map(|i| w(if i % 2 == 0 { "m" } else { "n" }, i))
            .collect();
        s.checkpoint(b"e", &Offsets::new(), &ws, 1000).unwrap();
        for (sql, model) in [
            (
                "WHERE model = 'm' ORDER BY window_end_ms DESC, window_index DESC LIMIT 5",
                Some("m"),
            ),
            (
                "ORDER BY window_end_ms DESC, window_index DESC LIMIT 5",
                None,
            ),
        ] {
            let plan: Vec<String> = s
                .conn
                .prepare(&format!(
                    "EXPLAIN QUERY PLAN SELECT model, model_version, window_index, report FROM windows {sql}"
                ))
                .unwrap()
                .query_map([], |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let plan = plan.join("; ");
            assert!(plan.contains("USING INDEX windows_newest"), "{plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{plan}");
            // Newest first, as before.
            let got = s.windows(model, 3).unwrap();
            let want: Vec<u64> = match model {
                Some(_) => vec![48, 46, 44],
                None => vec![49, 48, 47],
            };
            assert_eq!(got.iter().map(|w| w.index).collect::<Vec<_>>(), want);
        }
    }

    #[test]
    fn newer_schema_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let c = Connection::open(dir.path().join(FILE_NAME)).unwrap();
        c.pragma_update(None, "user_version", 9).unwrap();
        drop(c);
        let e = Store::open(dir.path()).err().unwrap().to_string();
        assert!(e.contains("schema version 9"), "{e}");
    }
}
