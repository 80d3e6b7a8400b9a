//! The seam between an interview and its media transport.
//!
//! A transport hands the engine a [`TransportLink`]: inbound 20 ms frames of mono PCM at
//! [`INBOUND_RATE`] (the speech-to-text's rate; the WebRTC transport's decoder produces it
//! directly) on a bounded channel, an [`AudioSink`] that takes outbound 20 ms frames at the
//! rate the synthesizer delivers (paced by the engine), and a way to learn that the peer went
//! away. The WebRTC transport and [`memory_transport`] (for
//! tests: whole interviews without sockets for media) both produce one.

use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

pub use crate::transport::OpusRate;
pub use crate::transport::codec::VoiceKind;

/// The rate of inbound audio: what the speech-to-text takes (Deepgram's `linear16` at
/// 16 kHz, the local recognizer's 16 kHz), so it goes from the decoder to the STT untouched.
pub const INBOUND_RATE: OpusRate = OpusRate::Hz16000;
/// Samples in one inbound 20 ms frame.
pub const INBOUND_FRAME_SAMPLES: usize = INBOUND_RATE.frame_samples();

/// Capacity of the inbound frame channel: 50 frames = 1 s of audio. Audio is droppable: a
/// full channel drops the newest frame and counts it.
pub const INBOUND_FRAMES: usize = 50;

/// One inbound 20 ms frame of mono PCM at [`INBOUND_RATE`] and when it arrived.
#[derive(Debug, Clone)]
pub struct InboundFrame {
    pub pcm: Vec<i16>,
    pub at: Instant,
}

/// Where outbound frames go: 20 ms of mono PCM at `rate` (`rate.frame_samples()` samples).
/// `send_frame` must not block; it returns `false` once the peer is gone.
pub trait AudioSink: Send + 'static {
    fn send_frame(&mut self, pcm: &[i16], rate: OpusRate) -> bool;

    /// The kind of voice the frames that follow carry (a transport that encodes sets its
    /// encoder's complexity from it; others ignore it).
    fn set_voice(&mut self, _voice: VoiceKind) {}
}

/// One outbound frame as a [`MemoryPeer`] receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundFrame {
    pub at: Instant,
    pub pcm: Vec<i16>,
    pub rate: OpusRate,
    /// The voice the engine last said it was sending ([`AudioSink::set_voice`]).
    pub voice: VoiceKind,
}

impl OutboundFrame {
    /// How long it plays.
    pub fn duration(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.pcm.len() as f64 / f64::from(self.rate.hz()))
    }
}

/// A transport, from the engine's side.
pub struct TransportLink {
    pub inbound: mpsc::Receiver<InboundFrame>,
    pub outbound: Box<dyn AudioSink>,
    /// Resolves with a reason when the peer disconnects (ICE failure, browser gone).
    pub closed: oneshot::Receiver<String>,
}

impl std::fmt::Debug for TransportLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransportLink").finish_non_exhaustive()
    }
}

/// The far end of an in-memory transport: push candidate audio, read interviewer audio.
pub struct MemoryPeer {
    pub to_engine: mpsc::Sender<InboundFrame>,
    pub from_engine: mpsc::UnboundedReceiver<OutboundFrame>,
    /// Dropping or sending on this tells the engine the peer left.
    pub hang_up: Option<oneshot::Sender<String>>,
}

struct ChannelSink {
    frames: mpsc::UnboundedSender<OutboundFrame>,
    voice: VoiceKind,
}

impl AudioSink for ChannelSink {
    fn send_frame(&mut self, pcm: &[i16], rate: OpusRate) -> bool {
        self.frames
            .send(OutboundFrame {
                at: Instant::now(),
                pcm: pcm.to_vec(),
                rate,
                voice: self.voice,
            })
            .is_ok()
    }

    fn set_voice(&mut self, voice: VoiceKind) {
        self.voice = voice;
    }
}

/// A transport made of channels.
pub fn memory_transport() -> (TransportLink, MemoryPeer) {
    let (to_engine, inbound) = mpsc::channel(INBOUND_FRAMES);
    let (out_tx, from_engine) = mpsc::unbounded_channel();
    let (hang_up, closed) = oneshot::channel();
    (
        TransportLink {
            inbound,
            outbound: Box::new(ChannelSink {
                frames: out_tx,
                voice: VoiceKind::default(),
            }),
            closed,
        },
        MemoryPeer {
            to_engine,
            from_engine,
            hang_up: Some(hang_up),
        },
    )
}
