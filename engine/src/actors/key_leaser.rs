//! `KeyLeaser`: the process-wide owner of every decrypted BYOK key. An interview's start
//! asks it for a [`Lease`] (it decrypts the account's keys once and keeps them in its
//! [`LeaseBook`]); the interview's vendor clients get [`crate::vendors::key::KeyHandle`]s, never
//! the keys as strings. The interview's end sends [`Release`]; a timer expires leases whose
//! deadline (planned length + grace) passed; [`RevokeAccount`] (from the HTTP layer: a key
//! deleted or replaced, a password change, erasure, an admin disable, `rotate-keys`) swaps the
//! account's own keys for the platform's, or revokes them, at once. The same timer also
//! reconciles the leases with the database ([`LeaseBook::reconcile`]), so a change made by
//! another process (the `rotate-keys` command, another node) revokes within one
//! `key_lease.check_every`.
//!
//! [`Lease`] is handled atomically (the mailbox waits for its database read), so a revocation
//! sent after the key row changed can never be overtaken by a lease that read the old row.

use std::time::{Duration, Instant};

use crate::byok_cipher::KeyRing;
use crate::ids::{AccountId, InterviewId};
use actix::prelude::*;
use prometheus_client::metrics::gauge::Gauge;
use sea_orm::{DatabaseConnection, DbErr};

use crate::key_lease::{KeyLeaseConfig, PlatformKeys, decrypt_own_keys, stored_accounts};
use crate::lease_book::{LeaseBook, LeasedKeys, deadline};
use crate::vendors::Vendor;

/// Sent by the engine as an interview starts: its keys for `providers`, until its planned
/// length plus the configured grace.
#[derive(Message)]
#[rtype(result = "Result<LeasedKeys, DbErr>")]
pub struct Lease {
    pub account: AccountId,
    pub interview: InterviewId,
    pub providers: Vec<Vendor>,
    pub planned: Duration,
}

/// Sent by the engine when an interview's actor stopped (or its start failed): the lease's
/// keys are revoked and zeroized. Answers whether there was a lease.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct Release {
    pub interview: InterviewId,
}

/// Sent by the HTTP layer after any change that withdraws the account's own keys. Answers
/// how many live leases held one.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct RevokeAccount {
    pub account: AccountId,
}

/// Sent by the admin user summary: whether the account has a live lease.
#[derive(Message)]
#[rtype(result = "LeaseStatus")]
pub struct AccountLeases {
    pub account: AccountId,
}

/// An account's leases, without any key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LeaseStatus {
    /// A live interview of the account holds a key lease.
    pub live: bool,
    /// That lease still holds one of the account's own keys.
    pub own_keys: bool,
}

/// Sent by the leaser's timer (and tests): expires the leases due at `now`.
#[derive(Message)]
#[rtype(result = "Vec<InterviewId>")]
pub struct ExpireDue {
    pub now: Instant,
}

/// The `/metrics` gauges the leaser keeps current (counts only, no account ids).
#[derive(Debug, Clone, Default)]
pub struct LeaseGauges {
    /// Live key leases.
    pub live: Gauge,
    /// Live key leases holding at least one of their account's own keys.
    pub own_keys: Gauge,
}

pub struct KeyLeaser {
    db: DatabaseConnection,
    ring: KeyRing,
    config: KeyLeaseConfig,
    book: LeaseBook,
    gauges: LeaseGauges,
}

impl KeyLeaser {
    pub fn new(
        db: DatabaseConnection,
        ring: KeyRing,
        platform: &PlatformKeys,
        config: KeyLeaseConfig,
    ) -> Self {
        Self {
            db,
            ring,
            config,
            book: LeaseBook::new(platform.by_provider()),
            gauges: LeaseGauges::default(),
        }
    }

    /// The gauges (shared: register them once, they follow the book).
    pub fn gauges(&self) -> LeaseGauges {
        self.gauges.clone()
    }

    fn update_gauges(&self) {
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.gauges.live.set(count(self.book.live()));
        self.gauges
            .own_keys
            .set(count(self.book.live_with_own_keys()));
    }

    fn expire(&mut self, now: Instant) -> Vec<InterviewId> {
        let expired = self.book.expire(now);
        for interview_id in &expired {
            tracing::warn!(%interview_id, "a key lease passed its deadline unreleased; its keys are revoked");
        }
        if !expired.is_empty() {
            self.update_gauges();
        }
        expired
    }
}

impl KeyLeaser {
    /// Reads the stored state of every account whose leases hold its own keys and revokes
    /// what changed. The mailbox waits for it, so no lease interleaves with a stale read.
    fn reconcile(&mut self, ctx: &mut Context<Self>) {
        let accounts = self.book.accounts_holding_own_keys();
        if accounts.is_empty() {
            return;
        }
        let db = self.db.clone();
        ctx.wait(
            async move { stored_accounts(&db, &accounts).await.map(|s| (accounts, s)) }
                .into_actor(self)
                .map(|read, leaser, _| match read {
                    Ok((accounts, stored)) => {
                        let mut revoked = 0;
                        for account in accounts {
                            revoked += leaser.book.reconcile(account, stored.get(&account));
                        }
                        if revoked > 0 {
                            tracing::info!(leases = revoked, "stored key or account changes revoked live leases");
                            leaser.update_gauges();
                        }
                    }
                    Err(error) => {
                        tracing::warn!(error = %error, "reading accounts to reconcile key leases failed");
                    }
                }),
        );
    }
}

impl Actor for KeyLeaser {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.config.check_every, |leaser, ctx| {
            leaser.expire(Instant::now());
            leaser.reconcile(ctx);
        });
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        // Dropping the book drops every key; revoke first so no client keeps using one.
        self.book.release_all();
        self.update_gauges();
    }
}

impl Handler<Lease> for KeyLeaser {
    type Result = AtomicResponse<Self, Result<LeasedKeys, DbErr>>;

    fn handle(&mut self, msg: Lease, _ctx: &mut Self::Context) -> Self::Result {
        let db = self.db.clone();
        let ring = self.ring.clone();
        let Lease {
            account,
            interview,
            providers,
            planned,
        } = msg;
        let wanted = providers.clone();
        AtomicResponse::new(Box::pin(
            async move { decrypt_own_keys(&db, &ring, account, &wanted).await }
                .into_actor(self)
                .map(move |own, leaser, _| {
                    let own = own?;
                    let until = deadline(Instant::now(), planned, leaser.config.grace);
                    let keys = leaser.book.lease(
                        interview,
                        account,
                        &providers,
                        own.keys,
                        own.password_stamp,
                        until,
                    );
                    leaser.update_gauges();
                    Ok(keys)
                }),
        ))
    }
}

impl Handler<Release> for KeyLeaser {
    type Result = bool;

    fn handle(&mut self, msg: Release, _ctx: &mut Self::Context) -> bool {
        let released = self.book.release(msg.interview);
        self.update_gauges();
        released
    }
}

impl Handler<RevokeAccount> for KeyLeaser {
    type Result = usize;

    fn handle(&mut self, msg: RevokeAccount, _ctx: &mut Self::Context) -> usize {
        let revoked = self.book.revoke_account(msg.account);
        if revoked > 0 {
            tracing::info!(
                leases = revoked,
                "an account's own keys were revoked from its live interviews"
            );
        }
        self.update_gauges();
        revoked
    }
}

impl Handler<AccountLeases> for KeyLeaser {
    type Result = MessageResult<AccountLeases>;

    fn handle(&mut self, msg: AccountLeases, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(LeaseStatus {
            live: self.book.has_live_lease(msg.account),
            own_keys: self.book.holds_own_key(msg.account),
        })
    }
}

impl Handler<ExpireDue> for KeyLeaser {
    type Result = MessageResult<ExpireDue>;

    fn handle(&mut self, msg: ExpireDue, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.expire(msg.now))
    }
}
