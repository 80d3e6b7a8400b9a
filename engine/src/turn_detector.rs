//! `TurnDetector`: decides when the candidate has finished a turn.
//!
//! Sans-IO: the interview actor feeds it local voice activity (one call per 20 ms frame), the
//! STT's transcripts and endpointing events, and asks it, at any `now`, what to do. Time is an
//! input, so tests run minutes of simulated conversation in microseconds.
//!
//! The rule, in words: a turn ends when the candidate has said something (final STT text) and
//! has then been quiet for a *quiet window*. The window adapts:
//! - after an STT endpoint (`speech_final` or `UtteranceEnd`) on a complete sentence it is short
//!   (`endpoint_quiet`);
//! - otherwise after a complete sentence it is `sentence_quiet`, and shorter still
//!   (`long_answer_quiet`) after a long answer, where a pause is more likely the end;
//! - when the text so far ends mid-sentence ("…and", "…because", no final punctuation) it is
//!   long (`mid_sentence_quiet`), whatever the endpointing says: a thinking pause is never cut
//!   short.
//!
//! Before the window closes, after `speculative_after` of quiet, it proposes a *speculative*
//! reply so the LLM can start early; if the candidate resumes, it says so and the reply is
//! discarded.
//!
//! The local VAD is the first endpointer: after `early_finalize_after` of quiet following speech
//! it asks the STT to `finalize` what it has heard, so the final text arrives without waiting for
//! the STT's own endpointing silence (Deepgram's `endpointing`, 300 ms here), and the final that
//! answers counts as an STT endpoint. When the local VAD has heard a long silence but the STT has
//! only interim text (`finalize_after`), it asks again.

use std::time::{Duration, Instant};

use crate::audio::VoiceActivity;

/// Thresholds of turn detection; every one is configuration (see the README for defaults).
/// In the settings file and environment, durations are written like `400ms` or `2s`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TurnConfig {
    /// Never end a turn with less quiet than this.
    #[serde(with = "humantime_serde")]
    pub min_quiet: Duration,
    /// Quiet after an STT endpoint on a complete sentence.
    #[serde(with = "humantime_serde")]
    pub endpoint_quiet: Duration,
    /// Quiet after a complete sentence without an STT endpoint.
    #[serde(with = "humantime_serde")]
    pub sentence_quiet: Duration,
    /// Quiet after a long answer (at least `long_answer_words` words) ending a sentence.
    #[serde(with = "humantime_serde")]
    pub long_answer_quiet: Duration,
    pub long_answer_words: usize,
    /// Quiet when the text so far ends mid-sentence.
    #[serde(with = "humantime_serde")]
    pub mid_sentence_quiet: Duration,
    /// Quiet after which a speculative reply may start.
    #[serde(with = "humantime_serde")]
    pub speculative_after: Duration,
    /// Local silence after which, with only interim text, the STT is asked to finalize.
    #[serde(with = "humantime_serde")]
    pub finalize_after: Duration,
    /// Local silence after speech after which the STT is asked to finalize at once (`0s`: never;
    /// then the STT's own endpointing decides when its final comes). Not used with the local
    /// recognizer, which decodes whole utterances: there each finalize costs a decode.
    #[serde(with = "humantime_serde")]
    pub early_finalize_after: Duration,
}

impl TurnConfig {
    /// Checks the thresholds make a detector that can end a turn: each quiet window is at
    /// least `min_quiet`, which is positive.
    pub fn validate(&self) -> Result<(), String> {
        if self.min_quiet.is_zero() {
            return Err("turn.min_quiet must be positive".into());
        }
        for (name, value) in [
            ("endpoint_quiet", self.endpoint_quiet),
            ("sentence_quiet", self.sentence_quiet),
            ("long_answer_quiet", self.long_answer_quiet),
            ("mid_sentence_quiet", self.mid_sentence_quiet),
        ] {
            if value < self.min_quiet {
                return Err(format!("turn.{name} must be at least turn.min_quiet"));
            }
        }
        if self.long_answer_words == 0 {
            return Err("turn.long_answer_words must be positive".into());
        }
        if self.finalize_after.is_zero() {
            return Err("turn.finalize_after must be positive".into());
        }
        Ok(())
    }
}

impl Default for TurnConfig {
    fn default() -> Self {
        Self {
            min_quiet: Duration::from_millis(300),
            endpoint_quiet: Duration::from_millis(400),
            sentence_quiet: Duration::from_millis(900),
            long_answer_quiet: Duration::from_millis(700),
            long_answer_words: 60,
            mid_sentence_quiet: Duration::from_millis(2000),
            speculative_after: Duration::from_millis(200),
            finalize_after: Duration::from_millis(800),
            early_finalize_after: Duration::from_millis(200),
        }
    }
}

/// What the detector asks the interview to do.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnEvent {
    /// Start preparing a reply to `text` now; it may be discarded by [`TurnEvent::Resumed`].
    SpeculativeReply { text: String },
    /// The candidate spoke again after a speculative reply started: discard it.
    Resumed,
    /// Ask the STT to finalize the pending interim text.
    RequestFinalize,
    /// The turn is over.
    EndOfTurn(EndOfTurn),
}

/// A finished candidate turn.
#[derive(Debug, Clone, PartialEq)]
pub struct EndOfTurn {
    /// Everything the candidate said in the turn (final segments joined).
    pub text: String,
    /// End of the last voiced frame: the start of the voice-to-voice measurement.
    pub speech_ended_at: Instant,
    /// Which rule closed the turn.
    pub reason: TurnEndReason,
}

/// Which rule closed a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnEndReason {
    /// An STT endpoint plus the short quiet window.
    Endpoint,
    /// The adaptive quiet window without an STT endpoint.
    Quiet,
}

/// Words after which a sentence is clearly not finished.
const CONTINUATION_WORDS: &[&str] = &[
    "and", "but", "or", "so", "because", "um", "uh", "erm", "like", "the", "a", "an", "to", "of",
    "with", "that", "which", "when", "if", "then", "my", "our", "we", "i",
];

/// Whether `text` ends mid-sentence: no final punctuation, or a continuation word at the end.
pub fn ends_mid_sentence(text: &str) -> bool {
    // Closing brackets and quotes after the final punctuation do not continue a sentence.
    let trimmed = text
        .trim_end()
        .trim_end_matches([')', ']', '"', '\'', '\u{201d}', '\u{2019}']);
    let Some(last_char) = trimmed.chars().last() else {
        return false;
    };
    let last_word = trimmed
        .rsplit(char::is_whitespace)
        .next()
        .unwrap_or_default()
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase();
    if CONTINUATION_WORDS.contains(&last_word.as_str()) {
        return true;
    }
    !matches!(last_char, '.' | '?' | '!')
}

/// Turn detection state for one candidate turn at a time.
#[derive(Debug)]
pub struct TurnDetector {
    config: TurnConfig,
    finals: Vec<String>,
    interim: String,
    voiced: bool,
    /// End of the most recent frame with speech energy (the hangover after it excluded).
    last_voice_at: Option<Instant>,
    /// An STT endpoint arrived since the candidate last spoke.
    endpoint_seen: bool,
    speculated: bool,
    resumed_pending: bool,
    finalize_requested: bool,
}

impl TurnDetector {
    pub fn new(config: TurnConfig) -> Self {
        Self {
            config,
            finals: Vec::new(),
            interim: String::new(),
            voiced: false,
            last_voice_at: None,
            endpoint_seen: false,
            speculated: false,
            resumed_pending: false,
            finalize_requested: false,
        }
    }

    pub fn config(&self) -> &TurnConfig {
        &self.config
    }

    /// Forgets the finished turn; the next candidate turn starts empty.
    pub fn reset(&mut self) {
        *self = Self::new(self.config.clone());
    }

    /// One frame of local voice activity ending at `now`. Quiet is counted from the last
    /// frame with speech energy: the VAD's hangover keeps the candidate voiced (no decision
    /// during it) but is not more speech.
    pub fn voice_frame(&mut self, now: Instant, activity: VoiceActivity) {
        let voiced = activity.is_voiced();
        if voiced && !self.voiced && self.speculated {
            self.resumed_pending = true;
            self.speculated = false;
        }
        if activity.is_speech() {
            self.last_voice_at = Some(now);
            self.endpoint_seen = false;
            self.finalize_requested = false;
        }
        self.voiced = voiced;
    }

    /// An interim transcript (replaces the previous interim).
    pub fn interim(&mut self, text: &str) {
        self.interim = text.trim().to_owned();
    }

    /// A final transcript segment; `endpoint`: the STT's endpoint flag (`speech_final`), or the
    /// final answers a finalize this detector asked for after local quiet. (One that arrives
    /// while the candidate speaks again is forgotten at the next frame with speech.)
    pub fn final_text(&mut self, text: &str, endpoint: bool) {
        let text = text.trim();
        if !text.is_empty() {
            self.finals.push(text.to_owned());
        }
        self.interim.clear();
        if endpoint {
            self.endpoint_seen = true;
        }
    }

    /// The STT's `UtteranceEnd`: a gap followed the last word.
    pub fn utterance_end(&mut self) {
        self.endpoint_seen = true;
    }

    /// The text of the turn so far (finals, then the pending interim).
    pub fn text(&self) -> String {
        let mut parts: Vec<&str> = self.finals.iter().map(String::as_str).collect();
        if !self.interim.is_empty() {
            parts.push(&self.interim);
        }
        parts.join(" ")
    }

    fn final_text_joined(&self) -> String {
        self.finals.join(" ")
    }

    fn word_count(&self) -> usize {
        self.finals
            .iter()
            .map(|f| f.split_whitespace().count())
            .sum()
    }

    /// The quiet window in force for the text so far.
    pub fn quiet_window(&self) -> Duration {
        let text = self.final_text_joined();
        let window = if ends_mid_sentence(&text) {
            self.config.mid_sentence_quiet
        } else if self.endpoint_seen {
            self.config.endpoint_quiet
        } else if self.word_count() >= self.config.long_answer_words {
            self.config.long_answer_quiet
        } else {
            self.config.sentence_quiet
        };
        window.max(self.config.min_quiet)
    }

    fn quiet_for(&self, now: Instant) -> Option<Duration> {
        if self.voiced {
            return None;
        }
        self.last_voice_at
            .map(|last| now.saturating_duration_since(last))
    }

    /// What to do at `now`, if anything. Call after every input and when
    /// [`next_deadline`](Self::next_deadline) passes.
    pub fn poll(&mut self, now: Instant) -> Option<TurnEvent> {
        if self.resumed_pending {
            self.resumed_pending = false;
            return Some(TurnEvent::Resumed);
        }
        let quiet = self.quiet_for(now)?;
        if self.finalize_due().is_some_and(|after| quiet >= after) {
            self.finalize_requested = true;
            return Some(TurnEvent::RequestFinalize);
        }
        if self.finals.is_empty() {
            return None;
        }
        let last_voice_at = self.last_voice_at?;
        if quiet >= self.quiet_window() {
            let reason = if self.endpoint_seen && !ends_mid_sentence(&self.final_text_joined()) {
                TurnEndReason::Endpoint
            } else {
                TurnEndReason::Quiet
            };
            let text = self.text();
            self.speculated = false;
            self.finals.clear();
            self.interim.clear();
            return Some(TurnEvent::EndOfTurn(EndOfTurn {
                text,
                speech_ended_at: last_voice_at,
                reason,
            }));
        }
        if !self.speculated && quiet >= self.config.speculative_after {
            self.speculated = true;
            return Some(TurnEvent::SpeculativeReply {
                text: self.final_text_joined(),
            });
        }
        None
    }

    /// The quiet after the last speech at which a finalize is due, if one is still to ask for:
    /// once per pause, unless the STT already saw the endpoint.
    fn finalize_due(&self) -> Option<Duration> {
        if self.finalize_requested || self.endpoint_seen {
            return None;
        }
        let early = Some(self.config.early_finalize_after).filter(|after| !after.is_zero());
        let rescue = (self.finals.is_empty() && !self.interim.is_empty())
            .then_some(self.config.finalize_after);
        early.into_iter().chain(rescue).min()
    }

    /// The next instant at which [`poll`](Self::poll) may have something new to say.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.voiced {
            return None;
        }
        let last = self.last_voice_at?;
        let finalize = self.finalize_due().map(|after| last + after);
        if self.finals.is_empty() {
            return finalize;
        }
        let turn = if self.speculated {
            last + self.quiet_window()
        } else {
            last + self.config.speculative_after.min(self.quiet_window())
        };
        Some(finalize.map_or(turn, |finalize| finalize.min(turn)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: Duration = Duration::from_millis(20);

    /// A simulated clock driving a detector frame by frame.
    struct Sim {
        now: Instant,
        detector: TurnDetector,
        events: Vec<(Duration, TurnEvent)>,
        start: Instant,
    }

    impl Sim {
        fn new() -> Self {
            let now = Instant::now();
            Self {
                now,
                start: now,
                detector: TurnDetector::new(TurnConfig::default()),
                events: Vec::new(),
            }
        }

        fn frames(&mut self, duration: Duration, activity: VoiceActivity) {
            let frames = duration.as_millis() / FRAME.as_millis();
            for _ in 0..frames {
                self.now += FRAME;
                self.detector.voice_frame(self.now, activity);
                while let Some(event) = self.detector.poll(self.now) {
                    self.events.push((self.now - self.start, event));
                }
            }
        }

        fn speak(&mut self, ms: u64) {
            self.frames(Duration::from_millis(ms), VoiceActivity::Speech);
        }

        fn silence(&mut self, ms: u64) {
            self.frames(Duration::from_millis(ms), VoiceActivity::Silence);
        }

        /// When the first speculative reply was proposed.
        fn speculated_at(&self) -> Option<Duration> {
            self.events
                .iter()
                .find_map(|(at, e)| matches!(e, TurnEvent::SpeculativeReply { .. }).then_some(*at))
        }

        /// When each finalize was asked for.
        fn finalizes(&self) -> Vec<Duration> {
            self.events
                .iter()
                .filter(|(_, e)| *e == TurnEvent::RequestFinalize)
                .map(|(at, _)| *at)
                .collect()
        }

        fn end_of_turn(&self) -> Option<(Duration, EndOfTurn)> {
            self.events.iter().find_map(|(at, event)| match event {
                TurnEvent::EndOfTurn(end) => Some((*at, end.clone())),
                _ => None,
            })
        }
    }

    #[test]
    fn complete_sentence_with_endpoint_ends_quickly() {
        let mut sim = Sim::new();
        sim.speak(1500);
        let spoke_until = sim.now;
        sim.detector
            .final_text("I led the database migration.", true);
        sim.silence(1000);
        let (at, end) = sim.end_of_turn().expect("turn ended");
        assert_eq!(end.text, "I led the database migration.");
        assert_eq!(end.reason, TurnEndReason::Endpoint);
        assert_eq!(end.speech_ended_at, spoke_until);
        assert_eq!(at, Duration::from_millis(1500 + 400));
    }

    #[test]
    fn long_pause_mid_sentence_is_not_cut_short() {
        let mut sim = Sim::new();
        sim.speak(1200);
        sim.detector
            .final_text("So the first thing we did was, um", true);
        sim.silence(1500); // thinking: longer than any sentence window
        assert!(
            sim.end_of_turn().is_none(),
            "a mid-sentence pause keeps the turn open"
        );
        sim.speak(800);
        sim.detector
            .final_text("move the reads to a replica.", true);
        sim.silence(600);
        let (_, end) = sim.end_of_turn().expect("turn ended");
        assert_eq!(
            end.text,
            "So the first thing we did was, um move the reads to a replica."
        );
    }

    #[test]
    fn mid_sentence_turn_still_ends_after_the_long_window() {
        let mut sim = Sim::new();
        sim.speak(600);
        sim.detector.final_text("I think that", true);
        sim.silence(2100);
        let (at, end) = sim.end_of_turn().expect("ends eventually");
        assert_eq!(end.reason, TurnEndReason::Quiet);
        assert_eq!(at, Duration::from_millis(600 + 2000));
    }

    #[test]
    fn very_short_answer_ends_the_turn() {
        let mut sim = Sim::new();
        sim.speak(300);
        sim.detector.final_text("Yes.", false);
        sim.silence(1000);
        let (at, end) = sim.end_of_turn().expect("turn ended");
        assert_eq!(end.text, "Yes.");
        assert_eq!(
            at,
            Duration::from_millis(300 + 900),
            "sentence window without endpoint"
        );
    }

    #[test]
    fn long_answers_get_a_shorter_window() {
        let mut sim = Sim::new();
        sim.speak(20_000);
        let long = "We sharded the queue by tenant and it worked. ".repeat(8);
        sim.detector.final_text(&long, false);
        sim.silence(1000);
        let (at, _) = sim.end_of_turn().expect("turn ended");
        assert_eq!(at, Duration::from_millis(20_000 + 700));
    }

    #[test]
    fn speculative_reply_starts_early_and_is_withdrawn_when_the_candidate_resumes() {
        let mut sim = Sim::new();
        sim.speak(1000);
        sim.detector.final_text("We used Kafka.", false);
        sim.silence(400);
        let speculated = sim
            .events
            .iter()
            .find(|(_, e)| matches!(e, TurnEvent::SpeculativeReply { .. }));
        assert!(
            matches!(
                speculated,
                Some((at, TurnEvent::SpeculativeReply { text })) if *at == Duration::from_millis(1000 + 200) && text == "We used Kafka."
            ),
            "{:?}",
            sim.events
        );
        sim.speak(500);
        assert!(sim.events.iter().any(|(_, e)| *e == TurnEvent::Resumed));
        assert!(sim.end_of_turn().is_none());
        sim.detector.final_text("Mostly for the audit log.", true);
        sim.silence(1000);
        let (_, end) = sim.end_of_turn().expect("turn ended");
        assert_eq!(end.text, "We used Kafka. Mostly for the audit log.");
        let speculative = sim
            .events
            .iter()
            .filter(|(_, e)| matches!(e, TurnEvent::SpeculativeReply { .. }))
            .count();
        assert_eq!(speculative, 2, "a new speculation for the longer answer");
    }

    #[test]
    fn quiet_counts_from_the_last_speech_frame_not_the_end_of_the_hangover() {
        let mut sim = Sim::new();
        sim.speak(1000);
        // The VAD's hangover: three frames still voiced, without speech energy.
        sim.frames(Duration::from_millis(60), VoiceActivity::Hangover);
        assert!(sim.events.is_empty(), "no decision while still voiced");
        sim.detector.final_text("We used Kafka.", true);
        sim.silence(1000);
        // Speculation and the endpoint window run from 1,000 ms, where speech ended.
        let speculated_at = sim.speculated_at();
        assert_eq!(speculated_at, Some(Duration::from_millis(1000 + 200)));
        let (at, end) = sim.end_of_turn().expect("turn ended");
        assert_eq!(at, Duration::from_millis(1000 + 400));
        assert_eq!(end.speech_ended_at, sim.start + Duration::from_millis(1000));
    }

    #[test]
    fn interim_only_asks_for_finalize_once_and_waits_for_final_text() {
        let mut sim = Sim::new();
        sim.speak(900);
        sim.detector.interim("we cached the results");
        sim.silence(2000);
        assert_eq!(sim.finalizes().len(), 1);
        assert!(sim.end_of_turn().is_none(), "no final text, no turn end");
        sim.detector.final_text("We cached the results.", false);
        sim.silence(20);
        assert!(
            sim.end_of_turn().is_some(),
            "already quiet for longer than the window"
        );
    }

    #[test]
    fn silence_without_words_never_ends_a_turn() {
        let mut sim = Sim::new();
        sim.speak(200); // a cough
        sim.silence(10_000);
        assert_eq!(
            sim.events,
            [(Duration::from_millis(200 + 200), TurnEvent::RequestFinalize)],
            "the STT is asked once whether it heard words; nothing else"
        );
    }

    #[test]
    fn local_quiet_asks_the_stt_to_finalize_and_its_answer_is_an_endpoint() {
        let mut sim = Sim::new();
        sim.speak(1500);
        sim.detector.interim("I led the database");
        sim.silence(200);
        assert_eq!(
            sim.events,
            [(
                Duration::from_millis(1500 + 200),
                TurnEvent::RequestFinalize
            )],
            "asked once, at the early-finalize quiet, before the STT's own endpointing"
        );
        // The finalize's answer arrives 40 ms later: the reply starts at once, the turn ends
        // at the endpoint window.
        sim.silence(40);
        sim.detector
            .final_text("I led the database migration.", true);
        sim.silence(400);
        let speculated_at = sim.speculated_at();
        assert_eq!(speculated_at, Some(Duration::from_millis(1500 + 260)));
        let (at, end) = sim.end_of_turn().expect("turn ended");
        assert_eq!(end.reason, TurnEndReason::Endpoint);
        assert_eq!(at, Duration::from_millis(1500 + 400));
        assert_eq!(sim.finalizes().len(), 1, "one finalize per pause");
    }

    #[test]
    fn each_pause_after_speech_gets_one_finalize_unless_the_stt_saw_the_endpoint() {
        let mut sim = Sim::new();
        sim.speak(800);
        sim.detector
            .final_text("So the first thing we did was", false);
        sim.silence(300);
        sim.speak(600);
        sim.silence(300);
        let expected = [Duration::from_millis(1000), Duration::from_millis(1900)];
        assert_eq!(sim.finalizes(), expected);
        // The STT's own endpoint came first: nothing to ask.
        sim.speak(400);
        sim.detector.final_text("and then we shipped it.", true);
        sim.silence(300);
        assert_eq!(sim.finalizes(), expected, "no finalize after 2,100 ms");
    }

    #[test]
    fn early_finalize_can_be_turned_off() {
        let mut sim = Sim::new();
        sim.detector = TurnDetector::new(TurnConfig {
            early_finalize_after: Duration::ZERO,
            ..TurnConfig::default()
        });
        sim.speak(600);
        sim.detector.final_text("Yes.", false);
        sim.silence(2000);
        assert!(sim.finalizes().is_empty(), "{:?}", sim.events);
        assert!(
            sim.detector.next_deadline().is_none(),
            "no deadline is left once the turn ended"
        );
        assert_eq!(
            sim.end_of_turn().map(|(at, _)| at),
            Some(Duration::from_millis(600 + 900))
        );
    }

    #[test]
    fn deadlines_match_when_poll_fires() {
        let mut sim = Sim::new();
        sim.speak(500);
        sim.detector.final_text("Done.", true);
        sim.detector
            .voice_frame(sim.now + FRAME, VoiceActivity::Silence);
        let deadline = sim.detector.next_deadline().expect("a deadline");
        assert_eq!(deadline, sim.now + TurnConfig::default().speculative_after);
        assert!(
            sim.detector
                .poll(deadline - Duration::from_millis(1))
                .is_none()
        );
        assert!(matches!(
            sim.detector.poll(deadline),
            Some(TurnEvent::SpeculativeReply { .. })
        ));
        let deadline = sim.detector.next_deadline().expect("the end");
        assert!(matches!(
            sim.detector.poll(deadline),
            Some(TurnEvent::EndOfTurn(_))
        ));
        assert!(sim.detector.next_deadline().is_none());
    }

    #[test]
    fn mid_sentence_heuristic() {
        assert!(ends_mid_sentence("I worked on payments and"));
        assert!(ends_mid_sentence("because"));
        assert!(ends_mid_sentence("We, um"));
        assert!(ends_mid_sentence("no punctuation here"));
        assert!(!ends_mid_sentence("That is all."));
        assert!(!ends_mid_sentence("Does that answer it?"));
        assert!(!ends_mid_sentence("(That is all.)"));
        assert!(!ends_mid_sentence("He said \"ship it.\""));
        assert!(ends_mid_sentence("(and then"));
        assert!(!ends_mid_sentence(""));
    }
}
