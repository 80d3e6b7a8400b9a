//! Sans-IO utterance cutting for a recognizer that decodes whole utterances (Whisper).
//!
//! Input: 16 kHz mono PCM in chunks of any size; time is the stream's own sample count, so the
//! word timings built on it are on the same clock as Deepgram's (seconds since the session's
//! first sample). Output: [`Cut`]s telling the shell what to decode and when an endpoint or an
//! utterance end happened.
//!
//! Voice activity is an adaptive energy detector on 20 ms frames: a frame is voiced when its RMS
//! is above both [`MIN_SPEECH_RMS`] and [`NOISE_MARGIN`] × the tracked noise floor, so steady
//! background noise raises the bar instead of reading as endless speech. An utterance starts
//! after [`START_FRAMES`] voiced frames (with [`PRE_ROLL_FRAMES`] of audio before them, so the
//! first consonant is kept), and ends after [`ENDPOINT_SILENCE_FRAMES`] unvoiced frames
//! (the `speech_final` endpoint) or at [`MAX_UTTERANCE_FRAMES`] (a final without endpoint, the
//! utterance goes on). While speech continues, an interim decode of the growing utterance is
//! offered every [`INTERIM_EVERY_FRAMES`]. [`UTTERANCE_END_FRAMES`] of silence after the last
//! voiced frame is the `UtteranceEnd` signal.

use crate::audio::rms;

/// Samples per second of the recognizer's input.
pub const SAMPLE_RATE: u32 = 16_000;
/// Samples in one 20 ms analysis frame.
pub const FRAME: usize = 320;
/// Below this RMS (i16 scale) a frame is never speech.
pub const MIN_SPEECH_RMS: f64 = 300.0;
/// A voiced frame is this many times louder than the noise floor (≈ 8 dB).
pub const NOISE_MARGIN: f64 = 2.5;
/// The first frames (200 ms) only measure the noise floor.
pub const CALIBRATION_FRAMES: u64 = 10;
/// Voiced frames in a row that start an utterance (60 ms).
pub const START_FRAMES: u32 = 3;
/// Audio kept before the first voiced frame (300 ms).
pub const PRE_ROLL_FRAMES: usize = 15;
/// Unvoiced frames that end an utterance with an endpoint (700 ms).
pub const ENDPOINT_SILENCE_FRAMES: u32 = 35;
/// Silence after the last voiced frame that is an utterance end (1 s, like Deepgram's
/// `utterance_end_ms=1000`).
pub const UTTERANCE_END_FRAMES: u32 = 50;
/// Longest utterance decoded at once (25 s; Whisper's window is 30 s).
pub const MAX_UTTERANCE_FRAMES: usize = 1_250;
/// Interim decodes of a growing utterance, at most this often (1.5 s of audio).
pub const INTERIM_EVERY_FRAMES: usize = 75;

/// What the shell should do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Cut {
    /// Voice activity began at `at` seconds.
    SpeechStarted { at: f64 },
    /// Decode the utterance so far for interim text (may be skipped when busy).
    Interim(Utterance),
    /// Decode this utterance for its final text. `speech_final`: it ended at an endpoint.
    Final {
        utterance: Utterance,
        speech_final: bool,
        from_finalize: bool,
    },
    /// [`UTTERANCE_END_FRAMES`] of silence followed the last voiced frame.
    UtteranceEnd,
}

/// One utterance's audio and where it sits on the stream clock.
#[derive(Debug, Clone, PartialEq)]
pub struct Utterance {
    /// Counts utterances of the session; interim and final of one utterance share it.
    pub seq: u64,
    /// Seconds from the start of the stream to `pcm[0]`.
    pub start: f64,
    /// Seconds from the start of the stream to the first voiced frame (after the pre-roll).
    pub onset: f64,
    pub pcm: Vec<i16>,
}

/// See the module docs.
#[derive(Debug)]
pub struct Segmenter {
    pending: Vec<i16>,
    frames_seen: u64,
    noise_floor: f64,
    /// Recent frames before an utterance (pre-roll), oldest first.
    pre_roll: std::collections::VecDeque<Vec<i16>>,
    voiced_run: u32,
    silent_run: u32,
    in_speech: bool,
    utterance: Vec<i16>,
    utterance_start_frame: u64,
    onset_frame: u64,
    since_interim: usize,
    seq: u64,
    /// Voiced audio was heard since the last utterance end was reported.
    end_due: bool,
}

impl Default for Segmenter {
    fn default() -> Self {
        Self::new()
    }
}

impl Segmenter {
    pub fn new() -> Self {
        Self {
            pending: Vec::with_capacity(FRAME),
            frames_seen: 0,
            noise_floor: MIN_SPEECH_RMS / NOISE_MARGIN,
            pre_roll: std::collections::VecDeque::with_capacity(PRE_ROLL_FRAMES + 1),
            voiced_run: 0,
            silent_run: 0,
            in_speech: false,
            utterance: Vec::new(),
            utterance_start_frame: 0,
            onset_frame: 0,
            since_interim: 0,
            seq: 0,
            end_due: false,
        }
    }

    /// Seconds of audio pushed so far.
    pub fn elapsed(&self) -> f64 {
        (self.frames_seen as f64 * FRAME as f64 + self.pending.len() as f64)
            / f64::from(SAMPLE_RATE)
    }

    /// Feeds samples; returns what happened, in order.
    pub fn push(&mut self, samples: &[i16]) -> Vec<Cut> {
        let mut cuts = Vec::new();
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (FRAME - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() == FRAME {
                let frame = std::mem::replace(&mut self.pending, Vec::with_capacity(FRAME));
                self.frame(frame, &mut cuts);
            }
        }
        cuts
    }

    /// The caller asked for a final now (`Finalize`, or the stream is closing): whatever
    /// utterance is open is cut here.
    pub fn finalize(&mut self) -> Vec<Cut> {
        let mut cuts = Vec::new();
        if self.in_speech {
            let mut tail = std::mem::take(&mut self.pending);
            self.utterance.append(&mut tail);
            self.cut_final(false, true, &mut cuts);
        }
        cuts
    }

    fn frame(&mut self, frame: Vec<i16>, cuts: &mut Vec<Cut>) {
        let index = self.frames_seen;
        self.frames_seen += 1;
        let level = rms(&frame);
        if index < CALIBRATION_FRAMES {
            // The floor starts at the quietest of the first frames; none of them starts speech.
            self.noise_floor = if index == 0 {
                level
            } else {
                self.noise_floor.min(level)
            };
            self.pre_roll.push_back(frame);
            return;
        }
        let voiced = level >= MIN_SPEECH_RMS && level >= self.noise_floor * NOISE_MARGIN;
        if !voiced {
            // Follow the floor down fast and up slowly (speech tails must not lift it much).
            let rate = if level < self.noise_floor { 0.2 } else { 0.02 };
            self.noise_floor += (level - self.noise_floor) * rate;
        }

        if self.in_speech {
            self.utterance.extend_from_slice(&frame);
            self.since_interim += 1;
            if voiced {
                self.silent_run = 0;
            } else {
                self.silent_run += 1;
            }
            if self.silent_run >= ENDPOINT_SILENCE_FRAMES {
                self.cut_final(true, false, cuts);
            } else if self.utterance.len() >= MAX_UTTERANCE_FRAMES * FRAME {
                self.cut_final(false, false, cuts);
                // The utterance goes on in a new one that starts right here.
                self.in_speech = true;
                self.utterance_start_frame = index + 1;
                self.onset_frame = index + 1;
            } else if self.since_interim >= INTERIM_EVERY_FRAMES {
                self.since_interim = 0;
                cuts.push(Cut::Interim(Utterance {
                    seq: self.seq,
                    start: self.frame_seconds(self.utterance_start_frame),
                    onset: self.frame_seconds(self.onset_frame),
                    pcm: self.utterance.clone(),
                }));
            }
            return;
        }

        // Not in speech: count silence towards the utterance end, watch for a start.
        if voiced {
            self.voiced_run += 1;
        } else {
            self.voiced_run = 0;
            self.silent_run = self.silent_run.saturating_add(1);
            if self.end_due && self.silent_run >= UTTERANCE_END_FRAMES {
                self.end_due = false;
                cuts.push(Cut::UtteranceEnd);
            }
        }
        self.pre_roll.push_back(frame);
        while self.pre_roll.len() > PRE_ROLL_FRAMES + START_FRAMES as usize {
            self.pre_roll.pop_front();
        }
        if self.voiced_run >= START_FRAMES {
            let first_voiced = index + 1 - u64::from(START_FRAMES);
            let kept = self.pre_roll.len() as u64;
            self.utterance_start_frame = index + 1 - kept;
            self.utterance = self.pre_roll.drain(..).flatten().collect();
            self.onset_frame = first_voiced;
            self.in_speech = true;
            self.silent_run = 0;
            self.voiced_run = 0;
            self.since_interim = 0;
            self.end_due = true;
            cuts.push(Cut::SpeechStarted {
                at: self.frame_seconds(first_voiced),
            });
        }
    }

    fn cut_final(&mut self, speech_final: bool, from_finalize: bool, cuts: &mut Vec<Cut>) {
        let pcm = std::mem::take(&mut self.utterance);
        cuts.push(Cut::Final {
            utterance: Utterance {
                seq: self.seq,
                start: self.frame_seconds(self.utterance_start_frame),
                onset: self.frame_seconds(self.onset_frame),
                pcm,
            },
            speech_final,
            from_finalize,
        });
        self.seq += 1;
        self.in_speech = false;
        self.since_interim = 0;
        self.voiced_run = 0;
        self.pre_roll.clear();
        // `silent_run` keeps counting from the endpoint towards the utterance end.
    }

    fn frame_seconds(&self, frame: u64) -> f64 {
        frame as f64 * FRAME as f64 / f64::from(SAMPLE_RATE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 20 ms frames of a tone at `amplitude` (speech stand-in) or of silence.
    fn frames(count: usize, amplitude: f64) -> Vec<i16> {
        (0..count * FRAME)
            .map(|i| {
                let t = i as f64 / f64::from(SAMPLE_RATE);
                ((t * 220.0 * std::f64::consts::TAU).sin() * amplitude) as i16
            })
            .collect()
    }

    fn noise(count: usize, amplitude: f64, seed: u64) -> Vec<i16> {
        let mut x = seed | 1;
        (0..count * FRAME)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (((x % 2001) as f64 / 1000.0 - 1.0) * amplitude) as i16
            })
            .collect()
    }

    fn mix(a: &[i16], b: &[i16]) -> Vec<i16> {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| x.saturating_add(y))
            .collect()
    }

    fn finals(cuts: &[Cut]) -> Vec<(&Utterance, bool)> {
        cuts.iter()
            .filter_map(|c| match c {
                Cut::Final {
                    utterance,
                    speech_final,
                    ..
                } => Some((utterance, *speech_final)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn speech_then_a_pause_is_one_utterance_with_an_endpoint_then_an_utterance_end() {
        let mut s = Segmenter::new();
        let mut cuts = s.push(&frames(50, 0.0));
        cuts.extend(s.push(&frames(100, 8_000.0))); // 2 s of "speech" from 1.0 s
        cuts.extend(s.push(&frames(100, 0.0)));
        let started: Vec<f64> = cuts
            .iter()
            .filter_map(|c| match c {
                Cut::SpeechStarted { at } => Some(*at),
                _ => None,
            })
            .collect();
        assert_eq!(started, vec![1.0]);
        let f = finals(&cuts);
        assert_eq!(f.len(), 1);
        let (utt, speech_final) = f[0];
        assert!(speech_final);
        // Pre-roll: the utterance starts 300 ms before the speech.
        assert!((utt.start - 0.7).abs() < 1e-9, "start {}", utt.start);
        assert!((utt.onset - 1.0).abs() < 1e-9, "onset {}", utt.onset);
        let seconds = utt.pcm.len() as f64 / f64::from(SAMPLE_RATE);
        assert!((2.9..3.1).contains(&seconds), "{seconds} s");
        let end_at = cuts.iter().position(|c| *c == Cut::UtteranceEnd);
        let final_at = cuts.iter().position(|c| matches!(c, Cut::Final { .. }));
        assert!(end_at.expect("utterance end") > final_at.expect("final"));
    }

    #[test]
    fn long_speech_gets_interims_on_the_growing_utterance() {
        let mut s = Segmenter::new();
        let mut cuts = s.push(&frames(20, 0.0));
        cuts.extend(s.push(&frames(300, 8_000.0)));
        let interims: Vec<usize> = cuts
            .iter()
            .filter_map(|c| match c {
                Cut::Interim(u) => Some(u.pcm.len()),
                _ => None,
            })
            .collect();
        assert!(interims.len() >= 3, "{interims:?}");
        assert!(interims.windows(2).all(|w| w[0] < w[1]), "{interims:?}");
        assert!(finals(&cuts).is_empty());
    }

    #[test]
    fn steady_background_noise_is_not_speech_but_speech_over_it_is() {
        let mut s = Segmenter::new();
        let bed = noise(400, 1_500.0, 7);
        let mut cuts = s.push(&bed[..150 * FRAME]);
        assert!(cuts.is_empty(), "noise alone made {} cuts", cuts.len());
        let speech = mix(&frames(100, 9_000.0), &bed[150 * FRAME..250 * FRAME]);
        cuts.extend(s.push(&speech));
        cuts.extend(s.push(&bed[250 * FRAME..]));
        let f = finals(&cuts);
        assert_eq!(f.len(), 1, "{:?}", f.len());
        assert!(f[0].1);
    }

    #[test]
    fn finalize_cuts_the_open_utterance_and_chunk_sizes_do_not_matter() {
        let audio = [frames(20, 0.0), frames(60, 8_000.0)].concat();
        let mut a = Segmenter::new();
        let mut cuts_a = a.push(&audio);
        cuts_a.extend(a.finalize());
        let mut b = Segmenter::new();
        let mut cuts_b = Vec::new();
        for chunk in audio.chunks(123) {
            cuts_b.extend(b.push(chunk));
        }
        cuts_b.extend(b.finalize());
        let fa = finals(&cuts_a);
        assert_eq!(fa.len(), 1);
        assert!(!fa[0].1, "finalize is not an endpoint");
        // Chunked feeding leaves up to a frame unanalysed, which finalize appends.
        assert_eq!(cuts_a.len(), cuts_b.len());
        assert_eq!(finals(&cuts_b)[0].0.start, fa[0].0.start);
        assert!(a.finalize().is_empty(), "nothing left to finalize");
    }

    #[test]
    fn a_very_long_utterance_is_cut_at_the_limit_without_an_endpoint() {
        let mut s = Segmenter::new();
        let mut cuts = s.push(&frames(20, 0.0));
        cuts.extend(s.push(&frames(MAX_UTTERANCE_FRAMES + 200, 8_000.0)));
        let f = finals(&cuts);
        assert_eq!(f.len(), 1);
        assert!(!f[0].1);
        assert_eq!(f[0].0.pcm.len(), MAX_UTTERANCE_FRAMES * FRAME);
        let more = s.finalize();
        let g = finals(&more);
        assert_eq!(g.len(), 1, "the rest continues as the next utterance");
        let expected_start = f[0].0.start + MAX_UTTERANCE_FRAMES as f64 * 0.02;
        assert!(
            (g[0].0.start - expected_start).abs() < 0.021,
            "{}",
            g[0].0.start
        );
    }
}
