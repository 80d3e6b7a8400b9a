//! The peer-connection plumbing shared by the server ([`accept_offer`]) and the client: event
//! handler, inbound/writer/supervisor tasks, and the [`MediaSession`] handed to the caller.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rtc::ice::mdns::MulticastDnsMode;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::MIME_TYPE_OPUS;
use rtc::peer_connection::transport::RTCDtlsTransportState;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceCandidateInit, RTCIceCandidateType, RTCIceConnectionState,
    RTCIceGatheringState, RTCIceServer, RTCPeerConnectionIceEvent, RTCPeerConnectionState,
    RTCSessionDescription, SettingEngineBuilder,
};
use webrtc::rtp_transceiver::RtpSender;

use super::inbound::InboundAudio;
use super::outbound::{AudioSender, OUTBOUND_QUEUE_CAPACITY, OutboundAudio, Queued};
use super::stats::{LiveSession, TransportStats, bump};
use super::{
    AudioFrame, ConnectionState, EndReason, INBOUND_FRAME_CAPACITY, IceCandidate, InboundPacket,
    LOCAL_CANDIDATE_CAPACITY, SdpType, SessionDescription, TransportError, WebRtcConfig, sdp,
};

/// The payload type we register Opus under (what browsers use); an offer's own number wins.
const OPUS_PAYLOAD_TYPE: u8 = 111;

/// State shared between the crate's event handler, our tasks and the caller's handles.
pub(crate) struct Shared {
    state: watch::Sender<ConnectionState>,
    gathered: watch::Sender<bool>,
    candidates: mpsc::Sender<IceCandidate>,
    inbound: Mutex<Option<mpsc::Sender<AudioFrame>>>,
    /// Set when the caller asked for undecoded packets instead of frames.
    packets: Mutex<Option<mpsc::Sender<InboundPacket>>>,
    /// The rate inbound audio is decoded at.
    inbound_rate: super::OpusRate,
    stats: Arc<TransportStats>,
    ended: Arc<AtomicBool>,
    /// Last ICE connection state, as one of the `ICE_*` codes below.
    ice: AtomicU8,
    /// `a=mid` of our first media section, for trickled candidates.
    mid: OnceLock<String>,
    /// Counts this session in [`super::live_sessions`] until the last holder lets go.
    _live: LiveSession,
}

/// ICE connection states remembered for naming a failure (see `on_connection_state_change`).
const ICE_OTHER: u8 = 0;
const ICE_FAILED: u8 = 1;
const ICE_DISCONNECTED_OR_CHECKING: u8 = 2;
/// How often the supervisor checks whether the peer closed DTLS (the crate raises no state
/// change for a peer's `close_notify`).
const DTLS_CLOSE_POLL: Duration = Duration::from_millis(250);

impl Shared {
    /// Moves to `new` unless the state is already terminal (terminal states are sticky).
    fn set_state(&self, new: ConnectionState) {
        let changed = self.state.send_if_modified(|s| {
            if s.is_terminal() || *s == new {
                false
            } else {
                *s = new;
                true
            }
        });
        if changed {
            tracing::debug!(state = ?new, "media session state");
        }
        if new.is_terminal() {
            self.ended.store(true, Ordering::Release);
            // If no remote track ever opened, nobody else will drop the inbound sender: do it
            // here so the inbound channel ends with the session either way.
            if let Ok(mut slot) = self.inbound.lock() {
                slot.take();
            }
            if let Ok(mut slot) = self.packets.lock() {
                slot.take();
            }
        }
    }

    fn state(&self) -> ConnectionState {
        *self.state.borrow()
    }
}

struct Handler(Arc<Shared>);

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        let Ok(init) = event.candidate.to_json() else {
            return;
        };
        let candidate = IceCandidate {
            candidate: init.candidate,
            sdp_mid: self.0.mid.get().cloned(),
            sdp_m_line_index: Some(0),
            username_fragment: init.username_fragment,
        };
        if self.0.candidates.try_send(candidate).is_err() {
            bump(&self.0.stats.candidates_dropped, 1);
        }
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.0.gathered.send_replace(true);
        }
    }

    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        let code = match state {
            RTCIceConnectionState::Failed => ICE_FAILED,
            RTCIceConnectionState::Disconnected | RTCIceConnectionState::Checking => {
                ICE_DISCONNECTED_OR_CHECKING
            }
            _ => ICE_OTHER,
        };
        self.0.ice.store(code, Ordering::Release);
        if state == RTCIceConnectionState::Failed {
            self.0
                .set_state(ConnectionState::Ended(EndReason::IceFailed));
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let new = match state {
            RTCPeerConnectionState::Connecting => ConnectionState::Connecting,
            RTCPeerConnectionState::Connected => ConnectionState::Connected,
            RTCPeerConnectionState::Disconnected => ConnectionState::Disconnected,
            // The core reports the connection failure before the ICE state change that caused
            // it, so the ICE state remembered here is the one before: `Disconnected` (consent
            // lost) or `Checking` (never connected) mean ICE failed; `Connected` means DTLS did.
            RTCPeerConnectionState::Failed => match self.0.ice.load(Ordering::Acquire) {
                ICE_FAILED | ICE_DISCONNECTED_OR_CHECKING => {
                    ConnectionState::Ended(EndReason::IceFailed)
                }
                _ => ConnectionState::Ended(EndReason::TransportFailed),
            },
            // We mark a local close before closing, so a `Closed` we did not ask for is the
            // peer's doing (DTLS close_notify).
            RTCPeerConnectionState::Closed => ConnectionState::Ended(EndReason::ClosedByPeer),
            _ => return,
        };
        self.0.set_state(new);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        if track.kind().await != RtpCodecKind::Audio {
            return;
        }
        let Some(tx) = self.0.inbound.lock().ok().and_then(|mut slot| slot.take()) else {
            tracing::warn!("a second remote audio track is ignored");
            return;
        };
        if let Some(packets) = self.0.packets.lock().ok().and_then(|mut slot| slot.take()) {
            // Undecoded: the frame channel ends here (its sender is dropped).
            tokio::spawn(packet_task(track, packets, self.0.stats.clone()));
            return;
        }
        match InboundAudio::new(self.0.stats.clone(), self.0.inbound_rate) {
            Ok(core) => {
                tokio::spawn(inbound_task(track, core, tx, self.0.stats.clone()));
            }
            Err(e) => tracing::error!(error = %e, "cannot create the Opus decoder"),
        }
    }
}

/// Polls the remote track, decodes, and delivers frames (dropping on a full channel).
async fn inbound_task(
    track: Arc<dyn TrackRemote>,
    mut core: InboundAudio,
    tx: mpsc::Sender<AudioFrame>,
    stats: Arc<TransportStats>,
) {
    let mut frames = Vec::new();
    loop {
        let event = match core.next_deadline() {
            Some(deadline) => {
                tokio::select! {
                    ev = track.poll() => Some(ev),
                    () = tokio::time::sleep_until(deadline.into()) => None,
                }
            }
            None => Some(track.poll().await),
        };
        let now = Instant::now();
        let done = match event {
            None => {
                core.poll_timeout(now, &mut frames);
                false
            }
            Some(Some(TrackRemoteEvent::OnRtpPacket(packet))) => {
                core.push_packet(
                    packet.header.sequence_number,
                    packet.header.timestamp,
                    &packet.payload,
                    now,
                    &mut frames,
                );
                false
            }
            Some(Some(TrackRemoteEvent::OnEnded)) | Some(None) => {
                core.finish(now, &mut frames);
                true
            }
            Some(Some(_)) => false,
        };
        for frame in frames.drain(..) {
            match tx.try_send(frame) {
                Ok(()) => bump(&stats.frames_delivered, 1),
                Err(_) => bump(&stats.frames_dropped, 1),
            }
        }
        if done {
            break;
        }
    }
}

/// Forwards every inbound RTP packet undecoded (dropping on a full channel).
async fn packet_task(
    track: Arc<dyn TrackRemote>,
    tx: mpsc::Sender<InboundPacket>,
    stats: Arc<TransportStats>,
) {
    loop {
        match track.poll().await {
            Some(TrackRemoteEvent::OnRtpPacket(packet)) => {
                bump(&stats.packets_in, 1);
                bump(&stats.bytes_in, packet.payload.len() as u64);
                let packet = InboundPacket {
                    sequence_number: packet.header.sequence_number,
                    timestamp: packet.header.timestamp,
                    marker: packet.header.marker,
                    payload: packet.payload,
                    received_at: Instant::now(),
                };
                match tx.try_send(packet) {
                    Ok(()) => bump(&stats.frames_delivered, 1),
                    Err(_) => bump(&stats.frames_dropped, 1),
                }
            }
            Some(TrackRemoteEvent::OnEnded) | None => break,
            Some(_) => {}
        }
    }
}

/// Hands encoded packets to the stack.
async fn writer_task(
    track: Arc<TrackLocalStaticRTP>,
    mut rx: mpsc::Receiver<Queued>,
    generation: Arc<AtomicU64>,
    stats: Arc<TransportStats>,
) {
    while let Some(Queued {
        generation: sent_in,
        packet,
    }) = rx.recv().await
    {
        if sent_in != generation.load(Ordering::Acquire) {
            bump(&stats.frames_discarded, 1);
            continue;
        }
        let bytes = packet.payload.len() as u64;
        match track.write_rtp(packet).await {
            Ok(()) => {
                bump(&stats.packets_out, 1);
                bump(&stats.bytes_out, bytes);
            }
            Err(e) => {
                bump(&stats.packets_out_failed, 1);
                tracing::trace!(error = %e, "RTP write refused");
            }
        }
    }
}

/// Ends a session that never connects, notices a peer's DTLS close, and closes the peer
/// connection once the session has ended.
async fn supervisor_task(
    pc: Arc<dyn PeerConnection>,
    sender: Arc<dyn RtpSender>,
    shared: Arc<Shared>,
    connect_timeout: Duration,
    writer: JoinHandle<()>,
) {
    let mut rx = shared.state.subscribe();
    let timed_out = tokio::time::timeout(
        connect_timeout,
        rx.wait_for(|s| *s == ConnectionState::Connected || s.is_terminal()),
    )
    .await
    .is_err();
    if timed_out {
        shared.set_state(ConnectionState::Ended(EndReason::ConnectTimeout));
    }
    let mut poll = tokio::time::interval(DTLS_CLOSE_POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !shared.state().is_terminal() {
        tokio::select! {
            _ = rx.changed() => {}
            _ = poll.tick() => {
                if dtls_closed(&sender).await {
                    shared.set_state(ConnectionState::Ended(EndReason::ClosedByPeer));
                }
            }
        }
    }
    if let Err(e) = pc.close().await {
        tracing::debug!(error = %e, "closing the peer connection");
    }
    writer.abort();
}

/// Whether the DTLS transport under `sender` has been closed (by the peer's `close_notify`).
async fn dtls_closed(sender: &Arc<dyn RtpSender>) -> bool {
    match sender.transport().await {
        Ok(Some(transport)) => matches!(transport.state().await, Ok(RTCDtlsTransportState::Closed)),
        _ => false,
    }
}

/// A peer connection with our handler and one local Opus track, not yet negotiated.
pub(crate) struct Peer {
    pc: Arc<dyn PeerConnection>,
    shared: Arc<Shared>,
    track: Arc<TrackLocalStaticRTP>,
    sender: Option<Arc<dyn RtpSender>>,
    ssrc: u32,
    gathered: watch::Receiver<bool>,
    inbound_rx: mpsc::Receiver<AudioFrame>,
    candidates_rx: mpsc::Receiver<IceCandidate>,
    config: WebRtcConfig,
    /// Remote candidates taken from the description (they count towards the trickle cap).
    pub(crate) remote_candidates: usize,
    /// Closes the connection if this is dropped before it became a session or was abandoned.
    close_on_drop: CloseOnDrop,
}

/// Closes a peer connection dropped before it became a session or was abandoned: an error
/// path that returns early, or a caller whose future was cancelled mid-negotiation (an HTTP
/// client gone while we gather candidates, a timeout around [`accept_offer`]). The `webrtc`
/// crate's driver holds the connection until it is closed, so without this its task, sockets
/// and buffers would stay for good.
struct CloseOnDrop(Option<(Arc<dyn PeerConnection>, Arc<Shared>)>);

impl CloseOnDrop {
    /// Someone else closes it now (the session's supervisor, or `abandon`).
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        let Some((pc, shared)) = self.0.take() else {
            return;
        };
        shared.set_state(ConnectionState::Ended(EndReason::ClosedLocally));
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    let _ = pc.close().await;
                });
            }
            Err(_) => tracing::warn!("a peer connection dropped outside a runtime is not closed"),
        }
    }
}

fn internal(what: &str) -> impl FnOnce(webrtc::error::Error) -> TransportError + '_ {
    move |e| TransportError::Internal(format!("{what}: {e}"))
}

impl Peer {
    pub(crate) async fn new(config: &WebRtcConfig) -> Result<Self, TransportError> {
        // Built on a task of its own so that a caller cancelled mid-build cannot strand the
        // connection: the crate's `build` spawns the connection's driver and then awaits its
        // start, and a future dropped in between leaves that driver running with no handle to
        // close it. On its own task the build always finishes, and a `Peer` nobody awaits any
        // more is dropped there, where `CloseOnDrop` closes it.
        let config = config.clone();
        tokio::spawn(Self::build(config))
            .await
            .map_err(|e| TransportError::Internal(format!("building the peer connection: {e}")))?
    }

    async fn build(config: WebRtcConfig) -> Result<Self, TransportError> {
        let mut media = MediaEngine::default();
        media
            .register_codec(
                RTCRtpCodecParameters {
                    rtp_codec: opus_codec(),
                    payload_type: OPUS_PAYLOAD_TYPE,
                },
                RtpCodecKind::Audio,
            )
            .map_err(internal("registering Opus"))?;

        let mut settings = SettingEngineBuilder::new()
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .with_ice_timeouts(
                Some(config.ice_disconnected_timeout),
                Some(config.ice_failed_timeout),
                Some(config.ice_keepalive_interval),
            );
        if !config.public_ips.is_empty() {
            settings =
                settings.with_nat_1to1_ips(config.public_ips.clone(), RTCIceCandidateType::Host);
        }
        let ice_servers = config
            .ice_servers
            .iter()
            .map(|s| RTCIceServer {
                urls: s.urls.clone(),
                username: s.username.clone(),
                credential: s.credential.clone(),
            })
            .collect();

        let (state, _) = watch::channel(ConnectionState::New);
        let (gathered_tx, gathered) = watch::channel(false);
        let (candidates, candidates_rx) = mpsc::channel(LOCAL_CANDIDATE_CAPACITY);
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_FRAME_CAPACITY);
        let shared = Arc::new(Shared {
            state,
            gathered: gathered_tx,
            candidates,
            inbound: Mutex::new(Some(inbound_tx)),
            packets: Mutex::new(None),
            inbound_rate: config.inbound_rate,
            stats: Arc::new(TransportStats::default()),
            ended: Arc::new(AtomicBool::new(false)),
            ice: AtomicU8::new(ICE_OTHER),
            mid: OnceLock::new(),
            _live: LiveSession::new(),
        });

        let mut builder = PeerConnectionBuilder::new()
            .with_configuration(
                RTCConfigurationBuilder::new()
                    .with_ice_servers(ice_servers)
                    .build(),
            )
            .with_media_engine(media)
            .with_setting_engine(settings.build())
            .with_handler(Arc::new(Handler(shared.clone())))
            .with_udp_addrs(config.udp_addrs.clone());
        if config.loopback_only {
            let runtime = super::loopback_guard::LoopbackRuntime::new()
                .ok_or_else(|| TransportError::Internal("no async runtime for WebRTC".into()))?;
            builder = builder.with_runtime(Arc::new(runtime));
        }
        let pc = builder
            .build()
            .await
            .map_err(internal("building the peer connection"))?;
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);

        let ssrc: u32 = rand::random();
        let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            "interview".to_owned(),
            "interviewer-audio".to_owned(),
            "interviewer".to_owned(),
            RtpCodecKind::Audio,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: opus_codec(),
                ..Default::default()
            }],
        )));

        Ok(Self {
            close_on_drop: CloseOnDrop(Some((pc.clone(), shared.clone()))),
            pc,
            shared,
            track,
            sender: None,
            ssrc,
            gathered,
            inbound_rx,
            candidates_rx,
            config,
            remote_candidates: 0,
        })
    }

    pub(crate) async fn add_track(&mut self) -> Result<(), TransportError> {
        self.sender = Some(
            self.pc
                .add_track(self.track.clone() as Arc<dyn TrackLocal>)
                .await
                .map_err(internal("adding the audio track"))?,
        );
        Ok(())
    }

    pub(crate) fn pc(&self) -> &Arc<dyn PeerConnection> {
        &self.pc
    }

    pub(crate) fn config(&self) -> &WebRtcConfig {
        &self.config
    }

    /// Inbound audio as undecoded packets from now on (see
    /// [`super::PendingClient::receive_packets`]).
    pub(crate) fn undecoded_inbound(&self) -> mpsc::Receiver<InboundPacket> {
        let (tx, rx) = mpsc::channel(INBOUND_FRAME_CAPACITY);
        if let Ok(mut slot) = self.shared.packets.lock() {
            *slot = Some(tx);
        }
        rx
    }

    /// Waits (bounded) for candidate gathering, then returns the local description.
    pub(crate) async fn local_description_after_gathering(
        &mut self,
    ) -> Result<SessionDescription, TransportError> {
        let timeout = self.config.gather_timeout;
        let _ = tokio::time::timeout(timeout, self.gathered.wait_for(|done| *done)).await;
        let local = self
            .pc
            .local_description()
            .await
            .ok_or_else(|| TransportError::Internal("no local description".into()))?;
        if let Some(mid) = first_mid(&local.sdp) {
            let _ = self.shared.mid.set(mid);
        }
        let sdp_type = match local.sdp_type {
            webrtc::peer_connection::RTCSdpType::Offer => SdpType::Offer,
            _ => SdpType::Answer,
        };
        Ok(SessionDescription {
            sdp_type,
            sdp: local.sdp,
        })
    }

    /// Starts the tasks and hands out the session. Call once negotiation is complete.
    pub(crate) async fn into_session(mut self) -> Result<MediaSession, TransportError> {
        let sender = self
            .sender
            .as_ref()
            .ok_or_else(|| TransportError::Internal("no audio track added".into()))?;
        let params = sender
            .get_parameters()
            .await
            .map_err(internal("reading the negotiated codec"))?;
        let payload_type = params
            .rtp_parameters
            .codecs
            .iter()
            .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(MIME_TYPE_OPUS))
            .map_or(OPUS_PAYLOAD_TYPE, |c| c.payload_type);
        let core = OutboundAudio::new(self.ssrc, payload_type)
            .with_complexity(self.config.encoder_complexity);

        let (packet_tx, packet_rx) = mpsc::channel(OUTBOUND_QUEUE_CAPACITY);
        let stats = self.shared.stats.clone();
        let generation = Arc::new(AtomicU64::new(0));
        // From here the supervisor closes the connection when the session ends.
        self.close_on_drop.disarm();
        let writer = tokio::spawn(writer_task(
            self.track.clone(),
            packet_rx,
            generation.clone(),
            stats.clone(),
        ));
        tokio::spawn(supervisor_task(
            self.pc.clone(),
            sender.clone(),
            self.shared.clone(),
            self.config.connect_timeout,
            writer,
        ));
        if self.shared.state() == ConnectionState::New {
            self.shared.set_state(ConnectionState::Connecting);
        }

        let control = SessionControl {
            inner: Arc::new(ControlInner {
                pc: self.pc,
                shared: self.shared.clone(),
                loopback_only: self.config.loopback_only,
                remote_candidates: std::sync::atomic::AtomicUsize::new(self.remote_candidates),
            }),
        };
        let outbound = AudioSender::new(
            core,
            packet_tx,
            stats,
            self.shared.ended.clone(),
            generation,
        )
        .with_keepalive(control.inner.clone() as KeepAlive);
        Ok(MediaSession {
            inbound: self.inbound_rx,
            outbound,
            local_candidates: self.candidates_rx,
            control,
        })
    }

    /// Closes a peer connection that never became a session (error paths).
    pub(crate) async fn abandon(mut self) {
        self.close_on_drop.disarm();
        self.shared
            .set_state(ConnectionState::Ended(EndReason::ClosedLocally));
        let _ = self.pc.close().await;
    }
}

fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: super::RTP_CLOCK_RATE,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

/// The remote description as applied: without candidates this node could never reach, capped
/// at [`sdp::MAX_REMOTE_CANDIDATES`], and in loopback-only mode without its non-loopback
/// candidates ([`WebRtcConfig::loopback_only`]). Returns how many candidates it kept.
pub(crate) fn remote_sdp(config: &WebRtcConfig, sdp: &str) -> (String, usize) {
    let (filtered, kept, removed) = sdp::filter_remote_candidates(sdp, config.loopback_only);
    if removed.total() > 0 {
        // Counts only: candidate addresses are the peer's network details.
        tracing::debug!(
            not_loopback = removed.not_loopback,
            unreachable = removed.unreachable,
            over_cap = removed.over_cap,
            "ignored remote candidates"
        );
    }
    (filtered, kept)
}

fn first_mid(sdp: &str) -> Option<String> {
    let mut in_media = false;
    for line in sdp.lines() {
        if line.starts_with("m=") {
            in_media = true;
        } else if in_media && let Some(mid) = line.strip_prefix("a=mid:") {
            return Some(mid.trim().to_owned());
        }
    }
    None
}

/// Accepts a browser's offer: one audio peer connection, answered after host-candidate
/// gathering (bounded by [`WebRtcConfig::gather_timeout`]) so the answer carries candidates.
///
/// Errors: [`TransportError::NotAnOffer`], [`TransportError::MalformedSdp`],
/// [`TransportError::NoAudio`], [`TransportError::NoOpus`] and
/// [`TransportError::OfferRejected`] are the client's fault (4xx); `Internal` is ours.
pub async fn accept_offer(
    config: &WebRtcConfig,
    offer: &SessionDescription,
) -> Result<(MediaSession, SessionDescription), TransportError> {
    sdp::check_offer(offer)?;
    // The browser's data channel is not served: the stack never sees its section (its SCTP
    // would refuse the association and abort it at close), and the answer rejects it.
    let (served, unserved) = sdp::remove_unserved_sections(&offer.sdp);
    if !unserved.is_empty() {
        tracing::debug!(
            sections = unserved.len(),
            "rejecting offered data channel sections"
        );
    }
    let (remote, remote_candidates) = remote_sdp(config, &served);
    let remote = RTCSessionDescription::offer(remote)
        .map_err(|e| TransportError::MalformedSdp(e.to_string()))?;
    let mut peer = Peer::new(config).await?;
    peer.remote_candidates = remote_candidates;
    match answer(&mut peer, remote).await {
        Ok(mut answer) => {
            answer.sdp = sdp::answer_unserved_sections(&answer.sdp, &unserved);
            // We hear the candidate at the inbound rate: the browser need not code more.
            answer.sdp = sdp::limit_opus_playback_rate(&answer.sdp, config.inbound_rate.hz());
            Ok((peer.into_session().await?, answer))
        }
        Err(e) => {
            peer.abandon().await;
            Err(e)
        }
    }
}

async fn answer(
    peer: &mut Peer,
    remote: RTCSessionDescription,
) -> Result<SessionDescription, TransportError> {
    peer.pc()
        .set_remote_description(remote)
        .await
        .map_err(|e| TransportError::OfferRejected(e.to_string()))?;
    peer.add_track().await?;
    let answer = peer
        .pc()
        .create_answer(None)
        .await
        .map_err(|e| TransportError::OfferRejected(e.to_string()))?;
    peer.pc()
        .set_local_description(answer)
        .await
        .map_err(|e| TransportError::OfferRejected(e.to_string()))?;
    peer.local_description_after_gathering().await
}

struct ControlInner {
    pc: Arc<dyn PeerConnection>,
    shared: Arc<Shared>,
    /// [`WebRtcConfig::loopback_only`]: trickled non-loopback candidates are ignored.
    loopback_only: bool,
    /// Remote candidates taken so far (description and trickle), capped at
    /// [`sdp::MAX_REMOTE_CANDIDATES`].
    remote_candidates: std::sync::atomic::AtomicUsize,
}

impl Drop for ControlInner {
    fn drop(&mut self) {
        // The last handle is gone: end the session; the supervisor closes the connection.
        self.shared
            .set_state(ConnectionState::Ended(EndReason::ClosedLocally));
    }
}

/// Keeps a session alive while held (used by [`AudioSender`]).
pub(crate) type KeepAlive = Arc<dyn std::any::Any + Send + Sync>;

/// Control handle of a media session: state, trickle ICE, counters, close. Cheap to clone.
///
/// The session ends (and its peer connection closes) when [`SessionControl::close`] is called,
/// or when every `SessionControl` clone **and** the session's [`AudioSender`] are dropped.
#[derive(Clone)]
pub struct SessionControl {
    inner: Arc<ControlInner>,
}

impl std::fmt::Debug for SessionControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionControl")
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl SessionControl {
    /// The current connection state.
    pub fn state(&self) -> ConnectionState {
        self.inner.shared.state()
    }

    /// A receiver of state changes (latest value wins; terminal states are never overwritten).
    pub fn subscribe(&self) -> watch::Receiver<ConnectionState> {
        self.inner.shared.state.subscribe()
    }

    /// Waits until connected. `Err(Closed)` if the session ended first, `Err(Internal)` on
    /// timeout.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<(), TransportError> {
        let mut rx = self.subscribe();
        let waited = tokio::time::timeout(
            timeout,
            rx.wait_for(|s| *s == ConnectionState::Connected || s.is_terminal()),
        )
        .await;
        match waited {
            Ok(Ok(s)) if *s == ConnectionState::Connected => Ok(()),
            Ok(_) => Err(TransportError::Closed),
            Err(_) => Err(TransportError::Internal(format!(
                "not connected within {timeout:?}"
            ))),
        }
    }

    /// Waits until the session ends; `None` on timeout.
    pub async fn wait_ended(&self, timeout: Duration) -> Option<EndReason> {
        let mut rx = self.subscribe();
        let waited = tokio::time::timeout(timeout, rx.wait_for(|s| s.is_terminal())).await;
        match waited {
            Ok(Ok(s)) => match *s {
                ConnectionState::Ended(reason) => Some(reason),
                _ => None,
            },
            _ => None,
        }
    }

    /// Lock-free counters of this session.
    pub fn stats(&self) -> &Arc<TransportStats> {
        &self.inner.shared.stats
    }

    /// Adds a trickled remote candidate (`RTCIceCandidateInit` JSON from the browser). An
    /// empty candidate (end of candidates) is accepted and ignored; so is, in loopback-only
    /// mode ([`WebRtcConfig::loopback_only`]), a candidate that is not loopback.
    pub async fn add_remote_candidate(
        &self,
        candidate: IceCandidate,
    ) -> Result<(), TransportError> {
        if self.state().is_terminal() {
            return Err(TransportError::Closed);
        }
        if candidate.candidate.trim().is_empty() {
            return Ok(());
        }
        if candidate.candidate.len() > 1024 {
            return Err(TransportError::InvalidCandidate(
                "longer than 1024 bytes".into(),
            ));
        }
        let address = sdp::candidate_address(&candidate.candidate)?;
        if self.inner.loopback_only {
            match address {
                Some(ip) if super::loopback_guard::is_loopback(ip) => {}
                _ => {
                    tracing::debug!("loopback-only: ignored a trickled non-loopback candidate");
                    return Ok(());
                }
            }
        }
        if address.is_some_and(|ip| !sdp::address_is_reachable(ip)) {
            tracing::debug!("ignored a trickled candidate this node cannot reach");
            return Ok(());
        }
        let taken = self
            .inner
            .remote_candidates
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if taken >= sdp::MAX_REMOTE_CANDIDATES {
            self.inner
                .remote_candidates
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            return Err(TransportError::InvalidCandidate(format!(
                "more than {} remote candidates",
                sdp::MAX_REMOTE_CANDIDATES
            )));
        }
        let init = RTCIceCandidateInit {
            candidate: candidate.candidate,
            sdp_mid: candidate.sdp_mid,
            sdp_mline_index: candidate.sdp_m_line_index,
            username_fragment: candidate.username_fragment,
            url: None,
        };
        self.inner
            .pc
            .add_ice_candidate(init)
            .await
            .map_err(|e| TransportError::InvalidCandidate(e.to_string()))
    }

    /// Ends the session and closes the peer connection (idempotent). The peer sees a DTLS
    /// `close_notify`.
    pub async fn close(&self) {
        self.inner
            .shared
            .set_state(ConnectionState::Ended(EndReason::ClosedLocally));
        if let Err(e) = self.inner.pc.close().await {
            tracing::debug!(error = %e, "closing the peer connection");
        }
    }
}

/// A live audio session over one peer connection. The fields are public so the parts can go
/// to different owners (ingress, playback, supervision).
#[derive(Debug)]
pub struct MediaSession {
    /// Decoded inbound audio: 20 ms frames of mono i16 at [`WebRtcConfig::inbound_rate`],
    /// capacity [`INBOUND_FRAME_CAPACITY`]; frames are dropped (and counted) when full. Ends
    /// (`None`) when the session ends.
    pub inbound: mpsc::Receiver<AudioFrame>,
    /// Sends 20 ms frames (the caller paces).
    pub outbound: AudioSender,
    /// Local ICE candidates as they are gathered (trickle). The answer already contains the
    /// ones gathered before it was returned, so these may repeat them.
    pub local_candidates: mpsc::Receiver<IceCandidate>,
    /// State, trickle, counters, close.
    pub control: SessionControl,
}

impl MediaSession {
    pub fn state(&self) -> ConnectionState {
        self.control.state()
    }

    pub fn stats(&self) -> &Arc<TransportStats> {
        self.control.stats()
    }

    pub async fn close(&self) {
        self.control.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn discarded_frames_never_reach_the_stack() {
        let stats = Arc::new(TransportStats::default());
        let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE_CAPACITY);
        let generation = Arc::new(AtomicU64::new(0));
        let mut sender = AudioSender::new(
            OutboundAudio::new(1, 111),
            tx,
            stats.clone(),
            Arc::new(AtomicBool::new(false)),
            generation.clone(),
        );
        let rate = crate::transport::OpusRate::Hz16000;
        let frame = vec![0i16; rate.frame_samples()];
        for _ in 0..3 {
            assert!(sender.send_frame(&frame, rate).expect("queued"));
        }
        sender.discard_queued();
        assert!(sender.send_frame(&frame, rate).expect("queued"));
        drop(sender);
        // An unbound track refuses every write, which is how the one surviving packet shows.
        let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            "s".into(),
            "t".into(),
            "l".into(),
            RtpCodecKind::Audio,
            vec![],
        )));
        writer_task(track, rx, generation, stats.clone()).await;
        let st = stats.snapshot();
        assert_eq!(st.frames_sent, 4);
        assert_eq!(st.frames_discarded, 3);
        assert_eq!(st.packets_out + st.packets_out_failed, 1);
    }
}
