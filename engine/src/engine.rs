//! `EngineHandle`: the only thing the HTTP layer sees of the engine. Starts interviews (with
//! admission control: a maximum of live interviews per node, one per account), attaches their
//! transport, ends them, lists them, and reports stats. Owns the process-wide actors
//! (`UsageMeter`, `RetentionSweeper`, `KeyLeaser`) and builds each interview's vendor clients
//! from its key lease (key handles from the `KeyLeaser`, released when the interview stops).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::byok_cipher::KeyRing;
use crate::ids::{AccountId, InterviewId};
use actix::prelude::*;
use sea_orm::DatabaseConnection;
use secrecy::SecretString;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::actors::interview::{
    EndInterview, EndReason, InterviewActor, InterviewConfig, InterviewEvent, InterviewSetup,
    StopMode,
};
use crate::actors::key_leaser::{
    AccountLeases, ExpireDue, KeyLeaser, Lease, LeaseGauges, LeaseStatus, Release, RevokeAccount,
};
use crate::actors::retention_sweeper::{RetentionSweeper, SweepNow};
use crate::actors::transcript_writer::{TranscriptWriter, WriterCounters};
use crate::actors::usage_meter::{Flush, UsageMeter};
use crate::conversation::InterviewPlan;
use crate::key_lease::{KeyLeaseConfig, PlatformKeys};
use crate::lease_book::LeasedKeys;
use crate::media::TransportLink;
use crate::metering::{KeySource, PriceTable};
use crate::retention::{RetentionPolicy, SweepReport};
use crate::vendor_set::{KeySources, SourceOf, VendorNames, VendorSet};
use crate::vendors::Vendor;
use crate::vendors::anthropic::{AnthropicConfig, AnthropicLlm};
use crate::vendors::deepgram::{DeepgramConfig, DeepgramStt};
use crate::vendors::elevenlabs::{ElevenLabsConfig, ElevenLabsHttpTts, ElevenLabsTts};
use crate::vendors::key::{ApiKey, KeyHandle};
use crate::vendors::tts_failover::FailoverTts;
use crate::vendors::{LanguageModel, SpeechToText, TextToSpeech, VendorError, VendorTuning};

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
    /// The ElevenLabs model (`model_id`), e.g. `eleven_flash_v2_5`.
    pub elevenlabs_model: String,
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
    /// How long BYOK key leases last (planned length + grace) and how often expiry is checked.
    pub key_lease: KeyLeaseConfig,
    /// The real vendors' endpoints (used with platform or BYOK keys).
    pub vendors: VendorEndpoints,
    /// The vendor clients' watchdogs and the TTS sentence flush (`[vendors]`).
    pub vendor_tuning: VendorTuning,
    /// In-process local implementations (keyless local mode), used for a kind without a key
    /// before the fakes are.
    pub local: LocalVendors,
    /// The local fake vendors' endpoints, used for providers without any key or local
    /// implementation (tests, load runs).
    pub fakes: Option<VendorEndpoints>,
}

/// In-process implementations of the vendor kinds: nothing leaves the machine. Shared by every
/// interview, so each keeps its per-interview state in its sessions (or, for the language
/// model, derives it from the request history).
#[derive(Clone, Default)]
pub struct LocalVendors {
    pub stt: Option<Arc<dyn SpeechToText>>,
    pub llm: Option<Arc<dyn LanguageModel>>,
    pub tts: Option<Arc<dyn TextToSpeech>>,
}

impl std::fmt::Debug for LocalVendors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalVendors")
            .field("stt", &self.stt.is_some())
            .field("llm", &self.llm.is_some())
            .field("tts", &self.tts.is_some())
            .finish()
    }
}

/// Vendor name of the in-process local implementations (usage rows, `/health`).
pub const LOCAL: &str = Vendor::Local.as_str();
/// Vendor name of the protocol fakes.
pub const FAKE: &str = Vendor::Fake.as_str();

/// A model without a price: its usage is recorded at no cost. The server checks at start
/// that every configured model has a price, so this is a misconfigured embedding.
fn unpriced(kind: &str, model: &str) {
    tracing::warn!(
        kind,
        model,
        "no price configured for this model; its usage costs $0"
    );
}

/// The prices of a Claude model from the table (zero, and a warning, when it has none).
fn llm_prices(prices: &PriceTable, model: &str) -> crate::vendors::usage::TokenPrices {
    prices.llm_prices(model).unwrap_or_else(|| {
        unpriced("language model", model);
        crate::vendors::usage::TokenPrices::default()
    })
}

/// Why an interview could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("this node is at capacity ({0} live interviews)")]
    AtCapacity(usize),
    #[error("the account already has a live interview")]
    AlreadyLive,
    #[error("this node is shutting down")]
    Draining,
    #[error("no vendor is available for {0} (no key, no local implementation, no local fake)")]
    NoVendor(&'static str),
    #[error("vendor set-up failed: {0}")]
    Vendor(#[from] VendorError),
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("the key leaser is not running: {0}")]
    KeyLeaser(String),
    /// The start gate refused the interview (the account has no free interviews left).
    #[error("refused before starting: {0}")]
    Refused(&'static str),
}

/// Asked once an interview's vendors are chosen and before its actor starts, with the key
/// sources the interview will use: the free-interview charge of the API layer. An error stops
/// the start (nothing of the interview runs).
pub type StartGate = Box<
    dyn FnOnce(KeySources) -> futures_util::future::BoxFuture<'static, Result<(), EngineError>>
        + Send,
>;

/// Keys leased for work on an ended interview ([`EngineHandle::lease_for_work`]); released
/// (revoked and zeroized) when dropped.
pub struct WorkLease {
    keys: LeasedKeys,
    interview: InterviewId,
    leaser: Addr<KeyLeaser>,
}

impl WorkLease {
    /// The Anthropic key, if the account or the platform has one.
    pub fn anthropic(&self) -> Option<&KeyHandle> {
        self.keys.anthropic.as_ref()
    }
}

impl Drop for WorkLease {
    fn drop(&mut self) {
        self.leaser.do_send(Release {
            interview: self.interview,
        });
    }
}

/// A live interview as listed.
#[derive(Debug, Clone, Serialize)]
pub struct LiveInterview {
    pub interview_id: InterviewId,
    pub account_id: AccountId,
    pub seconds_live: u64,
}

/// Which implementation serves each vendor kind for an account without its own keys: the
/// vendor's name (platform key), `local`, `fake` or `unavailable`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct VendorModes {
    pub stt: &'static str,
    pub llm: &'static str,
    pub tts: &'static str,
}

struct LiveEntry {
    account_id: AccountId,
    started_at: Instant,
    addr: Option<Addr<InterviewActor>>,
    events: broadcast::Sender<InterviewEvent>,
}

struct Inner {
    db: DatabaseConnection,
    config: EngineConfig,
    platform: PlatformKeys,
    usage: Addr<UsageMeter>,
    usage_rows_dropped: prometheus_client::metrics::counter::Counter,
    writer: TranscriptWriter,
    sweeper: Addr<RetentionSweeper>,
    leaser: Addr<KeyLeaser>,
    lease_gauges: LeaseGauges,
    live: Mutex<HashMap<InterviewId, LiveEntry>>,
    /// Set once shutdown begins: no interview starts after it.
    draining: AtomicBool,
    ended_listeners: Mutex<Vec<EndedListener>>,
}

/// Told the id of each interview whose actor has stopped (its end persisted first when it
/// ended normally). Called on the actor's thread: it must not block (send on a channel).
pub type EndedListener = Arc<dyn Fn(InterviewId) + Send + Sync>;

/// A cheap, cloneable handle to the engine.
#[derive(Clone)]
pub struct EngineHandle {
    inner: Arc<Inner>,
}

/// Events kept for a slow subscriber before it starts missing some.
pub const EVENT_BUFFER: usize = 256;

/// How long the drain waits for the transcript writer to store what is queued.
pub const WRITER_FLUSH_WAIT: Duration = Duration::from_secs(10);
/// How often shutdown looks whether the live interviews have stopped.
const IDLE_POLL: Duration = Duration::from_millis(25);
/// The account's interviewer voice setting (`None`: the default voice).
async fn interviewer_voice(
    db: &DatabaseConnection,
    account_id: AccountId,
) -> Result<Option<String>, sea_orm::DbErr> {
    use sea_orm::EntityTrait;
    let settings = entities::account_settings::Entity::find_by_id(account_id)
        .one(db)
        .await?;
    Ok(settings.and_then(|settings| settings.interviewer_voice))
}

/// How one vendor kind is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Vendor,
    Local,
    Fake,
}

/// A key wins, then a local implementation, then the fakes.
fn pick_mode(has_key: bool, has_local: bool, has_fakes: bool) -> Option<Mode> {
    if has_key {
        Some(Mode::Vendor)
    } else if has_local {
        Some(Mode::Local)
    } else if has_fakes {
        Some(Mode::Fake)
    } else {
        None
    }
}

/// A fake vendor's stand-in key: the fakes accept any key.
pub const FAKE_KEY: &str = "local-fake-vendor-key";

impl EngineHandle {
    /// Starts the process-wide actors; call inside an actix system.
    pub fn start(
        db: DatabaseConnection,
        config: EngineConfig,
        platform: PlatformKeys,
        ring: KeyRing,
    ) -> Self {
        let meter = UsageMeter::new(db.clone());
        let usage_rows_dropped = meter.dropped();
        let usage = meter.start();
        let writer = TranscriptWriter::start(db.clone());
        let sweeper =
            RetentionSweeper::new(db.clone(), config.retention, config.retention_interval).start();
        let leaser = KeyLeaser::new(db.clone(), ring.clone(), &platform, config.key_lease);
        let lease_gauges = leaser.gauges();
        let leaser = leaser.start();
        Self {
            inner: Arc::new(Inner {
                db,
                config,
                platform,
                usage,
                usage_rows_dropped,
                writer,
                sweeper,
                leaser,
                lease_gauges,
                live: Mutex::new(HashMap::new()),
                draining: AtomicBool::new(false),
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

    fn notify_ended(&self, interview_id: InterviewId) {
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

    fn live_map(&self) -> std::sync::MutexGuard<'_, HashMap<InterviewId, LiveEntry>> {
        self.inner.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What serves each vendor kind when an account brings no keys.
    pub fn modes(&self) -> VendorModes {
        let config = &self.inner.config;
        let platform = &self.inner.platform;
        let mode = |key: &Option<SecretString>, local: bool, real: &'static str| {
            pick_mode(key.is_some(), local, config.fakes.is_some()).map_or("unavailable", |m| {
                match m {
                    Mode::Vendor => real,
                    Mode::Local => LOCAL,
                    Mode::Fake => FAKE,
                }
            })
        };
        VendorModes {
            stt: mode(
                &platform.deepgram,
                config
                    .local
                    .stt
                    .as_ref()
                    .is_some_and(|stt| !stt.is_simulated()),
                Vendor::Deepgram.as_str(),
            ),
            llm: mode(
                &platform.anthropic,
                config.local.llm.is_some(),
                Vendor::Anthropic.as_str(),
            ),
            tts: mode(
                &platform.elevenlabs,
                config.local.tts.is_some(),
                Vendor::ElevenLabs.as_str(),
            ),
        }
    }

    fn build_vendors(
        &self,
        lease: LeasedKeys,
        voice: Option<&str>,
    ) -> Result<VendorSet, EngineError> {
        let config = &self.inner.config;
        let local = &config.local;
        // Per kind: the key's vendor, else the local implementation, else the fakes.
        let endpoints = |leased: Option<KeyHandle>, kind: &'static str| match leased {
            Some(handle) => Ok((
                config.vendors.clone(),
                handle.clone(),
                SourceOf::Handle(handle),
            )),
            None => config
                .fakes
                .clone()
                .map(|fakes| {
                    (
                        fakes,
                        KeyHandle::new(ApiKey::new(FAKE_KEY), KeySource::Fake),
                        SourceOf::Fixed(KeySource::Fake),
                    )
                })
                .ok_or(EngineError::NoVendor(kind)),
        };
        let name = |source: KeySource, real: Vendor| match source {
            KeySource::Fake => Vendor::Fake,
            KeySource::Local => Vendor::Local,
            KeySource::Platform | KeySource::Byok => real,
        };

        let (stt, stt_source, stt_model): (Arc<dyn SpeechToText>, SourceOf, String) =
            match (&lease.deepgram, &local.stt) {
                (None, Some(stt)) => (
                    stt.clone(),
                    SourceOf::Fixed(KeySource::Local),
                    LOCAL.to_owned(),
                ),
                _ => {
                    let (ends, key, source) = endpoints(lease.deepgram, "speech-to-text")?;
                    let mut deepgram = DeepgramConfig::new(ends.deepgram_url.clone(), key);
                    deepgram.params.model = ends.deepgram_model.clone();
                    deepgram.stall_timeout = config.vendor_tuning.deepgram_stall();
                    deepgram.price_per_minute = config
                        .prices
                        .stt_per_minute(&ends.deepgram_model)
                        .unwrap_or_else(|| {
                            unpriced("speech-to-text", &ends.deepgram_model);
                            0.0
                        });
                    (
                        Arc::new(DeepgramStt::new(deepgram)),
                        source,
                        ends.deepgram_model,
                    )
                }
            };

        type Llms = (Arc<dyn LanguageModel>, Option<Arc<dyn LanguageModel>>);
        let ((llm, llm_fallback), llm_source): (Llms, SourceOf) =
            match (&lease.anthropic, &local.llm) {
                (None, Some(llm)) => ((llm.clone(), None), SourceOf::Fixed(KeySource::Local)),
                _ => {
                    let (ends, key, source) = endpoints(lease.anthropic, "the language model")?;
                    let mut anthropic = AnthropicConfig::new(
                        ends.anthropic_url.clone(),
                        key,
                        ends.anthropic_model.clone(),
                    );
                    anthropic.prices = llm_prices(&config.prices, &ends.anthropic_model);
                    anthropic.first_token_timeout = config.vendor_tuning.anthropic_first_token();
                    anthropic.inter_token_timeout = config.vendor_tuning.anthropic_inter_token();
                    let fallback: Option<Arc<dyn LanguageModel>> =
                        match &ends.anthropic_fallback_model {
                            Some(model) => {
                                // A fallback call is priced at the fallback model's prices.
                                let mut fallback = anthropic.clone();
                                fallback.model = model.clone();
                                fallback.prices = llm_prices(&config.prices, model);
                                Some(Arc::new(AnthropicLlm::new(fallback)?))
                            }
                            None => None,
                        };
                    ((Arc::new(AnthropicLlm::new(anthropic)?), fallback), source)
                }
            };

        let (tts, tts_source): (Arc<dyn TextToSpeech>, SourceOf) =
            match (&lease.elevenlabs, &local.tts) {
                (None, Some(tts)) => (
                    voice
                        .and_then(|voice| tts.for_voice(voice))
                        .unwrap_or_else(|| tts.clone()),
                    SourceOf::Fixed(KeySource::Local),
                ),
                _ => {
                    let (ends, key, source) = endpoints(lease.elevenlabs, "text-to-speech")?;
                    let mut elevenlabs = ElevenLabsConfig::new(
                        ends.elevenlabs_ws_url.clone(),
                        ends.elevenlabs_http_url.clone(),
                        key,
                        ends.elevenlabs_voice.clone(),
                    );
                    elevenlabs.model_id = ends.elevenlabs_model.clone();
                    elevenlabs.stall_timeout = config.vendor_tuning.elevenlabs_stall();
                    elevenlabs.price_per_1k_chars = config
                        .prices
                        .tts_per_1k_chars(&ends.elevenlabs_model)
                        .unwrap_or_else(|| {
                            unpriced("text-to-speech", &ends.elevenlabs_model);
                            0.0
                        });
                    // The WebSocket speaks; its HTTP stream takes over when it fails.
                    let fallback = ElevenLabsHttpTts::new(elevenlabs.clone())?;
                    let tts = FailoverTts::new(
                        Arc::new(ElevenLabsTts::new(elevenlabs)),
                        Arc::new(fallback),
                    );
                    (Arc::new(tts), source)
                }
            };
        Ok(VendorSet {
            stt,
            llm,
            llm_fallback,
            tts,
            tts_sentence_flush: config.vendor_tuning.tts_flush,
            names: VendorNames {
                stt: name(stt_source.source(), Vendor::Deepgram),
                llm: name(llm_source.source(), Vendor::Anthropic),
                tts: name(tts_source.source(), Vendor::ElevenLabs),
            },
            stt_model,
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
        interview_id: InterviewId,
        account_id: AccountId,
        plan: InterviewPlan,
        transport: TransportLink,
    ) -> Result<broadcast::Receiver<InterviewEvent>, EngineError> {
        self.start_interview_gated(interview_id, account_id, plan, transport, None)
            .await
    }

    /// [`start_interview`](Self::start_interview), asking `gate` (when given) with the key
    /// sources the interview will use, after admission and before anything of it runs.
    pub async fn start_interview_gated(
        &self,
        interview_id: InterviewId,
        account_id: AccountId,
        plan: InterviewPlan,
        transport: TransportLink,
        gate: Option<StartGate>,
    ) -> Result<broadcast::Receiver<InterviewEvent>, EngineError> {
        let (events, receiver) = broadcast::channel(EVENT_BUFFER);
        {
            let mut live = self.live_map();
            // Checked under the registry lock, so no start slips past the drain's snapshot.
            if self.inner.draining.load(Ordering::SeqCst) {
                return Err(EngineError::Draining);
            }
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
            engine.inner.leaser.do_send(Release {
                interview: interview_id,
            });
        };
        let leased = self
            .inner
            .leaser
            .send(Lease {
                account: account_id,
                interview: interview_id,
                providers: Vendor::KEYED.to_vec(),
                planned: plan.planned,
            })
            .await;
        let lease = match leased {
            Ok(Ok(lease)) => lease,
            Ok(Err(error)) => {
                release(self);
                return Err(error.into());
            }
            Err(error) => {
                release(self);
                return Err(EngineError::KeyLeaser(error.to_string()));
            }
        };
        let voice = match interviewer_voice(&self.inner.db, account_id).await {
            Ok(voice) => voice,
            Err(error) => {
                release(self);
                return Err(error.into());
            }
        };
        let vendors = match self.build_vendors(lease, voice.as_deref()) {
            Ok(vendors) => vendors,
            Err(error) => {
                release(self);
                return Err(error);
            }
        };
        if let Some(gate) = gate
            && let Err(error) = gate(vendors.key_sources.clone()).await
        {
            release(self);
            return Err(error);
        }
        let registry = self.clone();
        let actor = InterviewActor::new(InterviewSetup {
            interview_id,
            account_id,
            node_id: self.inner.config.node_id.clone(),
            plan,
            config: self.inner.config.interview.clone(),
            vendors,
            prices: self.inner.config.prices.clone(),
            writer: self.inner.writer.clone(),
            usage: self.inner.usage.clone().recipient(),
            events,
            transport,
            on_stopped: Box::new(move || {
                registry.live_map().remove(&interview_id);
                registry.inner.leaser.do_send(Release {
                    interview: interview_id,
                });
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
    pub fn end_interview(
        &self,
        interview_id: InterviewId,
        reason: EndReason,
        mode: StopMode,
    ) -> bool {
        let addr = self
            .live_map()
            .get(&interview_id)
            .and_then(|entry| entry.addr.clone());
        match addr {
            Some(addr) => {
                addr.do_send(EndInterview { reason, mode });
                true
            }
            None => false,
        }
    }

    /// Ends every live interview of an account (erasure, disabling); returns how many.
    pub fn end_for_account(&self, account_id: AccountId, reason: EndReason) -> usize {
        let addrs: Vec<Addr<InterviewActor>> = self
            .live_map()
            .values()
            .filter(|entry| entry.account_id == account_id)
            .filter_map(|entry| entry.addr.clone())
            .collect();
        for addr in &addrs {
            addr.do_send(EndInterview {
                reason,
                mode: StopMode::CancelNow,
            });
        }
        addrs.len()
    }

    /// Shutdown, first stage: refuses new interviews from now on ([`EngineError::Draining`]),
    /// ends every live interview gracefully (their last words are transcribed and everything
    /// is stored), waits up to `timeout` for them to stop, then writes pending transcript rows
    /// (at most [`WRITER_FLUSH_WAIT`]) and usage rows. Returns how many interviews were still
    /// live when the wait ended.
    pub async fn drain(&self, reason: EndReason, timeout: Duration) -> usize {
        self.inner.draining.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + timeout;
        let mut told = std::collections::HashSet::new();
        loop {
            // An interview whose start was already past the check gets its actor a moment
            // later: it is told to end as soon as it has one.
            let addrs: Vec<(InterviewId, Addr<InterviewActor>)> = self
                .live_map()
                .iter()
                .filter(|(id, _)| !told.contains(*id))
                .filter_map(|(id, entry)| entry.addr.clone().map(|addr| (*id, addr)))
                .collect();
            for (id, addr) in addrs {
                told.insert(id);
                addr.do_send(EndInterview {
                    reason,
                    mode: StopMode::Graceful,
                });
            }
            if self.live_map().is_empty() || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(IDLE_POLL).await;
        }
        let left = self.live_map().len();
        if !self.flush_transcripts(WRITER_FLUSH_WAIT).await {
            tracing::warn!("flushing transcript rows at shutdown ran out of time");
        }
        if let Err(error) = self.flush_usage().await {
            tracing::warn!(error, "flushing usage rows at shutdown failed");
        }
        left
    }

    /// Shutdown, second stage (a second signal, or the drain ran out of time): refuses new
    /// interviews and stops every live one at once, storing only its end.
    pub fn cancel_all(&self, reason: EndReason) -> usize {
        self.inner.draining.store(true, Ordering::SeqCst);
        let addrs: Vec<Addr<InterviewActor>> = self
            .live_map()
            .values()
            .filter_map(|entry| entry.addr.clone())
            .collect();
        for addr in &addrs {
            addr.do_send(EndInterview {
                reason,
                mode: StopMode::CancelNow,
            });
        }
        addrs.len()
    }

    /// Waits up to `timeout` for every live interview to stop (their end stored); returns how
    /// many are still live.
    pub async fn wait_until_idle(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        while !self.live_map().is_empty() && Instant::now() < deadline {
            tokio::time::sleep(IDLE_POLL).await;
        }
        self.live_map().len()
    }

    /// Whether shutdown has begun (no new interviews).
    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::SeqCst)
    }

    /// Ends every live interview of an account at once and waits up to `timeout` for them to
    /// stop (their actors gone, their last writes done), so that an erasure that follows
    /// deletes everything and no late write of theirs races it. Returns how many were still
    /// live when the wait ended.
    pub async fn stop_account(
        &self,
        account_id: AccountId,
        reason: EndReason,
        timeout: Duration,
    ) -> usize {
        self.end_for_account(account_id, reason);
        let deadline = Instant::now() + timeout;
        let live_for_account = || {
            self.live_map()
                .values()
                .filter(|entry| entry.account_id == account_id)
                .count()
        };
        while live_for_account() > 0 && Instant::now() < deadline {
            tokio::time::sleep(IDLE_POLL).await;
        }
        live_for_account()
    }

    /// Test-only fault: makes the interview actor (`None`) or one of its children panic.
    /// `false` if the interview is not live here. Only with the `fault-injection` feature.
    #[cfg(feature = "fault-injection")]
    pub fn inject_panic(
        &self,
        interview_id: InterviewId,
        target: Option<crate::actors::interview::Child>,
    ) -> bool {
        let addr = self
            .live_map()
            .get(&interview_id)
            .and_then(|entry| entry.addr.clone());
        match addr {
            Some(addr) => {
                addr.do_send(crate::actors::interview::InjectFault(target));
                true
            }
            None => false,
        }
    }

    /// Whether an interview is live on this node.
    pub fn is_live(&self, interview_id: InterviewId) -> bool {
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
    pub fn subscribe(
        &self,
        interview_id: InterviewId,
    ) -> Option<broadcast::Receiver<InterviewEvent>> {
        self.live_map()
            .get(&interview_id)
            .map(|entry| entry.events.subscribe())
    }

    /// Usage rows dropped because their account or interview no longer existed (for
    /// `/metrics`).
    pub fn usage_rows_dropped(&self) -> prometheus_client::metrics::counter::Counter {
        self.inner.usage_rows_dropped.clone()
    }

    /// The transcript writer's counters (queued, written, retried, dropped rows), for
    /// `/metrics`.
    pub fn transcript_writer_counters(&self) -> WriterCounters {
        self.inner.writer.counters()
    }

    /// Waits until every transcript, word and turn row queued so far is stored (or dropped),
    /// at most `timeout`; `false` if the time ran out.
    pub async fn flush_transcripts(&self, timeout: Duration) -> bool {
        self.inner.writer.flush(timeout).await
    }

    /// The usage meter, for vendor calls made outside interviews (the feedback scorer).
    pub fn usage_meter(&self) -> Recipient<crate::actors::usage_meter::Record> {
        self.inner.usage.clone().recipient()
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

    /// Revokes the account's own keys from its live interviews at once (they fail over to the
    /// platform key, or end with `byok_key_revoked`). Call after the change that withdrew them
    /// is stored. Returns how many live leases held one.
    pub async fn revoke_keys(&self, account_id: AccountId) -> usize {
        match self
            .inner
            .leaser
            .send(RevokeAccount {
                account: account_id,
            })
            .await
        {
            Ok(revoked) => revoked,
            Err(error) => {
                tracing::error!(error = %error, "the key leaser did not answer a revocation");
                0
            }
        }
    }

    /// Leases the account's keys for `providers` (its own, else the platform's) for work on
    /// an interview after it ended, such as scoring it, for at most `planned` plus the lease
    /// grace. The keys are the leaser's like an interview's: revoked at once by key deletion,
    /// password change, erasure or disable, and released when the [`WorkLease`] is dropped.
    pub async fn lease_for_work(
        &self,
        account_id: AccountId,
        interview_id: InterviewId,
        providers: Vec<Vendor>,
        planned: Duration,
    ) -> Result<WorkLease, EngineError> {
        let keys = self
            .inner
            .leaser
            .send(Lease {
                account: account_id,
                interview: interview_id,
                providers,
                planned,
            })
            .await
            .map_err(|error| EngineError::KeyLeaser(error.to_string()))??;
        Ok(WorkLease {
            keys,
            interview: interview_id,
            leaser: self.inner.leaser.clone(),
        })
    }

    /// Whether the account has a live key lease (no key material).
    pub async fn lease_status(&self, account_id: AccountId) -> LeaseStatus {
        self.inner
            .leaser
            .send(AccountLeases {
                account: account_id,
            })
            .await
            .unwrap_or(LeaseStatus {
                live: false,
                own_keys: false,
            })
    }

    /// Expires the leases whose deadline is at or before `now` (the leaser's timer does this
    /// every `key_lease.check_every`; tests pass a later clock). Returns their interviews.
    pub async fn expire_leases(&self, now: Instant) -> Vec<InterviewId> {
        self.inner
            .leaser
            .send(ExpireDue { now })
            .await
            .unwrap_or_default()
    }

    /// The live-lease gauges, for `/metrics` (counts only).
    pub fn lease_gauges(&self) -> LeaseGauges {
        self.inner.lease_gauges.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::{Mode, pick_mode};

    #[test]
    fn a_key_wins_then_the_local_implementation_then_the_fakes() {
        assert_eq!(pick_mode(true, true, true), Some(Mode::Vendor));
        assert_eq!(pick_mode(true, false, false), Some(Mode::Vendor));
        assert_eq!(pick_mode(false, true, true), Some(Mode::Local));
        assert_eq!(pick_mode(false, true, false), Some(Mode::Local));
        assert_eq!(pick_mode(false, false, true), Some(Mode::Fake));
        assert_eq!(pick_mode(false, false, false), None);
    }
}
