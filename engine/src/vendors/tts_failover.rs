//! Text-to-speech that survives its vendor: [`FailoverTts`] speaks through a primary
//! [`TextToSpeech`] (the ElevenLabs WebSocket), retries it once after a transient failure,
//! then falls back to a second one (the ElevenLabs HTTP stream), and only reports a failure
//! when both have failed. Nothing said is dropped on the way: the text of the utterance is
//! kept, and what the candidate has not heard yet is replayed into the next session.
//!
//! The decisions are pure: [`decide`] chooses retry, fallback or giving up from the error's
//! category, and [`ReplayLog`] keeps the text and where the audio got to. The session task
//! only moves commands and events between the caller and the current vendor session.
//!
//! Replay works on whole segments (the text between two flushes, i.e. sentences as the
//! playback actor sends them): the first segment whose audio has not fully arrived is sent
//! again from its start, so a sentence cut in the middle is heard again whole rather than
//! resumed mid-word. How far the audio got is read from its character alignment; audio
//! without alignment counts for nothing, so its segment is replayed. Once a session has been
//! replaced, later chunks carry no alignment: their characters would no longer line up with
//! the text the caller handed in.
//!
//! Channels: commands from the caller ([`TTS_COMMAND_QUEUE`]; the caller waits when it is
//! full, nothing is dropped) and events to it ([`EVENT_QUEUE`]; the task waits). While a
//! replacement session opens, commands wait in the first; every one is also in the replay log.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::{
    AudioChunk, EVENT_QUEUE, ErrorCategory, TTS_COMMAND_QUEUE, TextToSpeech, TtsCommand, TtsEvent,
    TtsInput, TtsReport, TtsSession, VendorError,
};

/// How hard [`FailoverTts`] tries before it gives up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FailoverPolicy {
    /// Sessions opened on the primary per utterance (the first plus retries).
    pub primary_attempts: u32,
    /// Wait before retrying the primary, unless the vendor asked for longer (capped at
    /// `max_retry_after`).
    pub retry_backoff: Duration,
    /// A vendor's `retry-after` longer than this is not waited for: fall back instead.
    pub max_retry_after: Duration,
}

impl Default for FailoverPolicy {
    fn default() -> Self {
        Self {
            primary_attempts: 2,
            retry_backoff: Duration::from_millis(100),
            max_retry_after: Duration::from_secs(1),
        }
    }
}

/// Which session an utterance is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leg {
    Primary,
    Fallback,
}

/// What to do after a session failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Open the primary again after this wait.
    RetryPrimary(Duration),
    /// Open the fallback.
    Fallback,
    /// Report the failure.
    GiveUp,
}

/// The failure policy: a cancel, a rejected key, exhausted credits or a revoked key are the
/// same on both ways in (one account, one key), so they are reported at once; anything else
/// retries the primary while attempts remain (a permanent error is not retried unchanged,
/// nor a timeout, whose wait the candidate has already sat through), then falls back; a
/// failed fallback is the end.
pub fn decide(
    error: &VendorError,
    leg: Leg,
    primary_attempts_made: u32,
    policy: &FailoverPolicy,
) -> Next {
    match error.category {
        ErrorCategory::Cancelled
        | ErrorCategory::Auth
        | ErrorCategory::Quota
        | ErrorCategory::KeyRevoked => return Next::GiveUp,
        _ => {}
    }
    if leg == Leg::Fallback {
        return Next::GiveUp;
    }
    let retry_after = error.retry_after.unwrap_or(policy.retry_backoff);
    // A timeout (a stalled socket) has already cost the candidate its wait: not twice.
    if !error.is_permanent()
        && error.category != ErrorCategory::Timeout
        && primary_attempts_made < policy.primary_attempts
        && retry_after <= policy.max_retry_after
    {
        Next::RetryPrimary(retry_after)
    } else {
        Next::Fallback
    }
}

/// One piece of text between flushes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    text: String,
    /// Ended by a flush (otherwise it is the text still being written).
    flushed: bool,
}

/// The text of one utterance and how far its audio got, for replaying the unheard part.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ReplayLog {
    segments: Vec<Segment>,
    finished: bool,
    /// Characters of the whole text before the current session's first one.
    session_base: usize,
    /// Characters the current session's audio has covered (by its alignment).
    session_covered: usize,
}

/// What to send a new session, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    Text(String),
    Flush,
    Finish,
}

impl ReplayLog {
    /// Text handed to the session.
    pub fn text(&mut self, text: &str) {
        match self.segments.last_mut() {
            Some(last) if !last.flushed => last.text.push_str(text),
            _ => self.segments.push(Segment {
                text: text.to_owned(),
                flushed: false,
            }),
        }
    }

    pub fn flush(&mut self) {
        match self.segments.last_mut() {
            Some(last) if !last.flushed => last.flushed = true,
            _ => {}
        }
    }

    pub fn finish(&mut self) {
        self.finished = true;
    }

    /// A chunk of audio arrived; its alignment says how many characters it spoke.
    pub fn audio(&mut self, chunk: &AudioChunk) {
        if let Some(alignment) = &chunk.alignment {
            self.session_covered += alignment
                .chars
                .iter()
                .map(|c| c.chars().count())
                .sum::<usize>();
        }
    }

    /// The session failed: what the next one must be sent, starting at the first segment
    /// whose audio did not fully arrive. The next session's audio counts from there.
    pub fn replay(&mut self) -> Vec<Replay> {
        let covered = self.session_base + self.session_covered;
        let mut start = 0;
        let mut from = self.segments.len();
        for (i, segment) in self.segments.iter().enumerate() {
            let end = start + segment.text.chars().count();
            if end > covered {
                from = i;
                break;
            }
            start = end;
        }
        self.session_base = start;
        self.session_covered = 0;
        let mut out = Vec::new();
        for segment in &self.segments[from..] {
            if !segment.text.is_empty() {
                out.push(Replay::Text(segment.text.clone()));
            }
            if segment.flushed {
                out.push(Replay::Flush);
            }
        }
        if self.finished {
            out.push(Replay::Finish);
        }
        out
    }
}

/// Adds a failed session's usage to the one that replaced it: both were billed.
fn merge(spent: Option<TtsReport>, last: TtsReport) -> TtsReport {
    let Some(spent) = spent else {
        return last;
    };
    TtsReport {
        model: last.model,
        usage: super::TtsUsage {
            characters: spent.usage.characters + last.usage.characters,
            audio_seconds: spent.usage.audio_seconds + last.usage.audio_seconds,
            chunks: spent.usage.chunks + last.usage.chunks,
        },
        timing: super::TtsTiming {
            connect: spent.timing.connect.or(last.timing.connect),
            time_to_first_audio: spent
                .timing
                .time_to_first_audio
                .or(last.timing.time_to_first_audio),
            total: spent.timing.total + last.timing.total,
        },
        cost_usd: spent.cost_usd + last.cost_usd,
        request_id: last.request_id.or(spent.request_id),
    }
}

/// A primary text-to-speech with a fallback; see the module docs.
#[derive(Clone)]
pub struct FailoverTts {
    primary: Arc<dyn TextToSpeech>,
    fallback: Arc<dyn TextToSpeech>,
    policy: FailoverPolicy,
}

impl FailoverTts {
    pub fn new(primary: Arc<dyn TextToSpeech>, fallback: Arc<dyn TextToSpeech>) -> Self {
        Self {
            primary,
            fallback,
            policy: FailoverPolicy::default(),
        }
    }

    pub fn with_policy(mut self, policy: FailoverPolicy) -> Self {
        self.policy = policy;
        self
    }
}

/// Opens sessions until one opens or the policy gives up. `spent` collects nothing here: a
/// session that never opened sent no text.
async fn open(
    tts: &FailoverTts,
    mut leg: Leg,
    mut primary_attempts: u32,
    mut error: Option<VendorError>,
) -> Result<(TtsSession, Leg, u32), VendorError> {
    loop {
        if let Some(e) = error.take() {
            match decide(&e, leg, primary_attempts, &tts.policy) {
                Next::RetryPrimary(wait) => {
                    tracing::info!(vendor = %e.vendor, category = ?e.category, "retrying speech synthesis");
                    tokio::time::sleep(wait).await;
                    leg = Leg::Primary;
                }
                Next::Fallback => {
                    tracing::warn!(vendor = %e.vendor, category = ?e.category, "speech synthesis falls back to its second way");
                    leg = Leg::Fallback;
                }
                Next::GiveUp => return Err(e),
            }
        }
        let started = match leg {
            Leg::Primary => {
                primary_attempts += 1;
                tts.primary.start().await
            }
            Leg::Fallback => tts.fallback.start().await,
        };
        match started {
            Ok(session) => return Ok((session, leg, primary_attempts)),
            Err(e) => error = Some(e),
        }
    }
}

#[async_trait]
impl TextToSpeech for FailoverTts {
    async fn start(&self) -> Result<TtsSession, VendorError> {
        let (session, leg, primary_attempts) = open(self, Leg::Primary, 0, None).await?;
        let (cmd_tx, cmd_rx) = mpsc::channel(TTS_COMMAND_QUEUE);
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let task = FailoverTask {
            tts: self.clone(),
            commands: cmd_rx,
            tx,
            session,
            leg,
            primary_attempts,
            replaced: leg != Leg::Primary || primary_attempts > 1,
            log: ReplayLog::default(),
            spent: None,
            cancelled: false,
        };
        tokio::spawn(task.run());
        Ok(TtsSession {
            input: TtsInput { commands: cmd_tx },
            events: rx,
        })
    }
}

struct FailoverTask {
    tts: FailoverTts,
    commands: mpsc::Receiver<TtsCommand>,
    tx: mpsc::Sender<TtsEvent>,
    session: TtsSession,
    leg: Leg,
    primary_attempts: u32,
    /// A session was replaced: alignment no longer lines up with the caller's text.
    replaced: bool,
    log: ReplayLog,
    /// Usage of the sessions that failed before this one.
    spent: Option<TtsReport>,
    cancelled: bool,
}

impl FailoverTask {
    async fn run(mut self) {
        loop {
            tokio::select! {
                biased;
                cmd = self.commands.recv(), if !self.cancelled => {
                    let cmd = cmd.unwrap_or(TtsCommand::Cancel);
                    match &cmd {
                        TtsCommand::Text(t) => self.log.text(t),
                        TtsCommand::Flush => self.log.flush(),
                        TtsCommand::Finish => self.log.finish(),
                        TtsCommand::Cancel => self.cancelled = true,
                    }
                    // A session that already ended reports it on its events; the command
                    // is in the log for the next one.
                    let _ = self.session.input.commands.send(cmd).await;
                }
                event = self.session.events.recv() => {
                    let event = event.unwrap_or_else(|| TtsEvent::Failed {
                        error: VendorError::new(
                            super::Vendor::ElevenLabs,
                            ErrorCategory::Protocol,
                            "the session ended without a final event",
                        ),
                        report: TtsReport::default(),
                    });
                    match event {
                        TtsEvent::Audio(mut chunk) => {
                            self.log.audio(&chunk);
                            if self.replaced {
                                chunk.alignment = None;
                                chunk.normalized_alignment = None;
                            }
                            if self.tx.send(TtsEvent::Audio(chunk)).await.is_err() {
                                self.cancelled = true;
                                let _ = self.session.input.cancel().await;
                            }
                        }
                        TtsEvent::Done(report) => {
                            let report = merge(self.spent.take(), report);
                            let _ = self.tx.send(TtsEvent::Done(report)).await;
                            return;
                        }
                        TtsEvent::Failed { error, report } => {
                            let spent = merge(self.spent.take(), report);
                            if self.cancelled {
                                let error = if error.category == ErrorCategory::Cancelled {
                                    error
                                } else {
                                    VendorError::new(error.vendor, ErrorCategory::Cancelled, "cancelled by the caller")
                                };
                                let _ = self.tx.send(TtsEvent::Failed { error, report: spent }).await;
                                return;
                            }
                            self.spent = Some(spent);
                            if let Err(error) = self.replace(error).await {
                                let report = self.spent.take().unwrap_or_default();
                                let _ = self.tx.send(TtsEvent::Failed { error, report }).await;
                                return;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Replaces the failed session (per the policy) and replays what was not heard.
    async fn replace(&mut self, error: VendorError) -> Result<(), VendorError> {
        let (session, leg, attempts) =
            open(&self.tts, self.leg, self.primary_attempts, Some(error)).await?;
        self.session = session;
        self.leg = leg;
        self.primary_attempts = attempts;
        self.replaced = true;
        for step in self.log.replay() {
            let sent = match step {
                Replay::Text(t) => self.session.input.push_text(&t).await,
                Replay::Flush => self.session.input.flush().await,
                Replay::Finish => self.session.input.finish().await,
            };
            if sent.is_err() {
                // The new session already ended; its terminal event says why.
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::{Alignment, Vendor};

    fn error(category: ErrorCategory) -> VendorError {
        VendorError::new(Vendor::ElevenLabs, category, "test")
    }

    fn aligned(text: &str) -> AudioChunk {
        AudioChunk {
            pcm: vec![0; 160],
            sample_rate: 16_000,
            voice: crate::media::VoiceKind::Neural,
            alignment: Some(Alignment {
                chars: text.chars().map(String::from).collect(),
                start_ms: vec![0; text.chars().count()],
                duration_ms: vec![0; text.chars().count()],
            }),
            normalized_alignment: None,
        }
    }

    #[test]
    fn transient_failures_retry_once_then_fall_back_then_give_up() {
        let p = FailoverPolicy::default();
        let network = error(ErrorCategory::Network);
        assert_eq!(
            decide(&network, Leg::Primary, 1, &p),
            Next::RetryPrimary(p.retry_backoff)
        );
        assert_eq!(decide(&network, Leg::Primary, 2, &p), Next::Fallback);
        assert_eq!(decide(&network, Leg::Fallback, 2, &p), Next::GiveUp);
        // A permanent error that is the WebSocket's own is not retried unchanged.
        let bad = error(ErrorCategory::BadRequest);
        assert_eq!(decide(&bad, Leg::Primary, 1, &p), Next::Fallback);
        // A stalled socket falls back at once.
        let stalled = error(ErrorCategory::Timeout);
        assert_eq!(decide(&stalled, Leg::Primary, 1, &p), Next::Fallback);
        // A long retry-after is not waited for.
        let limited =
            error(ErrorCategory::RateLimited).with_retry_after(Some(Duration::from_secs(30)));
        assert_eq!(decide(&limited, Leg::Primary, 1, &p), Next::Fallback);
    }

    #[test]
    fn account_wide_failures_are_reported_at_once() {
        let p = FailoverPolicy::default();
        for category in [
            ErrorCategory::Auth,
            ErrorCategory::Quota,
            ErrorCategory::KeyRevoked,
            ErrorCategory::Cancelled,
        ] {
            assert_eq!(decide(&error(category), Leg::Primary, 1, &p), Next::GiveUp);
        }
    }

    #[test]
    fn replay_starts_at_the_first_segment_not_fully_heard() {
        let mut log = ReplayLog::default();
        log.text("One. ");
        log.flush();
        log.text("Two ");
        log.text("three. ");
        log.flush();
        log.text("Four");
        // All of the first sentence and part of the second arrived.
        log.audio(&aligned("One. "));
        log.audio(&aligned("Two"));
        assert_eq!(
            log.replay(),
            vec![
                Replay::Text("Two three. ".into()),
                Replay::Flush,
                Replay::Text("Four".into())
            ]
        );
        // The replacement speaks the second sentence, then fails too: only "Four" is left.
        log.audio(&aligned("Two three. "));
        log.finish();
        assert_eq!(
            log.replay(),
            vec![Replay::Text("Four".into()), Replay::Finish]
        );
    }

    #[test]
    fn audio_without_alignment_replays_its_segment() {
        let mut log = ReplayLog::default();
        log.text("Hello there. ");
        log.flush();
        let mut chunk = aligned("Hello");
        chunk.alignment = None;
        log.audio(&chunk);
        log.finish();
        assert_eq!(
            log.replay(),
            vec![
                Replay::Text("Hello there. ".into()),
                Replay::Flush,
                Replay::Finish
            ]
        );
    }

    #[test]
    fn failed_sessions_usage_is_added_to_the_last_one() {
        let mut a = TtsReport::default();
        a.usage.characters = 10;
        a.cost_usd = 0.5;
        let mut b = TtsReport::default();
        b.usage.characters = 7;
        b.cost_usd = 0.25;
        let m = merge(Some(a), b);
        assert_eq!(m.usage.characters, 17);
        assert!((m.cost_usd - 0.75).abs() < 1e-9);
    }
}
