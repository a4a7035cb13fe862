//! libFuzzer on `ocpay_fuzz::targets::request_time` (scripts/fuzz).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ocpay_fuzz::targets::request_time(data));
