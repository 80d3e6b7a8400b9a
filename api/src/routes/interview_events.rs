//! The live events of an interview over a WebSocket (actix-web-actors, one actor per
//! connection): `GET /api/v1/interviews/{id}/events?ticket=…`.
//!
//! # Authentication without the access token in a URL
//!
//! Browsers cannot set an `Authorization` header on a WebSocket, and a URL ends up in logs and
//! history. So the page first asks `POST /api/v1/interviews/{id}/events-ticket` (Bearer) for a
//! **ticket**: 32 random bytes (base64url), valid for [`TICKET_TTL`], for one connection to that
//! interview's events only, usable once. The server keeps only the ticket's SHA-256 (in memory,
//! on this node: the interview is live on this node too). A used, expired, unknown or
//! mismatched ticket is refused with 401 before the upgrade; someone else's interview never
//! gets a ticket (404, as for every other interview route).
//!
//! # Messages (server → browser, JSON text frames)
//!
//! - `{"type":"hello","interview_id":"…","live":true}` once subscribed.
//! - The engine's [`InterviewEvent`]s as they happen: `{"type":"state","phase":"listening"}`
//!   (connecting, greeting, listening, thinking, speaking, ending, ended),
//!   `{"type":"interim","text":"…"}`, `{"type":"final","text":"…"}`,
//!   `{"type":"interviewer_text","text":"…"}`, `{"type":"turn","breakdown":{"turn_index",
//!   "stt_final_ms","turn_wait_ms","llm_ttft_ms","tts_ttfa_ms","engine_overhead_ms","v2v_ms"}}`,
//!   `{"type":"ended","reason":"…"}`.
//! - `{"type":"lagged","missed":n}` if this socket fell more than
//!   [`engine::engine::EVENT_BUFFER`] events behind.
//!
//! The socket may be opened before the offer (it waits up to [`WAIT_FOR_LIVE`] for the
//! interview to go live) or after it (the events since the start are kept for the first
//! socket, see [`park`]). Messages from the browser are ignored (no trickle ICE: the offer and
//! the answer carry their host candidates). Closing the socket does not end the interview; the
//! interview ending (or never going live) closes the socket with a normal close.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use actix::{Actor, ActorContext, AsyncContext, StreamHandler};
use actix_web::{HttpRequest, HttpResponse, web};
use actix_web_actors::ws;
use base64::Engine as _;
use engine::actors::interview::InterviewEvent;
use engine::engine::EngineHandle;
use entities::interviews::{self, InterviewStatus};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::auth::AuthenticatedAccount;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// How long a ticket stays valid.
pub const TICKET_TTL: Duration = Duration::from_secs(30);
/// How long a socket opened before the offer waits for the interview to go live.
pub const WAIT_FOR_LIVE: Duration = Duration::from_secs(20);
/// Most outstanding tickets kept (older ones are evicted first when full).
const MAX_TICKETS: usize = 10_000;
/// How long the events of a just-started interview wait for their first socket.
const PARK_TTL: Duration = Duration::from_secs(30);
const PING_EVERY: Duration = Duration::from_secs(10);
const PEER_TIMEOUT: Duration = Duration::from_secs(30);
const LIVE_POLL: Duration = Duration::from_millis(20);

struct Ticket {
    interview_id: Uuid,
    expires: Instant,
}

/// Outstanding tickets by SHA-256, node-local.
static TICKETS: LazyLock<Mutex<HashMap<[u8; 32], Ticket>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// A receiver subscribed when an interview started, and when.
type Parked = (Instant, broadcast::Receiver<InterviewEvent>);

/// Receivers subscribed when an interview started, kept for its first events socket.
static PARKED: LazyLock<Mutex<HashMap<Uuid, Parked>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn digest(ticket: &str) -> [u8; 32] {
    Sha256::digest(ticket.as_bytes()).into()
}

fn issue(interview_id: Uuid) -> String {
    let bytes: [u8; 32] = rand::random();
    let ticket = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let now = Instant::now();
    let mut tickets = TICKETS.lock().unwrap_or_else(|p| p.into_inner());
    tickets.retain(|_, t| t.expires > now);
    if tickets.len() >= MAX_TICKETS
        && let Some(oldest) = tickets
            .iter()
            .min_by_key(|(_, t)| t.expires)
            .map(|(k, _)| *k)
    {
        tickets.remove(&oldest);
    }
    tickets.insert(
        digest(&ticket),
        Ticket {
            interview_id,
            expires: now + TICKET_TTL,
        },
    );
    ticket
}

/// Takes a ticket (single use): whether it was valid for `interview_id`.
fn redeem(ticket: &str, interview_id: Uuid) -> bool {
    if ticket.is_empty() || ticket.len() > 128 {
        return false;
    }
    let mut tickets = TICKETS.lock().unwrap_or_else(|p| p.into_inner());
    tickets
        .remove(&digest(ticket))
        .is_some_and(|t| t.interview_id == interview_id && t.expires > Instant::now())
}

/// Keeps the receiver `start_interview` returned, so the first events socket sees the
/// interview's events from its start even when it connects after the offer was answered.
pub fn park(interview_id: Uuid, receiver: broadcast::Receiver<InterviewEvent>) {
    let now = Instant::now();
    let mut parked = PARKED.lock().unwrap_or_else(|p| p.into_inner());
    parked.retain(|_, (at, _)| now.duration_since(*at) < PARK_TTL);
    parked.insert(interview_id, (now, receiver));
}

fn take_parked(interview_id: Uuid) -> Option<broadcast::Receiver<InterviewEvent>> {
    let mut parked = PARKED.lock().unwrap_or_else(|p| p.into_inner());
    parked.remove(&interview_id).map(|(_, receiver)| receiver)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EventsTicket {
    /// Pass as `?ticket=` to `GET /api/v1/interviews/{id}/events`; single use.
    pub ticket: String,
    pub expires_in_seconds: u64,
}

/// `POST /api/v1/interviews/{id}/events-ticket`: a single-use ticket for the events socket.
#[utoipa::path(post, path = "/api/v1/interviews/{id}/events-ticket", tag = "interviews",
    security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = EventsTicket), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The interview has ended", body = ErrorBody)))]
pub async fn ticket(
    state: web::Data<AppState>,
    caller: AuthenticatedAccount,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let interview = interviews::Entity::find_by_id(*id)
        .filter(interviews::Column::AccountId.eq(caller.id))
        .one(&state.db)
        .await?
        .ok_or(ApiError::NotFound)?;
    if interview.status == InterviewStatus::Ended && !state.engine.is_live(interview.id) {
        return Err(ApiError::Conflict {
            code: "interview_ended",
            message: "this interview has ended",
        });
    }
    Ok(HttpResponse::Ok().json(EventsTicket {
        ticket: issue(interview.id),
        expires_in_seconds: TICKET_TTL.as_secs(),
    }))
}

#[derive(Deserialize)]
pub struct TicketQuery {
    ticket: Option<String>,
}

/// `GET /api/v1/interviews/{id}/events?ticket=…`: upgrades to the events WebSocket.
#[utoipa::path(get, path = "/api/v1/interviews/{id}/events", tag = "interviews",
    params(("id" = Uuid, Path), ("ticket" = String, Query, description = "From `POST …/events-ticket`")),
    responses((status = 101, description = "WebSocket of interview events (JSON text frames)"),
        (status = 401, description = "Missing, used, expired or mismatched ticket", body = ErrorBody)))]
pub async fn events(
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<Uuid>,
    query: web::Query<TicketQuery>,
    stream: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = *id;
    let ticket = query.into_inner().ticket.unwrap_or_default();
    if !redeem(&ticket, id) {
        return Err(ApiError::Unauthorized {
            code: "invalid_ticket",
            message: "a fresh ticket from POST /api/v1/interviews/{id}/events-ticket is required",
        });
    }
    let socket = EventsSocket {
        interview_id: id,
        engine: state.engine.clone(),
        last_heard: Instant::now(),
    };
    ws::start(socket, &request, stream)
        .map_err(|error| ApiError::BadRequest(format!("WebSocket upgrade: {error}")))
}

/// One browser's events socket.
struct EventsSocket {
    interview_id: Uuid,
    engine: EngineHandle,
    last_heard: Instant,
}

/// What the socket's event stream yields.
enum Outgoing {
    Event(InterviewEvent),
    Lagged(u64),
}

impl EventsSocket {
    fn attach(&mut self, receiver: broadcast::Receiver<InterviewEvent>, ctx: &mut WsContext) {
        let hello = json!({"type": "hello", "interview_id": self.interview_id, "live": true});
        ctx.text(hello.to_string());
        let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
            match receiver.recv().await {
                Ok(event) => Some((Outgoing::Event(event), receiver)),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    Some((Outgoing::Lagged(missed), receiver))
                }
                Err(broadcast::error::RecvError::Closed) => None,
            }
        });
        ctx.add_stream(stream);
    }

    /// Subscribes now, or polls until the interview goes live (bounded), or gives up.
    fn subscribe_or_wait(&mut self, ctx: &mut WsContext, since: Instant) {
        if let Some(receiver) =
            take_parked(self.interview_id).or_else(|| self.engine.subscribe(self.interview_id))
        {
            self.attach(receiver, ctx);
            return;
        }
        if since.elapsed() >= WAIT_FOR_LIVE {
            ctx.text(json!({"type": "not_live"}).to_string());
            ctx.close(Some(ws::CloseCode::Normal.into()));
            ctx.stop();
            return;
        }
        ctx.run_later(LIVE_POLL, move |socket, ctx| {
            socket.subscribe_or_wait(ctx, since);
        });
    }
}

type WsContext = ws::WebsocketContext<EventsSocket>;

impl Actor for EventsSocket {
    type Context = WsContext;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.subscribe_or_wait(ctx, Instant::now());
        ctx.run_interval(PING_EVERY, |socket, ctx| {
            if socket.last_heard.elapsed() > PEER_TIMEOUT {
                ctx.stop();
            } else {
                ctx.ping(b"");
            }
        });
    }
}

impl StreamHandler<Outgoing> for EventsSocket {
    fn handle(&mut self, item: Outgoing, ctx: &mut Self::Context) {
        match item {
            Outgoing::Event(event) => {
                let ended = matches!(event, InterviewEvent::Ended { .. });
                match serde_json::to_string(&event) {
                    Ok(text) => ctx.text(text),
                    Err(error) => tracing::warn!(%error, "an interview event did not serialize"),
                }
                if ended {
                    ctx.close(Some(ws::CloseCode::Normal.into()));
                    ctx.stop();
                }
            }
            Outgoing::Lagged(missed) => {
                ctx.text(json!({"type": "lagged", "missed": missed}).to_string());
            }
        }
    }

    /// The interview's event channel closed: the interview is over.
    fn finished(&mut self, ctx: &mut Self::Context) {
        ctx.close(Some(ws::CloseCode::Normal.into()));
        ctx.stop();
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for EventsSocket {
    fn handle(&mut self, message: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        match message {
            Ok(ws::Message::Ping(payload)) => ctx.pong(&payload),
            Ok(ws::Message::Close(_)) | Err(_) => ctx.stop(),
            // Text, binary, pongs and continuations: nothing to do (no trickle ICE).
            Ok(_) => {}
        }
    }

    /// The browser went away; the interview goes on.
    fn finished(&mut self, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_is_single_use_and_bound_to_its_interview() {
        let id = Uuid::new_v4();
        let ticket = issue(id);
        assert!(!redeem(&ticket, Uuid::new_v4()), "another interview");
        let ticket = issue(id);
        assert!(redeem(&ticket, id));
        assert!(!redeem(&ticket, id), "used once only");
        assert!(!redeem("", id));
        assert!(!redeem(&"x".repeat(4096), id));
    }
}
