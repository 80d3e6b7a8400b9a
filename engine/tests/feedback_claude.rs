//! The Claude scorer against the fake Anthropic over a real socket, with forced tool output:
//! the request carries the score tool, a `tool_choice` naming it and the rubric as a cached
//! system prompt; a valid tool reply is kept; a finding quoting words the candidate never said
//! is rejected; a malformed, truncated or missing tool input is refused (the job's fallback then
//! scores the answer with the local rules rather than storing made-up scores); a vendor fault is
//! retried by the client's rules.

use std::sync::Arc;

use engine::feedback::claude::{ClaudeScorer, SCORE_TOOL};
use engine::feedback::rules::Rule;
use engine::feedback::scorer::{AnswerScorer, FallbackScorer, LocalScorer, ScoreError};
use engine::feedback::segments::Segment;
use engine::feedback::{AnswerKind, FeedbackConfig, Word};
use engine::vendors::anthropic::{AnthropicConfig, AnthropicLlm};
use engine::vendors::retry::RetryPolicy;
use fakes::{FakeAnthropic, Fault, Pacing, fault_key};
use secrecy::SecretString;
use serde_json::{Value, json};

const ANSWER: &str = "We moved the billing jobs to a queue and it went well for everyone on the \
                      team in the end";

/// A tool reply with one true quote, one made up and one true weak one.
const VALID_REPLY: &str = r#"{"findings": [
    {"rule": "result_not_specific", "confidence": "strong", "quote": "it went well", "fix": "Say what changed, with a number."},
    {"rule": "missing_metrics", "confidence": "strong", "quote": "we cut costs by forty percent", "fix": "Give numbers."},
    {"rule": "no_ownership", "confidence": "weak", "quote": "We moved the billing jobs", "fix": "Say what you did."}
], "improved_answer": "I moved our billing jobs to a queue, and failed payments fell from 3% to 0.5%."}"#;

fn segment() -> Segment {
    let words: Vec<Word> = ANSWER
        .split_whitespace()
        .enumerate()
        .map(|(i, w)| Word {
            text: w.into(),
            start_ms: 5_000 + i as i64 * 400,
            end_ms: 5_300 + i as i64 * 400,
        })
        .collect();
    let spans = vec![(words[0].start_ms, words.last().unwrap().end_ms)];
    Segment {
        index: 0,
        question: "Tell me about a project.".into(),
        words,
        turn_ids: Vec::new(),
        timed: true,
        spans,
    }
}

async fn fake_replying(reply: &str) -> FakeAnthropic {
    FakeAnthropic::start(fakes::AnthropicConfig {
        pacing: Pacing::faster(50.0),
        replies: vec![reply.to_owned()],
        ..fakes::AnthropicConfig::default()
    })
    .await
    .expect("fake starts")
}

fn scorer_on(fake: &FakeAnthropic, key: &str) -> ClaudeScorer {
    let mut config = AnthropicConfig::new(
        fake.base_url(),
        SecretString::from(key.to_string()),
        "claude-haiku-4-5",
    );
    config.retry = RetryPolicy {
        initial_backoff: std::time::Duration::from_millis(10),
        max_backoff: std::time::Duration::from_millis(50),
        ..RetryPolicy::default()
    };
    let llm = AnthropicLlm::new(config).expect("client");
    ClaudeScorer {
        llm: Arc::new(llm),
        config: FeedbackConfig::default(),
        usage: None,
    }
}

async fn scorer_replying(reply: &str) -> (FakeAnthropic, ClaudeScorer) {
    let fake = fake_replying(reply).await;
    let scorer = scorer_on(&fake, "test-key");
    (fake, scorer)
}

fn last_body(fake: &FakeAnthropic) -> Value {
    fake.requests().last().expect("a request").body.clone()
}

#[tokio::test]
async fn the_request_forces_the_score_tool_and_caches_the_rubric() {
    let (fake, scorer) = scorer_replying(VALID_REPLY).await;
    scorer
        .score(AnswerKind::Behavioral, &segment())
        .await
        .expect("scored");
    let body = last_body(&fake);
    assert_eq!(body["tools"].as_array().map(Vec::len), Some(1), "{body}");
    let tool = &body["tools"][0];
    assert_eq!(tool["name"], SCORE_TOOL);
    assert_eq!(tool["input_schema"]["type"], "object");
    assert_eq!(
        tool["input_schema"]["required"],
        json!(["findings", "improved_answer"])
    );
    let rule_ids =
        &tool["input_schema"]["properties"]["findings"]["items"]["properties"]["rule"]["enum"];
    assert_eq!(rule_ids.as_array().map(Vec::len), Some(Rule::ALL.len()));
    assert_eq!(
        body["tool_choice"],
        json!({"type": "tool", "name": SCORE_TOOL})
    );
    let system = &body["system"][0];
    assert_eq!(system["cache_control"]["type"], "ephemeral", "{body}");
    let rubric = system["text"].as_str().expect("system text");
    assert!(
        rubric.contains("no_star_structure") && rubric.contains("early_concession"),
        "the rubric is the system prompt"
    );
    let user = body["messages"][0]["content"].as_str().expect("user text");
    assert!(user.contains("went well"), "the answer is the user message");
    assert!(
        !rubric.contains("billing jobs"),
        "the cached prefix holds no answer"
    );
}

#[tokio::test]
async fn a_valid_tool_reply_is_accepted_with_evidence_from_the_transcript() {
    let (_fake, scorer) = scorer_replying(VALID_REPLY).await;
    let score = scorer
        .score(AnswerKind::Behavioral, &segment())
        .await
        .expect("scored");
    let rules: Vec<Rule> = score.findings.iter().map(|f| f.rule).collect();
    assert_eq!(rules, vec![Rule::ResultNotSpecific, Rule::NoOwnership]);
    let vague = &score.findings[0];
    assert_eq!(vague.evidence.quote, "it went well");
    assert_eq!(
        vague.evidence.start_ms,
        5_000 + 9 * 400,
        "times from the transcript"
    );
    assert_eq!(vague.fix, "Say what changed, with a number.");
    // 15 strong + 15 weak (of 30) = 30 points at 0.6.
    assert_eq!(score.overall, 82.0);
    assert!(
        score
            .improved_answer
            .starts_with("I moved our billing jobs")
    );
}

#[tokio::test]
async fn a_tool_reply_quoting_words_never_said_is_rejected() {
    let reply = r#"{"findings": [
        {"rule": "missing_metrics", "confidence": "strong", "quote": "we cut costs by forty percent", "fix": "Give numbers."},
        {"rule": "no_ownership", "confidence": "strong", "quote": "I alone rewrote the billing system", "fix": "Say what you did."}
    ], "improved_answer": "I moved the billing jobs to a queue."}"#;
    let (_fake, scorer) = scorer_replying(reply).await;
    let score = scorer
        .score(AnswerKind::Behavioral, &segment())
        .await
        .expect("scored");
    assert!(
        score.findings.is_empty(),
        "no finding without the candidate's words: {:?}",
        score.findings
    );
    assert_eq!(score.overall, 100.0, "rejected findings cost nothing");
}

#[tokio::test]
async fn findings_with_unknown_rules_or_confidences_are_not_kept() {
    let reply = r#"{"findings": [
        {"rule": "talks_too_fast", "confidence": "strong", "quote": "it went well", "fix": "x"},
        {"rule": "result_not_specific", "confidence": "certain", "quote": "it went well", "fix": "x"},
        {"rule": "no_ownership", "confidence": "weak", "quote": "We moved the billing jobs", "fix": "x"}
    ], "improved_answer": ""}"#;
    let (_fake, scorer) = scorer_replying(reply).await;
    let score = scorer
        .score(AnswerKind::Behavioral, &segment())
        .await
        .expect("scored");
    let rules: Vec<Rule> = score.findings.iter().map(|f| f.rule).collect();
    assert_eq!(rules, vec![Rule::NoOwnership]);
    assert!(
        !score.improved_answer.is_empty(),
        "an empty improved answer is written by the rules"
    );
}

#[tokio::test]
async fn a_malformed_tool_input_is_refused() {
    for (reply, why) in [
        ("Great answer, 9 out of 10!", "not JSON"),
        (
            r#"{"findings": [], "improved_answer": "x", "overall": 97}"#,
            "a field outside the schema",
        ),
        (
            r#"{"findings": [{"rule": "rambling"}], "improved_answer": "x"}"#,
            "a finding without its quote",
        ),
        (
            r#"{"findings": "none", "improved_answer": "x"}"#,
            "findings not a list",
        ),
        (r#"{"findings": []"#, "cut-off JSON"),
    ] {
        let (_fake, scorer) = scorer_replying(reply).await;
        let error = scorer
            .score(AnswerKind::Behavioral, &segment())
            .await
            .expect_err(why);
        assert!(matches!(error, ScoreError::Invalid(_)), "{why}: {error}");
        assert!(
            !error.to_string().contains("went well"),
            "no candidate words in the error"
        );
    }
}

#[tokio::test]
async fn a_tool_input_cut_at_max_tokens_is_refused() {
    // A reply far longer than the scorer's 800-token cap: the fake stops mid-JSON.
    let long_fix = "word ".repeat(4000);
    let reply = format!(
        r#"{{"findings": [{{"rule": "rambling", "confidence": "weak", "quote": "it went well", "fix": "{long_fix}"}}], "improved_answer": "x"}}"#
    );
    let (_fake, scorer) = scorer_replying(&reply).await;
    let error = scorer
        .score(AnswerKind::Behavioral, &segment())
        .await
        .expect_err("truncated");
    assert!(
        matches!(&error, ScoreError::Invalid(why) if why.contains("max_tokens")),
        "{error}"
    );
}

#[tokio::test]
async fn a_refused_tool_reply_falls_back_to_the_local_rules() {
    let (_fake, claude) = scorer_replying("not a score").await;
    let local = LocalScorer {
        config: FeedbackConfig::default(),
    };
    let expected = local
        .score(AnswerKind::Behavioral, &segment())
        .await
        .expect("local scores");
    let scorer = FallbackScorer {
        primary: Arc::new(claude),
        fallback: local,
    };
    let score = scorer
        .score(AnswerKind::Behavioral, &segment())
        .await
        .expect("the local rules score it");
    assert_eq!(score, expected);
}

#[tokio::test]
async fn vendor_faults_are_retried_then_reported_as_vendor_errors() {
    let fake = fake_replying(VALID_REPLY).await;
    let once = fault_key("sk-a", &[Fault::Overloaded]);
    let score = scorer_on(&fake, &once)
        .score(AnswerKind::Behavioral, &segment())
        .await
        .expect("the retry succeeds");
    assert_eq!(score.findings.len(), 2);

    let always = fault_key(
        "sk-b",
        &[Fault::Overloaded, Fault::Overloaded, Fault::Overloaded],
    );
    let error = scorer_on(&fake, &always)
        .score(AnswerKind::Behavioral, &segment())
        .await
        .expect_err("gives up after the retries");
    assert!(matches!(error, ScoreError::Vendor(_)), "{error}");

    let mid_stream = fault_key("sk-c", &[Fault::MidStreamError { after: 2 }]);
    let error = scorer_on(&fake, &mid_stream)
        .score(AnswerKind::Behavioral, &segment())
        .await
        .expect_err("an error event in the tool input");
    assert!(matches!(error, ScoreError::Vendor(_)), "{error}");
}
