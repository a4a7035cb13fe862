//! libFuzzer on `ocpay_fuzz::targets::signature_header` (scripts/fuzz).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ocpay_fuzz::targets::signature_header(data));
