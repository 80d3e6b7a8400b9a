//! Every threshold of scoring, delivery, skills and drills, in one place (FEEDBACK.md's numbers
//! are the defaults).

/// Thresholds of the feedback cores. `Default` holds the documented starting points.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackConfig {
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
            initial_level: 50.0,
            positive_overall: 60.0,
            trend_window: 3,
            trend_delta: 5.0,
            minutes_per_question: 7,
        }
    }
}
