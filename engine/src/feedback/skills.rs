//! The 24 microskills, the rule → skill map, level updates, trends and spaced repetition
//! (FEEDBACK.md §3–4). Levels are a pure replay of an account's signals in time order, so
//! re-scoring an interview (which replaces its signals) gives the same levels as scoring it once.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::rules::Rule;
use super::{AnswerKind, AnswerScore, FeedbackConfig};

/// Every microskill with its area.
pub const MICROSKILLS: [(&str, &str); 24] = [
    ("capacity_estimation", "system_design"),
    ("tradeoff_analysis", "system_design"),
    ("component_design", "system_design"),
    ("api_design", "system_design"),
    ("scalability_thinking", "system_design"),
    ("failure_modes", "system_design"),
    ("star_structure", "behavioral"),
    ("quantifiable_results", "behavioral"),
    ("ownership_signal", "behavioral"),
    ("conflict_resolution", "behavioral"),
    ("leadership_stories", "behavioral"),
    ("mentoring_signal", "behavioral"),
    ("conciseness", "communication"),
    ("filler_word_control", "communication"),
    ("pacing", "communication"),
    ("confidence_under_pressure", "communication"),
    ("complexity_analysis", "technical"),
    ("edge_cases", "technical"),
    ("testing_approach", "technical"),
    ("code_review_reasoning", "technical"),
    ("anchoring", "negotiation"),
    ("value_articulation", "negotiation"),
    ("counter_strategy", "negotiation"),
    ("emotional_control", "negotiation"),
];

/// Whether `skill` is one of the 24 microskills.
pub fn is_skill(skill: &str) -> bool {
    MICROSKILLS.iter().any(|(s, _)| *s == skill)
}

/// The area of a microskill.
pub fn area_of(skill: &str) -> Option<&'static str> {
    MICROSKILLS
        .iter()
        .find(|(s, _)| *s == skill)
        .map(|(_, a)| *a)
}

/// The skill a rule's finding is a negative signal for.
pub fn skill_of(rule: Rule) -> &'static str {
    match rule {
        Rule::NoStarStructure => "star_structure",
        Rule::MissingResult | Rule::ResultNotSpecific | Rule::MissingMetrics => {
            "quantifiable_results"
        }
        Rule::NoTradeoff => "tradeoff_analysis",
        Rule::NoAssumptions => "capacity_estimation",
        Rule::ShallowFollowup | Rule::Rambling => "conciseness",
        Rule::FillerSpike => "filler_word_control",
        Rule::NoOwnership => "ownership_signal",
        Rule::NoScaleThinking => "scalability_thinking",
        Rule::NoStakeholderMgmt => "leadership_stories",
        Rule::NoMentoringSignal => "mentoring_signal",
        Rule::WeakAnchor => "anchoring",
        Rule::EarlyConcession => "counter_strategy",
    }
}

/// Skills of a kind that get a signal from the overall score when no rule touched them.
pub fn primary_skills(kind: AnswerKind) -> &'static [&'static str] {
    match kind {
        AnswerKind::Behavioral => &["star_structure", "quantifiable_results", "ownership_signal"],
        AnswerKind::SystemDesign => &[
            "tradeoff_analysis",
            "scalability_thinking",
            "capacity_estimation",
            "component_design",
            "failure_modes",
        ],
        AnswerKind::Technical => &["complexity_analysis", "edge_cases", "testing_approach"],
        AnswerKind::Negotiation => &["anchoring", "value_articulation", "counter_strategy"],
    }
}

/// One piece of evidence about a skill from one scored answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    pub skill: String,
    pub positive: bool,
    /// The answer's overall score.
    pub overall: f64,
}

/// The signals of one scored answer: a negative one per skill a finding touched, and for the
/// kind's primary skills no finding touched, positive at or above `positive_overall`.
pub fn signals(config: &FeedbackConfig, kind: AnswerKind, score: &AnswerScore) -> Vec<Signal> {
    let mut out: Vec<Signal> = Vec::new();
    for finding in &score.findings {
        let skill = skill_of(finding.rule);
        if !out.iter().any(|s| s.skill == skill) {
            out.push(Signal {
                skill: skill.to_owned(),
                positive: false,
                overall: score.overall,
            });
        }
    }
    for skill in primary_skills(kind) {
        if !out.iter().any(|s| s.skill == *skill) {
            out.push(Signal {
                skill: (*skill).to_owned(),
                positive: score.overall >= config.positive_overall,
                overall: score.overall,
            });
        }
    }
    out
}

/// The level after one signal: positive `min(100, old + clamp((overall − old) / 3, 5, 15))`,
/// negative `max(0, old − clamp((old − overall) / 3 + 5, 3, 10))`.
pub fn update_level(old: f64, positive: bool, overall: f64) -> f64 {
    let new = if positive {
        (old + ((overall - old) / 3.0).clamp(5.0, 15.0)).min(100.0)
    } else {
        (old - ((old - overall) / 3.0 + 5.0).clamp(3.0, 10.0)).max(0.0)
    };
    (new * 10.0).round() / 10.0
}

/// Where a skill is going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trend {
    Improving,
    Stable,
    Declining,
}

impl Trend {
    pub fn as_str(self) -> &'static str {
        match self {
            Trend::Improving => "improving",
            Trend::Stable => "stable",
            Trend::Declining => "declining",
        }
    }

    pub fn parse(value: &str) -> Trend {
        match value {
            "improving" => Trend::Improving,
            "declining" => Trend::Declining,
            _ => Trend::Stable,
        }
    }
}

/// The trend over the last `trend_window` updates of `levels` (the first entry is the level
/// before any update).
pub fn trend(config: &FeedbackConfig, levels: &[f64]) -> Trend {
    let Some(last) = levels.last() else {
        return Trend::Stable;
    };
    let back = levels.len().saturating_sub(1 + config.trend_window);
    let change = last - levels[back];
    if change >= config.trend_delta {
        Trend::Improving
    } else if change <= -config.trend_delta {
        Trend::Declining
    } else {
        Trend::Stable
    }
}

/// Days until a skill is due for review: below 40 one day; below 60 three if declining, else
/// four; below 80 seven if declining, else ten; otherwise fourteen (seven if declining).
pub fn review_interval_days(level: f64, trend: Trend) -> i64 {
    let declining = trend == Trend::Declining;
    if level < 40.0 {
        1
    } else if level < 60.0 {
        if declining { 3 } else { 4 }
    } else if level < 80.0 {
        if declining { 7 } else { 10 }
    } else if declining {
        7
    } else {
        14
    }
}

/// A skill's state after replaying its signals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkillState {
    pub skill: String,
    pub level: f64,
    pub best_level: f64,
    pub trend: Trend,
    pub updates: usize,
    pub updated_at: DateTime<Utc>,
    pub next_review_at: DateTime<Utc>,
}

/// Replays one skill's signals in time order: the level after each, and the final state.
/// `None` when there is no signal.
pub fn replay(
    config: &FeedbackConfig,
    skill: &str,
    history: &[(DateTime<Utc>, bool, f64)],
) -> Option<(Vec<f64>, SkillState)> {
    let (last_at, _, _) = *history.last()?;
    let mut levels = vec![config.initial_level];
    let mut after = Vec::with_capacity(history.len());
    for (_, positive, overall) in history {
        let next = update_level(
            *levels.last().unwrap_or(&config.initial_level),
            *positive,
            *overall,
        );
        levels.push(next);
        after.push(next);
    }
    let level = *after.last()?;
    let best_level = after.iter().copied().fold(f64::MIN, f64::max);
    let trend = trend(config, &levels);
    Some((
        after,
        SkillState {
            skill: skill.to_owned(),
            level,
            best_level,
            trend,
            updates: history.len(),
            updated_at: last_at,
            next_review_at: last_at + Duration::days(review_interval_days(level, trend)),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn day(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, d, 9, 0, 0).unwrap()
    }

    #[test]
    fn level_updates_follow_the_clamped_formulas() {
        // Positive: (90 − 50) / 3 = 13.3.
        assert_eq!(update_level(50.0, true, 90.0), 63.3);
        // Positive below the level still moves at least +5.
        assert_eq!(update_level(50.0, true, 40.0), 55.0);
        // Capped at +15 and at 100.
        assert_eq!(update_level(50.0, true, 100.0), 65.0);
        assert_eq!(update_level(97.0, true, 100.0), 100.0);
        // Negative: (50 − 20) / 3 + 5 = 15 → clamped to 10.
        assert_eq!(update_level(50.0, false, 20.0), 40.0);
        // Negative above the level: (50 − 80) / 3 + 5 = −5 → at least 3.
        assert_eq!(update_level(50.0, false, 80.0), 47.0);
        assert_eq!(update_level(2.0, false, 0.0), 0.0);
    }

    #[test]
    fn every_rule_maps_to_a_microskill_and_every_primary_skill_exists() {
        for rule in Rule::ALL {
            assert!(is_skill(skill_of(rule)), "{rule:?}");
        }
        for kind in [
            AnswerKind::Behavioral,
            AnswerKind::SystemDesign,
            AnswerKind::Technical,
            AnswerKind::Negotiation,
        ] {
            assert!(primary_skills(kind).iter().all(|s| is_skill(s)));
        }
        assert_eq!(area_of("pacing"), Some("communication"));
        assert!(!is_skill("juggling"));
    }

    #[test]
    fn replay_tracks_best_trend_and_next_review_in_simulated_time() {
        let config = FeedbackConfig::default();
        let history = vec![
            (day(1), true, 95.0),  // 50 → 65
            (day(2), true, 95.0),  // → 75
            (day(4), false, 30.0), // 75 − 10 → 65
            (day(6), false, 30.0), // → 55
            (day(8), false, 30.0), // → 45
        ];
        let (levels, state) = replay(&config, "star_structure", &history).unwrap();
        assert_eq!(levels, vec![65.0, 75.0, 65.0, 55.0, 45.0]);
        assert_eq!(state.level, 45.0);
        assert_eq!(state.best_level, 75.0);
        assert_eq!(state.trend, Trend::Declining, "75 → 45 over the last three");
        assert_eq!(state.next_review_at, day(8) + Duration::days(3));
        assert_eq!(state.updates, 5);

        let (_, rising) = replay(&config, "pacing", &history[..2]).unwrap();
        assert_eq!(rising.trend, Trend::Improving);
        assert_eq!(rising.next_review_at, day(2) + Duration::days(10));
        assert!(replay(&config, "pacing", &[]).is_none());
    }

    #[test]
    fn review_intervals_follow_the_level_bands() {
        assert_eq!(review_interval_days(39.9, Trend::Improving), 1);
        assert_eq!(review_interval_days(50.0, Trend::Declining), 3);
        assert_eq!(review_interval_days(50.0, Trend::Stable), 4);
        assert_eq!(review_interval_days(70.0, Trend::Declining), 7);
        assert_eq!(review_interval_days(70.0, Trend::Stable), 10);
        assert_eq!(review_interval_days(85.0, Trend::Stable), 14);
        assert_eq!(review_interval_days(85.0, Trend::Declining), 7);
    }
}
