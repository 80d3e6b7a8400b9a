//! A Rust WebRTC client that joins an interview without a browser (tests, load harness).
//!
//! With [`WebRtcConfig::loopback`] it binds 127.0.0.1 only and ignores every non-loopback
//! candidate of the server's answer, so a test can never reach beyond loopback.
//!
//! ```no_run
//! # async fn demo(signal: impl Fn(engine::transport::SessionDescription) -> engine::transport::SessionDescription) -> Result<(), engine::transport::TransportError> {
//! use engine::transport::{WebRtcClient, WebRtcConfig, ToneGenerator};
//! let (pending, offer) = WebRtcClient::offer(&WebRtcConfig::loopback()).await?;
//! let answer = signal(offer); // POST /api/v1/interviews/{id}/offer
//! let mut session = pending.accept_answer(&answer).await?;
//! session.control.wait_connected(std::time::Duration::from_secs(5)).await?;
//! let mut tone = ToneGenerator::new(engine::transport::OpusRate::Hz48000, 1000.0, 0.3);
//! let mut tick = tokio::time::interval(std::time::Duration::from_millis(20));
//! for _ in 0..50 {
//!     tick.tick().await;
//!     session.outbound.send_frame(&tone.next_frame(), tone.rate())?;
//! }
//! # Ok(()) }
//! ```

use std::time::Duration;

use rtc::peer_connection::sdp::RTCSessionDescription;
use tokio::sync::mpsc;

use super::session::{MediaSession, Peer};
use super::{
    AudioFrame, FrameOrigin, OpusRate, SdpType, SessionDescription, TransportError, WebRtcConfig,
};

/// Entry point of the client: see [`WebRtcClient::offer`].
#[derive(Debug, Clone, Copy)]
pub struct WebRtcClient;

impl WebRtcClient {
    /// Builds a peer connection with one send/receive Opus track and returns its offer, with
    /// host candidates gathered (bounded by [`WebRtcConfig::gather_timeout`]).
    pub async fn offer(
        config: &WebRtcConfig,
    ) -> Result<(PendingClient, SessionDescription), TransportError> {
        let mut peer = Peer::new(config).await?;
        match make_offer(&mut peer).await {
            Ok(offer) => Ok((PendingClient { peer }, offer)),
            Err(e) => {
                peer.abandon().await;
                Err(e)
            }
        }
    }
}

impl WebRtcClient {
    /// [`offer`](Self::offer), with a data channel labelled `label` opened first, as a browser
    /// page that wants the interview's events over it would. The server rejects the channel's
    /// section (it is not served); the audio goes on.
    pub async fn offer_with_data_channel(
        config: &WebRtcConfig,
        label: &str,
    ) -> Result<(PendingClient, SessionDescription), TransportError> {
        let mut peer = Peer::new(config).await?;
        if let Err(e) = peer.pc().create_data_channel(label, None).await {
            peer.abandon().await;
            return Err(TransportError::Internal(format!(
                "creating a data channel: {e}"
            )));
        }
        match make_offer(&mut peer).await {
            Ok(offer) => Ok((PendingClient { peer }, offer)),
            Err(e) => {
                peer.abandon().await;
                Err(e)
            }
        }
    }
}

/// The answer as this client's stack applies it: the stack starts SCTP for a data section
/// whatever its port, where a browser closes its channel on a rejected one (port 0), so a
/// rejected data section is shown to the stack as a section of no known kind.
fn hide_rejected_data_sections(answer: &str) -> String {
    let mut out = String::with_capacity(answer.len());
    for line in answer.split_inclusive('\n') {
        let rejected = line
            .strip_prefix("m=application 0 ")
            .is_some_and(|rest| rest.contains("webrtc-datachannel"));
        if rejected {
            out.push_str(&line.replace("webrtc-datachannel", "0"));
        } else {
            out.push_str(line);
        }
    }
    out
}

async fn make_offer(peer: &mut Peer) -> Result<SessionDescription, TransportError> {
    peer.add_track().await?;
    let offer = peer
        .pc()
        .create_offer(None)
        .await
        .map_err(|e| TransportError::Internal(format!("creating the offer: {e}")))?;
    peer.pc()
        .set_local_description(offer)
        .await
        .map_err(|e| TransportError::Internal(format!("applying the offer: {e}")))?;
    peer.local_description_after_gathering().await
}

/// A server session and a client session of this process, connected to each other: the
/// client offers, [`accept_offer`](super::accept_offer) answers, and both wait (at most
/// `within` each) until connected. Returns `(server, client, answer)`. For transport tests.
pub async fn connected_pair(
    config: &WebRtcConfig,
    within: Duration,
) -> Result<(MediaSession, MediaSession, SessionDescription), TransportError> {
    let (pending, offer) = WebRtcClient::offer(config).await?;
    let (server, answer) = super::accept_offer(config, &offer).await?;
    let client = pending.accept_answer(&answer).await?;
    client.control.wait_connected(within).await?;
    server.control.wait_connected(within).await?;
    Ok((server, client, answer))
}

/// A client that has offered and waits for the answer.
pub struct PendingClient {
    peer: Peer,
}

impl std::fmt::Debug for PendingClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingClient").finish_non_exhaustive()
    }
}

impl PendingClient {
    /// Applies the server's answer and starts the session.
    pub async fn accept_answer(
        mut self,
        answer: &SessionDescription,
    ) -> Result<MediaSession, TransportError> {
        if answer.sdp_type != SdpType::Answer {
            self.peer.abandon().await;
            return Err(TransportError::AnswerRejected("not an answer".into()));
        }
        let (sdp, remote_candidates) = super::session::remote_sdp(
            self.peer.config(),
            &hide_rejected_data_sections(&answer.sdp),
        );
        self.peer.remote_candidates = remote_candidates;
        let remote = match RTCSessionDescription::answer(sdp) {
            Ok(r) => r,
            Err(e) => {
                self.peer.abandon().await;
                return Err(TransportError::MalformedSdp(e.to_string()));
            }
        };
        if let Err(e) = self.peer.pc().set_remote_description(remote).await {
            self.peer.abandon().await;
            return Err(TransportError::AnswerRejected(e.to_string()));
        }
        self.peer.into_session().await
    }

    /// Delivers the inbound audio undecoded: every RTP packet as it arrives, on the returned
    /// channel, instead of decoded frames on [`MediaSession::inbound`] (which then ends at
    /// once). Call before [`Self::accept_answer`]. For a client that only needs to know when
    /// audio arrives and roughly how loud (the load harness: an Opus packet of digital silence
    /// is a few bytes), it saves an Opus decode and two buffers per 20 ms frame.
    pub fn receive_packets(&mut self) -> mpsc::Receiver<super::InboundPacket> {
        self.peer.undecoded_inbound()
    }

    /// Gives up without connecting.
    pub async fn abandon(self) {
        self.peer.abandon().await;
    }
}

/// Opus-encodes 20 ms frames of PCM at `rate` once, for replay with
/// [`AudioSender::send_opus`](super::AudioSender::send_opus) (the load harness sends many
/// calls' worth of audio without encoding each).
pub fn encode_opus_frames(
    frames: &[Vec<i16>],
    rate: OpusRate,
) -> Result<Vec<bytes::Bytes>, TransportError> {
    let mut encoder = super::outbound::OutboundAudio::new(0, 0);
    frames
        .iter()
        .map(|f| encoder.packetize(f, rate).map(|p| p.payload))
        .collect()
}

/// Summary of audio received over a period (see [`collect_audio`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ReceivedAudio {
    /// Frames received.
    pub frames: usize,
    /// Frames whose RMS was at least the `voiced_floor` given to [`collect_audio`].
    pub voiced_frames: usize,
    pub concealed_frames: usize,
    pub silence_frames: usize,
    /// RMS over all received samples (0.0..=1.0).
    pub rms: f64,
    /// Highest per-frame RMS.
    pub peak_frame_rms: f64,
    /// How long the received frames play, from their samples and rates.
    pub seconds: f64,
}

/// Receives frames until none has arrived for `idle_gap` (once at least one has), or until
/// `max_wait` has passed, or the channel ends; then measures them. The idle gap makes it
/// measure one burst of audio (a sent tone, a bot reply) without guessing its timing.
pub async fn collect_audio(
    inbound: &mut mpsc::Receiver<AudioFrame>,
    max_wait: Duration,
    idle_gap: Duration,
    voiced_floor: f64,
) -> ReceivedAudio {
    let frames = collect_frames(inbound, max_wait, idle_gap).await;
    measure(&frames, voiced_floor)
}

/// The frames [`collect_audio`] would measure, for callers that want to inspect them.
pub async fn collect_frames(
    inbound: &mut mpsc::Receiver<AudioFrame>,
    max_wait: Duration,
    idle_gap: Duration,
) -> Vec<AudioFrame> {
    let deadline = tokio::time::Instant::now() + max_wait;
    let mut frames = Vec::new();
    loop {
        let wait_until = if frames.is_empty() {
            deadline
        } else {
            deadline.min(tokio::time::Instant::now() + idle_gap)
        };
        match tokio::time::timeout_at(wait_until, inbound.recv()).await {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) | Err(_) => break,
        }
    }
    frames
}

/// Measures received frames (RMS over all samples, voiced frames at or above `voiced_floor`).
pub fn measure(frames: &[AudioFrame], voiced_floor: f64) -> ReceivedAudio {
    let mut summary = ReceivedAudio::default();
    let mut sum_sq = 0.0f64;
    let mut samples = 0usize;
    for frame in frames {
        let rms = frame.rms();
        summary.frames += 1;
        if rms >= voiced_floor {
            summary.voiced_frames += 1;
        }
        match frame.origin {
            FrameOrigin::Concealed => summary.concealed_frames += 1,
            FrameOrigin::Silence => summary.silence_frames += 1,
            FrameOrigin::Decoded => {}
        }
        summary.peak_frame_rms = summary.peak_frame_rms.max(rms);
        sum_sq += rms * rms * frame.samples.len() as f64;
        samples += frame.samples.len();
        summary.seconds += frame.samples.len() as f64 / f64::from(frame.rate.hz());
    }
    if samples > 0 {
        summary.rms = (sum_sq / samples as f64).sqrt();
    }
    summary
}
