//! The scorer seam: the local rule-based scorer and (later) a language-model scorer implement
//! [`AnswerScorer`] and produce the same [`AnswerScore`]. Whatever a scorer proposes goes through
//! [`accept_findings`], so evidence is always the candidate's own words.

use serde::Deserialize;

use super::evidence::{AnchorError, anchor_quote};
use super::rules::{self, Rule};
use super::segments::Segment;
use super::{AnswerKind, AnswerScore, Confidence, FeedbackConfig, Finding};

/// Why an answer could not be scored.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    /// A vendor failure (retry per the vendor rules, or fall back to the local scorer).
    #[error("scorer vendor: {0}")]
    Vendor(String),
    /// The scorer's output did not validate.
    #[error("invalid scorer output: {0}")]
    Invalid(String),
    #[error("scoring task failed: {0}")]
    Task(String),
}

/// Scores one answer.
#[async_trait::async_trait]
pub trait AnswerScorer: Send + Sync {
    /// Stored with the scores (`local_rules`, `claude`).
    fn name(&self) -> &'static str;
    async fn score(&self, kind: AnswerKind, segment: &Segment) -> Result<AnswerScore, ScoreError>;
}

/// The rule-based scorer; CPU only, run on the blocking pool.
#[derive(Debug, Clone, Default)]
pub struct LocalScorer {
    pub config: FeedbackConfig,
}

#[async_trait::async_trait]
impl AnswerScorer for LocalScorer {
    fn name(&self) -> &'static str {
        rules::LOCAL_RULES
    }

    async fn score(&self, kind: AnswerKind, segment: &Segment) -> Result<AnswerScore, ScoreError> {
        let config = self.config.clone();
        let segment = segment.clone();
        tokio::task::spawn_blocking(move || rules::score_segment(&config, kind, &segment))
            .await
            .map_err(|error| ScoreError::Task(error.to_string()))
    }
}

/// A primary scorer (the language model) with the local scorer behind it: a vendor fault or an
/// invalid reply for an answer falls back to the local rules for that answer, so an interview
/// is never left unscored by a vendor outage.
pub struct FallbackScorer {
    pub primary: std::sync::Arc<dyn AnswerScorer>,
    pub fallback: LocalScorer,
}

#[async_trait::async_trait]
impl AnswerScorer for FallbackScorer {
    /// The chain; each answer's score names the one that produced it.
    fn name(&self) -> &'static str {
        "claude+local_rules"
    }

    async fn score(&self, kind: AnswerKind, segment: &Segment) -> Result<AnswerScore, ScoreError> {
        match self.primary.score(kind, segment).await {
            Ok(score) => Ok(score),
            Err(error @ (ScoreError::Vendor(_) | ScoreError::Invalid(_))) => {
                tracing::warn!(error = %error, "scorer failed; the local rules score this answer");
                self.fallback.score(kind, segment).await
            }
            Err(error) => Err(error),
        }
    }
}

/// A finding as a scorer proposes it (for instance a model's JSON): the quote is only a claim.
#[derive(Debug, Clone, Deserialize)]
pub struct ProposedFinding {
    pub rule: String,
    pub confidence: Option<String>,
    pub quote: String,
    pub fix: Option<String>,
}

/// What became of the proposed findings.
#[derive(Debug, Default)]
pub struct Accepted {
    pub findings: Vec<Finding>,
    /// Proposals dropped: unknown rule, a rule that does not apply to the kind, or a quote the
    /// candidate never said.
    pub rejected: Vec<(String, String)>,
}

/// Keeps the proposals whose rule exists and applies, and whose quote anchors to the answer's
/// words; evidence comes from the transcript, impact from the rubric.
pub fn accept_findings(
    config: &FeedbackConfig,
    kind: AnswerKind,
    segment: &Segment,
    proposed: Vec<ProposedFinding>,
) -> Accepted {
    let mut accepted = Accepted::default();
    for proposal in proposed {
        let Some(rule) = Rule::from_id(&proposal.rule).filter(|r| r.applies(kind)) else {
            accepted
                .rejected
                .push((proposal.rule, "unknown or inapplicable rule".into()));
            continue;
        };
        if accepted.findings.iter().any(|f| f.rule == rule) {
            continue;
        }
        let evidence = match anchor_quote(&segment.words, &proposal.quote) {
            Ok(evidence) => evidence,
            Err(error @ (AnchorError::NotSaid | AnchorError::Empty | AnchorError::TooLong(_))) => {
                accepted.rejected.push((proposal.rule, error.to_string()));
                continue;
            }
        };
        let confidence = match proposal.confidence.as_deref() {
            Some("strong") => Confidence::Strong,
            _ => Confidence::Weak,
        };
        accepted.findings.push(Finding {
            rule,
            confidence,
            evidence,
            fix: proposal
                .fix
                .filter(|f| !f.trim().is_empty())
                .map(|f| f.chars().take(300).collect())
                .unwrap_or_else(|| rule.fix().to_owned()),
            impact: rules::impact(config, rule, confidence),
        });
    }
    accepted
}

#[cfg(test)]
mod tests {
    use super::super::Word;
    use super::*;

    fn segment(answer: &str) -> Segment {
        let words: Vec<Word> = answer
            .split_whitespace()
            .enumerate()
            .map(|(i, w)| Word {
                text: w.into(),
                start_ms: 1_000 + i as i64 * 300,
                end_ms: 1_200 + i as i64 * 300,
            })
            .collect();
        let spans = vec![(words[0].start_ms, words.last().unwrap().end_ms)];
        Segment {
            index: 1,
            question: "Why?".into(),
            words,
            turn_ids: Vec::new(),
            timed: true,
            spans,
        }
    }

    #[test]
    fn proposed_findings_keep_only_quotes_the_candidate_said() {
        let config = FeedbackConfig::default();
        let s = segment("We mostly just made the page faster and it went well for everyone");
        let proposed = vec![
            ProposedFinding {
                rule: "result_not_specific".into(),
                confidence: Some("strong".into()),
                quote: "It went well".into(),
                fix: None,
            },
            ProposedFinding {
                rule: "missing_metrics".into(),
                confidence: None,
                quote: "we cut page load by forty percent".into(),
                fix: Some("Give the number.".into()),
            },
            ProposedFinding {
                rule: "weak_anchor".into(),
                confidence: None,
                quote: "made the page faster".into(),
                fix: None,
            },
            ProposedFinding {
                rule: "made_up_rule".into(),
                confidence: None,
                quote: "page".into(),
                fix: None,
            },
        ];
        let accepted = accept_findings(&config, AnswerKind::Behavioral, &s, proposed);
        assert_eq!(accepted.findings.len(), 1);
        let kept = &accepted.findings[0];
        assert_eq!(kept.rule, Rule::ResultNotSpecific);
        assert_eq!(kept.evidence.quote, "it went well");
        assert_eq!(kept.evidence.start_ms, 1_000 + 8 * 300);
        assert_eq!(kept.impact, 15);
        let rejected: Vec<&str> = accepted.rejected.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(
            rejected,
            vec!["missing_metrics", "weak_anchor", "made_up_rule"]
        );
    }

    struct Down;

    #[async_trait::async_trait]
    impl AnswerScorer for Down {
        fn name(&self) -> &'static str {
            "down"
        }
        async fn score(&self, _: AnswerKind, _: &Segment) -> Result<AnswerScore, ScoreError> {
            Err(ScoreError::Vendor("Overloaded".into()))
        }
    }

    #[tokio::test]
    async fn a_vendor_fault_falls_back_to_the_local_rules() {
        let scorer = FallbackScorer {
            primary: std::sync::Arc::new(Down),
            fallback: LocalScorer::default(),
        };
        let s = segment("We mostly just made the page faster and it went well for everyone there");
        let score = scorer
            .score(AnswerKind::Behavioral, &s)
            .await
            .expect("fell back");
        assert!(
            score
                .findings
                .iter()
                .any(|f| f.rule == Rule::ResultNotSpecific)
        );
        assert_eq!(
            score.scorer, "local_rules",
            "the answer names who scored it"
        );
    }

    #[tokio::test]
    async fn the_local_scorer_runs_behind_the_trait() {
        let scorer = LocalScorer::default();
        let s = segment("We mostly just made the page faster and it went well for everyone there");
        let score = scorer.score(AnswerKind::Behavioral, &s).await.unwrap();
        assert_eq!(scorer.name(), "local_rules");
        assert!(
            score
                .findings
                .iter()
                .any(|f| f.rule == Rule::ResultNotSpecific)
        );
    }
}
