//! Copies of the SQLite files taken while the server writes to them, through SQLite's online
//! backup API, and the check that a copy is whole.
//!
//! Both files are copied from one read transaction that spans them, started on the main file
//! first: the copy of the main file is the state of one moment and the participants file's
//! that of a moment no earlier, so every participant a copied payment refers to is in the
//! copy (participants are never deleted). The writer goes on meanwhile: WAL mode lets a
//! reader keep its snapshot while commits land after it.

use std::path::{Path, PathBuf};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags, params};

use super::SqliteSettings;
use crate::StoreError;

/// Pages copied per step: the progress is reported between steps.
const PAGES_PER_STEP: i32 = 1024;

/// What [`snapshot`] wrote: each file's name (as in the data directory) and its copy.
#[derive(Debug, Clone)]
pub struct SnapshotFile {
    pub name: String,
    pub copy: PathBuf,
    pub pages: u64,
}

/// The names of the files of a store whose main file is `settings.path`: the main file, then
/// the participants file.
pub fn database_files(settings: &SqliteSettings) -> [PathBuf; 2] {
    [settings.path.clone(), settings.participants_path()]
}

/// Copies the store's two files into `into` (a directory that exists), under their own names,
/// as of one moment, while other connections (a running server) go on writing. `progress` is
/// told the pages copied so far and the pages in all.
pub fn snapshot(
    settings: &SqliteSettings,
    into: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Vec<SnapshotFile>, StoreError> {
    let files = database_files(settings);
    for file in &files {
        if !file.exists() {
            return Err(StoreError::Database(format!("{} does not exist", file.display())));
        }
    }
    let source = Connection::open_with_flags(&settings.path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    source.busy_timeout(settings.busy_timeout)?;
    source.execute("ATTACH DATABASE ?1 AS auth", params![files[1].to_string_lossy()])?;
    // The read transaction: each file's snapshot is taken at its first read, main first.
    source.execute_batch(
        "BEGIN; SELECT count(*) FROM main.sqlite_master; SELECT count(*) FROM auth.sqlite_master;",
    )?;
    let total = {
        let count = |schema: &str| -> Result<u64, StoreError> {
            let pages: i64 =
                source.query_row(&format!("PRAGMA {schema}.page_count"), [], |row| row.get(0))?;
            Ok(u64::try_from(pages).unwrap_or(0))
        };
        count("main")? + count("auth")?
    };
    let mut copied = 0;
    let mut written = Vec::new();
    for (schema, file) in ["main", "auth"].into_iter().zip(&files) {
        let name = file
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .ok_or_else(|| StoreError::Database(format!("{} has no file name", file.display())))?;
        let copy = into.join(&name);
        let mut target = Connection::open(&copy)?;
        let pages = {
            let backup = Backup::new_with_names(&source, schema, &mut target, "main")?;
            loop {
                let step = backup.step(PAGES_PER_STEP)?;
                let now = backup.progress();
                let done = u64::try_from(now.pagecount - now.remaining).unwrap_or(0);
                progress(copied + done, total);
                match step {
                    StepResult::Done => break u64::try_from(now.pagecount).unwrap_or(0),
                    StepResult::More => {}
                    // The source is read inside the transaction held above and the copy is
                    // ours alone, so neither waits on a lock; were one to, wait a moment.
                    _ => std::thread::sleep(std::time::Duration::from_millis(10)),
                }
            }
        };
        // A copy in one file: no write-ahead log beside it.
        let _: String = target.query_row("PRAGMA journal_mode = DELETE", [], |row| row.get(0))?;
        drop(target);
        copied += pages;
        written.push(SnapshotFile { name, copy, pages });
    }
    source.execute_batch("COMMIT")?;
    Ok(written)
}

/// SQLite's `PRAGMA integrity_check` of one file, opened read-only: `Ok` when it says "ok",
/// else what it found.
pub fn integrity_check(path: &Path) -> Result<(), StoreError> {
    let connection = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut statement = connection.prepare("PRAGMA integrity_check")?;
    let found: Vec<String> = statement.query_map([], |row| row.get(0))?.collect::<Result<_, _>>()?;
    if found.len() == 1 && found[0] == "ok" {
        return Ok(());
    }
    Err(StoreError::Corrupt(format!("{}: {}", path.display(), found.join("; "))))
}
