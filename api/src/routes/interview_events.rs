//! The live events of an interview over a WebSocket (actix-ws, one task per connection):
//! `GET /api/v1/interviews/{id}/events?ticket=…`.
//!
//! # Authentication without the access token in a URL
//!
//! Browsers cannot set an `Authorization` header on a WebSocket, and a URL ends up in logs and
//! history. So the page first asks `POST /api/v1/interviews/{id}/events-ticket` (Bearer) for a
//! **ticket**: 32 random bytes (base64url), valid for [`TICKET_TTL`], for one connection to that
//! interview's events only, usable once. The server keeps only the ticket's SHA-256 (in memory,
//! on this node: the interview is live on this node too; at most [`MAX_TICKETS_PER_ACCOUNT`]
//! outstanding per account, the oldest evicted first). A used, expired, unknown or
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
//!   "ingress_ms","stt_final_ms","turn_wait_ms","dispatch_ms","llm_ttft_ms","tts_buffering_ms",
//!   "tts_ttfa_ms","egress_ms","engine_overhead_ms","v2v_ms"}}` (the parts add up to v2v; see
//!   `engine::interview_core::TurnBreakdown`), `{"type":"voice_failed","category":"…","note":"…"}`
//!   (the interviewer's voice failed both ways; the note is also in the transcript),
//!   `{"type":"ended","reason":"…"}`.
//! - `{"type":"lagged","missed":n}` if this socket fell more than
//!   [`engine::engine::EVENT_BUFFER`] events behind.
//!
//! The socket may be opened before the offer (it waits up to [`WAIT_FOR_LIVE`] for the
//! interview to go live) or after it (the events since the start are kept for the first
//! socket, see [`EventHub::park`]; a socket waiting for the start is woken by it, no polling). Messages from the browser are ignored (no trickle ICE: the offer and
//! the answer carry their host candidates). Closing the socket does not end the interview; the
//! interview ending (or never going live) closes the socket with a normal close.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, Message, Session};
use base64::Engine as _;
use engine::actors::interview::InterviewEvent;
use engine::{AccountId, InterviewId};
use entities::interviews::{self, InterviewStatus};
use futures_util::StreamExt as _;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, broadcast};

use crate::auth::AuthenticatedAccount;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// How long a ticket stays valid.
pub const TICKET_TTL: Duration = Duration::from_secs(30);
/// How long a socket opened before the offer waits for the interview to go live.
pub const WAIT_FOR_LIVE: Duration = Duration::from_secs(20);
/// Most outstanding tickets kept on this node (older ones are evicted first when full).
const MAX_TICKETS: usize = 10_000;
/// Most outstanding tickets of one account (a page needs one per socket; more is a client
/// asking in a loop, and must not crowd out everyone else's).
pub const MAX_TICKETS_PER_ACCOUNT: usize = 8;
/// How long the events of a just-started interview wait for their first socket.
const PARK_TTL: Duration = Duration::from_secs(30);
const PING_EVERY: Duration = Duration::from_secs(10);
const PEER_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest frame accepted from the browser (it sends nothing but pings and the close).
const MAX_INCOMING_FRAME: usize = 4 * 1024;

struct Ticket {
    interview_id: InterviewId,
    account_id: AccountId,
    expires: Instant,
}

/// A receiver subscribed when an interview started, and when.
type Parked = (Instant, broadcast::Receiver<InterviewEvent>);

/// The events sockets' node-local state: outstanding tickets (by SHA-256) and the receivers
/// parked for a just-started interview's first socket. One per server, in [`AppState`].
#[derive(Default)]
pub struct EventHub {
    tickets: Mutex<HashMap<[u8; 32], Ticket>>,
    parked: Mutex<HashMap<InterviewId, Parked>>,
    /// Woken whenever an interview's receiver is parked (its start), for sockets that wait.
    started: Notify,
}

fn digest(ticket: &str) -> [u8; 32] {
    Sha256::digest(ticket.as_bytes()).into()
}

impl EventHub {
    fn issue(&self, interview_id: InterviewId, account_id: AccountId) -> String {
        let bytes: [u8; 32] = rand::random();
        let ticket = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let now = Instant::now();
        let mut tickets = self.tickets.lock().unwrap_or_else(|p| p.into_inner());
        tickets.retain(|_, t| t.expires > now);
        let oldest = |tickets: &HashMap<[u8; 32], Ticket>, of: Option<AccountId>| {
            tickets
                .iter()
                .filter(|(_, t)| of.is_none_or(|account| t.account_id == account))
                .min_by_key(|(_, t)| t.expires)
                .map(|(k, _)| *k)
        };
        let own = tickets
            .values()
            .filter(|t| t.account_id == account_id)
            .count();
        if own >= MAX_TICKETS_PER_ACCOUNT
            && let Some(key) = oldest(&tickets, Some(account_id))
        {
            tickets.remove(&key);
        }
        if tickets.len() >= MAX_TICKETS
            && let Some(key) = oldest(&tickets, None)
        {
            tickets.remove(&key);
        }
        tickets.insert(
            digest(&ticket),
            Ticket {
                interview_id,
                account_id,
                expires: now + TICKET_TTL,
            },
        );
        ticket
    }

    /// Takes a ticket (single use): whether it was valid for `interview_id`.
    fn redeem(&self, ticket: &str, interview_id: InterviewId) -> bool {
        if ticket.is_empty() || ticket.len() > 128 {
            return false;
        }
        let mut tickets = self.tickets.lock().unwrap_or_else(|p| p.into_inner());
        tickets
            .remove(&digest(ticket))
            .is_some_and(|t| t.interview_id == interview_id && t.expires > Instant::now())
    }

    /// Keeps the receiver `start_interview` returned, so the first events socket sees the
    /// interview's events from its start even when it connects after the offer was answered;
    /// wakes the sockets waiting for an interview to start.
    pub fn park(&self, interview_id: InterviewId, receiver: broadcast::Receiver<InterviewEvent>) {
        let now = Instant::now();
        {
            let mut parked = self.parked.lock().unwrap_or_else(|p| p.into_inner());
            parked.retain(|_, (at, _)| now.duration_since(*at) < PARK_TTL);
            parked.insert(interview_id, (now, receiver));
        }
        self.started.notify_waiters();
    }

    fn take_parked(
        &self,
        interview_id: InterviewId,
    ) -> Option<broadcast::Receiver<InterviewEvent>> {
        let mut parked = self.parked.lock().unwrap_or_else(|p| p.into_inner());
        parked.remove(&interview_id).map(|(_, receiver)| receiver)
    }

    /// The interview's events from its start (parked) or from now (live), waiting up to
    /// `wait` for it to start on this node.
    async fn subscribe(
        &self,
        interview_id: InterviewId,
        wait: Duration,
        live: impl Fn() -> Option<broadcast::Receiver<InterviewEvent>>,
    ) -> Option<broadcast::Receiver<InterviewEvent>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Registered before looking, so a start between the look and the wait wakes us.
            let started = self.started.notified();
            tokio::pin!(started);
            started.as_mut().enable();
            if let Some(receiver) = self.take_parked(interview_id).or_else(&live) {
                return Some(receiver);
            }
            if tokio::time::timeout_at(deadline, started).await.is_err() {
                return None;
            }
        }
    }
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
    id: web::Path<InterviewId>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let interview = interviews::Entity::find_by_id(id)
        .filter(interviews::Column::AccountId.eq(caller.id))
        .one(&state.db)
        .await?
        .ok_or(ApiError::NotFound)?;
    if interview.status == InterviewStatus::Ended && !state.engine.is_live(id) {
        return Err(ApiError::Conflict {
            code: "interview_ended",
            message: "this interview has ended",
        });
    }
    Ok(HttpResponse::Ok().json(EventsTicket {
        ticket: state.events.issue(id, caller.id),
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
        (status = 400, description = "Not a WebSocket upgrade request", body = ErrorBody),
        (status = 401, description = "Missing, used, expired or mismatched ticket", body = ErrorBody),
        (status = 404, description = "No such route (an id that is not one path segment)", body = ErrorBody)))]
pub async fn events(
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<InterviewId>,
    query: web::Query<TicketQuery>,
    stream: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = *id;
    let ticket = query.into_inner().ticket.unwrap_or_default();
    if !state.events.redeem(&ticket, id) {
        return Err(ApiError::Unauthorized {
            code: "invalid_ticket",
            message: "a fresh ticket from POST /api/v1/interviews/{id}/events-ticket is required",
        });
    }
    let (response, session, incoming) = actix_ws::handle(&request, stream)
        .map_err(|error| ApiError::BadRequest(format!("WebSocket upgrade: {error}")))?;
    let incoming = incoming.max_frame_size(MAX_INCOMING_FRAME);
    actix_web::rt::spawn(serve_socket(state.into_inner(), id, session, incoming));
    Ok(response)
}

/// Why a socket's loop ended.
enum Finish {
    /// The interview ended (or never started): close normally.
    Close,
    /// The browser left or the connection broke: nothing more to send.
    Gone,
}

/// One browser's events socket: waits for the interview (bounded), then forwards its events
/// and answers pings until the interview ends or the browser goes away. Closing the socket
/// never ends the interview.
async fn serve_socket(
    state: std::sync::Arc<AppState>,
    interview_id: InterviewId,
    mut session: Session,
    mut incoming: actix_ws::MessageStream,
) {
    let mut last_heard = Instant::now();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    // Waiting for the start, the browser is still heard (a close ends the wait).
    let subscribed = {
        let engine = &state.engine;
        let subscribe = state.events.subscribe(interview_id, WAIT_FOR_LIVE, || {
            engine.subscribe(interview_id)
        });
        tokio::pin!(subscribe);
        loop {
            tokio::select! {
                receiver = &mut subscribe => break receiver,
                message = incoming.next() => match message {
                    Some(Ok(Message::Ping(payload))) => {
                        last_heard = Instant::now();
                        if session.pong(&payload).await.is_err() {
                            return;
                        }
                    }
                    Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                    Some(Ok(_)) => last_heard = Instant::now(),
                },
            }
        }
    };
    let Some(mut receiver) = subscribed else {
        let _ = session.text(json!({"type": "not_live"}).to_string()).await;
        let _ = session.close(Some(CloseCode::Normal.into())).await;
        return;
    };
    let hello = json!({"type": "hello", "interview_id": interview_id, "live": true});
    if session.text(hello.to_string()).await.is_err() {
        return;
    }
    let finish = loop {
        tokio::select! {
            event = receiver.recv() => match event {
                Ok(event) => {
                    let ended = matches!(event, InterviewEvent::Ended { .. });
                    match serde_json::to_string(&event) {
                        Ok(text) => {
                            if session.text(text).await.is_err() {
                                break Finish::Gone;
                            }
                        }
                        Err(error) => tracing::warn!(%error, "an interview event did not serialize"),
                    }
                    if ended {
                        break Finish::Close;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    let lagged = json!({"type": "lagged", "missed": missed}).to_string();
                    if session.text(lagged).await.is_err() {
                        break Finish::Gone;
                    }
                }
                // The interview's event channel closed: the interview is over.
                Err(broadcast::error::RecvError::Closed) => break Finish::Close,
            },
            message = incoming.next() => {
                last_heard = Instant::now();
                match message {
                    Some(Ok(Message::Ping(payload))) => {
                        if session.pong(&payload).await.is_err() {
                            break Finish::Gone;
                        }
                    }
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break Finish::Gone,
                    // Text, binary, pongs and continuations: nothing to do (no trickle ICE).
                    Some(Ok(_)) => {}
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > PEER_TIMEOUT || session.ping(b"").await.is_err() {
                    break Finish::Gone;
                }
            }
        }
    };
    match finish {
        Finish::Close => {
            let _ = session.close(Some(CloseCode::Normal.into())).await;
        }
        Finish::Gone => {
            let _ = session.close(None).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_is_single_use_and_bound_to_its_interview() {
        let hub = EventHub::default();
        let (id, account) = (InterviewId::now_v7(), AccountId::now_v7());
        let ticket = hub.issue(id, account);
        assert!(
            !hub.redeem(&ticket, InterviewId::now_v7()),
            "another interview"
        );
        let ticket = hub.issue(id, account);
        assert!(hub.redeem(&ticket, id));
        assert!(!hub.redeem(&ticket, id), "used once only");
        assert!(!hub.redeem("", id));
        assert!(!hub.redeem(&"x".repeat(4096), id));
    }

    #[tokio::test]
    async fn a_waiting_socket_is_woken_by_the_start_and_gives_up_after_the_wait() {
        let hub = std::sync::Arc::new(EventHub::default());
        let id = InterviewId::now_v7();
        let never = || None;
        // Nobody starts it: no receiver, after the wait.
        assert!(
            hub.subscribe(id, Duration::from_millis(50), never)
                .await
                .is_none()
        );
        // Another interview's start wakes the wait but does not satisfy it; this one's does.
        let waiting = {
            let hub = hub.clone();
            tokio::spawn(async move { hub.subscribe(id, Duration::from_secs(30), never).await })
        };
        tokio::task::yield_now().await;
        let (other, _other_rx) = broadcast::channel(4);
        hub.park(InterviewId::now_v7(), other.subscribe());
        let (sender, _keep) = broadcast::channel(4);
        hub.park(id, sender.subscribe());
        let mut receiver = tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("woken by the start, not by the 30 s deadline")
            .expect("task")
            .expect("a receiver");
        sender
            .send(InterviewEvent::Final {
                text: "hello".into(),
            })
            .expect("send");
        assert!(matches!(
            receiver.recv().await,
            Ok(InterviewEvent::Final { .. })
        ));
        // Parked receivers are taken once.
        assert!(hub.take_parked(id).is_none());
    }

    #[test]
    fn one_account_holds_a_bounded_number_of_tickets_without_touching_others() {
        let hub = EventHub::default();
        let (id, greedy, other) = (
            InterviewId::now_v7(),
            AccountId::now_v7(),
            AccountId::now_v7(),
        );
        let others = hub.issue(id, other);
        let first = hub.issue(id, greedy);
        let mut last = String::new();
        for _ in 0..MAX_TICKETS_PER_ACCOUNT * 4 {
            last = hub.issue(id, greedy);
        }
        let held = hub
            .tickets
            .lock()
            .unwrap()
            .values()
            .filter(|t| t.account_id == greedy)
            .count();
        assert_eq!(held, MAX_TICKETS_PER_ACCOUNT);
        assert!(!hub.redeem(&first, id), "the oldest was evicted");
        assert!(hub.redeem(&last, id), "the newest is kept");
        assert!(
            hub.redeem(&others, id),
            "another account's ticket is untouched"
        );
    }
}
