//! The store database: SQLite in WAL mode, at `<root>/db.sqlite`.
//!
//! The schema is versioned by `PRAGMA user_version`; [`MIGRATIONS`] holds one
//! script per version and opening a database applies the missing ones in one
//! transaction. Never edit a released migration: append a new one.
//!
//! Store paths are stored as their full logical text (`/forge/store/<hash>-<name>`),
//! hashes as `sha256:<nix base32>`, times as Unix seconds.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::error::{Error, Result};
use crate::hash::Hash;
use crate::path::StorePath;

/// One script per schema version: `MIGRATIONS[i]` brings version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: valid paths and references (as Nix's schema), plus the tables later issues fill.
    "
    CREATE TABLE ValidPaths (
        id               INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
        path             TEXT UNIQUE NOT NULL,
        narHash          TEXT NOT NULL,
        narSize          INTEGER NOT NULL,
        deriver          TEXT,
        registrationTime INTEGER NOT NULL,
        ca               TEXT
    );
    CREATE TABLE Refs (
        referrer  INTEGER NOT NULL REFERENCES ValidPaths(id) ON DELETE CASCADE,
        reference INTEGER NOT NULL REFERENCES ValidPaths(id) ON DELETE RESTRICT,
        PRIMARY KEY (referrer, reference)
    );
    CREATE INDEX IndexReference ON Refs(reference);
    CREATE TABLE Derivations (
        hash    TEXT PRIMARY KEY NOT NULL,
        name    TEXT NOT NULL,
        json    TEXT NOT NULL,
        outputs TEXT NOT NULL
    );
    CREATE TABLE DerivationOutputs (
        drv  TEXT NOT NULL REFERENCES Derivations(hash) ON DELETE CASCADE,
        id   TEXT NOT NULL,
        path TEXT NOT NULL,
        PRIMARY KEY (drv, id)
    );
    CREATE INDEX IndexDerivationOutputs ON DerivationOutputs(path);
    CREATE TABLE Builds (
        id        INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
        drv       TEXT NOT NULL,
        startTime INTEGER NOT NULL,
        endTime   INTEGER,
        status    TEXT NOT NULL,
        logPath   TEXT,
        machine   TEXT
    );
    CREATE INDEX IndexBuildsDrv ON Builds(drv);
    CREATE TABLE Signatures (
        path    TEXT NOT NULL,
        keyName TEXT NOT NULL,
        sig     TEXT NOT NULL,
        PRIMARY KEY (path, keyName)
    );
    ",
];

/// What the store knows about one valid path.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PathInfo {
    /// The path itself.
    pub path: StorePath,
    /// sha256 of the path's NAR.
    pub nar_hash: Hash,
    /// Length of the path's NAR in bytes.
    pub nar_size: u64,
    /// Store paths this one refers to (possibly itself), sorted.
    pub references: Vec<StorePath>,
    /// The derivation that built it, when known.
    pub deriver: Option<String>,
    /// Unix seconds.
    pub registration_time: i64,
    /// Content address (`fixed:r:sha256:<base32>` for added trees), when it has one.
    pub ca: Option<String>,
}

/// An open store database.
pub struct Db {
    conn: Connection,
    path: PathBuf,
}

impl Db {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Db> {
        let err = |context: &str| {
            let (path, context) = (path.to_owned(), context.to_owned());
            move |source| Error::Db { path, context, source }
        };
        let conn = Connection::open(path).map_err(err("cannot open"))?;
        // Other forge processes may hold the write lock for a while (a big gc).
        conn.busy_timeout(Duration::from_secs(600)).map_err(err("cannot set busy timeout"))?;
        conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0)).map_err(err("cannot enable WAL"))?;
        conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;").map_err(err("cannot set pragmas"))?;
        let mut db = Db { conn, path: path.to_owned() };
        db.migrate()?;
        Ok(db)
    }

    fn migrate(&mut self) -> Result<()> {
        let e = err(&self.path, "cannot migrate the schema");
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(e)?;
        let version: i64 =
            tx.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(err(&self.path, "user_version"))?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(Error::DbTooNew { path: self.path.clone(), found: version, known });
        }
        for (i, script) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(script).map_err(err(&self.path, &format!("migration to schema {}", i + 1)))?;
        }
        tx.pragma_update(None, "user_version", known).map_err(err(&self.path, "set user_version"))?;
        tx.commit().map_err(err(&self.path, "commit the schema"))
    }

    /// The schema version (`user_version`).
    pub fn schema_version(&self) -> Result<i64> {
        self.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(err(&self.path, "user_version"))
    }

    /// The connection, for the tables later modules own (derivations, builds, signatures).
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Whether `path` is registered.
    pub fn is_valid(&self, path: &StorePath) -> Result<bool> {
        let found = self
            .conn
            .query_row("SELECT 1 FROM ValidPaths WHERE path = ?1", [path.to_string()], |_| Ok(()))
            .optional()
            .map_err(err(&self.path, "query a path"))?;
        Ok(found.is_some())
    }

    /// The record of `path` with its references, or `None` when it is not valid.
    pub fn query_info(&self, path: &StorePath) -> Result<Option<PathInfo>> {
        let row = self
            .conn
            .query_row(
                "SELECT id, narHash, narSize, deriver, registrationTime, ca FROM ValidPaths WHERE path = ?1",
                [path.to_string()],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, Option<String>>(5)?,
                    ))
                },
            )
            .optional()
            .map_err(err(&self.path, "query a path"))?;
        let Some((id, nar_hash, nar_size, deriver, registration_time, ca)) = row else { return Ok(None) };
        let corrupt = |why: String| Error::Corrupt { path: self.path.clone(), why: format!("row for {path}: {why}") };
        let nar_hash = nar_hash.parse().map_err(|e: Error| corrupt(e.to_string()))?;
        let sql = "SELECT v.path FROM Refs r JOIN ValidPaths v ON v.id = r.reference WHERE r.referrer = ?1";
        let refs = collect(&self.conn, &self.path, "query references", sql, [id], |r| r.get(0))?;
        let mut references = parse_paths(&self.path, refs)?;
        references.sort();
        Ok(Some(PathInfo {
            path: path.clone(),
            nar_hash,
            nar_size: nar_size as u64,
            references,
            deriver,
            registration_time,
            ca,
        }))
    }

    /// Records `info` and its references in one transaction. Every reference other
    /// than the path itself must be valid. Returns false (and changes nothing) when
    /// the path is valid already.
    pub fn register(&mut self, info: &PathInfo) -> Result<bool> {
        Ok(self.register_all(std::slice::from_ref(info))?[0])
    }

    /// Records several paths and their references in one transaction, so they may
    /// refer to each other (the outputs of one derivation). Any other reference must
    /// be valid already. Returns, for each, whether it was inserted (false: it was
    /// valid already and is left as it was).
    pub fn register_all(&mut self, infos: &[PathInfo]) -> Result<Vec<bool>> {
        let db = self.path.clone();
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err(&db, "register"))?;
        let id_of = |path: &StorePath| {
            tx.query_row("SELECT id FROM ValidPaths WHERE path = ?1", [path.to_string()], |r| r.get::<_, i64>(0))
                .optional()
                .map_err(err(&db, "query a path"))
        };
        let mut inserted = Vec::with_capacity(infos.len());
        for info in infos {
            let new = id_of(&info.path)?.is_none();
            if new {
                tx.execute(
                    "INSERT INTO ValidPaths (path, narHash, narSize, deriver, registrationTime, ca) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        info.path.to_string(),
                        info.nar_hash.to_string(),
                        info.nar_size as i64,
                        info.deriver,
                        info.registration_time,
                        info.ca
                    ],
                )
                .map_err(err(&db, "insert a path"))?;
            }
            inserted.push(new);
        }
        for info in infos.iter().zip(&inserted).filter(|(_, new)| **new).map(|(i, _)| i) {
            let me = id_of(&info.path)?.ok_or_else(|| Error::NotValid { path: info.path.to_string() })?;
            for r in &info.references {
                let to = id_of(r)?
                    .ok_or_else(|| Error::InvalidReference { path: info.path.to_string(), reference: r.to_string() })?;
                tx.execute("INSERT INTO Refs (referrer, reference) VALUES (?1, ?2)", [me, to])
                    .map_err(err(&db, "insert a reference"))?;
            }
        }
        tx.commit().map_err(err(&db, "commit a registration"))?;
        Ok(inserted)
    }

    /// Every valid path, sorted.
    pub fn valid_paths(&self) -> Result<Vec<StorePath>> {
        let texts = collect(&self.conn, &self.path, "list paths", "SELECT path FROM ValidPaths", [], |r| r.get(0))?;
        let mut paths = parse_paths(&self.path, texts)?;
        paths.sort();
        Ok(paths)
    }

    /// The reference graph: each valid path and what it refers to.
    pub fn reference_graph(&self) -> Result<HashMap<StorePath, Vec<StorePath>>> {
        graph(&self.conn, &self.path)
    }

    /// Unregisters the paths among `candidates` that no valid path outside
    /// `candidates` reaches, in one transaction, and returns them. Computing the
    /// closure inside the write transaction means a path registered meanwhile with
    /// a reference to a candidate keeps that candidate alive.
    pub fn delete_unreachable(&mut self, candidates: &BTreeSet<StorePath>) -> Result<Vec<StorePath>> {
        let e = err(&self.path, "delete paths");
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(e)?;
        let graph = graph(&tx, &self.path)?;
        let live_roots = graph.keys().filter(|p| !candidates.contains(*p));
        let live = closure(&graph, live_roots);
        let dead: Vec<StorePath> =
            candidates.iter().filter(|p| graph.contains_key(*p) && !live.contains(*p)).cloned().collect();
        for p in &dead {
            let s = p.to_string();
            tx.execute("DELETE FROM Refs WHERE referrer = (SELECT id FROM ValidPaths WHERE path = ?1)", [&s])
                .map_err(err(&self.path, "delete references"))?;
        }
        for p in &dead {
            tx.execute("DELETE FROM ValidPaths WHERE path = ?1", [p.to_string()])
                .map_err(err(&self.path, "delete a path"))?;
        }
        tx.commit().map_err(err(&self.path, "commit a deletion"))?;
        Ok(dead)
    }

    /// SQLite's own consistency check (`PRAGMA integrity_check` and foreign keys).
    pub fn check_integrity(&self) -> Result<Vec<String>> {
        let (conn, db) = (&self.conn, &self.path);
        let mut problems: Vec<String> =
            collect(conn, db, "integrity check", "PRAGMA integrity_check", [], |r| r.get(0))?;
        problems.retain(|r| r != "ok");
        let dangling = collect(conn, db, "foreign key check", "PRAGMA foreign_key_check", [], |_| Ok(()))?.len();
        if dangling > 0 {
            problems.push(format!("{dangling} references point to paths that are not valid"));
        }
        Ok(problems)
    }
}

fn err(db: &Path, context: &str) -> impl FnOnce(rusqlite::Error) -> Error {
    let (path, context) = (db.to_owned(), context.to_owned());
    move |source| Error::Db { path, context, source }
}

/// Runs a query and collects its rows.
fn collect<T>(
    conn: &Connection,
    db: &Path,
    context: &str,
    sql: &str,
    params: impl rusqlite::Params,
    row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(err(db, context))?;
    let rows = stmt.query_map(params, row).and_then(|rows| rows.collect()).map_err(err(db, context));
    rows
}

/// Parses store paths read from the database; a bad one means the database is corrupt.
fn parse_paths(db: &Path, texts: Vec<String>) -> Result<Vec<StorePath>> {
    texts
        .iter()
        .map(|s| s.parse().map_err(|e: Error| Error::Corrupt { path: db.to_owned(), why: e.to_string() }))
        .collect()
}

fn graph(conn: &Connection, db: &Path) -> Result<HashMap<StorePath, Vec<StorePath>>> {
    let rows = collect(conn, db, "read paths", "SELECT id, path FROM ValidPaths", [], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
    })?;
    let (ids, texts): (Vec<i64>, Vec<String>) = rows.into_iter().unzip();
    let by_id: HashMap<i64, StorePath> = ids.into_iter().zip(parse_paths(db, texts)?).collect();
    let mut graph: HashMap<StorePath, Vec<StorePath>> = by_id.values().map(|p| (p.clone(), Vec::new())).collect();
    let sql = "SELECT referrer, reference FROM Refs";
    for (from, to) in collect(conn, db, "read references", sql, [], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?
    {
        if let (Some(from), Some(to)) = (by_id.get(&from), by_id.get(&to)) {
            graph.entry(from.clone()).or_default().push(to.clone());
        }
    }
    Ok(graph)
}

/// Everything reachable from `roots` through references (roots included).
pub fn closure<'a>(
    graph: &HashMap<StorePath, Vec<StorePath>>,
    roots: impl IntoIterator<Item = &'a StorePath>,
) -> HashSet<StorePath> {
    let mut seen = HashSet::new();
    let mut todo: Vec<StorePath> = roots.into_iter().cloned().collect();
    while let Some(p) = todo.pop() {
        if !seen.insert(p.clone()) {
            continue;
        }
        if let Some(refs) = graph.get(&p) {
            todo.extend(refs.iter().filter(|r| !seen.contains(*r)).cloned());
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Algo;

    fn info(name: &str, references: Vec<StorePath>) -> PathInfo {
        let nar_hash = Hash::of(Algo::Sha256, name.as_bytes());
        PathInfo {
            path: StorePath::for_source(&nar_hash, name, &[]).unwrap(),
            nar_hash,
            nar_size: 8,
            references,
            deriver: None,
            registration_time: 1,
            ca: None,
        }
    }

    #[test]
    fn reopening_keeps_data_and_a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("db.sqlite");
        let a = info("a", vec![]);
        assert!(Db::open(&file).unwrap().register(&a).unwrap());
        let db = Db::open(&file).unwrap();
        assert_eq!(db.query_info(&a.path).unwrap(), Some(a));
        db.conn().pragma_update(None, "user_version", 99).unwrap();
        drop(db);
        assert!(matches!(Db::open(&file), Err(Error::DbTooNew { found: 99, .. })));
    }

    #[test]
    fn register_refuses_a_reference_that_is_not_valid_and_records_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("db.sqlite")).unwrap();
        let ghost = info("ghost", vec![]);
        let b = info("b", vec![ghost.path.clone()]);
        assert!(matches!(db.register(&b), Err(Error::InvalidReference { .. })));
        assert!(!db.is_valid(&b.path).unwrap());
        db.register(&ghost).unwrap();
        assert!(db.register(&b).unwrap());
        assert!(!db.register(&b).unwrap(), "registering twice changes nothing");
    }

    #[test]
    fn delete_unreachable_keeps_what_a_live_path_refers_to() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("db.sqlite")).unwrap();
        let dep = info("dep", vec![]);
        let mut user = info("user", vec![dep.path.clone()]);
        user.references.push(user.path.clone());
        db.register(&dep).unwrap();
        db.register(&user).unwrap();
        // `dep` alone is not deletable: `user` (not a candidate) refers to it.
        assert!(db.delete_unreachable(&[dep.path.clone()].into()).unwrap().is_empty());
        let mut gone = db.delete_unreachable(&[dep.path.clone(), user.path.clone()].into()).unwrap();
        gone.sort();
        let mut want = vec![dep.path, user.path];
        want.sort();
        assert_eq!(gone, want);
        assert!(db.valid_paths().unwrap().is_empty() && db.check_integrity().unwrap().is_empty());
    }
}
