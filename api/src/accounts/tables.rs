//! The one descriptor of the schema's tables and what each holds of an account: export
//! (`privacy::export_account`), erasure (`privacy::erase_account`) and the every-table tests all
//! read [`TABLES`], so a new table is either listed here (and then exported and erased) or the
//! schema test, which compares [`TABLES`] with the database, fails.
//!
//! The tables an account owns are listed once, in [`owned_tables!`], in erasure order (children
//! before parents); the macro writes the export and the erasure of each from that one line.

use engine::AccountId;
use entities::interviews;
use sea_orm::sea_query::{ExprTrait, Query, SelectStatement};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Map, Value};

use crate::error::ApiError;

/// What a table holds of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holds {
    /// The account row itself: exported first, erased last.
    Account,
    /// The account's rows, found by its id or by its interviews: exported and erased.
    Owned,
    /// No personal data of the account; kept when it is erased (the reason says why). Its
    /// export, if any, is written by hand in `privacy`.
    Retained(&'static str),
}

/// A table of the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    pub name: &'static str,
    pub holds: Holds,
}

/// The interviews of an account, as a subquery.
fn interviews_of(account_id: AccountId) -> SelectStatement {
    Query::select()
        .column(interviews::Column::Id)
        .from(interviews::Entity)
        .and_where(interviews::Column::AccountId.eq(account_id))
        .to_owned()
}

/// The rows of `$table` that belong to the account: by a column naming the account, by one
/// naming one of its interviews, or either.
macro_rules! owner_filter {
    ($table:ident, account($col:ident), $account:expr) => {
        entities::$table::Column::$col.eq($account)
    };
    ($table:ident, interview($col:ident), $account:expr) => {
        entities::$table::Column::$col.in_subquery(interviews_of($account))
    };
    ($table:ident, account_or_interview($a:ident, $i:ident), $account:expr) => {
        entities::$table::Column::$a
            .eq($account)
            .or(entities::$table::Column::$i.in_subquery(interviews_of($account)))
    };
}

/// One line per table an account owns: `table: owner(columns) order(columns);`, in erasure
/// order. Writes [`OWNED`], [`export_owned`] and [`erase_owned`].
macro_rules! owned_tables {
    ($( $table:ident: $owner:ident($($col:ident),+) $(order($($order:ident),+))? ;)+) => {
        /// The tables an account owns, in erasure order (children first).
        pub const OWNED: &[&str] = &[$(stringify!($table)),+];

        /// Adds one array per owned table to `tables`, in a stable order.
        pub(crate) async fn export_owned(
            db: &impl ConnectionTrait,
            account_id: AccountId,
            tables: &mut Map<String, Value>,
        ) -> Result<(), ApiError> {
            $(
                let query = entities::$table::Entity::find()
                    .filter(owner_filter!($table, $owner($($col),+), account_id));
                $($(let query = query.order_by_asc(entities::$table::Column::$order);)+)?
                tables.insert(stringify!($table).into(), rows(query.all(db).await?)?);
            )+
            Ok(())
        }

        /// Deletes the account's rows of every owned table, children first; the count per table.
        pub(crate) async fn erase_owned(
            db: &impl ConnectionTrait,
            account_id: AccountId,
        ) -> Result<Vec<(&'static str, u64)>, ApiError> {
            let mut report = Vec::new();
            $(
                let deleted = entities::$table::Entity::delete_many()
                    .filter(owner_filter!($table, $owner($($col),+), account_id))
                    .exec(db)
                    .await?;
                report.push((stringify!($table), deleted.rows_affected));
            )+
            Ok(report)
        }
    };
}

owned_tables! {
    transcript_words: interview(InterviewId) order(InterviewId, StartMs);
    answer_scores: interview(InterviewId) order(InterviewId, CreatedAt);
    answer_feedback: interview(InterviewId) order(InterviewId, SegmentIndex);
    scoring_jobs: account_or_interview(AccountId, InterviewId) order(RequestedAt);
    transcript_segments: interview(InterviewId) order(InterviewId, Seq);
    turn_metrics: interview(InterviewId) order(InterviewId, TurnIndex);
    usage_log: account_or_interview(AccountId, InterviewId) order(CreatedAt);
    skill_history: account(AccountId) order(RecordedAt);
    skill_levels: account(AccountId) order(Skill);
    interviews: account(AccountId) order(CreatedAt);
    refresh_tokens: account(AccountId) order(CreatedAt);
    account_settings: account(AccountId);
    consent_events: account(AccountId) order(CreatedAt);
    byok_keys: account(AccountId);
    resume_profiles: account(AccountId);
    policy_acceptances: account(AccountId) order(AcceptedAt);
    interview_quotas: account(AccountId);
    abuse_signals: account(AccountId) order(CreatedAt);
    abuse_reviews: account(AccountId);
    email_verifications: account(AccountId) order(CreatedAt);
    digest_marks: account(AccountId);
}

/// Tables kept when an account is erased, and why.
pub const RETAINED: &[Table] = &[
    Table {
        name: "policy_versions",
        holds: Holds::Retained("the policy texts everyone accepted; shared, no personal data"),
    },
    Table {
        name: "admin_audit",
        holds: Holds::Retained("staff actions by id and action code; no personal data"),
    },
    Table {
        name: "abuse_ledger",
        holds: Holds::Retained(
            "keyed hashes of mailboxes that held an account, kept ABUSE_LEDGER_DAYS after they \
             were last recorded to prevent abuse of the free allocation (the privacy policy \
             says so); no account column, so nothing in it names the account",
        ),
    },
    Table {
        name: "signup_ip_counts",
        holds: Holds::Retained(
            "sign-ups per keyed hash of a client address per day, swept when the day is over; \
             no account column",
        ),
    },
];

/// Retained tables with no column that names an account: nothing in them can be found for one
/// account, so the export has no section for them (and erasure leaves them, as every retained
/// table).
pub const UNLINKED: &[&str] = &["abuse_ledger", "signup_ip_counts"];

/// Every table of the schema with what it holds of an account.
pub fn all() -> Vec<Table> {
    let mut tables = vec![Table {
        name: "accounts",
        holds: Holds::Account,
    }];
    tables.extend(OWNED.iter().map(|&name| Table {
        name,
        holds: Holds::Owned,
    }));
    tables.extend_from_slice(RETAINED);
    tables
}

/// The names of every table of the schema.
pub fn names() -> Vec<&'static str> {
    all().into_iter().map(|table| table.name).collect()
}

/// The names of the tables the export has a section for: every table but the [`UNLINKED`].
pub fn exported_names() -> Vec<&'static str> {
    names()
        .into_iter()
        .filter(|name| !UNLINKED.contains(name))
        .collect()
}

/// The names of the tables kept at erasure.
pub fn retained_names() -> Vec<&'static str> {
    RETAINED.iter().map(|table| table.name).collect()
}

/// The export's JSON array of `rows` (the models leave out their secret columns).
pub(crate) fn rows<T: serde::Serialize>(rows: Vec<T>) -> Result<Value, ApiError> {
    serde_json::to_value(rows)
        .map_err(|error| ApiError::Unexpected(anyhow::anyhow!("serializing the export: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_is_listed_once() {
        let names = names();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            unique.len(),
            names.len(),
            "a table is listed twice: {names:?}"
        );
    }

    #[test]
    fn unlinked_tables_are_retained_ones() {
        for name in UNLINKED {
            assert!(retained_names().contains(name), "{name}");
        }
    }

    #[test]
    fn children_are_erased_before_their_parents() {
        let position = |name: &str| OWNED.iter().position(|t| *t == name).unwrap();
        for child in [
            "transcript_words",
            "answer_scores",
            "answer_feedback",
            "scoring_jobs",
            "transcript_segments",
            "turn_metrics",
        ] {
            assert!(position(child) < position("interviews"), "{child}");
        }
        assert!(position("transcript_words") < position("transcript_segments"));
    }
}
