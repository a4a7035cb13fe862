//! libFuzzer on `ocpay_fuzz::targets::lenient_json` (scripts/fuzz).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ocpay_fuzz::targets::lenient_json(data));
