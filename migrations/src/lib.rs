//! Schema history of InterviewCraft, append-only.
//!
//! Every migration is named after the day it was written and has an `up` and a `down`. Never edit
//! a migration that has shipped: add a new one. The server runs pending migrations at start
//! (`interviewcraft migrate` runs them alone).
//!
//! Privacy rule kept by the schema: every table that holds an account's data references
//! `accounts.id` with `ON DELETE CASCADE` (directly, or through `interviews`), so deleting the
//! account row erases the account; the erasure test checks every table.

pub use sea_orm_migration::prelude::*;

mod helpers;
mod m20261126_000001_accounts;
mod m20261126_000002_privacy;
mod m20261126_000003_interviews;
mod m20261126_000004_usage_and_audit;
mod m20261126_000005_turn_wait;
mod m20261201_000010_feedback;
mod m20261201_000020_digest_marks;
mod m20261201_000030_turn_parts;
mod m20261205_000040_scoring_claims;
mod m20261205_000050_abuse_ledger;

/// All migrations, in the order they apply.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_accounts::Migration),
            Box::new(m20261126_000002_privacy::Migration),
            Box::new(m20261126_000003_interviews::Migration),
            Box::new(m20261126_000004_usage_and_audit::Migration),
            Box::new(m20261126_000005_turn_wait::Migration),
            Box::new(m20261201_000010_feedback::Migration),
            Box::new(m20261201_000020_digest_marks::Migration),
            Box::new(m20261201_000030_turn_parts::Migration),
            Box::new(m20261205_000040_scoring_claims::Migration),
            Box::new(m20261205_000050_abuse_ledger::Migration),
        ]
    }
}
