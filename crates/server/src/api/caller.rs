//! The verified caller of an AMS API, as the gateway hands it to the API's handler.

use ocpay_core::ids::ClientId;
use ocpay_core::participant::Participant;

/// The verified caller of an API.
pub(crate) struct Caller {
    /// Whose payments the call is about: the signer, or the merchant an ISV acts for.
    pub(crate) participant: Participant,
    pub(crate) key_version: u32,
    /// The ISV acting for `participant` through an Agent-Token.
    pub(crate) agent: Option<ClientId>,
}
