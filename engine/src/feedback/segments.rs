//! The transcript cut into question/answer segments (FEEDBACK.md §1).
//!
//! A segment is one interviewer question and every candidate turn until the next question. Word
//! times stay on the interview's own clock (the clock of `transcript_segments`); a turn whose
//! word timestamps are gone (deleted after 14 days) gets its words spread evenly over the turn's
//! span and is marked untimed, so delivery metrics skip it rather than invent pauses.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Word;

/// Who spoke a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    Interviewer,
    Candidate,
}

/// One stored transcript turn with its words (in `seq` order).
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    pub id: Uuid,
    pub speaker: Speaker,
    pub text: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub words: Vec<Word>,
}

/// One question and the candidate's answer to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// 0-based position in the interview.
    pub index: usize,
    /// The interviewer's question ("" when the candidate spoke before any question).
    pub question: String,
    /// Every word of the answer, in order, on the interview's clock.
    pub words: Vec<Word>,
    /// The candidate turns the answer is made of.
    pub turn_ids: Vec<Uuid>,
    /// Whether every word carries its own recognised time.
    pub timed: bool,
    /// Start and end of each candidate turn (speaking time excludes the gaps between turns).
    pub spans: Vec<(i64, i64)>,
}

impl Segment {
    pub fn start_ms(&self) -> i64 {
        self.words.first().map_or(0, |w| w.start_ms)
    }

    pub fn end_ms(&self) -> i64 {
        self.words.last().map_or(0, |w| w.end_ms)
    }

    /// The answer as one line of text.
    pub fn answer_text(&self) -> String {
        self.words
            .iter()
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Seconds from the first word to the last.
    pub fn duration_secs(&self) -> f64 {
        (self.end_ms() - self.start_ms()).max(0) as f64 / 1000.0
    }
}

/// Words spread evenly over a turn's span when its timestamps are gone.
fn spread_words(turn: &Turn) -> Vec<Word> {
    let texts: Vec<&str> = turn.text.split_whitespace().collect();
    let n = texts.len().max(1) as i64;
    let span = (turn.end_ms - turn.start_ms).max(0);
    texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let i = i as i64;
            Word {
                text: (*text).to_owned(),
                start_ms: turn.start_ms + span * i / n,
                end_ms: turn.start_ms + span * (i + 1) / n,
            }
        })
        .collect()
}

/// Cuts turns (in `seq` order) into segments. Consecutive interviewer turns before any answer
/// form one question; candidate turns before the first question form a segment with an empty
/// question. Segments without any candidate word are left out.
pub fn segment(turns: &[Turn]) -> Vec<Segment> {
    let mut segments: Vec<Segment> = Vec::new();
    let mut current: Option<Segment> = None;
    for turn in turns {
        match turn.speaker {
            Speaker::Interviewer => {
                let text = turn.text.trim();
                match &mut current {
                    Some(open) if open.words.is_empty() => {
                        if !text.is_empty() {
                            if !open.question.is_empty() {
                                open.question.push(' ');
                            }
                            open.question.push_str(text);
                        }
                    }
                    _ => {
                        if let Some(done) = current.take() {
                            segments.push(done);
                        }
                        current = Some(Segment {
                            index: 0,
                            question: text.to_owned(),
                            words: Vec::new(),
                            turn_ids: Vec::new(),
                            timed: true,
                            spans: Vec::new(),
                        });
                    }
                }
            }
            Speaker::Candidate => {
                let open = current.get_or_insert_with(|| Segment {
                    index: 0,
                    question: String::new(),
                    words: Vec::new(),
                    turn_ids: Vec::new(),
                    timed: true,
                    spans: Vec::new(),
                });
                let words = if turn.words.is_empty() {
                    if !turn.text.trim().is_empty() {
                        open.timed = false;
                    }
                    spread_words(turn)
                } else {
                    let mut words = turn.words.clone();
                    words.sort_by_key(|w| w.start_ms);
                    words
                };
                if let (Some(first), Some(last)) = (words.first(), words.last()) {
                    open.spans.push((first.start_ms, last.end_ms));
                }
                open.words.extend(words);
                open.turn_ids.push(turn.id);
            }
        }
    }
    if let Some(done) = current {
        segments.push(done);
    }
    segments.retain(|s| !s.words.is_empty());
    for (index, segment) in segments.iter_mut().enumerate() {
        segment.index = index;
    }
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(speaker: Speaker, text: &str, start_ms: i64, timed: bool) -> Turn {
        let words = if timed {
            text.split_whitespace()
                .enumerate()
                .map(|(i, w)| Word {
                    text: w.into(),
                    start_ms: start_ms + i as i64 * 400,
                    end_ms: start_ms + i as i64 * 400 + 300,
                })
                .collect()
        } else {
            Vec::new()
        };
        let n = text.split_whitespace().count() as i64;
        Turn {
            id: Uuid::new_v4(),
            speaker,
            text: text.into(),
            start_ms,
            end_ms: start_ms + n * 400,
            words,
        }
    }

    #[test]
    fn each_question_owns_the_candidate_turns_until_the_next_question() {
        let turns = vec![
            turn(Speaker::Interviewer, "Hello.", 0, false),
            turn(
                Speaker::Interviewer,
                "Tell me about a project.",
                1_000,
                false,
            ),
            turn(Speaker::Candidate, "I built a billing system", 5_000, true),
            turn(Speaker::Candidate, "for payments", 9_000, true),
            turn(Speaker::Interviewer, "Why?", 12_000, false),
            turn(Speaker::Candidate, "Because it was slow", 14_000, true),
            turn(Speaker::Interviewer, "Thanks, goodbye.", 20_000, false),
        ];
        let segments = segment(&turns);
        assert_eq!(segments.len(), 2, "the closing question has no answer");
        assert_eq!(segments[0].question, "Hello. Tell me about a project.");
        assert_eq!(
            segments[0].answer_text(),
            "I built a billing system for payments"
        );
        assert_eq!(segments[0].turn_ids.len(), 2);
        assert_eq!(segments[0].start_ms(), 5_000, "the interview's own clock");
        assert_eq!(segments[0].end_ms(), 9_700);
        assert_eq!(segments[0].spans, vec![(5_000, 6_900), (9_000, 9_700)]);
        assert_eq!(segments[1].index, 1);
        assert_eq!(segments[1].question, "Why?");
        assert!(segments[1].timed);
    }

    #[test]
    fn turns_without_word_times_are_spread_over_their_span_and_marked_untimed() {
        let turns = vec![
            turn(
                Speaker::Candidate,
                "I spoke before any question",
                2_000,
                false,
            ),
            turn(Speaker::Interviewer, "Okay.", 5_000, false),
        ];
        let segments = segment(&turns);
        assert_eq!(segments.len(), 1);
        assert_eq!(segments[0].question, "");
        assert!(!segments[0].timed);
        assert_eq!(segments[0].words.len(), 5);
        assert_eq!(segments[0].start_ms(), 2_000);
        assert_eq!(segments[0].end_ms(), 4_000);
    }
}
