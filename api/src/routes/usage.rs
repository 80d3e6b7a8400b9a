//! Usage and cost: `GET /api/v1/usage` (the caller's own rows, per interview and provider) and
//! `GET /api/v1/admin/usage` (totals by day and provider). Both are sums over `usage_log`, which
//! holds no text; rows are kept 90 days, so both cover at most that.
//!
//! Sums are computed by the database (`GROUP BY`), cast to fixed types so SQLite and PostgreSQL
//! decode alike (PostgreSQL's `SUM(bigint)` is `numeric`).

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use chrono::{Duration, Utc};
use engine::InterviewId;
use entities::usage_log;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};

use crate::audit::{self, action};
use crate::auth::{AdminAccount, AuthenticatedAccount};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// Usage rows are deleted after this many days (the retention sweep), so no report reaches
/// further back.
const RETENTION_DAYS: i64 = 90;

/// The sums of one group of usage rows.
#[derive(Debug, Clone, Default, PartialEq, FromQueryResult, Serialize, utoipa::ToSchema)]
pub struct UsageTotals {
    /// Vendor calls (and STT stream minutes) counted.
    pub calls: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_creation_tokens: i64,
    pub audio_seconds: f64,
    pub characters: i64,
    /// Mean latency of the calls, in milliseconds.
    pub avg_latency_ms: f64,
    /// Millionths of a US dollar.
    pub cost_micro_usd: i64,
}

impl UsageTotals {
    fn add(&mut self, other: &UsageTotals) {
        let calls = self.calls + other.calls;
        if calls > 0 {
            self.avg_latency_ms = (self.avg_latency_ms * self.calls as f64
                + other.avg_latency_ms * other.calls as f64)
                / calls as f64;
        }
        self.calls = calls;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_read_tokens += other.cache_read_tokens;
        self.cache_creation_tokens += other.cache_creation_tokens;
        self.audio_seconds += other.audio_seconds;
        self.characters += other.characters;
        self.cost_micro_usd += other.cost_micro_usd;
    }
}

/// The `SUM`s of [`UsageTotals`], as select expressions.
fn sums<S: QuerySelect>(select: S) -> S {
    select
        .column_as(Expr::cust("CAST(COUNT(*) AS BIGINT)"), "calls")
        .column_as(
            Expr::cust("CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT)"),
            "input_tokens",
        )
        .column_as(
            Expr::cust("CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT)"),
            "output_tokens",
        )
        .column_as(
            Expr::cust("CAST(COALESCE(SUM(cache_read_tokens), 0) AS BIGINT)"),
            "cache_read_tokens",
        )
        .column_as(
            Expr::cust("CAST(COALESCE(SUM(cache_creation_tokens), 0) AS BIGINT)"),
            "cache_creation_tokens",
        )
        .column_as(
            Expr::cust("CAST(COALESCE(SUM(audio_seconds), 0) AS DOUBLE PRECISION)"),
            "audio_seconds",
        )
        .column_as(
            Expr::cust("CAST(COALESCE(SUM(characters), 0) AS BIGINT)"),
            "characters",
        )
        .column_as(
            Expr::cust("CAST(COALESCE(AVG(latency_ms), 0) AS DOUBLE PRECISION)"),
            "avg_latency_ms",
        )
        .column_as(
            Expr::cust("CAST(COALESCE(SUM(cost_micro_usd), 0) AS BIGINT)"),
            "cost_micro_usd",
        )
}

#[derive(Debug, FromQueryResult)]
struct AccountGroup {
    interview_id: Option<InterviewId>,
    provider: String,
    key_source: String,
    #[sea_orm(nested)]
    totals: UsageTotals,
}

/// Who pays for a group of calls.
fn billed_to(key_source: &str) -> &'static str {
    match key_source {
        "byok" => "your_own_key",
        "platform" => "platform",
        // Keyless local mode: nothing left the machine, nothing was billed.
        _ => "nobody",
    }
}

/// One provider's usage within an interview, by whose key paid.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProviderUsage {
    /// `anthropic`, `deepgram`, `elevenlabs`, `local` or `fake`.
    pub provider: String,
    /// `platform`, `byok` or `fake`.
    pub key_source: String,
    /// `platform`, `your_own_key` (billed by the vendor to you) or `nobody` (local mode).
    pub billed_to: &'static str,
    #[serde(flatten)]
    pub totals: UsageTotals,
}

/// The usage of one interview (or, with no id, of calls outside interviews such as a resume
/// profile).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InterviewUsage {
    #[schema(value_type = Option<Uuid>)]
    pub interview_id: Option<InterviewId>,
    pub providers: Vec<ProviderUsage>,
    pub totals: UsageTotals,
}

/// `GET /api/v1/usage`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccountUsage {
    /// Usage is kept this many days.
    pub retention_days: i64,
    pub interviews: Vec<InterviewUsage>,
    /// Everything above.
    pub totals: UsageTotals,
    /// The part of `totals.cost_micro_usd` the platform pays (the rest went to your own keys,
    /// or was free in local mode).
    pub platform_cost_micro_usd: i64,
}

/// `GET /api/v1/usage`: the caller's usage rows summed per interview and provider (tokens,
/// audio seconds, characters, latency, cost), calls on the caller's own keys marked as billed to
/// them.
#[utoipa::path(get, path = "/api/v1/usage", tag = "account", security(("bearer" = [])),
    responses((status = 200, body = AccountUsage), (status = 401, description = "Missing or invalid access token", body = ErrorBody)))]
pub async fn account_usage(
    state: web::Data<AppState>,
    caller: AuthenticatedAccount,
) -> Result<HttpResponse, ApiError> {
    let groups = sums(
        usage_log::Entity::find()
            .select_only()
            .column(usage_log::Column::InterviewId)
            .column(usage_log::Column::Provider)
            .column(usage_log::Column::KeySource),
    )
    .filter(usage_log::Column::AccountId.eq(caller.id))
    .group_by(usage_log::Column::InterviewId)
    .group_by(usage_log::Column::Provider)
    .group_by(usage_log::Column::KeySource)
    .order_by_asc(usage_log::Column::InterviewId)
    .order_by_asc(usage_log::Column::Provider)
    .into_model::<AccountGroup>()
    .all(&state.db)
    .await?;
    // Interviews in the order of their ids (UUIDv7: creation order), newest first.
    let mut by_interview: BTreeMap<Option<InterviewId>, InterviewUsage> = BTreeMap::new();
    let mut totals = UsageTotals::default();
    let mut platform_cost_micro_usd = 0;
    for group in groups {
        totals.add(&group.totals);
        if group.key_source == "platform" {
            platform_cost_micro_usd += group.totals.cost_micro_usd;
        }
        let interview_id = group.interview_id;
        let interview = by_interview
            .entry(interview_id)
            .or_insert_with(|| InterviewUsage {
                interview_id,
                providers: Vec::new(),
                totals: UsageTotals::default(),
            });
        interview.totals.add(&group.totals);
        interview.providers.push(ProviderUsage {
            billed_to: billed_to(&group.key_source),
            provider: group.provider,
            key_source: group.key_source,
            totals: group.totals,
        });
    }
    Ok(HttpResponse::Ok().json(AccountUsage {
        retention_days: RETENTION_DAYS,
        interviews: by_interview.into_values().rev().collect(),
        totals,
        platform_cost_micro_usd,
    }))
}

/// `?days=`: how many days back the admin report goes (1 to 90, default 30).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UsageWindow {
    days: Option<i64>,
}

#[derive(Debug, FromQueryResult)]
struct DayGroup {
    day: String,
    provider: String,
    key_source: String,
    #[sea_orm(nested)]
    totals: UsageTotals,
}

/// One day's usage of one provider, by key source.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DailyUsage {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    pub provider: String,
    pub key_source: String,
    #[serde(flatten)]
    pub totals: UsageTotals,
}

/// `GET /api/v1/admin/usage`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PlatformUsage {
    pub days: i64,
    /// Newest day first.
    pub daily: Vec<DailyUsage>,
    pub totals: UsageTotals,
}

/// `GET /api/v1/admin/usage?days=`: usage of every account summed by day and provider (no
/// account ids).
#[utoipa::path(get, path = "/api/v1/admin/usage", tag = "admin", security(("bearer" = [])), params(UsageWindow),
    responses((status = 200, body = PlatformUsage), (status = 422, body = ErrorBody), (status = 401, description = "Missing or invalid access token", body = ErrorBody), (status = 403, description = "Not an admin", body = ErrorBody)))]
pub async fn platform_usage(
    state: web::Data<AppState>,
    admin: AdminAccount,
    window: web::Query<UsageWindow>,
) -> Result<HttpResponse, ApiError> {
    let days = window.days.unwrap_or(30);
    if !(1..=RETENTION_DAYS).contains(&days) {
        return Err(ApiError::Validation(format!(
            "days: must be between 1 and {RETENTION_DAYS}"
        )));
    }
    let since = Utc::now() - Duration::days(days);
    let day = || Expr::cust("CAST(DATE(created_at) AS TEXT)");
    let groups = sums(
        usage_log::Entity::find()
            .select_only()
            .column_as(day(), "day")
            .column(usage_log::Column::Provider)
            .column(usage_log::Column::KeySource),
    )
    .filter(usage_log::Column::CreatedAt.gte(since))
    .group_by(day())
    .group_by(usage_log::Column::Provider)
    .group_by(usage_log::Column::KeySource)
    .order_by_desc(day())
    .order_by_asc(usage_log::Column::Provider)
    .into_model::<DayGroup>()
    .all(&state.db)
    .await?;
    audit::record(&state.db, admin.id, action::USAGE_VIEW, None).await?;
    let mut totals = UsageTotals::default();
    let daily = groups
        .into_iter()
        .map(|group| {
            totals.add(&group.totals);
            DailyUsage {
                day: group.day,
                provider: group.provider,
                key_source: group.key_source,
                totals: group.totals,
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(PlatformUsage {
        days,
        daily,
        totals,
    }))
}
