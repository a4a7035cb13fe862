//! Domain rules of ocpay: money and currencies, identifiers, payment states and the
//! decisions taken on them, and the time windows that bound them.
//!
//! This crate is pure and deterministic: no I/O, no async, no clock, no serde.
//! Wherever a rule depends on time, the current instant is a parameter.
//! It knows nothing about JSON field names or SQL; the gateway and the store translate.

pub mod access;
pub mod fees;
pub mod fx;
pub mod ids;
pub mod ledger;
pub mod money;
mod named;
pub mod participant;
pub mod payer;
pub mod payment;
pub mod portal;
pub mod refund;
pub mod registration;
pub mod sandbox;
pub mod schedule;
pub mod text;

pub use jiff::Timestamp;
