//! The InterviewCraft engine: live spoken interviews as actix actors over sans-IO cores.
//!
//! # Actor tree
//!
//! ```text
//! InterviewActor (one per live interview; owns the state machine; supervises)
//!  ├─ IngressActor    16 kHz frames in (decoded at that rate) → energy VAD → the STT
//!  ├─ SttActor        one streaming STT session (Deepgram or its fake); events back up
//!  ├─ LlmActor        one streamed reply at a time (Claude or its fake), cancellable
//!  └─ PlaybackActor   streaming TTS at its own rate → PlaybackPacer → 20 ms frames to the
//!                     transport (22.05/44.1 kHz converted to 24/48 kHz by `audio`)
//! Process-wide (owned by EngineHandle):
//!  ├─ UsageMeter        batches usage rows (tokens, audio seconds, characters, latency, cost)
//!  ├─ TranscriptWriter  a task behind a bounded queue: every interview's segments, words,
//!  │                    turns and live/ended marks, batched, retried, drained at shutdown
//!  ├─ RetentionSweeper  deletes word timestamps after 14 days, usage rows after 90, abuse-ledger
//!  │                    hashes after ABUSE_LEDGER_DAYS, a day's sign-up counts per address
//!  │                    once it is over and expired verification links (batched; a PostgreSQL
//!  │                    advisory lock makes it one sweeper per cluster; first sweep at start)
//!  └─ KeyLeaser         the only owner of decrypted BYOK keys (over the sans-IO LeaseBook):
//!                       leased to one interview's vendor clients as key handles, zeroized at
//!                       its end, at the lease deadline, or at once when revoked
//! ```
//!
//! [`engine::EngineHandle`] is the only thing the HTTP layer sees: start an interview (with
//! admission control: a maximum of live interviews per node and one per account), attach its
//! transport, end it, list live interviews, subscribe to its events, stats.
//! Interviews and accounts are named by [`InterviewId`] and [`AccountId`] ([`ids`]) rather than
//! bare UUIDs, so one cannot be passed for the other, in queries too: the entities' columns are
//! typed with them (`entities::ids`).
//!
//! The interview's states: connecting → greeting → listening → thinking → speaking → … →
//! ending → ended ([`actors::interview::Phase`]), published to subscribers with interim and final
//! transcripts, the interviewer's text and each turn's latency breakdown.
//!
//! # Cores (sans-IO: inputs in, decisions out, time passed in as `Instant`)
//!
//! [`interview_core::InterviewCore`] (the conductor: phases, replies, speculation and
//! withdrawal, heard-text history, latency breakdown, idle and time-up, the child failure policy
//! and the typed [`interview_core::EndReason`]; the interview actor is its shell, and
//! [`interview_store`] its only writer), [`turn_detector::TurnDetector`] (when a turn ends:
//! STT endpointing + local VAD + an adaptive
//! quiet window; speculative replies), [`barge_in::BargeIn`] (interruption vs backchannel),
//! [`playback_pacer::PlaybackPacer`] (wall-clock pacing, flush, played time),
//! [`transcript_assembler::TranscriptAssembler`] (segments, word times, heard part of an
//! interrupted reply), [`conversation`] (prompt, `[WAIT]`/`[END]`, speakable chunks),
//! [`metering`] (usage rows and prices), [`retention::RetentionPolicy`], [`audio`] (VAD,
//! the one sample-rate conversion the codec cannot do), [`feedback`] (after the call: segments, rule-based scoring with evidence quoted
//! from the candidate's words, delivery metrics, skill levels, drill plans). Each is unit-tested with simulated time.
//!
//! # Message classes
//!
//! - **Urgent**: `Interrupt` (playback), `CancelReply` (LLM), `EndInterview`. Sent as soon as
//!   the decision is made; an interrupt flushes queued audio at once, so outbound audio stops
//!   within one frame, and cancels the reply's LLM and TTS streams.
//! - **Data**: audio frames (`ingress::Frame`, `ingress::SttAudio`) go with `try_send` into
//!   bounded mailboxes ([`actors::ingress::MAILBOX_FRAMES`], [`media::INBOUND_FRAMES`]); when
//!   full the frame is dropped and counted. Text deltas and TTS chunks are data too, but are
//!   never dropped (they are small and bounded by the reply).
//! - **Control**: start/stop, child notices (`SttNotice`, `LlmNotice`, `PlaybackNotice`), usage
//!   records, end of interview: `do_send`, never dropped and never flushed by an interrupt.
//!
//! No actor's mailbox waits on a vendor: vendor calls run in spawned tasks whose results come
//! back as messages, tagged with the reply or utterance id so stale results are ignored.
//!
//! # Interruption rules
//!
//! While the interviewer speaks, candidate speech interrupts when it has been voiced for
//! `min_voiced` and either said a word that is not a backchannel ("mm-hm", "yeah", "right"…)
//! or kept going for `voiced_without_words`. The heard part of the reply (by the TTS's character
//! alignment, or in proportion to the audio played) is what the transcript and the LLM's history
//! keep. Candidate speech after a turn ended but before the reply is heard withdraws the reply;
//! a speculative reply is discarded when the candidate resumes.
//!
//! # Shutdown modes
//!
//! [`actors::interview::StopMode::Graceful`]: stop listening, let the STT deliver its last
//! words (bounded by `drain_timeout`; on a server shutdown the candidate first hears a short
//! closing line, bounded by `closing_line_timeout`), persist the transcript, metrics and the
//! end state, then
//! stop the children and the actor. [`actors::interview::StopMode::CancelNow`]: stop the
//! children at once and persist only the end state (peer gone, erasure, admin). Either way the
//! interview row records the end reason, the registry forgets the interview, and the
//! live-instance counters ([`actors::live_counts`]) return to zero.
//!
//! # Time model
//!
//! Cores take `now: Instant` and never read a clock; actors read `Instant::now()` at the edges
//! (frame arrival, vendor events) and pass it in. Tests drive cores minutes at a time in
//! microseconds; whole-interview tests run the actor tree in real time against the fake vendors
//! on loopback with an in-memory transport ([`media::memory_transport`]).

pub mod actors;
pub mod audio;
pub mod barge_in;
pub mod byok_cipher;
pub mod conversation;
pub mod database;
pub mod engine;
pub mod feedback;
pub mod ids;
pub mod interview_core;
pub mod interview_store;
pub mod key_lease;
pub mod latency;
pub mod lease_book;
pub mod media;
pub mod metering;
pub mod playback_pacer;
pub mod recovery;
pub mod retention;
pub mod transcript_assembler;
pub mod transport;
pub mod turn_detector;
pub mod vendor_set;
pub mod vendors;

pub use ids::{AccountId, InterviewId};
