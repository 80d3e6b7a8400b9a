//! The rights of access, portability and erasure over everything held about an account.
//!
//! Both walk the one descriptor of the schema, [`crate::accounts::tables`]: the tables an
//! account owns are exported and erased from it, and the tests compare it with the database, so
//! a new table cannot be forgotten by either.

use chrono::Utc;
use engine::AccountId;
use entities::prelude::*;
use entities::{accounts, admin_audit, policy_acceptances, policy_versions};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
};
use serde_json::{Map, Value, json};

use crate::accounts::tables::{erase_owned, export_owned, rows};
use crate::error::ApiError;

/// The version of the export document's shape.
pub const EXPORT_FORMAT: &str = "interviewcraft.export.v1";

/// Everything held about an account, as one JSON document: one array per table (secrets such as
/// the password hash, token hashes and key ciphertexts are never part of it).
pub async fn export_account(
    db: &DatabaseConnection,
    account_id: AccountId,
) -> Result<Value, ApiError> {
    let account = Accounts::find_by_id(account_id)
        .one(db)
        .await?
        .ok_or(ApiError::NotFound)?;
    let mut tables = Map::new();
    tables.insert("accounts".into(), rows(vec![account])?);
    export_owned(db, account_id, &mut tables).await?;
    // Retained tables, by hand: the policy versions the account accepted (shared texts), and
    // staff actions on this account: what and when (the staff member's id is not the user's
    // data).
    let accepted = PolicyAcceptances::find()
        .filter(policy_acceptances::Column::AccountId.eq(account_id))
        .all(db)
        .await?
        .into_iter()
        .map(|a| a.policy_version_id)
        .collect::<Vec<_>>();
    let versions = PolicyVersions::find()
        .filter(policy_versions::Column::Id.is_in(accepted))
        .order_by_asc(policy_versions::Column::Id)
        .all(db)
        .await?;
    tables.insert("policy_versions".into(), rows(versions)?);
    let audit: Vec<Value> = AdminAudit::find()
        .filter(admin_audit::Column::TargetId.eq(account_id))
        .order_by_asc(admin_audit::Column::CreatedAt)
        .all(db)
        .await?
        .into_iter()
        .map(|row| json!({"id": row.id, "action": row.action, "created_at": row.created_at}))
        .collect();
    tables.insert("admin_audit".into(), Value::Array(audit));

    Ok(json!({
        "format": EXPORT_FORMAT,
        "exported_at": Utc::now(),
        "account_id": account_id,
        "tables": tables,
    }))
}

/// What an erasure removed, per table (row counts only).
pub type ErasureReport = Vec<(&'static str, u64)>;

/// Deletes every row of an account in one transaction, children first (the foreign keys would
/// cascade too; deleting explicitly keeps erasure correct even where a cascade is missing).
/// The admin audit keeps its id-only rows: they hold no personal data. The account's mailbox is
/// recorded in the abuse ledger (a keyed hash, no account id) so that it stays there for the
/// stated period after the erasure (`crate::abuse`).
pub async fn erase_account(
    db: &DatabaseConnection,
    account_id: AccountId,
    ledger_key: &crate::abuse::LedgerKey,
) -> Result<ErasureReport, ApiError> {
    let txn = engine::database::begin_write(db).await?;
    let report = erase_in(&txn, account_id, ledger_key).await?;
    txn.commit().await?;
    crate::startup::scrub_after_erasure(db, &erased_tables(&report)).await;
    Ok(report)
}

/// The tables an erasure deleted rows from.
pub(crate) fn erased_tables(report: &ErasureReport) -> Vec<&'static str> {
    report
        .iter()
        .filter(|(_, rows)| *rows > 0)
        .map(|(table, _)| *table)
        .collect()
}

/// The erasure itself, inside the caller's transaction (the admin route adds its audit row).
pub(crate) async fn erase_in(
    db: &impl ConnectionTrait,
    account_id: AccountId,
    ledger_key: &crate::abuse::LedgerKey,
) -> Result<ErasureReport, ApiError> {
    let Some(account) = Accounts::find_by_id(account_id).one(db).await? else {
        return Err(ApiError::NotFound);
    };
    if let Ok(email) = crate::domain::Email::parse(&account.email) {
        crate::abuse::ledger::record(db, &ledger_key.mailbox(&email), chrono::Utc::now()).await?;
    }
    let mut report = erase_owned(db, account_id).await?;
    let deleted = Accounts::delete_many()
        .filter(accounts::Column::Id.eq(account_id))
        .exec(db)
        .await?;
    report.push(("accounts", deleted.rows_affected));
    Ok(report)
}
