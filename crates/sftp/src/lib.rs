//! The read-only SFTP server that serves participants their reconciliation files.
//!
//! A participant logs in with its client id and a public key or a password, and sees its own
//! `/v1/settlements/<clientId>/` tree under the reports root (and, while it holds a usable grant
//! with the `reports` scope, each granting merchant's), nothing else, and can change nothing.
//! SSH is `russh` and SFTP `russh-sftp`; this crate decides who may log in ([`login`]), what a
//! path names ([`tree`]) and answers the SFTP requests ([`files`]), and keeps the limits
//! ([`server`]). Accounts and their failure counts live in the store, so that every node of a
//! PostgreSQL deployment serves every account and a lockout holds on all of them.

pub mod accounts;
mod files;
pub mod host_key;
mod login;
mod server;
mod tree;

pub use server::{Running, SftpContext, start, start_for_data_dir};
#[doc(hidden)]
pub use tree::{Place, disk_path, locate};

/// The audit trail's name of a login attempt.
pub const AUDIT_LOGIN: &str = "SFTP_LOGIN";
/// The audit trail's name of a file opened for reading.
pub const AUDIT_READ: &str = "SFTP_READ";
