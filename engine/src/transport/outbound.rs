//! Outbound audio: one 20 ms PCM frame in (at any [`OpusRate`]: the encoder takes the
//! synthesizer's rate as it comes), one Opus RTP packet out.
//!
//! [`OutboundAudio`] is the sans-IO part (Opus encoder + RTP sequence/timestamp state);
//! [`AudioSender`] is what the playback side holds: it encodes on the caller's thread and hands
//! the packet to the session's writer task through a bounded queue, never blocking or sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::rtp;
use tokio::sync::mpsc;

use super::codec::{FORMANT_COMPLEXITY, OpusRate, VoiceEncoder, VoiceKind, packet_samples};
use super::stats::{TransportStats, bump};
use super::{RTP_CLOCK_RATE, RTP_FRAME_TICKS, TransportError};

/// Encoded packets queued between [`AudioSender::send_frame`] and the writer task (500 ms).
/// Normally empty (the writer drains at once); it fills only while the runtime or the stack
/// stalls. When full, the newest frame is dropped and counted (`frames_send_dropped`).
/// [`AudioSender::discard_queued`] empties it (barge-in).
pub const OUTBOUND_QUEUE_CAPACITY: usize = 25;
/// A gap between two sends longer than this is a pause in the interviewer's audio (never
/// scheduling jitter): the RTP timestamp skips the silent time and the next packet is marked.
pub const PAUSE_THRESHOLD: Duration = Duration::from_secs(1);
/// After [`AudioSender::mark_talkspurt`] (the caller says a new utterance starts), any gap
/// longer than this (two frame intervals) is treated as a pause.
pub const TALKSPURT_PAUSE_THRESHOLD: Duration = Duration::from_millis(40);
/// Longest pause reflected in the timestamp (one minute); longer ones count as one minute.
const MAX_PAUSE_FRAMES: u32 = 3_000;

/// A packet queued for the writer task, tagged with the discard generation it was sent in.
#[derive(Debug)]
pub(crate) struct Queued {
    pub(crate) generation: u64,
    pub(crate) packet: rtp::Packet,
}
/// Packet loss the encoder's in-band FEC is sized for.
const EXPECTED_LOSS_PERCENT: u8 = 5;
/// Largest Opus payload we produce (far above what 20 ms of voice needs).
const MAX_OPUS_PAYLOAD: usize = 1_275;

/// Opus encoder and RTP header state of one outbound stream.
pub struct OutboundAudio {
    /// The encoder of the rate frames came at last; a frame at another rate replaces it.
    encoder: Option<(OpusRate, VoiceEncoder)>,
    /// Encoder complexity (0–10) for a [`VoiceKind::Neural`] voice.
    complexity: u8,
    /// The kind of voice being sent, which sets the encoder's complexity.
    voice: VoiceKind,
    ssrc: u32,
    payload_type: u8,
    seq: u16,
    ts: u32,
    marker_next: bool,
    buf: Vec<u8>,
}

impl std::fmt::Debug for OutboundAudio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundAudio")
            .field("ssrc", &self.ssrc)
            .field("payload_type", &self.payload_type)
            .field("seq", &self.seq)
            .field("ts", &self.ts)
            .finish_non_exhaustive()
    }
}

impl OutboundAudio {
    /// A mono VoIP stream (in-band FEC on) writing RTP with `ssrc` and `payload_type`; its
    /// encoder is made at the rate of the first frame. Sequence number and timestamp start at
    /// random values (RFC 3550 §5.1).
    pub fn new(ssrc: u32, payload_type: u8) -> Self {
        Self {
            encoder: None,
            complexity: super::codec::DEFAULT_COMPLEXITY,
            voice: VoiceKind::Neural,
            ssrc,
            payload_type,
            seq: rand::random(),
            ts: rand::random(),
            marker_next: true,
            buf: vec![0; MAX_OPUS_PAYLOAD],
        }
    }

    /// The encoder complexity (0–10; [`VoiceEncoder::set_complexity`] takes more as 10) for a
    /// neural voice, in the encoders this stream makes from now on.
    pub fn with_complexity(mut self, complexity: u8) -> Self {
        self.complexity = complexity;
        self
    }

    /// The voice of the frames that follow: the encoder's complexity follows it (a formant
    /// voice is always encoded at [`FORMANT_COMPLEXITY`]), from the next frame on. A change
    /// starts a fresh encoder, as a change of rate does: `opus-rs` (0.1.40) applies a new
    /// complexity to its SILK layer only when that layer is set up, so setting it on a running
    /// encoder would change nothing. Voices change between utterances, in silence.
    pub fn set_voice(&mut self, voice: VoiceKind) {
        if voice != self.voice {
            self.voice = voice;
            self.encoder = None;
        }
    }

    fn current_complexity(&self) -> u8 {
        match self.voice {
            VoiceKind::Neural => self.complexity,
            VoiceKind::Formant => FORMANT_COMPLEXITY,
        }
    }

    /// A pause in sending: the timestamp (not the sequence number) skips `frames` frames of
    /// silence and the next packet starts a talkspurt (RFC 3551 §4.1), so the receiver's
    /// jitter buffer sees timestamps that follow real time.
    pub fn skip_silence(&mut self, frames: u32) {
        self.ts = self.ts.wrapping_add(frames.wrapping_mul(RTP_FRAME_TICKS));
        self.marker_next = true;
    }

    /// The next packet will carry the RTP marker bit (start of a talkspurt).
    pub fn mark_talkspurt(&mut self) {
        self.marker_next = true;
    }

    /// Encodes one 20 ms frame of PCM at `rate` (exactly `rate.frame_samples()` samples) into
    /// the next RTP packet. Sequence number +1 and timestamp +960 per call, whatever happens to
    /// the packet later. A frame at another rate than the previous one starts a fresh encoder
    /// at its rate (the synthesizer changed; in practice between utterances).
    pub fn packetize(
        &mut self,
        pcm: &[i16],
        rate: OpusRate,
    ) -> Result<rtp::Packet, TransportError> {
        if pcm.len() != rate.frame_samples() {
            return Err(TransportError::InvalidFrame {
                samples: pcm.len(),
                rate,
            });
        }
        let complexity = self.current_complexity();
        let encoder = match &mut self.encoder {
            Some((current, encoder)) if *current == rate => encoder,
            slot => {
                let refused = |e| TransportError::Internal(format!("opus encoder: {e}"));
                let mut encoder =
                    VoiceEncoder::new(rate, EXPECTED_LOSS_PERCENT).map_err(refused)?;
                encoder.set_complexity(complexity).map_err(refused)?;
                &mut slot.insert((rate, encoder)).1
            }
        };
        let len = encoder
            .encode(pcm, &mut self.buf)
            .map_err(|e| TransportError::Internal(format!("opus encode: {e}")))?;
        let packet = self.next_packet(Bytes::copy_from_slice(&self.buf[..len]));
        Ok(packet)
    }

    /// Wraps one already-encoded 20 ms Opus packet into the next RTP packet (replay of
    /// pre-encoded audio, e.g. by the load harness). Refused unless it decodes as 20 ms. The
    /// payload is shared, not copied: replaying costs no allocation per frame.
    pub fn packetize_encoded(&mut self, opus: &Bytes) -> Result<rtp::Packet, TransportError> {
        let ticks = packet_samples(opus, RTP_CLOCK_RATE).unwrap_or(0);
        if opus.is_empty() || opus.len() > MAX_OPUS_PAYLOAD || ticks != RTP_FRAME_TICKS as usize {
            return Err(TransportError::InvalidFrame {
                samples: ticks,
                rate: OpusRate::Hz48000,
            });
        }
        Ok(self.next_packet(opus.clone()))
    }

    /// RTP payload type used (the one negotiated for Opus).
    pub fn payload_type(&self) -> u8 {
        self.payload_type
    }

    /// RTP SSRC of this stream.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Advances sequence number and timestamp past one frame without producing a packet
    /// (a frame dropped before encoding: the receiver sees it as a lost packet).
    pub fn skip_frame(&mut self) {
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(RTP_FRAME_TICKS);
    }

    fn next_packet(&mut self, payload: Bytes) -> rtp::Packet {
        let header = rtp::header::Header {
            version: 2,
            marker: std::mem::take(&mut self.marker_next),
            payload_type: self.payload_type,
            sequence_number: self.seq,
            timestamp: self.ts,
            ssrc: self.ssrc,
            ..Default::default()
        };
        self.skip_frame();
        rtp::Packet { header, payload }
    }
}

/// The sending half of a media session: owned by whoever paces playback.
#[derive(Debug)]
pub struct AudioSender {
    core: OutboundAudio,
    tx: mpsc::Sender<Queued>,
    stats: Arc<TransportStats>,
    ended: Arc<AtomicBool>,
    /// Packets queued in an older generation are discarded by the writer.
    generation: Arc<AtomicU64>,
    /// When the previous frame was sent (for pause detection).
    last_send: Option<Instant>,
    /// The caller marked the next frame as a talkspurt start.
    talkspurt: bool,
    /// Holding the sender keeps the session open (see `SessionControl`).
    keepalive: Option<super::session::KeepAlive>,
}

impl AudioSender {
    pub(crate) fn new(
        core: OutboundAudio,
        tx: mpsc::Sender<Queued>,
        stats: Arc<TransportStats>,
        ended: Arc<AtomicBool>,
        generation: Arc<AtomicU64>,
    ) -> Self {
        Self {
            core,
            tx,
            stats,
            ended,
            generation,
            last_send: None,
            talkspurt: false,
            keepalive: None,
        }
    }

    pub(crate) fn with_keepalive(mut self, keepalive: super::session::KeepAlive) -> Self {
        self.keepalive = Some(keepalive);
        self
    }

    /// Sends one 20 ms frame of mono PCM at `rate` (`rate.frame_samples()` samples): Opus-encodes
    /// it from that rate and queues one RTP packet (timestamp +960 per frame). Never blocks and
    /// never sleeps: pacing is the caller's job (call it every 20 ms).
    ///
    /// - a frame of the wrong length → [`TransportError::InvalidFrame`] (nothing advances);
    /// - the session has ended → [`TransportError::Closed`];
    /// - the outbound queue is full → the frame is dropped, counted in `frames_send_dropped`,
    ///   and `Ok(false)` is returned; the RTP clock still advances, so the peer conceals it.
    ///
    /// Returns `Ok(true)` when the packet was queued.
    pub fn send_frame(&mut self, pcm: &[i16], rate: OpusRate) -> Result<bool, TransportError> {
        if pcm.len() != rate.frame_samples() {
            return Err(TransportError::InvalidFrame {
                samples: pcm.len(),
                rate,
            });
        }
        if !self.ready()? {
            return Ok(false);
        }
        let packet = match self.core.packetize(pcm, rate) {
            Ok(p) => p,
            Err(e) => {
                bump(&self.stats.encode_errors, 1);
                self.core.skip_frame();
                return Err(e);
            }
        };
        self.enqueue(packet)
    }

    /// The voice of the frames that follow, which sets the encoder's complexity
    /// ([`OutboundAudio::set_voice`]).
    pub fn set_voice(&mut self, voice: VoiceKind) {
        self.core.set_voice(voice);
    }

    /// Like [`Self::send_frame`] for one already-encoded 20 ms Opus packet (replaying
    /// pre-encoded audio costs no encoding; see
    /// [`encode_opus_frames`](super::client::encode_opus_frames)). A packet that is not 20 ms
    /// of Opus is [`TransportError::InvalidFrame`]. The payload is shared with the caller's
    /// copy (a reference count, no allocation per frame).
    pub fn send_opus(&mut self, opus: &Bytes) -> Result<bool, TransportError> {
        let ticks = packet_samples(opus, RTP_CLOCK_RATE).unwrap_or(0);
        if opus.is_empty() || ticks != RTP_FRAME_TICKS as usize {
            return Err(TransportError::InvalidFrame {
                samples: ticks,
                rate: OpusRate::Hz48000,
            });
        }
        if !self.ready()? {
            return Ok(false);
        }
        let packet = self.core.packetize_encoded(opus)?;
        self.enqueue(packet)
    }

    /// RTP payload type of the outbound stream (the one negotiated for Opus).
    pub fn payload_type(&self) -> u8 {
        self.core.payload_type()
    }

    /// `Err(Closed)` once the session ended; `Ok(false)` (frame dropped and counted, RTP clock
    /// advanced) when the queue is full; `Ok(true)` when a packet can be queued.
    fn ready(&mut self) -> Result<bool, TransportError> {
        if self.ended.load(Ordering::Acquire) || self.tx.is_closed() {
            return Err(TransportError::Closed);
        }
        let now = Instant::now();
        let talkspurt = std::mem::take(&mut self.talkspurt);
        if let Some(last) = self.last_send.replace(now) {
            let gap = now.saturating_duration_since(last);
            let threshold = if talkspurt {
                TALKSPURT_PAUSE_THRESHOLD
            } else {
                PAUSE_THRESHOLD
            };
            if gap > threshold {
                // One frame interval is the normal spacing; the rest was silence.
                let frames = (gap.as_millis() / 20).saturating_sub(1);
                self.core.skip_silence(
                    u32::try_from(frames)
                        .unwrap_or(MAX_PAUSE_FRAMES)
                        .min(MAX_PAUSE_FRAMES),
                );
            }
        }
        if self.tx.capacity() == 0 {
            self.core.skip_frame();
            bump(&self.stats.frames_send_dropped, 1);
            return Ok(false);
        }
        Ok(true)
    }

    /// Drops every packet queued but not yet handed to the stack (barge-in: stop the
    /// interviewer's audio now). Counted in `frames_discarded`; the next frame starts a
    /// talkspurt. Normally the queue is empty and this discards nothing.
    pub fn discard_queued(&mut self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.mark_talkspurt();
    }

    fn enqueue(&mut self, packet: rtp::Packet) -> Result<bool, TransportError> {
        let queued = Queued {
            generation: self.generation.load(Ordering::Acquire),
            packet,
        };
        match self.tx.try_send(queued) {
            Ok(()) => {
                bump(&self.stats.frames_sent, 1);
                Ok(true)
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                bump(&self.stats.frames_send_dropped, 1);
                Ok(false)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(TransportError::Closed),
        }
    }

    /// Marks the next frame as the start of a talkspurt, e.g. the first frame of a reply: it
    /// carries the RTP marker bit, and if nothing was sent for more than
    /// [`TALKSPURT_PAUSE_THRESHOLD`] its timestamp skips the silent time so the receiver's
    /// jitter buffer sees real-time timestamps. (Without this call, only gaps longer than
    /// [`PAUSE_THRESHOLD`] are treated so.) Sequence numbers always stay contiguous.
    pub fn mark_talkspurt(&mut self) {
        self.talkspurt = true;
        self.core.mark_talkspurt();
    }

    /// Counters of the session this sender belongs to.
    pub fn stats(&self) -> &Arc<TransportStats> {
        &self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rate the engine's default synthesizer (ElevenLabs `pcm_16000`) delivers.
    const R: OpusRate = OpusRate::Hz16000;

    /// A voiced signal: two harmonics under a syllable-rate envelope, one second.
    fn voiced() -> Vec<Vec<i16>> {
        (0..50)
            .map(|f| {
                (0..R.frame_samples())
                    .map(|i| {
                        let t = (f * R.frame_samples() + i) as f64 / f64::from(R.hz());
                        let envelope = 0.5 + 0.5 * (t * 25.0).sin().abs();
                        let voice = (t * 940.0).sin() + 0.5 * (t * 1880.0).sin();
                        (voice * envelope * 6_000.0) as i16
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_formant_voice_is_encoded_at_its_own_complexity_from_the_next_frame() {
        let frames = voiced();
        // Each frame's payload, the voice switched before the frames `switches` name.
        let encode = |complexity: u8, switches: &[(usize, VoiceKind)]| -> Vec<Vec<u8>> {
            let mut out = OutboundAudio::new(7, 111).with_complexity(complexity);
            frames
                .iter()
                .enumerate()
                .map(|(i, frame)| {
                    for (at, voice) in switches {
                        if *at == i {
                            out.set_voice(*voice);
                        }
                    }
                    out.packetize(frame, R).expect("encode").payload.to_vec()
                })
                .collect()
        };
        let neural = encode(1, &[]);
        let formant = encode(FORMANT_COMPLEXITY, &[]);
        assert_ne!(neural, formant, "the two complexities code differently");
        assert_eq!(
            encode(1, &[(0, VoiceKind::Formant)]),
            formant,
            "a formant voice from the first frame is coded at the formant complexity"
        );
        // Switched halfway: the first half as before, the second half not; and back again.
        let switched = encode(1, &[(25, VoiceKind::Formant)]);
        assert_eq!(switched[..25], neural[..25]);
        assert_ne!(switched[25..], neural[25..]);
        let back = encode(1, &[(10, VoiceKind::Formant), (20, VoiceKind::Neural)]);
        assert_eq!(back[..10], neural[..10]);
        assert_ne!(back[10..20], neural[10..20]);
        assert_eq!(
            back[20..],
            encode(1, &[(20, VoiceKind::Formant), (20, VoiceKind::Neural)])[20..],
            "switching back codes at the configured complexity again (from a fresh encoder)"
        );
    }

    #[test]
    fn the_streams_complexity_reaches_its_encoder() {
        let frames = voiced();
        let encode = |complexity: u8| -> Vec<u8> {
            let mut out = OutboundAudio::new(7, 111).with_complexity(complexity);
            frames
                .iter()
                .flat_map(|frame| out.packetize(frame, R).expect("encode").payload.to_vec())
                .collect()
        };
        // The encoder is deterministic: the same complexity codes the same bytes, another one
        // codes them differently.
        assert_eq!(encode(0), encode(0));
        assert_ne!(encode(0), encode(10));
        assert_eq!(encode(10), encode(200), "above 10 is taken as 10");
    }

    #[test]
    fn timestamps_advance_960_and_sequence_by_one_per_frame() {
        let mut out = OutboundAudio::new(7, 111);
        let frame = vec![0i16; R.frame_samples()];
        let a = out.packetize(&frame, R).expect("encode");
        let b = out.packetize(&frame, R).expect("encode");
        out.skip_frame();
        let c = out.packetize(&frame, R).expect("encode");
        assert_eq!(b.header.timestamp.wrapping_sub(a.header.timestamp), 960);
        assert_eq!(
            b.header
                .sequence_number
                .wrapping_sub(a.header.sequence_number),
            1
        );
        assert_eq!(c.header.timestamp.wrapping_sub(b.header.timestamp), 1920);
        assert!(a.header.marker && !b.header.marker);
        assert_eq!((a.header.ssrc, a.header.payload_type), (7, 111));
    }

    #[test]
    fn a_pause_skips_timestamps_but_not_sequence_numbers() {
        let mut out = OutboundAudio::new(7, 111);
        let frame = vec![0i16; R.frame_samples()];
        let a = out.packetize(&frame, R).expect("encode");
        out.skip_silence(24);
        let b = out.packetize(&frame, R).expect("encode");
        assert_eq!(
            b.header
                .sequence_number
                .wrapping_sub(a.header.sequence_number),
            1
        );
        assert_eq!(
            b.header.timestamp.wrapping_sub(a.header.timestamp),
            25 * 960
        );
        assert!(
            b.header.marker,
            "the first packet after a pause starts a talkspurt"
        );
    }

    #[test]
    fn a_pre_encoded_packet_is_sent_without_copying_its_payload() {
        let silence = vec![0i16; OpusRate::Hz48000.frame_samples()];
        let frames = crate::transport::client::encode_opus_frames(&[silence], OpusRate::Hz48000)
            .expect("encode");
        let mut out = OutboundAudio::new(7, 111);
        let packet = out.packetize_encoded(&frames[0]).expect("a 20 ms packet");
        assert_eq!(
            packet.payload.as_ptr(),
            frames[0].as_ptr(),
            "the RTP payload is the caller's buffer"
        );
        assert!(matches!(
            out.packetize_encoded(&Bytes::new()),
            Err(TransportError::InvalidFrame { .. })
        ));
    }

    #[test]
    fn frames_at_any_opus_rate_become_20_ms_packets_on_the_48_khz_rtp_clock() {
        let mut out = OutboundAudio::new(7, 111);
        let mut last: Option<u32> = None;
        for rate in [
            OpusRate::Hz16000,
            OpusRate::Hz24000,
            OpusRate::Hz48000,
            OpusRate::Hz16000,
        ] {
            let mut tone = crate::transport::ToneGenerator::new(rate, 300.0, 0.3);
            let packet = out.packetize(&tone.next_frame(), rate).expect("encode");
            assert_eq!(
                packet_samples(&packet.payload, RTP_CLOCK_RATE),
                Some(960),
                "{rate}: 20 ms"
            );
            if let Some(previous) = last {
                assert_eq!(
                    packet.header.timestamp.wrapping_sub(previous),
                    960,
                    "{rate}"
                );
            }
            last = Some(packet.header.timestamp);
        }
    }

    #[test]
    fn a_wrong_length_frame_is_refused() {
        let mut out = OutboundAudio::new(7, 111);
        assert!(matches!(
            out.packetize(&[0; 480], OpusRate::Hz48000),
            Err(TransportError::InvalidFrame { samples: 480, .. })
        ));
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_blocking() {
        let (tx, _rx) = mpsc::channel(2);
        let stats = Arc::new(TransportStats::default());
        let mut s = AudioSender::new(
            OutboundAudio::new(1, 111),
            tx,
            stats.clone(),
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let frame = vec![0i16; R.frame_samples()];
        let results: Vec<bool> = (0..5)
            .map(|_| s.send_frame(&frame, R).expect("send"))
            .collect();
        assert_eq!(results, [true, true, false, false, false]);
        let st = stats.snapshot();
        assert_eq!((st.frames_sent, st.frames_send_dropped), (2, 3));
    }

    #[test]
    fn sending_after_the_session_ended_is_an_error() {
        let (tx, _rx) = mpsc::channel(2);
        let ended = Arc::new(AtomicBool::new(true));
        let mut s = AudioSender::new(
            OutboundAudio::new(1, 111),
            tx,
            Arc::new(TransportStats::default()),
            ended,
            Arc::new(AtomicU64::new(0)),
        );
        assert!(matches!(
            s.send_frame(&[0; 320], R),
            Err(TransportError::Closed)
        ));
    }
}
