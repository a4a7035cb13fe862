//! Black-box tests of the gateway: a real server on a free port, driven over HTTP through
//! `ocpay-sdk` or, where a test must send what the SDK never would, through raw requests.

mod acceptance;
mod access;
mod api_log;
mod audit;
mod browser;
mod documented;
mod envelope;
mod helpers;
mod interop;
mod limits;
mod metrics;
mod notifications;
mod payments;
mod refunds;
mod registrations;
mod sandbox;
mod settlement;
mod tls;
mod validation;
mod wallet;
