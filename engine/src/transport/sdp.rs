//! Checks a remote offer before any socket is bound: the only place outside SDP text is parsed
//! by our own code (the WebRTC stack parses it again when it is applied).

use std::io::Cursor;

use rtc::sdp::description::session::SessionDescription as ParsedSdp;

use super::{SdpType, SessionDescription, TransportError};

/// Largest offer accepted (browsers' audio offers are 2–6 KB).
pub const MAX_SDP_BYTES: usize = 64 * 1024;

/// What [`check_offer`] learned from an acceptable offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferSummary {
    /// The `a=mid` of the first usable audio section, if it has one.
    pub audio_mid: Option<String>,
    /// Opus's payload type in that section (111 in Chromium and Firefox offers).
    pub opus_payload_type: u8,
}

/// Validates that `offer` is an SDP offer with an audio section that offers Opus at 48 kHz.
///
/// Never panics, whatever the input; every failure is a [`TransportError`] whose
/// [`category`](TransportError::category) is [`ErrorCategory::InvalidInput`](super::ErrorCategory::InvalidInput).
pub fn check_offer(offer: &SessionDescription) -> Result<OfferSummary, TransportError> {
    if offer.sdp_type != SdpType::Offer {
        return Err(TransportError::NotAnOffer);
    }
    check_sdp(&offer.sdp)
}

/// The SDP text part of [`check_offer`].
pub fn check_sdp(sdp: &str) -> Result<OfferSummary, TransportError> {
    if sdp.len() > MAX_SDP_BYTES {
        return Err(TransportError::MalformedSdp(format!(
            "{} bytes, more than the {MAX_SDP_BYTES} accepted",
            sdp.len()
        )));
    }
    if sdp.trim().is_empty() {
        return Err(TransportError::MalformedSdp("empty".into()));
    }
    let parsed = ParsedSdp::unmarshal(&mut Cursor::new(sdp.as_bytes()))
        .map_err(|e| TransportError::MalformedSdp(e.to_string()))?;
    let mut saw_audio = false;
    for media in &parsed.media_descriptions {
        if !media.media_name.media.eq_ignore_ascii_case("audio") {
            continue;
        }
        saw_audio = true;
        if media.media_name.port.value == 0 || media.attribute("inactive").is_some() {
            continue;
        }
        let opus = media.attributes.iter().find_map(|a| {
            if a.key != "rtpmap" {
                return None;
            }
            let value = a.value.as_deref()?;
            let (pt, codec) = value.split_once(' ')?;
            let mut parts = codec.trim().split('/');
            let name = parts.next()?;
            let rate = parts.next()?;
            if name.eq_ignore_ascii_case("opus") && rate == "48000" {
                pt.trim().parse::<u8>().ok().filter(|pt| *pt < 128)
            } else {
                None
            }
        });
        if let Some(opus_payload_type) = opus {
            let audio_mid = media
                .attribute("mid")
                .flatten()
                .map(std::borrow::ToOwned::to_owned);
            return Ok(OfferSummary {
                audio_mid,
                opus_payload_type,
            });
        }
    }
    if saw_audio {
        Err(TransportError::NoOpus)
    } else {
        Err(TransportError::NoAudio)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::ErrorCategory;
    use proptest::prelude::*;

    const CHROME_LIKE: &str = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0\r\na=msid-semantic: WMS\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\nc=IN IP4 0.0.0.0\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n\
a=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:63 red/48000/2\r\n\
a=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\n";

    fn offer(sdp: &str) -> SessionDescription {
        SessionDescription {
            sdp_type: SdpType::Offer,
            sdp: sdp.to_owned(),
        }
    }

    #[test]
    fn a_browser_audio_offer_is_accepted() {
        let s = check_offer(&offer(CHROME_LIKE)).expect("valid");
        assert_eq!(s.opus_payload_type, 111);
        assert_eq!(s.audio_mid.as_deref(), Some("0"));
    }

    #[test]
    fn an_answer_is_not_an_offer() {
        let mut o = offer(CHROME_LIKE);
        o.sdp_type = SdpType::Answer;
        assert!(matches!(check_offer(&o), Err(TransportError::NotAnOffer)));
    }

    #[test]
    fn an_offer_without_audio_is_refused() {
        let video_only = CHROME_LIKE
            .replace(
                "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
                "m=video 9 UDP/TLS/RTP/SAVPF 96",
            )
            .replace("a=rtpmap:111 opus/48000/2", "a=rtpmap:96 VP8/90000");
        let err = check_offer(&offer(&video_only)).expect_err("no audio");
        assert!(matches!(err, TransportError::NoAudio), "{err:?}");
        assert_eq!(err.category(), ErrorCategory::InvalidInput);
    }

    #[test]
    fn audio_without_opus_is_refused() {
        let no_opus = CHROME_LIKE.replace("a=rtpmap:111 opus/48000/2\r\n", "");
        assert!(matches!(
            check_offer(&offer(&no_opus)),
            Err(TransportError::NoOpus)
        ));
    }

    #[test]
    fn garbage_and_oversized_text_are_malformed() {
        for bad in [
            "",
            "   ",
            "hello",
            "v=0\r\nm=audio",
            "m=audio 9 RTP 111\r\n",
        ] {
            let err = check_offer(&offer(bad)).expect_err(bad);
            assert_eq!(
                err.category(),
                ErrorCategory::InvalidInput,
                "{bad:?}: {err:?}"
            );
        }
        let huge = "a".repeat(MAX_SDP_BYTES + 1);
        assert!(matches!(
            check_offer(&offer(&huge)),
            Err(TransportError::MalformedSdp(_))
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Arbitrary text never panics the offer check, and every refusal is the client's fault.
        #[test]
        fn arbitrary_text_never_panics(s in ".{0,400}") {
            if let Err(e) = check_sdp(&s) {
                prop_assert_eq!(e.category(), ErrorCategory::InvalidInput);
            }
        }

        /// Mutations of a real offer (a byte range replaced by arbitrary text) never panic.
        #[test]
        fn mutated_browser_offers_never_panic(
            start in 0usize..CHROME_LIKE.len(),
            len in 0usize..40,
            junk in "[ -~\r\n]{0,40}",
        ) {
            let mut s = CHROME_LIKE.as_bytes().to_vec();
            let end = (start + len).min(s.len());
            s.splice(start..end, junk.bytes());
            let s = String::from_utf8_lossy(&s).into_owned();
            let _ = check_sdp(&s);
        }
    }
}
