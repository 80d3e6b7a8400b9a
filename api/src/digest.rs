//! The weekly digest: an e-mail to each account that opted in (`account_settings.digest_opt_in`)
//! with its interviews of the past seven days, its skill levels and trends, and its next drills,
//! sent over SMTP (`SMTP_URL`, with `lettre`). Without `SMTP_URL` no digest is sent, which the
//! log says once at start.
//!
//! Once per ISO week per account, across nodes: a run holds a PostgreSQL advisory lock (as the
//! retention sweep does; SQLite is one node), and each account is claimed before its digest is
//! sent by a conditional write of the week into `digest_marks` (the only thing recorded: the
//! digest's content is never stored). A send that fails gives the claim back, so the next run
//! tries again. Opting out takes effect at the next run: only accounts opted in at that moment
//! are read.
//!
//! E-mail addresses are never logged, nor are SMTP errors' texts (a server's reply can quote the
//! recipient): failures are logged by kind only.

use std::time::Duration;

use chrono::{DateTime, Datelike, Utc};
use engine::AccountId;
use engine::feedback::FeedbackConfig;
use engine::feedback::drills::plan;
use engine::feedback::skills::Trend;
use entities::{account_settings, accounts, digest_marks, interviews};
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr,
    EntityTrait, QueryFilter, QueryOrder, Statement,
};
use secrecy::ExposeSecret;

use crate::configuration::Settings;

/// The advisory lock of a digest run (next to the retention sweep's `0x1c_5eed_0001`).
pub const DIGEST_LOCK_KEY: i64 = 0x1c_5eed_0002;

/// Checks the digest settings (called by `Settings::validate`).
pub fn validate_settings(settings: &Settings) -> Result<(), String> {
    if let Some(url) = &settings.smtp_url {
        let url = url.expose_secret();
        if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
            return Err("SMTP_URL must start with smtp:// or smtps://".into());
        }
        // The parse error can quote the URL (credentials): only say that it failed.
        AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|_| "SMTP_URL is not a valid SMTP URL".to_owned())?;
    }
    settings
        .digest_from
        .parse::<Mailbox>()
        .map_err(|_| "DIGEST_FROM is not a valid mailbox (`Name <address>`)".to_owned())?;
    if settings.digest_interval_secs == 0 {
        return Err("DIGEST_INTERVAL_SECS must be at least 1".into());
    }
    Ok(())
}

/// Where digests go, and from whom.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The configured drill planner's settings (`[feedback]`), for the next drills.
    feedback: FeedbackConfig,
}

impl Mailer {
    /// The mailer of the settings; `None` without `SMTP_URL`.
    pub fn from_settings(settings: &Settings) -> Result<Option<Self>, String> {
        let Some(url) = &settings.smtp_url else {
            return Ok(None);
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
            .map_err(|_| "SMTP_URL is not a valid SMTP URL".to_owned())?
            .timeout(Some(Duration::from_secs(30)))
            .build();
        let from = settings
            .digest_from
            .parse()
            .map_err(|_| "DIGEST_FROM is not a valid mailbox".to_owned())?;
        Ok(Some(Self {
            transport,
            from,
            feedback: settings.feedback.clone(),
        }))
    }
}

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DigestReport {
    pub sent: usize,
    pub failed: usize,
    /// Opted-in accounts that had theirs this week already.
    pub already_sent: usize,
}

/// The ISO week of `now`, as stored: `2026-W49`.
pub fn week_of(now: DateTime<Utc>) -> String {
    let week = now.iso_week();
    format!("{}-W{:02}", week.year(), week.week())
}

/// Starts the periodic digest job (a run at start, then one per `DIGEST_INTERVAL_SECS`), or
/// says once that digests are off.
pub fn start(db: DatabaseConnection, settings: &Settings) -> Result<(), String> {
    let Some(mailer) = Mailer::from_settings(settings)? else {
        tracing::info!("SMTP_URL is not set: no weekly digests are sent");
        return Ok(());
    };
    tracing::info!("weekly digests are on");
    let interval = Duration::from_secs(settings.digest_interval_secs);
    actix_web::rt::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match run_once(&db, &mailer, Utc::now()).await {
                Ok(Some(report)) if report.sent + report.failed > 0 => {
                    tracing::info!(sent = report.sent, failed = report.failed, "weekly digests");
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(error = %error, "the weekly digest run failed"),
            }
        }
    });
    Ok(())
}

/// Takes the digest lock for the transaction if free (always on SQLite: one node).
async fn try_lock(db: &impl ConnectionTrait) -> Result<bool, DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(true);
    }
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("SELECT pg_try_advisory_xact_lock({DIGEST_LOCK_KEY}) AS locked"),
        ))
        .await?;
    Ok(row
        .map(|row| row.try_get::<bool>("", "locked"))
        .transpose()?
        .unwrap_or(false))
}

/// One run as of `now`: every opted-in account without this week's digest gets one. `None`:
/// another node is running (it holds the lock).
pub async fn run_once(
    db: &DatabaseConnection,
    mailer: &Mailer,
    now: DateTime<Utc>,
) -> Result<Option<DigestReport>, DbErr> {
    // The lock lives as long as this transaction; the claims and reads use the pool, so each
    // claim is committed before its e-mail goes out.
    let lock = if db.get_database_backend() == DbBackend::Postgres {
        let txn = engine::database::begin_write(db).await?;
        if !try_lock(&txn).await? {
            return Ok(None);
        }
        Some(txn)
    } else {
        None
    };
    let week = week_of(now);
    let opted_in: Vec<AccountId> = account_settings::Entity::find()
        .filter(account_settings::Column::DigestOptIn.eq(true))
        .order_by_asc(account_settings::Column::AccountId)
        .all(db)
        .await?
        .into_iter()
        .map(|row| row.account_id)
        .collect();
    let mut report = DigestReport::default();
    for account_id in opted_in {
        let Some(account) = accounts::Entity::find_by_id(account_id)
            .filter(accounts::Column::DisabledAt.is_null())
            .one(db)
            .await?
        else {
            continue;
        };
        let Some(previous) = claim(db, account_id, &week).await? else {
            report.already_sent += 1;
            continue;
        };
        let sent = match compose(db, &mailer.feedback, &account, now).await {
            Ok(text) => send(mailer, &account.email, text).await,
            Err(error) => Err(format!("composing: {error}")),
        };
        match sent {
            Ok(()) => report.sent += 1,
            Err(kind) => {
                report.failed += 1;
                tracing::warn!(%account_id, failure = %kind, "a weekly digest could not be sent; retried at the next run");
                unclaim(db, account_id, &week, previous).await?;
            }
        }
    }
    if let Some(txn) = lock {
        txn.commit().await?;
    }
    Ok(Some(report))
}

/// Claims this week's digest for the account: `Some(previous week marker)` when this run is
/// the one to send it, `None` when it was sent (or claimed) this week already.
async fn claim(
    db: &DatabaseConnection,
    account_id: AccountId,
    week: &str,
) -> Result<Option<Option<String>>, DbErr> {
    match digest_marks::Entity::find_by_id(account_id).one(db).await? {
        None => {
            let inserted = digest_marks::ActiveModel {
                account_id: sea_orm::ActiveValue::Set(account_id),
                last_week: sea_orm::ActiveValue::Set(week.to_owned()),
            }
            .insert(db)
            .await;
            match inserted {
                Ok(_) => Ok(Some(None)),
                // Another node inserted it first.
                Err(error)
                    if matches!(
                        error.sql_err(),
                        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                    ) =>
                {
                    Ok(None)
                }
                Err(error) => Err(error),
            }
        }
        Some(mark) if mark.last_week == week => Ok(None),
        Some(mark) => {
            let updated = digest_marks::Entity::update_many()
                .col_expr(digest_marks::Column::LastWeek, Expr::value(week.to_owned()))
                .filter(digest_marks::Column::AccountId.eq(account_id))
                .filter(digest_marks::Column::LastWeek.eq(mark.last_week.clone()))
                .exec(db)
                .await?;
            Ok((updated.rows_affected == 1).then_some(Some(mark.last_week)))
        }
    }
}

/// Gives a claim back after a failed send.
async fn unclaim(
    db: &DatabaseConnection,
    account_id: AccountId,
    week: &str,
    previous: Option<String>,
) -> Result<(), DbErr> {
    let mine = digest_marks::Column::AccountId
        .eq(account_id)
        .and(digest_marks::Column::LastWeek.eq(week.to_owned()));
    match previous {
        Some(previous) => {
            digest_marks::Entity::update_many()
                .col_expr(digest_marks::Column::LastWeek, Expr::value(previous))
                .filter(mine)
                .exec(db)
                .await?;
        }
        None => {
            digest_marks::Entity::delete_many()
                .filter(mine)
                .exec(db)
                .await?;
        }
    }
    Ok(())
}

fn kind_name(kind: entities::interviews::InterviewKind) -> &'static str {
    match kind {
        entities::interviews::InterviewKind::Behavioral => "behavioral",
        entities::interviews::InterviewKind::SystemDesign => "system design",
        entities::interviews::InterviewKind::Technical => "technical",
    }
}

fn trend_word(trend: Trend) -> &'static str {
    match trend {
        Trend::Improving => "improving",
        Trend::Stable => "steady",
        Trend::Declining => "slipping",
    }
}

/// The digest's text (plain, ASCII): this week's interviews, skill trends, next drills.
pub async fn compose(
    db: &DatabaseConnection,
    feedback: &FeedbackConfig,
    account: &accounts::Model,
    now: DateTime<Utc>,
) -> Result<String, DbErr> {
    let since = now - chrono::Duration::days(7);
    let held: Vec<interviews::Model> = interviews::Entity::find()
        .filter(interviews::Column::AccountId.eq(account.id))
        .filter(interviews::Column::StartedAt.gte(since))
        .filter(interviews::Column::StartedAt.lte(now))
        .order_by_asc(interviews::Column::StartedAt)
        .all(db)
        .await?;
    let skills = crate::feedback::store::skill_states(db, account.id).await?;
    let settings = account_settings::Entity::find_by_id(account.id)
        .one(db)
        .await?;
    let drills = plan(
        feedback,
        &skills,
        now.date_naive(),
        settings.and_then(|settings| settings.target_interview_date),
    );

    let mut text = String::from("Your week on InterviewCraft\n\n");
    match held.len() {
        0 => text.push_str("Interviews this week: none. A short one keeps the habit going.\n"),
        n => {
            text.push_str(&format!("Interviews this week: {n}\n"));
            for interview in &held {
                let day = interview
                    .started_at
                    .map(|at| at.format("%a %d %b").to_string())
                    .unwrap_or_default();
                text.push_str(&format!(
                    "- {day}: {}, {} minutes\n",
                    kind_name(interview.kind),
                    interview.planned_minutes
                ));
            }
        }
    }
    text.push_str("\nSkill trends:\n");
    if skills.is_empty() {
        text.push_str("- no skill levels yet: they appear after your first scored answer\n");
    }
    for skill in &skills {
        text.push_str(&format!(
            "- {}: {:.0} ({}, best {:.0})\n",
            skill.skill,
            skill.level,
            trend_word(skill.trend),
            skill.best_level
        ));
    }
    text.push_str("\nNext drills:\n");
    if drills.slots.is_empty() {
        text.push_str("- none planned yet\n");
    }
    for slot in drills.slots.iter().take(5) {
        text.push_str(&format!(
            "- {}: {} ({}, {} question{})\n",
            slot.day.format("%a %d %b"),
            slot.skill,
            slot.focus,
            slot.questions,
            if slot.questions == 1 { "" } else { "s" }
        ));
    }
    text.push_str("\nYou get this e-mail because you turned on the weekly digest.\n");
    text.push_str("Turn it off any time under Settings.\n");
    // Plain ASCII keeps the message 7-bit; anything else (never expected) becomes '?'.
    Ok(text
        .chars()
        .map(|c| if c.is_ascii() { c } else { '?' })
        .collect())
}

/// Sends one digest; the error is a kind, never the server's text.
async fn send(mailer: &Mailer, to: &str, text: String) -> Result<(), String> {
    mailer.send_text(to, "Your InterviewCraft week", text).await
}

impl Mailer {
    /// Sends a plain-text message from `DIGEST_FROM` to `to` (the digest, and the mailbox
    /// verification links); the error is a kind, never the server's text (which can quote the
    /// recipient).
    pub async fn send_text(&self, to: &str, subject: &str, text: String) -> Result<(), String> {
        let to: Mailbox = to
            .parse()
            .map_err(|_| "the account's address is not a mailbox".to_owned())?;
        // Short ASCII lines go as they are; anything else lettre encodes (quoted-printable).
        let body = Body::new_with_encoding(text, ContentTransferEncoding::SevenBit)
            .unwrap_or_else(Body::new);
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|_| "building the message failed".to_owned())?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|error| {
                if error.is_permanent() {
                    "permanent SMTP error".to_owned()
                } else if error.is_transient() {
                    "transient SMTP error".to_owned()
                } else if error.is_timeout() {
                    "SMTP timeout".to_owned()
                } else {
                    "SMTP connection or protocol error".to_owned()
                }
            })
    }
}
