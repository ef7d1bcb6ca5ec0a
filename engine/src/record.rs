//! What the store remembers of derivations and builds: the derivation JSON of every
//! planned node, which derivation produces which path, and a record per build.
//! `forge why` compares against these; `forge log` finds logs through them.

use std::path::{Path, PathBuf};

use forge_store::{Store, StorePath};
use rusqlite::{params, OptionalExtension};

use crate::drv::Derivation;
use crate::dsl::Node;
use crate::error::{Error, Result};

fn db_err(store: &Store, context: &str) -> impl FnOnce(rusqlite::Error) -> Error {
    let path = store.root().join("db.sqlite");
    let context = context.to_owned();
    move |e| Error::Record { path, context, why: e.to_string() }
}

/// Records the derivations of `nodes` (idempotent), in one transaction.
pub fn record_derivations<'a>(store: &Store, nodes: impl IntoIterator<Item = &'a Node>) -> Result<()> {
    let db = store.db();
    // The store's Db hands out a shared connection; its mutex makes this transaction exclusive.
    let tx = db.conn().unchecked_transaction().map_err(db_err(store, "begin"))?;
    {
        let mut drv_stmt = tx
            .prepare_cached("INSERT OR IGNORE INTO Derivations (hash, name, json, outputs) VALUES (?1, ?2, ?3, ?4)")
            .map_err(db_err(store, "prepare"))?;
        let mut out_stmt = tx
            .prepare_cached("INSERT OR IGNORE INTO DerivationOutputs (drv, id, path) VALUES (?1, ?2, ?3)")
            .map_err(db_err(store, "prepare"))?;
        for node in nodes {
            let hash = node.hash.to_string();
            let outputs: Vec<String> = node.outputs.keys().cloned().collect();
            drv_stmt
                .execute(params![hash, node.drv.name, node.drv.canonical_json(), outputs.join(",")])
                .map_err(db_err(store, "record a derivation"))?;
            for (id, path) in &node.outputs {
                out_stmt.execute(params![hash, id, path.to_string()]).map_err(db_err(store, "record an output"))?;
            }
        }
    }
    tx.commit().map_err(db_err(store, "commit derivations"))
}

/// A recorded derivation by its hash (`sha256:<base32>`).
pub fn derivation(store: &Store, hash: &str) -> Result<Option<Derivation>> {
    let json: Option<String> = store
        .db()
        .conn()
        .query_row("SELECT json FROM Derivations WHERE hash = ?1", [hash], |r| r.get(0))
        .optional()
        .map_err(db_err(store, "read a derivation"))?;
    json.map(|j| Derivation::from_json(&j)).transpose()
}

/// The hash of the recorded derivation producing `path`.
pub fn producer(store: &Store, path: &StorePath) -> Result<Option<String>> {
    store
        .db()
        .conn()
        .query_row("SELECT drv FROM DerivationOutputs WHERE path = ?1 LIMIT 1", [path.to_string()], |r| r.get(0))
        .optional()
        .map_err(db_err(store, "find a producer"))
}

/// The derivation named `name` that was built most recently, other than `except`.
pub fn last_built_named(store: &Store, name: &str, except: &str) -> Result<Option<Derivation>> {
    let json: Option<String> = store
        .db()
        .conn()
        .query_row(
            "SELECT d.json FROM Builds b JOIN Derivations d ON d.hash = b.drv
             WHERE d.name = ?1 AND d.hash != ?2 AND b.status = 'success'
             ORDER BY b.id DESC LIMIT 1",
            params![name, except],
            |r| r.get(0),
        )
        .optional()
        .map_err(db_err(store, "find the last build"))?;
    json.map(|j| Derivation::from_json(&j)).transpose()
}

/// Records a finished build.
pub fn record_build(store: &Store, drv: &str, start: i64, end: i64, status: &str, log: Option<&Path>) -> Result<()> {
    let machine = format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS);
    store
        .db()
        .conn()
        .execute(
            "INSERT INTO Builds (drv, startTime, endTime, status, logPath, machine) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![drv, start, end, status, log.map(|l| l.display().to_string()), machine],
        )
        .map(drop)
        .map_err(db_err(store, "record a build"))
}

/// Where the build log of the derivation producing `out` lives.
pub fn log_path(store: &Store, out: &StorePath) -> PathBuf {
    store.logs_dir().join(format!("{}.log", out.base_name()))
}
