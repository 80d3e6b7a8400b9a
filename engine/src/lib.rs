//! The InterviewCraft engine.
//!
//! Today this crate holds the vendor layer ([`vendors`]): one trait per kind of vendor
//! (speech-to-text, LLM, text-to-speech), the real Deepgram, Anthropic and ElevenLabs clients
//! behind them, and the usage/timing reports every call produces for metering. The live
//! interview's actors and sans-IO cores (turn detection, barge-in, playback pacing) build on
//! these traits in a later issue.
//!
//! Tests run every client against the protocol-faithful fakes of the `fakes` crate over real
//! loopback sockets; see `engine/tests/`.

pub mod actors;
pub mod audio;
pub mod barge_in;
pub mod conversation;
pub mod engine;
pub mod key_lease;
pub mod latency;
pub mod media;
pub mod metering;
pub mod playback_pacer;
pub mod retention;
pub mod transcript_assembler;
pub mod transport;
pub mod turn_detector;
pub mod vendor_set;
pub mod vendors;
