//! `TranscriptAssembler`: builds the transcript that is persisted — segments for both speakers
//! with start and end in milliseconds from the start of the interview, the candidate's word
//! timestamps, and for an interrupted reply only the part the candidate actually heard.
//!
//! Sans-IO: the interview actor reports what happened and when; `drain` hands out finished
//! segments for storage. Times are `Instant`s mapped onto the interview's timeline.

use std::time::{Duration, Instant};

/// Who spoke a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker {
    Candidate,
    Interviewer,
}

/// One word with its timing on the interview's timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct WordTiming {
    pub word: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub confidence: f64,
}

/// A finished transcript segment.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentRecord {
    pub seq: i32,
    pub speaker: Speaker,
    pub text: String,
    pub start_ms: i64,
    pub end_ms: i64,
    /// The interviewer was cut off; `text` is the heard part.
    pub interrupted: bool,
    pub words: Vec<WordTiming>,
}

/// A word from the STT, timed in seconds from the STT session's start.
#[derive(Debug, Clone, PartialEq)]
pub struct SttWord {
    pub word: String,
    pub start: f64,
    pub end: f64,
    pub confidence: f64,
}

#[derive(Debug, Default)]
struct CandidateTurn {
    texts: Vec<String>,
    words: Vec<WordTiming>,
    first_voice_ms: Option<i64>,
}

#[derive(Debug)]
struct InterviewerUtterance {
    /// When its first frame left; `None` while the text is synthesized but not yet heard.
    started_ms: Option<i64>,
    text: String,
    /// (character index in `text`, audio offset in ms of that character's start).
    char_starts: Vec<(usize, u64)>,
    audio_ms: u64,
}

/// Character timing of one synthesized audio chunk (relative to the chunk's start).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChunkAlignment {
    pub chars: Vec<String>,
    pub start_ms: Vec<u32>,
}

#[derive(Debug)]
pub struct TranscriptAssembler {
    started_at: Instant,
    stt_origin: Option<Instant>,
    next_seq: i32,
    finished: Vec<SegmentRecord>,
    candidate: CandidateTurn,
    interviewer: Option<InterviewerUtterance>,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl TranscriptAssembler {
    pub fn new(started_at: Instant) -> Self {
        Self {
            started_at,
            stt_origin: None,
            next_seq: 0,
            finished: Vec::new(),
            candidate: CandidateTurn::default(),
            interviewer: None,
        }
    }

    fn at(&self, instant: Instant) -> i64 {
        millis(instant.saturating_duration_since(self.started_at))
    }

    /// The instant the STT session's clock started (its `t = 0`).
    pub fn set_stt_origin(&mut self, origin: Instant) {
        self.stt_origin = Some(origin);
    }

    fn stt_to_ms(&self, seconds: f64) -> i64 {
        let origin = self.stt_origin.map_or(0, |origin| self.at(origin));
        let offset = if seconds.is_finite() && seconds > 0.0 {
            (seconds * 1000.0).round() as i64
        } else {
            0
        };
        origin.saturating_add(offset)
    }

    /// The candidate started speaking (first voiced frame of the turn).
    pub fn candidate_voice(&mut self, at: Instant) {
        if self.candidate.first_voice_ms.is_none() {
            self.candidate.first_voice_ms = Some(self.at(at));
        }
    }

    /// A final STT segment of the candidate's current turn.
    pub fn candidate_final(&mut self, text: &str, words: &[SttWord]) {
        let text = text.trim();
        if !text.is_empty() {
            self.candidate.texts.push(text.to_owned());
        }
        for word in words {
            let timing = WordTiming {
                word: word.word.clone(),
                start_ms: self.stt_to_ms(word.start),
                end_ms: self.stt_to_ms(word.end),
                confidence: word.confidence,
            };
            self.candidate.words.push(timing);
        }
    }

    /// The candidate's turn ended at `speech_ended_at`; emits its segment (if it said anything).
    pub fn candidate_turn_end(&mut self, speech_ended_at: Instant) {
        let turn = std::mem::take(&mut self.candidate);
        let text = turn.texts.join(" ");
        if text.is_empty() {
            return;
        }
        let end_ms = turn
            .words
            .last()
            .map(|w| w.end_ms)
            .unwrap_or_else(|| self.at(speech_ended_at));
        let start_ms = turn
            .words
            .first()
            .map(|w| w.start_ms)
            .or(turn.first_voice_ms)
            .unwrap_or(end_ms)
            .min(end_ms);
        self.push(
            Speaker::Candidate,
            text,
            start_ms,
            end_ms,
            false,
            turn.words,
        );
    }

    fn utterance(&mut self) -> &mut InterviewerUtterance {
        self.interviewer
            .get_or_insert_with(|| InterviewerUtterance {
                started_ms: None,
                text: String::new(),
                char_starts: Vec::new(),
                audio_ms: 0,
            })
    }

    /// The first frame of an interviewer reply left for the candidate at `at`.
    pub fn interviewer_begin(&mut self, at: Instant) {
        let at = self.at(at);
        self.utterance().started_ms = Some(at);
    }

    /// Text of the reply handed to speech synthesis (it may precede the first frame).
    pub fn interviewer_text(&mut self, text: &str) {
        self.utterance().text.push_str(text);
    }

    /// A synthesized chunk of `duration` arrived, with its character alignment when the vendor
    /// sent one.
    pub fn interviewer_audio(&mut self, duration: Duration, alignment: Option<&ChunkAlignment>) {
        let Some(utterance) = &mut self.interviewer else {
            return;
        };
        if let Some(alignment) = alignment {
            let mut next_char = utterance.char_starts.last().map_or(0, |(i, _)| i + 1);
            for (chars, start) in alignment.chars.iter().zip(&alignment.start_ms) {
                for _ in chars.chars() {
                    utterance
                        .char_starts
                        .push((next_char, utterance.audio_ms + u64::from(*start)));
                    next_char += 1;
                }
            }
        }
        utterance.audio_ms += u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    }

    /// The reply ended at `at` after `played` of its audio reached the candidate. When
    /// `interrupted`, only the heard part is kept (cut back to a whole word).
    pub fn interviewer_end(&mut self, at: Instant, played: Duration, interrupted: bool) {
        let Some(utterance) = self.interviewer.take() else {
            return;
        };
        let text = if interrupted {
            heard_text(
                &utterance,
                u64::try_from(played.as_millis()).unwrap_or(u64::MAX),
            )
        } else {
            utterance.text.trim().to_owned()
        };
        let start_ms = utterance.started_ms.unwrap_or_else(|| self.at(at));
        let end_ms = if interrupted {
            start_ms.saturating_add(millis(played))
        } else {
            self.at(at).max(start_ms)
        };
        self.push(
            Speaker::Interviewer,
            text,
            start_ms,
            end_ms,
            interrupted,
            Vec::new(),
        );
    }

    fn push(
        &mut self,
        speaker: Speaker,
        text: String,
        start_ms: i64,
        end_ms: i64,
        interrupted: bool,
        words: Vec<WordTiming>,
    ) {
        if text.is_empty() && !interrupted {
            return;
        }
        self.finished.push(SegmentRecord {
            seq: self.next_seq,
            speaker,
            text,
            start_ms,
            end_ms,
            interrupted,
            words,
        });
        self.next_seq += 1;
    }

    /// The text of the latest finished interviewer segment not yet drained.
    pub fn last_interviewer_text(&self) -> Option<String> {
        self.finished
            .iter()
            .rev()
            .find(|segment| segment.speaker == Speaker::Interviewer)
            .map(|segment| segment.text.clone())
    }

    /// Finished segments not yet handed out, in order.
    pub fn drain(&mut self) -> Vec<SegmentRecord> {
        std::mem::take(&mut self.finished)
    }
}

/// The part of an utterance heard within `played_ms`: by character alignment when known,
/// otherwise in proportion to the synthesized audio; cut back to whole words.
fn heard_text(utterance: &InterviewerUtterance, played_ms: u64) -> String {
    let chars: Vec<char> = utterance.text.chars().collect();
    let heard_chars = if utterance.char_starts.is_empty() {
        if utterance.audio_ms == 0 {
            0
        } else {
            let ratio = (played_ms as f64 / utterance.audio_ms as f64).min(1.0);
            (chars.len() as f64 * ratio).floor() as usize
        }
    } else {
        utterance
            .char_starts
            .iter()
            .take_while(|(_, start)| *start < played_ms)
            .count()
    }
    .min(chars.len());
    if heard_chars == chars.len() {
        return utterance.text.trim().to_owned();
    }
    let heard: String = chars[..heard_chars].iter().collect();
    // A word cut in the middle was not heard (punctuation after a word ends it).
    let whole_words = if chars.get(heard_chars).is_some_and(|c| c.is_alphanumeric()) {
        heard
            .rsplit_once(char::is_whitespace)
            .map_or("", |(before, _)| before)
    } else {
        heard.as_str()
    };
    whole_words.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn candidate_segments_use_stt_word_times_on_the_interview_timeline() {
        let start = Instant::now();
        let mut t = TranscriptAssembler::new(start);
        t.set_stt_origin(start + ms(500));
        t.candidate_voice(start + ms(1480));
        t.candidate_final(
            "I led it.",
            &[
                SttWord {
                    word: "i".into(),
                    start: 1.0,
                    end: 1.2,
                    confidence: 0.9,
                },
                SttWord {
                    word: "led".into(),
                    start: 1.2,
                    end: 1.5,
                    confidence: 0.95,
                },
                SttWord {
                    word: "it".into(),
                    start: 1.5,
                    end: 1.8,
                    confidence: 0.99,
                },
            ],
        );
        t.candidate_turn_end(start + ms(2300));
        let segments = t.drain();
        assert_eq!(segments.len(), 1);
        let segment = &segments[0];
        assert_eq!(segment.speaker, Speaker::Candidate);
        assert_eq!((segment.start_ms, segment.end_ms), (1500, 2300));
        assert_eq!(segment.words[1].start_ms, 1700);
        assert_eq!(segment.seq, 0);
        assert!(t.drain().is_empty());
    }

    #[test]
    fn uninterrupted_reply_keeps_all_text() {
        let start = Instant::now();
        let mut t = TranscriptAssembler::new(start);
        t.interviewer_begin(start + ms(100));
        t.interviewer_text("Tell me about a time ");
        t.interviewer_text("you disagreed with your manager.");
        t.interviewer_audio(ms(2600), None);
        t.interviewer_end(start + ms(2700), ms(2600), false);
        let segment = &t.drain()[0];
        assert_eq!(
            segment.text,
            "Tell me about a time you disagreed with your manager."
        );
        assert_eq!((segment.start_ms, segment.end_ms), (100, 2700));
        assert!(!segment.interrupted);
    }

    #[test]
    fn interrupted_reply_keeps_only_the_heard_words_by_alignment() {
        let start = Instant::now();
        let mut t = TranscriptAssembler::new(start);
        t.interviewer_begin(start);
        let text = "Great answer. Now, how would you scale it?";
        t.interviewer_text(text);
        // 60 ms per character, in two chunks.
        let all: Vec<String> = text.chars().map(String::from).collect();
        let (first, second) = all.split_at(20);
        let chunk = |chars: &[String]| ChunkAlignment {
            chars: chars.to_vec(),
            start_ms: (0..chars.len() as u32).map(|i| i * 60).collect(),
        };
        t.interviewer_audio(ms(1200), Some(&chunk(first)));
        t.interviewer_audio(ms(1320), Some(&chunk(second)));
        // Heard 1.0 s: characters starting before 1000 ms = 17 ("Great answer. Now" is 17).
        t.interviewer_end(start + ms(1000), ms(1000), true);
        let segment = &t.drain()[0];
        assert!(segment.interrupted);
        assert_eq!(segment.text, "Great answer. Now");
        assert_eq!(segment.end_ms, 1000);
        // Heard into the second chunk, mid-word: the partial word is dropped.
        let mut t = TranscriptAssembler::new(start);
        t.interviewer_begin(start);
        t.interviewer_text(text);
        t.interviewer_audio(ms(1200), Some(&chunk(first)));
        t.interviewer_audio(ms(1320), Some(&chunk(second)));
        // 1500 ms: 20 chars of the first chunk + 5 of the second = "Great answer. Now, how wo|uld".
        t.interviewer_end(start + ms(1500), ms(1500), true);
        assert_eq!(t.drain()[0].text, "Great answer. Now, how");
    }

    #[test]
    fn interrupted_reply_without_alignment_is_cut_in_proportion() {
        let start = Instant::now();
        let mut t = TranscriptAssembler::new(start);
        t.interviewer_begin(start);
        t.interviewer_text("one two three four five six seven eight");
        t.interviewer_audio(ms(4000), None);
        t.interviewer_end(start + ms(2000), ms(2000), true);
        assert_eq!(t.drain()[0].text, "one two three four");
    }

    #[test]
    fn interruption_before_any_audio_records_an_empty_interrupted_segment() {
        let start = Instant::now();
        let mut t = TranscriptAssembler::new(start);
        t.interviewer_begin(start);
        t.interviewer_text("Let me ask you");
        t.interviewer_end(start, Duration::ZERO, true);
        let segment = &t.drain()[0];
        assert_eq!(segment.text, "");
        assert!(segment.interrupted);
    }

    #[test]
    fn segments_are_numbered_in_order_across_speakers() {
        let start = Instant::now();
        let mut t = TranscriptAssembler::new(start);
        t.interviewer_begin(start);
        t.interviewer_text("Hello.");
        t.interviewer_end(start + ms(800), ms(800), false);
        t.candidate_voice(start + ms(1000));
        t.candidate_final("Hi.", &[]);
        t.candidate_turn_end(start + ms(1300));
        t.candidate_turn_end(start + ms(1400)); // nothing said: no segment
        let segments = t.drain();
        assert_eq!(
            segments.iter().map(|s| s.seq).collect::<Vec<_>>(),
            vec![0, 1]
        );
        assert_eq!((segments[1].start_ms, segments[1].end_ms), (1000, 1300));
    }
}
