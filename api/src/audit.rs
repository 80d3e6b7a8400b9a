//! The admin audit log: who (admin id) did what (a fixed action code) to which id, when. It never
//! records e-mails, search terms, transcripts or keys.

use chrono::Utc;
use engine::AccountId;
use entities::admin_audit;
use sea_orm::ActiveModelTrait;
use sea_orm::ActiveValue::Set;
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::error::ApiError;

/// Action codes written to the audit log.
pub mod action {
    pub const USERS_SEARCH: &str = "users.search";
    pub const USER_VIEW: &str = "user.view";
    pub const USER_EXPORT: &str = "user.export";
    pub const USER_ERASE: &str = "user.erase";
    pub const USER_DISABLE: &str = "user.disable";
    pub const USER_ENABLE: &str = "user.enable";
    pub const AUDIT_VIEW: &str = "audit.view";
    pub const POLICY_PUBLISH: &str = "policy.publish";
    pub const USAGE_VIEW: &str = "usage.view";
    /// An abuse review's decision, one code per decision (the note is never audited).
    pub const ABUSE_ALLOW: &str = "abuse.allow";
    pub const ABUSE_DENY: &str = "abuse.deny";
}

/// Appends one audit row.
pub async fn record(
    db: &impl ConnectionTrait,
    admin_id: AccountId,
    action: &'static str,
    target_id: Option<Uuid>,
) -> Result<(), ApiError> {
    admin_audit::ActiveModel {
        id: Set(Uuid::now_v7()),
        admin_id: Set(admin_id),
        action: Set(action.to_owned()),
        target_id: Set(target_id),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await?;
    tracing::info!(%admin_id, action, target_id = ?target_id, "admin action");
    Ok(())
}
