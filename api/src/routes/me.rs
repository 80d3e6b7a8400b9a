//! `GET /api/v1/me`: the signed-in account's profile.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use entities::accounts::{self, Role};
use sea_orm::EntityTrait;
use serde::Serialize;
use uuid::Uuid;

use crate::auth::AuthenticatedAccount;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Serialize)]
pub struct Profile {
    pub id: Uuid,
    pub email: String,
    pub display_name: Option<String>,
    pub role: Role,
    pub age_confirmed_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

pub async fn get_me(
    state: web::Data<AppState>,
    caller: AuthenticatedAccount,
) -> Result<HttpResponse, ApiError> {
    let account = accounts::Entity::find_by_id(caller.id)
        .one(&state.db)
        .await?
        .filter(|account| account.disabled_at.is_none())
        // A valid token for an erased or disabled account authenticates nobody.
        .ok_or_else(ApiError::unauthorized)?;
    Ok(HttpResponse::Ok().json(Profile {
        id: account.id,
        email: account.email,
        display_name: account.display_name,
        role: account.role,
        age_confirmed_at: account.age_confirmed_at,
        created_at: account.created_at,
    }))
}
