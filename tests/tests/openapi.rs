//! Protects the machine-readable API description: `/api/v1/openapi.json` is a valid OpenAPI 3.1
//! document that lists every route of the server, and every operation it lists is really routed.

use reqwest::Method;
use serde_json::Value;
use tests::{Backend, db_tests, spawn_app};

db_tests!(openapi_document_lists_every_route_and_only_real_ones);

/// Every route the server mounts (method, path template).
const ROUTES: &[(&str, &str)] = &[
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/refresh"),
    ("post", "/api/v1/auth/logout"),
    ("get", "/api/v1/auth/verify-email"),
    ("post", "/api/v1/auth/verify-email"),
    ("post", "/api/v1/auth/verification"),
    ("get", "/api/v1/me"),
    ("patch", "/api/v1/me"),
    ("delete", "/api/v1/me"),
    ("get", "/api/v1/settings"),
    ("patch", "/api/v1/settings"),
    ("get", "/api/v1/settings/keys"),
    ("put", "/api/v1/settings/keys/{provider}"),
    ("delete", "/api/v1/settings/keys/{provider}"),
    ("get", "/api/v1/privacy/export"),
    ("post", "/api/v1/resume"),
    ("get", "/api/v1/resume"),
    ("patch", "/api/v1/resume"),
    ("delete", "/api/v1/resume"),
    ("get", "/api/v1/policy"),
    ("post", "/api/v1/policy/accept"),
    ("get", "/api/v1/admin/users"),
    ("get", "/api/v1/admin/users/{id}"),
    ("delete", "/api/v1/admin/users/{id}"),
    ("get", "/api/v1/admin/users/{id}/export"),
    ("post", "/api/v1/admin/users/{id}/disable"),
    ("post", "/api/v1/admin/users/{id}/enable"),
    ("post", "/api/v1/admin/users/{id}/abuse-decision"),
    ("get", "/api/v1/admin/audit"),
    ("get", "/api/v1/admin/usage"),
    ("get", "/api/v1/usage"),
    ("post", "/api/v1/admin/policies"),
    ("post", "/api/v1/interviews"),
    ("get", "/api/v1/interviews"),
    ("get", "/api/v1/interviews/{id}"),
    ("post", "/api/v1/interviews/{id}/end"),
    ("post", "/api/v1/interviews/{id}/offer"),
    ("post", "/api/v1/interviews/{id}/events-ticket"),
    ("get", "/api/v1/interviews/{id}/events"),
    ("get", "/api/v1/interviews/{id}/scores"),
    ("post", "/api/v1/interviews/{id}/score"),
    ("get", "/api/v1/skills"),
    ("get", "/api/v1/skills/{skill}/history"),
    ("get", "/api/v1/drills"),
    ("get", "/health"),
    ("get", "/metrics"),
];

async fn openapi_document_lists_every_route_and_only_real_ones(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.get("/api/v1/openapi.json").await;
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.expect("json");
    assert!(doc["openapi"].as_str().expect("version").starts_with("3.1"));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    let paths = doc["paths"].as_object().expect("paths");
    let mut documented: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("path item")
                .keys()
                .filter(|key| ["get", "post", "put", "patch", "delete"].contains(&key.as_str()))
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    documented.sort();
    let mut expected: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    expected.sort();
    assert_eq!(documented, expected);
    // Protected operations declare the bearer scheme.
    assert!(doc["paths"]["/api/v1/me"]["get"]["security"].is_array());
    // Every documented operation exists: the server never answers it with "no such route" or
    // "method not allowed".
    for (method, path) in &documented {
        let concrete = path
            .replace("{provider}", "anthropic")
            .replace("{id}", &uuid::Uuid::new_v4().to_string());
        let method: Method = method.to_uppercase().parse().expect("method");
        let response = app.call(method.clone(), &concrete, None, None).await;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        assert!(
            status != 405 && !body.contains("no such route"),
            "{method} {concrete} is documented but not routed ({status})"
        );
    }
}
