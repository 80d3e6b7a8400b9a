//! The seam between an interview and its media transport.
//!
//! A transport hands the engine a [`TransportLink`]: inbound 20 ms frames of 48 kHz mono PCM on
//! a bounded channel, an [`AudioSink`] that takes outbound frames (paced by the engine), and a
//! way to learn that the peer went away. The WebRTC transport and [`memory_transport`] (for
//! tests: whole interviews without sockets for media) both produce one.

use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

/// Capacity of the inbound frame channel: 50 frames = 1 s of audio. Audio is droppable: a
/// full channel drops the newest frame and counts it.
pub const INBOUND_FRAMES: usize = 50;

/// One inbound 20 ms frame of 48 kHz mono PCM and when it arrived.
#[derive(Debug, Clone)]
pub struct InboundFrame {
    pub pcm: Vec<i16>,
    pub at: Instant,
}

/// Where outbound frames go. `send_frame` must not block; it returns `false` once the peer is
/// gone.
pub trait AudioSink: Send + 'static {
    fn send_frame(&mut self, pcm: &[i16]) -> bool;
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
    pub from_engine: mpsc::UnboundedReceiver<(Instant, Vec<i16>)>,
    /// Dropping or sending on this tells the engine the peer left.
    pub hang_up: Option<oneshot::Sender<String>>,
}

struct ChannelSink(mpsc::UnboundedSender<(Instant, Vec<i16>)>);

impl AudioSink for ChannelSink {
    fn send_frame(&mut self, pcm: &[i16]) -> bool {
        self.0.send((Instant::now(), pcm.to_vec())).is_ok()
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
            outbound: Box::new(ChannelSink(out_tx)),
            closed,
        },
        MemoryPeer {
            to_engine,
            from_engine,
            hang_up: Some(hang_up),
        },
    )
}
