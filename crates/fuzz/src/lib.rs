//! Fuzz targets for what reads untrusted input: the `Signature` header (and the signature
//! debugger that reads it), `Request-Time`, the lenient JSON request types, every API's request
//! validation, the SFTP path resolver and the CSV writer of the reconciliation files.
//!
//! Each target is a plain function of arbitrary bytes that panics on a bug: a panic of the code
//! under test, or a property that does not hold. `fuzz/` at the root of the repository runs
//! them under libFuzzer (`scripts/fuzz`); [`short_pass`] runs each briefly under `cargo test`,
//! over its committed seeds and a fixed number of inputs mutated from them.

mod input;
mod mutate;
pub mod targets;

pub use mutate::short_pass;

/// A fuzz target: arbitrary bytes in, a panic on a bug.
pub type Target = fn(&[u8]);

/// Every target by name, the name of its seed folder and of its cargo-fuzz target.
pub const TARGETS: [(&str, Target); 6] = [
    ("signature_header", targets::signature_header),
    ("request_time", targets::request_time),
    ("lenient_json", targets::lenient_json),
    ("request_validation", targets::request_validation),
    ("sftp_path", targets::sftp_path),
    ("csv_writer", targets::csv_writer),
];
