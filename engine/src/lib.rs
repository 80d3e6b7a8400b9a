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

pub mod turn_detector;
pub mod vendors;
