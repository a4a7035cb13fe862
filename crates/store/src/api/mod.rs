//! What the store offers, declared by area: one trait per area, each implemented for
//! [`SqlStore`](crate::sql::SqlStore) in the area's file of `sql/`, beside its SQL. [`Store`] is
//! all of them, for `Arc<dyn Store>`.
//!
//! A caller holds an `Arc<dyn Store>` and calls any area's method on it without importing the
//! area's trait; code that calls them on a store of a known type brings the traits with
//! [`prelude`](crate::prelude).

mod access;
mod activity;
mod api_log;
mod console;
mod ledger;
mod notifications;
mod oversight;
mod participants;
mod payments;
mod portal;
mod preload;
mod refunds;
mod registrations;
mod settlement;
mod sftp;

use async_trait::async_trait;

pub use self::access::AccessStore;
pub use self::activity::ActivityStore;
pub use self::api_log::ApiLogStore;
pub use self::console::ConsoleStore;
pub use self::ledger::LedgerStore;
pub use self::notifications::NotificationStore;
pub use self::oversight::OversightStore;
pub use self::participants::ParticipantStore;
pub use self::payments::PaymentStore;
pub use self::portal::{OperatorStore, PortalStore, SessionStore};
pub use self::preload::{PreloadCall, PreloadPlan, PreloadRows, PreloadStore};
pub use self::refunds::RefundStore;
pub use self::registrations::RegistrationStore;
pub use self::settlement::SettlementStore;
pub use self::sftp::SftpStore;
use crate::StoreError;

/// Everything ocpay keeps: every area of the store. Every method is one transaction.
///
/// It has no methods of its own; anything that implements every area is a `Store`.
pub trait Store:
    ParticipantStore
    + AccessStore
    + PaymentStore
    + RefundStore
    + RegistrationStore
    + LedgerStore
    + SettlementStore
    + NotificationStore
    + SftpStore
    + ApiLogStore
    + PortalStore
    + OperatorStore
    + SessionStore
    + OversightStore
    + ActivityStore
    + ConsoleStore
    + PreloadStore
    + DatabaseStore
    + Send
    + Sync
    + 'static
{
}

impl<T> Store for T where
    T: ParticipantStore
        + AccessStore
        + PaymentStore
        + RefundStore
        + RegistrationStore
        + LedgerStore
        + SettlementStore
        + NotificationStore
        + SftpStore
        + ApiLogStore
        + PortalStore
        + OperatorStore
        + SessionStore
        + OversightStore
        + ActivityStore
        + ConsoleStore
        + PreloadStore
        + DatabaseStore
        + Send
        + Sync
        + 'static
{
}

/// The store as a whole.
#[async_trait]
pub trait DatabaseStore: Send + Sync {
    /// Whether the store can serve reads and writes.
    async fn health(&self) -> Result<(), StoreError>;
}
