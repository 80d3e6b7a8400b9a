//! `/api/v1/me`: the signed-in account's profile, its rectification, and its erasure.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use engine::AccountId;
use entities::accounts::{self, Role};
use entities::refresh_tokens;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, SqlErr};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::{AuthenticatedAccount, password_hash};
use crate::domain::{Email, Password};
use crate::error::{ApiError, ErrorBody};
use crate::policy::{self, PolicyView};
use crate::privacy;
use crate::routes::auth::{cleared_refresh_cookie, parse_display_name};
use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Profile {
    #[schema(value_type = Uuid)]
    pub id: AccountId,
    pub email: String,
    pub display_name: Option<String>,
    #[schema(value_type = String, example = "user")]
    pub role: Role,
    pub age_confirmed_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub policy: PolicyNotice,
    /// The free allocation: interviews on platform keys count against it, BYOK and keyless
    /// local-mode interviews do not.
    pub free_interviews: crate::free_interviews::FreeInterviews,
    /// Whether the account has followed the verification link sent to its current address.
    pub email_verified: bool,
    /// Whether an interview on platform keys waits for that: the server sends mail
    /// (`SMTP_URL`) and the address is not verified yet. Never with keyless local mode.
    pub email_verification_required: bool,
    /// Whether the account's free interviews wait for, or got, an admin's review
    /// (`not_flagged`, `pending`, `allowed`, `denied`).
    pub free_interviews_review: crate::abuse::review::ReviewState,
}

/// Where the account stands with the privacy policy; `upcoming` announces every published
/// version that is not yet in force (published at least 14 days ahead).
#[derive(Serialize, utoipa::ToSchema)]
pub struct PolicyNotice {
    pub current_version: Option<String>,
    pub accepted_current: bool,
    pub upcoming: Vec<PolicyView>,
}

/// Loads the caller's account; an erased or disabled account authenticates nobody.
async fn load_account(state: &AppState, id: AccountId) -> Result<accounts::Model, ApiError> {
    accounts::Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .filter(|account| account.disabled_at.is_none())
        .ok_or_else(ApiError::unauthorized)
}

async fn profile(state: &AppState, account: accounts::Model) -> Result<Profile, ApiError> {
    let now = Utc::now();
    let current = policy::current(&state.db, now).await?;
    let accepted_current = match &current {
        Some(version) => policy::has_accepted(&state.db, account.id, version).await?,
        None => true,
    };
    let upcoming = policy::upcoming(&state.db, now)
        .await?
        .into_iter()
        .map(PolicyView::from)
        .collect();
    let free_interviews = crate::free_interviews::allocation(&state.db, account.id).await?;
    let free_interviews_review = crate::abuse::review::state_of(&state.db, account.id).await?;
    let email_verified = account.email_verified_at.is_some();
    Ok(Profile {
        free_interviews,
        free_interviews_review,
        email_verified,
        email_verification_required: state.verification_required() && !email_verified,
        id: account.id,
        email: account.email,
        display_name: account.display_name,
        role: account.role,
        age_confirmed_at: account.age_confirmed_at,
        created_at: account.created_at,
        updated_at: account.updated_at,
        policy: PolicyNotice {
            current_version: current.map(|version| version.version),
            accepted_current,
            upcoming,
        },
    })
}

#[utoipa::path(get, path = "/api/v1/me", tag = "account", security(("bearer" = [])), responses((status = 200, body = Profile), (status = 401, description = "Missing or invalid access token", body = ErrorBody)))]
pub async fn get_me(
    state: web::Data<AppState>,
    caller: AuthenticatedAccount,
) -> Result<HttpResponse, ApiError> {
    let account = load_account(&state, caller.id).await?;
    Ok(HttpResponse::Ok().json(profile(&state, account).await?))
}

/// `PATCH /api/v1/me`: rectification. Changing the e-mail or the password needs the current
/// password; a password change signs out every session (all refresh tokens are revoked). A
/// new e-mail address is unverified until its link is followed (sent when the server sends
/// mail), and both mailboxes stay in the abuse ledger: changing the address never frees the
/// old one for another account's free interviews.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    display_name: Option<String>,
    email: Option<String>,
    new_password: Option<String>,
    current_password: Option<String>,
}

fn wrong_password() -> ApiError {
    ApiError::Forbidden("the current password is incorrect")
}

#[utoipa::path(patch, path = "/api/v1/me", tag = "account", security(("bearer" = [])), request_body = ProfilePatch,
    responses((status = 200, body = Profile), (status = 401, description = "Missing or invalid access token", body = ErrorBody), (status = 403, description = "Wrong current password", body = ErrorBody),
        (status = 409, description = "E-mail taken", body = ErrorBody), (status = 422, description = "Invalid input", body = ErrorBody),
        (status = 429, description = "Too many wrong passwords from this client; see Retry-After", body = ErrorBody)))]
pub async fn patch_me(
    state: web::Data<AppState>,
    request: HttpRequest,
    caller: AuthenticatedAccount,
    body: web::Json<ProfilePatch>,
) -> Result<HttpResponse, ApiError> {
    let ProfilePatch {
        display_name,
        email,
        new_password,
        current_password,
    } = body.into_inner();
    let account = load_account(&state, caller.id).await?;
    let new_email = email.map(|raw| Email::parse(&raw)).transpose()?;
    let new_email = new_email.filter(|email| email.as_str() != account.email);
    let effective_email = match &new_email {
        Some(email) => email.clone(),
        None => Email::parse(&account.email)
            .map_err(|_| ApiError::Unexpected(anyhow::anyhow!("stored e-mail does not parse")))?,
    };
    let new_password = new_password
        .map(|raw| Password::parse(raw, &effective_email))
        .transpose()?;
    if new_email.is_some() || new_password.is_some() {
        let Some(current) = current_password else {
            return Err(ApiError::Validation(
                "current_password: required to change the e-mail or the password".into(),
            ));
        };
        check_password(&state, &request, &account, current).await?;
    }
    let new_hash = match &new_password {
        Some(password) => Some(password_hash::hash(password, state.settings.bcrypt_cost).await?),
        None => None,
    };

    let now = Utc::now();
    let txn = engine::database::begin_write(&state.db).await?;
    let mut row: accounts::ActiveModel = account.clone().into();
    if let Some(display_name) = display_name {
        row.display_name = Set(parse_display_name(Some(display_name))?);
    }
    let mut link = None;
    if let Some(email) = &new_email {
        row.email = Set(email.as_str().to_owned());
        row.email_canonical = Set(email.canonical());
        row.email_verified_at = Set(None);
        crate::abuse::ledger::record(&txn, &state.ledger_key.mailbox(email), now).await?;
        if let Ok(old) = Email::parse(&account.email) {
            crate::abuse::ledger::record(&txn, &state.ledger_key.mailbox(&old), now).await?;
        }
        crate::verification::withdraw(&txn, account.id).await?;
        if state.mailer.is_some() {
            link = Some(crate::verification::issue(&txn, account.id, now).await?);
        }
    }
    if let Some(hash) = new_hash {
        row.password_hash = Set(hash);
        row.password_changed_at = Set(now);
        refresh_tokens::Entity::update_many()
            .col_expr(refresh_tokens::Column::RevokedAt, Expr::value(Some(now)))
            .filter(refresh_tokens::Column::AccountId.eq(account.id))
            .filter(refresh_tokens::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?;
    }
    row.updated_at = Set(now);
    let updated = row
        .update(&txn)
        .await
        .map_err(|error| match error.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => ApiError::Conflict {
                code: "email_taken",
                message: "an account with this email already exists",
            },
            _ => error.into(),
        })?;
    txn.commit().await?;
    if let (Some(mailer), Some(token)) = (state.mailer.clone(), link) {
        crate::verification::send_in_background(
            mailer,
            &state.public_url,
            account.id,
            updated.email.clone(),
            token,
        );
    }
    if new_password.is_some() {
        // A password change also withdraws the account's own keys from live interviews.
        state.engine.revoke_keys(account.id).await;
        tracing::info!(account_id = %account.id, "password changed; sessions revoked");
    }
    Ok(HttpResponse::Ok().json(profile(&state, updated).await?))
}

/// Re-checks the account's password before a sensitive change. Failures count per account and
/// client like sign-in's (`auth::attempts`): a stolen access token cannot be used to guess the
/// password, and guessing from one client never holds up the owner on another.
async fn check_password(
    state: &AppState,
    request: &HttpRequest,
    account: &accounts::Model,
    password: String,
) -> Result<(), ApiError> {
    let subject = format!("account:{}", account.id);
    let client = crate::routes::auth::client_of(request, state);
    if let Some(wait) = state
        .failed_attempts
        .wait(&subject, client, std::time::Instant::now())
    {
        return Err(crate::routes::auth::too_many_attempts(wait));
    }
    let matched = password_hash::verify(
        SecretString::from(password),
        Some(account.password_hash.clone()),
        &state.dummy_password_hash,
    )
    .await?;
    if !matched {
        return Err(crate::routes::auth::failed_check(
            state,
            &subject,
            client,
            wrong_password(),
        ));
    }
    state.failed_attempts.succeeded(&subject, client);
    Ok(())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseRequest {
    password: String,
}

/// `DELETE /api/v1/me`: erases the account and everything of it, in one transaction, after
/// re-checking the password; revokes every session and clears the refresh cookie.
#[utoipa::path(delete, path = "/api/v1/me", tag = "account", security(("bearer" = [])), request_body = EraseRequest,
    responses((status = 200, description = "Account and all its data erased"), (status = 401, description = "Missing or invalid access token", body = ErrorBody), (status = 403, description = "Wrong password", body = ErrorBody), (status = 429, description = "Too many wrong passwords from this client; see Retry-After", body = ErrorBody)))]
pub async fn delete_me(
    state: web::Data<AppState>,
    request: HttpRequest,
    caller: AuthenticatedAccount,
    body: web::Json<EraseRequest>,
) -> Result<HttpResponse, ApiError> {
    let account = load_account(&state, caller.id).await?;
    check_password(&state, &request, &account, body.into_inner().password).await?;
    crate::interviews::stop_live_interviews(
        &state,
        account.id,
        engine::actors::interview::EndReason::AccountErased,
    )
    .await;
    let report = privacy::erase_account(&state.db, account.id, &state.ledger_key).await?;
    let rows: u64 = report.iter().map(|(_, count)| count).sum();
    tracing::info!(account_id = %account.id, rows, "account erased at the user's request");
    Ok(HttpResponse::Ok()
        .cookie(cleared_refresh_cookie(&state))
        .json(json!({"erased": true, "rows_deleted": rows})))
}
