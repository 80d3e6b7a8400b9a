//! Feedback after the call, black-box: a held interview is scored off the live path with
//! evidence taken from the candidate's own words; re-scoring replaces rows; a job a restart
//! interrupted is picked up; an objection to skill tracking keeps scores but no levels; skill
//! levels, history and the drill plan come out of the API.

use engine::InterviewId;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use engine::transport::{MediaSession, ToneGenerator, WebRtcClient, WebRtcConfig};
use entities::interviews::InterviewKind;
use entities::transcript_segments::Speaker;
use entities::{scoring_jobs, skill_history};
use futures_util::StreamExt;
use reqwest::Method;
use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use tests::feedback::{
    STRONG_ANSWER, VAGUE_ANSWER, ended_interview_with_transcript, rescore, wait_scored,
};
use tests::{Backend, TestApp, assert_json_error, db_tests, spawn_app, spawn_app_with};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

db_tests!(
    a_held_interview_is_scored_with_evidence_from_the_candidates_words,
    two_interviews_give_skill_levels_history_and_a_drill_plan,
    scoring_again_replaces_the_interviews_rows,
    a_job_interrupted_by_a_restart_is_picked_up_at_start,
    an_objection_to_skill_tracking_keeps_scores_but_no_levels,
    feedback_routes_refuse_bad_input_with_clear_errors,
    claude_scores_on_the_accounts_own_key_else_the_platform_key_and_is_metered,
    a_rescore_asked_for_during_a_run_is_not_lost,
    two_nodes_never_score_one_interview_at_once,
    a_rescore_after_the_word_timestamps_were_deleted_is_refused,
);

fn spawn_event_reader(url: String) -> mpsc::UnboundedReceiver<Value> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let (mut socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("events socket opens");
        while let Some(Ok(message)) = socket.next().await {
            match message {
                Message::Text(text) => {
                    if let Ok(value) = serde_json::from_str::<Value>(&text) {
                        let _ = tx.send(value);
                    }
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
    });
    rx
}

async fn wait_event(
    events: &mut mpsc::UnboundedReceiver<Value>,
    timeout: Duration,
    what: &str,
    want: impl Fn(&Value) -> bool,
) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(event)) if want(&event) => return,
            Ok(Some(_)) => {}
            Ok(None) => panic!("the events socket closed before {what}"),
            Err(_) => panic!("no {what} within {timeout:?}"),
        }
    }
}

fn listening(event: &Value) -> bool {
    event["type"] == "state" && event["phase"] == "listening"
}

async fn a_held_interview_is_scored_with_evidence_from_the_candidates_words(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.signed_in_user().await;
    let created: Value = app
        .call(
            Method::POST,
            "/api/v1/interviews",
            Some(&alice.access_token),
            Some(&json!({"kind": "behavioral"})),
        )
        .await
        .json()
        .await
        .unwrap();
    let id: InterviewId = created["id"].as_str().unwrap().parse().unwrap();
    let ticket: Value = app
        .call(
            Method::POST,
            &format!("/api/v1/interviews/{id}/events-ticket"),
            Some(&alice.access_token),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let mut events = spawn_event_reader(format!(
        "ws://127.0.0.1:{}/api/v1/interviews/{id}/events?ticket={}",
        app.port,
        ticket["ticket"].as_str().unwrap()
    ));
    // Not ended yet: no scores.
    let early: Value = app
        .get_as(
            &format!("/api/v1/interviews/{id}/scores"),
            &alice.access_token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(early["state"], "none", "{early}");

    let (pending, offer) = WebRtcClient::offer(&WebRtcConfig::loopback())
        .await
        .expect("the client offers");
    let response = app
        .call(
            Method::POST,
            &format!("/api/v1/interviews/{id}/offer"),
            Some(&alice.access_token),
            Some(&serde_json::to_value(&offer).unwrap()),
        )
        .await;
    assert_eq!(response.status(), 200);
    let answer = response.json().await.unwrap();
    let MediaSession {
        inbound,
        mut outbound,
        control,
        ..
    } = pending
        .accept_answer(&answer)
        .await
        .expect("answer applies");
    control
        .wait_connected(Duration::from_secs(10))
        .await
        .expect("ICE and DTLS connect over loopback");
    // Drain what the interviewer says; send a 20 ms frame every 20 ms (a tone while voiced).
    tokio::spawn(async move {
        let mut inbound = inbound;
        while inbound.recv().await.is_some() {}
    });
    let voiced = Arc::new(AtomicBool::new(false));
    let flag = voiced.clone();
    tokio::spawn(async move {
        let mut tone = ToneGenerator::new(engine::transport::OpusRate::Hz48000, 180.0, 0.3);
        let silence = vec![0i16; engine::transport::OpusRate::Hz48000.frame_samples()];
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        loop {
            tick.tick().await;
            let frame = if flag.load(Ordering::SeqCst) {
                tone.next_frame()
            } else {
                silence.clone()
            };
            if outbound
                .send_frame(&frame, engine::transport::OpusRate::Hz48000)
                .is_err()
            {
                break;
            }
        }
    });
    wait_event(
        &mut events,
        Duration::from_secs(40),
        "listening after the greeting",
        listening,
    )
    .await;
    voiced.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(4)).await;
    voiced.store(false, Ordering::SeqCst);
    wait_event(
        &mut events,
        Duration::from_secs(20),
        "the candidate's final",
        |e| e["type"] == "final",
    )
    .await;
    wait_event(
        &mut events,
        Duration::from_secs(40),
        "listening after the reply",
        listening,
    )
    .await;

    // The candidate ends the interview; scoring follows, off the live path.
    let response = app
        .call(
            Method::POST,
            &format!("/api/v1/interviews/{id}/end"),
            Some(&alice.access_token),
            None,
        )
        .await;
    assert_eq!(response.status(), 202);
    let scores = wait_scored(&app, &alice, id).await;
    control.close().await;
    assert_eq!(scores["state"], "done", "{scores}");
    assert_eq!(scores["scorer"], "local_rules");
    let answers = scores["answers"].as_array().expect("answers");
    assert!(!answers.is_empty(), "{scores}");

    // Evidence: every quote is words the candidate said, inside the answer's span, on the
    // interview's clock (the same clock as the stored transcript).
    let detail: Value = app
        .get_as(&format!("/api/v1/interviews/{id}"), &alice.access_token)
        .await
        .json()
        .await
        .unwrap();
    let candidate: Vec<&Value> = detail["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["speaker"] == "candidate")
        .collect();
    let said: String = candidate
        .iter()
        .map(|s| s["text"].as_str().unwrap())
        .collect::<Vec<_>>()
        .join(" ");
    let first_start = candidate[0]["start_ms"].as_i64().unwrap();
    let last_end = candidate.last().unwrap()["end_ms"].as_i64().unwrap();
    let mut findings = 0;
    for answer in answers {
        assert!(
            answer["overall"]
                .as_f64()
                .is_some_and(|o| (0.0..=100.0).contains(&o))
        );
        assert!(!answer["improved_answer"].as_str().unwrap().is_empty());
        assert!(answer["question"].as_str().is_some_and(|q| !q.is_empty()));
        for finding in answer["findings"].as_array().unwrap() {
            findings += 1;
            let evidence = &finding["evidence"];
            let quote = evidence["quote"].as_str().unwrap();
            assert!(
                !quote.is_empty() && said.contains(quote),
                "{quote:?} in {said:?}"
            );
            let (start, end) = (
                evidence["start_ms"].as_i64().unwrap(),
                evidence["end_ms"].as_i64().unwrap(),
            );
            assert!(
                first_start <= start && start <= end && end <= last_end,
                "evidence {start}..{end} within the candidate's {first_start}..{last_end}"
            );
            assert!(finding["fix"].as_str().is_some_and(|f| !f.is_empty()));
        }
    }
    // "we moved the billing jobs..., so failed payments dropped by 30 percent": no STAR shape.
    assert!(findings > 0, "{scores}");
    let delivery = &scores["delivery"];
    assert!(delivery["words"].as_u64().unwrap() >= 15, "{delivery}");
    assert!(delivery["words_per_minute"].as_f64().unwrap() > 0.0);
    assert!(delivery["grade"].is_string());

    // Skills moved, with history and a drill plan.
    let skills: Value = app
        .get_as("/api/v1/skills", &alice.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(skills["skill_tracking"], true);
    assert!(!skills["skills"].as_array().unwrap().is_empty(), "{skills}");
    let drills: Value = app
        .get_as("/api/v1/drills", &alice.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert!(!drills["slots"].as_array().unwrap().is_empty(), "{drills}");
}

async fn two_interviews_give_skill_levels_history_and_a_drill_plan(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.signed_in_user().await;
    let account = app.account_id(&alice).await;
    let question = "Tell me about a project you are proud of.";
    let first = ended_interview_with_transcript(
        &app,
        account,
        InterviewKind::Behavioral,
        &[
            (Speaker::Interviewer, question),
            (Speaker::Candidate, VAGUE_ANSWER),
        ],
    )
    .await;
    let scores = rescore(&app, &alice, first).await;
    let answer = &scores["answers"][0];
    let rules: Vec<&str> = answer["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    for rule in ["no_ownership", "result_not_specific", "missing_metrics"] {
        assert!(rules.contains(&rule), "{rule} in {rules:?}");
    }
    let vague = answer["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "result_not_specific")
        .unwrap();
    assert_eq!(vague["evidence"]["quote"], "went well,");
    // "went" is word 28 of the answer; the answer starts 2 s after the question's 9 words.
    let answer_start = 1_000 + 9 * 400 + 2_000;
    assert_eq!(vague["evidence"]["start_ms"], answer_start + 28 * 400);
    assert!(answer["delivery"]["words_per_minute"].as_f64().unwrap() > 100.0);

    let second = ended_interview_with_transcript(
        &app,
        account,
        InterviewKind::Behavioral,
        &[
            (Speaker::Interviewer, question),
            (Speaker::Candidate, STRONG_ANSWER),
        ],
    )
    .await;
    let strong = rescore(&app, &alice, second).await;
    assert!(
        strong["answers"][0]["overall"].as_f64().unwrap()
            > answer["overall"].as_f64().unwrap() + 20.0,
        "the strong answer scores higher: {strong}"
    );

    let skills: Value = app
        .get_as("/api/v1/skills", &alice.access_token)
        .await
        .json()
        .await
        .unwrap();
    let ownership = skills["skills"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["skill"] == "ownership_signal")
        .expect("ownership_signal tracked")
        .clone();
    // 50 → negative signal from the vague answer → positive from the strong one.
    assert_eq!(ownership["updates"], 2);
    assert_eq!(ownership["area"], "behavioral");
    let history: Value = app
        .get_as(
            "/api/v1/skills/ownership_signal/history",
            &alice.access_token,
        )
        .await
        .json()
        .await
        .unwrap();
    let points = history["history"].as_array().unwrap();
    assert_eq!(points.len(), 2, "{history}");
    assert_eq!(points[0]["positive"], false);
    assert_eq!(points[0]["previous_level"], 50.0);
    assert_eq!(points[1]["positive"], true);
    assert_eq!(points[1]["previous_level"], points[0]["level"]);
    assert_eq!(points[1]["level"], ownership["level"]);
    assert!(points[1]["level"].as_f64() > points[0]["level"].as_f64());
    assert!(ownership["best_level"].as_f64() >= ownership["level"].as_f64());

    // The drill plan: three slots a week without a date; daily with an interview in 5 days.
    let drills: Value = app
        .get_as("/api/v1/drills", &alice.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(drills["cadence"], "three_per_week", "{drills}");
    assert_eq!(drills["slots"].as_array().unwrap().len(), 3);
    let soon = (Utc::now().date_naive() + chrono::Duration::days(5)).to_string();
    let response = app
        .call(
            Method::PATCH,
            "/api/v1/settings",
            Some(&alice.access_token),
            Some(&json!({"target_interview_date": soon})),
        )
        .await;
    assert_eq!(response.status(), 200);
    let settings: Value = response.json().await.unwrap();
    assert_eq!(settings["target_interview_date"], soon);
    let drills: Value = app
        .get_as("/api/v1/drills", &alice.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(drills["cadence"], "daily", "{drills}");
    let slot = &drills["slots"][0];
    assert!(slot["questions"].as_u64().unwrap() >= 3);
    assert_eq!(
        slot["minutes"].as_u64().unwrap(),
        slot["questions"].as_u64().unwrap() * 7
    );
    // "Practise this": a drill interview focused on the slot's skill.
    let focus = slot["skill"].as_str().unwrap();
    let response = app
        .call(
            Method::POST,
            "/api/v1/interviews",
            Some(&alice.access_token),
            Some(&json!({"kind": "behavioral", "focus_skill": focus})),
        )
        .await;
    assert_eq!(response.status(), 201);
    let drill: Value = response.json().await.unwrap();
    assert_eq!(drill["focus_skill"], focus);
    // The export carries the feedback tables.
    let export: Value = app
        .get_as("/api/v1/privacy/export", &alice.access_token)
        .await
        .json()
        .await
        .unwrap();
    for table in [
        "answer_feedback",
        "scoring_jobs",
        "skill_levels",
        "skill_history",
    ] {
        assert!(
            !export["tables"][table].as_array().unwrap().is_empty(),
            "{table} in the export"
        );
    }
}

async fn counts(app: &TestApp, interview: InterviewId) -> (u64, u64, u64) {
    let feedback = entities::answer_feedback::Entity::find()
        .filter(entities::answer_feedback::Column::InterviewId.eq(interview))
        .count(&app.db)
        .await
        .unwrap();
    let scores = entities::answer_scores::Entity::find()
        .filter(entities::answer_scores::Column::InterviewId.eq(interview))
        .count(&app.db)
        .await
        .unwrap();
    let history = skill_history::Entity::find()
        .filter(skill_history::Column::InterviewId.eq(interview))
        .count(&app.db)
        .await
        .unwrap();
    (feedback, scores, history)
}

async fn scoring_again_replaces_the_interviews_rows(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.signed_in_user().await;
    let account = app.account_id(&alice).await;
    let id = ended_interview_with_transcript(
        &app,
        account,
        InterviewKind::Behavioral,
        &[
            (Speaker::Interviewer, "Tell me about a project."),
            (Speaker::Candidate, VAGUE_ANSWER),
            (Speaker::Interviewer, "Why did you choose that approach?"),
            (Speaker::Candidate, STRONG_ANSWER),
            (Speaker::Interviewer, "Thanks, that is all."),
        ],
    )
    .await;
    let once = rescore(&app, &alice, id).await;
    assert_eq!(once["answers"].as_array().unwrap().len(), 2);
    let rows_once = counts(&app, id).await;
    assert!(
        rows_once.0 == 2 && rows_once.1 > 0 && rows_once.2 > 0,
        "{rows_once:?}"
    );
    let skills_once: Value = app
        .get_as("/api/v1/skills", &alice.access_token)
        .await
        .json()
        .await
        .unwrap();
    let twice = rescore(&app, &alice, id).await;
    assert_eq!(counts(&app, id).await, rows_once, "no duplicates");
    assert_eq!(once["answers"], twice["answers"], "same scores");
    let skills_twice: Value = app
        .get_as("/api/v1/skills", &alice.access_token)
        .await
        .json()
        .await
        .unwrap();
    let levels = |v: &Value| -> Vec<(String, f64, i64)> {
        v["skills"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["skill"].as_str().unwrap().to_owned(),
                    s["level"].as_f64().unwrap(),
                    s["updates"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(
        levels(&skills_once),
        levels(&skills_twice),
        "levels unchanged"
    );
}

async fn a_job_interrupted_by_a_restart_is_picked_up_at_start(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.signed_in_user().await;
    let account = app.account_id(&alice).await;
    // The interview and its interrupted job are written in one transaction: the first server's
    // own start-up sweep runs concurrently and must see both or neither (seeing the interview
    // alone, it would score it as a fresh job and race the row written below).
    let txn = engine::database::begin_write(&app.db).await.unwrap();
    let id = tests::feedback::ended_interview_in(
        &txn,
        account,
        InterviewKind::Behavioral,
        &[
            (Speaker::Interviewer, "Tell me about a project."),
            (Speaker::Candidate, STRONG_ANSWER),
        ],
    )
    .await;
    // The first server was scoring it when it went down.
    let interrupted = scoring_jobs::ActiveModel {
        interview_id: Set(id),
        account_id: Set(account),
        state: Set("running".into()),
        attempts: Set(1),
        scorer: Set(None),
        error: Set(None),
        answers: Set(0),
        delivery: Set(None),
        requested_at: Set(Utc::now()),
        started_at: Set(Some(Utc::now())),
        finished_at: Set(None),
        claim: Set(Some(Uuid::new_v4())),
        claimed_by: Set(Some(app.settings.node_id.clone())),
    };
    scoring_jobs::Entity::insert(interrupted)
        .exec(&txn)
        .await
        .unwrap();
    txn.commit().await.unwrap();
    // Its own sweep ran at its start; a second server on the same database is the restart.
    let restarted = api::startup::Application::build(app.settings.clone())
        .await
        .expect("the restarted server builds");
    actix_web::rt::spawn(restarted.run_until_stopped());
    let scores = wait_scored(&app, &alice, id).await;
    assert_eq!(scores["state"], "done");
    assert_eq!(scores["answers"].as_array().unwrap().len(), 1);
    let job = scoring_jobs::Entity::find_by_id(id)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    // Picked up again, not scored as new: the interrupted attempt counts.
    assert_eq!(job.attempts, 2);
    assert_eq!(job.claim, None, "a finished job holds no claim");
}

async fn an_objection_to_skill_tracking_keeps_scores_but_no_levels(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.signed_in_user().await;
    let account = app.account_id(&alice).await;
    let question = "Tell me about a project.";
    let first = ended_interview_with_transcript(
        &app,
        account,
        InterviewKind::Behavioral,
        &[
            (Speaker::Interviewer, question),
            (Speaker::Candidate, VAGUE_ANSWER),
        ],
    )
    .await;
    rescore(&app, &alice, first).await;
    let before: Value = app
        .get_as("/api/v1/skills", &alice.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert!(!before["skills"].as_array().unwrap().is_empty());
    // The objection deletes levels and history; later interviews get scores only.
    let response = app
        .call(
            Method::PATCH,
            "/api/v1/settings",
            Some(&alice.access_token),
            Some(&json!({"skill_tracking": false})),
        )
        .await;
    assert_eq!(response.status(), 200);
    let second = ended_interview_with_transcript(
        &app,
        account,
        InterviewKind::Behavioral,
        &[
            (Speaker::Interviewer, question),
            (Speaker::Candidate, STRONG_ANSWER),
        ],
    )
    .await;
    let scores = rescore(&app, &alice, second).await;
    assert_eq!(scores["state"], "done");
    assert!(!scores["answers"].as_array().unwrap().is_empty());
    let skills: Value = app
        .get_as("/api/v1/skills", &alice.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(skills["skill_tracking"], false);
    assert_eq!(skills["skills"], json!([]));
    let history = skill_history::Entity::find()
        .filter(skill_history::Column::AccountId.eq(account))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(history, 0);
    let drills: Value = app
        .get_as("/api/v1/drills", &alice.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(drills["slots"], json!([]));
}

async fn feedback_routes_refuse_bad_input_with_clear_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.signed_in_user().await;
    let a = Some(alice.access_token.as_str());
    let created: Value = app
        .call(
            Method::POST,
            "/api/v1/interviews",
            a,
            Some(&json!({"kind": "technical"})),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    // Not ended: nothing to score yet.
    let code = assert_json_error(
        app.call(
            Method::POST,
            &format!("/api/v1/interviews/{id}/score"),
            a,
            None,
        )
        .await,
        409,
    )
    .await;
    assert_eq!(code, "interview_not_ended");
    // Ended with no answer of 15 words: skipped, not failed.
    app.call(
        Method::POST,
        &format!("/api/v1/interviews/{id}/end"),
        a,
        None,
    )
    .await;
    let scores = rescore(&app, &alice, id.parse().unwrap()).await;
    assert_eq!(scores["state"], "skipped");
    assert_eq!(scores["answers"], json!([]));
    for path in [
        "/api/v1/skills/juggling/history".to_owned(),
        format!("/api/v1/interviews/{}/scores", Uuid::now_v7()),
        "/api/v1/interviews/not-a-uuid/scores".to_owned(),
    ] {
        let response = app.call(Method::GET, &path, a, None).await;
        assert!(response.status().is_client_error(), "{path}");
        let body: Value = response.json().await.unwrap();
        assert!(body["error"]["code"].is_string(), "{path}: {body}");
    }
    assert_json_error(
        app.call(
            Method::POST,
            "/api/v1/interviews",
            a,
            Some(&json!({"kind": "behavioral", "focus_skill": "juggling"})),
        )
        .await,
        422,
    )
    .await;
    let response = app
        .call(
            Method::PATCH,
            "/api/v1/settings",
            a,
            Some(&json!({"target_interview_date": "next tuesday"})),
        )
        .await;
    assert!(response.status().is_client_error());
    // A date can be cleared again.
    let cleared: Value = app
        .call(
            Method::PATCH,
            "/api/v1/settings",
            a,
            Some(&json!({"target_interview_date": null})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cleared["target_interview_date"], Value::Null);
    for path in ["/api/v1/skills", "/api/v1/drills"] {
        assert_json_error(app.call(Method::GET, path, None, None).await, 401).await;
    }
}

/// The Claude scorer takes its key from the key lease (the account's own Anthropic key, else
/// the platform's) and writes a usage row for each call, marked with whose key paid.
async fn claude_scores_on_the_accounts_own_key_else_the_platform_key_and_is_metered(
    backend: Backend,
) {
    let fakes = fakes::FakeVendors::start_default().await.expect("fakes");
    let url = fakes.anthropic.base_url();
    let app = spawn_app_with(backend, move |settings| {
        settings.anthropic_api_key = Some("sk-ant-test-platform-key".to_owned().into());
        settings.anthropic_base_url = url;
    })
    .await;
    let alice = app.signed_in_user().await;
    let bob = app.signed_in_user().await;
    let response = app
        .call(
            Method::PUT,
            "/api/v1/settings/keys/anthropic",
            Some(&bob.access_token),
            Some(&json!({"api_key": "sk-ant-api03-THISISAFAKEKEYFORTESTS-0123456789-QWER"})),
        )
        .await;
    assert_eq!(response.status(), 200);
    let question = "Tell me about a project you are proud of.";
    let mut interviews = Vec::new();
    for (session, expected) in [(&alice, "platform"), (&bob, "byok")] {
        let account = app.account_id(session).await;
        let id = ended_interview_with_transcript(
            &app,
            account,
            InterviewKind::Behavioral,
            &[
                (Speaker::Interviewer, question),
                (Speaker::Candidate, VAGUE_ANSWER),
            ],
        )
        .await;
        let scores = rescore(&app, session, id).await;
        assert_eq!(scores["state"], "done", "{scores}");
        interviews.push((id, expected));
    }
    let rubric_requests = fakes
        .anthropic
        .requests()
        .iter()
        .filter(|request| {
            request.body["system"]
                .to_string()
                .contains("You score one answer from a mock job interview")
        })
        .count();
    assert!(rubric_requests >= 2, "both answers went to Claude");
    app.state.engine.flush_usage().await.expect("flush");
    for (id, expected) in interviews {
        let rows = entities::usage_log::Entity::find()
            .filter(entities::usage_log::Column::InterviewId.eq(id))
            .all(&app.db)
            .await
            .expect("usage rows");
        assert!(!rows.is_empty(), "the scorer's calls are metered");
        // Priced by the scorer model's entry of the shipped price table.
        let prices = api::configuration::shipped_prices()
            .llm_prices(&app.state.settings.anthropic_model)
            .expect("the scorer's model is priced");
        for row in &rows {
            assert_eq!(row.provider, "anthropic");
            assert_eq!(row.key_source, expected, "whose key paid");
            assert!(row.input_tokens > 0, "{row:?}");
            let usage = engine::vendors::usage::LlmUsage {
                input_tokens: row.input_tokens as u64,
                output_tokens: row.output_tokens as u64,
                cache_read_input_tokens: row.cache_read_tokens as u64,
                cache_creation_input_tokens: row.cache_creation_tokens as u64,
                ..Default::default()
            };
            assert_eq!(
                row.cost_micro_usd,
                engine::metering::micro_usd(usage.cost_usd(&prices)),
                "{row:?}"
            );
            assert!(row.cost_micro_usd > 0, "{row:?}");
        }
    }
}

/// A scorer that waits to be let through, so a test can act while a run is scoring.
struct Gated {
    entered: Arc<tokio::sync::Notify>,
    release: Arc<tokio::sync::Notify>,
}

#[async_trait::async_trait]
impl engine::feedback::scorer::AnswerScorer for Gated {
    fn name(&self) -> &'static str {
        "gated"
    }

    async fn score(
        &self,
        kind: engine::feedback::AnswerKind,
        segment: &engine::feedback::segments::Segment,
    ) -> Result<engine::feedback::AnswerScore, engine::feedback::scorer::ScoreError> {
        self.entered.notify_one();
        self.release.notified().await;
        engine::feedback::scorer::LocalScorer::default()
            .score(kind, segment)
            .await
    }
}

/// A signed-in user with one ended interview: one question, `answer`.
async fn one_answer(app: &TestApp, answer: &str) -> (tests::Session, InterviewId) {
    let alice = app.signed_in_user().await;
    let account = app.account_id(&alice).await;
    let id = ended_interview_with_transcript(
        app,
        account,
        InterviewKind::Behavioral,
        &[
            (Speaker::Interviewer, "Tell me about a project."),
            (Speaker::Candidate, answer),
        ],
    )
    .await;
    (alice, id)
}

/// The interview's scoring job as stored.
async fn job(app: &TestApp, id: InterviewId) -> scoring_jobs::Model {
    scoring_jobs::Entity::find_by_id(id)
        .one(&app.db)
        .await
        .unwrap()
        .expect("a scoring job")
}

async fn interview_row(app: &TestApp, id: InterviewId) -> entities::interviews::Model {
    entities::interviews::Entity::find_by_id(id)
        .one(&app.db)
        .await
        .unwrap()
        .expect("the interview")
}

async fn a_rescore_asked_for_during_a_run_is_not_lost(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, id) = one_answer(&app, STRONG_ANSWER).await;
    // A run on another node is scoring the interview...
    let gate = Gated {
        entered: Arc::default(),
        release: Arc::default(),
    };
    let (entered, release) = (gate.entered.clone(), gate.release.clone());
    let db = app.db.clone();
    let config = app.settings.feedback.clone();
    let run = tokio::spawn(async move {
        api::feedback::store::score_interview(&db, &config, &gate, id, "node-2", 3).await
    });
    entered.notified().await;
    // ...when the candidate asks for a re-score (say, after adding their own Claude key).
    let response = app
        .call(
            Method::POST,
            &format!("/api/v1/interviews/{id}/score"),
            Some(&alice.access_token),
            None,
        )
        .await;
    assert_eq!(response.status(), 202);
    release.notify_one();
    let outcome = run.await.unwrap().expect("the older run ends cleanly");
    assert_eq!(
        outcome,
        api::feedback::store::Outcome::Superseded,
        "the older run does not write over the request"
    );
    // The request is honoured: this server's own run scores the interview.
    let scores = wait_scored(&app, &alice, id).await;
    assert_eq!(scores["state"], "done");
    assert_eq!(scores["answers"].as_array().unwrap().len(), 1);
    assert_eq!(scores["scorer"], "local_rules");
    let job = job(&app, id).await;
    assert_eq!(
        job.claimed_by.as_deref(),
        Some(app.settings.node_id.as_str())
    );
    assert_eq!(counts(&app, id).await.0, 1, "one set of rows");
}

async fn two_nodes_never_score_one_interview_at_once(backend: Backend) {
    use api::feedback::store::{self, Outcome};
    let app = spawn_app(backend).await;
    let (_alice, id) = one_answer(&app, VAGUE_ANSWER).await;
    let interview = interview_row(&app, id).await;
    let now = Utc::now();
    let a = store::claim(&app.db, &interview, "node-a", 3, now)
        .await
        .unwrap()
        .expect("the first claim takes the new job");
    assert_eq!(
        store::claim(&app.db, &interview, "node-b", 3, now)
            .await
            .unwrap(),
        Err(Outcome::Busy),
        "a second node's sweep leaves a running job alone"
    );
    // Node A died and never came back: its claim goes stale, and node B takes the job over.
    scoring_jobs::Entity::update(scoring_jobs::ActiveModel {
        interview_id: Set(id),
        started_at: Set(Some(
            now - store::STALE_CLAIM - chrono::Duration::seconds(1),
        )),
        ..Default::default()
    })
    .exec(&app.db)
    .await
    .unwrap();
    let b = store::claim(&app.db, &interview, "node-b", 3, now)
        .await
        .unwrap()
        .expect("a stale claim is taken over");
    assert_ne!(a, b);
    // A's late failure report does not touch B's run.
    let error =
        store::StoreError::Scorer(engine::feedback::scorer::ScoreError::Task("late".into()));
    store::mark_failed(&app.db, id, a, &error).await.unwrap();
    let held = job(&app, id).await;
    assert_eq!((held.state.as_str(), held.claim), ("running", Some(b)));
    assert_eq!(held.attempts, 2);
    // At its start a node releases only the jobs it held itself.
    assert_eq!(
        store::release_own_claims(&app.db, "node-a").await.unwrap(),
        0
    );
    assert_eq!(
        store::release_own_claims(&app.db, "node-b").await.unwrap(),
        1
    );
    let released = job(&app, id).await;
    assert_eq!((released.state.as_str(), released.claim), ("pending", None));
}

async fn a_rescore_after_the_word_timestamps_were_deleted_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, id) = one_answer(&app, STRONG_ANSWER).await;
    let scored = rescore(&app, &alice, id).await;
    assert!(scored["delivery"]["words_per_minute"].as_f64().is_some());
    // The retention sweep deletes word timestamps after 14 days.
    entities::transcript_words::Entity::delete_many()
        .filter(entities::transcript_words::Column::InterviewId.eq(id))
        .exec(&app.db)
        .await
        .unwrap();
    let response = app
        .call(
            Method::POST,
            &format!("/api/v1/interviews/{id}/score"),
            Some(&alice.access_token),
            None,
        )
        .await;
    assert_eq!(assert_json_error(response, 409).await, "word_times_expired");
    // A job that reaches the scorer anyway (queued before the sweep) keeps the stored scores.
    api::feedback::store::request(&app.db, &interview_row(&app, id).await)
        .await
        .unwrap();
    let outcome = api::feedback::store::score_interview(
        &app.db,
        &app.settings.feedback,
        &engine::feedback::scorer::LocalScorer::default(),
        id,
        &app.settings.node_id,
        3,
    )
    .await
    .unwrap();
    assert_eq!(outcome, api::feedback::store::Outcome::WordTimesExpired);
    let after = wait_scored(&app, &alice, id).await;
    assert_eq!(after["state"], "done");
    assert_eq!(
        after["delivery"], scored["delivery"],
        "delivery metrics outlive the words"
    );
    assert_eq!(
        after["answers"], scored["answers"],
        "evidence keeps its real times"
    );
}
