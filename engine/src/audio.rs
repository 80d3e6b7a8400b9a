//! Audio helpers of the engine, sans-IO: an energy voice-activity detector and the resamplers
//! between the transport's 48 kHz, the STT's 16 kHz and the TTS's 16/24 kHz.
//!
//! All engine audio is mono signed 16-bit PCM in 20 ms frames (960 samples at 48 kHz).

/// Samples in one 20 ms frame at 48 kHz.
pub const FRAME_48K: usize = 960;

/// Root mean square of a frame, on the i16 scale.
pub fn rms(pcm: &[i16]) -> f64 {
    if pcm.is_empty() {
        return 0.0;
    }
    let sum: f64 = pcm.iter().map(|s| f64::from(*s).powi(2)).sum();
    (sum / pcm.len() as f64).sqrt()
}

/// Energy-based voice activity: a frame is voiced when its RMS is at or above `threshold`;
/// `hangover` frames after speech still count as voiced, bridging the gaps between syllables.
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

    pub fn is_voiced(&mut self, pcm: &[i16]) -> bool {
        if rms(pcm) >= self.threshold {
            self.remaining = self.hangover;
            true
        } else if self.remaining > 0 {
            self.remaining -= 1;
            true
        } else {
            false
        }
    }
}

/// 48 kHz → 16 kHz: a low-pass FIR (windowed sinc, cut-off 7 kHz) and keeping every third
/// sample. Stateful across frames, so frame edges add no clicks.
#[derive(Debug, Clone)]
pub struct Downsampler48To16 {
    taps: Vec<f64>,
    history: Vec<f64>,
    phase: usize,
}

impl Default for Downsampler48To16 {
    fn default() -> Self {
        Self::new()
    }
}

impl Downsampler48To16 {
    pub fn new() -> Self {
        const TAPS: usize = 31;
        let cutoff = 7_000.0 / 48_000.0;
        let middle = (TAPS - 1) as f64 / 2.0;
        let mut taps: Vec<f64> = (0..TAPS)
            .map(|i| {
                let x = i as f64 - middle;
                let sinc = if x == 0.0 {
                    2.0 * cutoff
                } else {
                    (2.0 * std::f64::consts::PI * cutoff * x).sin() / (std::f64::consts::PI * x)
                };
                let window =
                    0.54 - 0.46 * (2.0 * std::f64::consts::PI * i as f64 / (TAPS - 1) as f64).cos();
                sinc * window
            })
            .collect();
        let sum: f64 = taps.iter().sum();
        taps.iter_mut().for_each(|t| *t /= sum);
        Self {
            history: vec![0.0; taps.len()],
            taps,
            phase: 0,
        }
    }

    /// Converts one block of 48 kHz samples; returns the 16 kHz samples it completes.
    pub fn process(&mut self, input: &[i16]) -> Vec<i16> {
        let mut out = Vec::with_capacity(input.len() / 3 + 1);
        for sample in input {
            self.history.rotate_left(1);
            if let Some(last) = self.history.last_mut() {
                *last = f64::from(*sample);
            }
            if self.phase == 0 {
                let value: f64 = self
                    .history
                    .iter()
                    .zip(self.taps.iter().rev())
                    .map(|(h, t)| h * t)
                    .sum();
                out.push(value.round().clamp(-32768.0, 32767.0) as i16);
            }
            self.phase = (self.phase + 1) % 3;
        }
        out
    }
}

/// Integer-ratio upsampling by linear interpolation (16 kHz ×3 or 24 kHz ×2 to 48 kHz),
/// stateful across chunks.
#[derive(Debug, Clone)]
pub struct Upsampler {
    factor: usize,
    last: Option<i16>,
}

impl Upsampler {
    /// An upsampler from `rate` to 48 kHz; `None` when the ratio is not a whole number.
    pub fn to_48k(rate: u32) -> Option<Self> {
        (rate > 0 && 48_000 % rate == 0).then(|| Self {
            factor: (48_000 / rate) as usize,
            last: None,
        })
    }

    pub fn process(&mut self, input: &[i16]) -> Vec<i16> {
        let mut out = Vec::with_capacity(input.len() * self.factor);
        for sample in input {
            let previous = f64::from(self.last.unwrap_or(*sample));
            let current = f64::from(*sample);
            for step in 1..=self.factor {
                let t = step as f64 / self.factor as f64;
                out.push((previous + (current - previous) * t).round() as i16);
            }
            self.last = Some(*sample);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(frequency: f64, rate: f64, samples: usize, amplitude: f64) -> Vec<i16> {
        (0..samples)
            .map(|i| {
                (amplitude * (2.0 * std::f64::consts::PI * frequency * i as f64 / rate).sin())
                    as i16
            })
            .collect()
    }

    #[test]
    fn vad_follows_energy_with_hangover() {
        let mut vad = EnergyVad::new(500.0, 2);
        let loud = tone(300.0, 48_000.0, FRAME_48K, 8000.0);
        let quiet = vec![10i16; FRAME_48K];
        assert!(vad.is_voiced(&loud));
        assert!(vad.is_voiced(&quiet) && vad.is_voiced(&quiet), "hangover");
        assert!(!vad.is_voiced(&quiet));
    }

    #[test]
    fn downsampling_keeps_speech_band_and_removes_aliasing_band() {
        let mut down = Downsampler48To16::new();
        let speech = tone(1000.0, 48_000.0, 48_000, 10_000.0);
        let out = down.process(&speech);
        assert_eq!(out.len(), 16_000);
        assert!((rms(&out[1000..]) - rms(&speech)).abs() / rms(&speech) < 0.05);
        let mut down = Downsampler48To16::new();
        let high = tone(12_000.0, 48_000.0, 48_000, 10_000.0);
        let out = down.process(&high);
        assert!(
            rms(&out[1000..]) < rms(&high) * 0.1,
            "12 kHz would alias to 4 kHz"
        );
    }

    #[test]
    fn downsampling_is_seamless_across_frames() {
        let speech = tone(440.0, 48_000.0, FRAME_48K * 10, 9000.0);
        let whole = Downsampler48To16::new().process(&speech);
        let mut framed = Downsampler48To16::new();
        let pieces: Vec<i16> = speech
            .chunks(FRAME_48K)
            .flat_map(|f| framed.process(f))
            .collect();
        assert_eq!(whole, pieces);
    }

    #[test]
    fn upsampling_multiplies_length_and_keeps_level() {
        let mut up = Upsampler::to_48k(16_000).expect("whole ratio");
        let input = tone(500.0, 16_000.0, 1600, 7000.0);
        let out = up.process(&input);
        assert_eq!(out.len(), 4800);
        assert!((rms(&out) - rms(&input)).abs() / rms(&input) < 0.05);
        assert_eq!(
            Upsampler::to_48k(24_000)
                .expect("whole")
                .process(&[100, 200])
                .len(),
            4
        );
        assert!(Upsampler::to_48k(44_100).is_none());
    }
}
