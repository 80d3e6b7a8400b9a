//! Lock-free counters of one media session, shared by its tasks and readable at any time.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Media sessions of this process not yet released: see [`live_sessions`].
static LIVE_SESSIONS: AtomicI64 = AtomicI64::new(0);

/// Media sessions (peer connections, the server's and any client's) this process still holds:
/// counted from the moment one is built until the last thing holding it has let go (our
/// handles and tasks, and the `webrtc` crate's driver, which keeps the event handler until the
/// connection is torn down). More sessions than live interviews means sessions outlive their
/// interview; `/metrics` shows it as `interviewcraft_live_media_sessions`.
pub fn live_sessions() -> i64 {
    LIVE_SESSIONS.load(Ordering::Relaxed)
}

/// Counts one session in [`live_sessions`] for as long as it lives (held by the session's
/// shared state, so every holder keeps it counted).
#[derive(Debug)]
pub(crate) struct LiveSession(());

impl LiveSession {
    pub(crate) fn new() -> Self {
        LIVE_SESSIONS.fetch_add(1, Ordering::Relaxed);
        Self(())
    }
}

impl Drop for LiveSession {
    fn drop(&mut self) {
        LIVE_SESSIONS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counters of one [`MediaSession`](super::MediaSession): atomics only, so the media tasks
/// bump them without locks and anyone holding the `Arc` reads them without locks.
///
/// Every counter only grows. Read a consistent-enough copy with [`TransportStats::snapshot`].
#[derive(Debug, Default)]
pub struct TransportStats {
    // Inbound (remote peer → us).
    pub(crate) packets_in: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) packets_lost: AtomicU64,
    pub(crate) packets_late: AtomicU64,
    pub(crate) packets_reordered: AtomicU64,
    pub(crate) ts_irregular: AtomicU64,
    pub(crate) discontinuities: AtomicU64,
    pub(crate) decode_errors: AtomicU64,
    pub(crate) frames_decoded: AtomicU64,
    pub(crate) frames_concealed: AtomicU64,
    pub(crate) frames_silence: AtomicU64,
    pub(crate) frames_delivered: AtomicU64,
    pub(crate) frames_dropped: AtomicU64,
    // Outbound (us → remote peer).
    pub(crate) frames_sent: AtomicU64,
    pub(crate) frames_send_dropped: AtomicU64,
    pub(crate) frames_discarded: AtomicU64,
    pub(crate) encode_errors: AtomicU64,
    pub(crate) packets_out: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) packets_out_failed: AtomicU64,
    pub(crate) candidates_dropped: AtomicU64,
}

/// A plain copy of [`TransportStats`] at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// RTP packets received on the audio track.
    pub packets_in: u64,
    /// Opus payload bytes received.
    pub bytes_in: u64,
    /// Packets never received (sequence-number gaps the reorder window gave up on).
    pub packets_lost: u64,
    /// Packets discarded because they arrived after their slot was played out, or twice.
    pub packets_late: u64,
    /// Packets that arrived out of order but in time, and were put back in order.
    pub packets_reordered: u64,
    /// Consecutive packets whose RTP timestamps did not advance by the previous packet's
    /// duration (DTX, or a sender with a broken clock). 0 on a clean 20 ms stream.
    pub ts_irregular: u64,
    /// Timestamp jumps too large (or backwards) to fill; the timeline restarts there.
    pub discontinuities: u64,
    /// Payloads libopus refused to decode.
    pub decode_errors: u64,
    /// 20 ms frames made entirely of decoded audio.
    pub frames_decoded: u64,
    /// 20 ms frames containing packet-loss concealment (PLC or in-band FEC).
    pub frames_concealed: u64,
    /// 20 ms frames of digital silence inserted for a DTX gap or a loss longer than concealment.
    pub frames_silence: u64,
    /// Frames handed to the inbound channel.
    pub frames_delivered: u64,
    /// Frames dropped because the inbound channel was full.
    pub frames_dropped: u64,
    /// Frames Opus-encoded and queued for sending.
    pub frames_sent: u64,
    /// Frames dropped because the outbound queue was full.
    pub frames_send_dropped: u64,
    /// Queued frames discarded by [`AudioSender::discard_queued`](super::AudioSender::discard_queued).
    pub frames_discarded: u64,
    /// Frames libopus failed to encode.
    pub encode_errors: u64,
    /// RTP packets handed to the WebRTC stack.
    pub packets_out: u64,
    /// Opus payload bytes handed to the WebRTC stack.
    pub bytes_out: u64,
    /// RTP packets the WebRTC stack refused (not negotiated yet, or closed).
    pub packets_out_failed: u64,
    /// Local ICE candidates dropped because nobody drained the candidate channel.
    pub candidates_dropped: u64,
}

impl TransportStats {
    /// Copies every counter (each read is atomic; the set is not one atomic snapshot).
    pub fn snapshot(&self) -> StatsSnapshot {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            packets_in: r(&self.packets_in),
            bytes_in: r(&self.bytes_in),
            packets_lost: r(&self.packets_lost),
            packets_late: r(&self.packets_late),
            packets_reordered: r(&self.packets_reordered),
            ts_irregular: r(&self.ts_irregular),
            discontinuities: r(&self.discontinuities),
            decode_errors: r(&self.decode_errors),
            frames_decoded: r(&self.frames_decoded),
            frames_concealed: r(&self.frames_concealed),
            frames_silence: r(&self.frames_silence),
            frames_delivered: r(&self.frames_delivered),
            frames_dropped: r(&self.frames_dropped),
            frames_sent: r(&self.frames_sent),
            frames_send_dropped: r(&self.frames_send_dropped),
            frames_discarded: r(&self.frames_discarded),
            encode_errors: r(&self.encode_errors),
            packets_out: r(&self.packets_out),
            bytes_out: r(&self.bytes_out),
            packets_out_failed: r(&self.packets_out_failed),
            candidates_dropped: r(&self.candidates_dropped),
        }
    }
}

/// Adds `n` to a counter.
pub(crate) fn bump(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}
