//! `BargeIn`: decides when candidate speech during playback is a real interruption.
//!
//! Sans-IO. While the interviewer speaks, the interview actor feeds it local voice activity per
//! 20 ms frame and the STT's interim/final words. It interrupts when the candidate has been
//! voiced long enough *and* either said a word that is not a backchannel ("mm-hm", "yeah",
//! "right", ...) or kept talking for longer than any backchannel lasts. Short noises and
//! backchannels never interrupt. Stopping audio within one frame is the caller's job: it flushes
//! the pacer as soon as this returns [`BargeInDecision::Interrupt`].

use std::time::Duration;

/// Thresholds of barge-in detection (configuration; see the README for defaults).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BargeInConfig {
    /// Voiced time (allowing `hangover` gaps) before anything can interrupt.
    #[serde(with = "humantime_serde")]
    pub min_voiced: Duration,
    /// Voiced time after which speech interrupts even before the STT has produced words.
    #[serde(with = "humantime_serde")]
    pub voiced_without_words: Duration,
    /// Unvoiced gap that does not break a voiced run.
    #[serde(with = "humantime_serde")]
    pub hangover: Duration,
    /// Words and phrases that acknowledge rather than interrupt.
    pub backchannels: Vec<String>,
}

impl BargeInConfig {
    /// Checks that speech can interrupt at all and that short noises cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.min_voiced.is_zero() {
            return Err("barge_in.min_voiced must be positive".into());
        }
        if self.voiced_without_words < self.min_voiced {
            return Err(
                "barge_in.voiced_without_words must be at least barge_in.min_voiced".into(),
            );
        }
        Ok(())
    }
}

impl Default for BargeInConfig {
    fn default() -> Self {
        Self {
            min_voiced: Duration::from_millis(200),
            voiced_without_words: Duration::from_millis(900),
            hangover: Duration::from_millis(100),
            backchannels: [
                "mm", "mhm", "mm-hm", "mm-hmm", "uh-huh", "uh", "um", "hmm", "yeah", "yes", "yep",
                "right", "okay", "ok", "sure", "i see", "got it", "ah", "oh", "nice", "cool",
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        }
    }
}

/// What the detector concluded from the latest input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BargeInDecision {
    /// Stop playback now, cancel the reply, listen.
    Interrupt,
    /// The candidate only acknowledged; keep speaking.
    Backchannel,
}

/// Barge-in state for one stretch of interviewer speech.
#[derive(Debug)]
pub struct BargeIn {
    config: BargeInConfig,
    playing: bool,
    voiced_run: Duration,
    gap: Duration,
    /// Words heard from the STT during this playback.
    words: Vec<String>,
    decided: bool,
}

impl BargeIn {
    pub fn new(config: BargeInConfig) -> Self {
        Self {
            config,
            playing: false,
            voiced_run: Duration::ZERO,
            gap: Duration::ZERO,
            words: Vec::new(),
            decided: false,
        }
    }

    /// Interviewer audio started: arm the detector.
    pub fn start_playback(&mut self) {
        self.playing = true;
        self.voiced_run = Duration::ZERO;
        self.gap = Duration::ZERO;
        self.words.clear();
        self.decided = false;
    }

    /// Interviewer audio ended (finished or interrupted): disarm.
    pub fn stop_playback(&mut self) {
        self.playing = false;
    }

    pub fn is_playing(&self) -> bool {
        self.playing
    }

    fn normalize(word: &str) -> String {
        word.trim_matches(|c: char| !c.is_alphanumeric() && c != '-' && c != '\'')
            .to_lowercase()
    }

    fn is_backchannel(&self, text: &str) -> bool {
        let normalized: Vec<String> = text
            .split_whitespace()
            .map(Self::normalize)
            .filter(|w| !w.is_empty())
            .collect();
        if normalized.is_empty() {
            return true;
        }
        let phrase = normalized.join(" ");
        if self.config.backchannels.contains(&phrase) {
            return true;
        }
        normalized
            .iter()
            .all(|word| self.config.backchannels.iter().any(|b| b == word))
    }

    /// One frame of local voice activity.
    pub fn voice_frame(&mut self, frame: Duration, voiced: bool) -> Option<BargeInDecision> {
        if !self.playing || self.decided {
            return None;
        }
        if voiced {
            self.voiced_run += frame + self.gap;
            self.gap = Duration::ZERO;
        } else if self.voiced_run > Duration::ZERO {
            self.gap += frame;
            if self.gap > self.config.hangover {
                self.voiced_run = Duration::ZERO;
                self.gap = Duration::ZERO;
                self.words.clear();
            }
        }
        self.decide()
    }

    /// The STT's current words for the speech during playback (interim or final text).
    pub fn transcript(&mut self, text: &str) -> Option<BargeInDecision> {
        if !self.playing || self.decided {
            return None;
        }
        self.words = text.split_whitespace().map(str::to_owned).collect();
        if !self.words.is_empty()
            && self.is_backchannel(text)
            && self.voiced_run < self.config.voiced_without_words
        {
            return Some(BargeInDecision::Backchannel);
        }
        self.decide()
    }

    fn decide(&mut self) -> Option<BargeInDecision> {
        if self.voiced_run < self.config.min_voiced {
            return None;
        }
        let said_something = !self.words.is_empty() && !self.is_backchannel(&self.words.join(" "));
        if said_something || self.voiced_run >= self.config.voiced_without_words {
            self.decided = true;
            self.playing = false;
            return Some(BargeInDecision::Interrupt);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: Duration = Duration::from_millis(20);

    fn armed() -> BargeIn {
        let mut barge_in = BargeIn::new(BargeInConfig::default());
        barge_in.start_playback();
        barge_in
    }

    fn run(barge_in: &mut BargeIn, ms: u64, voiced: bool) -> Option<BargeInDecision> {
        let mut decision = None;
        for _ in 0..ms / 20 {
            if let Some(d) = barge_in.voice_frame(FRAME, voiced) {
                decision = Some(d);
            }
        }
        decision
    }

    #[test]
    fn real_words_interrupt_once_voiced_long_enough() {
        let mut b = armed();
        assert_eq!(run(&mut b, 100, true), None, "too short yet");
        assert_eq!(
            b.transcript("Actually, can I"),
            None,
            "words alone wait for min_voiced"
        );
        assert_eq!(run(&mut b, 100, true), Some(BargeInDecision::Interrupt));
        assert!(!b.is_playing());
        assert_eq!(run(&mut b, 500, true), None, "decides once");
    }

    #[test]
    fn backchannels_never_interrupt() {
        for phrase in [
            "mm-hm",
            "Yeah.",
            "uh-huh",
            "right right",
            "okay",
            "I see",
            "Got it.",
        ] {
            let mut b = armed();
            run(&mut b, 400, true);
            assert_eq!(
                b.transcript(phrase),
                Some(BargeInDecision::Backchannel),
                "{phrase}"
            );
            assert_eq!(run(&mut b, 100, false), None);
            assert!(b.is_playing(), "{phrase} kept the interviewer speaking");
        }
    }

    #[test]
    fn backchannel_followed_by_words_interrupts() {
        let mut b = armed();
        run(&mut b, 300, true);
        assert_eq!(b.transcript("yeah"), Some(BargeInDecision::Backchannel));
        assert_eq!(
            b.transcript("yeah but what about"),
            Some(BargeInDecision::Interrupt)
        );
    }

    #[test]
    fn long_speech_interrupts_before_the_stt_has_words() {
        let mut b = armed();
        assert_eq!(run(&mut b, 880, true), None);
        assert_eq!(run(&mut b, 40, true), Some(BargeInDecision::Interrupt));
    }

    #[test]
    fn short_noises_with_gaps_reset_and_do_not_interrupt() {
        let mut b = armed();
        for _ in 0..20 {
            run(&mut b, 160, true); // below min_voiced
            run(&mut b, 200, false); // longer than the hangover: the run resets
        }
        assert!(b.is_playing());
        // Brief gaps within the hangover do not reset the run.
        let mut b = armed();
        run(&mut b, 120, true);
        run(&mut b, 60, false);
        assert_eq!(b.transcript("wait"), None);
        assert_eq!(run(&mut b, 40, true), Some(BargeInDecision::Interrupt));
    }

    #[test]
    fn nothing_happens_when_not_playing() {
        let mut b = BargeIn::new(BargeInConfig::default());
        assert_eq!(run(&mut b, 2000, true), None);
        assert_eq!(b.transcript("hello there interviewer"), None);
        b.start_playback();
        b.stop_playback();
        assert_eq!(run(&mut b, 2000, true), None);
    }
}
