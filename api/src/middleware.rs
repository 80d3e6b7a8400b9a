//! Request middleware: a request id and one log line per request, HTTP metrics, JSON bodies for
//! errors that actix produces itself (unknown route, wrong method), and the auth rate limit.

use std::net::IpAddr;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::{ErrorHandlerResponse, Next};
use actix_web::{HttpMessage, web};
use tracing::Instrument;
use uuid::Uuid;

use crate::error::{ApiError, error_json};
use crate::metrics::RequestLabels;
use crate::state::AppState;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the current request, available to handlers as request extension data.
#[derive(Debug, Clone, Copy)]
pub struct RequestId(pub Uuid);

/// Gives each request an id (echoed in `x-request-id`), a tracing span, a log line on completion
/// and its metrics. Logs the route pattern, not the path: paths and query strings can hold
/// personal data.
pub async fn observe(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let request_id = Uuid::new_v4();
    request.extensions_mut().insert(RequestId(request_id));
    let method = request.method().to_string();
    let route = request
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let metrics = request
        .app_data::<web::Data<AppState>>()
        .map(|state| state.metrics.clone());
    let span = tracing::info_span!("http_request", %request_id, %method, %route);
    let result = next.call(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = match &result {
        Ok(response) => response.status().as_u16(),
        Err(error) => error.as_response_error().status_code().as_u16(),
    };
    span.in_scope(|| {
        tracing::info!(
            status,
            latency_ms = elapsed.as_secs_f64() * 1e3,
            "request finished"
        );
    });
    if let Some(metrics) = metrics {
        let labels = RequestLabels {
            method,
            route,
            status,
        };
        metrics.http_requests.get_or_create(&labels).inc();
        metrics
            .http_request_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }
    let mut response = result?;
    if let Ok(value) = HeaderValue::from_str(&request_id.to_string()) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    Ok(response)
}

/// Replaces actix's empty (or plain-text) client error bodies with our JSON error body.
pub fn json_client_error<B: MessageBody + 'static>(
    response: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(
            response.map_into_left_body(),
        ));
    }
    let status = response.status();
    let (code, message) = match status.as_u16() {
        404 => ("not_found", "no such route"),
        405 => ("method_not_allowed", "method not allowed on this route"),
        413 => ("payload_too_large", "request body too large"),
        415 => ("unsupported_media_type", "unsupported content type"),
        _ => ("bad_request", "the request could not be processed"),
    };
    let (request, original) = response.into_parts();
    let mut replacement = error_json(status, code, message);
    for (name, value) in original.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            replacement
                .headers_mut()
                .insert(name.clone(), value.clone());
        }
    }
    let response =
        ServiceResponse::new(request, replacement.map_body(|_, body| BoxBody::new(body)));
    Ok(ErrorHandlerResponse::Response(
        response.map_into_right_body(),
    ))
}

/// Per-client-IP rate limit of the sign-in routes; answers 429 with `Retry-After`.
pub async fn auth_rate_limit(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(state) = request.app_data::<web::Data<AppState>>()
        && let Some(ip) = client_ip(&request, state.settings.trust_forwarded_for)
        && let Err(retry) = state.auth_rate_limiter.check(ip, Instant::now())
    {
        return Err(ApiError::TooManyRequests {
            code: "rate_limited",
            retry_after_secs: retry.0.as_secs().max(1),
        }
        .into());
    }
    next.call(request).await
}

/// The client's IP: the socket peer, or the first `X-Forwarded-For` hop behind a trusted proxy.
fn client_ip(request: &ServiceRequest, trust_forwarded_for: bool) -> Option<IpAddr> {
    if trust_forwarded_for {
        let forwarded = request
            .headers()
            .get("x-forwarded-for")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(',').next())
            .and_then(|first| first.trim().parse().ok());
        if forwarded.is_some() {
            return forwarded;
        }
    }
    request.peer_addr().map(|address| address.ip())
}
