//! The bridge between the HTTP layer and the engine: engine and WebRTC configuration from the
//! settings, and the plan of an interview (kind, role, length, resume profile).

use std::time::Duration;

use engine::conversation::{CandidateProfile, InterviewKind, InterviewPlan};
use engine::engine::{EngineConfig, LocalVendors, VendorEndpoints};
use engine::retention::RetentionPolicy;
use engine::transport::{IceServer, WebRtcConfig};
use entities::interviews::{self, InterviewKind as StoredKind};
use entities::resume_profiles;
use fakes::FakeVendors;
use sea_orm::{ConnectionTrait, EntityTrait};

use crate::configuration::Settings;

/// The engine's configuration from the settings (and keyless local mode's local
/// implementations and fakes, when running).
pub fn engine_config(
    settings: &Settings,
    local: LocalVendors,
    fakes: Option<&FakeVendors>,
) -> EngineConfig {
    EngineConfig {
        node_id: settings.node_id.clone(),
        max_live: settings.max_live_interviews,
        interview: settings.interview.clone(),
        prices: settings.prices.clone(),
        retention: RetentionPolicy {
            abuse_ledger: chrono::Duration::days(i64::from(settings.abuse_ledger_days)),
            ..RetentionPolicy::default()
        },
        retention_interval: Duration::from_secs(3600),
        key_lease: settings.key_lease,
        vendors: VendorEndpoints {
            deepgram_url: settings.deepgram_base_url.clone(),
            deepgram_model: settings.deepgram_model.clone(),
            anthropic_url: settings.anthropic_base_url.clone(),
            anthropic_model: settings.anthropic_model.clone(),
            anthropic_fallback_model: settings.anthropic_fallback_model.clone(),
            elevenlabs_ws_url: settings.elevenlabs_ws_base_url.clone(),
            elevenlabs_http_url: settings.elevenlabs_http_base_url.clone(),
            elevenlabs_voice: settings.elevenlabs_voice_id.clone(),
            elevenlabs_model: settings.elevenlabs_model.clone(),
        },
        vendor_tuning: settings.vendors,
        local,
        fakes: fakes.map(crate::local_vendors::endpoints),
    }
}

/// WebRTC settings: host candidates everywhere, plus configured STUN/TURN servers.
pub fn webrtc_config(settings: &Settings) -> WebRtcConfig {
    let ice_servers = settings
        .ice_servers
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(|url| IceServer {
            urls: vec![url.to_owned()],
            username: String::new(),
            credential: String::new(),
        })
        .collect();
    let base = if settings.webrtc_loopback_only {
        WebRtcConfig::loopback()
    } else {
        WebRtcConfig::default()
    };
    WebRtcConfig {
        ice_servers,
        encoder_complexity: settings.opus_complexity,
        ..base
    }
}

/// The engine's plan for a stored interview, shaped by the account's resume profile if any.
pub async fn plan_for(
    db: &impl ConnectionTrait,
    interview: &interviews::Model,
) -> Result<InterviewPlan, sea_orm::DbErr> {
    let profile = resume_profiles::Entity::find_by_id(interview.account_id)
        .one(db)
        .await?
        .and_then(|row| serde_json::from_value::<crate::resume::ResumeProfile>(row.profile).ok())
        .map(|profile| CandidateProfile {
            role: profile.role,
            skills: profile.skills,
            experience_summary: profile.experience_summary,
            years_experience: profile.years_experience,
        });
    Ok(InterviewPlan {
        kind: match interview.kind {
            StoredKind::Behavioral => InterviewKind::Behavioral,
            StoredKind::SystemDesign => InterviewKind::SystemDesign,
            StoredKind::Technical => InterviewKind::Technical,
        },
        target_role: interview.target_role.clone(),
        company: interview.company.clone(),
        planned: Duration::from_secs(u64::try_from(interview.planned_minutes).unwrap_or(20) * 60),
        profile,
        focus_skill: interview.focus_skill.clone(),
    })
}

/// How long an erasure waits for the account's live interviews to stop before deleting.
pub const ERASURE_STOP_WAIT: Duration = Duration::from_secs(5);

/// Ends the account's live interviews on this node and waits (bounded by
/// [`ERASURE_STOP_WAIT`]) for them to stop, before its data is erased.
pub async fn stop_live_interviews(
    state: &crate::state::AppState,
    account_id: engine::AccountId,
    reason: engine::actors::interview::EndReason,
) {
    // The keys go at once, before the interviews finish stopping.
    state.engine.revoke_keys(account_id).await;
    let left = state
        .engine
        .stop_account(account_id, reason, ERASURE_STOP_WAIT)
        .await;
    if left > 0 {
        tracing::warn!(
            %account_id,
            interviews = left,
            "erasing while interviews are still stopping"
        );
    }
}
