//! Read connections. In WAL mode readers never wait for the writer, and a read of one row by
//! its key takes microseconds, so reads run on the calling thread: handing each one to another
//! thread would cost more than the read (measured: the context switches of a thread-per-
//! connection driver took a sixth of the server's CPU under load).

use std::sync::Mutex;

use rusqlite::Connection;

use super::SqliteSettings;
use crate::StoreError;

pub(crate) struct ReadPool {
    settings: SqliteSettings,
    idle: Mutex<Vec<Connection>>,
}

impl ReadPool {
    pub(crate) fn new(settings: SqliteSettings) -> ReadPool {
        ReadPool { settings, idle: Mutex::new(Vec::new()) }
    }

    fn open(&self) -> Result<Connection, StoreError> {
        let connection = super::connect(&self.settings)?;
        connection.pragma_update(None, "query_only", "ON")?;
        // Pages of the main files are read through a memory map instead of a syscall each.
        connection.pragma_update(None, "mmap_size", 268_435_456_i64)?;
        Ok(connection)
    }

    /// Runs `read` on an idle connection (opening one if none is idle), in one read
    /// transaction: a read of several statements sees one snapshot, never half a write.
    pub(crate) fn with<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).pop();
        let connection = match idle {
            Some(connection) => connection,
            None => self.open()?,
        };
        // Cached statements, not `execute_batch`, which would parse them at every read.
        connection.prepare_cached("BEGIN")?.execute([])?;
        let result = read(&connection);
        // Ends the snapshot; a read-only transaction has nothing to commit or lose.
        connection.prepare_cached("COMMIT")?.execute([])?;
        let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.len() < (self.settings.read_connections_max as usize).max(1) {
            idle.push(connection);
        }
        result
    }
}
