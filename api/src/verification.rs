//! Mailbox verification by e-mail link, before the first free interview — when the server can
//! send mail (`SMTP_URL`). Without SMTP (keyless local mode, a newcomer's `cargo run`) nothing
//! is required and nothing changes.
//!
//! - Sign-up and an e-mail change send a link with a single-use token (256 random bits) that
//!   expires after [`LINK_LIFETIME`]; only the token's SHA-256 is stored (`email_verifications`).
//!   An e-mail change also clears `accounts.email_verified_at` and withdraws the links sent to
//!   the old address.
//! - Following the link (`GET /api/v1/auth/verify-email?token=…`, or the same token in a `POST`)
//!   sets `accounts.email_verified_at`; a used or expired link answers 410.
//! - `POST /api/v1/auth/verification` sends a new link: at most one per [`RESEND_INTERVAL`]
//!   and [`LINKS_PER_DAY`] a day per account, counted in the stored links (so across nodes).
//! - An offer on platform keys by an unverified account is refused with 403
//!   `email_not_verified` (`crate::free_interviews::gate`); BYOK and local-mode interviews are
//!   never blocked.
//!
//! Neither the address nor the token is ever logged: sends are logged with the account id and a
//! failure kind only.

use chrono::{DateTime, Duration, Utc};
use engine::AccountId;
use entities::{accounts, email_verifications};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};

use crate::auth::refresh;
use crate::digest::Mailer;

/// How long a link works.
pub const LINK_LIFETIME: Duration = Duration::hours(24);
/// The least time between two links to one account.
pub const RESEND_INTERVAL: Duration = Duration::seconds(60);
/// Links per account within [`LINK_LIFETIME`] (sign-up's included).
pub const LINKS_PER_DAY: usize = 5;

/// A new link's token, to put in the e-mail only.
pub struct LinkToken(String);

impl LinkToken {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for LinkToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkToken([REDACTED])")
    }
}

/// Stores a new link for the account (in the caller's transaction) and returns its token.
pub async fn issue(
    db: &impl ConnectionTrait,
    account_id: AccountId,
    now: DateTime<Utc>,
) -> Result<LinkToken, DbErr> {
    // The same 256-bit random tokens, stored as SHA-256, as refresh tokens.
    let token = refresh::generate();
    email_verifications::Entity::insert(email_verifications::ActiveModel {
        token_hash: Set(refresh::hash(&token)),
        account_id: Set(account_id),
        created_at: Set(now),
        expires_at: Set(now + LINK_LIFETIME),
        used_at: Set(None),
    })
    .exec_without_returning(db)
    .await?;
    Ok(LinkToken(token))
}

/// Withdraws the account's unused links (its address changed: they were sent to the old one).
pub async fn withdraw(db: &impl ConnectionTrait, account_id: AccountId) -> Result<(), DbErr> {
    email_verifications::Entity::delete_many()
        .filter(email_verifications::Column::AccountId.eq(account_id))
        .filter(email_verifications::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// How long the account must wait before another link, given when its recent links were sent
/// (any order); `None`: it may have one now.
pub fn resend_wait(sent: &[DateTime<Utc>], now: DateTime<Utc>) -> Option<std::time::Duration> {
    let recent: Vec<DateTime<Utc>> = sent
        .iter()
        .copied()
        .filter(|at| *at > now - LINK_LIFETIME)
        .collect();
    let wait = |until: DateTime<Utc>| (until - now).to_std().ok().filter(|wait| !wait.is_zero());
    if let Some(latest) = recent.iter().max()
        && let Some(wait) = wait(*latest + RESEND_INTERVAL)
    {
        return Some(wait);
    }
    if recent.len() >= LINKS_PER_DAY {
        let mut sorted = recent;
        sorted.sort_unstable();
        // The day's count goes below the limit when the oldest counted link ages out.
        let oldest_counted = sorted[sorted.len() - LINKS_PER_DAY];
        return wait(oldest_counted + LINK_LIFETIME);
    }
    None
}

/// When the account's links of the last [`LINK_LIFETIME`] were sent.
pub async fn recent_links(
    db: &impl ConnectionTrait,
    account_id: AccountId,
    now: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, DbErr> {
    Ok(email_verifications::Entity::find()
        .filter(email_verifications::Column::AccountId.eq(account_id))
        .filter(email_verifications::Column::CreatedAt.gt(now - LINK_LIFETIME))
        .order_by_asc(email_verifications::Column::CreatedAt)
        .all(db)
        .await?
        .into_iter()
        .map(|link| link.created_at)
        .collect())
}

/// What following a link did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The account's mailbox is verified (now, or it already was).
    Verified {
        account_id: AccountId,
    },
    /// No such link (never issued, withdrawn after an e-mail change, or swept after expiry).
    Unknown,
    /// Already followed once.
    Used,
    Expired,
}

/// Follows a link in the caller's transaction. One conditional update marks it used, so two
/// concurrent uses of one link verify once and the other is told it was used.
pub async fn follow(
    db: &impl ConnectionTrait,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Outcome, DbErr> {
    let hash = refresh::hash(token);
    let Some(link) = email_verifications::Entity::find_by_id(hash.clone())
        .one(db)
        .await?
    else {
        return Ok(Outcome::Unknown);
    };
    if link.used_at.is_some() {
        return Ok(Outcome::Used);
    }
    if link.expires_at <= now {
        return Ok(Outcome::Expired);
    }
    let marked = email_verifications::Entity::update_many()
        .col_expr(email_verifications::Column::UsedAt, Expr::value(Some(now)))
        .filter(email_verifications::Column::TokenHash.eq(hash))
        .filter(email_verifications::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    if marked.rows_affected != 1 {
        return Ok(Outcome::Used);
    }
    accounts::Entity::update_many()
        .col_expr(accounts::Column::EmailVerifiedAt, Expr::value(Some(now)))
        .filter(accounts::Column::Id.eq(link.account_id))
        .filter(accounts::Column::EmailVerifiedAt.is_null())
        .exec(db)
        .await?;
    Ok(Outcome::Verified {
        account_id: link.account_id,
    })
}

/// The link's text.
pub fn compose(link: &str) -> String {
    format!(
        "Welcome to InterviewCraft.\n\n\
         Please confirm that this is your e-mail address by opening this link within 24 hours:\n\n\
         {link}\n\n\
         Your free interviews start once the address is confirmed. If you did not sign up for \
         InterviewCraft, ignore this e-mail: nothing happens without the link.\n"
    )
}

/// The link to put in the e-mail: the public address of this server.
pub fn link(public_url: &str, token: &LinkToken) -> String {
    format!(
        "{}/api/v1/auth/verify-email?token={}",
        public_url.trim_end_matches('/'),
        token.as_str()
    )
}

/// Sends the link in the background (a slow or failing SMTP server never holds up the
/// request); a failure is logged by kind with the account id, and the user can ask for a new
/// link.
pub fn send_in_background(
    mailer: Mailer,
    public_url: &str,
    account_id: AccountId,
    to: String,
    token: LinkToken,
) {
    let text = compose(&link(public_url, &token));
    tokio::spawn(async move {
        match mailer
            .send_text(&to, "Confirm your e-mail address for InterviewCraft", text)
            .await
        {
            Ok(()) => tracing::info!(%account_id, "mailbox verification link sent"),
            Err(kind) => tracing::warn!(
                %account_id,
                failure = %kind,
                "a mailbox verification link could not be sent; the account can ask for another"
            ),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-15T12:00:00Z")
            .expect("date")
            .with_timezone(&Utc)
            + Duration::minutes(minutes)
    }

    #[test]
    fn a_new_link_waits_a_minute_after_the_last_and_five_a_day() {
        assert_eq!(resend_wait(&[], at(0)), None);
        assert_eq!(
            resend_wait(&[at(0)], at(0) + Duration::seconds(20)),
            Some(std::time::Duration::from_secs(40))
        );
        assert_eq!(resend_wait(&[at(0)], at(1)), None);
        let five = [at(0), at(10), at(20), at(30), at(40)];
        // The sixth waits until the first of the five is a day old.
        assert_eq!(
            resend_wait(&five, at(50)),
            Some(std::time::Duration::from_secs((24 * 60 - 50) as u64 * 60))
        );
        assert_eq!(resend_wait(&five, at(24 * 60 + 1)), None);
        // Order does not matter.
        let shuffled = [at(40), at(0), at(30), at(10), at(20)];
        assert_eq!(resend_wait(&shuffled, at(50)), resend_wait(&five, at(50)));
    }

    #[test]
    fn the_link_carries_the_token_and_the_mail_nothing_else_secret() {
        let token = LinkToken("abc_DEF-123".into());
        let link = link("https://interviewcraft.example/", &token);
        assert_eq!(
            link,
            "https://interviewcraft.example/api/v1/auth/verify-email?token=abc_DEF-123"
        );
        assert!(compose(&link).contains(&link));
        assert!(compose(&link).is_ascii());
        assert!(!format!("{token:?}").contains("abc"));
    }
}
