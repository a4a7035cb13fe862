//! The running ocpay platform: the signed AMS gateway (`api`), the use cases behind it
//! (`service`), and what they share (configuration, clock, keys, data directory).
//!
//! Start one with [`app::Application::build`] and [`app::Application::run`]; the `ocpay`
//! command does exactly that for `ocpay serve`.

mod api;
pub mod app;
pub mod clock;
pub mod codes;
pub mod config;
pub mod data_dir;
mod random;
pub mod service;
pub mod state;
mod urls;

pub use app::Application;
pub use config::Config;
