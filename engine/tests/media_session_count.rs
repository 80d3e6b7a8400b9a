// Protects `transport::live_sessions`, the count behind `/metrics`'
// `interviewcraft_live_media_sessions`: it counts a peer connection from the moment it is built
// until the last thing holding it (our handles and tasks, and the `webrtc` crate's driver) has
// let go, so a session outliving its interview shows. Its own binary: the count is
// process-wide, and no other test may build sessions meanwhile.

use std::task::Poll;
use std::time::{Duration, Instant};

use engine::transport::client::connected_pair;
use engine::transport::{
    ConnectionState, EndReason, WebRtcClient, WebRtcConfig, accept_offer, live_sessions,
};

const CONNECT: Duration = Duration::from_secs(5);

/// Polls until the count is `want` (the crate's driver lets go asynchronously); the last value.
async fn settle_to(want: i64, within: Duration) -> i64 {
    let deadline = Instant::now() + within;
    loop {
        let now = live_sessions();
        if now == want || Instant::now() >= deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `future` at most `polls` times, then drops it (and its output, if it finished);
/// whether it finished.
async fn poll_then_drop<F: Future>(future: F, polls: usize) -> bool {
    let mut future = std::pin::pin!(future);
    let mut polled = 0;
    std::future::poll_fn(|cx| {
        if polled == polls {
            return Poll::Ready(false);
        }
        polled += 1;
        future.as_mut().poll(cx).map(|_| true)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_counted_from_its_build_until_everything_holding_it_let_go() {
    assert_eq!(live_sessions(), 0, "no session before the test");
    let config = WebRtcConfig::loopback();

    // A client's peer connection counts once built; one that never gets its answer is
    // released when dropped.
    let (pending, _offer) = WebRtcClient::offer(&config).await.expect("client offer");
    assert_eq!(
        live_sessions(),
        1,
        "the client's peer connection counts once built"
    );
    drop(pending);
    assert_eq!(
        settle_to(0, Duration::from_secs(5)).await,
        0,
        "an offer never answered is released when dropped"
    );

    // A connected pair: the server's session and the client's.
    let (server, client, _answer) = connected_pair(&config, CONNECT)
        .await
        .expect("client and server connect");
    assert_eq!(live_sessions(), 2, "one each");

    // The client hangs up; the server sees it. While anything still holds the sessions they
    // stay counted, however they ended.
    client.close().await;
    assert_eq!(
        server.control.wait_ended(CONNECT).await,
        Some(EndReason::ClosedByPeer)
    );
    assert!(matches!(
        client.control.state(),
        ConnectionState::Ended(EndReason::ClosedLocally)
    ));
    assert_eq!(live_sessions(), 2, "ended but still held");

    // Dropping our last handles releases them: the count returns to zero, within the time the
    // supervisor and the crate's driver take to wind down.
    drop(client);
    drop(server);
    assert_eq!(
        settle_to(0, Duration::from_secs(5)).await,
        0,
        "every session let go after its handles were dropped"
    );

    // So is a server session whose negotiation is cancelled part-way (its caller's future
    // dropped: an HTTP client gone while candidates gather), wherever the cut falls: after each
    // number of polls until the negotiation finishes on its own (every await it passes, the
    // peer connection's build among them), then after a few wall-clock delays. Where an await
    // yields depends on the other tasks' timing, so the poll counts are tried a few times over.
    for round in 0..5 {
        let mut polls = 1;
        loop {
            let (pending, offer) = WebRtcClient::offer(&config).await.expect("client offer");
            let finished = poll_then_drop(accept_offer(&config, &offer), polls).await;
            pending.abandon().await;
            assert_eq!(
                settle_to(0, Duration::from_secs(5)).await,
                0,
                "a negotiation cut after {polls} polls (round {round}) released its peer connection"
            );
            if finished {
                break;
            }
            polls += 1;
            assert!(polls < 1_000, "a negotiation that never finishes");
        }
    }
    for cut_after_ms in [0, 1, 2, 5, 10, 20, 50] {
        let (pending, offer) = WebRtcClient::offer(&config).await.expect("client offer");
        let cut = tokio::time::timeout(
            Duration::from_millis(cut_after_ms),
            accept_offer(&config, &offer),
        )
        .await;
        drop(cut);
        pending.abandon().await;
        assert_eq!(
            settle_to(0, Duration::from_secs(5)).await,
            0,
            "a negotiation cut after {cut_after_ms} ms released its peer connection"
        );
    }
}
