//! The short pass of every fuzz target: its committed seeds and a fixed number of inputs
//! mutated from them. `scripts/fuzz` runs the same targets for as long as it is asked.

use ocpay_fuzz::{TARGETS, short_pass, targets};

/// Mutated inputs per target: a few seconds each in a debug build.
const MUTATIONS: usize = 3_000;

#[test]
fn every_target_is_listed_once() {
    let mut names: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), TARGETS.len());
}

#[test]
fn signature_header() {
    short_pass("signature_header", targets::signature_header, MUTATIONS);
}

#[test]
fn request_time() {
    short_pass("request_time", targets::request_time, MUTATIONS);
}

#[test]
fn lenient_json() {
    short_pass("lenient_json", targets::lenient_json, MUTATIONS);
}

#[test]
fn request_validation() {
    short_pass("request_validation", targets::request_validation, MUTATIONS);
}

#[test]
fn sftp_path() {
    short_pass("sftp_path", targets::sftp_path, MUTATIONS);
}

#[test]
fn csv_writer() {
    short_pass("csv_writer", targets::csv_writer, MUTATIONS);
}
