//! The resume extractor on arbitrary bytes declared as pdf: text or a client error, never
//! a panic, a hang or unbounded memory (the server also runs it in a capped child process).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = api::resume::extract(data, Some("application/pdf"), Some("resume.pdf"));
});
