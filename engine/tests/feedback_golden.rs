//! The local scorer against the golden set (`engine/testdata/feedback_golden.json`): hand-written
//! answers with the rules that must fire, must not fire, and the range the overall must fall in.

use engine::feedback::rules::{Rule, score_segment};
use engine::feedback::segments::Segment;
use engine::feedback::{AnswerKind, FeedbackConfig, Word};
use serde::Deserialize;

#[derive(Deserialize)]
struct Golden {
    answers: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    id: String,
    kind: AnswerKind,
    question: String,
    #[serde(default)]
    index: usize,
    answer: String,
    #[serde(default)]
    repeat: Option<usize>,
    #[serde(default)]
    ms_per_word: Option<i64>,
    must_fire: Vec<String>,
    must_not_fire: Vec<String>,
    overall: [f64; 2],
}

fn segment(case: &Case) -> Segment {
    let pace = case.ms_per_word.unwrap_or(400);
    let text = case.answer.repeat(case.repeat.unwrap_or(1));
    let words: Vec<Word> = text
        .split_whitespace()
        .enumerate()
        .map(|(i, w)| Word {
            text: w.to_owned(),
            start_ms: 30_000 + i as i64 * pace,
            end_ms: 30_000 + i as i64 * pace + pace * 4 / 5,
        })
        .collect();
    let spans = vec![(
        words.first().expect("an answer").start_ms,
        words.last().expect("an answer").end_ms,
    )];
    Segment {
        index: case.index,
        question: case.question.clone(),
        words,
        turn_ids: Vec::new(),
        timed: true,
        spans,
    }
}

#[test]
fn local_scorer_matches_the_golden_set() {
    let golden: Golden =
        serde_json::from_str(include_str!("../testdata/feedback_golden.json")).expect("golden set");
    assert!(golden.answers.len() >= 20, "at least 20 golden answers");
    let config = FeedbackConfig::default();
    let mut failures = Vec::new();
    for case in &golden.answers {
        for rule in case.must_fire.iter().chain(&case.must_not_fire) {
            assert!(
                Rule::from_id(rule).is_some(),
                "{}: unknown rule {rule}",
                case.id
            );
        }
        let s = segment(case);
        let score = score_segment(&config, case.kind, &s);
        let fired: Vec<&str> = score.findings.iter().map(|f| f.rule.id()).collect();
        for rule in &case.must_fire {
            if !fired.contains(&rule.as_str()) {
                failures.push(format!("{}: {rule} should fire (fired {fired:?})", case.id));
            }
        }
        for rule in &case.must_not_fire {
            if fired.contains(&rule.as_str()) {
                failures.push(format!("{}: {rule} should not fire", case.id));
            }
        }
        if !(case.overall[0]..=case.overall[1]).contains(&score.overall) {
            failures.push(format!(
                "{}: overall {} outside {:?} (fired {fired:?})",
                case.id, score.overall, case.overall
            ));
        }
        let answer = s.answer_text();
        for finding in &score.findings {
            assert!(
                answer.contains(&finding.evidence.quote) && !finding.evidence.quote.is_empty(),
                "{}: evidence {:?} is the candidate's words",
                case.id,
                finding.evidence.quote
            );
            assert!(
                finding.evidence.start_ms >= s.start_ms() && finding.evidence.end_ms <= s.end_ms()
            );
        }
    }
    assert!(
        failures.is_empty(),
        "golden set failures:\n{}",
        failures.join("\n")
    );
}
