//! `/api/v1/admin/*`: account and privacy actions for operators. Every route requires the admin
//! role (checked against the database, not only the token) and writes an audit row.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use engine::AccountId;
use entities::accounts::{self, Role};
use entities::{
    admin_audit, byok_keys, interviews, refresh_tokens, resume_profiles, transcript_segments,
    usage_log,
};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{self, action};
use crate::auth::AdminAccount;
use crate::error::{ApiError, ErrorBody};
use crate::policy::{self, NewPolicy, PolicyView};
use crate::privacy;
use crate::routes::privacy::export_response;
use crate::state::AppState;

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Page {
    #[serde(default)]
    query: Option<String>,
    #[serde(default = "default_limit")]
    #[param(minimum = 1, maximum = 200)]
    limit: u64,
    #[serde(default)]
    #[param(minimum = 0, maximum = 1000000)]
    offset: u64,
}

/// The deepest page offset accepted; the database takes signed 64-bit offsets, and no admin
/// pages a million rows deep.
const MAX_OFFSET: u64 = 1_000_000;

fn default_limit() -> u64 {
    50
}

impl Page {
    fn limit(&self) -> Result<u64, ApiError> {
        if (1..=200).contains(&self.limit) {
            Ok(self.limit)
        } else {
            Err(ApiError::Validation("limit: must be 1 to 200".into()))
        }
    }

    fn offset(&self) -> Result<u64, ApiError> {
        if self.offset <= MAX_OFFSET {
            Ok(self.offset)
        } else {
            Err(ApiError::Validation(format!(
                "offset: must be 0 to {MAX_OFFSET}"
            )))
        }
    }
}

#[derive(Serialize)]
struct UserRow {
    id: AccountId,
    email: String,
    role: Role,
    created_at: DateTime<Utc>,
    disabled_at: Option<DateTime<Utc>>,
}

/// Escapes `%`, `_` and `\` for a LIKE pattern.
fn like_pattern(term: &str) -> String {
    let mut pattern = String::from("%");
    for c in term.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// `GET /api/v1/admin/users?query=&limit=&offset=`: search by e-mail (substring, case-insensitive).
/// The search term itself is not audited, so no address enters the audit log.
#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin", security(("bearer" = [])), params(Page),
    responses((status = 200, body = Object), (status = 401, description = "Missing or invalid access token", body = ErrorBody), (status = 403, description = "Not an admin", body = ErrorBody)))]
pub async fn search_users(
    state: web::Data<AppState>,
    admin: AdminAccount,
    page: web::Query<Page>,
) -> Result<HttpResponse, ApiError> {
    let limit = page.limit()?;
    let offset = page.offset()?;
    let mut select = accounts::Entity::find().order_by_asc(accounts::Column::CreatedAt);
    if let Some(term) = page
        .query
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        if term.chars().count() > 254 {
            return Err(ApiError::Validation("query: at most 254 characters".into()));
        }
        select = select.filter(Expr::col(accounts::Column::Email).like(
            sea_orm::sea_query::LikeExpr::new(like_pattern(&term.to_lowercase())).escape('\\'),
        ));
    }
    let users: Vec<UserRow> = select
        .offset(offset)
        .limit(limit)
        .all(&state.db)
        .await?
        .into_iter()
        .map(|account| UserRow {
            id: account.id,
            email: account.email,
            role: account.role,
            created_at: account.created_at,
            disabled_at: account.disabled_at,
        })
        .collect();
    audit::record(&state.db, admin.id, action::USERS_SEARCH, None).await?;
    Ok(HttpResponse::Ok().json(json!({ "users": users })))
}

async fn find_account(state: &AppState, id: AccountId) -> Result<accounts::Model, ApiError> {
    accounts::Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .ok_or(ApiError::NotFound)
}

/// `GET /api/v1/admin/users/{id}`: a summary with counts only, never transcripts or keys.
#[utoipa::path(get, path = "/api/v1/admin/users/{id}", tag = "admin", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, description = "Summary counts, no transcripts", body = Object), (status = 404, body = ErrorBody), (status = 401, description = "Missing or invalid access token", body = ErrorBody), (status = 403, description = "Not an admin", body = ErrorBody)))]
pub async fn get_user(
    state: web::Data<AppState>,
    admin: AdminAccount,
    id: web::Path<AccountId>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let account = find_account(&state, id).await?;
    let db = &state.db;
    let interview_ids = Query::select()
        .column(interviews::Column::Id)
        .from(interviews::Entity)
        .and_where(interviews::Column::AccountId.eq(account.id))
        .to_owned();
    let interviews = interviews::Entity::find()
        .filter(interviews::Column::AccountId.eq(account.id))
        .count(db)
        .await?;
    let segments = transcript_segments::Entity::find()
        .filter(transcript_segments::Column::InterviewId.in_subquery(interview_ids))
        .count(db)
        .await?;
    let usage_rows = usage_log::Entity::find()
        .filter(usage_log::Column::AccountId.eq(account.id))
        .count(db)
        .await?;
    let providers: Vec<String> = byok_keys::Entity::find()
        .filter(byok_keys::Column::AccountId.eq(account.id))
        .all(db)
        .await?
        .into_iter()
        .map(|key| key.provider)
        .collect();
    let abuse_signals = crate::abuse::review::signals_of(db, id).await?;
    let review_state = crate::abuse::review::state_of(db, id).await?;
    let review = entities::abuse_reviews::Entity::find_by_id(account.id)
        .one(db)
        .await?
        .map(|review| {
            json!({
                "decision": review.decision,
                "note": review.note,
                "decided_by": review.decided_by,
                "decided_at": review.decided_at,
            })
        });
    let free_interviews = crate::free_interviews::allocation(db, id).await?;
    let live_interviews = state
        .engine
        .live()
        .into_iter()
        .filter(|live| live.account_id == id)
        .map(|live| live.interview_id)
        .collect::<Vec<_>>();
    let key_lease = state.engine.lease_status(id).await;
    let has_resume = resume_profiles::Entity::find_by_id(account.id)
        .one(db)
        .await?
        .is_some();
    audit::record(db, admin.id, action::USER_VIEW, Some(account.id.into())).await?;
    Ok(HttpResponse::Ok().json(json!({
        "id": account.id,
        "email": account.email,
        "role": account.role,
        "created_at": account.created_at,
        "disabled_at": account.disabled_at,
        "counts": {
            "interviews": interviews,
            "transcript_segments": segments,
            "usage_rows": usage_rows,
        },
        "byok_providers": providers,
        "has_resume": has_resume,
        "abuse_signals": abuse_signals,
        // Flagged accounts get no free interviews until an admin decides (`abuse-decision`).
        "abuse_review": {
            "state": review_state,
            "flagged": !abuse_signals.is_empty(),
            "decision": review,
        },
        "free_interviews": free_interviews,
        "email_verified": account.email_verified_at.is_some(),
        "live_interviews": live_interviews,
        // Whether a live interview holds a key lease, and whether it still holds one of the
        // account's own keys; never any key material.
        "live_key_lease": key_lease.live,
        "live_key_lease_own_keys": key_lease.own_keys,
    })))
}

/// `GET /api/v1/admin/users/{id}/export`: an access request received by e-mail.
#[utoipa::path(get, path = "/api/v1/admin/users/{id}/export", tag = "admin", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody), (status = 401, description = "Missing or invalid access token", body = ErrorBody), (status = 403, description = "Not an admin", body = ErrorBody)))]
pub async fn export_user(
    state: web::Data<AppState>,
    admin: AdminAccount,
    id: web::Path<AccountId>,
) -> Result<HttpResponse, ApiError> {
    let document = privacy::export_account(&state.db, *id).await?;
    audit::record(&state.db, admin.id, action::USER_EXPORT, Some((*id).into())).await?;
    Ok(export_response(document, *id))
}

/// `DELETE /api/v1/admin/users/{id}`: erasure on request (for example an under-16 report).
#[utoipa::path(delete, path = "/api/v1/admin/users/{id}", tag = "admin", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody), (status = 401, description = "Missing or invalid access token", body = ErrorBody), (status = 403, description = "Not an admin", body = ErrorBody)))]
pub async fn erase_user(
    state: web::Data<AppState>,
    admin: AdminAccount,
    id: web::Path<AccountId>,
) -> Result<HttpResponse, ApiError> {
    if *id == admin.id {
        return Err(ApiError::Validation(
            "id: admins erase their own account with DELETE /api/v1/me".into(),
        ));
    }
    crate::interviews::stop_live_interviews(
        &state,
        *id,
        engine::actors::interview::EndReason::AccountErasedByAdmin,
    )
    .await;
    // The audit row commits with the erasure or not at all.
    let txn = engine::database::begin_write(&state.db).await?;
    let report = privacy::erase_in(&txn, *id, &state.ledger_key).await?;
    audit::record(&txn, admin.id, action::USER_ERASE, Some((*id).into())).await?;
    txn.commit().await?;
    crate::startup::scrub_after_erasure(&state.db, &privacy::erased_tables(&report)).await;
    let rows: u64 = report.iter().map(|(_, count)| count).sum();
    Ok(HttpResponse::Ok().json(json!({"erased": true, "rows_deleted": rows})))
}

async fn set_disabled(
    state: &AppState,
    admin: AdminAccount,
    id: AccountId,
    disabled: bool,
) -> Result<HttpResponse, ApiError> {
    if id == admin.id {
        return Err(ApiError::Validation(
            "id: admins cannot disable themselves".into(),
        ));
    }
    find_account(state, id).await?;
    let now = Utc::now();
    let txn = engine::database::begin_write(&state.db).await?;
    accounts::Entity::update_many()
        .col_expr(
            accounts::Column::DisabledAt,
            Expr::value(if disabled { Some(now) } else { None }),
        )
        .col_expr(accounts::Column::UpdatedAt, Expr::value(now))
        .filter(accounts::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    if disabled {
        refresh_tokens::Entity::update_many()
            .col_expr(refresh_tokens::Column::RevokedAt, Expr::value(Some(now)))
            .filter(refresh_tokens::Column::AccountId.eq(id))
            .filter(refresh_tokens::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?;
    }
    let code = if disabled {
        action::USER_DISABLE
    } else {
        action::USER_ENABLE
    };
    audit::record(&txn, admin.id, code, Some(id.into())).await?;
    txn.commit().await?;
    if disabled {
        // Stored first, so an interview or a lease started meanwhile is ended too (and a lease
        // is also caught by the leaser's reconcile).
        state
            .engine
            .end_for_account(id, engine::actors::interview::EndReason::AccountDisabled);
        state.engine.revoke_keys(id).await;
    }
    Ok(HttpResponse::Ok().json(json!({"id": id, "disabled": disabled})))
}

/// `POST /api/v1/admin/users/{id}/disable`: blocks sign-in and revokes every session.
#[utoipa::path(post, path = "/api/v1/admin/users/{id}/disable", tag = "admin", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody), (status = 401, description = "Missing or invalid access token", body = ErrorBody), (status = 403, description = "Not an admin", body = ErrorBody)))]
pub async fn disable_user(
    state: web::Data<AppState>,
    admin: AdminAccount,
    id: web::Path<AccountId>,
) -> Result<HttpResponse, ApiError> {
    set_disabled(&state, admin, *id, true).await
}

/// `POST /api/v1/admin/users/{id}/enable`.
#[utoipa::path(post, path = "/api/v1/admin/users/{id}/enable", tag = "admin", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody), (status = 401, description = "Missing or invalid access token", body = ErrorBody), (status = 403, description = "Not an admin", body = ErrorBody)))]
pub async fn enable_user(
    state: web::Data<AppState>,
    admin: AdminAccount,
    id: web::Path<AccountId>,
) -> Result<HttpResponse, ApiError> {
    set_disabled(&state, admin, *id, false).await
}

/// `GET /api/v1/admin/audit?limit=&offset=`: newest first.
#[utoipa::path(get, path = "/api/v1/admin/audit", tag = "admin", security(("bearer" = [])), params(Page),
    responses((status = 200, body = Object), (status = 401, description = "Missing or invalid access token", body = ErrorBody), (status = 403, description = "Not an admin", body = ErrorBody)))]
pub async fn list_audit(
    state: web::Data<AppState>,
    admin: AdminAccount,
    page: web::Query<Page>,
) -> Result<HttpResponse, ApiError> {
    let limit = page.limit()?;
    let offset = page.offset()?;
    let rows = admin_audit::Entity::find()
        .order_by_desc(admin_audit::Column::CreatedAt)
        .offset(offset)
        .limit(limit)
        .all(&state.db)
        .await?;
    audit::record(&state.db, admin.id, action::AUDIT_VIEW, None).await?;
    Ok(HttpResponse::Ok().json(json!({ "entries": rows })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishPolicy {
    version: String,
    title: String,
    #[serde(default)]
    summary: String,
    body: String,
    effective_at: DateTime<Utc>,
}

/// `POST /api/v1/admin/policies`: publishes a policy version at least 14 days ahead.
#[utoipa::path(post, path = "/api/v1/admin/policies", tag = "admin", security(("bearer" = [])), request_body = PublishPolicy,
    responses((status = 201, body = PolicyView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 401, description = "Missing or invalid access token", body = ErrorBody), (status = 403, description = "Not an admin", body = ErrorBody)))]
pub async fn publish_policy(
    state: web::Data<AppState>,
    admin: AdminAccount,
    body: web::Json<PublishPolicy>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let txn = engine::database::begin_write(&state.db).await?;
    let published = policy::publish(
        &txn,
        NewPolicy {
            version: body.version,
            title: body.title,
            summary: body.summary,
            body: body.body,
            effective_at: body.effective_at,
        },
        Utc::now(),
    )
    .await?;
    audit::record(&txn, admin.id, action::POLICY_PUBLISH, Some(published.id)).await?;
    txn.commit().await?;
    Ok(HttpResponse::Created().json(PolicyView::from(published)))
}

/// `POST /api/v1/admin/users/{id}/abuse-decision`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AbuseDecisionRequest {
    /// `allow` (grant the free allocation) or `deny` (keep it at zero).
    #[schema(example = "allow")]
    decision: String,
    /// Why, for other admins (at most 500 characters); kept with the account, never audited.
    #[serde(default)]
    note: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AbuseDecisionView {
    #[schema(value_type = Uuid)]
    id: AccountId,
    #[schema(example = "allow")]
    decision: &'static str,
    free_interviews: crate::free_interviews::FreeInterviews,
}

/// Decides on an account flagged for free-interview abuse (a reused mailbox, a disposable
/// domain, too many sign-ups from one address): `allow` grants the free allocation (never
/// more than one: it is raised to `FREE_INTERVIEWS` only if lower), `deny` keeps it at zero
/// (interviews already used stay counted). The decision, the allocation and the audit row (ids
/// and `abuse.allow`/`abuse.deny` only) commit together.
#[utoipa::path(post, path = "/api/v1/admin/users/{id}/abuse-decision", tag = "admin", security(("bearer" = [])), params(("id" = Uuid, Path)),
    request_body = AbuseDecisionRequest,
    responses((status = 200, body = AbuseDecisionView), (status = 404, body = ErrorBody), (status = 422, description = "Unknown decision, a note too long, or the admin's own account", body = ErrorBody),
        (status = 401, description = "Missing or invalid access token", body = ErrorBody), (status = 403, description = "Not an admin", body = ErrorBody)))]
pub async fn abuse_decision(
    state: web::Data<AppState>,
    admin: AdminAccount,
    id: web::Path<AccountId>,
    body: web::Json<AbuseDecisionRequest>,
) -> Result<HttpResponse, ApiError> {
    use crate::abuse::review::{self, Decision};
    let AbuseDecisionRequest { decision, note } = body.into_inner();
    let decision = Decision::parse(&decision)?;
    let note = review::parse_note(note)?;
    if *id == admin.id {
        return Err(ApiError::Validation(
            "id: admins do not decide on their own account".into(),
        ));
    }
    find_account(&state, *id).await?;
    let free = i32::try_from(state.settings.free_interviews).unwrap_or(i32::MAX);
    let txn = engine::database::begin_write(&state.db).await?;
    review::decide(&txn, *id, admin.id, decision, note, free, Utc::now()).await?;
    let code = match decision {
        Decision::Allow => action::ABUSE_ALLOW,
        Decision::Deny => action::ABUSE_DENY,
    };
    audit::record(&txn, admin.id, code, Some((*id).into())).await?;
    txn.commit().await?;
    let free_interviews = crate::free_interviews::allocation(&state.db, *id).await?;
    Ok(HttpResponse::Ok().json(AbuseDecisionView {
        id: *id,
        decision: decision.as_str(),
        free_interviews,
    }))
}
