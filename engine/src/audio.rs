//! Audio helpers of the engine, sans-IO: an energy voice-activity detector and the one sample-rate
//! conversion the Opus codec cannot do for us.
//!
//! All engine audio is mono signed 16-bit PCM in 20 ms frames at an Opus rate
//! ([`OpusRate`]): candidate audio arrives at 16 kHz, decoded at that rate by the transport,
//! and the interviewer's voice goes to the encoder at the rate its synthesizer speaks. Only a
//! synthesizer whose rate the codec does not take (ElevenLabs' `pcm_22050`/`pcm_44100`,
//! espeak-ng's 22.05 kHz) is converted, by [`RateConverter`] (the `rubato` crate's FFT
//! resampler), to the next Opus rate up.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

use crate::transport::OpusRate;

/// Root mean square of a frame, on the i16 scale.
pub fn rms(pcm: &[i16]) -> f64 {
    if pcm.is_empty() {
        return 0.0;
    }
    let sum: f64 = pcm.iter().map(|s| f64::from(*s).powi(2)).sum();
    (sum / pcm.len() as f64).sqrt()
}

/// What the VAD made of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoiceActivity {
    /// Speech energy: the candidate is talking in this frame.
    Speech,
    /// No speech energy, but within the hangover after speech: still counted as voiced (a gap
    /// between syllables), never as the end of speech.
    Hangover,
    Silence,
}

impl VoiceActivity {
    /// Speech or its hangover.
    pub fn is_voiced(self) -> bool {
        self != Self::Silence
    }

    /// The frame carried speech energy (speech ends with the last such frame, not with the
    /// hangover after it).
    pub fn is_speech(self) -> bool {
        self == Self::Speech
    }

    /// Speech or silence, no hangover (tests' frame-by-frame scripts).
    #[cfg(test)]
    pub fn speech_if(speech: bool) -> Self {
        if speech { Self::Speech } else { Self::Silence }
    }
}

/// Energy-based voice activity: a frame is speech when its RMS is at or above `threshold`;
/// `hangover` frames after speech still count as voiced, bridging the gaps between syllables,
/// but are told apart ([`VoiceActivity::Hangover`]) so that the end of speech is the last frame
/// with speech energy.
///
/// RMS does not depend on the sample rate for band-limited speech (the transport's 16 kHz
/// frames carry the same speech energy as 48 kHz ones), and the hangover counts 20 ms frames,
/// so the thresholds hold at any rate.
#[derive(Debug, Clone)]
pub struct EnergyVad {
    threshold: f64,
    hangover: u32,
    remaining: u32,
}

impl EnergyVad {
    pub fn new(threshold: f64, hangover: u32) -> Self {
        Self {
            threshold,
            hangover,
            remaining: 0,
        }
    }

    pub fn classify(&mut self, pcm: &[i16]) -> VoiceActivity {
        if rms(pcm) >= self.threshold {
            self.remaining = self.hangover;
            VoiceActivity::Speech
        } else if self.remaining > 0 {
            self.remaining -= 1;
            VoiceActivity::Hangover
        } else {
            VoiceActivity::Silence
        }
    }
}

/// A source rate the engine cannot convert: zero, above 192 kHz, or so far from any simple
/// ratio to the target that the FFT blocks would be impractically long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unsupported sample rate: {0} Hz")]
pub struct UnsupportedRate(pub u32);

/// Highest source rate accepted.
const MAX_SOURCE_HZ: u32 = 192_000;
/// Longest FFT input block accepted (the source rate over its GCD with the target): 147 for
/// 22.05 → 24 kHz and 44.1 → 48 kHz.
const MAX_BLOCK: usize = 2_048;

/// Streaming conversion of one stream of PCM from a source rate to an Opus rate. The same rate
/// passes through untouched; any other goes through `rubato`'s synchronous FFT resampler
/// (fixed ratio, anti-aliased), fed in 20 ms blocks. Its delay is trimmed from the front and
/// [`RateConverter::finish`] flushes the tail, so the output has exactly the source's duration.
pub struct RateConverter {
    to: OpusRate,
    fft: Option<FftStage>,
}

impl std::fmt::Debug for RateConverter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateConverter")
            .field("to", &self.to)
            .field("converting", &self.fft.is_some())
            .finish()
    }
}

struct FftStage {
    from: u32,
    to: u32,
    resampler: Fft<f32>,
    /// Source samples not yet converted (scaled to ±1.0).
    input: Vec<f32>,
    output: Vec<f32>,
    /// Output samples still to drop (the resampler's delay).
    skip: usize,
    /// Source samples pushed and output samples emitted, for the exact length at the end.
    pushed: u64,
    emitted: u64,
}

impl RateConverter {
    /// A converter from `from_hz` to `to`.
    pub fn new(from_hz: u32, to: OpusRate) -> Result<Self, UnsupportedRate> {
        if from_hz == 0 || from_hz > MAX_SOURCE_HZ {
            return Err(UnsupportedRate(from_hz));
        }
        if from_hz == to.hz() {
            return Ok(Self { to, fft: None });
        }
        let gcd = gcd(from_hz, to.hz()) as usize;
        let block = from_hz as usize / gcd;
        if block > MAX_BLOCK {
            return Err(UnsupportedRate(from_hz));
        }
        // About 20 ms of input per call, a whole number of blocks.
        let chunk = (from_hz as usize / 50).div_ceil(block).max(1) * block;
        let resampler = Fft::<f32>::new(
            from_hz as usize,
            to.hz() as usize,
            chunk,
            1,
            FixedSync::Input,
        )
        .map_err(|_| UnsupportedRate(from_hz))?;
        let skip = resampler.output_delay();
        let output = vec![0.0; resampler.output_frames_max()];
        Ok(Self {
            to,
            fft: Some(FftStage {
                from: from_hz,
                to: to.hz(),
                resampler,
                input: Vec::with_capacity(chunk * 2),
                output,
                skip,
                pushed: 0,
                emitted: 0,
            }),
        })
    }

    /// The rate of the output.
    pub fn target(&self) -> OpusRate {
        self.to
    }

    /// Converts `pcm` and appends what is ready to `out` (a converting stage holds back up to
    /// one block plus its delay until more comes or [`Self::finish`]).
    pub fn push(&mut self, pcm: &[i16], out: &mut Vec<i16>) {
        let Some(stage) = self.fft.as_mut() else {
            out.extend_from_slice(pcm);
            return;
        };
        stage
            .input
            .extend(pcm.iter().map(|&s| f32::from(s) / 32_768.0));
        stage.pushed += pcm.len() as u64;
        stage.drain(out, false);
    }

    /// End of the stream: flushes the held-back tail, so the whole output lasts as long as the
    /// whole input. The converter is then ready for a new stream.
    pub fn finish(&mut self, out: &mut Vec<i16>) {
        if let Some(stage) = self.fft.as_mut() {
            stage.drain(out, true);
        }
    }

    /// Converts a whole clip at once.
    pub fn convert_all(
        pcm: &[i16],
        from_hz: u32,
        to: OpusRate,
    ) -> Result<Vec<i16>, UnsupportedRate> {
        let mut converter = Self::new(from_hz, to)?;
        let mut out = Vec::with_capacity(pcm.len() * to.hz() as usize / from_hz as usize + 1);
        converter.push(pcm, &mut out);
        converter.finish(&mut out);
        Ok(out)
    }
}

impl FftStage {
    /// Runs whole chunks (with `flush`, zero-padded ones until the output has caught up with
    /// the input) and appends the converted samples to `out`.
    fn drain(&mut self, out: &mut Vec<i16>, flush: bool) {
        let expected = self.pushed * u64::from(self.to) / u64::from(self.from);
        let mut consumed = 0;
        loop {
            let need = self.resampler.input_frames_next();
            let available = self.input.len() - consumed;
            if available < need {
                if !flush || self.emitted >= expected {
                    break;
                }
                self.input.resize(consumed + need, 0.0);
            }
            let input = &self.input[consumed..consumed + need];
            let capacity = self.output.len();
            let produced = InterleavedSlice::new(input, 1, need)
                .ok()
                .zip(InterleavedSlice::new_mut(&mut self.output, 1, capacity).ok())
                .and_then(|(input, mut output)| {
                    self.resampler
                        .process_into_buffer(&input, &mut output, None)
                        .ok()
                });
            let Some((_, written)) = produced else {
                // Cannot happen with the sizes above; stop rather than loop.
                break;
            };
            consumed += need;
            let fresh = &self.output[..written];
            let dropped = self.skip.min(fresh.len());
            self.skip -= dropped;
            let mut fresh = &fresh[dropped..];
            if flush {
                let room = expected.saturating_sub(self.emitted) as usize;
                fresh = &fresh[..fresh.len().min(room)];
            }
            self.emitted += fresh.len() as u64;
            out.extend(
                fresh
                    .iter()
                    .map(|&x| (x * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16),
            );
        }
        self.input.drain(..consumed.min(self.input.len()));
        if flush {
            self.input.clear();
            self.resampler.reset();
            self.skip = self.resampler.output_delay();
            self.pushed = 0;
            self.emitted = 0;
        }
    }
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// One utterance of the interviewer's voice on its way to the encoder: the synthesizer's chunks
/// at whatever rate they come, out at one Opus rate for the whole utterance. The first chunk
/// picks it (the lowest Opus rate at or above the chunk's, so 16 and 24 kHz pass untouched and
/// 22.05/44.1 kHz become 24/48 kHz); a later chunk at another rate (a fallback synthesizer took
/// over) is converted to it.
#[derive(Debug, Default)]
pub struct UtteranceAudio {
    converter: Option<(u32, RateConverter)>,
}

impl UtteranceAudio {
    pub fn new() -> Self {
        Self::default()
    }

    /// The utterance's Opus rate, once its first chunk came.
    pub fn rate(&self) -> Option<OpusRate> {
        self.converter.as_ref().map(|(_, c)| c.target())
    }

    /// Appends `pcm` (at `hz`) to `out` at the utterance's rate, which it returns. A chunk at an
    /// unsupported rate is refused and the utterance is unchanged.
    pub fn push(
        &mut self,
        pcm: &[i16],
        hz: u32,
        out: &mut Vec<i16>,
    ) -> Result<OpusRate, UnsupportedRate> {
        let rate = self.rate().unwrap_or_else(|| OpusRate::at_least(hz));
        match &mut self.converter {
            Some((from, converter)) if *from == hz => converter.push(pcm, out),
            slot => {
                let mut converter = RateConverter::new(hz, rate)?;
                if let Some((_, mut previous)) = slot.take() {
                    previous.finish(out);
                }
                converter.push(pcm, out);
                *slot = Some((hz, converter));
            }
        }
        Ok(rate)
    }

    /// The synthesis is over: appends what the converter still holds.
    pub fn finish(&mut self, out: &mut Vec<i16>) {
        if let Some((_, converter)) = self.converter.as_mut() {
            converter.finish(out);
        }
    }
}

/// Signals and measurements for the audio tests of this crate.
#[cfg(test)]
pub(crate) mod testing {
    /// `samples` of a sine of `frequency` Hz at `rate`, with peak `amplitude`.
    pub fn tone_at(frequency: f64, rate: u32, samples: usize, amplitude: f64) -> Vec<i16> {
        (0..samples)
            .map(|i| {
                (amplitude
                    * (2.0 * std::f64::consts::PI * frequency * i as f64 / f64::from(rate)).sin())
                    as i16
            })
            .collect()
    }

    /// The frequency of a clean tone, from its rising zero crossings.
    pub fn zero_crossing_hz(pcm: &[i16], rate: u32) -> f64 {
        let crossings: Vec<usize> = pcm
            .windows(2)
            .enumerate()
            .filter(|(_, w)| w[0] < 0 && w[1] >= 0)
            .map(|(i, _)| i)
            .collect();
        match (crossings.first(), crossings.last()) {
            (Some(first), Some(last)) if last > first => {
                (crossings.len() - 1) as f64 * f64::from(rate) / (last - first) as f64
            }
            _ => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{tone_at, zero_crossing_hz};
    use super::*;

    #[test]
    fn vad_follows_energy_with_hangover() {
        let frame = OpusRate::Hz16000.frame_samples();
        let mut vad = EnergyVad::new(500.0, 2);
        let loud = tone_at(300.0, 16_000, frame, 8000.0);
        let quiet = vec![10i16; frame];
        assert_eq!(vad.classify(&loud), VoiceActivity::Speech);
        for _ in 0..2 {
            let hangover = vad.classify(&quiet);
            assert_eq!(hangover, VoiceActivity::Hangover);
            assert!(hangover.is_voiced() && !hangover.is_speech());
        }
        assert_eq!(vad.classify(&quiet), VoiceActivity::Silence);
        // Speech again re-arms the hangover.
        assert_eq!(vad.classify(&loud), VoiceActivity::Speech);
        assert_eq!(vad.classify(&quiet), VoiceActivity::Hangover);
    }

    #[test]
    fn a_speech_band_tone_has_the_same_level_at_16_and_48_khz() {
        // The VAD threshold was tuned on 48 kHz frames; at the 16 kHz the engine now gets,
        // the same voice measures the same.
        let at_48 = rms(&tone_at(300.0, 48_000, 960, 8000.0));
        let at_16 = rms(&tone_at(300.0, 16_000, 320, 8000.0));
        assert!((at_48 - at_16).abs() / at_48 < 0.01, "{at_48} vs {at_16}");
    }

    /// Pushes `input` in pieces of `piece` samples, then finishes the stream.
    fn stream(converter: &mut RateConverter, input: &[i16], piece: usize) -> Vec<i16> {
        let mut out = Vec::new();
        for chunk in input.chunks(piece) {
            converter.push(chunk, &mut out);
        }
        converter.finish(&mut out);
        out
    }

    #[test]
    fn the_codec_rates_pass_through_untouched() {
        let input = tone_at(440.0, 24_000, 4_800, 7000.0);
        for (hz, rate) in [(16_000, OpusRate::Hz16000), (24_000, OpusRate::Hz24000)] {
            let mut converter = RateConverter::new(hz, rate).expect("supported");
            assert_eq!(stream(&mut converter, &input, 480), input);
        }
    }

    #[test]
    fn converting_22_05_and_44_1_khz_keeps_duration_pitch_and_level() {
        for (hz, rate) in [(22_050, OpusRate::Hz24000), (44_100, OpusRate::Hz48000)] {
            let input = tone_at(1_000.0, hz, hz as usize, 10_000.0);
            let out = RateConverter::convert_all(&input, hz, rate).expect("supported");
            assert_eq!(
                out.len(),
                rate.hz() as usize,
                "{hz}: one second in, one second out"
            );
            let middle = &out[out.len() / 10..out.len() * 9 / 10];
            let pitch = zero_crossing_hz(middle, rate.hz());
            assert!((pitch - 1_000.0).abs() < 2.0, "{hz}: {pitch} Hz");
            let level = rms(middle) / rms(&input);
            assert!((level - 1.0).abs() < 0.02, "{hz}: level ratio {level}");
        }
    }

    #[test]
    fn streaming_in_odd_pieces_gives_the_same_samples_as_one_clip() {
        let input = tone_at(700.0, 22_050, 22_050, 9_000.0);
        let whole = RateConverter::convert_all(&input, 22_050, OpusRate::Hz24000).expect("ok");
        let mut converter = RateConverter::new(22_050, OpusRate::Hz24000).expect("ok");
        assert_eq!(stream(&mut converter, &input, 997), whole);
        // After a finish the converter starts a new stream from scratch.
        assert_eq!(stream(&mut converter, &input, input.len()), whole);
    }

    #[test]
    fn a_converted_tone_holds_no_alias_of_content_above_the_target_band() {
        // 44.1 → 48 kHz is an upsampling; 48 kHz content cannot alias. Downsampling a 96 kHz
        // source with a 30 kHz tone to 48 kHz must remove it, not fold it to 18 kHz.
        let input = tone_at(30_000.0, 96_000, 96_000, 10_000.0);
        let out = RateConverter::convert_all(&input, 96_000, OpusRate::Hz48000).expect("ok");
        assert_eq!(out.len(), 48_000);
        assert!(
            rms(&out[4_800..43_200]) < 100.0,
            "rms {}",
            rms(&out[4_800..43_200])
        );
    }

    #[test]
    fn impossible_rates_are_refused_not_panicked_on() {
        for hz in [0, 200_000, 22_051] {
            assert_eq!(
                RateConverter::new(hz, OpusRate::Hz24000).err(),
                Some(UnsupportedRate(hz))
            );
        }
        let mut utterance = UtteranceAudio::new();
        let mut out = Vec::new();
        assert!(utterance.push(&[1, 2, 3], 0, &mut out).is_err());
        assert_eq!(utterance.rate(), None, "a refused chunk sets nothing");
    }

    #[test]
    fn an_utterance_keeps_its_first_rate_when_a_fallback_speaks_at_another() {
        let mut utterance = UtteranceAudio::new();
        let mut out = Vec::new();
        let first = tone_at(500.0, 24_000, 12_000, 8_000.0);
        assert_eq!(
            utterance.push(&first, 24_000, &mut out),
            Ok(OpusRate::Hz24000)
        );
        assert_eq!(out.len(), 12_000, "24 kHz passes untouched");
        // The fallback speaks at 22.05 kHz: converted to the utterance's 24 kHz.
        let second = tone_at(500.0, 22_050, 11_025, 8_000.0);
        assert_eq!(
            utterance.push(&second, 22_050, &mut out),
            Ok(OpusRate::Hz24000)
        );
        utterance.finish(&mut out);
        assert_eq!(out.len(), 24_000, "one second in all");
        let tail = &out[14_000..22_000];
        assert!((zero_crossing_hz(tail, 24_000) - 500.0).abs() < 2.0);
    }

    #[test]
    fn the_first_chunk_picks_the_lowest_opus_rate_that_keeps_it() {
        for (hz, rate) in [
            (16_000, OpusRate::Hz16000),
            (22_050, OpusRate::Hz24000),
            (24_000, OpusRate::Hz24000),
            (44_100, OpusRate::Hz48000),
        ] {
            let mut utterance = UtteranceAudio::new();
            let mut out = Vec::new();
            assert_eq!(utterance.push(&[0; 100], hz, &mut out), Ok(rate), "{hz}");
        }
    }
}
