//! Protects the live-instance counters against panics: each child of an interview panics in
//! turn (and is restarted), then the interview itself panics; afterwards no actor of any
//! interview is counted live and the registry is empty. One test in its own binary, because
//! the counters are process-wide.

mod support;

use std::time::Duration;

use engine::actors::interview::{Child, InterviewEvent, Phase};
use support::{Candidate, Harness};
use tokio::sync::broadcast;

#[actix::test]
async fn panics_anywhere_in_an_interview_leave_no_live_actor_counted() {
    let harness = Harness::start(&[], &["Hi! Tell me about a project."]).await;
    let (id, mut run) = harness.start_interview(Candidate::answers(0)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout_at(deadline, run.events.recv()).await {
            Ok(Ok(InterviewEvent::State {
                phase: Phase::Listening,
            })) => break,
            Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            other => panic!("no listening phase: {other:?}"),
        }
    }
    for child in Child::ALL {
        assert!(harness.engine.inject_panic(id, Some(child)));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(harness.engine.is_live(id), "{child:?} was restarted");
    }
    let counts = engine::actors::live_counts();
    assert!(
        counts.iter().all(|(_, n)| *n == 1),
        "one of each after the restarts: {counts:?}"
    );
    assert!(harness.engine.inject_panic(id, None));
    assert_eq!(
        run.wait_for_end(Duration::from_secs(30)).await,
        "internal_error"
    );
    harness.assert_no_live_actors().await;
}
