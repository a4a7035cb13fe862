//! Money that reaches the merchant: settlement batches, the three reconciliation files of
//! spec §7 and the checks that prove files, ledger and records agree. No HTTP, no SSH: the
//! server's jobs and the command line call it.

pub mod batches;
pub mod files;
pub mod orders;
pub mod reconcile;

use std::path::{Path, PathBuf};

/// Where the reconciliation files live: `reports/` in the data directory, holding the
/// `v1/settlements/<clientId>/<date>/` tree of spec §7.1 that SFTP serves read-only. Nodes that
/// share a PostgreSQL database share the data directory too (as they do for the platform keys).
pub fn reports_root(data_dir: &Path) -> PathBuf {
    data_dir.join("reports")
}
