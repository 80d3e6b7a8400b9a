//! Feedback after the call: sans-IO scoring of an ended interview (docs: FEEDBACK.md).
//!
//! Everything here is a pure function over data passed in: the transcript (with word times on the
//! interview's own clock), the interview kind, thresholds ([`FeedbackConfig`]) and, for skills
//! and drills, the current date. No database, no clock, no vendor: the background job in the
//! `api` crate loads rows, calls these functions on a blocking thread and writes the result.
//!
//! - [`segments`]: the transcript cut into question/answer segments.
//! - [`evidence`]: a proposed quote anchored to the words the candidate actually said (or
//!   rejected); every finding's evidence goes through it, whoever proposed it.
//! - [`rules`]: the local rule-based scorer (15 rules, category scores, overall, improved answer).
//! - [`delivery`]: words per minute, fillers, hesitations and pauses from word timestamps.
//! - [`skills`]: the 24 microskills, the rule → skill map, level updates and spaced repetition.
//! - [`drills`]: the drill plan from skill levels and an optional target interview date.
//! - [`scorer`]: the [`scorer::AnswerScorer`] trait both the local and the Claude scorer implement.

pub mod claude;
pub mod config;
pub mod delivery;
pub mod drills;
pub mod evidence;
pub mod rules;
pub mod scorer;
pub mod segments;
pub mod skills;
pub mod text;

pub use config::FeedbackConfig;

use serde::{Deserialize, Serialize};

/// What kind of interview an answer was given in (decides which rules apply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerKind {
    Behavioral,
    SystemDesign,
    Technical,
    Negotiation,
}

impl AnswerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerKind::Behavioral => "behavioral",
            AnswerKind::SystemDesign => "system_design",
            AnswerKind::Technical => "technical",
            AnswerKind::Negotiation => "negotiation",
        }
    }
}

impl From<crate::conversation::InterviewKind> for AnswerKind {
    fn from(kind: crate::conversation::InterviewKind) -> Self {
        match kind {
            crate::conversation::InterviewKind::Behavioral => AnswerKind::Behavioral,
            crate::conversation::InterviewKind::SystemDesign => AnswerKind::SystemDesign,
            crate::conversation::InterviewKind::Technical => AnswerKind::Technical,
        }
    }
}

/// One spoken word with its time on the interview's clock (ms from the interview's start).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Word {
    pub text: String,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// The four rubric categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Structure,
    Depth,
    Communication,
    SenioritySignal,
}

impl Category {
    pub const ALL: [Category; 4] = [
        Category::Structure,
        Category::Depth,
        Category::Communication,
        Category::SenioritySignal,
    ];
}

/// How sure a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    Strong,
    Weak,
}

/// Where in the answer a finding points: a span of the candidate's own words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub start_ms: i64,
    pub end_ms: i64,
    /// Exactly the words said in the span, as transcribed (never text a scorer made up).
    pub quote: String,
}

/// A triggered rule: a finding against the answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub rule: rules::Rule,
    pub confidence: Confidence,
    pub evidence: Evidence,
    /// What to do instead, in one sentence.
    pub fix: String,
    /// Points this finding takes off its category score.
    pub impact: u32,
}

/// Per-category scores, 0–100.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CategoryScores {
    pub structure: f64,
    pub depth: f64,
    pub communication: f64,
    pub seniority_signal: f64,
}

impl CategoryScores {
    pub fn get(&self, category: Category) -> f64 {
        match category {
            Category::Structure => self.structure,
            Category::Depth => self.depth,
            Category::Communication => self.communication,
            Category::SenioritySignal => self.seniority_signal,
        }
    }
}

/// The score of one answer (one question/answer segment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnswerScore {
    pub findings: Vec<Finding>,
    pub categories: CategoryScores,
    /// 0–100.
    pub overall: f64,
    /// How much to trust the score, 0–1 (short or untimed answers are less certain).
    pub confidence: f64,
    /// A short improved version of the answer.
    pub improved_answer: String,
    /// Which scorer produced it (`local_rules`, `claude`): stored per answer, so a fallback of
    /// one answer to the local rules is visible.
    #[serde(skip)]
    pub scorer: &'static str,
}
