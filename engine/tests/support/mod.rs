//! Shared harness of the engine's whole-interview tests: fake vendors on loopback, a fresh
//! migrated SQLite database, an engine, and a scripted candidate on an in-memory transport.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use chrono::Utc;
use engine::actors::interview::{InterviewConfig, InterviewEvent};
use engine::byok_cipher::{KeyRing, MasterKey};
use engine::conversation::{InterviewKind, InterviewPlan};
use engine::engine::{EngineConfig, EngineHandle, VendorEndpoints};
use engine::key_lease::PlatformKeys;
use engine::media::{
    INBOUND_FRAME_SAMPLES, INBOUND_RATE, InboundFrame, MemoryPeer, memory_transport,
};
use engine::metering::PriceTable;
use engine::retention::RetentionPolicy;
use engine::{AccountId, InterviewId};
use fakes::{FakeVendors, FakeVendorsConfig};
use sea_orm::ActiveValue::Set;
use sea_orm::{ActiveModelTrait, Database, DatabaseConnection};
use sea_orm_migration::MigratorTrait;
use tokio::sync::broadcast;
use uuid::Uuid;

pub struct Harness {
    pub db: DatabaseConnection,
    pub fakes: FakeVendors,
    pub engine: EngineHandle,
    pub ring: KeyRing,
    _dir: tempfile::TempDir,
}

pub fn fake_endpoints(fakes: &FakeVendors) -> VendorEndpoints {
    VendorEndpoints {
        deepgram_url: fakes.deepgram.base_url(),
        deepgram_model: "nova-3".into(),
        anthropic_url: fakes.anthropic.base_url(),
        anthropic_model: "claude-haiku-4-5".into(),
        anthropic_fallback_model: None,
        elevenlabs_ws_url: fakes.elevenlabs.ws_base_url(),
        elevenlabs_http_url: fakes.elevenlabs.base_url(),
        elevenlabs_voice: "voice-test".into(),
        elevenlabs_model: "eleven_flash_v2_5".into(),
    }
}

impl Harness {
    /// Fakes that hear `script` (one entry per candidate utterance) and reply with `replies`.
    pub async fn start(script: &[&str], replies: &[&str]) -> Self {
        Self::start_with(script, replies, |_, _| {}).await
    }

    pub async fn start_with(
        script: &[&str],
        replies: &[&str],
        adjust: impl FnOnce(&mut FakeVendorsConfig, &mut EngineConfig),
    ) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "warn".into()),
            )
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("engine.db").display()
        );
        let db = Database::connect(&url).await.expect("sqlite");
        migrations::Migrator::up(&db, None).await.expect("migrate");
        let mut fake_config = FakeVendorsConfig::default();
        fake_config.deepgram.script = script.iter().map(|s| (*s).to_owned()).collect();
        fake_config.anthropic.replies = replies.iter().map(|s| (*s).to_owned()).collect();
        // Fast vendors: the test measures the engine, not the fakes' realism.
        fake_config.anthropic.time_to_message_start = Duration::from_millis(20);
        fake_config.anthropic.time_to_first_text = Duration::from_millis(20);
        fake_config.anthropic.inter_delta = Duration::from_millis(5);
        fake_config.elevenlabs.ttfb = Duration::from_millis(30);
        fake_config.elevenlabs.chars_per_second = 40.0;
        let mut config = EngineConfig {
            node_id: "test-node".into(),
            max_live: 10,
            interview: InterviewConfig::default(),
            prices: PriceTable::default(),
            retention: RetentionPolicy::default(),
            retention_interval: Duration::from_secs(3600),
            key_lease: Default::default(),
            vendors: VendorEndpoints {
                deepgram_url: "ws://127.0.0.1:9".into(),
                deepgram_model: "nova-3".into(),
                anthropic_url: "http://127.0.0.1:9".into(),
                anthropic_model: "claude-haiku-4-5".into(),
                anthropic_fallback_model: None,
                elevenlabs_ws_url: "ws://127.0.0.1:9".into(),
                elevenlabs_http_url: "http://127.0.0.1:9".into(),
                elevenlabs_voice: "voice".into(),
                elevenlabs_model: "eleven_flash_v2_5".into(),
            },
            vendor_tuning: Default::default(),
            local: Default::default(),
            fakes: None,
        };
        adjust(&mut fake_config, &mut config);
        let fakes = FakeVendors::start_all(fake_config)
            .await
            .expect("fakes start");
        config.fakes = Some(fake_endpoints(&fakes));
        // "Real" vendors are the fakes too, so BYOK keys (which may carry fault directives)
        // reach them; a fallback model the test chose stays.
        let fallback = config.vendors.anthropic_fallback_model.take();
        config.vendors = fake_endpoints(&fakes);
        config.vendors.anthropic_fallback_model = fallback;
        let ring = KeyRing::new(MasterKey::from_bytes([7; 32]), vec![]);
        let engine = EngineHandle::start(db.clone(), config, PlatformKeys::default(), ring.clone());
        Self {
            db,
            fakes,
            engine,
            ring,
            _dir: dir,
        }
    }

    /// An account and an interview row, as the API would create them.
    pub async fn create_interview(&self) -> (AccountId, InterviewId) {
        entities::fixtures::account_with_interview(&self.db)
            .await
            .expect("account and interview")
    }

    pub fn plan() -> InterviewPlan {
        InterviewPlan {
            kind: InterviewKind::Behavioral,
            target_role: Some("Backend Engineer".into()),
            company: None,
            planned: Duration::from_secs(20 * 60),
            profile: None,
            focus_skill: None,
        }
    }

    /// Stores a BYOK key for an account, encrypted as the API does.
    pub async fn store_key(&self, account_id: AccountId, provider: &str, key: &str) {
        let encrypted = self
            .ring
            .encrypt(
                account_id,
                provider,
                &secrecy::SecretString::from(key.to_owned()),
            )
            .expect("encrypt");
        let now = Utc::now();
        entities::byok_keys::ActiveModel {
            id: Set(Uuid::now_v7()),
            account_id: Set(account_id),
            provider: Set(provider.to_owned()),
            ciphertext: Set(encrypted.ciphertext),
            nonce: Set(encrypted.nonce),
            key_id: Set(encrypted.key_id),
            last_four: Set(key[key.len() - 4..].to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&self.db)
        .await
        .expect("key row");
    }

    /// Starts an interview with a scripted candidate; returns its id and the run.
    pub async fn start_interview(&self, candidate: Candidate) -> (InterviewId, Run) {
        self.start_interview_with_keys(candidate, &[]).await
    }

    /// Like `start_interview`, with the account's own keys `(provider, key)` stored first.
    pub async fn start_interview_with_keys(
        &self,
        candidate: Candidate,
        keys: &[(&str, &str)],
    ) -> (InterviewId, Run) {
        let (account_id, interview_id) = self.create_interview().await;
        for (provider, key) in keys {
            self.store_key(account_id, provider, key).await;
        }
        let (link, peer) = memory_transport();
        let events = self
            .engine
            .start_interview(interview_id, account_id, Self::plan(), link)
            .await
            .expect("interview starts");
        let candidate_task = tokio::spawn(candidate.run(peer));
        (
            interview_id,
            Run {
                events,
                candidate_task,
                account_id,
            },
        )
    }

    /// This engine has no live interview left (its actors reported stopping). Safe in test
    /// binaries whose tests run in parallel.
    pub async fn assert_engine_idle(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.engine.live().is_empty() {
            assert!(
                Instant::now() < deadline,
                "interviews still live: {:?}",
                self.engine.live()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// No actor of any interview is alive in this process: the live-instance counters are back
    /// at zero. Only meaningful in a test binary with a single test (the counters are global).
    pub async fn assert_no_live_actors(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let counts = engine::actors::live_counts();
            if counts.iter().all(|(_, n)| *n == 0) && self.engine.live().is_empty() {
                return;
            }
            assert!(Instant::now() < deadline, "actors still live: {counts:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub struct Run {
    pub events: broadcast::Receiver<InterviewEvent>,
    pub candidate_task: tokio::task::JoinHandle<CandidateReport>,
    pub account_id: AccountId,
}

impl Run {
    /// Waits for the end; returns its reason. Panics after `timeout`.
    pub async fn wait_for_end(&mut self, timeout: Duration) -> String {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Ok(InterviewEvent::Ended { reason })) => return reason,
                Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                Ok(Err(broadcast::error::RecvError::Closed)) => {
                    panic!("events closed before the end")
                }
                Err(_) => panic!("the interview did not end within {timeout:?}"),
            }
        }
    }
}

/// What a scripted candidate does.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Answers to give, one after each time the interviewer stops speaking.
    pub answers: usize,
    /// How long each answer is voiced.
    pub speech: Duration,
    /// Silence after the interviewer stops before answering.
    pub reaction: Duration,
    /// Start talking this long into the interviewer's n-th reply (barge-in), if set.
    pub barge_in_on_reply: Option<(usize, Duration)>,
    /// Stop sending audio (hang up) after this many answers.
    pub hang_up_after: Option<usize>,
}

impl Candidate {
    pub fn answers(answers: usize) -> Self {
        Self {
            answers,
            speech: Duration::from_millis(1200),
            reaction: Duration::from_millis(300),
            barge_in_on_reply: None,
            hang_up_after: None,
        }
    }
}

/// What the candidate observed.
#[derive(Debug, Default, Clone)]
pub struct CandidateReport {
    pub frames_sent: u64,
    pub frames_received: u64,
    /// How long the frames received play, from their samples and rates.
    pub heard: Duration,
    pub replies_heard: usize,
    /// Time from the candidate's last voiced frame to the first reply frame, per answer.
    pub gaps: Vec<Duration>,
    /// Frames received after the candidate started a barge-in.
    pub frames_after_barge_in: Vec<u64>,
}

fn tone(samples: usize, phase: &mut f64) -> Vec<i16> {
    (0..samples)
        .map(|_| {
            *phase += 2.0 * std::f64::consts::PI * 180.0 / f64::from(INBOUND_RATE.hz());
            (6000.0 * phase.sin()) as i16
        })
        .collect()
}

impl Candidate {
    /// Plays the candidate in real time: 20 ms frames, silence except while answering.
    pub async fn run(self, mut peer: MemoryPeer) -> CandidateReport {
        let mut report = CandidateReport::default();
        let mut ticker = tokio::time::interval(Duration::from_millis(20));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut phase = 0.0;
        let mut last_heard: Option<Instant> = None;
        let mut hearing = false;
        let mut speaking_until: Option<Instant> = None;
        let mut last_voiced: Option<Instant> = None;
        let mut answered = 0usize;
        let mut awaiting_reply = false;
        let mut barge_started: Option<Instant> = None;
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(120) {
            ticker.tick().await;
            let now = Instant::now();
            while let Ok(frame) = peer.from_engine.try_recv() {
                report.frames_received += 1;
                report.heard += frame.duration();
                if !hearing {
                    hearing = true;
                    report.replies_heard += 1;
                    if awaiting_reply && let Some(voiced) = last_voiced {
                        report.gaps.push(now.saturating_duration_since(voiced));
                    }
                    awaiting_reply = false;
                }
                if let Some(barge) = barge_started
                    && let Some(count) = report.frames_after_barge_in.last_mut()
                {
                    let _ = barge;
                    *count += 1;
                }
                last_heard = Some(now);
            }
            if hearing
                && last_heard.is_some_and(|t| now.duration_since(t) > Duration::from_millis(250))
            {
                hearing = false;
                barge_started = None;
            }
            if let Some((reply, after)) = self.barge_in_on_reply
                && hearing
                && report.replies_heard == reply
                && barge_started.is_none()
                && speaking_until.is_none()
                && last_heard.is_some()
            {
                // Talk over the interviewer once it has spoken for `after`.
                let heard_for = report.frames_received;
                if Duration::from_millis(20 * heard_for) >= after {
                    barge_started = Some(now);
                    report.frames_after_barge_in.push(0);
                    speaking_until = Some(now + self.speech);
                    answered += 1;
                    awaiting_reply = true;
                }
            }
            let can_answer = !hearing
                && speaking_until.is_none()
                && report.replies_heard > answered
                && answered < self.answers
                && last_heard.is_some_and(|t| now.duration_since(t) >= self.reaction);
            if can_answer {
                speaking_until = Some(now + self.speech);
                answered += 1;
                awaiting_reply = true;
            }
            let voiced = speaking_until.is_some_and(|until| now < until);
            if speaking_until.is_some_and(|until| now >= until) {
                speaking_until = None;
            }
            let pcm = if voiced {
                last_voiced = Some(now);
                tone(INBOUND_FRAME_SAMPLES, &mut phase)
            } else {
                vec![0i16; INBOUND_FRAME_SAMPLES]
            };
            if self
                .hang_up_after
                .is_some_and(|n| answered >= n && !voiced && speaking_until.is_none())
            {
                if let Some(hang_up) = peer.hang_up.take() {
                    let _ = hang_up.send("candidate hung up".into());
                }
                break;
            }
            if peer
                .to_engine
                .send(InboundFrame { pcm, at: now })
                .await
                .is_err()
            {
                break;
            }
            report.frames_sent += 1;
        }
        report
    }
}
