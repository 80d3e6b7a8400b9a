// Protects the WebRTC media transport: a real client ↔ server peer connection over UDP on
// 127.0.0.1 carries Opus audio both ways with the right duration, energy and RTP timestamps;
// bad offers are clean errors; a close or a peer that never connects is reported in seconds; an
// offered data channel is rejected cleanly in the answer (port 0) while the audio goes on.

use std::time::{Duration, Instant};

use engine::transport::client::{ReceivedAudio, collect_audio, collect_frames, connected_pair};
use engine::transport::{
    ConnectionState, EndReason, ErrorCategory, IceCandidate, MediaSession, OpusRate, SdpType,
    SessionDescription, ToneGenerator, TransportError, WebRtcClient, WebRtcConfig, accept_offer,
};

const CONNECT: Duration = Duration::from_secs(5);
/// RMS of a 0.3-amplitude sine is 0.3 / √2 ≈ 0.21; Opus keeps it close.
const VOICED_FLOOR: f64 = 0.05;
/// Receiving stops this long after the last frame (generous for 2 busy cores)…
const IDLE_GAP: Duration = Duration::from_millis(600);
/// …or after this long in all.
const MAX_WAIT: Duration = Duration::from_secs(6);

/// Client offers, server answers, both connected. Returns (server, client, connect time).
async fn connect_pair() -> (MediaSession, MediaSession, Duration) {
    let t0 = Instant::now();
    let (server, client, answer) = connected_pair(&WebRtcConfig::loopback(), CONNECT)
        .await
        .expect("client and server connect");
    let connected_in = t0.elapsed();
    assert_eq!(answer.sdp_type, SdpType::Answer);
    assert!(
        answer.sdp.contains("a=candidate:") && answer.sdp.contains("127.0.0.1"),
        "the answer carries host candidates (non-trickle):\n{}",
        answer.sdp
    );
    assert!(answer.sdp.contains("opus/48000/2"), "{}", answer.sdp);
    // The server hears at 16 kHz and says so: the client need not code more.
    assert_eq!(
        engine::transport::sdp::opus_max_playback_rate(&answer.sdp),
        Some(16_000),
        "{}",
        answer.sdp
    );
    (server, client, connected_in)
}

/// Sends `frames` frames of a tone, one every 20 ms (we are the pacer here).
async fn send_tone(session: &mut MediaSession, freq: f64, frames: usize) {
    let mut tone = ToneGenerator::new(OpusRate::Hz48000, freq, 0.3);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for _ in 0..frames {
        tick.tick().await;
        session
            .outbound
            .send_frame(&tone.next_frame(), tone.rate())
            .expect("send frame");
    }
}

/// Zero crossings per 20 ms frame: ≈ 2 × freq / 50.
fn zero_crossings(samples: &[i16]) -> usize {
    samples
        .windows(2)
        .filter(|w| (w[0] < 0) != (w[1] < 0))
        .count()
}

fn assert_tone_arrived(what: &str, got: ReceivedAudio, sent: usize) {
    eprintln!("{what}: sent {sent} frames, received {got:?}");
    assert!(
        got.frames >= sent * 9 / 10 && got.frames <= sent + 2,
        "{what}: duration: received {} frames for {sent} sent",
        got.frames
    );
    assert!(
        got.voiced_frames >= sent * 8 / 10,
        "{what}: only {} of {sent} frames above the energy floor",
        got.voiced_frames
    );
    assert!(got.rms > 0.1, "{what}: rms {}", got.rms);
    assert_eq!(got.concealed_frames, 0, "{what}: no loss on loopback");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tone_sent_by_the_client_arrives_at_the_server_with_its_duration_and_energy() {
    let (mut server, mut client, took) = connect_pair().await;
    eprintln!("connected in {took:?}");
    assert!(took < CONNECT);

    let sent = 50;
    let sender = async { send_tone(&mut client, 1000.0, sent).await };
    let receiver = collect_audio(&mut server.inbound, MAX_WAIT, IDLE_GAP, VOICED_FLOOR);
    let ((), got) = tokio::join!(sender, receiver);
    assert_tone_arrived("client → server", got, sent);

    let server_stats = server.stats().snapshot();
    let client_stats = client.stats().snapshot();
    eprintln!("server {server_stats:?}\nclient {client_stats:?}");
    assert_eq!(client_stats.frames_sent, sent as u64);
    assert_eq!(client_stats.packets_out, sent as u64);
    assert_eq!(server_stats.packets_in, sent as u64);
    assert_eq!(server_stats.packets_lost, 0);
    assert_eq!(
        server_stats.ts_irregular, 0,
        "every packet's timestamp is the previous one + 960"
    );
    assert_eq!(server_stats.frames_dropped, 0);

    client.close().await;
    server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_flows_both_ways_at_once_and_keeps_its_pitch() {
    let (mut server, mut client, _) = connect_pair().await;
    let sent = 40;
    let (srv_in, cli_in) = (&mut server.inbound, &mut client.inbound);
    let (srv_out, cli_out) = (&mut server.outbound, &mut client.outbound);
    let send_both = async {
        let mut to_server = ToneGenerator::new(OpusRate::Hz48000, 1000.0, 0.3);
        let mut to_client = ToneGenerator::new(OpusRate::Hz16000, 400.0, 0.3);
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for _ in 0..sent {
            tick.tick().await;
            cli_out
                .send_frame(&to_server.next_frame(), to_server.rate())
                .expect("client send");
            srv_out
                .send_frame(&to_client.next_frame(), to_client.rate())
                .expect("server send");
        }
    };
    let recv_server = collect_frames(srv_in, MAX_WAIT, IDLE_GAP);
    let recv_client = collect_frames(cli_in, MAX_WAIT, IDLE_GAP);
    let ((), at_server, at_client) = tokio::join!(send_both, recv_server, recv_client);

    for (what, frames, freq) in [
        ("client → server", &at_server, 1000.0),
        ("server → client", &at_client, 400.0),
    ] {
        assert!(
            frames.len() >= sent * 9 / 10 && frames.len() <= sent + 2,
            "{what}: {} frames for {sent} sent",
            frames.len()
        );
        assert!(
            frames
                .iter()
                .all(|f| f.rate == OpusRate::Hz16000 && f.samples.len() == 320),
            "{what}: decoded at the engine's 16 kHz"
        );
        // Frame indices are a gap-free timeline.
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(f.index, i as u64, "{what}: timeline index");
        }
        // Past the codec's warm-up, each frame carries the sent pitch: 2·f/50 crossings.
        let expected = 2.0 * freq / 50.0;
        let mid = &frames[frames.len() / 2];
        let zc = zero_crossings(&mid.samples) as f64;
        eprintln!(
            "{what}: {} frames, mid rms {:.3}, zero crossings {zc} (expect ≈{expected})",
            frames.len(),
            mid.rms()
        );
        assert!(
            (zc - expected).abs() <= expected * 0.15 + 2.0,
            "{what}: {zc} zero crossings, expected ≈{expected}"
        );
        assert!(mid.rms() > 0.1, "{what}: rms {}", mid.rms());
    }
    let client_stats = client.stats().snapshot();
    assert_eq!(client_stats.packets_in, sent as u64);
    assert_eq!(
        client_stats.ts_irregular, 0,
        "server → client RTP timestamps advance by exactly 960 per packet"
    );
    client.close().await;
    server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_sdp_is_a_client_error_not_a_panic() {
    let config = WebRtcConfig::loopback();
    let cases = [
        String::new(),
        "not sdp at all".to_owned(),
        "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n".to_owned(),
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\n".to_owned(),
        "\u{0}\u{ffff}garbage\r\n\r\nm=".to_owned(),
    ];
    for sdp in cases {
        let offer = SessionDescription {
            sdp_type: SdpType::Offer,
            sdp: sdp.clone(),
        };
        let err = accept_offer(&config, &offer)
            .await
            .expect_err("malformed offer must fail");
        eprintln!("{sdp:?} → {err}");
        assert_eq!(
            err.category(),
            ErrorCategory::InvalidInput,
            "{sdp:?}: {err:?}"
        );
    }

    // A real offer sent as the wrong type.
    let (pending, offer) = WebRtcClient::offer(&config).await.expect("client offer");
    let as_answer = SessionDescription {
        sdp_type: SdpType::Answer,
        ..offer
    };
    let err = accept_offer(&config, &as_answer)
        .await
        .expect_err("not an offer");
    assert!(matches!(err, TransportError::NotAnOffer), "{err:?}");
    pending.abandon().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_without_audio_is_refused_with_a_client_error() {
    let config = WebRtcConfig::loopback();
    let (pending, offer) = WebRtcClient::offer(&config).await.expect("client offer");
    let video_only = SessionDescription {
        sdp_type: SdpType::Offer,
        sdp: offer
            .sdp
            .replace("m=audio", "m=video")
            .replace("opus/48000/2", "VP8/90000"),
    };
    let err = accept_offer(&config, &video_only)
        .await
        .expect_err("no audio");
    assert!(matches!(err, TransportError::NoAudio), "{err:?}");
    assert_eq!(err.category(), ErrorCategory::InvalidInput);

    let no_opus = SessionDescription {
        sdp_type: SdpType::Offer,
        sdp: offer.sdp.replace("opus/48000/2", "PCMU/8000"),
    };
    let err = accept_offer(&config, &no_opus).await.expect_err("no opus");
    assert!(matches!(err, TransportError::NoOpus), "{err:?}");
    pending.abandon().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_client_is_reported_on_the_server_within_seconds() {
    let (mut server, client, _) = connect_pair().await;
    let t0 = Instant::now();
    client.close().await;
    assert_eq!(
        client.state(),
        ConnectionState::Ended(EndReason::ClosedLocally)
    );
    let reason = server
        .control
        .wait_ended(Duration::from_secs(10))
        .await
        .expect("server notices the client left");
    eprintln!("server saw {reason:?} after {:?}", t0.elapsed());
    assert!(
        t0.elapsed() < Duration::from_secs(8),
        "took {:?}",
        t0.elapsed()
    );
    assert!(
        matches!(reason, EndReason::ClosedByPeer | EndReason::IceFailed),
        "{reason:?}"
    );
    // The inbound audio channel ends with the session.
    let ended = tokio::time::timeout(Duration::from_secs(3), async {
        while server.inbound.recv().await.is_some() {}
    })
    .await;
    assert!(
        ended.is_ok(),
        "inbound channel closes when the session ends"
    );
    assert!(matches!(
        server.outbound.send_frame(&[0; 320], OpusRate::Hz16000),
        Err(TransportError::Closed)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_server_is_reported_on_the_client_within_seconds() {
    let (server, client, _) = connect_pair().await;
    let t0 = Instant::now();
    server.close().await;
    let reason = client
        .control
        .wait_ended(Duration::from_secs(10))
        .await
        .expect("client notices the server left");
    eprintln!("client saw {reason:?} after {:?}", t0.elapsed());
    assert!(
        t0.elapsed() < Duration::from_secs(8),
        "took {:?}",
        t0.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_connects_ends_the_session_with_a_failure_in_seconds() {
    let config = WebRtcConfig {
        connect_timeout: Duration::from_secs(3),
        ..WebRtcConfig::loopback()
    };
    // The client offers but never applies the answer, so it never answers connectivity checks.
    let (pending, offer) = WebRtcClient::offer(&config).await.expect("client offer");
    let t0 = Instant::now();
    let (server, _answer) = accept_offer(&config, &offer).await.expect("server answer");
    let reason = server
        .control
        .wait_ended(Duration::from_secs(10))
        .await
        .expect("the session ends");
    eprintln!(
        "never-connected session ended with {reason:?} after {:?}",
        t0.elapsed()
    );
    assert!(reason.is_failure(), "{reason:?}");
    assert!(t0.elapsed() < Duration::from_secs(8));
    pending.abandon().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_candidates_are_applied_and_garbage_candidates_refused() {
    let config = WebRtcConfig::loopback();
    let (pending, offer) = WebRtcClient::offer(&config).await.expect("client offer");
    let (mut server, _answer) = accept_offer(&config, &offer).await.expect("server answer");

    let local = tokio::time::timeout(Duration::from_secs(2), server.local_candidates.recv())
        .await
        .expect("a local candidate is trickled")
        .expect("channel open");
    assert!(local.candidate.starts_with("candidate:"), "{local:?}");
    let json = serde_json::to_value(&local).expect("serializes");
    assert!(
        json.get("sdpMLineIndex").is_some(),
        "browser JSON shape: {json}"
    );

    // End-of-candidates is accepted.
    server
        .control
        .add_remote_candidate(IceCandidate::default())
        .await
        .expect("end of candidates");
    // A real candidate line (the client's own, from its offer) is accepted.
    let line = offer
        .sdp
        .lines()
        .find_map(|l| l.strip_prefix("a=candidate:"))
        .expect("offer has a candidate");
    server
        .control
        .add_remote_candidate(IceCandidate {
            candidate: format!("candidate:{line}"),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
            username_fragment: None,
        })
        .await
        .expect("valid candidate");
    let err = server
        .control
        .add_remote_candidate(IceCandidate {
            candidate: "candidate:this is not a candidate".into(),
            ..IceCandidate::default()
        })
        .await
        .expect_err("garbage candidate");
    assert_eq!(err.category(), ErrorCategory::InvalidInput, "{err:?}");

    server.close().await;
    pending.abandon().await;
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

#[test]
fn a_peer_that_vanishes_without_closing_is_reported_within_seconds() {
    // The client lives on its own runtime; shutting that runtime down kills its peer
    // connection mid-call without a DTLS close_notify, like a browser tab that crashed or a
    // network that went away. Only ICE consent freshness can notice.
    let server_rt = runtime();
    let client_rt = runtime();
    let server_config = WebRtcConfig {
        ice_disconnected_timeout: Duration::from_secs(1),
        ice_failed_timeout: Duration::from_secs(2),
        ice_keepalive_interval: Duration::from_millis(300),
        ..WebRtcConfig::loopback()
    };
    let (pending, offer) = client_rt
        .block_on(WebRtcClient::offer(&WebRtcConfig::loopback()))
        .expect("client offer");
    let (server, answer) = server_rt
        .block_on(accept_offer(&server_config, &offer))
        .expect("server answer");
    let client = client_rt
        .block_on(pending.accept_answer(&answer))
        .expect("client applies answer");
    client_rt
        .block_on(client.control.wait_connected(CONNECT))
        .expect("client connects");
    server_rt
        .block_on(server.control.wait_connected(CONNECT))
        .expect("server connects");

    let mut states = server.control.subscribe();
    let t0 = Instant::now();
    client_rt.shutdown_background();
    let (saw_disconnected, reason) = server_rt.block_on(async {
        let mut saw_disconnected = false;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let state = *states.borrow_and_update();
            match state {
                ConnectionState::Disconnected => saw_disconnected = true,
                ConnectionState::Ended(reason) => return (saw_disconnected, Some(reason)),
                _ => {}
            }
            if tokio::time::timeout_at(deadline, states.changed())
                .await
                .is_err()
            {
                return (saw_disconnected, None);
            }
        }
    });
    let took = t0.elapsed();
    eprintln!(
        "vanished peer: disconnected seen {saw_disconnected}, ended {reason:?} after {took:?}"
    );
    assert_eq!(reason, Some(EndReason::IceFailed));
    assert!(
        saw_disconnected,
        "Disconnected is reported before the failure"
    );
    assert!(took < Duration::from_secs(7), "took {took:?}");
    drop(client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_encoded_opus_replayed_by_the_client_arrives_like_live_audio() {
    let (mut server, mut client, _) = connect_pair().await;
    let mut tone = ToneGenerator::new(OpusRate::Hz48000, 1000.0, 0.3);
    let pcm: Vec<Vec<i16>> = (0..30).map(|_| tone.next_frame()).collect();
    let packets =
        engine::transport::client::encode_opus_frames(&pcm, tone.rate()).expect("pre-encode");
    let send = async {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for p in &packets {
            tick.tick().await;
            assert!(client.outbound.send_opus(p).expect("send opus"));
        }
        // Not a 20 ms Opus packet: refused, nothing sent.
        assert!(client.outbound.send_opus(&bytes::Bytes::new()).is_err());
    };
    let recv = collect_audio(&mut server.inbound, MAX_WAIT, IDLE_GAP, VOICED_FLOOR);
    let ((), got) = tokio::join!(send, recv);
    assert_tone_arrived("replayed client → server", got, packets.len());
    assert_eq!(server.stats().snapshot().ts_irregular, 0);
    client.close().await;
    server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_with_another_opus_payload_type_is_answered_and_sent_in_kind() {
    // Firefox offers Opus as payload type 109, not 111.
    let config = WebRtcConfig::loopback();
    let (pending, offer) = WebRtcClient::offer(&config).await.expect("client offer");
    let firefox_like = SessionDescription {
        sdp_type: SdpType::Offer,
        sdp: offer
            .sdp
            .replace("SAVPF 111", "SAVPF 109")
            .replace("rtpmap:111 ", "rtpmap:109 ")
            .replace("fmtp:111 ", "fmtp:109 ")
            .replace("rtcp-fb:111 ", "rtcp-fb:109 "),
    };
    let (server, answer) = accept_offer(&config, &firefox_like)
        .await
        .expect("server answer");
    assert!(
        answer.sdp.contains("a=rtpmap:109 opus/48000/2"),
        "{}",
        answer.sdp
    );
    assert!(
        answer
            .sdp
            .lines()
            .any(|l| l.starts_with("a=fmtp:109 ") && l.contains("maxplaybackrate=16000")),
        "{}",
        answer.sdp
    );
    assert_eq!(server.outbound.payload_type(), 109);
    server.close().await;
    pending.abandon().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_plugs_into_the_engine_transport_link() {
    let (server, mut client, _) = connect_pair().await;
    let (mut link, control) = server.into_link();
    let sent = 25;
    let mut to_client = ToneGenerator::new(OpusRate::Hz16000, 400.0, 0.3);
    let send_both = async {
        let mut to_server = ToneGenerator::new(OpusRate::Hz48000, 1000.0, 0.3);
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for _ in 0..sent {
            tick.tick().await;
            client
                .outbound
                .send_frame(&to_server.next_frame(), to_server.rate())
                .expect("client send");
            assert!(
                link.outbound
                    .send_frame(&to_client.next_frame(), to_client.rate())
            );
        }
    };
    let at_engine = async {
        let mut frames = Vec::new();
        loop {
            let wait = if frames.is_empty() {
                MAX_WAIT
            } else {
                IDLE_GAP
            };
            match tokio::time::timeout(wait, link.inbound.recv()).await {
                Ok(Some(f)) => frames.push(f),
                _ => break frames,
            }
        }
    };
    let at_client = collect_audio(&mut client.inbound, MAX_WAIT, IDLE_GAP, VOICED_FLOOR);
    let ((), at_engine, at_client) = tokio::join!(send_both, at_engine, at_client);
    assert!(
        at_engine.len() >= sent * 9 / 10 && at_engine.len() <= sent + 2,
        "{} frames reached the engine for {sent} sent",
        at_engine.len()
    );
    let mid = &at_engine[at_engine.len() / 2];
    assert_eq!(mid.pcm.len(), engine::media::INBOUND_FRAME_SAMPLES);
    assert!(engine::transport::rms(&mid.pcm) > 0.1);
    assert_tone_arrived("engine sink → client", at_client, sent);

    client.close().await;
    let reason = tokio::time::timeout(Duration::from_secs(5), &mut link.closed)
        .await
        .expect("closed resolves in time")
        .expect("closed carries a reason");
    assert_eq!(reason, EndReason::ClosedByPeer.to_string());
    assert!(!link.outbound.send_frame(&[0; 320], OpusRate::Hz16000));
    assert!(control.state().is_terminal());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_between_utterances_keeps_rtp_time_real_and_arrives_as_silence() {
    let (mut server, mut client, _) = connect_pair().await;
    let mut tone = ToneGenerator::new(OpusRate::Hz16000, 400.0, 0.3);
    let send = async {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for _ in 0..10 {
            tick.tick().await;
            server
                .outbound
                .send_frame(&tone.next_frame(), tone.rate())
                .expect("send");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        // A new utterance: the timestamp skips the ~500 ms pause, sequence numbers do not.
        server.outbound.mark_talkspurt();
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for _ in 0..10 {
            tick.tick().await;
            server
                .outbound
                .send_frame(&tone.next_frame(), tone.rate())
                .expect("send");
        }
    };
    let recv = collect_frames(&mut client.inbound, MAX_WAIT, Duration::from_millis(1500));
    let ((), frames) = tokio::join!(send, recv);
    let st = client.stats().snapshot();
    eprintln!("pause: {} frames, {st:?}", frames.len());
    assert_eq!(st.packets_in, 20);
    assert_eq!((st.packets_lost, st.frames_concealed), (0, 0));
    assert_eq!(
        st.ts_irregular, 1,
        "exactly one timestamp jump, at the pause"
    );
    // ≈ 24 silence frames for 500 ms (generous: the sleep may overshoot on a busy box).
    assert!(
        (20..=40).contains(&st.frames_silence),
        "{} silence frames for a 500 ms pause",
        st.frames_silence
    );
    let silence = frames
        .iter()
        .filter(|f| f.origin == engine::transport::FrameOrigin::Silence)
        .count() as u64;
    assert_eq!(silence, st.frames_silence);
    assert!(
        frames[10..10 + silence as usize]
            .iter()
            .all(|f| f.rms() == 0.0)
    );
    client.close().await;
    server.close().await;
}

/// The log lines of this test binary (every test's), for asserting what the WebRTC stack said.
fn captured_logs() -> &'static std::sync::Mutex<Vec<u8>> {
    use std::sync::{Mutex, OnceLock};
    static LOGS: OnceLock<&'static Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs: &'static Mutex<Vec<u8>> = Box::leak(Box::new(Mutex::new(Vec::new())));
        struct Sink(&'static Mutex<Vec<u8>>);
        impl std::io::Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        // Warnings from everything, and all the SCTP stack says (its `log` records included):
        // it says nothing unless an association is attempted.
        let filter = tracing_subscriber::EnvFilter::new("warn,rtc_sctp=debug");
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(move || Sink(logs))
            .try_init();
        logs
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offered_data_channel_is_rejected_cleanly_and_audio_still_flows() {
    let logs = captured_logs();
    let config = WebRtcConfig::loopback();
    let (pending, offer) = WebRtcClient::offer_with_data_channel(&config, "events")
        .await
        .expect("client offer");
    assert!(
        offer.sdp.contains("m=application") && offer.sdp.contains("webrtc-datachannel"),
        "the offer carries a data channel:\n{}",
        offer.sdp
    );
    let (mut server, answer) = accept_offer(&config, &offer).await.expect("server answer");
    // The same m-lines in the same order; the data section rejected (port 0, its mid, not
    // bundled).
    let m_lines: Vec<&str> = answer.sdp.lines().filter(|l| l.starts_with("m=")).collect();
    let offered: Vec<&str> = offer
        .sdp
        .lines()
        .filter(|l| l.starts_with("m="))
        .map(|l| l.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(offered, vec!["m=audio", "m=application"], "{}", offer.sdp);
    assert_eq!(m_lines.len(), 2, "{}", answer.sdp);
    assert!(
        m_lines[0].starts_with("m=audio ") && !m_lines[0].starts_with("m=audio 0 "),
        "{}",
        answer.sdp
    );
    assert!(
        m_lines[1].starts_with("m=application 0 "),
        "rejected: {}",
        answer.sdp
    );
    let data_mid = offer
        .sdp
        .split("m=application")
        .nth(1)
        .and_then(|s| s.lines().find_map(|l| l.trim().strip_prefix("a=mid:")))
        .expect("the data section has a mid")
        .trim()
        .to_owned();
    assert!(
        answer.sdp.contains(&format!("a=mid:{data_mid}")),
        "{}",
        answer.sdp
    );
    let bundle = answer
        .sdp
        .lines()
        .find_map(|l| l.strip_prefix("a=group:BUNDLE"))
        .unwrap_or("");
    assert!(
        !bundle.split_whitespace().any(|m| m == data_mid),
        "the rejected section is not bundled: {bundle}"
    );
    assert!(!answer.sdp.contains("a=sctp-port"), "{}", answer.sdp);

    let mut client = pending
        .accept_answer(&answer)
        .await
        .expect("client applies answer");
    client
        .control
        .wait_connected(CONNECT)
        .await
        .expect("client connects");
    server
        .control
        .wait_connected(CONNECT)
        .await
        .expect("server connects");
    let sent = 50;
    let sender = async { send_tone(&mut client, 1000.0, sent).await };
    let receiver = collect_audio(&mut server.inbound, MAX_WAIT, IDLE_GAP, VOICED_FLOOR);
    let ((), got) = tokio::join!(sender, receiver);
    assert_tone_arrived("client → server, beside a rejected data channel", got, sent);

    client.close().await;
    let reason = server
        .control
        .wait_ended(Duration::from_secs(10))
        .await
        .expect("server notices the client left");
    assert!(
        matches!(reason, EndReason::ClosedByPeer | EndReason::IceFailed),
        "{reason:?}"
    );
    server.close().await;
    let logs =
        String::from_utf8_lossy(&logs.lock().unwrap_or_else(|p| p.into_inner())).into_owned();
    let sctp: Vec<&str> = logs
        .lines()
        .filter(|l| {
            let lower = l.to_ascii_lowercase();
            lower.contains("rtc_sctp")
                || lower.contains("server_config")
                || ((l.contains(" WARN ") || l.contains(" ERROR "))
                    && (lower.contains("sctp")
                        || lower.contains("data channel")
                        || lower.contains("datachannel")))
        })
        .collect();
    assert!(sctp.is_empty(), "no SCTP ran, so none failed: {sctp:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_asks_for_packets_gets_the_servers_audio_undecoded() {
    let config = WebRtcConfig::loopback();
    let (mut pending, offer) = WebRtcClient::offer(&config).await.expect("client offer");
    let mut packets = pending.receive_packets();
    let (mut server, answer) = accept_offer(&config, &offer).await.expect("server answer");
    let mut client = pending
        .accept_answer(&answer)
        .await
        .expect("client applies");
    client
        .control
        .wait_connected(CONNECT)
        .await
        .expect("client");
    server
        .control
        .wait_connected(CONNECT)
        .await
        .expect("server");
    // 25 frames of tone, then 10 of digital silence: 35 packets either way.
    let mut tone = ToneGenerator::new(OpusRate::Hz24000, 440.0, 0.3);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for i in 0..35 {
        tick.tick().await;
        let frame = if i < 25 {
            tone.next_frame()
        } else {
            vec![0; tone.rate().frame_samples()]
        };
        server
            .outbound
            .send_frame(&frame, tone.rate())
            .expect("send");
    }
    let mut got = Vec::new();
    while got.len() < 35 {
        match tokio::time::timeout(MAX_WAIT, packets.recv()).await {
            Ok(Some(packet)) => got.push(packet),
            _ => break,
        }
    }
    assert!(got.len() >= 30, "{} of 35 packets", got.len());
    for pair in got.windows(2) {
        let seq = pair[1]
            .sequence_number
            .wrapping_sub(pair[0].sequence_number);
        let ts = pair[1].timestamp.wrapping_sub(pair[0].timestamp);
        assert!(
            seq >= 1 && ts == u32::from(seq) * 960,
            "in order, 20 ms apart"
        );
        assert!(pair[1].received_at >= pair[0].received_at);
    }
    assert!(got.iter().all(|p| !p.payload.is_empty()), "Opus payloads");
    // The decoded channel is not fed in this mode.
    assert!(
        tokio::time::timeout(Duration::from_secs(2), client.inbound.recv())
            .await
            .expect("the frame channel ends at once")
            .is_none()
    );
    client.close().await;
    server.close().await;
}
