//! The Claude scorer against the fake Anthropic over a real socket: the rubric goes as the
//! system prompt, the JSON reply is validated, a finding quoting words the candidate never said
//! is rejected, and a reply that is not the rubric's JSON is an error (the job then fails the
//! attempt rather than storing made-up scores).

use std::sync::Arc;

use engine::feedback::claude::ClaudeScorer;
use engine::feedback::rules::Rule;
use engine::feedback::scorer::{AnswerScorer, ScoreError};
use engine::feedback::segments::Segment;
use engine::feedback::{AnswerKind, FeedbackConfig, Word};
use engine::vendors::anthropic::{AnthropicConfig, AnthropicLlm};
use fakes::{FakeAnthropic, Pacing};
use secrecy::SecretString;

const ANSWER: &str = "We moved the billing jobs to a queue and it went well for everyone on the \
                      team in the end";

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

async fn scorer_replying(reply: &str) -> (FakeAnthropic, ClaudeScorer) {
    let fake = FakeAnthropic::start(fakes::AnthropicConfig {
        pacing: Pacing::faster(50.0),
        replies: vec![reply.to_owned()],
        ..fakes::AnthropicConfig::default()
    })
    .await
    .expect("fake starts");
    let config = AnthropicConfig::new(
        fake.base_url(),
        SecretString::from("test-key".to_string()),
        "claude-haiku-4-5",
    );
    let llm = AnthropicLlm::new(config).expect("client");
    let scorer = ClaudeScorer {
        llm: Arc::new(llm),
        config: FeedbackConfig::default(),
        usage: None,
    };
    (fake, scorer)
}

#[tokio::test]
async fn claude_findings_keep_only_quotes_the_candidate_said() {
    let reply = r#"{"findings": [
        {"rule": "result_not_specific", "confidence": "strong", "quote": "it went well", "fix": "Say what changed, with a number."},
        {"rule": "missing_metrics", "confidence": "strong", "quote": "we cut costs by forty percent", "fix": "Give numbers."},
        {"rule": "no_ownership", "confidence": "weak", "quote": "We moved the billing jobs", "fix": "Say what you did."}
    ], "improved_answer": "I moved our billing jobs to a queue, and failed payments fell from 3% to 0.5%."}"#;
    let (fake, scorer) = scorer_replying(reply).await;
    let score = scorer
        .score(AnswerKind::Behavioral, &segment())
        .await
        .expect("scored");
    let rules: Vec<Rule> = score.findings.iter().map(|f| f.rule).collect();
    assert_eq!(
        rules,
        vec![Rule::ResultNotSpecific, Rule::NoOwnership],
        "the made-up quote is rejected"
    );
    let vague = &score.findings[0];
    assert_eq!(vague.evidence.quote, "it went well");
    assert_eq!(
        vague.evidence.start_ms,
        5_000 + 9 * 400,
        "times from the transcript"
    );
    // 15 strong + 15 weak (of 30) = 30 points at 0.6.
    assert_eq!(score.overall, 82.0);
    assert!(
        score
            .improved_answer
            .starts_with("I moved our billing jobs")
    );
    let requests = fake.requests();
    let body = &requests.last().expect("a request").body;
    let body = body.to_string();
    assert!(
        body.contains("no_star_structure") && body.contains("early_concession"),
        "rubric sent"
    );
    assert!(body.contains("went well"), "the answer sent");
}

#[tokio::test]
async fn a_reply_that_is_not_the_rubrics_json_is_refused() {
    let (_fake, scorer) = scorer_replying("Great answer, 9 out of 10!").await;
    let error = scorer
        .score(AnswerKind::Behavioral, &segment())
        .await
        .expect_err("not JSON");
    assert!(matches!(error, ScoreError::Invalid(_)), "{error}");
}
