//! `AuthenticatedAccount`: the account behind a valid `Authorization: Bearer` access token.
//!
//! The token is read from the header only, never from a cookie or a URL, so it cannot end up in
//! an access log.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use entities::accounts::Role;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// The caller, as proven by its access token.
#[derive(Debug, Clone, Copy)]
pub struct AuthenticatedAccount {
    pub id: Uuid,
    pub role: Role,
}

impl FromRequest for AuthenticatedAccount {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(request))
    }
}

fn authenticate(request: &HttpRequest) -> Result<AuthenticatedAccount, ApiError> {
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
    let claims = state
        .jwt
        .verify(token)
        .map_err(|_| ApiError::Unauthorized {
            code: "invalid_token",
            message: "the access token is invalid or expired",
        })?;
    Ok(AuthenticatedAccount {
        id: claims.sub,
        role: claims.role,
    })
}

/// An account whose access token is valid *and* whose stored role is admin right now (a demoted
/// admin's still-valid token does not pass).
#[derive(Debug, Clone, Copy)]
pub struct AdminAccount {
    pub id: Uuid,
}

impl FromRequest for AdminAccount {
    type Error = ApiError;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let authenticated = authenticate(request);
        let state = request.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let caller = authenticated?;
            let state = state.ok_or_else(|| {
                ApiError::Unexpected(anyhow::anyhow!("AppState is not registered"))
            })?;
            let account =
                <entities::accounts::Entity as sea_orm::EntityTrait>::find_by_id(caller.id)
                    .one(&state.db)
                    .await?
                    .filter(|account| account.disabled_at.is_none())
                    .ok_or_else(ApiError::unauthorized)?;
            if account.role != Role::Admin {
                return Err(ApiError::Forbidden("this action requires the admin role"));
            }
            Ok(AdminAccount { id: account.id })
        })
    }
}
