//! `InboundAudio`: RTP Opus packets in, 20 ms frames of mono PCM out at the session's
//! [`OpusRate`] (the decoder resamples; 16 kHz for the engine's speech-to-text).
//!
//! Sans-IO: the session's inbound task calls [`InboundAudio::push_packet`] for every RTP packet,
//! [`InboundAudio::poll_timeout`] at [`InboundAudio::next_deadline`], and
//! [`InboundAudio::finish`] at the end of the stream; each appends ready frames to a `Vec`.
//!
//! Pipeline: [`ReorderBuffer`] (small window by sequence number) → gap handling by RTP timestamp
//! → Opus decode → re-framing into exactly 20 ms frames (so packets of 10, 20, 40 or 60 ms all
//! come out as 20 ms frames).
//!
//! Timestamps count in the 48 kHz RTP clock whatever the decoding rate; gaps are measured in
//! it and converted to samples at the decoding rate (every Opus rate divides 48 kHz).
//!
//! Gaps, measured by RTP timestamp between the end of the previous packet and the next one:
//! - **loss** (the reorder buffer declared packets lost): up to [`MAX_CONCEAL_TICKS`] are
//!   concealed by libopus (PLC: decode with no data; the last 20 ms just before the next packet
//!   is decoded from that packet's in-band FEC, which libopus turns into PLC when the packet
//!   carries none); any rest of the gap is digital silence;
//! - **DTX** (sequence numbers contiguous but the timestamp jumped): digital silence for the
//!   gap, so the timeline stays continuous for VAD and turn timing;
//! - either kind longer than [`MAX_FILL_TICKS`], or a timestamp going backwards: counted as a
//!   discontinuity, nothing is filled, the timeline continues from the new packet;
//! - a fill is capped at the wall-clock time since the previous packet plus
//!   [`FILL_SLACK_TICKS`] (also a discontinuity), so jumping timestamps cannot make us
//!   synthesize audio faster than real time.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::codec::{OpusError, OpusRate, VoiceDecoder, packet_samples};
use super::reorder::{Rejected, Released, ReorderBuffer};
use super::stats::{TransportStats, bump};
use super::{AudioFrame, FrameOrigin, RTP_CLOCK_RATE, RTP_FRAME_TICKS};

/// Inbound Opus packets in this process, by whether they code audio above 8 kHz.
static PACKETS_WIDEBAND: std::sync::LazyLock<prometheus_client::metrics::counter::Counter> =
    std::sync::LazyLock::new(Default::default);
static PACKETS_WIDER: std::sync::LazyLock<prometheus_client::metrics::counter::Counter> =
    std::sync::LazyLock::new(Default::default);

/// Whether an Opus packet codes audio above 8 kHz (its TOC byte's configuration, RFC 6716
/// §3.1: hybrid, 12–15, or CELT at super-wideband or fullband, 24–31): a band we decode only to
/// throw away, since the engine hears the candidate at 16 kHz. `None` for an empty packet.
pub fn codes_above_wideband(packet: &[u8]) -> Option<bool> {
    let config = packet.first()? >> 3;
    Some(matches!(config, 12..=15 | 24..=31))
}

/// Inbound Opus packets received in this process: `(wideband or narrower, wider)`. The second
/// stays near 0 while browsers honour the `maxplaybackrate` of our answers
/// ([`super::sdp::limit_opus_playback_rate`]).
pub fn packets_by_band() -> (u64, u64) {
    (PACKETS_WIDEBAND.get(), PACKETS_WIDER.get())
}

/// The same counts as counters for the server's `/metrics` registry.
pub fn packets_by_band_counters() -> (
    prometheus_client::metrics::counter::Counter,
    prometheus_client::metrics::counter::Counter,
) {
    (PACKETS_WIDEBAND.clone(), PACKETS_WIDER.clone())
}

/// Packets that may wait behind a missing one before it is declared lost.
pub const REORDER_WINDOW_PACKETS: usize = 3;
/// Longest a packet waits behind a missing one before it is declared lost.
pub const REORDER_MAX_WAIT: Duration = Duration::from_millis(60);
/// Longest loss concealed by PLC/FEC (100 ms, in RTP ticks); the rest of a longer gap is
/// silence.
pub const MAX_CONCEAL_TICKS: u32 = 5 * RTP_FRAME_TICKS;
/// Longest gap filled at all (1 s, in RTP ticks); a longer one is a discontinuity.
pub const MAX_FILL_TICKS: u32 = RTP_CLOCK_RATE;
/// A gap is never filled with more than the wall-clock time since the previous packet plus
/// this (100 ms, in RTP ticks): a peer cannot make us synthesize audio faster than real time by
/// jumping its timestamps.
pub const FILL_SLACK_TICKS: u32 = 5 * RTP_FRAME_TICKS;
/// Largest Opus packet duration (120 ms) in RTP ticks.
const MAX_PACKET_TICKS: u32 = 5_760;
/// Opus PLC/FEC sizes must be multiples of 2.5 ms (in RTP ticks).
const PLC_GRANULE_TICKS: u32 = 120;

#[derive(Debug, Clone, Copy)]
struct LastPacket {
    ts: u32,
    /// Its duration in RTP ticks.
    ticks: u32,
}

/// See the module docs.
pub struct InboundAudio {
    reorder: ReorderBuffer<Vec<u8>>,
    decoder: VoiceDecoder,
    rate: OpusRate,
    /// Samples in one 20 ms frame at `rate`.
    frame: usize,
    /// RTP ticks per sample at `rate`.
    tick: u32,
    last: Option<LastPacket>,
    /// When the previous packet was released to the decoder.
    last_at: Option<Instant>,
    /// Samples not yet making up a whole frame, with the origin of each run of them.
    pending: Vec<i16>,
    segments: VecDeque<(FrameOrigin, usize)>,
    next_index: u64,
    scratch: Vec<i16>,
    released: Vec<Released<Vec<u8>>>,
    stats: Arc<TransportStats>,
}

impl std::fmt::Debug for InboundAudio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundAudio")
            .field("held", &self.reorder.held())
            .field("pending", &self.pending.len())
            .field("next_index", &self.next_index)
            .finish_non_exhaustive()
    }
}

impl InboundAudio {
    /// A decoder for one inbound stream producing PCM at `rate`; counters go to `stats`.
    pub fn new(stats: Arc<TransportStats>, rate: OpusRate) -> Result<Self, OpusError> {
        let tick = rate.rtp_ticks_per_sample();
        let max_packet = (MAX_PACKET_TICKS / tick) as usize;
        Ok(Self {
            reorder: ReorderBuffer::new(REORDER_WINDOW_PACKETS, REORDER_MAX_WAIT),
            decoder: VoiceDecoder::new(rate)?,
            rate,
            frame: rate.frame_samples(),
            tick,
            last: None,
            last_at: None,
            pending: Vec::with_capacity(max_packet + rate.frame_samples()),
            segments: VecDeque::new(),
            next_index: 0,
            scratch: vec![0; max_packet],
            released: Vec::new(),
            stats,
        })
    }

    /// When [`Self::poll_timeout`] should next be called, if a packet is waiting behind a hole.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.reorder.next_deadline()
    }

    /// Takes one RTP packet (sequence number, timestamp, Opus payload).
    pub fn push_packet(
        &mut self,
        seq: u16,
        ts: u32,
        payload: &[u8],
        now: Instant,
        out: &mut Vec<AudioFrame>,
    ) {
        bump(&self.stats.packets_in, 1);
        bump(&self.stats.bytes_in, payload.len() as u64);
        if let Some(wider) = codes_above_wideband(payload) {
            let band = if wider {
                &PACKETS_WIDER
            } else {
                &PACKETS_WIDEBAND
            };
            band.inc();
        }
        let mut released = std::mem::take(&mut self.released);
        match self
            .reorder
            .push(seq, ts, payload.to_vec(), now, &mut released)
        {
            Ok(true) => bump(&self.stats.packets_reordered, 1),
            Ok(false) => {}
            Err(Rejected::Late | Rejected::Duplicate) => bump(&self.stats.packets_late, 1),
        }
        self.process(&mut released, now, out);
        self.released = released;
    }

    /// Gives up on holes whose wait is over.
    pub fn poll_timeout(&mut self, now: Instant, out: &mut Vec<AudioFrame>) {
        let mut released = std::mem::take(&mut self.released);
        self.reorder.flush_due(now, &mut released);
        self.process(&mut released, now, out);
        self.released = released;
    }

    /// End of stream: releases everything held. A trailing partial frame is padded with silence.
    pub fn finish(&mut self, now: Instant, out: &mut Vec<AudioFrame>) {
        let mut released = std::mem::take(&mut self.released);
        self.reorder.release_all(&mut released);
        self.process(&mut released, now, out);
        self.released = released;
        if !self.pending.is_empty() {
            let pad = self.frame - self.pending.len();
            self.append_silence(pad);
            self.emit_frames(now, out);
        }
    }

    fn process(
        &mut self,
        released: &mut Vec<Released<Vec<u8>>>,
        now: Instant,
        out: &mut Vec<AudioFrame>,
    ) {
        let mut lost = 0u64;
        for item in released.drain(..) {
            match item {
                Released::Lost { count } => {
                    lost += count;
                    bump(&self.stats.packets_lost, count);
                }
                Released::Packet { ts, payload, .. } => {
                    self.fill_gap(lost, ts, &payload, now);
                    self.decode(ts, &payload);
                    self.last_at = Some(now);
                    lost = 0;
                }
            }
        }
        // A trailing `Lost` (only from `finish`) has no next packet to measure the gap by;
        // nothing is filled for it.
        self.emit_frames(now, out);
    }

    /// Fills the timeline between the end of the previous packet and `ts`.
    fn fill_gap(&mut self, lost: u64, ts: u32, next_payload: &[u8], now: Instant) {
        let Some(last) = self.last else {
            return;
        };
        let expected = last.ts.wrapping_add(last.ticks);
        let gap = ts.wrapping_sub(expected) as i32;
        if gap == 0 {
            return;
        }
        if lost == 0 {
            bump(&self.stats.ts_irregular, 1);
        }
        if gap < 0 || gap as u32 > MAX_FILL_TICKS {
            bump(&self.stats.discontinuities, 1);
            return;
        }
        let mut gap = gap as u32;
        let elapsed = self
            .last_at
            .map_or(Duration::ZERO, |at| now.saturating_duration_since(at));
        let elapsed_ticks =
            u32::try_from(elapsed.as_micros() * u128::from(RTP_CLOCK_RATE) / 1_000_000)
                .unwrap_or(u32::MAX);
        let allowed = elapsed_ticks.saturating_add(FILL_SLACK_TICKS);
        if gap > allowed {
            bump(&self.stats.discontinuities, 1);
            gap = allowed;
        }
        if lost == 0 {
            // DTX (or a sender that skipped time): silence keeps the timeline continuous.
            self.append_silence(self.samples(gap));
            return;
        }
        let conceal = gap.min(MAX_CONCEAL_TICKS) / PLC_GRANULE_TICKS * PLC_GRANULE_TICKS;
        // FEC recovers the frame just before `next_payload`, so only when the whole gap is
        // concealed (no silence between the concealed audio and the next packet).
        let fec = if conceal == gap {
            conceal.min(RTP_FRAME_TICKS)
        } else {
            0
        };
        let mut plc = conceal - fec;
        while plc > 0 {
            let chunk = plc.min(RTP_FRAME_TICKS);
            self.decode_into_pending(&[], self.samples(chunk), false, FrameOrigin::Concealed);
            plc -= chunk;
        }
        if fec > 0 {
            let samples = self.samples(fec);
            self.decode_into_pending(next_payload, samples, true, FrameOrigin::Concealed);
        }
        self.append_silence(self.samples(gap - conceal));
    }

    /// Samples at the decoding rate in `ticks` of the RTP clock.
    fn samples(&self, ticks: u32) -> usize {
        (ticks / self.tick) as usize
    }

    /// Decodes `input` (empty = PLC) producing exactly `samples` samples of `origin`.
    fn decode_into_pending(
        &mut self,
        input: &[u8],
        samples: usize,
        fec: bool,
        origin: FrameOrigin,
    ) {
        let samples = samples.min(self.scratch.len());
        let produced = match self
            .decoder
            .decode(input, &mut self.scratch[..samples], fec)
        {
            Ok(n) => n.min(samples),
            Err(_) => {
                bump(&self.stats.decode_errors, 1);
                0
            }
        };
        self.pending.extend_from_slice(&self.scratch[..produced]);
        self.push_segment(origin, produced);
        if produced < samples {
            self.append_silence(samples - produced);
        }
    }

    /// Decodes one packet at `ts` and remembers where it ends.
    fn decode(&mut self, ts: u32, payload: &[u8]) {
        let fallback = self.last.map_or(RTP_FRAME_TICKS, |l| l.ticks.max(1));
        if payload.is_empty() {
            // An empty payload would mean PLC to the codec; treat it as a lost packet.
            let ticks = fallback / PLC_GRANULE_TICKS * PLC_GRANULE_TICKS;
            self.decode_into_pending(&[], self.samples(ticks), false, FrameOrigin::Concealed);
            self.last = Some(LastPacket {
                ts,
                ticks: fallback,
            });
            return;
        }
        match self.decoder.decode(payload, &mut self.scratch, false) {
            Ok(n) => {
                let n = n.min(self.scratch.len());
                self.pending.extend_from_slice(&self.scratch[..n]);
                self.push_segment(FrameOrigin::Decoded, n);
                self.last = Some(LastPacket {
                    ts,
                    ticks: n as u32 * self.tick,
                });
            }
            Err(_) => {
                bump(&self.stats.decode_errors, 1);
                let ticks = packet_samples(payload, RTP_CLOCK_RATE)
                    .filter(|&n| n > 0 && n <= MAX_PACKET_TICKS as usize)
                    .map_or(fallback, |n| n as u32);
                let plc = ticks / PLC_GRANULE_TICKS * PLC_GRANULE_TICKS;
                self.decode_into_pending(&[], self.samples(plc), false, FrameOrigin::Concealed);
                self.append_silence(self.samples(ticks - plc));
                self.last = Some(LastPacket { ts, ticks });
            }
        }
    }

    fn append_silence(&mut self, samples: usize) {
        if samples == 0 {
            return;
        }
        self.pending.resize(self.pending.len() + samples, 0);
        self.push_segment(FrameOrigin::Silence, samples);
    }

    fn push_segment(&mut self, origin: FrameOrigin, samples: usize) {
        if samples == 0 {
            return;
        }
        match self.segments.back_mut() {
            Some((o, n)) if *o == origin => *n += samples,
            _ => self.segments.push_back((origin, samples)),
        }
    }

    fn emit_frames(&mut self, now: Instant, out: &mut Vec<AudioFrame>) {
        while self.pending.len() >= self.frame {
            let samples: Vec<i16> = self.pending.drain(..self.frame).collect();
            let mut need = self.frame;
            let mut origin = FrameOrigin::Decoded;
            while need > 0 {
                let Some((o, n)) = self.segments.front_mut() else {
                    break;
                };
                origin = origin.max(*o);
                let take = need.min(*n);
                *n -= take;
                need -= take;
                if *n == 0 {
                    self.segments.pop_front();
                }
            }
            match origin {
                FrameOrigin::Decoded => bump(&self.stats.frames_decoded, 1),
                FrameOrigin::Concealed => bump(&self.stats.frames_concealed, 1),
                FrameOrigin::Silence => bump(&self.stats.frames_silence, 1),
            }
            out.push(AudioFrame {
                samples,
                rate: self.rate,
                origin,
                index: self.next_index,
                received_at: now,
            });
            self.next_index += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::outbound::OutboundAudio;

    /// The engine decodes at the speech-to-text's rate.
    const RATE: OpusRate = OpusRate::Hz16000;
    /// A browser encodes from 48 kHz.
    const SENT: OpusRate = OpusRate::Hz48000;

    fn tone(frames: usize) -> Vec<Vec<i16>> {
        let mut tone_gen = crate::transport::ToneGenerator::new(SENT, 440.0, 0.3);
        (0..frames).map(|_| tone_gen.next_frame()).collect()
    }

    /// Encodes frames into (seq, ts, payload) triples the way the outbound side does.
    fn packets(frames: &[Vec<i16>]) -> Vec<(u16, u32, Vec<u8>)> {
        let mut enc = OutboundAudio::new(1, 111);
        frames
            .iter()
            .map(|f| {
                let p = enc.packetize(f, SENT).expect("encode");
                (
                    p.header.sequence_number,
                    p.header.timestamp,
                    p.payload.to_vec(),
                )
            })
            .collect()
    }

    fn run(pkts: &[(u16, u32, Vec<u8>)]) -> (Vec<AudioFrame>, crate::transport::StatsSnapshot) {
        let stats = Arc::new(TransportStats::default());
        let mut inb = InboundAudio::new(stats.clone(), RATE).expect("decoder");
        let mut out = Vec::new();
        let t0 = Instant::now();
        let ts0 = pkts.first().map_or(0, |p| p.1);
        let mut now = t0;
        for (s, t, p) in pkts {
            // Each packet arrives when its timestamp says (a real-time sender).
            let offset = u64::from(t.wrapping_sub(ts0)) * 1_000_000 / u64::from(RTP_CLOCK_RATE);
            now = now.max(t0 + Duration::from_micros(offset));
            inb.push_packet(*s, *t, p, now, &mut out);
        }
        inb.finish(now, &mut out);
        (out, stats.snapshot())
    }

    #[test]
    fn clean_stream_decodes_one_frame_per_packet() {
        let pk = packets(&tone(20));
        let (frames, st) = run(&pk);
        assert_eq!(frames.len(), 20);
        assert!(
            frames
                .iter()
                .all(|f| f.samples.len() == 320 && f.rate == RATE)
        );
        assert_eq!(st.frames_decoded, 20);
        assert_eq!(
            (st.packets_lost, st.ts_irregular, st.frames_concealed),
            (0, 0, 0)
        );
        let indices: Vec<u64> = frames.iter().map(|f| f.index).collect();
        assert_eq!(indices, (0..20).collect::<Vec<_>>());
        // The tone survives the codec (skip the codec's warm-up frame).
        assert!(frames[5].rms() > 0.1, "rms {}", frames[5].rms());
    }

    #[test]
    fn a_voice_sent_at_48_khz_reaches_the_engine_at_16_khz_with_its_pitch_and_level() {
        use crate::audio::testing::zero_crossing_hz;
        let sent = tone(50);
        let (frames, _) = run(&packets(&sent));
        let pcm: Vec<i16> = frames[10..]
            .iter()
            .flat_map(|f| f.samples.clone())
            .collect();
        let hz = zero_crossing_hz(&pcm, RATE.hz());
        assert!((hz - 440.0).abs() < 5.0, "heard at {hz:.1} Hz");
        let level = crate::transport::rms(&pcm) / crate::transport::rms(&sent.concat());
        assert!((level - 1.0).abs() < 0.2, "level ratio {level:.2}");
    }

    #[test]
    fn every_opus_rate_gets_20_ms_frames_and_the_same_timeline() {
        let mut pk = packets(&tone(10));
        pk.remove(4);
        for rate in OpusRate::ALL {
            let stats = Arc::new(TransportStats::default());
            let mut inb = InboundAudio::new(stats.clone(), rate).expect("decoder");
            let mut out = Vec::new();
            let now = Instant::now() + Duration::from_secs(1);
            for (s, t, p) in &pk {
                inb.push_packet(*s, *t, p, now, &mut out);
            }
            inb.finish(now, &mut out);
            assert_eq!(out.len(), 10, "{rate}: the lost packet is concealed");
            assert!(out.iter().all(|f| f.samples.len() == rate.frame_samples()));
            assert_eq!(stats.snapshot().frames_concealed, 1, "{rate}");
        }
    }

    #[test]
    fn lost_packets_are_concealed_and_the_timeline_kept() {
        let mut pk = packets(&tone(20));
        pk.remove(10);
        pk.remove(10);
        let (frames, st) = run(&pk);
        assert_eq!(frames.len(), 20, "two concealed frames fill the hole");
        assert_eq!(st.packets_lost, 2);
        assert_eq!(st.frames_concealed, 2);
        assert_eq!(frames[10].origin, FrameOrigin::Concealed);
        assert_eq!(frames[11].origin, FrameOrigin::Concealed);
        assert!(
            frames[10].rms() > 0.01,
            "PLC continues the tone, not silence"
        );
    }

    #[test]
    fn reordered_packets_decode_as_if_in_order() {
        let mut pk = packets(&tone(10));
        pk.swap(4, 5);
        let (frames, st) = run(&pk);
        assert_eq!(frames.len(), 10);
        assert_eq!(st.packets_reordered, 1);
        assert_eq!((st.packets_lost, st.frames_concealed), (0, 0));
    }

    #[test]
    fn a_dtx_gap_becomes_silence_frames() {
        let mut pk = packets(&tone(10));
        // Sequence stays contiguous, timestamps jump by 5 frames after packet 4.
        for p in pk.iter_mut().skip(5) {
            p.1 = p.1.wrapping_add(5 * RTP_FRAME_TICKS);
        }
        let (frames, st) = run(&pk);
        assert_eq!(frames.len(), 15);
        assert_eq!(st.frames_silence, 5);
        assert_eq!(st.ts_irregular, 1);
        assert!(
            frames[5..10]
                .iter()
                .all(|f| f.origin == FrameOrigin::Silence && f.rms() == 0.0)
        );
    }

    #[test]
    fn a_huge_timestamp_jump_is_a_discontinuity_not_a_fill() {
        let mut pk = packets(&tone(6));
        for p in pk.iter_mut().skip(3) {
            p.1 = p.1.wrapping_add(10 * RTP_CLOCK_RATE);
        }
        let (frames, st) = run(&pk);
        assert_eq!(frames.len(), 6);
        assert_eq!(st.discontinuities, 1);
    }

    #[test]
    fn a_timestamp_jump_faster_than_real_time_is_not_filled_beyond_the_slack() {
        let mut pk = packets(&tone(6));
        for p in pk.iter_mut().skip(3) {
            p.1 = p.1.wrapping_add(RTP_CLOCK_RATE / 2); // 500 ms ahead…
        }
        let stats = Arc::new(TransportStats::default());
        let mut inb = InboundAudio::new(stats.clone(), RATE).expect("decoder");
        let mut out = Vec::new();
        let now = Instant::now(); // …but no time passes.
        for (s, t, p) in &pk {
            inb.push_packet(*s, *t, p, now, &mut out);
        }
        let st = stats.snapshot();
        assert_eq!(st.discontinuities, 1);
        assert_eq!(st.frames_silence, 5, "at most FILL_SLACK_TICKS of silence");
        assert_eq!(out.len(), 6 + 5);
    }

    #[test]
    fn ten_ms_packets_are_reframed_into_20_ms_frames() {
        let mut enc = crate::transport::codec::VoiceEncoder::new(SENT, 0).expect("encoder");
        let pcm: Vec<i16> = tone(10).concat();
        let mut buf = vec![0u8; 1500];
        let pk: Vec<(u16, u32, Vec<u8>)> = pcm
            .chunks(480)
            .enumerate()
            .map(|(i, chunk)| {
                let n = enc.encode(chunk, &mut buf).expect("encode");
                (i as u16, (i * 480) as u32, buf[..n].to_vec())
            })
            .collect();
        assert_eq!(pk.len(), 20);
        let (frames, st) = run(&pk);
        assert_eq!(frames.len(), 10);
        assert_eq!(
            (st.frames_decoded, st.ts_irregular, st.packets_lost),
            (10, 0, 0)
        );
        assert!(frames[5].rms() > 0.1);
    }

    #[test]
    fn garbage_payloads_are_concealed_not_fatal() {
        let mut pk = packets(&tone(6));
        pk[2].2 = vec![0xFF; 3];
        pk[3].2 = Vec::new();
        let (frames, st) = run(&pk);
        assert_eq!(frames.len(), 6);
        assert!(st.decode_errors >= 1);
    }
}
