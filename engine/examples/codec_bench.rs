//! A fixed audio workload for measuring the engine's per-interview codec cost from outside the
//! process (instruction counts with `valgrind --tool=callgrind`, whole-process CPU time):
//! the inbound path (Opus packets as a browser sends them → PCM at the speech-to-text's rate)
//! and the outbound path (text-to-speech PCM → Opus packets), each over the same seconds of
//! audio. See README "CPU per interview before and after the resampling change".
//!
//! ```sh
//! cargo build --release -p engine --example codec_bench
//! # 60 s of a voice as a browser sends it (Opus from 48 kHz) and as the TTS delivers it (16 kHz PCM)
//! ./target/release/examples/codec_bench prepare /tmp/voice 60
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!   ./target/release/examples/codec_bench run /tmp/voice
//! # the same with the reply encoder at complexity 9 (default: the engine's, 5)
//! ./target/release/examples/codec_bench run /tmp/voice 9
//! # what a complexity costs in fidelity (log-spectral distance of the decoded replies)
//! ./target/release/examples/codec_bench fidelity /tmp/voice 9
//! # a recording (16 kHz mono s16le) through the reply encoder at a complexity and decoded
//! # again, for a perceptual score of the two (README "sixth run": PESQ on a Piper voice)
//! ./target/release/examples/codec_bench roundtrip speech.raw decoded.raw 5
//! ```
//!
//! The pipeline measured is the engine's: the decoder produces the STT's 16 kHz directly and the
//! encoder takes the TTS's 16 kHz as it comes. (The version of this file before the resampling
//! change, in the commit that added it, measured the old pipeline: decode at 48 kHz, then a
//! hand-written 31-tap FIR down to 16 kHz; TTS PCM linearly upsampled ×3, then encoded at
//! 48 kHz.)

use std::io::{Read, Write};

use engine::media::INBOUND_RATE;
use engine::transport::OpusRate;
use engine::transport::codec::{VoiceDecoder, VoiceEncoder};

/// A voiced, speech-like signal: a 120–180 Hz glottal pitch with harmonics to 4 kHz under a
/// syllable-rate envelope.
fn voice(rate: u32, seconds: u32) -> Vec<i16> {
    let rate_f = f64::from(rate);
    let mut phase = 0.0f64;
    (0..rate * seconds)
        .map(|i| {
            let t = f64::from(i) / rate_f;
            let pitch = 150.0 + 30.0 * (t * 2.0 * std::f64::consts::PI * 0.7).sin();
            phase += pitch / rate_f;
            let envelope = 0.5 + 0.5 * (t * 2.0 * std::f64::consts::PI * 4.0).sin().abs();
            let mut sample = 0.0;
            let mut harmonic = 1.0;
            while harmonic * pitch < 4_000.0 {
                sample += (phase * harmonic * 2.0 * std::f64::consts::PI).sin() / harmonic;
                harmonic += 1.0;
            }
            (sample * envelope * 5_000.0).clamp(-32_768.0, 32_767.0) as i16
        })
        .collect()
}

/// TTS output: 16 kHz, ElevenLabs' default `pcm_16000`.
const TTS_RATE: u32 = 16_000;

/// Writes `PATH.opus` (length-prefixed 20 ms packets encoded from 48 kHz, as a browser sends
/// them) and `PATH.pcm` (the TTS's PCM), so `run` spends its instructions on the codec path only.
fn prepare(path: &str, seconds: u32) {
    let pcm = voice(48_000, seconds);
    let mut encoder = VoiceEncoder::new(OpusRate::Hz48000, 5).expect("encoder");
    let mut packet = vec![0u8; 1_275];
    let mut file = std::fs::File::create(format!("{path}.opus")).expect("create the packet file");
    for frame in pcm.chunks_exact(960) {
        let len = encoder.encode(frame, &mut packet).expect("encode");
        file.write_all(&(len as u16).to_le_bytes()).expect("write");
        file.write_all(&packet[..len]).expect("write");
    }
    let tts: Vec<u8> = voice(TTS_RATE, seconds)
        .iter()
        .flat_map(|s| s.to_le_bytes())
        .collect();
    std::fs::write(format!("{path}.pcm"), tts).expect("write the PCM file");
}

fn read(path: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .expect("open the workload (run `prepare` first)")
        .read_to_end(&mut bytes)
        .expect("read");
    bytes
}

fn read_packets(path: &str) -> Vec<Vec<u8>> {
    let bytes = read(&format!("{path}.opus"));
    let mut packets = Vec::new();
    let mut rest = bytes.as_slice();
    while let [a, b, tail @ ..] = rest {
        let len = usize::from(u16::from_le_bytes([*a, *b]));
        packets.push(tail[..len].to_vec());
        rest = &tail[len..];
    }
    packets
}

/// Log-spectral distance (dB) between `original` and `decoded`: per 20 ms frame (Hann window,
/// 50 Hz bins to 8 kHz), the RMS over bins of the difference of their power spectra in dB,
/// averaged over frames with speech energy, after aligning the two at the lag (the codec's
/// delay, at most 20 ms) where they correlate best. A rough, phase-blind measure of what a
/// lower encoder complexity costs in fidelity (0 = identical spectra; not a listening score).
fn spectral_distance_db(original: &[i16], decoded: &[i16]) -> f64 {
    const N: usize = 320;
    let correlation = |lag: usize| -> f64 {
        original
            .iter()
            .zip(decoded.get(lag..).unwrap_or_default())
            .map(|(&o, &d)| f64::from(o) * f64::from(d))
            .sum()
    };
    let lag = (0..=N)
        .max_by(|&a, &b| correlation(a).total_cmp(&correlation(b)))
        .unwrap_or(0);
    let decoded = decoded.get(lag..).unwrap_or_default();
    let window: Vec<f64> = (0..N)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / N as f64).cos())
        .collect();
    let power_db = |frame: &[i16]| -> Vec<f64> {
        (1..N / 2)
            .map(|k| {
                let (mut re, mut im) = (0.0, 0.0);
                for (i, (&x, w)) in frame.iter().zip(&window).enumerate() {
                    let angle = 2.0 * std::f64::consts::PI * (k * i) as f64 / N as f64;
                    re += f64::from(x) * w * angle.cos();
                    im -= f64::from(x) * w * angle.sin();
                }
                10.0 * (re * re + im * im).max(1.0).log10()
            })
            .collect()
    };
    let distances: Vec<f64> = original
        .chunks_exact(N)
        .zip(decoded.chunks_exact(N))
        .filter(|(o, _)| o.iter().map(|&s| f64::from(s).abs()).sum::<f64>() / N as f64 > 100.0)
        .map(|(o, d)| {
            let (o, d) = (power_db(o), power_db(d));
            let mean_square =
                o.iter().zip(&d).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / o.len() as f64;
            mean_square.sqrt()
        })
        .collect();
    distances.iter().sum::<f64>() / distances.len().max(1) as f64
}

/// The TTS's PCM written by `prepare`.
fn tts_pcm(path: &str) -> Vec<i16> {
    read(&format!("{path}.pcm"))
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// The reply encoder at the TTS's rate, at `complexity` (else the engine's default).
fn tts_encoder(complexity: Option<u8>) -> (OpusRate, VoiceEncoder) {
    let rate = OpusRate::new(TTS_RATE).expect("an Opus rate");
    let mut encoder = VoiceEncoder::new(rate, 5).expect("encoder");
    if let Some(complexity) = complexity {
        encoder.set_complexity(complexity).expect("complexity");
    }
    (rate, encoder)
}

fn run(path: &str, complexity: Option<u8>) {
    let packets = read_packets(path);
    let seconds = packets.len() as u32 / 50;

    // Inbound: packets → 16 kHz for the STT, straight from the decoder.
    let mut decoder = VoiceDecoder::new(INBOUND_RATE).expect("decoder");
    let mut pcm = vec![0i16; 5_760];
    let mut stt_samples = 0usize;
    let mut energy = 0f64;
    for packet in &packets {
        let n = decoder.decode(packet, &mut pcm, false).expect("decode");
        let out = &pcm[..n];
        stt_samples += out.len();
        energy += out.iter().map(|&s| f64::from(s).abs()).sum::<f64>();
    }

    // Outbound: 16 kHz TTS PCM → Opus.
    let tts = tts_pcm(path);
    let (rate, mut encoder) = tts_encoder(complexity);
    let mut packet = vec![0u8; 1_275];
    let mut sent_bytes = 0usize;
    for frame in tts.chunks_exact(rate.frame_samples()) {
        sent_bytes += encoder.encode(frame, &mut packet).expect("encode");
    }
    println!(
        "codec_bench: seconds={seconds} stt_samples={stt_samples} mean_abs={:.0} sent_bytes={sent_bytes} complexity={}",
        energy / stt_samples.max(1) as f64,
        complexity.map_or_else(|| "default".to_owned(), |c| c.to_string()),
    );
}

/// What the encoder's complexity costs in fidelity: the first 5 s of the TTS's PCM encoded at
/// `complexity`, decoded again, against the original (kept out of `run`, so its instruction
/// counts are the codec's alone).
fn fidelity(path: &str, complexity: u8) {
    let mut tts = tts_pcm(path);
    tts.truncate(5 * TTS_RATE as usize);
    let (rate, mut encoder) = tts_encoder(Some(complexity));
    let mut decoder = VoiceDecoder::new(rate).expect("decoder");
    let (mut packet, mut pcm) = (vec![0u8; 1_275], vec![0i16; 5_760]);
    let mut heard = Vec::new();
    for frame in tts.chunks_exact(rate.frame_samples()) {
        let len = encoder.encode(frame, &mut packet).expect("encode");
        let n = decoder
            .decode(&packet[..len], &mut pcm, false)
            .expect("decode");
        heard.extend_from_slice(&pcm[..n]);
    }
    println!(
        "codec_bench: complexity={complexity} spectral_distance_db={:.2}",
        spectral_distance_db(&tts, &heard)
    );
}

/// `input` (16 kHz mono s16le, as ElevenLabs' `pcm_16000`) through the reply encoder at
/// `complexity` and the decoder, written to `output` in the same format (the decoder's delay
/// is left in; a perceptual score aligns the two itself).
fn roundtrip(input: &str, output: &str, complexity: u8) {
    let speech: Vec<i16> = read(input)
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let (rate, mut encoder) = tts_encoder(Some(complexity));
    let mut decoder = VoiceDecoder::new(rate).expect("decoder");
    let (mut packet, mut pcm) = (vec![0u8; 1_275], vec![0i16; 5_760]);
    let mut heard = Vec::with_capacity(speech.len() * 2);
    let mut sent_bytes = 0usize;
    for frame in speech.chunks_exact(rate.frame_samples()) {
        let len = encoder.encode(frame, &mut packet).expect("encode");
        sent_bytes += len;
        let n = decoder
            .decode(&packet[..len], &mut pcm, false)
            .expect("decode");
        heard.extend(pcm[..n].iter().flat_map(|s| s.to_le_bytes()));
    }
    std::fs::File::create(output)
        .and_then(|mut file| file.write_all(&heard))
        .expect("write the decoded speech");
    println!("codec_bench: complexity={complexity} sent_bytes={sent_bytes}");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("prepare") => {
            let seconds = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(60);
            prepare(args.get(2).expect("a path"), seconds);
        }
        Some("run") => run(
            args.get(2).expect("a path"),
            args.get(3).map(|c| c.parse().expect("a complexity, 0-10")),
        ),
        Some("fidelity") => fidelity(
            args.get(2).expect("a path"),
            args.get(3)
                .map_or(engine::transport::codec::DEFAULT_COMPLEXITY, |c| {
                    c.parse().expect("a complexity, 0-10")
                }),
        ),
        Some("roundtrip") => roundtrip(
            args.get(2).expect("the input, 16 kHz mono s16le"),
            args.get(3).expect("the output path"),
            args.get(4)
                .map_or(engine::transport::codec::DEFAULT_COMPLEXITY, |c| {
                    c.parse().expect("a complexity, 0-10")
                }),
        ),
        _ => eprintln!(
            "usage: codec_bench prepare PATH [SECONDS] | codec_bench run PATH [COMPLEXITY] \
             | codec_bench fidelity PATH [COMPLEXITY] | codec_bench roundtrip IN OUT [COMPLEXITY]"
        ),
    }
}
