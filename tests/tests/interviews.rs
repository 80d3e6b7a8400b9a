//! The interviews API over HTTP, and a live interview joined by the Rust WebRTC client
//! (`engine::transport::WebRtcClient`, no browser) with its events over the WebSocket.
//!
//! The server runs in keyless local mode (in-process fake vendors) with loopback-only WebRTC:
//! every packet of these tests stays on 127.0.0.1.

use engine::InterviewId;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tests::{client_offer, post_offer};

use engine::transport::{
    ConnectionState, MediaSession, SdpType, SessionDescription, ToneGenerator,
};
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use tests::{Backend, Session, TestApp, assert_json_error, db_tests, spawn_app};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

db_tests!(
    create_list_get_and_end,
    offers_that_cannot_start_an_interview_get_a_clear_4xx,
    events_socket_needs_a_single_use_ticket_for_your_own_interview,
    rust_webrtc_client_holds_an_interview_through_the_http_api,
    erasure_waits_for_the_live_interview_to_stop_before_deleting,
);

/// RMS (0..1) above which received audio counts as sound rather than silence or noise.
const ENERGY_FLOOR: f64 = 0.01;

async fn create(app: &TestApp, session: &Session, body: Value) -> reqwest::Response {
    app.call(
        Method::POST,
        "/api/v1/interviews",
        Some(&session.access_token),
        Some(&body),
    )
    .await
}

async fn created_id(app: &TestApp, session: &Session) -> InterviewId {
    let response = create(app, session, json!({"kind": "behavioral"})).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("json");
    body["id"].as_str().expect("id").parse().expect("uuid")
}

async fn create_list_get_and_end(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.signed_in_user().await;
    let bob = app.signed_in_user().await;
    let quota = app.settings.free_interviews as usize;
    assert!(quota >= 2, "the test needs a quota of at least two");

    let response = create(
        &app,
        &alice,
        json!({"kind": "system_design", "target_role": "Staff engineer", "company": "Acme", "length_minutes": 30}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let first: Value = response.json().await.unwrap();
    assert_eq!(first["kind"], "system_design");
    assert_eq!(first["target_role"], "Staff engineer");
    assert_eq!(first["company"], "Acme");
    assert_eq!(first["length_minutes"], 30);
    assert_eq!(first["status"], "created");
    assert_eq!(first["live"], false);
    let first_id = first["id"].as_str().unwrap().to_owned();

    // Validation: unknown kind, length out of range, no token.
    assert_eq!(
        create(&app, &alice, json!({"kind": "karaoke"}))
            .await
            .status()
            .as_u16()
            / 100,
        4
    );
    assert_json_error(
        create(
            &app,
            &alice,
            json!({"kind": "technical", "length_minutes": 500}),
        )
        .await,
        422,
    )
    .await;
    assert_json_error(
        app.call(
            Method::POST,
            "/api/v1/interviews",
            None,
            Some(&json!({"kind": "technical"})),
        )
        .await,
        401,
    )
    .await;

    // Creating takes nothing of the free allocation (it is taken when an interview on platform
    // keys starts: tests/tests/free_interviews.rs), so creating more than it is fine.
    for _ in 0..quota {
        assert_eq!(
            create(&app, &alice, json!({"kind": "technical"}))
                .await
                .status(),
            201
        );
    }
    assert_eq!(
        create(&app, &bob, json!({"kind": "behavioral"}))
            .await
            .status(),
        201
    );

    // List: Alice's only, newest first.
    let list: Value = app
        .get_as("/api/v1/interviews", &alice.access_token)
        .await
        .json()
        .await
        .unwrap();
    let items = list["interviews"].as_array().expect("interviews");
    assert_eq!(items.len(), quota + 1);
    assert_eq!(items.last().unwrap()["id"], first_id.as_str());

    // Get: own → transcript and turns (empty); someone else's → 404.
    let path = format!("/api/v1/interviews/{first_id}");
    let detail: Value = app
        .get_as(&path, &alice.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detail["interview"]["id"], first_id.as_str());
    assert_eq!(detail["transcript"], json!([]));
    assert_eq!(detail["turns"], json!([]));
    assert_json_error(app.get_as(&path, &bob.access_token).await, 404).await;
    assert_json_error(
        app.get_as(
            &format!("/api/v1/interviews/{}", Uuid::new_v4()),
            &alice.access_token,
        )
        .await,
        404,
    )
    .await;

    // End: someone else's → 404; own → ended, with a reason.
    let end = format!("/api/v1/interviews/{first_id}/end");
    assert_json_error(
        app.call(Method::POST, &end, Some(&bob.access_token), None)
            .await,
        404,
    )
    .await;
    let response = app
        .call(Method::POST, &end, Some(&alice.access_token), None)
        .await;
    assert!(response.status().is_success(), "{}", response.status());
    let detail: Value = app
        .get_as(&path, &alice.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detail["interview"]["status"], "ended");
    assert!(detail["interview"]["ended_at"].is_string());
}

async fn offers_that_cannot_start_an_interview_get_a_clear_4xx(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.signed_in_user().await;
    let bob = app.signed_in_user().await;
    let id = created_id(&app, &alice).await;
    let (pending, offer) = client_offer().await;
    let sdp = offer["sdp"].as_str().unwrap().to_owned();

    // Malformed SDP, not an offer, an offer without audio, not even JSON: 400 with a JSON body.
    for bad in [
        json!({"type": "offer", "sdp": "this is not SDP"}),
        json!({"type": "offer", "sdp": ""}),
        json!({"type": "answer", "sdp": sdp}),
        json!({"type": "offer", "sdp": sdp.replace("m=audio ", "m=video ")}),
        json!({"type": "offer"}),
        json!({"type": "bogus", "sdp": sdp}),
    ] {
        let status = post_offer(&app, &alice, id, &bad).await.status().as_u16();
        assert!(
            status == 400 || status == 422,
            "{bad}: expected 400/422, got {status}"
        );
    }
    let code = assert_json_error(
        post_offer(
            &app,
            &alice,
            id,
            &json!({"type": "offer", "sdp": "this is not SDP"}),
        )
        .await,
        400,
    )
    .await;
    assert!(!code.is_empty());
    assert_json_error(
        post_offer(
            &app,
            &alice,
            id,
            &json!({"type": "offer", "sdp": sdp.replace("m=audio ", "m=video ")}),
        )
        .await,
        400,
    )
    .await;
    let response = app
        .client
        .post(app.url(&format!("/api/v1/interviews/{id}/offer")))
        .bearer_auth(&alice.access_token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_json_error(response, 400).await;

    // Someone else's interview, or none: 404.
    assert_json_error(post_offer(&app, &bob, id, &offer).await, 404).await;
    assert_json_error(
        post_offer(&app, &alice, InterviewId::now_v7(), &offer).await,
        404,
    )
    .await;
    assert!(!app.state.engine.is_live(id), "no refused offer started it");

    // A good offer starts it; a second offer is a conflict.
    let response = post_offer(&app, &alice, id, &offer).await;
    assert_eq!(response.status(), 200);
    let answer: SessionDescription = response.json().await.unwrap();
    assert_eq!(answer.sdp_type, SdpType::Answer);
    assert!(app.state.engine.is_live(id));
    let (_second, second_offer) = client_offer().await;
    assert_json_error(post_offer(&app, &alice, id, &second_offer).await, 409).await;

    // Ending it; then an offer for the ended interview is a conflict too.
    pending.abandon().await;
    let response = app
        .call(
            Method::POST,
            &format!("/api/v1/interviews/{id}/end"),
            Some(&alice.access_token),
            None,
        )
        .await;
    assert!(response.status().is_success());
    wait_not_live(&app, id).await;
    assert_json_error(post_offer(&app, &alice, id, &second_offer).await, 409).await;

    // An interview ended before it ever started: 409 as well.
    let never = created_id(&app, &alice).await;
    app.call(
        Method::POST,
        &format!("/api/v1/interviews/{never}/end"),
        Some(&alice.access_token),
        None,
    )
    .await;
    assert_json_error(post_offer(&app, &alice, never, &second_offer).await, 409).await;
}

async fn erasure_waits_for_the_live_interview_to_stop_before_deleting(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.signed_in_user().await;
    let id = created_id(&app, &alice).await;
    let (pending, offer) = client_offer().await;
    let response = post_offer(&app, &alice, id, &offer).await;
    assert_eq!(response.status(), 200);
    let answer: SessionDescription = response.json().await.unwrap();
    let session = pending
        .accept_answer(&answer)
        .await
        .expect("answer applies");
    session
        .control
        .wait_connected(Duration::from_secs(20))
        .await
        .expect("connected");
    assert!(app.state.engine.is_live(id));

    let response = app
        .call(
            Method::DELETE,
            "/api/v1/me",
            Some(&alice.access_token),
            Some(&json!({"password": alice.password})),
        )
        .await;
    assert_eq!(response.status(), 200);
    // By the time the erasure answers, the interview has stopped: nothing of it can be written
    // after its rows were deleted.
    assert!(
        !app.state.engine.is_live(id),
        "the erasure waited for the interview to stop"
    );
    assert_eq!(app.count_rows("interviews").await, 0);
    assert_eq!(app.count_rows("transcript_segments").await, 0);
    assert_eq!(app.count_rows("accounts").await, 0);
    session.control.close().await;
}

async fn wait_not_live(app: &TestApp, id: InterviewId) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while app.state.engine.is_live(id) {
        assert!(Instant::now() < deadline, "the interview ends");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn ticket(app: &TestApp, session: &Session, id: InterviewId) -> reqwest::Response {
    app.call(
        Method::POST,
        &format!("/api/v1/interviews/{id}/events-ticket"),
        Some(&session.access_token),
        None,
    )
    .await
}

async fn ticket_value(app: &TestApp, session: &Session, id: InterviewId) -> String {
    let response = ticket(app, session, id).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body["expires_in_seconds"].as_u64().unwrap() <= 60);
    body["ticket"].as_str().expect("ticket").to_owned()
}

fn events_url(app: &TestApp, id: InterviewId, ticket: &str) -> String {
    format!(
        "ws://127.0.0.1:{}/api/v1/interviews/{id}/events?ticket={ticket}",
        app.port
    )
}

/// The HTTP status of a refused upgrade.
async fn refused_upgrade(url: &str) -> u16 {
    match tokio_tungstenite::connect_async(url).await {
        Ok(_) => panic!("the upgrade was accepted"),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("unexpected error: {other}"),
    }
}

async fn events_socket_needs_a_single_use_ticket_for_your_own_interview(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.signed_in_user().await;
    let bob = app.signed_in_user().await;
    let id = created_id(&app, &alice).await;
    let other = created_id(&app, &alice).await;

    // No token, someone else's interview, no such interview.
    assert_json_error(
        app.call(
            Method::POST,
            &format!("/api/v1/interviews/{id}/events-ticket"),
            None,
            None,
        )
        .await,
        401,
    )
    .await;
    assert_json_error(ticket(&app, &bob, id).await, 404).await;
    assert_json_error(ticket(&app, &alice, InterviewId::now_v7()).await, 404).await;

    // No ticket, a made-up one, one for another interview, and the access token itself: 401.
    let base = format!("ws://127.0.0.1:{}/api/v1/interviews/{id}/events", app.port);
    assert_eq!(refused_upgrade(&base).await, 401);
    assert_eq!(refused_upgrade(&format!("{base}?ticket=nope")).await, 401);
    let for_other = ticket_value(&app, &alice, other).await;
    assert_eq!(
        refused_upgrade(&events_url(&app, id, &for_other)).await,
        401
    );
    assert_eq!(
        refused_upgrade(&events_url(&app, id, &alice.access_token)).await,
        401
    );

    // A good ticket opens the socket once.
    let good = ticket_value(&app, &alice, id).await;
    let (mut socket, _) = tokio_tungstenite::connect_async(events_url(&app, id, &good))
        .await
        .expect("the ticket opens the socket");
    assert_eq!(refused_upgrade(&events_url(&app, id, &good)).await, 401);
    // Not live yet: the socket waits for the offer; closing it is fine.
    socket.close(None).await.expect("close");

    // Ended interview: no ticket.
    app.call(
        Method::POST,
        &format!("/api/v1/interviews/{other}/end"),
        Some(&alice.access_token),
        None,
    )
    .await;
    assert_json_error(ticket(&app, &alice, other).await, 409).await;
}

/// Collects the events socket's JSON messages into a channel until it closes.
fn spawn_event_reader(url: String) -> (mpsc::UnboundedReceiver<Value>, Arc<AtomicBool>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let closed = Arc::new(AtomicBool::new(false));
    let closed_flag = closed.clone();
    tokio::spawn(async move {
        let (mut socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("events socket opens");
        while let Some(message) = socket.next().await {
            match message {
                Ok(Message::Text(text)) => {
                    if let Ok(value) = serde_json::from_str::<Value>(&text) {
                        let _ = tx.send(value);
                    }
                }
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => {}
            }
        }
        closed_flag.store(true, Ordering::SeqCst);
    });
    (rx, closed)
}

/// Waits for an event matching `want`, keeping every event seen in `seen`.
async fn wait_event(
    events: &mut mpsc::UnboundedReceiver<Value>,
    seen: &mut Vec<Value>,
    timeout: Duration,
    what: &str,
    want: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(event)) => {
                seen.push(event.clone());
                if want(&event) {
                    return event;
                }
            }
            Ok(None) => panic!("the events socket closed before {what}; saw {seen:?}"),
            Err(_) => panic!("no {what} within {timeout:?}; saw {seen:?}"),
        }
    }
}

fn is_state(event: &Value, phase: &str) -> bool {
    event["type"] == "state" && event["phase"] == phase
}

/// What the paced sender sends: silence, or a voiced tone.
struct Microphone {
    voiced: Arc<AtomicBool>,
    voiced_frames: Arc<AtomicU64>,
}

/// Sends a 20 ms frame every 20 ms in real time (silence, or a tone while `voiced`).
fn spawn_microphone(mut session_out: engine::transport::AudioSender) -> Microphone {
    let voiced = Arc::new(AtomicBool::new(false));
    let voiced_frames = Arc::new(AtomicU64::new(0));
    let (flag, count) = (voiced.clone(), voiced_frames.clone());
    tokio::spawn(async move {
        // A voice-like tone: 180 Hz fundamental, 0.3 of full scale.
        let mut tone = ToneGenerator::new(engine::transport::OpusRate::Hz48000, 180.0, 0.3);
        let silence = vec![0i16; engine::transport::OpusRate::Hz48000.frame_samples()];
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        loop {
            tick.tick().await;
            let frame = if flag.load(Ordering::SeqCst) {
                count.fetch_add(1, Ordering::SeqCst);
                tone.next_frame()
            } else {
                silence.clone()
            };
            if session_out
                .send_frame(&frame, engine::transport::OpusRate::Hz48000)
                .is_err()
            {
                break;
            }
        }
    });
    Microphone {
        voiced,
        voiced_frames,
    }
}

/// Measures what arrives from the interviewer, continuously.
struct Speaker {
    frames: Arc<AtomicU64>,
    loud_frames: Arc<AtomicU64>,
    /// Peak frame RMS × 1e6.
    peak: Arc<AtomicU64>,
}

fn spawn_speaker(mut inbound: mpsc::Receiver<engine::transport::AudioFrame>) -> Speaker {
    let frames = Arc::new(AtomicU64::new(0));
    let loud_frames = Arc::new(AtomicU64::new(0));
    let peak = Arc::new(AtomicU64::new(0));
    let (f, l, p) = (frames.clone(), loud_frames.clone(), peak.clone());
    tokio::spawn(async move {
        while let Some(frame) = inbound.recv().await {
            let rms = frame.rms();
            f.fetch_add(1, Ordering::SeqCst);
            if rms >= ENERGY_FLOOR {
                l.fetch_add(1, Ordering::SeqCst);
            }
            p.fetch_max((rms * 1e6) as u64, Ordering::SeqCst);
        }
    });
    Speaker {
        frames,
        loud_frames,
        peak,
    }
}

async fn rust_webrtc_client_holds_an_interview_through_the_http_api(backend: Backend) {
    let started = Instant::now();
    let app = spawn_app(backend).await;
    let alice = app.signed_in_user().await;
    let id = created_id(&app, &alice).await;

    // The events socket, opened before the offer: it waits for the interview to go live.
    let ticket = ticket_value(&app, &alice, id).await;
    let (mut events, socket_closed) = spawn_event_reader(events_url(&app, id, &ticket));
    let mut seen = Vec::new();

    // Offer → answer through the HTTP API; the answer carries loopback candidates only.
    let offered_at = Instant::now();
    let (pending, offer) = client_offer().await;
    let response = post_offer(&app, &alice, id, &offer).await;
    assert_eq!(response.status(), 200);
    let answer: SessionDescription = response.json().await.unwrap();
    let candidates: Vec<&str> = answer
        .sdp
        .lines()
        .filter(|line| line.starts_with("a=candidate:"))
        .collect();
    assert!(!candidates.is_empty(), "the answer carries host candidates");
    assert!(
        candidates
            .iter()
            .all(|c| engine::transport::sdp::candidate_is_loopback(c)),
        "loopback-only server: {candidates:?}"
    );
    let MediaSession {
        inbound,
        outbound,
        local_candidates: _,
        control,
    } = pending
        .accept_answer(&answer)
        .await
        .expect("answer applies");
    control
        .wait_connected(Duration::from_secs(10))
        .await
        .expect("ICE and DTLS connect over loopback");
    let connect_time = offered_at.elapsed();
    eprintln!("connected {connect_time:?} after the offer started");
    let speaker = spawn_speaker(inbound);
    let microphone = spawn_microphone(outbound);

    // The greeting is spoken; then the interviewer listens.
    wait_event(
        &mut events,
        &mut seen,
        Duration::from_secs(10),
        "hello",
        |e| e["type"] == "hello",
    )
    .await;
    let greeting = wait_event(
        &mut events,
        &mut seen,
        Duration::from_secs(30),
        "the greeting's text",
        |e| e["type"] == "interviewer_text",
    )
    .await;
    wait_event(
        &mut events,
        &mut seen,
        Duration::from_secs(30),
        "listening after the greeting",
        |e| is_state(e, "listening"),
    )
    .await;
    let greeting_frames = speaker.loud_frames.load(Ordering::SeqCst);
    assert!(
        greeting_frames >= 25,
        "the greeting's audio arrived ({greeting_frames} frames above {ENERGY_FLOOR})"
    );

    // The candidate answers: 1.6 s of voiced tone, then silence (the mic keeps sending).
    let before = app
        .state
        .local_vendors
        .as_ref()
        .expect("keyless local mode")
        .deepgram
        .counters();
    microphone.voiced.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    microphone.voiced.store(false, Ordering::SeqCst);
    let spoke = microphone.voiced_frames.load(Ordering::SeqCst);
    let final_text = wait_event(
        &mut events,
        &mut seen,
        Duration::from_secs(15),
        "the candidate's final transcript",
        |e| e["type"] == "final",
    )
    .await;
    assert!(
        final_text["text"]
            .as_str()
            .is_some_and(|t| t.contains("local mode")),
        "{final_text}"
    );
    let turn = wait_event(
        &mut events,
        &mut seen,
        Duration::from_secs(15),
        "the turn's latency",
        |e| e["type"] == "turn",
    )
    .await;
    eprintln!("turn breakdown (event): {}", turn["breakdown"]);
    let loud_before_reply = speaker.loud_frames.load(Ordering::SeqCst);
    wait_event(
        &mut events,
        &mut seen,
        Duration::from_secs(30),
        "listening after the reply",
        |e| is_state(e, "listening"),
    )
    .await;
    let reply_frames = speaker.loud_frames.load(Ordering::SeqCst) - loud_before_reply;
    assert!(
        reply_frames >= 25,
        "the reply's audio arrived ({reply_frames} frames)"
    );
    let peak = speaker.peak.load(Ordering::SeqCst) as f64 / 1e6;
    assert!(peak > 0.05, "interviewer audio peak RMS {peak}");
    let after = app
        .state
        .local_vendors
        .as_ref()
        .unwrap()
        .deepgram
        .counters();
    let heard_seconds = after.audio_seconds - before.audio_seconds;
    assert!(
        after.max_rms > 1000.0,
        "the fake STT heard the tone (max RMS {})",
        after.max_rms
    );
    assert!(
        heard_seconds >= 1.2,
        "the fake STT received the audio ({heard_seconds:.2} s while {spoke} voiced frames were sent)"
    );

    // Closing the client ends the interview (peer gone), which closes the events socket.
    let closed_at = Instant::now();
    control.close().await;
    let ended = wait_event(
        &mut events,
        &mut seen,
        Duration::from_secs(20),
        "the end",
        |e| e["type"] == "ended",
    )
    .await;
    assert!(
        ended["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{ended}"
    );
    wait_not_live(&app, id).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket_closed.load(Ordering::SeqCst) {
        assert!(
            Instant::now() < deadline,
            "the interview's end closes the socket"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "interview ended {:?} after the client closed",
        closed_at.elapsed()
    );
    assert!(matches!(control.state(), ConnectionState::Ended(_)));

    // The stored interview: ended with a reason, both speakers, a latency row.
    let detail: Value = app
        .get_as(&format!("/api/v1/interviews/{id}"), &alice.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detail["interview"]["status"], "ended", "{detail}");
    assert!(
        detail["interview"]["end_reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{}",
        detail["interview"]
    );
    let transcript = detail["transcript"].as_array().expect("transcript");
    for who in ["candidate", "interviewer"] {
        assert!(
            transcript.iter().any(|s| s["speaker"] == who),
            "{who} in {transcript:?}"
        );
    }
    assert!(
        transcript.iter().any(|s| s["speaker"] == "candidate"
            && s["text"].as_str().unwrap_or("").contains("local mode"))
    );
    let turns = detail["turns"].as_array().expect("turns");
    assert!(!turns.is_empty(), "a per-turn breakdown row");
    let row = &turns[0];
    let v2v = row["v2v_ms"].as_f64().expect("v2v_ms");
    assert!(v2v > 0.0 && v2v < 15_000.0, "v2v {v2v} ms");
    eprintln!(
        "stored turn: v2v {v2v:.0} ms, engine overhead {} ms, stt {} ms, wait {} ms, llm {} ms, tts {} ms; test took {:?}; frames received {}",
        row["engine_overhead_ms"],
        row["stt_final_ms"],
        row["turn_wait_ms"],
        row["llm_ttft_ms"],
        row["tts_ttfa_ms"],
        started.elapsed(),
        speaker.frames.load(Ordering::SeqCst),
    );

    // Nothing of the conversation reached the logs (every target at TRACE through the
    // production filter): not the candidate's words, not the interviewer's, no audio.
    let logs = tests::captured_logs();
    for (what, text) in [
        ("the candidate's transcript", final_text["text"].as_str()),
        ("the interviewer's words", greeting["text"].as_str()),
    ] {
        let text = text.expect("event text");
        assert!(!text.is_empty());
        assert!(!logs.contains(text), "{what} reached the logs");
    }
    assert!(
        !has_a_run_of_numbers(&logs),
        "something like an audio buffer (a long run of numbers) reached the logs"
    );
}

/// Whether `text` holds what a dumped audio buffer looks like in a log line (`Debug` of PCM
/// samples or of Opus/RTP bytes): 32 or more comma-separated numbers in a row.
fn has_a_run_of_numbers(text: &str) -> bool {
    let mut run = 0;
    for token in text.split([',', '[', ']', '\n']) {
        if token.trim().parse::<i64>().is_ok() {
            run += 1;
            if run >= 32 {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

#[test]
fn a_dumped_buffer_is_recognized_and_ordinary_lines_are_not() {
    let samples: Vec<i16> = (0..64).map(|i| i * 37 - 900).collect();
    assert!(has_a_run_of_numbers(&format!("frame {samples:?} sent")));
    assert!(has_a_run_of_numbers(&format!("{:?}", vec![0u8; 40])));
    assert!(!has_a_run_of_numbers(
        "turn: v2v 433 ms, parts [0, 240, 160, 0, 154, 16, 152, 0]"
    ));
}

/// Closing the events socket does not end the interview.
#[actix_web::test]
async fn closing_the_events_socket_does_not_end_the_interview() {
    let app = spawn_app(Backend::Sqlite).await;
    let alice = app.signed_in_user().await;
    let id = created_id(&app, &alice).await;
    let (pending, offer) = client_offer().await;
    let response = post_offer(&app, &alice, id, &offer).await;
    assert_eq!(response.status(), 200);
    let answer: SessionDescription = response.json().await.unwrap();
    let session = pending.accept_answer(&answer).await.expect("answer");
    session
        .control
        .wait_connected(Duration::from_secs(10))
        .await
        .expect("connects");

    // Opened after the offer: it still sees the interview from its start.
    let ticket = ticket_value(&app, &alice, id).await;
    let (mut socket, _) = tokio_tungstenite::connect_async(events_url(&app, id, &ticket))
        .await
        .expect("socket");
    let mut first = Vec::new();
    while first.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(10), socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                first.push(serde_json::from_str::<Value>(&text).unwrap())
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("events: {other:?}"),
        }
    }
    assert_eq!(first[0]["type"], "hello");
    assert!(
        is_state(&first[1], "connecting") || first[1]["type"] == "state",
        "{first:?}"
    );
    socket.close(None).await.unwrap();
    drop(socket);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(app.state.engine.is_live(id), "still live");
    session.close().await;
    wait_not_live(&app, id).await;
}
