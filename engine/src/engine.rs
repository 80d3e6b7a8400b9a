//! `EngineHandle`: the only thing the HTTP layer sees of the engine. Starts interviews (with
//! admission control: a maximum of live interviews per node, one per account), attaches their
//! transport, ends them, lists them, and reports stats. Owns the process-wide actors
//! (`UsageMeter`, `RetentionSweeper`) and builds each interview's vendor clients from its key
//! lease.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use entities::byok_cipher::KeyRing;
use sea_orm::DatabaseConnection;
use secrecy::SecretString;
use serde::Serialize;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::actors::interview::{
    EndInterview, InterviewActor, InterviewConfig, InterviewEvent, InterviewSetup, StopMode,
};
use crate::actors::retention_sweeper::{RetentionSweeper, SweepNow};
use crate::actors::usage_meter::{Flush, UsageMeter};
use crate::conversation::InterviewPlan;
use crate::key_lease::{KeyLease, LeasedKey, PlatformKeys, lease_keys};
use crate::media::TransportLink;
use crate::metering::{KeySource, PriceTable};
use crate::retention::{RetentionPolicy, SweepReport};
use crate::vendor_set::{KeySources, VendorNames, VendorSet};
use crate::vendors::anthropic::{AnthropicConfig, AnthropicLlm};
use crate::vendors::deepgram::{DeepgramConfig, DeepgramStt};
use crate::vendors::elevenlabs::{ElevenLabsConfig, ElevenLabsTts};
use crate::vendors::{LanguageModel, VendorError};

/// Where the vendors are and which models to use.
#[derive(Debug, Clone)]
pub struct VendorEndpoints {
    pub deepgram_url: String,
    pub deepgram_model: String,
    pub anthropic_url: String,
    pub anthropic_model: String,
    pub anthropic_fallback_model: Option<String>,
    pub elevenlabs_ws_url: String,
    pub elevenlabs_http_url: String,
    pub elevenlabs_voice: String,
}

/// Engine-wide configuration.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub node_id: String,
    /// Live interviews this node accepts at most.
    pub max_live: usize,
    pub interview: InterviewConfig,
    pub prices: PriceTable,
    pub retention: RetentionPolicy,
    pub retention_interval: Duration,
    /// The real vendors' endpoints (used with platform or BYOK keys).
    pub vendors: VendorEndpoints,
    /// The local fake vendors' endpoints, used for providers without any key.
    pub fakes: Option<VendorEndpoints>,
}

/// Why an interview could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("this node is at capacity ({0} live interviews)")]
    AtCapacity(usize),
    #[error("the account already has a live interview")]
    AlreadyLive,
    #[error("no vendor is available for {0} (no key and no local fake)")]
    NoVendor(&'static str),
    #[error("vendor set-up failed: {0}")]
    Vendor(#[from] VendorError),
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
}

/// A live interview as listed.
#[derive(Debug, Clone, Serialize)]
pub struct LiveInterview {
    pub interview_id: Uuid,
    pub account_id: Uuid,
    pub seconds_live: u64,
}

/// Which implementation serves each vendor kind for an account without its own keys.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct VendorModes {
    pub stt: &'static str,
    pub llm: &'static str,
    pub tts: &'static str,
}

struct LiveEntry {
    account_id: Uuid,
    started_at: Instant,
    addr: Option<Addr<InterviewActor>>,
    events: broadcast::Sender<InterviewEvent>,
}

struct Inner {
    db: DatabaseConnection,
    config: EngineConfig,
    platform: PlatformKeys,
    ring: KeyRing,
    usage: Addr<UsageMeter>,
    sweeper: Addr<RetentionSweeper>,
    live: Mutex<HashMap<Uuid, LiveEntry>>,
    ended_listeners: Mutex<Vec<EndedListener>>,
}

/// Told the id of each interview whose actor has stopped (its end persisted first when it
/// ended normally). Called on the actor's thread: it must not block (send on a channel).
pub type EndedListener = Arc<dyn Fn(Uuid) + Send + Sync>;

/// A cheap, cloneable handle to the engine.
#[derive(Clone)]
pub struct EngineHandle {
    inner: Arc<Inner>,
}

/// Events kept for a slow subscriber before it starts missing some.
pub const EVENT_BUFFER: usize = 256;

/// A fake vendor's stand-in key: the fakes accept any key.
const FAKE_KEY: &str = "local-fake-vendor-key";

impl EngineHandle {
    /// Starts the process-wide actors; call inside an actix system.
    pub fn start(
        db: DatabaseConnection,
        config: EngineConfig,
        platform: PlatformKeys,
        ring: KeyRing,
    ) -> Self {
        let usage = UsageMeter::new(db.clone()).start();
        let sweeper =
            RetentionSweeper::new(db.clone(), config.retention, config.retention_interval).start();
        Self {
            inner: Arc::new(Inner {
                db,
                config,
                platform,
                ring,
                usage,
                sweeper,
                live: Mutex::new(HashMap::new()),
                ended_listeners: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Subscribes to the end of every interview (the feedback job listens here).
    pub fn on_interview_ended(&self, listener: EndedListener) {
        self.inner
            .ended_listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(listener);
    }

    fn notify_ended(&self, interview_id: Uuid) {
        let listeners = self
            .inner
            .ended_listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for listener in listeners {
            listener(interview_id);
        }
    }

    fn live_map(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, LiveEntry>> {
        self.inner.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What serves each vendor kind when an account brings no keys.
    pub fn modes(&self) -> VendorModes {
        let mode = |key: &Option<SecretString>, real: &'static str| {
            if key.is_some() {
                real
            } else if self.inner.config.fakes.is_some() {
                "fake"
            } else {
                "unavailable"
            }
        };
        VendorModes {
            stt: mode(&self.inner.platform.deepgram, "deepgram"),
            llm: mode(&self.inner.platform.anthropic, "anthropic"),
            tts: mode(&self.inner.platform.elevenlabs, "elevenlabs"),
        }
    }

    fn build_vendors(&self, lease: KeyLease) -> Result<VendorSet, EngineError> {
        let config = &self.inner.config;
        let pick = |leased: Option<LeasedKey>,
                    kind: &'static str|
         -> Result<(VendorEndpoints, SecretString, KeySource), EngineError> {
            match leased {
                Some(key) => Ok((config.vendors.clone(), key.key, key.source)),
                None => config
                    .fakes
                    .clone()
                    .map(|fakes| {
                        (
                            fakes,
                            SecretString::from(FAKE_KEY.to_owned()),
                            KeySource::Fake,
                        )
                    })
                    .ok_or(EngineError::NoVendor(kind)),
            }
        };
        let (stt_endpoints, stt_key, stt_source) = pick(lease.deepgram, "speech-to-text")?;
        let (llm_endpoints, llm_key, llm_source) = pick(lease.anthropic, "the language model")?;
        let (tts_endpoints, tts_key, tts_source) = pick(lease.elevenlabs, "text-to-speech")?;
        let mut deepgram = DeepgramConfig::new(stt_endpoints.deepgram_url.clone(), stt_key);
        deepgram.params.model = stt_endpoints.deepgram_model.clone();
        deepgram.price_per_minute = config.prices.stt_per_minute;
        let mut anthropic = AnthropicConfig::new(
            llm_endpoints.anthropic_url.clone(),
            llm_key.clone(),
            llm_endpoints.anthropic_model.clone(),
        );
        anthropic.prices = config.prices.llm;
        let fallback: Option<Arc<dyn LanguageModel>> = match &llm_endpoints.anthropic_fallback_model
        {
            Some(model) => {
                let mut fallback = anthropic.clone();
                fallback.model = model.clone();
                Some(Arc::new(AnthropicLlm::new(fallback)?))
            }
            None => None,
        };
        let mut elevenlabs = ElevenLabsConfig::new(
            tts_endpoints.elevenlabs_ws_url.clone(),
            tts_endpoints.elevenlabs_http_url.clone(),
            tts_key,
            tts_endpoints.elevenlabs_voice.clone(),
        );
        elevenlabs.price_per_1k_chars = config.prices.tts_per_1k_chars;
        let name = |source: KeySource, real: &'static str| {
            if source == KeySource::Fake {
                "fake"
            } else {
                real
            }
        };
        Ok(VendorSet {
            stt: Arc::new(DeepgramStt::new(deepgram)),
            llm: Arc::new(AnthropicLlm::new(anthropic)?),
            llm_fallback: fallback,
            tts: Arc::new(ElevenLabsTts::new(elevenlabs)),
            names: VendorNames {
                stt: name(stt_source, "deepgram"),
                llm: name(llm_source, "anthropic"),
                tts: name(tts_source, "elevenlabs"),
            },
            stt_model: stt_endpoints.deepgram_model.clone(),
            key_sources: KeySources {
                stt: stt_source,
                llm: llm_source,
                tts: tts_source,
            },
        })
    }

    /// Starts a live interview on this node, or refuses it (capacity, one per account).
    pub async fn start_interview(
        &self,
        interview_id: Uuid,
        account_id: Uuid,
        plan: InterviewPlan,
        transport: TransportLink,
    ) -> Result<broadcast::Receiver<InterviewEvent>, EngineError> {
        let (events, receiver) = broadcast::channel(EVENT_BUFFER);
        {
            let mut live = self.live_map();
            if live.values().any(|entry| entry.account_id == account_id) {
                return Err(EngineError::AlreadyLive);
            }
            if live.len() >= self.inner.config.max_live {
                return Err(EngineError::AtCapacity(live.len()));
            }
            // Reserve the slot before the slow part, so concurrent starts cannot overshoot.
            live.insert(
                interview_id,
                LiveEntry {
                    account_id,
                    started_at: Instant::now(),
                    addr: None,
                    events: events.clone(),
                },
            );
        }
        let release = |engine: &EngineHandle| {
            engine.live_map().remove(&interview_id);
        };
        let lease = match lease_keys(
            &self.inner.db,
            &self.inner.ring,
            &self.inner.platform,
            account_id,
        )
        .await
        {
            Ok(lease) => lease,
            Err(error) => {
                release(self);
                return Err(error.into());
            }
        };
        let vendors = match self.build_vendors(lease) {
            Ok(vendors) => vendors,
            Err(error) => {
                release(self);
                return Err(error);
            }
        };
        let registry = self.clone();
        let actor = InterviewActor::new(InterviewSetup {
            interview_id,
            account_id,
            node_id: self.inner.config.node_id.clone(),
            plan,
            config: self.inner.config.interview.clone(),
            vendors,
            prices: self.inner.config.prices.clone(),
            db: self.inner.db.clone(),
            usage: self.inner.usage.clone().recipient(),
            events,
            transport,
            on_stopped: Box::new(move || {
                registry.live_map().remove(&interview_id);
                registry.notify_ended(interview_id);
            }),
        });
        let addr = actor.start();
        if let Some(entry) = self.live_map().get_mut(&interview_id) {
            entry.addr = Some(addr);
        }
        Ok(receiver)
    }

    /// Ends a live interview; `false` if it is not live here.
    pub fn end_interview(&self, interview_id: Uuid, reason: &str, mode: StopMode) -> bool {
        let addr = self
            .live_map()
            .get(&interview_id)
            .and_then(|entry| entry.addr.clone());
        match addr {
            Some(addr) => {
                addr.do_send(EndInterview {
                    reason: reason.to_owned(),
                    mode,
                });
                true
            }
            None => false,
        }
    }

    /// Ends every live interview of an account (erasure, disabling); returns how many.
    pub fn end_for_account(&self, account_id: Uuid, reason: &str) -> usize {
        let addrs: Vec<Addr<InterviewActor>> = self
            .live_map()
            .values()
            .filter(|entry| entry.account_id == account_id)
            .filter_map(|entry| entry.addr.clone())
            .collect();
        for addr in &addrs {
            addr.do_send(EndInterview {
                reason: reason.to_owned(),
                mode: StopMode::CancelNow,
            });
        }
        addrs.len()
    }

    /// Whether an interview is live on this node.
    pub fn is_live(&self, interview_id: Uuid) -> bool {
        self.live_map().contains_key(&interview_id)
    }

    /// The live interviews of this node.
    pub fn live(&self) -> Vec<LiveInterview> {
        self.live_map()
            .iter()
            .map(|(id, entry)| LiveInterview {
                interview_id: *id,
                account_id: entry.account_id,
                seconds_live: entry.started_at.elapsed().as_secs(),
            })
            .collect()
    }

    /// A new subscription to a live interview's events.
    pub fn subscribe(&self, interview_id: Uuid) -> Option<broadcast::Receiver<InterviewEvent>> {
        self.live_map()
            .get(&interview_id)
            .map(|entry| entry.events.subscribe())
    }

    /// Writes pending usage rows now.
    pub async fn flush_usage(&self) -> Result<usize, String> {
        self.inner
            .usage
            .send(Flush)
            .await
            .map_err(|error| error.to_string())?
    }

    /// Runs a retention sweep as of `now` (tests pass a fake clock).
    pub async fn sweep_now(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<SweepReport>, String> {
        self.inner
            .sweeper
            .send(SweepNow { now })
            .await
            .map_err(|error| error.to_string())?
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }
}
