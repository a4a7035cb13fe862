//! The Alipay AMS wire format as ocpay speaks it: the APIs and their paths, the JSON
//! request and response types (payments, refunds and merchant registrations, and ocpay's own API
//! log), the `Result` object and its codes, date-time text, and RSA-2048 message signatures with
//! the keys they need.
//!
//! This is the only crate that knows JSON field names. It is shared by the server and the
//! SDK, so both sides agree on every byte. Request types are lenient where Alipay's own SDKs
//! are sloppy (numbers where strings are documented); response types always emit strings.

pub mod agents;
pub mod api;
pub mod api_log;
pub mod datetime;
mod lenient;
pub mod model;
pub mod payments;
pub mod refunds;
pub mod registrations;
pub mod result;
pub mod signature;

pub use api::{Api, ApiRequest, ApiResponse};
pub use result::{AmsResult, ResultCode, ResultStatus};
pub use signature::{SignatureError, SignatureHeader, SigningKey, VerifyingKey};
