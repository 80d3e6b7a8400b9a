//! Every threshold of scoring, delivery, skills and drills, in one place (FEEDBACK.md's numbers
//! are the defaults). The server reads it from the settings file's `[feedback]` table and the
//! environment (`FEEDBACK__MIN_ANSWER_WORDS=20`) and refuses to start on a value
//! [`FeedbackConfig::validate`] rejects.

/// Thresholds of the feedback cores. `Default` holds the documented starting points.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeedbackConfig {
    /// The Claude model the scorer uses; `None`: the interviewer's (`ANTHROPIC_MODEL`).
    pub scorer_model: Option<String>,
    /// An answer is scored only with at least this many words (15).
    pub min_answer_words: usize,
    /// `rambling` fires above this answer length in seconds (120), strongly above
    /// `rambling_strong_secs` (180).
    pub rambling_secs: f64,
    pub rambling_strong_secs: f64,
    /// Without word times, `rambling` fires above this many words (300, about 2 min of speech).
    pub rambling_words: usize,
    /// `filler_spike` fires above this many fillers per minute (3), given at least
    /// `filler_spike_min_count` fillers (3).
    pub filler_spike_per_minute: f64,
    pub filler_spike_min_count: usize,
    /// An answer to a follow-up shorter than this is `shallow_followup` (40 words).
    pub followup_min_words: usize,
    /// `no_ownership`: at least this many "we" words (3) and fewer than one "I" per
    /// `ownership_we_per_i` (3) of them.
    pub ownership_min_we: usize,
    pub ownership_we_per_i: usize,
    /// Overall score lost per point of findings' impact (0.6).
    pub overall_per_point: f64,
    /// A weak finding takes this share of its rule's weight (0.5).
    pub weak_share: f64,
    /// Hesitation: a gap between words of at least this long (1500 ms); long pause: 3000 ms.
    pub hesitation_ms: i64,
    pub long_pause_ms: i64,
    /// Delivery score: fillers above these shares of words cost 25, 12 or 4 points
    /// (0.10, 0.05, 0.02).
    pub filler_rate_high: f64,
    pub filler_rate_medium: f64,
    pub filler_rate_low: f64,
    /// Delivery score: slower than `slow_wpm` (110) costs 10 points, faster than `fast_wpm`
    /// (180) costs 8.
    pub slow_wpm: f64,
    pub fast_wpm: f64,
    /// Delivery score: more long pauses than this (3) cost 3 points each, at most 15.
    pub long_pauses_allowed: u32,
    /// Skill levels start here before their first signal (50).
    pub initial_level: f64,
    /// A primary skill no rule touched gets a positive signal at or above this overall (60),
    /// a negative one below.
    pub positive_overall: f64,
    /// Trend: change over the last `trend_window` (3) updates; ≥ +5 improving, ≤ −5 declining.
    pub trend_window: usize,
    pub trend_delta: f64,
    /// Minutes per drill question (7).
    pub minutes_per_question: u32,
}

impl Default for FeedbackConfig {
    fn default() -> Self {
        Self {
            scorer_model: None,
            min_answer_words: 15,
            rambling_secs: 120.0,
            rambling_strong_secs: 180.0,
            rambling_words: 300,
            filler_spike_per_minute: 3.0,
            filler_spike_min_count: 3,
            followup_min_words: 40,
            ownership_min_we: 3,
            ownership_we_per_i: 3,
            overall_per_point: 0.6,
            weak_share: 0.5,
            hesitation_ms: 1500,
            long_pause_ms: 3000,
            filler_rate_high: 0.10,
            filler_rate_medium: 0.05,
            filler_rate_low: 0.02,
            slow_wpm: 110.0,
            fast_wpm: 180.0,
            long_pauses_allowed: 3,
            initial_level: 50.0,
            positive_overall: 60.0,
            trend_window: 3,
            trend_delta: 5.0,
            minutes_per_question: 7,
        }
    }
}

impl FeedbackConfig {
    /// Checks every threshold; the error names the first bad one as `feedback.<field>`.
    pub fn validate(&self) -> Result<(), String> {
        let fail = |field: &str, rule: &str| Err(format!("feedback.{field} {rule}"));
        let positive = |v: f64| v.is_finite() && v > 0.0;
        let percent = |v: f64| v.is_finite() && (0.0..=100.0).contains(&v);
        if self
            .scorer_model
            .as_deref()
            .is_some_and(|m| m.trim().is_empty())
        {
            return fail("scorer_model", "must name a model when set");
        }
        for (field, value) in [
            ("min_answer_words", self.min_answer_words),
            ("rambling_words", self.rambling_words),
            ("filler_spike_min_count", self.filler_spike_min_count),
            ("followup_min_words", self.followup_min_words),
            ("ownership_min_we", self.ownership_min_we),
            ("ownership_we_per_i", self.ownership_we_per_i),
            ("trend_window", self.trend_window),
        ] {
            if value == 0 {
                return fail(field, "must be at least 1");
            }
        }
        if self.minutes_per_question == 0 {
            return fail("minutes_per_question", "must be at least 1");
        }
        for (field, value) in [
            ("rambling_secs", self.rambling_secs),
            ("filler_spike_per_minute", self.filler_spike_per_minute),
            ("overall_per_point", self.overall_per_point),
            ("trend_delta", self.trend_delta),
        ] {
            if !positive(value) {
                return fail(field, "must be a positive number");
            }
        }
        if !(self.rambling_strong_secs.is_finite()
            && self.rambling_strong_secs >= self.rambling_secs)
        {
            return fail("rambling_strong_secs", "must be at least rambling_secs");
        }
        if !(self.weak_share.is_finite() && self.weak_share > 0.0 && self.weak_share <= 1.0) {
            return fail("weak_share", "must be above 0 and at most 1");
        }
        if self.hesitation_ms <= 0 {
            return fail("hesitation_ms", "must be positive");
        }
        if self.long_pause_ms < self.hesitation_ms {
            return fail("long_pause_ms", "must be at least hesitation_ms");
        }
        if !(self.filler_rate_low.is_finite()
            && self.filler_rate_low > 0.0
            && self.filler_rate_low <= self.filler_rate_medium
            && self.filler_rate_medium <= self.filler_rate_high
            && self.filler_rate_high < 1.0)
        {
            return fail(
                "filler_rate_low",
                "must be above 0, with low ≤ medium ≤ high < 1",
            );
        }
        if !(positive(self.slow_wpm) && self.fast_wpm.is_finite() && self.fast_wpm > self.slow_wpm)
        {
            return fail("fast_wpm", "must be above slow_wpm, both positive");
        }
        for (field, value) in [
            ("initial_level", self.initial_level),
            ("positive_overall", self.positive_overall),
        ] {
            if !percent(value) {
                return fail(field, "must be between 0 and 100");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_defaults_are_valid() {
        assert_eq!(FeedbackConfig::default().validate(), Ok(()));
    }

    #[test]
    fn each_bad_threshold_is_named() {
        let bad = [
            (
                FeedbackConfig {
                    min_answer_words: 0,
                    ..FeedbackConfig::default()
                },
                "feedback.min_answer_words",
            ),
            (
                FeedbackConfig {
                    rambling_strong_secs: 60.0,
                    ..FeedbackConfig::default()
                },
                "feedback.rambling_strong_secs",
            ),
            (
                FeedbackConfig {
                    weak_share: 1.5,
                    ..FeedbackConfig::default()
                },
                "feedback.weak_share",
            ),
            (
                FeedbackConfig {
                    overall_per_point: f64::NAN,
                    ..FeedbackConfig::default()
                },
                "feedback.overall_per_point",
            ),
            (
                FeedbackConfig {
                    long_pause_ms: 1000,
                    ..FeedbackConfig::default()
                },
                "feedback.long_pause_ms",
            ),
            (
                FeedbackConfig {
                    initial_level: 120.0,
                    ..FeedbackConfig::default()
                },
                "feedback.initial_level",
            ),
            (
                FeedbackConfig {
                    filler_rate_low: 0.2,
                    ..FeedbackConfig::default()
                },
                "feedback.filler_rate_low",
            ),
            (
                FeedbackConfig {
                    fast_wpm: 100.0,
                    ..FeedbackConfig::default()
                },
                "feedback.fast_wpm",
            ),
            (
                FeedbackConfig {
                    scorer_model: Some(" ".into()),
                    ..FeedbackConfig::default()
                },
                "feedback.scorer_model",
            ),
        ];
        for (config, field) in bad {
            let error = config.validate().expect_err(field);
            assert!(error.starts_with(field), "{field}: {error}");
        }
    }
}
