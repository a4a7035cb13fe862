//! libFuzzer on `ocpay_fuzz::targets::csv_writer` (scripts/fuzz).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ocpay_fuzz::targets::csv_writer(data));
