//! Protects the authorization matrix: user A can never read, change or delete user B's data
//! through any route — every user route acts on the caller's own account, and ids smuggled into
//! bodies are rejected.

use reqwest::Method;
use serde_json::{Value, json};
use tests::{Backend, PASSWORD, assert_json_error, db_tests, spawn_app};

db_tests!(user_routes_only_ever_touch_the_callers_own_data);

async fn user_routes_only_ever_touch_the_callers_own_data(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.signed_in_user().await;
    let bob = app.signed_in_user().await;
    let bob_id = app.account_id(&bob).await;
    let a = Some(alice.access_token.as_str());
    let b = Some(bob.access_token.as_str());

    // Bob's state to protect.
    app.call(
        Method::PUT,
        "/api/v1/settings/keys/anthropic",
        b,
        Some(&json!({"api_key": "bob-secret-anthropic-key-0000-BOBK"})),
    )
    .await;
    app.call(
        Method::PATCH,
        "/api/v1/settings",
        b,
        Some(&json!({"digest_opt_in": true})),
    )
    .await;

    // Bob's scored interview: Alice can neither read nor re-score it, and sees none of his skills.
    let bob_interview = tests::feedback::ended_interview_with_transcript(
        &app,
        bob_id,
        entities::interviews::InterviewKind::Behavioral,
        &[
            (
                entities::transcript_segments::Speaker::Interviewer,
                "Tell me about a project.",
            ),
            (
                entities::transcript_segments::Speaker::Candidate,
                tests::feedback::VAGUE_ANSWER,
            ),
        ],
    )
    .await;
    let bob_scores = tests::feedback::rescore(&app, &bob, bob_interview).await;
    assert_eq!(bob_scores["state"], "done");
    for (method, path) in [
        (
            Method::GET,
            format!("/api/v1/interviews/{bob_interview}/scores"),
        ),
        (
            Method::POST,
            format!("/api/v1/interviews/{bob_interview}/score"),
        ),
    ] {
        assert_json_error(app.call(method, &path, a, None).await, 404).await;
    }
    let skills: Value = app
        .get_as("/api/v1/skills", &alice.access_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(skills["skills"], json!([]));
    let history: Value = app
        .get_as(
            "/api/v1/skills/ownership_signal/history",
            &alice.access_token,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(history["history"], json!([]));
    let drills: Value = app
        .get_as("/api/v1/drills", &alice.access_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(drills["slots"], json!([]));

    // Reads by Alice show only Alice.
    let me: Value = app
        .me(&alice.access_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["email"], alice.email);
    let export = app
        .get_as("/api/v1/privacy/export", &alice.access_token)
        .await
        .text()
        .await
        .expect("body");
    assert!(!export.contains(&bob.email) && !export.contains(&bob_id.to_string()));
    let keys: Value = app
        .get_as("/api/v1/settings/keys", &alice.access_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(keys["keys"], json!([]));
    let settings: Value = app
        .get_as("/api/v1/settings", &alice.access_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(settings["digest_opt_in"], false);

    // Ids in bodies are refused, not obeyed.
    for (method, path, body) in [
        (
            Method::PATCH,
            "/api/v1/me",
            json!({"id": bob_id, "display_name": "pwned"}),
        ),
        (Method::PATCH, "/api/v1/me", json!({"account_id": bob_id})),
        (
            Method::PATCH,
            "/api/v1/settings",
            json!({"account_id": bob_id, "digest_opt_in": false}),
        ),
        (
            Method::PUT,
            "/api/v1/settings/keys/anthropic",
            json!({"api_key": "alice-key-000000000000-AAAA", "account_id": bob_id}),
        ),
        (
            Method::DELETE,
            "/api/v1/me",
            json!({"password": PASSWORD, "account_id": bob_id}),
        ),
    ] {
        let response = app.call(method.clone(), path, a, Some(&body)).await;
        assert_json_error(response, 422).await;
    }
    // Alice's writes land on Alice.
    app.call(Method::DELETE, "/api/v1/settings/keys/anthropic", a, None)
        .await;
    app.call(
        Method::PATCH,
        "/api/v1/settings",
        a,
        Some(&json!({"digest_opt_in": false, "training_opt_in": true})),
    )
    .await;
    // Erasure with Alice's token erases Alice, whatever else she knows (all test users share
    // one password, so this is also Bob's).
    let response = app
        .call(
            Method::DELETE,
            "/api/v1/me",
            a,
            Some(&json!({"password": bob.password})),
        )
        .await;
    assert_eq!(response.status(), 200);

    // Bob is untouched.
    let keys: Value = app
        .get_as("/api/v1/settings/keys", &bob.access_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(keys["keys"][0]["last_four"], "BOBK");
    let settings: Value = app
        .get_as("/api/v1/settings", &bob.access_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(settings["digest_opt_in"], true);
    assert_eq!(settings["training_opt_in"], false);
    let me: Value = app.me(&bob.access_token).await.json().await.expect("json");
    assert_eq!(me["display_name"], Value::Null);
    assert_eq!(app.login(&bob.email, PASSWORD).await.status(), 200);
    assert_json_error(app.login(&alice.email, PASSWORD).await, 401).await;
}
