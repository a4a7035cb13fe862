//! What the developer center's lists read: their filters and the keyset cursor that pages
//! them, and the Agent-Tokens held for an ISV's owner until the developer center shows them.
//!
//! Lists are newest first and paged by keyset: a page starts after the last row of the page
//! before (its creation time and id), never at an offset, so a page costs the same however
//! deep it is and rows created meanwhile shift nothing.

use ocpay_core::Timestamp;
use ocpay_core::ids::{ClientId, PaymentRequestId};
use ocpay_core::money::Currency;
use ocpay_core::payment::PaymentStatus;

/// Where a page of a list starts: after the row created at `created_at` with id `id` (rows
/// are ordered newest first, ties by id, descending).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageCursor {
    pub created_at: Timestamp,
    pub id: String,
}

/// Which of a participant's payments a page lists; `None` keeps every one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentFilter {
    /// The stored status (an unpaid code past its expiry is `PROCESSING` until the timer job
    /// closes it).
    pub status: Option<PaymentStatus>,
    /// Created at or after this instant ...
    pub from: Option<Timestamp>,
    /// ... and before this one.
    pub to: Option<Timestamp>,
    /// Payments in this currency only.
    pub currency: Option<Currency>,
    /// Amounts (minor units, inclusive) at least ...
    pub amount_min: Option<i64>,
    /// ... and at most this; compared in minor units, so meant with a `currency`.
    pub amount_max: Option<i64>,
    pub request_id: Option<PaymentRequestId>,
}

/// The Agent-Token of a grant, held for the ISV's owner to see once in the developer center.
///
/// The store never holds a usable token: `sealed` is what the server's grants use case made of
/// it (an authenticated encryption under a key the database does not hold), and it is kept only
/// until the owner takes it, the grant is revoked or `hold_until` passes, whichever is first.
#[derive(Clone, PartialEq, Eq)]
pub struct HeldToken {
    pub sealed: String,
    /// The token's first characters, kept after the token is gone, so that the owner can tell
    /// which token they have.
    pub hint: String,
    pub hold_until: Timestamp,
}

impl std::fmt::Debug for HeldToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldToken")
            .field("hint", &self.hint)
            .field("hold_until", &self.hold_until)
            .finish_non_exhaustive()
    }
}

/// Where a held Agent-Token stands, as the ISV's grants page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHold {
    pub grant_id: String,
    pub isv: ClientId,
    pub hint: String,
    /// Whether the sealed token is still held (not taken, revoked or past `hold_until`).
    pub held: bool,
    pub hold_until: Timestamp,
    pub taken_at: Option<Timestamp>,
    /// Who took it (a developer center user's email).
    pub taken_by: Option<String>,
}
