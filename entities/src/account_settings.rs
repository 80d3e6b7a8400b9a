//! `account_settings`: the account's settings and consents. Each flag records when it last changed;
//! every change is also appended to `consent_events`.

use sea_orm::entity::prelude::*;

use crate::ids::AccountId;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "account_settings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub account_id: AccountId,
    /// Weekly digest e-mail; opt-in, default off.
    pub digest_opt_in: bool,
    pub digest_opt_in_changed_at: DateTimeUtc,
    /// Use of transcripts to improve the product; opt-in, default off.
    pub training_opt_in: bool,
    pub training_opt_in_changed_at: DateTimeUtc,
    /// Skill tracking history; default on, `false` records an objection.
    pub skill_tracking: bool,
    pub skill_tracking_changed_at: DateTimeUtc,
    pub interviewer_voice: Option<String>,
    pub updated_at: DateTimeUtc,
    /// When the candidate's real interview is, for the drill plan's pace.
    pub target_interview_date: Option<Date>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::accounts::Entity",
        from = "Column::AccountId",
        to = "super::accounts::Column::Id",
        on_delete = "Cascade"
    )]
    Account,
}

impl Related<super::accounts::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Account.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

/// A new account's settings: digest and training use off, skill tracking on, the default voice,
/// no interview date, every flag changed at `now`. The one place this row is first built
/// (sign-up and `create-admin` through `api::accounts`, and test fixtures).
pub fn defaults(account_id: AccountId, now: DateTimeUtc) -> ActiveModel {
    use sea_orm::ActiveValue::Set;
    ActiveModel {
        account_id: Set(account_id),
        digest_opt_in: Set(false),
        digest_opt_in_changed_at: Set(now),
        training_opt_in: Set(false),
        training_opt_in_changed_at: Set(now),
        skill_tracking: Set(true),
        skill_tracking_changed_at: Set(now),
        interviewer_voice: Set(None),
        updated_at: Set(now),
        target_interview_date: Set(None),
    }
}
