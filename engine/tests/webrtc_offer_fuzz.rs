// Protects the server's outside-input paths end to end: mutated browser-like offers through
// `accept_offer` (our check, then the WebRTC stack's own SDP parsing and negotiation) and
// arbitrary trickled candidates never panic, and every refusal is a client error.

use engine::transport::{
    ErrorCategory, IceCandidate, SdpType, SessionDescription, WebRtcClient, WebRtcConfig,
    accept_offer,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// A real offer from our own client (same shape as a browser's: BUNDLE, ICE, DTLS, Opus 111).
fn real_offer(rt: &tokio::runtime::Runtime) -> String {
    rt.block_on(async {
        let (pending, offer) = WebRtcClient::offer(&WebRtcConfig::loopback())
            .await
            .expect("client offer");
        pending.abandon().await;
        offer.sdp
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

#[test]
fn mutated_offers_through_accept_offer_never_panic() {
    let rt = runtime();
    let base = real_offer(&rt);
    let config = WebRtcConfig::loopback();
    let mut runner = TestRunner::new(Config {
        cases: 32,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (0..base.len(), 0usize..12, "[ -~]{0,12}");
    let accepted = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&strategy, |(start, len, junk)| {
            let mut bytes = base.as_bytes().to_vec();
            let end = (start + len).min(bytes.len());
            bytes.splice(start..end, junk.bytes());
            let sdp = String::from_utf8_lossy(&bytes).into_owned();
            let offer = SessionDescription {
                sdp_type: SdpType::Offer,
                sdp,
            };
            let result = rt.block_on(async {
                match accept_offer(&config, &offer).await {
                    Ok((session, _answer)) => {
                        session.close().await;
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            });
            match result {
                Ok(()) => {
                    accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Err(e) => prop_assert_eq!(e.category(), ErrorCategory::InvalidInput, "{}", e),
            }
            Ok(())
        })
        .expect("no mutated offer panics or yields a server error");
    eprintln!(
        "{} of 32 mutated offers were still acceptable",
        accepted.into_inner()
    );
}

#[test]
fn arbitrary_trickled_candidates_never_panic() {
    let rt = runtime();
    let config = WebRtcConfig::loopback();
    let (session, pending) = rt.block_on(async {
        let (pending, offer) = WebRtcClient::offer(&config).await.expect("client offer");
        let (session, _) = accept_offer(&config, &offer).await.expect("answer");
        (session, pending)
    });
    let mut runner = TestRunner::new(Config {
        cases: 48,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = prop_oneof![
        ".{0,120}".prop_map(|s| format!("candidate:{s}")),
        "[0-9]{1,10} [0-9] (udp|tcp|UDP) [0-9]{1,10} [0-9a-f.:]{1,40} [0-9]{1,6} typ (host|srflx|prflx|relay|x)( raddr [0-9.]{1,15} rport [0-9]{1,5})?"
            .prop_map(|s| format!("candidate:{s}")),
        ".{0,200}",
    ];
    runner
        .run(&strategy, |candidate| {
            let result = rt.block_on(session.control.add_remote_candidate(IceCandidate {
                candidate,
                sdp_mid: Some("0".into()),
                sdp_m_line_index: Some(0),
                username_fragment: None,
            }));
            if let Err(e) = result {
                prop_assert_eq!(e.category(), ErrorCategory::InvalidInput, "{}", e);
            }
            Ok(())
        })
        .expect("no candidate panics or yields a server error");
    rt.block_on(async {
        session.close().await;
        pending.abandon().await;
    });
}
