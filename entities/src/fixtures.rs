//! Test fixtures shared by the engine's unit and integration tests and the `tests` crate: the
//! rows an interview test needs, built by the same builders the API uses. Only compiled with the
//! `test-fixtures` feature (dev-dependencies).

use crate::accounts::{NewAccount, Role};
use crate::ids::{AccountId, InterviewId};
use crate::interviews::NewInterview;
use chrono::Utc;
use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr};

/// A user account (e-mail `<id>@example.com`, a placeholder password hash) with a behavioral
/// interview in `created`; returns `(account_id, interview_id)`.
pub async fn account_with_interview(
    db: &impl ConnectionTrait,
) -> Result<(AccountId, InterviewId), DbErr> {
    let now = Utc::now();
    let account_id = AccountId::now_v7();
    NewAccount {
        id: account_id,
        email: format!("{account_id}@example.com"),
        email_canonical: format!("{account_id}@example.com"),
        display_name: None,
        password_hash: "x".into(),
        role: Role::User,
    }
    .row(now)
    .insert(db)
    .await?;
    let interview_id = InterviewId::now_v7();
    NewInterview::behavioral(interview_id, account_id)
        .row(now)
        .insert(db)
        .await?;
    Ok((account_id, interview_id))
}
