//! Adapts a [`MediaSession`] to the engine's transport seam ([`crate::media::TransportLink`]).

use tokio::sync::{mpsc, oneshot};

use super::codec::VoiceKind;
use super::stats::bump;
use super::{AudioSender, ConnectionState, MediaSession, OpusRate, SessionControl, TransportError};
use crate::media::{AudioSink, INBOUND_FRAMES, INBOUND_RATE, InboundFrame, TransportLink};

impl AudioSink for AudioSender {
    /// `false` only once the session has ended. A frame dropped on a full queue still counts as
    /// sent (it is counted in `frames_send_dropped`); a wrong-length frame is logged and skipped.
    fn send_frame(&mut self, pcm: &[i16], rate: OpusRate) -> bool {
        match AudioSender::send_frame(self, pcm, rate) {
            Ok(_) => true,
            Err(TransportError::Closed) => false,
            Err(e) => {
                tracing::warn!(error = %e, "outbound frame refused");
                true
            }
        }
    }

    fn set_voice(&mut self, voice: VoiceKind) {
        AudioSender::set_voice(self, voice);
    }
}

impl MediaSession {
    /// Hands the audio to the engine: inbound frames at [`INBOUND_RATE`] (the session must have
    /// been made with that [`super::WebRtcConfig::inbound_rate`], the default; frames at another
    /// rate are dropped and counted), forwarded into a channel of
    /// [`INBOUND_FRAMES`], dropping and counting in `frames_dropped` when full), the sender as
    /// the [`AudioSink`], and `closed` resolving with the [`super::EndReason`] when the session
    /// ends. The returned [`SessionControl`] keeps state, trickle ICE, counters and `close()`.
    ///
    /// Spawns two small tasks on the current tokio runtime (the forwarder ends with the
    /// session's inbound channel; the watcher when the session ends).
    pub fn into_link(self) -> (TransportLink, SessionControl) {
        let MediaSession {
            mut inbound,
            outbound,
            local_candidates: _,
            control,
        } = self;
        let stats = control.stats().clone();
        let (tx, rx) = mpsc::channel(INBOUND_FRAMES);
        tokio::spawn(async move {
            while let Some(frame) = inbound.recv().await {
                // The engine takes INBOUND_RATE only (the default `inbound_rate`); a session
                // configured otherwise is a programming error, not audio to misread.
                if frame.rate != INBOUND_RATE {
                    bump(&stats.frames_dropped, 1);
                    continue;
                }
                let frame = InboundFrame {
                    pcm: frame.samples,
                    at: frame.received_at,
                };
                if tx.try_send(frame).is_err() {
                    bump(&stats.frames_dropped, 1);
                }
            }
        });
        let (closed_tx, closed) = oneshot::channel();
        let mut states = control.subscribe();
        tokio::spawn(async move {
            let reason = match states.wait_for(|s| s.is_terminal()).await {
                Ok(state) => match *state {
                    ConnectionState::Ended(reason) => reason.to_string(),
                    _ => "media session ended".to_owned(),
                },
                Err(_) => "media session gone".to_owned(),
            };
            let _ = closed_tx.send(reason);
        });
        (
            TransportLink {
                inbound: rx,
                outbound: Box::new(outbound),
                closed,
            },
            control,
        )
    }
}
