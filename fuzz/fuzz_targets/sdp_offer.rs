//! The SDP offer path up to the WebRTC stack: the offer JSON, our own SDP check and the
//! remote-candidate filter never panic, whatever the browser sends.
#![no_main]

use engine::transport::sdp::{candidate_address, check_offer, check_sdp, filter_remote_candidates};
use engine::transport::{IceCandidate, SessionDescription};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(offer) = serde_json::from_slice::<SessionDescription>(data) {
        let _ = check_offer(&offer);
    }
    let _ = serde_json::from_slice::<IceCandidate>(data);
    let text = String::from_utf8_lossy(data);
    let _ = check_sdp(&text);
    for loopback_only in [true, false] {
        let _ = filter_remote_candidates(&text, loopback_only);
    }
    for line in text.lines() {
        let _ = candidate_address(line.trim_start_matches("a="));
    }
});
