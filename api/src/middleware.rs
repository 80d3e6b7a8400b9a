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
        && let Some(ip) = client_ip(request.request(), &state.settings)
        && let Err(retry) = state.auth_rate_limiter.check(ip)
    {
        return Err(ApiError::TooManyRequests {
            code: "rate_limited",
            retry_after_secs: retry.0.as_secs().max(1),
        }
        .into());
    }
    next.call(request).await
}

/// The client's IP: the socket peer, or behind trusted proxies the address the outermost of
/// them put in `X-Forwarded-For`.
pub fn client_ip(
    request: &actix_web::HttpRequest,
    settings: &crate::configuration::Settings,
) -> Option<IpAddr> {
    if settings.trust_forwarded_for {
        let hops = usize::from(settings.trusted_proxy_hops.max(1));
        let forwarded = request
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|value| value.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        if let Some(ip) = forwarded_client(&forwarded, hops) {
            return Some(ip);
        }
    }
    request.peer_addr().map(|address| address.ip())
}

/// The client address in an `X-Forwarded-For` value behind `hops` trusted proxies: each proxy
/// appends the address it was connected from, so the entry `hops` from the right was added by
/// the outermost trusted proxy; anything left of it came from the client and proves nothing.
/// With fewer entries than proxies, every entry was added by a trusted proxy: the leftmost.
fn forwarded_client(header: &str, hops: usize) -> Option<IpAddr> {
    let entries: Vec<&str> = header
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .collect();
    let entry = entries.get(entries.len().saturating_sub(hops))?;
    // `1.2.3.4`, `[::1]`, or either with a port (`1.2.3.4:567`, `[::1]:567`).
    entry
        .parse()
        .ok()
        .or_else(|| entry.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .and_then(|inner| inner.parse().ok())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().expect("literal"))
    }

    #[test]
    fn the_client_is_the_entry_the_outermost_trusted_proxy_added() {
        // One proxy: it appended the address it saw; a spoofed first entry is ignored.
        assert_eq!(
            forwarded_client("6.6.6.6, 203.0.113.7", 1),
            ip("203.0.113.7")
        );
        assert_eq!(forwarded_client("203.0.113.7", 1), ip("203.0.113.7"));
        // Two proxies (CDN then load balancer): the second entry from the right.
        assert_eq!(
            forwarded_client("6.6.6.6, 203.0.113.7, 10.0.0.2", 2),
            ip("203.0.113.7")
        );
        // Fewer entries than proxies: all were added by trusted proxies.
        assert_eq!(forwarded_client("203.0.113.7", 3), ip("203.0.113.7"));
        // Ports and brackets.
        assert_eq!(forwarded_client("203.0.113.7:4711", 1), ip("203.0.113.7"));
        assert_eq!(forwarded_client("[2001:db8::1]:4711", 1), ip("2001:db8::1"));
        assert_eq!(forwarded_client("[2001:db8::1]", 1), ip("2001:db8::1"));
        // Garbage or nothing: no address (the socket peer is used).
        assert_eq!(forwarded_client("", 1), None);
        assert_eq!(forwarded_client("6.6.6.6, not-an-ip", 1), None);
        assert_eq!(forwarded_client(" , ", 1), None);
    }

    #[actix_web::test]
    async fn a_spoofed_first_hop_does_not_choose_the_rate_limit_key() {
        let settings = crate::configuration::Settings {
            trust_forwarded_for: true,
            ..crate::configuration::Settings::default()
        };
        let request = actix_web::test::TestRequest::default()
            .peer_addr("127.0.0.1:9000".parse().expect("literal"))
            .insert_header(("x-forwarded-for", "6.6.6.6"))
            .append_header(("x-forwarded-for", "203.0.113.9"))
            .to_srv_request();
        assert_eq!(client_ip(request.request(), &settings), ip("203.0.113.9"));
        let untrusted = crate::configuration::Settings::default();
        assert_eq!(client_ip(request.request(), &untrusted), ip("127.0.0.1"));
    }
}
