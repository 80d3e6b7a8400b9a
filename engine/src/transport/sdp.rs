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
    // RFC 8866 §9: a line ends with CRLF (LF is tolerated) and no value holds a CR or a NUL. A
    // bare CR would split lines differently for the stack's parser and for ours (`sections`),
    // which would then disagree about which section is which.
    let bytes = sdp.as_bytes();
    if bytes
        .iter()
        .enumerate()
        .any(|(i, b)| *b == 0 || (*b == b'\r' && bytes.get(i + 1) != Some(&b'\n')))
    {
        return Err(TransportError::MalformedSdp(
            "a CR outside a line ending, or a NUL".into(),
        ));
    }
    let parsed = ParsedSdp::unmarshal(&mut Cursor::new(sdp.as_bytes()))
        .map_err(|e| TransportError::MalformedSdp(e.to_string()))?;
    // Each section's mid is unique (RFC 8843 §7.2.1); with a repeated one, taking a data
    // section's mid out of the BUNDLE group would take the audio's out too.
    let mut mids = std::collections::HashSet::new();
    for media in &parsed.media_descriptions {
        if let Some(mid) = media.attribute("mid").flatten()
            && !mids.insert(mid.trim())
        {
            return Err(TransportError::MalformedSdp(format!(
                "the mid {:?} names two sections",
                mid.chars().take(32).collect::<String>()
            )));
        }
    }
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
                pt.trim()
                    .parse::<u8>()
                    .ok()
                    .filter(|pt| *pt < 128)
                    // Offered only if the m-line lists it (a mapping of a payload type the
                    // section does not carry offers nothing; the stack would then refuse our
                    // track as an unsupported codec, a client fault).
                    .filter(|pt| {
                        let pt = pt.to_string();
                        media.media_name.formats.iter().any(|f| f.trim() == pt)
                    })
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

/// The connection address of an ICE candidate (`candidate:…` or `a=candidate:…`, RFC 8839
/// §5.1): `Some(ip)`, or `None` for a hostname (mDNS `.local`, `localhost`). `Err` if the line
/// is not shaped like a candidate (foundation, component, transport, priority, address, port,
/// `typ`, type).
pub fn candidate_address(candidate: &str) -> Result<Option<std::net::IpAddr>, TransportError> {
    let bad = || TransportError::InvalidCandidate("not an ICE candidate line".into());
    let line = candidate.trim();
    let line = line.strip_prefix("a=").unwrap_or(line);
    let rest = line.strip_prefix("candidate:").ok_or_else(bad)?;
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    if fields.len() < 8
        || fields[1].parse::<u16>().is_err()
        || fields[3].parse::<u32>().is_err()
        || fields[5].parse::<u16>().is_err()
        || fields[6] != "typ"
    {
        return Err(bad());
    }
    let address = fields[4].trim_start_matches('[').trim_end_matches(']');
    Ok(address.parse::<std::net::IpAddr>().ok())
}

/// Whether an ICE candidate names a loopback address (127.0.0.0/8 or ::1, also IPv4-mapped).
/// Hostnames and malformed lines are not loopback: a loopback-only session never resolves
/// names.
pub fn candidate_is_loopback(candidate: &str) -> bool {
    matches!(candidate_address(candidate), Ok(Some(ip)) if super::loopback_guard::is_loopback(ip))
}

/// Most remote ICE candidates a session takes, from the offer and trickled together. Browsers
/// offer 2–10 (host, server-reflexive, relay per interface); more only makes the ICE agent
/// plan checks for an attacker.
pub const MAX_REMOTE_CANDIDATES: usize = 20;

/// Whether this node could ever reach a candidate address: multicast, unspecified (0.0.0.0,
/// ::) and the IPv4 broadcast address never answer an ICE check, so a check towards them is
/// only traffic sent where the peer pointed us.
pub fn address_is_reachable(ip: std::net::IpAddr) -> bool {
    let ip = match ip {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
        v4 => v4,
    };
    match ip {
        std::net::IpAddr::V4(v4) => {
            !(v4.is_multicast() || v4.is_unspecified() || v4.is_broadcast())
        }
        std::net::IpAddr::V6(v6) => !(v6.is_multicast() || v6.is_unspecified()),
    }
}

/// What [`filter_remote_candidates`] removed, by why.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CandidatesRemoved {
    /// Not loopback, in loopback-only mode.
    pub not_loopback: usize,
    /// Multicast, unspecified or broadcast addresses, and lines not shaped like a candidate.
    pub unreachable: usize,
    /// Beyond [`MAX_REMOTE_CANDIDATES`].
    pub over_cap: usize,
}

impl CandidatesRemoved {
    pub fn total(&self) -> usize {
        self.not_loopback + self.unreachable + self.over_cap
    }
}

/// The remote offer's `a=candidate` lines as the ICE agent will see them: in loopback-only
/// mode only loopback ones (see [`candidate_is_loopback`]), never an address this node cannot
/// reach ([`address_is_reachable`]) or a malformed line, and at most
/// [`MAX_REMOTE_CANDIDATES`]; returns the filtered SDP, how many it kept, and what it removed.
/// Hostname candidates (mDNS) are kept outside loopback-only mode (the stack ignores them).
pub fn filter_remote_candidates(
    sdp: &str,
    loopback_only: bool,
) -> (String, usize, CandidatesRemoved) {
    let mut removed = CandidatesRemoved::default();
    let mut kept = 0;
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        let content = line.trim_end_matches(['\r', '\n']);
        if content.starts_with("a=candidate:") {
            let address = candidate_address(content);
            if loopback_only && !candidate_is_loopback(content) {
                removed.not_loopback += 1;
                continue;
            }
            match address {
                Err(_) => {
                    removed.unreachable += 1;
                    continue;
                }
                Ok(Some(ip)) if !address_is_reachable(ip) => {
                    removed.unreachable += 1;
                    continue;
                }
                Ok(_) => {}
            }
            if kept >= MAX_REMOTE_CANDIDATES {
                removed.over_cap += 1;
                continue;
            }
            kept += 1;
        }
        out.push_str(line);
    }
    (out, kept, removed)
}

/// An offered media section this node does not serve (the browser's data channel), taken out
/// of the offer before the WebRTC stack sees it and answered as rejected (RFC 3264 §6, RFC 8829
/// §5.3.1: the same m-line, port 0, its `a=mid`, outside the BUNDLE group), so the browser
/// closes its channel at once instead of starting SCTP towards a stack that refuses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnservedSection {
    /// Position among the offer's m-lines.
    pub index: usize,
    /// The m-line's media, protocol and formats, as offered.
    pub media: String,
    pub proto: String,
    pub formats: String,
    pub mid: Option<String>,
}

impl UnservedSection {
    /// The section as the answer rejects it.
    fn rejected(&self) -> String {
        let mut out = format!(
            "m={} 0 {} {}\r\nc=IN IP4 0.0.0.0\r\n",
            self.media, self.proto, self.formats
        );
        if let Some(mid) = &self.mid {
            out.push_str(&format!("a=mid:{mid}\r\n"));
        }
        out
    }
}

/// SDP split into its session part and its media sections (each from its `m=` line on),
/// lines without their endings.
fn sections(sdp: &str) -> (Vec<&str>, Vec<Vec<&str>>) {
    let mut session = Vec::new();
    let mut media: Vec<Vec<&str>> = Vec::new();
    for line in sdp.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        if line.starts_with("m=") {
            media.push(vec![line]);
        } else if let Some(section) = media.last_mut() {
            section.push(line);
        } else {
            session.push(line);
        }
    }
    (session, media)
}

fn join(lines: impl IntoIterator<Item = String>) -> String {
    let mut out = String::new();
    for line in lines {
        out.push_str(&line);
        out.push_str("\r\n");
    }
    out
}

/// Takes the `m=application` sections out of an offer (see [`UnservedSection`]), and their
/// mids out of its `a=group:BUNDLE` line. An offer without one comes back unchanged.
pub fn remove_unserved_sections(sdp: &str) -> (String, Vec<UnservedSection>) {
    let (session, media) = sections(sdp);
    let mut unserved = Vec::new();
    for (index, section) in media.iter().enumerate() {
        let mut fields = section[0].trim_start_matches("m=").split_ascii_whitespace();
        let kind = fields.next().unwrap_or("");
        if !kind.eq_ignore_ascii_case("application") {
            continue;
        }
        let _port = fields.next();
        let proto = fields.next().unwrap_or("UDP/DTLS/SCTP").to_owned();
        let formats = fields.collect::<Vec<_>>().join(" ");
        let mid = section
            .iter()
            .find_map(|l| l.strip_prefix("a=mid:"))
            .map(|m| m.trim().to_owned());
        unserved.push(UnservedSection {
            index,
            media: kind.to_owned(),
            proto,
            formats: if formats.is_empty() {
                "webrtc-datachannel".to_owned()
            } else {
                formats
            },
            mid,
        });
    }
    if unserved.is_empty() {
        return (sdp.to_owned(), unserved);
    }
    let removed_mids: Vec<&str> = unserved.iter().filter_map(|u| u.mid.as_deref()).collect();
    let session = session
        .iter()
        .map(|line| match line.strip_prefix("a=group:BUNDLE") {
            Some(mids) => {
                let kept: Vec<&str> = mids
                    .split_ascii_whitespace()
                    .filter(|m| !removed_mids.contains(m))
                    .collect();
                format!("a=group:BUNDLE {}", kept.join(" "))
                    .trim_end()
                    .to_owned()
            }
            None => (*line).to_owned(),
        });
    let kept = media
        .iter()
        .enumerate()
        .filter(|(i, _)| !unserved.iter().any(|u| u.index == *i))
        .flat_map(|(_, section)| section.iter().map(|l| (*l).to_owned()));
    (join(session.chain(kept)), unserved)
}

/// Puts the sections [`remove_unserved_sections`] took out back into the answer, rejected, at
/// their offered positions, so the answer has the offer's m-lines in the offer's order.
pub fn answer_unserved_sections(answer: &str, unserved: &[UnservedSection]) -> String {
    if unserved.is_empty() {
        return answer.to_owned();
    }
    let (session, media) = sections(answer);
    let mut served = media.into_iter();
    let total = served.len() + unserved.len();
    let mut out: Vec<String> = session.iter().map(|l| (*l).to_owned()).collect();
    for index in 0..total {
        match unserved.iter().find(|u| u.index == index) {
            Some(section) => out.extend(section.rejected().lines().map(str::to_owned)),
            None => {
                if let Some(section) = served.next() {
                    out.extend(section.iter().map(|l| (*l).to_owned()));
                }
            }
        }
    }
    join(out)
}

/// The payload types an audio section maps to Opus (`a=rtpmap:<pt> opus/48000...`).
fn opus_payload_types<'a>(section: &[&'a str]) -> Vec<&'a str> {
    section
        .iter()
        .filter_map(|line| line.strip_prefix("a=rtpmap:"))
        .filter_map(|rest| rest.split_once(' '))
        .filter(|(_, codec)| {
            codec
                .get(..5)
                .is_some_and(|name| name.eq_ignore_ascii_case("opus/"))
        })
        .map(|(pt, _)| pt.trim())
        .collect()
}

fn is_audio(section: &[&str]) -> bool {
    section[0]
        .strip_prefix("m=")
        .and_then(|m| m.split_ascii_whitespace().next())
        .is_some_and(|kind| kind.eq_ignore_ascii_case("audio"))
}

/// Says in an answer that we play the peer's Opus at no more than `hz` (RFC 7587 §6.1
/// `maxplaybackrate` on every Opus `a=fmtp` line of its audio sections, one added where an
/// Opus payload type has none; an earlier value is replaced). We decode the candidate at the
/// speech-to-text's 16 kHz, so whatever a browser codes above 8 kHz is thrown away: told so,
/// Chrome's encoder stops at wideband and codes SILK alone, which costs us (and the browser)
/// far less to decode than hybrid SILK+CELT, and the same bit rate buys the band that is heard.
///
/// This edits the answer's text rather than the stack's codec parameters because the `webrtc`
/// crate answers with the offer's own Opus parameters, not ours; the parameter only describes
/// what we receive, which our side never reads back.
pub fn limit_opus_playback_rate(answer: &str, hz: u32) -> String {
    let (session, media) = sections(answer);
    let mut out: Vec<String> = session.iter().map(|l| (*l).to_owned()).collect();
    for section in &media {
        let opus = if is_audio(section) {
            opus_payload_types(section)
        } else {
            Vec::new()
        };
        let fmtp_of = |line: &str| -> Option<(String, String)> {
            let (pt, params) = line.strip_prefix("a=fmtp:")?.split_once(' ')?;
            opus.contains(&pt.trim())
                .then(|| (pt.trim().to_owned(), params.trim().to_owned()))
        };
        let has_fmtp: Vec<String> = section
            .iter()
            .filter_map(|line| fmtp_of(line).map(|(pt, _)| pt))
            .collect();
        for line in section {
            if let Some((pt, params)) = fmtp_of(line) {
                let mut kept: Vec<&str> = params
                    .split(';')
                    .map(str::trim)
                    .filter(|p| {
                        !p.is_empty()
                            && !p
                                .split('=')
                                .next()
                                .is_some_and(|k| k.trim().eq_ignore_ascii_case("maxplaybackrate"))
                    })
                    .collect();
                let limit = format!("maxplaybackrate={hz}");
                kept.push(&limit);
                out.push(format!("a=fmtp:{pt} {}", kept.join(";")));
                continue;
            }
            out.push((*line).to_owned());
            if let Some((pt, _)) = line
                .strip_prefix("a=rtpmap:")
                .and_then(|rest| rest.split_once(' '))
                && opus.contains(&pt.trim())
                && !has_fmtp.iter().any(|p| p == pt.trim())
            {
                out.push(format!("a=fmtp:{} maxplaybackrate={hz}", pt.trim()));
            }
        }
    }
    join(out)
}

/// The lowest `maxplaybackrate` the Opus `a=fmtp` lines of a description's audio sections
/// state (RFC 7587 §6.1), if any does: what the far end says it plays at most, so a sender
/// need not code more (the load harness's stand-in for a browser reads it from our answer).
pub fn opus_max_playback_rate(sdp: &str) -> Option<u32> {
    let (_, media) = sections(sdp);
    media
        .iter()
        .filter(|section| is_audio(section))
        .flat_map(|section| {
            let opus = opus_payload_types(section);
            section
                .iter()
                .filter_map(|line| line.strip_prefix("a=fmtp:")?.split_once(' '))
                .filter(move |(pt, _)| opus.contains(&pt.trim()))
                .flat_map(|(_, params)| params.split(';'))
                .filter_map(|param| {
                    let (key, value) = param.split_once('=')?;
                    key.trim()
                        .eq_ignore_ascii_case("maxplaybackrate")
                        .then(|| value.trim().parse::<u32>().ok())?
                })
                .collect::<Vec<_>>()
        })
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::ErrorCategory;
    use proptest::prelude::*;

    #[test]
    fn the_answer_limits_opus_playback_and_touches_nothing_else() {
        let limited = limit_opus_playback_rate(CHROME_LIKE, 16_000);
        assert_eq!(opus_max_playback_rate(&limited), Some(16_000));
        assert_eq!(opus_max_playback_rate(CHROME_LIKE), None);
        let changed: Vec<(&str, &str)> = CHROME_LIKE
            .lines()
            .zip(limited.lines())
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(
            changed,
            [(
                "a=fmtp:111 minptime=10;useinbandfec=1",
                "a=fmtp:111 minptime=10;useinbandfec=1;maxplaybackrate=16000"
            )]
        );
        assert_eq!(CHROME_LIKE.lines().count(), limited.lines().count());
        // Applied twice, or over the far end's own value, there is still one, ours.
        let again = limit_opus_playback_rate(
            &limited.replace("maxplaybackrate=16000", "maxplaybackrate=48000;stereo=1"),
            16_000,
        );
        assert_eq!(again.matches("maxplaybackrate").count(), 1);
        assert!(
            again.contains(
                "a=fmtp:111 minptime=10;useinbandfec=1;stereo=1;maxplaybackrate=16000\r\n"
            )
        );
        // An Opus payload type without an fmtp line gets one after its rtpmap; other codecs and
        // other sections none.
        let bare = CHROME_LIKE.replace("a=fmtp:111 minptime=10;useinbandfec=1\r\n", "");
        let limited = limit_opus_playback_rate(&bare, 16_000);
        assert!(
            limited.contains("a=rtpmap:111 opus/48000/2\r\na=fmtp:111 maxplaybackrate=16000\r\n")
        );
        assert_eq!(limited.matches("a=fmtp:").count(), 1);
        let video = CHROME_LIKE.replace("m=audio", "m=video");
        assert_eq!(limit_opus_playback_rate(&video, 16_000), video);
    }

    proptest! {
        #[test]
        fn limiting_playback_never_panics_and_always_states_the_limit(
            text in ".{0,1000}",
            hz in 8_000u32..=48_000,
        ) {
            let answer = format!("{CHROME_LIKE}{text}");
            let limited = limit_opus_playback_rate(&answer, hz);
            // The limit, whatever the text after the audio section declares.
            prop_assert!(opus_max_playback_rate(&limited).is_some_and(|r| r <= hz));
            let ours = format!("a=fmtp:111 minptime=10;useinbandfec=1;maxplaybackrate={hz}");
            prop_assert!(limited.contains(&ours));
            prop_assert_eq!(
                m_lines(&limited).len(),
                answer.lines().filter(|l| l.trim_end_matches('\r').starts_with("m=")).count()
            );
            let _ = opus_max_playback_rate(&text);
        }
    }

    fn with_candidates(lines: &[String]) -> String {
        let mut sdp = CHROME_LIKE.to_owned();
        for line in lines {
            sdp.push_str(line);
            sdp.push_str("\r\n");
        }
        sdp
    }

    fn host(address: &str, port: u16) -> String {
        format!("a=candidate:1 1 udp 2122260223 {address} {port} typ host")
    }

    #[test]
    fn unreachable_and_malformed_candidates_are_dropped_and_the_rest_capped() {
        let mut lines = vec![
            host("224.0.0.251", 5353),
            host("0.0.0.0", 9),
            host("255.255.255.255", 9),
            host("::", 9),
            host("ff02::1", 9),
            host("::ffff:224.0.0.1", 9),
            "a=candidate:garbage".to_owned(),
            host("192.168.1.20", 50000),
            host("abcd-1234.local", 50001),
        ];
        lines.extend((0..40).map(|i| host("198.51.100.7", 40000 + i)));
        let (sdp, kept, removed) = filter_remote_candidates(&with_candidates(&lines), false);
        assert_eq!(removed.unreachable, 7, "{removed:?}");
        assert_eq!(kept, MAX_REMOTE_CANDIDATES);
        assert_eq!(removed.over_cap, 2 + 40 - MAX_REMOTE_CANDIDATES);
        assert!(
            sdp.contains("192.168.1.20"),
            "a private address is kept outside loopback mode"
        );
        assert!(
            sdp.contains(".local"),
            "mDNS names pass (the stack ignores them)"
        );
        assert!(!sdp.contains("224.0.0.251") && !sdp.contains(" 0.0.0.0 "));
        assert_eq!(sdp.matches("a=candidate:").count(), MAX_REMOTE_CANDIDATES);
        // The offer is still an acceptable offer.
        assert!(check_sdp(&sdp).is_ok());
    }

    #[test]
    fn loopback_only_keeps_loopback_candidates_only_and_still_caps_them() {
        let mut lines = vec![host("192.168.1.20", 50000), host("10.0.0.1", 50000)];
        lines.extend((0..30).map(|i| host("127.0.0.1", 40000 + i)));
        let (sdp, kept, removed) = filter_remote_candidates(&with_candidates(&lines), true);
        assert_eq!(removed.not_loopback, 2);
        assert_eq!(kept, MAX_REMOTE_CANDIDATES);
        assert_eq!(removed.over_cap, 30 - MAX_REMOTE_CANDIDATES);
        assert!(!sdp.contains("192.168.") && !sdp.contains("10.0.0.1"));
    }

    const DATA_SECTION: &str = "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n\
a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=setup:actpass\r\na=mid:1\r\n\
a=sctp-port:5000\r\na=max-message-size:262144\r\n";

    fn m_lines(sdp: &str) -> Vec<&str> {
        sdp.lines().filter(|l| l.starts_with("m=")).collect()
    }

    #[test]
    fn a_data_channel_section_is_taken_out_of_the_offer_and_answered_rejected_in_place() {
        let offer = CHROME_LIKE.replace("a=group:BUNDLE 0", "a=group:BUNDLE 0 1") + DATA_SECTION;
        let (stripped, unserved) = remove_unserved_sections(&offer);
        assert_eq!(unserved.len(), 1);
        assert_eq!(unserved[0].index, 1);
        assert_eq!(unserved[0].mid.as_deref(), Some("1"));
        assert_eq!(m_lines(&stripped).len(), 1, "{stripped}");
        assert!(stripped.contains("a=group:BUNDLE 0\r\n"), "{stripped}");
        assert!(!stripped.contains("sctp"), "{stripped}");
        assert!(check_sdp(&stripped).is_ok(), "still an acceptable offer");
        // The stack answers the audio only; the answer gets the data section back, rejected.
        let stack_answer = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\n";
        let answer = answer_unserved_sections(stack_answer, &unserved);
        assert_eq!(
            m_lines(&answer),
            vec![
                "m=audio 9 UDP/TLS/RTP/SAVPF 111",
                "m=application 0 UDP/DTLS/SCTP webrtc-datachannel"
            ]
        );
        assert!(answer.ends_with("m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\n"), "{answer}");
        assert!(
            answer.contains("a=group:BUNDLE 0\r\n"),
            "not bundled: {answer}"
        );
    }

    #[test]
    fn a_data_section_offered_first_keeps_its_place() {
        let offer = CHROME_LIKE.replacen("m=audio", &format!("{DATA_SECTION}m=audio"), 1);
        let (stripped, unserved) = remove_unserved_sections(&offer);
        assert_eq!(unserved[0].index, 0);
        assert_eq!(m_lines(&stripped).len(), 1);
        let answer = answer_unserved_sections(&stripped, &unserved);
        let lines = m_lines(&answer);
        assert!(lines[0].starts_with("m=application 0 "), "{answer}");
        assert!(lines[1].starts_with("m=audio 9 "), "{answer}");
    }

    #[test]
    fn an_offer_without_a_data_section_is_untouched() {
        let (stripped, unserved) = remove_unserved_sections(CHROME_LIKE);
        assert!(unserved.is_empty());
        assert_eq!(stripped, CHROME_LIKE);
        assert_eq!(
            answer_unserved_sections(CHROME_LIKE, &unserved),
            CHROME_LIKE
        );
    }

    proptest! {
        #[test]
        fn removing_and_answering_sections_never_panics_and_keeps_the_m_line_count(text in ".{0,2000}") {
            let offer = format!("{CHROME_LIKE}{text}");
            let (stripped, unserved) = remove_unserved_sections(&offer);
            let answer = answer_unserved_sections(&stripped, &unserved);
            prop_assert_eq!(
                m_lines(&answer).len(),
                offer.lines().filter(|l| l.trim_end_matches('\r').starts_with("m=")).count()
            );
        }
    }

    proptest! {
        #[test]
        fn filtering_never_panics_and_never_keeps_more_than_the_cap(text in ".{0,2000}", n in 0usize..60) {
            let lines: Vec<String> = (0..n).map(|i| host("198.51.100.9", 1000 + i as u16)).collect();
            let sdp = format!("{}{}", with_candidates(&lines), text);
            for loopback_only in [false, true] {
                let (out, kept, _) = filter_remote_candidates(&sdp, loopback_only);
                prop_assert!(kept <= MAX_REMOTE_CANDIDATES);
                prop_assert!(out.len() <= sdp.len());
            }
        }
    }

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

    /// A regression found by `webrtc_offer_fuzz`: Opus mapped but not listed on the m-line is
    /// not offered (the stack then refused our track: a 500 for a client's fault).
    #[test]
    fn opus_mapped_but_not_listed_on_the_m_line_is_refused() {
        let line = CHROME_LIKE
            .lines()
            .find(|l| l.starts_with("m=audio"))
            .expect("an audio m-line");
        let unlisted = line.replace(" 111", " 1!11");
        let mangled = CHROME_LIKE.replace(line, &unlisted);
        assert!(matches!(
            check_offer(&offer(&mangled)),
            Err(TransportError::NoOpus)
        ));
    }

    /// Found by the `sdp_offer` fuzz target: an offer whose data section repeats the audio's
    /// mid lost the audio's mid from the BUNDLE group with the data section's (a 500 later).
    #[test]
    fn a_mid_named_by_two_sections_is_malformed() {
        let offer_text = CHROME_LIKE.replace("a=group:BUNDLE 0", "a=group:BUNDLE 0 0")
            + &DATA_SECTION.replace("a=mid:1", "a=mid:0");
        assert!(offer_text.matches("a=mid:0").count() == 2, "{offer_text}");
        assert!(matches!(
            check_offer(&offer(&offer_text)),
            Err(TransportError::MalformedSdp(_))
        ));
        // Distinct mids are fine.
        let fine = CHROME_LIKE.replace("a=group:BUNDLE 0", "a=group:BUNDLE 0 1") + DATA_SECTION;
        assert!(check_offer(&offer(&fine)).is_ok());
    }

    /// Found by the `sdp_offer` fuzz target: a bare CR split lines one way for the stack's
    /// parser and another for ours.
    #[test]
    fn a_bare_cr_or_a_nul_is_malformed() {
        for bad in [
            CHROME_LIKE.replace("a=rtcp-mux\r\n", "a=rtcp-mux\ra=x\r\n"),
            CHROME_LIKE.replace("a=rtcp-mux", "a=rtcp\0mux"),
        ] {
            assert_ne!(bad, CHROME_LIKE);
            assert!(matches!(
                check_offer(&offer(&bad)),
                Err(TransportError::MalformedSdp(_))
            ));
        }
        // LF-only line endings are tolerated.
        assert!(check_offer(&offer(&CHROME_LIKE.replace("\r\n", "\n"))).is_ok());
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

    #[test]
    fn loopback_candidates_are_recognised() {
        for ok in [
            "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host",
            "a=candidate:1 1 UDP 2122260223 127.3.4.5 50000 typ host generation 0",
            "candidate:2 1 udp 2122262783 ::1 50001 typ host",
            "candidate:2 1 udp 2122262783 [::1] 50001 typ host",
        ] {
            assert!(candidate_is_loopback(ok), "{ok}");
        }
        for not in [
            "candidate:1 1 udp 2122260223 192.168.1.20 50000 typ host",
            "candidate:1 1 udp 2122260223 10.0.0.2 50000 typ host",
            "candidate:1 1 udp 1686052607 203.0.113.9 50000 typ srflx raddr 127.0.0.1 rport 1",
            "candidate:1 1 udp 2122260223 fd00::2 50000 typ host",
            "candidate:1 1 udp 2122260223 0.0.0.0 50000 typ host",
            "candidate:1 1 udp 2122260223 3f1c-uuid.local 50000 typ host",
            "candidate:1 1 udp 2122260223 localhost 50000 typ host",
            "candidate:1 1 udp",
            "candidate:1 1 udp 2122260223 127.0.0.1 port typ host",
            "candidate:1 1 udp 2122260223 127.0.0.1 5000 type host",
            "",
            "garbage",
        ] {
            assert!(!candidate_is_loopback(not), "{not}");
        }
        assert!(candidate_address("candidate:this is not a candidate").is_err());
        assert_eq!(
            candidate_address("candidate:1 1 udp 1 abcd.local 9 typ host").ok(),
            Some(None)
        );
    }

    #[test]
    fn only_loopback_candidates_survive_the_filter() {
        let sdp = format!(
            "{CHROME_LIKE}a=candidate:1 1 udp 2122260223 192.168.1.20 50000 typ host generation 0\r\n\
a=candidate:2 1 udp 2122260223 127.0.0.1 50002 typ host generation 0\r\n\
a=candidate:3 1 udp 2122262783 fd00::2 50003 typ host generation 0\r\n\
a=candidate:4 1 udp 2122262783 ::1 50004 typ host generation 0\r\n\
a=candidate:5 1 udp 2122260223 abcd.local 50005 typ host generation 0\r\n\
a=end-of-candidates\r\n"
        );
        let (filtered, kept, removed) = filter_remote_candidates(&sdp, true);
        assert_eq!((kept, removed.not_loopback, removed.total()), (2, 3, 3));
        assert!(filtered.starts_with(CHROME_LIKE), "other lines are kept");
        assert!(filtered.contains("127.0.0.1 50002"));
        assert!(filtered.contains("::1 50004"));
        assert!(filtered.ends_with("a=end-of-candidates\r\n"));
        for gone in ["192.168.1.20", "fd00::2", "abcd.local"] {
            assert!(!filtered.contains(gone), "{gone} removed");
        }
        check_sdp(&filtered).expect("still a valid offer");
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
