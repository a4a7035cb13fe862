//! Read connections. In WAL mode readers never wait for the writer, and a read of one row by
//! its key takes microseconds, so reads run on the calling thread: handing each one to another
//! thread would cost more than the read (measured: the context switches of a thread-per-
//! connection driver took a sixth of the server's CPU under load).

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::StoreError;

pub(crate) struct ReadPool {
    path: PathBuf,
    busy_timeout: Duration,
    idle: Mutex<Vec<Connection>>,
    idle_max: usize,
}

impl ReadPool {
    pub(crate) fn new(path: PathBuf, busy_timeout: Duration, idle_max: usize) -> ReadPool {
        ReadPool { path, busy_timeout, idle: Mutex::new(Vec::new()), idle_max: idle_max.max(1) }
    }

    fn open(&self) -> Result<Connection, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(&self.path, flags)?;
        connection.busy_timeout(self.busy_timeout)?;
        Ok(connection)
    }

    /// Runs `read` on an idle connection (opening one if none is idle).
    pub(crate) fn with<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).pop();
        let connection = match idle {
            Some(connection) => connection,
            None => self.open()?,
        };
        let result = read(&connection);
        let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.len() < self.idle_max {
            idle.push(connection);
        }
        result
    }
}
