//! libFuzzer on `ocpay_fuzz::targets::request_validation` (scripts/fuzz).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ocpay_fuzz::targets::request_validation(data));
