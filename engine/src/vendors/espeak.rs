//! The local voice of keyless local mode: espeak-ng (Debian package `espeak-ng`) behind the
//! [`TextToSpeech`] trait, as a supervised child process per sentence.
//!
//! A session buffers the reply's text and synthesizes each complete sentence as it arrives:
//! `espeak-ng --stdout` reads the sentence on stdin (never as an argument) and writes a WAV to
//! stdout, read into memory (audio never touches the disk). The PCM is sent at espeak-ng's own
//! rate (22.05 kHz; the playback converts it to the encoder's 24 kHz, see
//! [`crate::audio::UtteranceAudio`]) in chunks of at most half a second, each with a
//! per-character alignment estimated over the voiced part of the sentence, so barge-in keeps only
//! the heard part. Cancel (or dropping the input) kills the running child at once.
//!
//! The pure parts (sentence cutting, WAV parsing, alignment, chunking) are functions with unit
//! tests; the child process is the only I/O.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::vendors::{
    Alignment, AudioChunk, EVENT_QUEUE, ErrorCategory, TTS_COMMAND_QUEUE, TextToSpeech, TtsCommand,
    TtsEvent, TtsInput, TtsReport, TtsSession, Vendor, VendorError,
};

/// The longest a single sentence may take to synthesize before it counts as a stall.
const SYNTHESIS_TIMEOUT: Duration = Duration::from_secs(20);
/// The most PCM one sentence may produce (two minutes at 22.05 kHz), against a runaway child.
const MAX_WAV_BYTES: usize = 22_050 * 2 * 120 + 4096;
/// The Debian package that provides the program.
pub const PACKAGE: &str = "espeak-ng";

/// Which espeak-ng voice speaks, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EspeakVoice {
    /// An espeak-ng voice name, with an optional `+variant`.
    pub name: String,
    /// Words per minute.
    pub speed: u32,
    /// 0 to 99.
    pub pitch: u32,
}

impl EspeakVoice {
    /// The voice for an `interviewer_voice` setting (`default`, `warm`, `neutral`, `brisk`).
    pub fn for_setting(setting: &str) -> Self {
        let (name, speed, pitch) = match setting {
            "warm" => ("en-us+f2", 150, 42),
            "neutral" => ("en-gb", 160, 50),
            "brisk" => ("en-us+m3", 190, 55),
            _ => ("en-us", 165, 50),
        };
        Self {
            name: name.to_owned(),
            speed,
            pitch,
        }
    }
}

/// Where the program is and which voice speaks.
#[derive(Debug, Clone)]
pub struct EspeakConfig {
    pub program: PathBuf,
    pub voice: EspeakVoice,
}

impl Default for EspeakConfig {
    fn default() -> Self {
        Self {
            program: PathBuf::from("espeak-ng"),
            voice: EspeakVoice::for_setting("default"),
        }
    }
}

/// The espeak-ng voice.
#[derive(Debug, Clone)]
pub struct EspeakTts {
    config: Arc<EspeakConfig>,
}

fn err(category: ErrorCategory, message: impl Into<String>) -> VendorError {
    VendorError::new(Vendor::Local, category, message)
}

impl EspeakTts {
    pub fn new(config: EspeakConfig) -> Self {
        Self {
            config: Arc::new(config),
        }
    }

    /// Checks that the program runs and speaks (its voice data is there); the error says why
    /// not, in words fit for the start-up log.
    pub async fn probe(&self) -> Result<(), String> {
        match synthesize(&self.config, "ok").await {
            Ok(pcm) if !pcm.samples.is_empty() => Ok(()),
            Ok(_) => Err(format!(
                "{} produced no audio (is the package {PACKAGE}-data installed?)",
                self.config.program.display()
            )),
            Err(error) => Err(error.to_string()),
        }
    }
}

#[async_trait]
impl TextToSpeech for EspeakTts {
    async fn start(&self) -> Result<TtsSession, VendorError> {
        let (commands, command_rx) = mpsc::channel(TTS_COMMAND_QUEUE);
        let (events, event_rx) = mpsc::channel(EVENT_QUEUE);
        tokio::spawn(run_session(self.config.clone(), command_rx, events));
        Ok(TtsSession {
            input: TtsInput { commands },
            events: event_rx,
        })
    }

    fn for_voice(&self, voice: &str) -> Option<Arc<dyn TextToSpeech>> {
        let mut config = (*self.config).clone();
        config.voice = EspeakVoice::for_setting(voice);
        Some(Arc::new(EspeakTts::new(config)))
    }
}

/// PCM of one synthesized sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct Pcm {
    pub samples: Vec<i16>,
    pub sample_rate: u32,
}

/// Runs espeak-ng on one sentence and reads its WAV from stdout. Dropping the future kills the
/// child.
async fn synthesize(config: &EspeakConfig, text: &str) -> Result<Pcm, VendorError> {
    let mut child = tokio::process::Command::new(&config.program)
        .arg("--stdout")
        .arg("-v")
        .arg(&config.voice.name)
        .arg("-s")
        .arg(config.voice.speed.to_string())
        .arg("-p")
        .arg(config.voice.pitch.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| {
            let category = if error.kind() == std::io::ErrorKind::NotFound {
                ErrorCategory::BadRequest
            } else {
                ErrorCategory::Server
            };
            err(
                category,
                format!(
                    "cannot run {} ({error}); install the Debian package {PACKAGE}",
                    config.program.display()
                ),
            )
        })?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| err(ErrorCategory::Server, "espeak-ng stdin unavailable"))?;
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| err(ErrorCategory::Server, "espeak-ng stdout unavailable"))?;
    let input = text.to_owned();
    let write = async move {
        let _ = stdin.write_all(input.as_bytes()).await;
        let _ = stdin.shutdown().await;
        drop(stdin);
    };
    let read = async {
        let mut wav = Vec::new();
        (&mut stdout)
            .take(MAX_WAV_BYTES as u64)
            .read_to_end(&mut wav)
            .await
            .map(|_| wav)
    };
    let work = async {
        let ((), wav) = tokio::join!(write, read);
        let wav =
            wav.map_err(|e| err(ErrorCategory::Network, format!("reading espeak-ng: {e}")))?;
        let status = child
            .wait()
            .await
            .map_err(|e| err(ErrorCategory::Server, format!("waiting for espeak-ng: {e}")))?;
        if !status.success() {
            return Err(err(
                ErrorCategory::Server,
                format!("espeak-ng exited with {status}"),
            ));
        }
        parse_wav(&wav).ok_or_else(|| err(ErrorCategory::Protocol, "espeak-ng wrote no WAV audio"))
    };
    tokio::time::timeout(SYNTHESIS_TIMEOUT, work)
        .await
        .map_err(|_| err(ErrorCategory::Timeout, "espeak-ng stalled"))?
}

/// Parses a 16-bit mono PCM WAV. espeak-ng writes to a pipe, so its size fields are
/// placeholders: the data chunk runs to the end of what was read.
///
/// Hand-written on purpose: a WAV reader (`hound`, which the tests use to write WAVs) trusts
/// the RIFF and data sizes, and espeak-ng's `--stdout` cannot seek back to fill them in, so it
/// writes placeholders (0x7ffff000 and the like) that such a reader refuses or reads past.
pub fn parse_wav(bytes: &[u8]) -> Option<Pcm> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return None;
    }
    let mut at = 12;
    let mut sample_rate = None;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let size = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().ok()?) as usize;
        let body = at + 8;
        match id {
            b"fmt " => {
                let fmt = bytes.get(body..body + 16)?;
                let format = u16::from_le_bytes([fmt[0], fmt[1]]);
                let channels = u16::from_le_bytes([fmt[2], fmt[3]]);
                let bits = u16::from_le_bytes([fmt[14], fmt[15]]);
                if format != 1 || channels != 1 || bits != 16 {
                    return None;
                }
                sample_rate = Some(u32::from_le_bytes(fmt[4..8].try_into().ok()?));
            }
            b"data" => {
                let end = body.saturating_add(size).min(bytes.len());
                let data = &bytes[body..end];
                let samples = data
                    .chunks_exact(2)
                    .map(|pair| i16::from_le_bytes([pair[0], pair[1]]))
                    .collect();
                return Some(Pcm {
                    samples,
                    sample_rate: sample_rate?,
                });
            }
            _ => {}
        }
        at = body.saturating_add(size).saturating_add(size % 2);
    }
    None
}

/// Takes the longest prefix of `buffer` made of complete sentences (ending in `.`, `?` or `!`
/// followed by whitespace, the whitespace included); `None` when there is none.
pub fn take_sentences(buffer: &mut String) -> Option<String> {
    let chars: Vec<(usize, char)> = buffer.char_indices().collect();
    let mut cut = None;
    for (n, (i, c)) in chars.iter().enumerate() {
        if matches!(c, '.' | '?' | '!')
            && chars
                .get(n + 1)
                .is_some_and(|(_, next)| next.is_whitespace())
        {
            // Include the whitespace that follows.
            let mut end = i + c.len_utf8();
            for (j, w) in &chars[n + 1..] {
                if !w.is_whitespace() {
                    break;
                }
                end = j + w.len_utf8();
            }
            // Only the first sentence: it starts speaking sooner.
            cut = Some(end);
            break;
        }
    }
    let end = cut?;
    Some(buffer.drain(..end).collect())
}

/// How long a character takes relative to a letter, for the alignment estimate.
fn char_weight(c: char) -> f64 {
    match c {
        ',' | ';' | ':' => 2.5,
        '.' | '?' | '!' => 3.0,
        c if c.is_whitespace() => 0.7,
        c if c.is_alphanumeric() => 1.0,
        _ => 0.3,
    }
}

/// The voiced span of a sentence, in samples: from the first to the last sample above a floor.
fn voiced_span(samples: &[i16]) -> (usize, usize) {
    const FLOOR: i16 = 300;
    let start = samples.iter().position(|s| s.unsigned_abs() > FLOOR as u16);
    let end = samples
        .iter()
        .rposition(|s| s.unsigned_abs() > FLOOR as u16);
    match (start, end) {
        (Some(start), Some(end)) if end > start => (start, end + 1),
        _ => (0, samples.len()),
    }
}

/// Cuts one sentence's audio (at `rate`) into chunks of at most half a second with
/// per-character alignment: every character of `text`, in order, gets a start time spread over
/// the voiced part by its weight.
pub fn chunk_sentence(text: &str, samples: &[i16], rate: u32) -> Vec<AudioChunk> {
    let chunk_samples = (rate as usize / 2).max(1);
    let (voiced_start, voiced_end) = voiced_span(samples);
    let chars: Vec<char> = text.chars().collect();
    let total_weight: f64 = chars.iter().map(|c| char_weight(*c)).sum::<f64>().max(1e-9);
    let span = (voiced_end - voiced_start) as f64;
    let mut cumulative = 0.0;
    let starts: Vec<usize> = chars
        .iter()
        .map(|c| {
            let start = voiced_start + (cumulative / total_weight * span) as usize;
            cumulative += char_weight(*c);
            start
        })
        .collect();
    let mut chunks = Vec::new();
    let mut next_char = 0;
    let mut offset = 0;
    while offset < samples.len() || (offset == 0 && samples.is_empty()) {
        let end = (offset + chunk_samples).min(samples.len());
        let last = end >= samples.len();
        let mut alignment = Alignment::default();
        while next_char < chars.len() && (last || starts[next_char] < end) {
            let start = starts[next_char].saturating_sub(offset);
            let following = starts.get(next_char + 1).copied().unwrap_or(voiced_end);
            alignment.chars.push(chars[next_char].to_string());
            alignment.start_ms.push(samples_to_ms(start, rate));
            alignment.duration_ms.push(samples_to_ms(
                following.saturating_sub(starts[next_char]),
                rate,
            ));
            next_char += 1;
        }
        chunks.push(AudioChunk {
            pcm: samples[offset..end].to_vec(),
            sample_rate: rate,
            voice: crate::media::VoiceKind::Formant,
            alignment: Some(alignment.clone()),
            normalized_alignment: Some(alignment),
        });
        if samples.is_empty() {
            break;
        }
        offset = end;
    }
    chunks
}

fn samples_to_ms(samples: usize, rate: u32) -> u32 {
    u32::try_from(samples as u64 * 1000 / u64::from(rate.max(1))).unwrap_or(u32::MAX)
}

/// What the session has been asked to do with its buffer.
#[derive(Debug, Default)]
struct Pending {
    buffer: String,
    flush: bool,
    finish: bool,
}

impl Pending {
    /// The next piece of text to synthesize, if one is ready.
    fn next(&mut self) -> Option<String> {
        if let Some(sentence) = take_sentences(&mut self.buffer) {
            return Some(sentence);
        }
        if (self.flush || self.finish) && !self.buffer.is_empty() {
            self.flush = false;
            return Some(std::mem::take(&mut self.buffer));
        }
        self.flush = false;
        None
    }
}

type Synthesis =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Pcm, VendorError>> + Send>>;

async fn run_session(
    config: Arc<EspeakConfig>,
    mut commands: mpsc::Receiver<TtsCommand>,
    events: mpsc::Sender<TtsEvent>,
) {
    let started = Instant::now();
    let mut report = TtsReport {
        model: format!("espeak-ng:{}", config.voice.name),
        ..TtsReport::default()
    };
    let mut pending = Pending::default();
    let mut current: Option<(String, Synthesis)> = None;
    let cancelled = |mut report: TtsReport| {
        report.timing.total = started.elapsed();
        TtsEvent::Failed {
            error: err(ErrorCategory::Cancelled, "speech synthesis was cancelled"),
            report,
        }
    };
    loop {
        if current.is_none()
            && let Some(text) = pending.next()
        {
            if text.trim().is_empty() {
                // Whitespace only: nothing to say, but its characters are part of the text.
                report.usage.characters += text.chars().count() as u64;
                continue;
            }
            let config = config.clone();
            let owned = text.clone();
            current = Some((
                text,
                Box::pin(async move { synthesize(&config, &owned).await }),
            ));
        }
        if current.is_none() && pending.finish && pending.buffer.is_empty() {
            report.timing.total = started.elapsed();
            let _ = events.send(TtsEvent::Done(report)).await;
            return;
        }
        tokio::select! {
            command = commands.recv() => match command {
                Some(TtsCommand::Text(text)) => pending.buffer.push_str(&text),
                Some(TtsCommand::Flush) => pending.flush = true,
                Some(TtsCommand::Finish) => pending.finish = true,
                // Cancel, or the input was dropped: the running child dies with its future.
                Some(TtsCommand::Cancel) | None => {
                    drop(current.take());
                    let _ = events.send(cancelled(report)).await;
                    return;
                }
            },
            result = async {
                match current.as_mut() {
                    Some((_, synthesis)) => synthesis.await,
                    None => std::future::pending().await,
                }
            } => {
                let (text, _) = current.take().expect("a synthesis was running");
                let pcm = match result {
                    Ok(pcm) => pcm,
                    Err(error) => {
                        report.timing.total = started.elapsed();
                        let _ = events.send(TtsEvent::Failed { error, report }).await;
                        return;
                    }
                };
                report.usage.characters += text.chars().count() as u64;
                report.usage.audio_seconds +=
                    pcm.samples.len() as f64 / f64::from(pcm.sample_rate.max(1));
                for chunk in chunk_sentence(&text, &pcm.samples, pcm.sample_rate) {
                    if report.timing.time_to_first_audio.is_none() {
                        report.timing.time_to_first_audio = Some(started.elapsed());
                    }
                    report.usage.chunks += 1;
                    if events.send(TtsEvent::Audio(chunk)).await.is_err() {
                        return; // nobody listens any more
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 16-bit mono WAV written by `hound`; without `honest_sizes`, its RIFF and data sizes
    /// are overwritten with the placeholder espeak-ng leaves when it writes to a pipe.
    fn wav(rate: u32, samples: &[i16], honest_sizes: bool) -> Vec<u8> {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut out = std::io::Cursor::new(Vec::new());
        let mut writer = hound::WavWriter::new(&mut out, spec).expect("wav writer");
        for s in samples {
            writer.write_sample(*s).expect("sample");
        }
        writer.finalize().expect("finalize");
        let mut out = out.into_inner();
        if !honest_sizes {
            let placeholder = 0x7fff_f000u32.to_le_bytes();
            out[4..8].copy_from_slice(&placeholder);
            let data = out
                .windows(4)
                .position(|w| w == b"data")
                .expect("a data chunk");
            out[data + 4..data + 8].copy_from_slice(&placeholder);
        }
        out
    }

    #[test]
    fn wav_from_a_pipe_with_placeholder_sizes_is_read_to_its_end() {
        let samples = [1i16, -2, 300, -32768, 32767];
        for honest in [true, false] {
            let pcm = parse_wav(&wav(22_050, &samples, honest)).expect("wav");
            assert_eq!(pcm.sample_rate, 22_050);
            assert_eq!(pcm.samples, samples);
        }
        assert_eq!(parse_wav(b"RIFF\0\0\0\0WAVE"), None);
        assert_eq!(parse_wav(b"not a wav at all"), None);
    }

    #[test]
    fn sentences_are_cut_one_at_a_time_with_their_trailing_space() {
        let mut buffer = "Hello there. How are you? I am".to_owned();
        assert_eq!(
            take_sentences(&mut buffer).as_deref(),
            Some("Hello there. ")
        );
        assert_eq!(
            take_sentences(&mut buffer).as_deref(),
            Some("How are you? ")
        );
        assert_eq!(take_sentences(&mut buffer), None);
        assert_eq!(buffer, "I am");
        // A decimal point is not a sentence end.
        let mut buffer = "It took 2.5 seconds".to_owned();
        assert_eq!(take_sentences(&mut buffer), None);
    }

    #[test]
    fn alignment_covers_every_character_in_order_within_the_audio() {
        let text = "Tell me about a project, please. ";
        // 2.2 s: 0.1 s of silence, 2 s voiced, 0.1 s of silence, at 24 kHz.
        let mut samples = vec![0i16; 2_400];
        samples.extend((0..48_000).map(|i| if i % 2 == 0 { 5_000 } else { -5_000 }));
        samples.extend(vec![0i16; 2_400]);
        let chunks = chunk_sentence(text, &samples, 24_000);
        assert_eq!(chunks.len(), 5, "half-second chunks");
        assert!(chunks.iter().all(|c| c.pcm.len() <= 12_000));
        let pcm: usize = chunks.iter().map(|c| c.pcm.len()).sum();
        assert_eq!(pcm, samples.len());
        let mut absolute = Vec::new();
        let mut chars = String::new();
        for (i, chunk) in chunks.iter().enumerate() {
            let alignment = chunk.alignment.as_ref().expect("alignment");
            for (c, start) in alignment.chars.iter().zip(&alignment.start_ms) {
                chars.push_str(c);
                absolute.push(i as u32 * 500 + start);
            }
        }
        assert_eq!(chars, text);
        assert!(absolute.windows(2).all(|w| w[0] <= w[1]), "{absolute:?}");
        assert!(absolute[0] >= 100 && *absolute.last().expect("chars") <= 2_100);
    }

    #[test]
    fn voice_settings_map_to_espeak_voices() {
        assert_eq!(EspeakVoice::for_setting("default").name, "en-us");
        assert_eq!(
            EspeakVoice::for_setting("unknown"),
            EspeakVoice::for_setting("default")
        );
        assert!(EspeakVoice::for_setting("brisk").speed > EspeakVoice::for_setting("warm").speed);
        assert_ne!(
            EspeakVoice::for_setting("warm").name,
            EspeakVoice::for_setting("neutral").name
        );
    }

    #[tokio::test]
    async fn a_missing_program_is_reported_with_the_package_to_install() {
        let tts = EspeakTts::new(EspeakConfig {
            program: PathBuf::from("/nonexistent/espeak-ng"),
            ..EspeakConfig::default()
        });
        let error = tts.probe().await.expect_err("no such program");
        assert!(
            error.contains("install the Debian package espeak-ng"),
            "{error}"
        );
    }

    /// Runs a session over `text` and collects its events.
    async fn speak(tts: &EspeakTts, pieces: &[&str]) -> (Vec<AudioChunk>, TtsEvent) {
        let mut session = tts.start().await.expect("session");
        for piece in pieces {
            session.input.push_text(piece).await.expect("text");
        }
        session.input.finish().await.expect("finish");
        let mut chunks = Vec::new();
        loop {
            let event = tokio::time::timeout(Duration::from_secs(60), session.events.recv())
                .await
                .expect("espeak-ng answers in time")
                .expect("a terminal event");
            match event {
                TtsEvent::Audio(chunk) => chunks.push(chunk),
                terminal => return (chunks, terminal),
            }
        }
    }

    fn rms(samples: &[i16]) -> f64 {
        let sum: f64 = samples.iter().map(|s| f64::from(*s).powi(2)).sum();
        (sum / samples.len().max(1) as f64).sqrt()
    }

    #[tokio::test]
    async fn real_espeak_speaks_every_sentence_with_alignment_covering_the_text() {
        let tts = EspeakTts::new(EspeakConfig::default());
        tts.probe()
            .await
            .expect("espeak-ng is installed (Debian package espeak-ng)");
        let pieces = [
            "Hello, and welcome to your practice interview. ",
            "Tell me about a project ",
            "you are proud of. ",
            "What was your part",
        ];
        let (chunks, terminal) = speak(&tts, &pieces).await;
        let TtsEvent::Done(report) = terminal else {
            panic!("{terminal:?}")
        };
        // espeak-ng's own rate, sent as it is (the playback converts it).
        assert!(chunks.iter().all(|c| c.sample_rate == 22_050));
        // A formant voice: the reply encoder works harder on it (`codec::VoiceKind`).
        assert!(
            chunks
                .iter()
                .all(|c| c.voice == crate::media::VoiceKind::Formant)
        );
        let pcm: Vec<i16> = chunks.iter().flat_map(|c| c.pcm.clone()).collect();
        let seconds = pcm.len() as f64 / 22_050.0;
        assert!(seconds > 3.0, "{seconds} s of speech");
        assert!(rms(&pcm) > 500.0, "not silent: RMS {}", rms(&pcm));
        let aligned: String = chunks
            .iter()
            .flat_map(|c| c.alignment.as_ref().expect("alignment").chars.clone())
            .collect();
        assert_eq!(aligned, pieces.concat(), "every character, in order");
        assert_eq!(
            report.usage.characters,
            pieces.concat().chars().count() as u64
        );
        assert!((report.usage.audio_seconds - seconds).abs() < 0.01);
        assert_eq!(report.cost_usd, 0.0);
        assert!(report.timing.time_to_first_audio.is_some());
        // Another voice setting is another espeak-ng voice, and still speaks.
        let brisk = tts.for_voice("brisk").expect("mapped");
        let mut session = brisk.start().await.expect("session");
        session
            .input
            .push_text("Brisk voice. ")
            .await
            .expect("text");
        session.input.finish().await.expect("finish");
        let mut brisk_samples = 0;
        while let Some(event) = session.events.recv().await {
            match event {
                TtsEvent::Audio(chunk) => brisk_samples += chunk.pcm.len(),
                TtsEvent::Done(report) => {
                    assert!(report.model.contains("en-us+m3"), "{}", report.model);
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(brisk_samples > 0);
    }

    #[tokio::test]
    async fn cancel_stops_the_speech_at_once() {
        let tts = EspeakTts::new(EspeakConfig::default());
        let mut session = tts.start().await.expect("session");
        for _ in 0..20 {
            session
                .input
                .push_text("This is a long reply that the candidate will interrupt. ")
                .await
                .expect("text");
        }
        let first = tokio::time::timeout(Duration::from_secs(60), session.events.recv())
            .await
            .expect("in time");
        assert!(matches!(first, Some(TtsEvent::Audio(_))), "{first:?}");
        session.input.cancel().await.expect("cancel");
        let mut after = 0;
        let terminal = loop {
            match tokio::time::timeout(Duration::from_secs(30), session.events.recv())
                .await
                .expect("ends in time")
            {
                Some(TtsEvent::Audio(_)) => after += 1,
                Some(terminal) => break terminal,
                None => panic!("no terminal event"),
            }
        };
        let TtsEvent::Failed { error, .. } = terminal else {
            panic!("{terminal:?}")
        };
        assert_eq!(error.category, ErrorCategory::Cancelled);
        // At most the rest of one sentence was already queued; not the other nineteen.
        assert!(after < 10, "{after} chunks after cancel");
        assert!(
            session.input.push_text("more ").await.is_err(),
            "the session is over"
        );
    }
}
