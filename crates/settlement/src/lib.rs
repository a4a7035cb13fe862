//! Money that reaches the merchant: settlement batches, the three reconciliation files of
//! spec §7 and the checks that prove files, ledger and records agree. No HTTP, no SSH: the
//! server's jobs and the command line call it.

pub mod files;
pub mod orders;
