//! Protects the interviewer's time to first audio: each finished sentence of a reply is flushed
//! to the speech synthesizer, so the first sentence is spoken while the model still writes the
//! rest, instead of waiting for ElevenLabs' 120-character buffer or the end of the reply.

mod support;

use std::time::Duration;

use support::{Candidate, Harness};

#[actix::test]
async fn each_finished_sentence_is_flushed_to_the_synthesizer() {
    let harness = Harness::start(
        &[],
        &["Hi there. Welcome to the practice interview, where we will talk about your recent work. First question: what are you proud of? [END]"],
    )
    .await;
    let (_, mut run) = harness.start_interview(Candidate::answers(0)).await;
    let reason = run.wait_for_end(Duration::from_secs(60)).await;
    assert_eq!(reason, "completed");
    let counters = harness.fakes.elevenlabs.counters();
    // Three sentences: each is flushed when it is complete (the last one also by the end of
    // the stream).
    assert!(
        counters.flushes >= 3,
        "sentences flushed: {} ({counters:?})",
        counters.flushes
    );
}
