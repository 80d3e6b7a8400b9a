//! Who is charged a free interview, and when.
//!
//! - **Who**: an interview counts against the account's free allocation
//!   (`interview_quotas.free_interviews_granted/used`) when it runs on the platform's keys: any
//!   of its vendor kinds (speech-to-text, language model, voice) uses a platform key. An
//!   interview entirely on the account's own (BYOK) keys, on keyless local mode's in-process
//!   implementations or on the local fakes is free. The decision uses the key sources the
//!   engine actually chose for the interview ([`engine::engine::StartGate`]).
//! - **When**: at the start, once the offer has been accepted and the engine admitted the
//!   interview, before anything of it runs, by one conditional statement
//!   (`UPDATE … SET used = used + 1 WHERE account_id = … AND used < granted`, checked by rows
//!   affected): two concurrent starts, on one node or several, cannot both take the last one.
//!   Out of allocation, the offer is refused with `402 free_interviews_exhausted` (or
//!   `402 free_interviews_under_review` while a flagged account waits for an admin's decision:
//!   see `crate::abuse`). When the server sends mail (`SMTP_URL`), an account whose mailbox is
//!   not verified yet is refused first, with `403 email_not_verified` (`crate::verification`).
//! - **Given back**: when the interview never started. Precisely: the start was refused after
//!   the charge, or the interview ended (any reason: the candidate ended it, the peer left,
//!   ICE/DTLS never connected, a vendor failed) before the server received the first RTP audio
//!   packet from the candidate. Once one audio packet has arrived, the interview has started
//!   and the charge stays. The give-back runs on the node that holds the interview; if that
//!   node dies before the interview ends, the charge stays (never given twice).

use std::sync::Arc;

use chrono::Utc;
use engine::engine::{EngineError, StartGate};
use engine::metering::KeySource;
use engine::transport::TransportStats;
use engine::vendor_set::KeySources;
use engine::{AccountId, InterviewId};
use entities::{accounts, interview_quotas};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use serde::Serialize;

use crate::state::AppState;

/// The refusal code of the start gate (mapped to `402 free_interviews_exhausted`).
pub const EXHAUSTED: &str = "free_interviews_exhausted";
/// The refusal of a flagged account waiting for an admin's decision (402).
pub const UNDER_REVIEW: &str = "free_interviews_under_review";
/// The refusal of an account whose mailbox is not verified, when verification is on (403).
pub const EMAIL_NOT_VERIFIED: &str = "email_not_verified";

/// Whether an interview with these key sources runs on the platform's keys.
pub fn uses_platform_keys(sources: KeySources) -> bool {
    [sources.stt, sources.llm, sources.tts]
        .iter()
        .any(|source| source.source() == KeySource::Platform)
}

/// Takes one free interview of the account's allocation; `false` when none is left (or the
/// account has no allocation row). One statement, so it is atomic on every backend.
pub async fn take(db: &impl ConnectionTrait, account_id: AccountId) -> Result<bool, DbErr> {
    let taken = interview_quotas::Entity::update_many()
        .col_expr(
            interview_quotas::Column::FreeInterviewsUsed,
            Expr::col(interview_quotas::Column::FreeInterviewsUsed).add(1),
        )
        .col_expr(interview_quotas::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(interview_quotas::Column::AccountId.eq(account_id))
        .filter(
            Expr::col(interview_quotas::Column::FreeInterviewsUsed)
                .lt(Expr::col(interview_quotas::Column::FreeInterviewsGranted)),
        )
        .exec(db)
        .await?;
    Ok(taken.rows_affected == 1)
}

/// Gives one free interview back (never below zero).
pub async fn give_back(db: &impl ConnectionTrait, account_id: AccountId) -> Result<bool, DbErr> {
    let given = interview_quotas::Entity::update_many()
        .col_expr(
            interview_quotas::Column::FreeInterviewsUsed,
            Expr::col(interview_quotas::Column::FreeInterviewsUsed).sub(1),
        )
        .col_expr(interview_quotas::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(interview_quotas::Column::AccountId.eq(account_id))
        .filter(Expr::col(interview_quotas::Column::FreeInterviewsUsed).gt(0))
        .exec(db)
        .await?;
    Ok(given.rows_affected == 1)
}

/// The account's free allocation as shown by the API.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema, PartialEq, Eq)]
pub struct FreeInterviews {
    pub granted: i32,
    pub used: i32,
    pub remaining: i32,
}

/// The account's allocation (all zero without a row).
pub async fn allocation(
    db: &impl ConnectionTrait,
    account_id: AccountId,
) -> Result<FreeInterviews, DbErr> {
    let row = interview_quotas::Entity::find_by_id(account_id)
        .one(db)
        .await?;
    let (granted, used) = row.map_or((0, 0), |row| {
        (row.free_interviews_granted, row.free_interviews_used)
    });
    Ok(FreeInterviews {
        granted,
        used,
        remaining: std::cmp::max(granted - used, 0),
    })
}

/// Whether the start gate took a free interview (read after the start).
#[derive(Debug, Default, Clone)]
pub struct Charge(Arc<std::sync::atomic::AtomicBool>);

impl Charge {
    pub fn taken(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Whether the account's mailbox is verified.
async fn mailbox_verified(db: &impl ConnectionTrait, account_id: AccountId) -> Result<bool, DbErr> {
    Ok(accounts::Entity::find_by_id(account_id)
        .one(db)
        .await?
        .is_some_and(|account| account.email_verified_at.is_some()))
}

/// The engine's start gate for one interview of `account_id`: when the interview runs on
/// platform keys, refuses an unverified mailbox (if verification is on), then charges a free
/// interview, or refuses the start when none is left.
pub fn gate(state: &AppState, account_id: AccountId, charge: Charge) -> StartGate {
    let db = state.db.clone();
    let verification_required = state.verification_required();
    Box::new(move |sources| {
        Box::pin(async move {
            if !uses_platform_keys(sources) {
                return Ok(());
            }
            if verification_required && !mailbox_verified(&db, account_id).await? {
                return Err(EngineError::Refused(EMAIL_NOT_VERIFIED));
            }
            if take(&db, account_id).await? {
                charge.0.store(true, std::sync::atomic::Ordering::SeqCst);
                return Ok(());
            }
            let review = crate::abuse::review::state_of(&db, account_id).await?;
            Err(EngineError::Refused(
                if review == crate::abuse::review::ReviewState::Pending {
                    UNDER_REVIEW
                } else {
                    EXHAUSTED
                },
            ))
        })
    })
}

/// After a charged start: waits for the interview to end, and gives the free interview back
/// if no audio packet from the candidate ever arrived (see the module's definition).
pub fn watch_charged_start(
    state: &AppState,
    interview_id: InterviewId,
    account_id: AccountId,
    stats: Arc<TransportStats>,
) {
    let db = state.db.clone();
    let subscription = state.engine.subscribe(interview_id);
    tokio::spawn(async move {
        if let Some(mut events) = subscription {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                match events.recv().await {
                    Ok(engine::actors::interview::InterviewEvent::Ended { .. })
                    | Err(RecvError::Closed) => break,
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                }
            }
        }
        if stats.snapshot().packets_in > 0 {
            tracing::info!(%interview_id, "the interview started: its free interview stays used");
            return;
        }
        match give_back(&db, account_id).await {
            Ok(_) => {
                tracing::info!(%interview_id, "the interview never started: its free interview is given back");
            }
            Err(error) => {
                tracing::warn!(%interview_id, error = %error, "giving a free interview back failed");
            }
        }
    });
}
