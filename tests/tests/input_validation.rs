//! Protects the rule that bad input gets a clear 4xx with a JSON body, never a 500 or a panic:
//! invalid JSON, wrong types, unknown and missing fields, huge bodies, wrong content types,
//! unknown routes and methods, and a stream of random bodies.

use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tests::{Backend, PASSWORD, assert_json_error, db_tests, spawn_app, unique_email};

db_tests!(
    invalid_json_is_a_400_with_a_json_body,
    wrong_types_are_422_and_the_value_is_not_echoed,
    unknown_and_missing_fields_are_422,
    huge_bodies_are_413_with_a_json_body,
    wrong_content_type_is_415,
    unknown_routes_and_wrong_methods_get_json_errors,
    random_bodies_never_cause_a_server_error,
);

async fn invalid_json_is_a_400_with_a_json_body(backend: Backend) {
    let app = spawn_app(backend).await;
    for body in ["{", "not json", "{\"email\": }", "[1,2", "\u{0}"] {
        let response = app
            .post_raw(
                "/api/v1/auth/register",
                "application/json",
                body.as_bytes().to_vec(),
            )
            .await;
        let status = response.status().as_u16();
        assert!(status == 400 || status == 422, "{body:?} gave {status}");
        assert_json_error(response, status).await;
    }
    let response = app
        .post_raw("/api/v1/auth/login", "application/json", b"{".to_vec())
        .await;
    assert_eq!(assert_json_error(response, 400).await, "bad_request");
}

async fn wrong_types_are_422_and_the_value_is_not_echoed(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": unique_email(), "password": 98765432109876_u64, "age_confirmed": true}),
        )
        .await;
    assert_eq!(response.status(), 422);
    let body = response.text().await.expect("body");
    assert!(
        !body.contains("98765432109876"),
        "the value is not echoed: {body}"
    );
    let body: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(body["error"]["code"], "validation_failed");
    let response = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": unique_email(), "password": PASSWORD, "age_confirmed": "yes"}),
        )
        .await;
    assert_json_error(response, 422).await;
    let response = app.post_json("/api/v1/auth/login", &json!([1, 2, 3])).await;
    assert_json_error(response, 422).await;
}

async fn unknown_and_missing_fields_are_422(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": unique_email(), "password": PASSWORD, "age_confirmed": true, "role": "admin"}),
        )
        .await;
    let body: Value = {
        assert_eq!(response.status(), 422);
        response.json().await.expect("json")
    };
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("role")
    );
    let response = app
        .post_json("/api/v1/auth/login", &json!({"email": unique_email()}))
        .await;
    let body: Value = {
        assert_eq!(response.status(), 422);
        response.json().await.expect("json")
    };
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("password")
    );
    assert_eq!(app.count_rows("accounts").await, 0, "nothing was created");
}

async fn huge_bodies_are_413_with_a_json_body(backend: Backend) {
    let app = spawn_app(backend).await;
    let huge =
        json!({"email": unique_email(), "password": "x".repeat(200_000), "age_confirmed": true});
    let response = app.post_json("/api/v1/auth/register", &huge).await;
    assert_eq!(assert_json_error(response, 413).await, "payload_too_large");
    // The server is still healthy afterwards.
    assert_eq!(app.get("/health").await.status(), 200);
}

async fn wrong_content_type_is_415(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = json!({"email": unique_email(), "password": PASSWORD}).to_string();
    let response = app
        .post_raw("/api/v1/auth/login", "text/plain", body.into_bytes())
        .await;
    assert_eq!(
        assert_json_error(response, 415).await,
        "unsupported_media_type"
    );
}

async fn unknown_routes_and_wrong_methods_get_json_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(
        assert_json_error(app.get("/no/such/route").await, 404).await,
        "not_found"
    );
    let code = assert_json_error(app.get("/api/v1/auth/login").await, 405).await;
    assert_eq!(code, "method_not_allowed");
    let response = app
        .client
        .put(app.url("/api/v1/me"))
        .send()
        .await
        .expect("send");
    assert_json_error(response, 405).await;
}

/// Random JSON-ish bodies (seeded, so a failure reproduces) against every sign-in route.
async fn random_bodies_never_cause_a_server_error(backend: Backend) {
    let app = spawn_app_with_high_limit(backend).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x1c_2026);
    let routes = [
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
    ];
    for round in 0..160 {
        let body = random_body(&mut rng);
        let route = routes[round % routes.len()];
        let response = app
            .post_raw(route, "application/json", body.clone().into_bytes())
            .await;
        let status = response.status().as_u16();
        assert!(status < 500, "{route} answered {status} to {body:?}");
        if status >= 400 {
            assert_json_error(response, status).await;
        }
    }
}

async fn spawn_app_with_high_limit(backend: Backend) -> tests::TestApp {
    tests::spawn_app_with(backend, |settings| {
        settings.auth_rate_limit_per_minute = 10_000
    })
    .await
}

fn random_value(rng: &mut impl Rng, depth: u32) -> Value {
    match rng.random_range(0..if depth > 2 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.random()),
        2 => json!(rng.random::<i64>()),
        3 => json!(rng.random::<f64>() * 1e6),
        4 => json!(random_string(rng)),
        5 => json!(format!("{}@example.com", random_string(rng))),
        6 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => {
            let keys = [
                "email",
                "password",
                "age_confirmed",
                "display_name",
                "x",
                "",
            ];
            let mut map = serde_json::Map::new();
            for _ in 0..rng.random_range(0..5) {
                let key = keys[rng.random_range(0..keys.len())].to_owned();
                map.insert(key, random_value(rng, depth + 1));
            }
            Value::Object(map)
        }
    }
}

fn random_string(rng: &mut impl Rng) -> String {
    let alphabet: Vec<char> = "aZ09@.+-_ \u{e9}\u{1f600}\"\\\u{0}\n".chars().collect();
    (0..rng.random_range(0..40))
        .map(|_| alphabet[rng.random_range(0..alphabet.len())])
        .collect()
}

fn random_body(rng: &mut impl Rng) -> String {
    let mut body = if rng.random_bool(0.7) {
        let mut map = serde_json::Map::new();
        map.insert("email".into(), random_value(rng, 1));
        map.insert("password".into(), random_value(rng, 1));
        if rng.random_bool(0.5) {
            map.insert("age_confirmed".into(), random_value(rng, 1));
        }
        Value::Object(map).to_string()
    } else {
        random_value(rng, 0).to_string()
    };
    if rng.random_bool(0.2) && !body.is_empty() {
        let cut = rng.random_range(0..body.len());
        if body.is_char_boundary(cut) {
            body.truncate(cut);
        }
    }
    body
}
