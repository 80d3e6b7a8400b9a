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
pub mod deepgram;
pub mod elevenlabs;

pub use anthropic::{AnthropicConfig, AnthropicCounters, FakeAnthropic, RecordedRequest};
pub use common::Pacing;
pub use deepgram::{DeepgramConfig, DeepgramCounters, FakeDeepgram};
pub use elevenlabs::{ElevenLabsConfig, ElevenLabsCounters, FakeElevenLabs};
pub use fault::{Fault, fault_key};

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Configuration of all three fakes together.
#[derive(Debug, Clone, Default)]
pub struct FakeVendorsConfig {
    pub deepgram: DeepgramConfig,
    pub anthropic: AnthropicConfig,
    pub elevenlabs: ElevenLabsConfig,
}

impl FakeVendorsConfig {
    /// Applies one pacing to all three fakes.
    pub fn with_pacing(mut self, pacing: Pacing) -> Self {
        self.deepgram.pacing = pacing;
        self.anthropic.pacing = pacing;
        self.elevenlabs.pacing = pacing;
        self
    }

    /// Listens on `ip` with free ports.
    pub fn on_ip(mut self, ip: IpAddr) -> Self {
        self.deepgram.listen = SocketAddr::new(ip, 0);
        self.anthropic.listen = SocketAddr::new(ip, 0);
        self.elevenlabs.listen = SocketAddr::new(ip, 0);
        self
    }
}

/// All three fakes, started together.
pub struct FakeVendors {
    pub deepgram: FakeDeepgram,
    pub anthropic: FakeAnthropic,
    pub elevenlabs: FakeElevenLabs,
}

impl FakeVendors {
    /// Starts the three fakes (default: `127.0.0.1`, free ports).
    pub async fn start_all(config: FakeVendorsConfig) -> std::io::Result<Self> {
        Ok(Self {
            deepgram: FakeDeepgram::start(config.deepgram).await?,
            anthropic: FakeAnthropic::start(config.anthropic).await?,
            elevenlabs: FakeElevenLabs::start(config.elevenlabs).await?,
        })
    }

    /// Starts the three fakes on loopback with default behaviour.
    pub async fn start_default() -> std::io::Result<Self> {
        Self::start_all(FakeVendorsConfig::default().on_ip(IpAddr::V4(Ipv4Addr::LOCALHOST))).await
    }

    pub async fn shutdown(self) {
        self.deepgram.shutdown().await;
        self.anthropic.shutdown().await;
        self.elevenlabs.shutdown().await;
    }
}
