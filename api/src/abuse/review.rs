//! An admin's decision on a flagged account (`POST /api/v1/admin/users/{id}/abuse-decision`):
//! `allow` grants the free allocation, `deny` keeps it at zero. The grant stays bounded however
//! often decisions are made: allowing raises the allocation to `FREE_INTERVIEWS` only if it is
//! lower, in one conditional statement, so an account never holds more than one allocation;
//! denying ends what is left of it (interviews already used stay counted).

use chrono::{DateTime, Utc};
use engine::AccountId;
use entities::{abuse_reviews, abuse_signals, interview_quotas};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
};
use serde::Serialize;

use crate::domain::ValidationError;

/// What an admin decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
}

impl Decision {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        match raw {
            "allow" => Ok(Decision::Allow),
            "deny" => Ok(Decision::Deny),
            _ => Err(ValidationError::new(
                "decision",
                "must be \"allow\" or \"deny\"",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        }
    }
}

/// The longest admin note, in characters.
pub const MAX_NOTE_CHARS: usize = 500;

/// Validates an admin's note: trimmed, at most [`MAX_NOTE_CHARS`], no control characters but
/// line breaks; empty means none.
pub fn parse_note(raw: Option<String>) -> Result<Option<String>, ValidationError> {
    let Some(raw) = raw else { return Ok(None) };
    let note = raw.trim();
    if note.is_empty() {
        return Ok(None);
    }
    if note.chars().count() > MAX_NOTE_CHARS {
        return Err(ValidationError::new(
            "note",
            "must be at most 500 characters",
        ));
    }
    if note.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ValidationError::new(
            "note",
            "must not contain control characters",
        ));
    }
    Ok(Some(note.to_owned()))
}

/// Where an account stands with the abuse review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewState {
    /// Never flagged, never decided on.
    NotFlagged,
    /// Flagged; no free interviews until an admin decides.
    Pending,
    Allowed,
    Denied,
}

/// The account's review state.
pub async fn state_of(
    db: &impl ConnectionTrait,
    account_id: AccountId,
) -> Result<ReviewState, DbErr> {
    if let Some(review) = abuse_reviews::Entity::find_by_id(account_id)
        .one(db)
        .await?
    {
        return Ok(if review.decision == Decision::Allow.as_str() {
            ReviewState::Allowed
        } else {
            ReviewState::Denied
        });
    }
    let flagged = abuse_signals::Entity::find()
        .filter(abuse_signals::Column::AccountId.eq(account_id))
        .count(db)
        .await?
        > 0;
    Ok(if flagged {
        ReviewState::Pending
    } else {
        ReviewState::NotFlagged
    })
}

/// The account's signal codes, oldest first.
pub async fn signals_of(
    db: &impl ConnectionTrait,
    account_id: AccountId,
) -> Result<Vec<String>, DbErr> {
    Ok(abuse_signals::Entity::find()
        .filter(abuse_signals::Column::AccountId.eq(account_id))
        .order_by_asc(abuse_signals::Column::CreatedAt)
        .all(db)
        .await?
        .into_iter()
        .map(|signal| signal.kind)
        .collect())
}

/// Applies a decision in the caller's transaction: the allocation, and the review row (one per
/// account, the latest decision).
pub async fn decide(
    db: &impl ConnectionTrait,
    account_id: AccountId,
    admin_id: AccountId,
    decision: Decision,
    note: Option<String>,
    free_interviews: i32,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let quota = interview_quotas::Entity::update_many()
        .col_expr(interview_quotas::Column::UpdatedAt, Expr::value(now))
        .filter(interview_quotas::Column::AccountId.eq(account_id));
    match decision {
        Decision::Allow => {
            quota
                .col_expr(
                    interview_quotas::Column::FreeInterviewsGranted,
                    Expr::value(free_interviews),
                )
                .filter(interview_quotas::Column::FreeInterviewsGranted.lt(free_interviews))
                .exec(db)
                .await?;
        }
        Decision::Deny => {
            quota
                .col_expr(
                    interview_quotas::Column::FreeInterviewsGranted,
                    Expr::col(interview_quotas::Column::FreeInterviewsUsed),
                )
                .filter(
                    Expr::col(interview_quotas::Column::FreeInterviewsGranted)
                        .gt(Expr::col(interview_quotas::Column::FreeInterviewsUsed)),
                )
                .exec(db)
                .await?;
        }
    }
    abuse_reviews::Entity::insert(abuse_reviews::ActiveModel {
        account_id: Set(account_id),
        decision: Set(decision.as_str().to_owned()),
        note: Set(note),
        decided_by: Set(admin_id),
        decided_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(abuse_reviews::Column::AccountId)
            .update_columns([
                abuse_reviews::Column::Decision,
                abuse_reviews::Column::Note,
                abuse_reviews::Column::DecidedBy,
                abuse_reviews::Column::DecidedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decisions_and_notes_are_validated() {
        assert_eq!(Decision::parse("allow"), Ok(Decision::Allow));
        assert_eq!(Decision::parse("deny"), Ok(Decision::Deny));
        assert!(Decision::parse("Allow").is_err());
        assert!(Decision::parse("").is_err());
        assert_eq!(parse_note(None), Ok(None));
        assert_eq!(parse_note(Some("  ".into())), Ok(None));
        assert_eq!(
            parse_note(Some(" checked\nby phone ".into())),
            Ok(Some("checked\nby phone".into()))
        );
        assert!(parse_note(Some("a\u{0}b".into())).is_err());
        assert!(parse_note(Some("x".repeat(501))).is_err());
        assert!(parse_note(Some("é".repeat(500))).is_ok());
    }

    proptest! {
        #[test]
        fn any_note_is_answered_without_panicking(raw in "\\PC{0,700}") {
            if let Ok(Some(note)) = parse_note(Some(raw)) {
                prop_assert!(note.chars().count() <= MAX_NOTE_CHARS);
            }
        }
    }
}
