//! The ledger's and the sign-up counts' writes, in the caller's transaction (see the module
//! above for what they hold and why the grant is atomic).

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use engine::AccountId;
use entities::{abuse_ledger, abuse_signals, accounts, signup_ip_counts};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, TryInsertResult};
use uuid::Uuid;

use super::{LedgerKey, MailboxHash, Signal, SignupDecision, SignupFacts, SignupRules};
use crate::domain::Email;

/// Inserts the mailbox's ledger row if it is not there: `true` when this call inserted it (the
/// mailbox's first use in the period); otherwise the row's time is renewed. On PostgreSQL an
/// insert of a key another open transaction inserted waits for that transaction, then does
/// nothing: of concurrent claims exactly one sees `true`.
pub async fn claim(
    db: &impl ConnectionTrait,
    mailbox: &MailboxHash,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let inserted = abuse_ledger::Entity::insert(abuse_ledger::ActiveModel {
        mailbox_hash: Set(mailbox.as_str().to_owned()),
        recorded_at: Set(now),
    })
    .on_conflict_do_nothing()
    .exec_without_returning(db)
    .await?;
    if matches!(inserted, TryInsertResult::Inserted(1)) {
        return Ok(true);
    }
    record(db, mailbox, now).await?;
    Ok(false)
}

/// Records the mailbox as used at `now` (inserted, or its time renewed), so it stays in the
/// ledger for the whole period from now: at an e-mail change (both mailboxes) and at erasure.
pub async fn record(
    db: &impl ConnectionTrait,
    mailbox: &MailboxHash,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    abuse_ledger::Entity::insert(abuse_ledger::ActiveModel {
        mailbox_hash: Set(mailbox.as_str().to_owned()),
        recorded_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(abuse_ledger::Column::MailboxHash)
            .update_column(abuse_ledger::Column::RecordedAt)
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Midnight UTC of `now`'s day: the window sign-ups per address are counted in.
pub fn day_start(now: DateTime<Utc>) -> DateTime<Utc> {
    now.date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|midnight| midnight.and_utc())
        .unwrap_or(now)
}

/// Counts one sign-up from `ip` today and returns today's count, this one included (one
/// upsert: concurrent sign-ups from one address each add one).
pub async fn count_signup(
    db: &impl ConnectionTrait,
    key: &LedgerKey,
    ip: IpAddr,
    now: DateTime<Utc>,
) -> Result<u32, DbErr> {
    let address = key.address(ip);
    let day = day_start(now);
    signup_ip_counts::Entity::insert(signup_ip_counts::ActiveModel {
        ip_hash: Set(address.as_str().to_owned()),
        day_start: Set(day),
        signups: Set(1),
    })
    .on_conflict(
        OnConflict::columns([
            signup_ip_counts::Column::IpHash,
            signup_ip_counts::Column::DayStart,
        ])
        .value(
            signup_ip_counts::Column::Signups,
            // Qualified: unqualified is ambiguous with `excluded` on PostgreSQL.
            Expr::col((signup_ip_counts::Entity, signup_ip_counts::Column::Signups)).add(1),
        )
        .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    let row = signup_ip_counts::Entity::find_by_id((address.as_str().to_owned(), day))
        .one(db)
        .await?;
    Ok(row.map_or(1, |row| u32::try_from(row.signups).unwrap_or(u32::MAX)))
}

/// Screens a sign-up inside its transaction: claims the mailbox in the ledger, counts the
/// client address, checks the domain, and decides the allocation.
pub async fn screen_signup(
    db: &impl ConnectionTrait,
    key: &LedgerKey,
    rules: SignupRules,
    email: &Email,
    ip: IpAddr,
    now: DateTime<Utc>,
) -> Result<SignupDecision, DbErr> {
    let first_in_ledger = claim(db, &key.mailbox(email), now).await?;
    // A live account whose ledger row was swept (signed up longer ago than the period) still
    // holds its mailbox.
    let held_by_live_account = accounts::Entity::find()
        .filter(accounts::Column::EmailCanonical.eq(email.canonical()))
        .one(db)
        .await?
        .is_some();
    let signups_from_address_today = count_signup(db, key, ip, now).await?;
    Ok(rules.decide(SignupFacts {
        mailbox_first_use: first_in_ledger && !held_by_live_account,
        disposable_domain: super::disposable::is_disposable(email.domain()),
        signups_from_address_today,
    }))
}

/// Stores the signals an account was flagged with.
pub async fn store_signals(
    db: &impl ConnectionTrait,
    account_id: AccountId,
    signals: &[Signal],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    for signal in signals {
        abuse_signals::Entity::insert(abuse_signals::ActiveModel {
            id: Set(Uuid::now_v7()),
            account_id: Set(account_id),
            kind: Set(signal.code().to_owned()),
            created_at: Set(now),
        })
        .exec_without_returning(db)
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counting_day_starts_at_midnight_utc() {
        let at = |text: &str| {
            DateTime::parse_from_rfc3339(text)
                .expect("date")
                .with_timezone(&Utc)
        };
        assert_eq!(
            day_start(at("2026-12-15T23:59:59Z")),
            at("2026-12-15T00:00:00Z")
        );
        assert_eq!(
            day_start(at("2026-12-16T00:00:00Z")),
            at("2026-12-16T00:00:00Z")
        );
    }
}
