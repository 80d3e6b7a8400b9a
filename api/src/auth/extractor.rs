//! `AuthenticatedAccount`: the account behind a valid `Authorization: Bearer` access token.
//!
//! The token is read from the header only, never from a cookie or a URL, so it cannot end up in
//! an access log. Beyond the token's signature and expiry, the account is checked on every
//! request: it must still exist, not be disabled, and the token must carry the account's current
//! password version, so erasure, disabling and a password change take effect at once rather than
//! when the access token expires.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use engine::AccountId;
use entities::accounts::Role;

use crate::auth::jwt::Claims;
use crate::error::ApiError;
use crate::state::AppState;

/// The caller, as proven by its access token.
#[derive(Debug, Clone, Copy)]
pub struct AuthenticatedAccount {
    pub id: AccountId,
    pub role: Role,
}

impl FromRequest for AuthenticatedAccount {
    type Error = ApiError;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let claims = authenticate(request);
        let state = request.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let account = current_account(state, claims?).await?;
            Ok(AuthenticatedAccount {
                id: account.id,
                role: account.role,
            })
        })
    }
}

/// The account of verified claims, if it may still act.
async fn current_account(
    state: Option<web::Data<AppState>>,
    claims: Claims,
) -> Result<entities::accounts::Model, ApiError> {
    let state =
        state.ok_or_else(|| ApiError::Unexpected(anyhow::anyhow!("AppState is not registered")))?;
    let account = <entities::accounts::Entity as sea_orm::EntityTrait>::find_by_id(claims.sub)
        .one(&state.db)
        .await?
        .filter(|account| account.disabled_at.is_none())
        .filter(|account| claims.pwv == account.password_changed_at.timestamp_millis())
        .ok_or_else(ApiError::unauthorized)?;
    Ok(account)
}

fn authenticate(request: &HttpRequest) -> Result<Claims, ApiError> {
    let state = request
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::Unexpected(anyhow::anyhow!("AppState is not registered")))?;
    let value = request
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(ApiError::unauthorized)?
        .to_str()
        .map_err(|_| ApiError::unauthorized())?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or_else(ApiError::unauthorized)?
        .trim();
    state.jwt.verify(token).map_err(|_| ApiError::Unauthorized {
        code: "invalid_token",
        message: "the access token is invalid or expired",
    })
}

/// An account whose access token is valid *and* whose stored role is admin right now (a demoted
/// admin's still-valid token does not pass).
#[derive(Debug, Clone, Copy)]
pub struct AdminAccount {
    pub id: AccountId,
}

impl FromRequest for AdminAccount {
    type Error = ApiError;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let claims = authenticate(request);
        let state = request.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let account = current_account(state, claims?).await?;
            if account.role != Role::Admin {
                return Err(ApiError::Forbidden("this action requires the admin role"));
            }
            Ok(AdminAccount { id: account.id })
        })
    }
}
