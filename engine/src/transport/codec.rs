//! Opus for the transport: a mono encoder and decoder with 16-bit PCM in and out at any of the
//! codec's own rates ([`OpusRate`]), and a packet-duration parser.
//!
//! The codec resamples for us: a decoder made at 16 kHz hands the speech-to-text its 16 kHz
//! directly, and an encoder made at the text-to-speech's rate takes its PCM as it comes, so the
//! engine has no resampler of its own on either path (the RTP clock stays 48 kHz whatever the
//! PCM rate, RFC 7587 §4.1).
//!
//! The codec is `opus-rs`, a pure-Rust port of libopus 1.6: no C library, no cmake, nothing to
//! install, so `cargo run` works on a machine with only the Rust toolchain (issue 10). The
//! engine's `libopus` feature swaps in the C libopus (the `opus` crate, built with cmake) instead,
//! for load runs where its lower per-frame cost matters; either way exactly one Opus
//! implementation is in the binary, and this module is the only place that knows which.
//!
//! [`packet_samples`] reads a packet's duration from its table-of-contents byte (RFC 6716 §3.1)
//! without decoding it; it never panics on outside input.

#[cfg(not(any(feature = "pure-rust-opus", feature = "libopus")))]
compile_error!("the engine needs an Opus codec: feature `pure-rust-opus` (default) or `libopus`");

#[cfg(not(feature = "libopus"))]
use opus_rs::{Application, OpusDecoder, OpusEncoder};

/// An Opus error, as text from the codec (it has no error codes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("opus: {0}")]
pub struct OpusError(pub &'static str);

/// Bit rate of the voice we send: ample for wideband speech.
const VOICE_BITRATE_BPS: i32 = 32_000;

/// The encoder complexity of a neural voice we send (0–10; the codec's own default is 9). A
/// Piper voice (a neural TTS like ElevenLabs', 16 kHz) encoded and decoded again scores PESQ-WB
/// 4.29 at 1, 4.39 at 2, 4.46 at 5 and 4.49 at 9, while encoding at 1 costs about a third of
/// the CPU of 5: the knee of the curve, and the reply encoder was a quarter of the server's CPU
/// at 5 (README "sixth run"; `examples/voice_quality.py`). `OPUS_COMPLEXITY` changes it.
pub const DEFAULT_COMPLEXITY: u8 = 1;

/// The encoder complexity of a formant voice ([`VoiceKind::Formant`]).
pub const FORMANT_COMPLEXITY: u8 = 9;

/// What kind of synthesizer made the voice being encoded: it decides how hard the encoder works,
/// since the two lose quality at low complexities very differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VoiceKind {
    /// A neural voice (ElevenLabs, and the fakes standing in for it): encoded at the
    /// configured complexity ([`DEFAULT_COMPLEXITY`]).
    #[default]
    Neural,
    /// espeak-ng's formant synthesis. Its buzz scores PESQ-WB 2.8 at complexity 1 against 3.5 at
    /// 5 and 3.9 at 9, so it is encoded at [`FORMANT_COMPLEXITY`]: it speaks in local mode and as
    /// the last fallback, an interview or two at a time, where the encoder's CPU does not count.
    Formant,
}

/// A PCM sample rate the Opus encoder takes and the decoder produces (RFC 6716 §2: 8, 12, 16,
/// 24 or 48 kHz). Every frame of PCM in the transport and the engine is at one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpusRate {
    Hz8000,
    Hz12000,
    Hz16000,
    Hz24000,
    Hz48000,
}

impl OpusRate {
    pub const ALL: [OpusRate; 5] = [
        OpusRate::Hz8000,
        OpusRate::Hz12000,
        OpusRate::Hz16000,
        OpusRate::Hz24000,
        OpusRate::Hz48000,
    ];

    /// Samples per second.
    pub const fn hz(self) -> u32 {
        match self {
            OpusRate::Hz8000 => 8_000,
            OpusRate::Hz12000 => 12_000,
            OpusRate::Hz16000 => 16_000,
            OpusRate::Hz24000 => 24_000,
            OpusRate::Hz48000 => 48_000,
        }
    }

    /// The Opus rate of exactly `hz`; `None` for any other rate.
    pub fn new(hz: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.hz() == hz)
    }

    /// The lowest Opus rate at or above `hz`, so nothing of a `hz` source is lost (22.05 kHz →
    /// 24 kHz, 44.1 kHz → 48 kHz); 48 kHz for anything above.
    pub fn at_least(hz: u32) -> Self {
        Self::ALL
            .into_iter()
            .find(|r| r.hz() >= hz)
            .unwrap_or(OpusRate::Hz48000)
    }

    /// Samples in one 20 ms frame.
    pub const fn frame_samples(self) -> usize {
        (self.hz() / 50) as usize
    }

    /// RTP clock ticks (48 kHz for Opus, RFC 7587 §4.1) per sample at this rate.
    pub const fn rtp_ticks_per_sample(self) -> u32 {
        48_000 / self.hz()
    }
}

impl std::fmt::Display for OpusRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} Hz", self.hz())
    }
}

/// Mono VoIP encoder with 16-bit PCM input.
pub struct VoiceEncoder {
    #[cfg(not(feature = "libopus"))]
    inner: OpusEncoder,
    #[cfg(feature = "libopus")]
    inner: opus::Encoder,
}

impl std::fmt::Debug for VoiceEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoiceEncoder").finish_non_exhaustive()
    }
}

impl VoiceEncoder {
    /// A mono VoIP encoder taking PCM at `rate`, with in-band FEC for `expected_loss_percent`
    /// packet loss.
    pub fn new(rate: OpusRate, expected_loss_percent: u8) -> Result<Self, OpusError> {
        #[cfg(not(feature = "libopus"))]
        {
            let rate = rate.hz() as i32;
            let mut inner = OpusEncoder::new(rate, 1, Application::Voip).map_err(OpusError)?;
            inner.bitrate_bps = VOICE_BITRATE_BPS;
            inner.use_inband_fec = expected_loss_percent > 0;
            inner.packet_loss_perc = i32::from(expected_loss_percent.min(100));
            inner.complexity = i32::from(DEFAULT_COMPLEXITY);
            Ok(Self { inner })
        }
        #[cfg(feature = "libopus")]
        {
            let c = |_: opus::Error| OpusError("libopus refused the encoder settings");
            let mut inner =
                opus::Encoder::new(rate.hz(), opus::Channels::Mono, opus::Application::Voip)
                    .map_err(c)?;
            inner
                .set_bitrate(opus::Bitrate::Bits(VOICE_BITRATE_BPS))
                .map_err(c)?;
            inner.set_inband_fec(expected_loss_percent > 0).map_err(c)?;
            inner
                .set_packet_loss_perc(i32::from(expected_loss_percent.min(100)))
                .map_err(c)?;
            inner
                .set_complexity(i32::from(DEFAULT_COMPLEXITY))
                .map_err(c)?;
            Ok(Self { inner })
        }
    }

    /// Sets the encoder's complexity, 0 (cheapest) to 10 (the codec's default is 9): how hard
    /// it searches for the best coding of each frame. Values above 10 are taken as 10. Set it
    /// before the first frame: `opus-rs` (0.1.40) applies it to its SILK layer only when that
    /// layer is set up (libopus at every frame).
    pub fn set_complexity(&mut self, complexity: u8) -> Result<(), OpusError> {
        let complexity = i32::from(complexity.min(10));
        #[cfg(not(feature = "libopus"))]
        {
            self.inner.complexity = complexity;
            Ok(())
        }
        #[cfg(feature = "libopus")]
        {
            self.inner
                .set_complexity(complexity)
                .map_err(|_| OpusError("libopus refused the complexity"))
        }
    }

    /// Encodes one frame (2.5–60 ms of samples) into `out`; returns the packet length.
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, OpusError> {
        #[cfg(not(feature = "libopus"))]
        return self
            .inner
            .encode_i16(pcm, pcm.len(), out)
            .map_err(OpusError);
        #[cfg(feature = "libopus")]
        return self
            .inner
            .encode(pcm, out)
            .map_err(|_| OpusError("libopus failed to encode"));
    }
}

/// Mono decoder with 16-bit PCM output.
pub struct VoiceDecoder {
    #[cfg(not(feature = "libopus"))]
    inner: OpusDecoder,
    #[cfg(feature = "libopus")]
    inner: opus::Decoder,
    #[cfg_attr(feature = "libopus", allow(dead_code))]
    scratch: Vec<f32>,
}

impl std::fmt::Debug for VoiceDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoiceDecoder").finish_non_exhaustive()
    }
}

impl VoiceDecoder {
    /// A mono decoder producing PCM at `rate` (the codec band-limits and resamples itself).
    pub fn new(rate: OpusRate) -> Result<Self, OpusError> {
        #[cfg(not(feature = "libopus"))]
        let inner = OpusDecoder::new(rate.hz() as i32, 1).map_err(OpusError)?;
        #[cfg(feature = "libopus")]
        let inner = opus::Decoder::new(rate.hz(), opus::Channels::Mono)
            .map_err(|_| OpusError("libopus refused the decoder settings"))?;
        Ok(Self {
            inner,
            scratch: Vec::new(),
        })
    }

    /// Decodes `packet` into `out` (whose length is the most samples accepted) and returns
    /// the samples produced. An empty `packet` conceals `out.len()` samples (PLC). With `fec`,
    /// the in-band FEC of `packet` reconstructs the frame *before* it (`out.len()` samples).
    #[cfg(feature = "libopus")]
    pub fn decode(
        &mut self,
        packet: &[u8],
        out: &mut [i16],
        fec: bool,
    ) -> Result<usize, OpusError> {
        self.inner
            .decode(packet, out, fec)
            .map_err(|_| OpusError("libopus failed to decode"))
    }

    /// Decodes `packet` into `out` (whose length is the most samples accepted) and returns
    /// the samples produced. An empty `packet` conceals `out.len()` samples (PLC). With `fec`,
    /// the in-band FEC of `packet` reconstructs the frame *before* it (`out.len()` samples).
    #[cfg(not(feature = "libopus"))]
    pub fn decode(
        &mut self,
        packet: &[u8],
        out: &mut [i16],
        fec: bool,
    ) -> Result<usize, OpusError> {
        self.scratch.clear();
        self.scratch.resize(out.len(), 0.0);
        let n = if fec {
            self.inner.decode_fec(packet, out.len(), &mut self.scratch)
        } else {
            self.inner.decode(packet, out.len(), &mut self.scratch)
        }
        .map_err(OpusError)?;
        let n = n.min(out.len());
        for (dst, &src) in out.iter_mut().zip(&self.scratch[..n]) {
            *dst = (src * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16;
        }
        Ok(n)
    }
}

/// Samples per channel in an Opus `packet` at `sample_rate`, from its TOC byte and frame count
/// (RFC 6716 §3.1–3.2). `None` for an empty or malformed packet.
pub fn packet_samples(packet: &[u8], sample_rate: u32) -> Option<usize> {
    let toc = *packet.first()?;
    let config = toc >> 3;
    // Frame duration in units of 1/400 s (2.5 ms).
    let units: u32 = match config {
        0..=11 => [4, 8, 16, 24][usize::from(config % 4)], // SILK: 10/20/40/60 ms
        12..=15 => [4, 8][usize::from(config % 2)],        // hybrid: 10/20 ms
        _ => [1, 2, 4, 8][usize::from(config % 4)],        // CELT: 2.5/5/10/20 ms
    };
    let frames: u32 = match toc & 0x03 {
        0 => 1,
        1 | 2 => 2,
        _ => u32::from(*packet.get(1)? & 0x3F),
    };
    if frames == 0 {
        return None;
    }
    let samples = u64::from(frames) * u64::from(units) * u64::from(sample_rate) / 400;
    // A packet carries at most 120 ms (RFC 6716 §3.2.5).
    if samples * 1000 > 120 * u64::from(sample_rate) {
        return None;
    }
    usize::try_from(samples).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 48_000;
    const OPUS_48K: OpusRate = OpusRate::Hz48000;

    fn tone(samples: usize, start: usize) -> Vec<i16> {
        (start..start + samples)
            .map(|i| {
                let t = i as f64 / f64::from(RATE);
                ((t * 440.0 * std::f64::consts::TAU).sin() * 9_000.0) as i16
            })
            .collect()
    }

    fn rms(pcm: &[i16]) -> f64 {
        (pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / pcm.len().max(1) as f64).sqrt()
    }

    #[test]
    fn a_tone_survives_encode_and_decode() {
        let mut enc = VoiceEncoder::new(OPUS_48K, 5).expect("encoder");
        let mut dec = VoiceDecoder::new(OPUS_48K).expect("decoder");
        let mut packet = vec![0u8; 1_275];
        let mut out = vec![0i16; 5_760];
        let mut decoded = Vec::new();
        for i in 0..50 {
            let frame = tone(960, i * 960);
            let len = enc.encode(&frame, &mut packet).expect("encode");
            assert_eq!(packet_samples(&packet[..len], RATE), Some(960));
            let n = dec.decode(&packet[..len], &mut out, false).expect("decode");
            assert_eq!(n, 960);
            decoded.extend_from_slice(&out[..n]);
        }
        let input_rms = rms(&tone(960 * 50, 0));
        let output_rms = rms(&decoded[960 * 10..]);
        assert!(
            (output_rms / input_rms - 1.0).abs() < 0.3,
            "decoded RMS {output_rms:.0} vs input {input_rms:.0}"
        );
    }

    /// One second of a `freq` tone encoded from `sent` and decoded at `heard`, 20 ms a packet:
    /// the steady part's pitch and level must be the input's.
    fn assert_tone_survives(sent: OpusRate, heard: OpusRate, freq: f64) {
        use crate::audio::testing::{tone_at, zero_crossing_hz};
        let mut enc = VoiceEncoder::new(sent, 5).expect("encoder");
        let mut dec = VoiceDecoder::new(heard).expect("decoder");
        let input = tone_at(freq, sent.hz(), sent.hz() as usize, 9_000.0);
        let mut packet = vec![0u8; 1_275];
        let mut out = vec![0i16; 5_760];
        let mut decoded = Vec::new();
        for frame in input.chunks_exact(sent.frame_samples()) {
            let len = enc.encode(frame, &mut packet).expect("encode");
            assert_eq!(
                packet_samples(&packet[..len], RATE),
                Some(960),
                "{sent}: 20 ms"
            );
            let n = dec.decode(&packet[..len], &mut out, false).expect("decode");
            assert_eq!(n, heard.frame_samples(), "{sent} → {heard}");
            decoded.extend_from_slice(&out[..n]);
        }
        assert_eq!(
            decoded.len(),
            heard.hz() as usize,
            "{sent} → {heard}: one second"
        );
        let steady = &decoded[decoded.len() / 5..];
        let hz = zero_crossing_hz(steady, heard.hz());
        assert!(
            (hz - freq).abs() < freq / 100.0,
            "{sent} → {heard}: at {hz:.1} Hz"
        );
        let ratio = rms(steady) / rms(&input);
        assert!(
            (ratio - 1.0).abs() < 0.2,
            "{sent} → {heard}: level ratio {ratio:.2}"
        );
    }

    /// What the engine does with a browser's voice: encoded from 48 kHz, decoded straight at
    /// the speech-to-text's 16 kHz. The codec's own resampling keeps the tone's pitch and level.
    #[test]
    fn a_tone_sent_at_48_khz_decodes_at_16_khz_with_its_frequency_and_level() {
        assert_tone_survives(OPUS_48K, OpusRate::Hz16000, 1_000.0);
    }

    /// What the engine does with the interviewer's voice: the encoder takes the synthesizer's
    /// 16 or 24 kHz as they come and a 48 kHz listener (a browser) hears the same tone.
    #[test]
    fn pcm_encoded_at_the_tts_rate_is_heard_at_48_khz_with_its_frequency_and_level() {
        assert_tone_survives(OpusRate::Hz16000, OPUS_48K, 440.0);
        assert_tone_survives(OpusRate::Hz24000, OPUS_48K, 440.0);
    }

    #[test]
    fn opus_rates_map_sources_to_the_lowest_rate_that_keeps_them() {
        assert_eq!(OpusRate::new(16_000), Some(OpusRate::Hz16000));
        assert_eq!(OpusRate::new(22_050), None);
        assert_eq!(OpusRate::at_least(16_000), OpusRate::Hz16000);
        assert_eq!(OpusRate::at_least(22_050), OpusRate::Hz24000);
        assert_eq!(OpusRate::at_least(44_100), OpusRate::Hz48000);
        assert_eq!(OpusRate::at_least(96_000), OpusRate::Hz48000);
        assert_eq!(OpusRate::at_least(11_025), OpusRate::Hz12000);
        assert_eq!(OpusRate::Hz16000.frame_samples(), 320);
        assert_eq!(OpusRate::Hz24000.rtp_ticks_per_sample(), 2);
    }

    #[test]
    fn an_empty_packet_is_concealed_to_the_asked_length() {
        let mut dec = VoiceDecoder::new(OPUS_48K).expect("decoder");
        let mut out = vec![0i16; 960];
        assert_eq!(dec.decode(&[], &mut out, false).expect("plc"), 960);
    }

    #[test]
    fn packet_durations_follow_the_toc() {
        // config 1 (SILK NB 20 ms), code 0.
        assert_eq!(packet_samples(&[1 << 3], RATE), Some(960));
        // config 0 (SILK 10 ms), code 1 (two frames).
        assert_eq!(packet_samples(&[0b0000_0001], RATE), Some(960));
        // config 31 (CELT FB 20 ms), code 3 with 3 frames: 60 ms.
        assert_eq!(packet_samples(&[(31 << 3) | 3, 3], RATE), Some(2_880));
        // config 16 (CELT 2.5 ms) at 16 kHz.
        assert_eq!(packet_samples(&[16 << 3], 16_000), Some(40));
        // Malformed: empty, code 3 without a count, zero frames, over 120 ms.
        assert_eq!(packet_samples(&[], RATE), None);
        assert_eq!(packet_samples(&[3], RATE), None);
        assert_eq!(packet_samples(&[3, 0], RATE), None);
        assert_eq!(packet_samples(&[(3 << 3) | 3, 3], RATE), None);
    }

    /// Per-frame cost of the codec in this build: `cargo test -p engine --lib codec -- --ignored
    /// --nocapture` (the dev profile optimizes opus-rs, see the root Cargo.toml).
    #[test]
    #[ignore = "a measurement; run by hand"]
    fn measure_encode_and_decode_cost_per_frame() {
        let mut enc = VoiceEncoder::new(OPUS_48K, 5).expect("encoder");
        let mut dec = VoiceDecoder::new(OPUS_48K).expect("decoder");
        let frames: Vec<Vec<i16>> = (0..500).map(|i| tone(960, i * 960)).collect();
        let mut packet = vec![0u8; 1_275];
        let mut packets = Vec::new();
        let started = std::time::Instant::now();
        for f in &frames {
            let len = enc.encode(f, &mut packet).expect("encode");
            packets.push(packet[..len].to_vec());
        }
        let encode = started.elapsed() / 500;
        let mut out = vec![0i16; 960];
        let started = std::time::Instant::now();
        for p in &packets {
            dec.decode(p, &mut out, false).expect("decode");
        }
        let decode = started.elapsed() / 500;
        println!("Opus per 20 ms frame: encode {encode:?}, decode {decode:?}");
    }
}
