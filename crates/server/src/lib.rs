//! The running ocpay platform: the signed AMS gateway (`api`), the use cases behind it
//! (`service`), the payer's pages and QR images (`wallet`), the notifier (`notify`), the
//! expiry job (`jobs`), the admin API (`admin`), and what they share (configuration, clock,
//! keys, data directory).
//!
//! Start one with [`app::Application::build`] and [`app::Application::run`]; the `ocpay`
//! command does exactly that for `ocpay serve`.

pub mod acceptance;
pub mod admin;
mod api;
mod api_log;
pub mod app;
mod audit;
mod batch_writer;
pub mod clock;
pub mod codes;
mod combine;
pub mod config;
pub mod data_dir;
mod jobs;
pub mod limits;
pub mod metrics;
pub mod notify;
pub mod pin;
mod random;
pub mod rounds;
pub mod service;
pub mod settings;
pub mod signature_debug;
pub mod state;
pub mod tls;
mod urls;
mod wallet;
mod wire;

#[doc(hidden)]
pub use api::check_request;
pub use api::registrations::{Refused as RegistrationRefused, register_request};
pub use app::Application;
pub use config::Config;
pub use urls::HttpUrl;
