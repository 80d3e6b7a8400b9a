//! `PlaybackActor`: the interviewer's voice. Streams reply text into a text-to-speech session
//! and releases its audio to the transport in 20 ms frames at the synthesizer's own rate (the
//! encoder takes 16 and 24 kHz as they come; 22.05/44.1 kHz are converted by
//! [`UtteranceAudio`]) on the wall
//! clock through a [`PlaybackPacer`]. An [`Interrupt`] (barge-in) flushes the pacer at once, so
//! outbound audio stops within one frame, and cancels the synthesis.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use crate::actors::{LiveGuard, PLAYBACK_ACTORS, Supervisor};
use crate::audio::UtteranceAudio;
use crate::media::{AudioSink, OpusRate, VoiceKind};
use crate::playback_pacer::PlaybackPacer;
use crate::transcript_assembler::ChunkAlignment;
use crate::vendors::{TextToSpeech, TtsEvent, TtsInput, TtsReport, TtsSession, VendorError};

/// Start a new utterance (replacing any current one). Sender: the interview actor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Speak {
    pub utterance_id: u64,
}

/// More text of the utterance. Sender: the interview actor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SpeakText {
    pub utterance_id: u64,
    pub text: String,
}

/// No more text for the utterance. Sender: the interview actor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FinishText {
    pub utterance_id: u64,
}

/// Stop speaking now (urgent: barge-in or end). Sender: the interview actor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Interrupt {
    pub utterance_id: u64,
    /// A barge-in's decision instant: the reaction up to the stop is observed
    /// ([`crate::latency::observe_barge_in`]).
    pub barge_in_at: Option<Instant>,
}

/// Stop the actor. Sender: the interview actor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopPlayback;

/// What playback reports. Sent to: the interview actor (never dropped).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub enum PlaybackNotice {
    /// The first text went to the TTS (start of time-to-first-audio).
    TextSent { utterance_id: u64, at: Instant },
    /// The first synthesized audio arrived.
    FirstAudio { utterance_id: u64, at: Instant },
    /// The first frame of the utterance left for the candidate.
    FirstFrame { utterance_id: u64, at: Instant },
    /// A synthesized chunk (for the transcript's heard-text bookkeeping).
    Audio {
        utterance_id: u64,
        duration: Duration,
        alignment: Option<ChunkAlignment>,
    },
    /// The utterance is over: fully played, or interrupted after `played`.
    Finished {
        utterance_id: u64,
        played: Duration,
        interrupted: bool,
    },
    Failed {
        utterance_id: u64,
        error: VendorError,
    },
    /// A synthesis session ended (for metering), whether its utterance was current or not.
    Usage { report: TtsReport },
    /// The transport refused a frame: the peer is gone.
    PeerGone,
}

#[derive(Message)]
#[rtype(result = "()")]
struct TtsOpened {
    utterance_id: u64,
    result: Result<TtsSession, VendorError>,
}

#[derive(Message)]
#[rtype(result = "()")]
struct TtsNotice {
    utterance_id: u64,
    event: TtsEvent,
    at: Instant,
}

struct Utterance {
    id: u64,
    input: Option<TtsInput>,
    queued: Vec<String>,
    finish_requested: bool,
    text_sent: bool,
    first_audio: bool,
    first_frame: bool,
    tts_done: bool,
    audio: UtteranceAudio,
}

pub struct PlaybackActor {
    tts: Arc<dyn TextToSpeech>,
    sink: Box<dyn AudioSink>,
    parent: Recipient<PlaybackNotice>,
    pacer: PlaybackPacer,
    /// The rate of the frames in the pacer (the current utterance's).
    rate: OpusRate,
    utterance: Option<Utterance>,
    timer: Option<SpawnHandle>,
    peer_gone: bool,
    /// Whether a finished sentence is flushed to the synthesizer (see [`Self::sentence_flush`]).
    sentence_flush: bool,
    supervisor: Option<Supervisor>,
    live: Option<LiveGuard>,
}

/// The outbound audio sink, shared so that a restarted playback actor (after its predecessor
/// panicked) goes on sending to the same peer.
#[derive(Clone)]
pub struct SharedSink(Arc<std::sync::Mutex<Box<dyn AudioSink>>>);

impl SharedSink {
    pub fn new(sink: Box<dyn AudioSink>) -> Self {
        Self(Arc::new(std::sync::Mutex::new(sink)))
    }
}

impl AudioSink for SharedSink {
    fn send_frame(&mut self, pcm: &[i16], rate: OpusRate) -> bool {
        // A panic elsewhere while sending leaves the sink usable: the lock is only the frame.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .send_frame(pcm, rate)
    }

    fn set_voice(&mut self, voice: VoiceKind) {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .set_voice(voice);
    }
}

/// Whether a chunk of reply text ends a sentence (the conversation core releases whole
/// sentences, or clauses of long ones).
fn ends_sentence(text: &str) -> bool {
    let text = text
        .trim_end()
        .trim_end_matches(['"', '\'', ')', '\u{201d}', '\u{2019}']);
    text.ends_with(['.', '?', '!'])
}

impl PlaybackActor {
    pub fn new(
        tts: Arc<dyn TextToSpeech>,
        sink: Box<dyn AudioSink>,
        parent: Recipient<PlaybackNotice>,
        lead: Duration,
    ) -> Self {
        Self {
            tts,
            sink,
            parent,
            pacer: PlaybackPacer::new(OpusRate::Hz16000.hz(), lead),
            rate: OpusRate::Hz16000,
            utterance: None,
            timer: None,
            peer_gone: false,
            sentence_flush: true,
            supervisor: None,
            live: None,
        }
    }

    /// Whether each finished sentence is flushed to the synthesizer (default on). Off, the
    /// synthesizer holds text until its own buffer fills or the reply ends: the behaviour the
    /// load harness compares against (`[vendors] tts_flush = false`).
    pub fn sentence_flush(mut self, on: bool) -> Self {
        self.sentence_flush = on;
        self
    }

    /// Report to `supervisor` when this actor is gone (stopped or panicked).
    pub fn supervised(mut self, supervisor: Supervisor) -> Self {
        self.supervisor = Some(supervisor);
        self
    }

    fn current(&mut self, id: u64) -> Option<&mut Utterance> {
        self.utterance.as_mut().filter(|u| u.id == id)
    }

    fn push_text(&mut self, id: u64, text: String) {
        let parent = self.parent.clone();
        let sentence_flush = self.sentence_flush;
        let Some(utterance) = self.current(id) else {
            return;
        };
        match &utterance.input {
            Some(input) => {
                if !utterance.text_sent {
                    utterance.text_sent = true;
                    parent.do_send(PlaybackNotice::TextSent {
                        utterance_id: id,
                        at: Instant::now(),
                    });
                }
                let input = input.clone();
                // A finished sentence is flushed: the synthesizer speaks it now instead of
                // holding it until its buffer fills (ElevenLabs' schedule starts at 120
                // characters), so the first audio follows the first sentence. One task, so the
                // flush can never overtake its text.
                let flush = sentence_flush && ends_sentence(&text);
                actix::spawn(async move {
                    if input.push_text(&text).await.is_ok() && flush {
                        let _ = input.flush().await;
                    }
                });
            }
            None => utterance.queued.push(text),
        }
    }

    fn send_finish(&mut self, id: u64) {
        let Some(utterance) = self.current(id) else {
            return;
        };
        utterance.finish_requested = true;
        if let Some(input) = utterance.input.clone() {
            actix::spawn(async move {
                let _ = input.finish().await;
            });
        }
    }

    /// Releases due frames and schedules the next tick.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        if let Some(timer) = self.timer.take() {
            ctx.cancel_future(timer);
        }
        let now = Instant::now();
        while let Some(frame) = self.pacer.poll(now) {
            if !self.sink.send_frame(&frame.pcm, self.rate) {
                if !self.peer_gone {
                    self.peer_gone = true;
                    self.parent.do_send(PlaybackNotice::PeerGone);
                }
                self.pacer.flush();
                break;
            }
            if let Some(utterance) = self.utterance.as_mut()
                && !utterance.first_frame
            {
                utterance.first_frame = true;
                self.parent.do_send(PlaybackNotice::FirstFrame {
                    utterance_id: utterance.id,
                    at: Instant::now(),
                });
            }
        }
        self.check_finished();
        if let Some(deadline) = self.pacer.next_deadline(now) {
            let wait = deadline.saturating_duration_since(Instant::now());
            self.timer = Some(ctx.run_later(wait, |actor, ctx| {
                actor.timer = None;
                actor.pump(ctx);
            }));
        }
    }

    fn check_finished(&mut self) {
        let done = self
            .utterance
            .as_ref()
            .is_some_and(|u| u.tts_done && self.pacer.is_drained());
        if done && let Some(utterance) = self.utterance.take() {
            self.parent.do_send(PlaybackNotice::Finished {
                utterance_id: utterance.id,
                played: self.pacer.played(),
                interrupted: false,
            });
        }
    }
}

impl Actor for PlaybackActor {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Self::Context) {
        self.live = Some(LiveGuard::supervised(
            &PLAYBACK_ACTORS,
            self.supervisor.take(),
        ));
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        if let Some(input) = self.utterance.take().and_then(|u| u.input) {
            actix::spawn(async move {
                let _ = input.cancel().await;
            });
        }
    }
}

impl Handler<Speak> for PlaybackActor {
    type Result = ();

    fn handle(&mut self, msg: Speak, ctx: &mut Self::Context) {
        if let Some(old) = self.utterance.take()
            && let Some(input) = old.input
        {
            actix::spawn(async move {
                let _ = input.cancel().await;
            });
        }
        self.pacer.start_utterance();
        self.utterance = Some(Utterance {
            id: msg.utterance_id,
            input: None,
            queued: Vec::new(),
            finish_requested: false,
            text_sent: false,
            first_audio: false,
            first_frame: false,
            tts_done: false,
            audio: UtteranceAudio::new(),
        });
        let tts = self.tts.clone();
        let me = ctx.address();
        let utterance_id = msg.utterance_id;
        actix::spawn(async move {
            let result = tts.start().await;
            me.do_send(TtsOpened {
                utterance_id,
                result,
            });
        });
    }
}

impl Handler<TtsOpened> for PlaybackActor {
    type Result = ();

    fn handle(&mut self, msg: TtsOpened, ctx: &mut Self::Context) {
        let parent = self.parent.clone();
        let Some(utterance) = self.current(msg.utterance_id) else {
            // Superseded or interrupted while opening: drop the session (cancels it).
            return;
        };
        let session = match msg.result {
            Ok(session) => session,
            Err(error) => {
                self.utterance = None;
                parent.do_send(PlaybackNotice::Failed {
                    utterance_id: msg.utterance_id,
                    error,
                });
                return;
            }
        };
        let TtsSession { input, mut events } = session;
        utterance.input = Some(input);
        let queued = std::mem::take(&mut utterance.queued);
        let finish = utterance.finish_requested;
        for text in queued {
            self.push_text(msg.utterance_id, text);
        }
        if finish {
            self.send_finish(msg.utterance_id);
        }
        let me = ctx.address();
        let utterance_id = msg.utterance_id;
        actix::spawn(async move {
            while let Some(event) = events.recv().await {
                let terminal = event.is_terminal();
                me.do_send(TtsNotice {
                    utterance_id,
                    event,
                    at: Instant::now(),
                });
                if terminal {
                    break;
                }
            }
        });
    }
}

impl Handler<TtsNotice> for PlaybackActor {
    type Result = ();

    fn handle(&mut self, msg: TtsNotice, ctx: &mut Self::Context) {
        let parent = self.parent.clone();
        match &msg.event {
            TtsEvent::Done(report) | TtsEvent::Failed { report, .. } => {
                parent.do_send(PlaybackNotice::Usage {
                    report: report.clone(),
                });
            }
            TtsEvent::Audio(_) => {}
        }
        let Some(utterance) = self.current(msg.utterance_id) else {
            return;
        };
        match msg.event {
            TtsEvent::Audio(chunk) => {
                if !utterance.first_audio {
                    utterance.first_audio = true;
                    parent.do_send(PlaybackNotice::FirstAudio {
                        utterance_id: msg.utterance_id,
                        at: msg.at,
                    });
                }
                let mut pcm = Vec::with_capacity(chunk.pcm.len() * 2);
                let rate = match utterance
                    .audio
                    .push(&chunk.pcm, chunk.sample_rate, &mut pcm)
                {
                    Ok(rate) => rate,
                    Err(error) => {
                        tracing::warn!(%error, "TTS audio dropped");
                        return;
                    }
                };
                let duration =
                    Duration::from_secs_f64(chunk.pcm.len() as f64 / f64::from(chunk.sample_rate));
                let alignment = chunk.alignment.map(|a| ChunkAlignment {
                    chars: a.chars,
                    start_ms: a.start_ms,
                });
                parent.do_send(PlaybackNotice::Audio {
                    utterance_id: msg.utterance_id,
                    duration,
                    alignment,
                });
                if rate != self.rate {
                    self.rate = rate;
                    self.pacer.set_sample_rate(rate.hz());
                }
                // The sink acts on a change only (a new encoder for another kind of voice).
                self.sink.set_voice(chunk.voice);
                self.pacer.push(&pcm);
                self.pump(ctx);
            }
            TtsEvent::Done(_) => {
                utterance.tts_done = true;
                let mut tail = Vec::new();
                utterance.audio.finish(&mut tail);
                self.pacer.push(&tail);
                self.pacer.finish_input();
                self.pump(ctx);
            }
            TtsEvent::Failed { error, .. } => {
                self.utterance = None;
                self.pacer.flush();
                parent.do_send(PlaybackNotice::Failed {
                    utterance_id: msg.utterance_id,
                    error,
                });
            }
        }
    }
}

impl Handler<SpeakText> for PlaybackActor {
    type Result = ();

    fn handle(&mut self, msg: SpeakText, _: &mut Self::Context) {
        self.push_text(msg.utterance_id, msg.text);
    }
}

impl Handler<FinishText> for PlaybackActor {
    type Result = ();

    fn handle(&mut self, msg: FinishText, _: &mut Self::Context) {
        let nothing_said = self
            .current(msg.utterance_id)
            .is_some_and(|u| !u.text_sent && u.queued.is_empty());
        if nothing_said {
            // Nothing to synthesize: the utterance is over at once.
            self.utterance = None;
            self.parent.do_send(PlaybackNotice::Finished {
                utterance_id: msg.utterance_id,
                played: Duration::ZERO,
                interrupted: false,
            });
            return;
        }
        self.send_finish(msg.utterance_id);
    }
}

impl Handler<Interrupt> for PlaybackActor {
    type Result = ();

    fn handle(&mut self, msg: Interrupt, ctx: &mut Self::Context) {
        if self.current(msg.utterance_id).is_none() {
            return;
        }
        self.pacer.flush();
        if let Some(timer) = self.timer.take() {
            ctx.cancel_future(timer);
        }
        // From here on no frame of the reply is sent: the server's part of the reaction.
        if let Some(decided) = msg.barge_in_at {
            crate::latency::observe_barge_in(decided.elapsed());
        }
        if let Some(utterance) = self.utterance.take() {
            if let Some(input) = utterance.input {
                actix::spawn(async move {
                    let _ = input.cancel().await;
                });
            }
            self.parent.do_send(PlaybackNotice::Finished {
                utterance_id: utterance.id,
                played: self.pacer.played(),
                interrupted: true,
            });
        }
    }
}

impl Handler<StopPlayback> for PlaybackActor {
    type Result = ();

    fn handle(&mut self, _: StopPlayback, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

#[cfg(feature = "fault-injection")]
impl Handler<crate::actors::InjectPanic> for PlaybackActor {
    type Result = ();

    fn handle(&mut self, _: crate::actors::InjectPanic, _: &mut Self::Context) {
        panic!("injected fault: PlaybackActor panics");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::testing::{tone_at, zero_crossing_hz};
    use crate::media::{OutboundFrame, memory_transport};
    use crate::vendors::{AudioChunk, EVENT_QUEUE, TTS_COMMAND_QUEUE, TtsCommand};
    use tokio::sync::mpsc;

    /// A synthesizer that answers `finish` with `seconds` of a 440 Hz tone at `rate`, in chunks
    /// of 100 ms (the size ElevenLabs' stream has).
    struct ToneTts {
        rate: u32,
        seconds: f64,
        voice: VoiceKind,
    }

    #[async_trait::async_trait]
    impl TextToSpeech for ToneTts {
        async fn start(&self) -> Result<TtsSession, VendorError> {
            let (commands, mut command_rx) = mpsc::channel(TTS_COMMAND_QUEUE);
            let (events, event_rx) = mpsc::channel(EVENT_QUEUE);
            let pcm = tone_at(
                440.0,
                self.rate,
                (self.seconds * f64::from(self.rate)) as usize,
                8_000.0,
            );
            let (rate, voice) = (self.rate, self.voice);
            tokio::spawn(async move {
                while let Some(command) = command_rx.recv().await {
                    if matches!(command, TtsCommand::Finish) {
                        break;
                    }
                }
                for piece in pcm.chunks(rate as usize / 10) {
                    let chunk = AudioChunk {
                        pcm: piece.to_vec(),
                        sample_rate: rate,
                        voice,
                        alignment: None,
                        normalized_alignment: None,
                    };
                    let _ = events.send(TtsEvent::Audio(chunk)).await;
                }
                let _ = events.send(TtsEvent::Done(TtsReport::default())).await;
            });
            Ok(TtsSession {
                input: TtsInput { commands },
                events: event_rx,
            })
        }
    }

    /// Forwards the playback's notices to the test.
    struct Notices(mpsc::UnboundedSender<PlaybackNotice>);

    impl Actor for Notices {
        type Context = Context<Self>;
    }

    impl Handler<PlaybackNotice> for Notices {
        type Result = ();

        fn handle(&mut self, notice: PlaybackNotice, _: &mut Self::Context) {
            let _ = self.0.send(notice);
        }
    }

    /// Plays one utterance from a synthesizer speaking at `rate`; returns what the transport
    /// got.
    async fn play(rate: u32, seconds: f64) -> Vec<OutboundFrame> {
        play_voices(rate, seconds, &[VoiceKind::Neural])
            .await
            .remove(0)
    }

    /// Plays one utterance per voice, one after the other, on one playback actor and one
    /// transport; returns what the transport got for each.
    async fn play_voices(rate: u32, seconds: f64, voices: &[VoiceKind]) -> Vec<Vec<OutboundFrame>> {
        let (link, mut peer) = memory_transport();
        let (tx, mut notices) = mpsc::unbounded_channel();
        let parent = Notices(tx).start().recipient();
        let voice = Arc::new(std::sync::Mutex::new(VoiceKind::Neural));
        let tts: Arc<dyn TextToSpeech> = Arc::new(VoiceSwitch(voice.clone(), rate, seconds));
        let playback =
            PlaybackActor::new(tts, link.outbound, parent, Duration::from_millis(60)).start();
        let mut utterances = Vec::new();
        for (id, kind) in (1..).zip(voices) {
            *voice.lock().expect("the voice") = *kind;
            playback.do_send(Speak { utterance_id: id });
            playback.do_send(SpeakText {
                utterance_id: id,
                text: "Hello there. ".into(),
            });
            playback.do_send(FinishText { utterance_id: id });
            let finished = tokio::time::timeout(Duration::from_secs(30), async {
                while let Some(notice) = notices.recv().await {
                    if let PlaybackNotice::Finished { played, .. } = notice {
                        return played;
                    }
                }
                panic!("playback stopped without finishing");
            })
            .await
            .expect("the utterance finishes");
            let mut frames = Vec::new();
            while let Ok(frame) = peer.from_engine.try_recv() {
                frames.push(frame);
            }
            assert_eq!(
                finished,
                Duration::from_millis(20) * frames.len() as u32,
                "played time is the frames sent"
            );
            utterances.push(frames);
        }
        utterances
    }

    /// A [`ToneTts`] whose voice is the shared one when a session starts.
    struct VoiceSwitch(Arc<std::sync::Mutex<VoiceKind>>, u32, f64);

    #[async_trait::async_trait]
    impl TextToSpeech for VoiceSwitch {
        async fn start(&self) -> Result<TtsSession, VendorError> {
            let voice = *self.0.lock().expect("the voice");
            ToneTts {
                rate: self.1,
                seconds: self.2,
                voice,
            }
            .start()
            .await
        }
    }

    #[actix::test]
    async fn the_sink_hears_which_kind_of_voice_each_utterance_is() {
        use VoiceKind::{Formant, Neural};
        let played = play_voices(16_000, 0.3, &[Formant, Formant, Neural, Formant]).await;
        for (utterance, expected) in played.iter().zip([Formant, Formant, Neural, Formant]) {
            assert!(!utterance.is_empty());
            assert!(
                utterance.iter().all(|frame| frame.voice == expected),
                "every frame of a {expected:?} utterance is sent as {expected:?}"
            );
        }
    }

    #[actix::test]
    async fn speech_at_22_05_and_44_1_khz_is_heard_at_its_own_duration_and_pitch() {
        for (hz, expected) in [
            (22_050, OpusRate::Hz24000),
            (44_100, OpusRate::Hz48000),
            (16_000, OpusRate::Hz16000),
            (24_000, OpusRate::Hz24000),
        ] {
            let frames = play(hz, 1.5).await;
            assert!(
                frames
                    .iter()
                    .all(|f| f.rate == expected && f.pcm.len() == expected.frame_samples()),
                "{hz} Hz is encoded from {expected}"
            );
            let heard: Duration = frames.iter().map(OutboundFrame::duration).sum();
            // 1.5 s of speech, the last frame padded to a whole 20 ms.
            assert!(
                heard >= Duration::from_millis(1_500) && heard < Duration::from_millis(1_520),
                "{hz} Hz: heard {heard:?}"
            );
            let pcm: Vec<i16> = frames.iter().flat_map(|f| f.pcm.clone()).collect();
            let middle = &pcm[pcm.len() / 10..pcm.len() * 9 / 10];
            let pitch = zero_crossing_hz(middle, expected.hz());
            assert!((pitch - 440.0).abs() < 2.0, "{hz} Hz: heard at {pitch} Hz");
        }
    }

    #[test]
    fn sentence_ends_are_flushed_and_clauses_are_not() {
        assert!(ends_sentence("Tell me about a project. "));
        assert!(ends_sentence("Why?"));
        assert!(ends_sentence("He said \"ship it.\" "));
        assert!(ends_sentence("(It worked.)"));
        assert!(!ends_sentence("When the migration started, "));
        assert!(!ends_sentence("the one you led (the billing one)"));
        assert!(!ends_sentence(""));
    }
}
