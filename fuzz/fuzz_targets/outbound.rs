#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| flashgate::fuzzing::outbound(data));
