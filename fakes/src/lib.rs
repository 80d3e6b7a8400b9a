//! Protocol-faithful fake vendor servers on loopback: Deepgram live STT (`/v1/listen`
//! WebSocket), Anthropic Messages (`POST /v1/messages`, SSE) and ElevenLabs TTS
//! (`stream-input` WebSocket and HTTP `/stream`). They follow `providers.md` section D and are
//! shared by the engine's tests, the black-box `tests` crate, the load harness and the
//! server's keyless local mode.
//!
//! Each fake is started in-process with `Fake*::start(config).await`, binds `127.0.0.1:0` by
//! default, reports its `base_url()`, exposes counters of what it received and served, and
//! stops with `shutdown().await` (or when dropped).
//!
//! Faults are chosen per connection by the API key the client presents; see [`fault`] for
//! the key grammar (`fault_key("k", &[Fault::RateLimited { retry_after: Some(0.1) }])`).
//! Delays scale with [`Pacing`]: real time for load tests, many times faster for unit tests.
//!
//! This crate must never depend on `engine`: the engine's tests depend on it.

mod common;
pub mod fault;
mod http;

pub mod anthropic;

pub use anthropic::{AnthropicConfig, AnthropicCounters, FakeAnthropic, RecordedRequest};
pub use common::Pacing;
pub use fault::{Fault, fault_key};
