//! Delivery metrics from word timestamps (FEEDBACK.md §6): no vendor needed. Computed when the
//! interview is scored and stored with the scores, so they outlive the 14-day deletion of the
//! word timestamps.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::FeedbackConfig;
use super::segments::Segment;
use super::text::{fillers, normalize};

/// The delivery grade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grade {
    Excellent,
    Good,
    Fair,
    NeedsWork,
}

impl Grade {
    /// ≥ 90 excellent, ≥ 75 good, ≥ 60 fair, else needs work.
    pub fn of(score: f64) -> Grade {
        if score >= 90.0 {
            Grade::Excellent
        } else if score >= 75.0 {
            Grade::Good
        } else if score >= 60.0 {
            Grade::Fair
        } else {
            Grade::NeedsWork
        }
    }
}

/// How the candidate spoke over some answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryMetrics {
    pub words: usize,
    /// Time from each turn's first word to its last, summed.
    pub speaking_secs: f64,
    pub words_per_minute: f64,
    /// Count per filler ("um", "you know", ...).
    pub fillers: BTreeMap<String, u32>,
    pub filler_count: u32,
    /// Fillers as a share of all words, 0–1.
    pub filler_rate: f64,
    /// Gaps between words of at least `hesitation_ms` (1.5 s), long pauses included.
    pub hesitations: u32,
    /// Gaps of at least `long_pause_ms` (3 s).
    pub long_pauses: u32,
    /// 0–100.
    pub score: f64,
    pub grade: Grade,
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The delivery score from 100 (FEEDBACK.md §6, thresholds from `config`): filler rate over
/// 10 % −25, over 5 % −12, over 2 % −4; under 110 words per minute −10, over 180 −8; more than
/// 3 long pauses −3 for each long pause, at most −15.
pub fn delivery_score(
    config: &FeedbackConfig,
    filler_rate: f64,
    words_per_minute: f64,
    long_pauses: u32,
) -> f64 {
    let mut score = 100.0;
    score -= if filler_rate > config.filler_rate_high {
        25.0
    } else if filler_rate > config.filler_rate_medium {
        12.0
    } else if filler_rate > config.filler_rate_low {
        4.0
    } else {
        0.0
    };
    if words_per_minute < config.slow_wpm {
        score -= 10.0;
    } else if words_per_minute > config.fast_wpm {
        score -= 8.0;
    }
    if long_pauses > config.long_pauses_allowed {
        score -= (3.0 * f64::from(long_pauses)).min(15.0);
    }
    score
}

/// Delivery over the timed segments given; `None` when none has its own word times (times
/// spread over a turn would invent a perfectly even pace).
pub fn delivery(config: &FeedbackConfig, segments: &[&Segment]) -> Option<DeliveryMetrics> {
    let timed: Vec<&&Segment> = segments
        .iter()
        .filter(|s| s.timed && !s.words.is_empty())
        .collect();
    if timed.is_empty() {
        return None;
    }
    let mut words = 0usize;
    let mut speaking_ms = 0i64;
    let mut by_filler: BTreeMap<String, u32> = BTreeMap::new();
    let mut filler_count = 0u32;
    let mut hesitations = 0u32;
    let mut long_pauses = 0u32;
    for segment in timed {
        words += segment.words.len();
        speaking_ms += segment
            .spans
            .iter()
            .map(|(s, e)| (e - s).max(0))
            .sum::<i64>();
        let tokens: Vec<String> = segment.words.iter().map(|w| normalize(&w.text)).collect();
        for (_, _, filler) in fillers(&tokens) {
            *by_filler.entry(filler.to_owned()).or_default() += 1;
            filler_count += 1;
        }
        for pair in segment.words.windows(2) {
            let gap = pair[1].start_ms - pair[0].end_ms;
            if gap >= config.hesitation_ms {
                hesitations += 1;
            }
            if gap >= config.long_pause_ms {
                long_pauses += 1;
            }
        }
    }
    if speaking_ms <= 0 {
        return None;
    }
    let speaking_secs = speaking_ms as f64 / 1000.0;
    let words_per_minute = words as f64 / (speaking_secs / 60.0);
    let filler_rate = f64::from(filler_count) / words.max(1) as f64;
    let score = delivery_score(config, filler_rate, words_per_minute, long_pauses);
    Some(DeliveryMetrics {
        words,
        speaking_secs: round1(speaking_secs),
        words_per_minute: round1(words_per_minute),
        fillers: by_filler,
        filler_count,
        filler_rate: (filler_rate * 1000.0).round() / 1000.0,
        hesitations,
        long_pauses,
        score,
        grade: Grade::of(score),
    })
}

#[cfg(test)]
mod tests {
    use super::super::Word;
    use super::*;

    /// Words at `ms_per_word` with a gap of `gap_ms` inserted before the words in `gaps_before`.
    fn timed_segment(text: &str, ms_per_word: i64, gaps_before: &[(usize, i64)]) -> Segment {
        let mut at = 0i64;
        let words: Vec<Word> = text
            .split_whitespace()
            .enumerate()
            .map(|(i, w)| {
                if let Some((_, gap)) = gaps_before.iter().find(|(j, _)| *j == i) {
                    at += gap;
                }
                let word = Word {
                    text: w.into(),
                    start_ms: at,
                    end_ms: at + ms_per_word - 50,
                };
                at += ms_per_word;
                word
            })
            .collect();
        let spans = vec![(words[0].start_ms, words.last().unwrap().end_ms)];
        Segment {
            index: 0,
            question: String::new(),
            words,
            turn_ids: Vec::new(),
            timed: true,
            spans,
        }
    }

    #[test]
    fn pace_fillers_and_pauses_come_from_word_times() {
        let config = FeedbackConfig::default();
        // 20 words at 400 ms (150 wpm before pauses), 2 fillers, one 2 s and one 4 s gap.
        let text =
            "um I moved the queue to Kafka and you know it cut the lag for all the teams we had";
        let s = timed_segment(text, 400, &[(5, 2_000), (12, 4_000)]);
        let d = delivery(&config, &[&s]).expect("timed");
        assert_eq!(d.words, 20);
        assert_eq!(d.filler_count, 2);
        assert_eq!(d.fillers.get("um"), Some(&1));
        assert_eq!(d.fillers.get("you know"), Some(&1));
        assert_eq!(d.hesitations, 2);
        assert_eq!(d.long_pauses, 1);
        // 20 × 400 ms − 50 ms + 6 s of gaps = 13.95 s → 86 wpm: slow.
        assert_eq!(d.speaking_secs, 14.0);
        assert!(
            (d.words_per_minute - 86.0).abs() < 0.5,
            "{}",
            d.words_per_minute
        );
        // Filler rate 10 % (not over) → −12; slow → −10.
        assert_eq!(d.score, 78.0);
        assert_eq!(d.grade, Grade::Good);
    }

    #[test]
    fn the_score_follows_the_documented_deductions() {
        let c = FeedbackConfig::default();
        assert_eq!(delivery_score(&c, 0.0, 150.0, 0), 100.0);
        assert_eq!(delivery_score(&c, 0.11, 150.0, 0), 75.0);
        assert_eq!(delivery_score(&c, 0.03, 190.0, 0), 88.0);
        assert_eq!(delivery_score(&c, 0.0, 150.0, 3), 100.0);
        assert_eq!(delivery_score(&c, 0.0, 150.0, 4), 88.0);
        assert_eq!(delivery_score(&c, 0.0, 150.0, 9), 85.0, "at most −15");
        let strict = FeedbackConfig {
            slow_wpm: 160.0,
            fast_wpm: 200.0,
            filler_rate_low: 0.01,
            ..FeedbackConfig::default()
        };
        assert_eq!(
            delivery_score(&strict, 0.015, 150.0, 0),
            86.0,
            "the thresholds come from the configuration"
        );
        assert_eq!(Grade::of(59.9), Grade::NeedsWork);
        assert_eq!(Grade::of(60.0), Grade::Fair);
        assert_eq!(Grade::of(90.0), Grade::Excellent);
    }

    #[test]
    fn untimed_answers_have_no_delivery_metrics() {
        let config = FeedbackConfig::default();
        let mut s = timed_segment("one two three", 400, &[]);
        s.timed = false;
        assert_eq!(delivery(&config, &[&s]), None);
    }
}
