//! The HTTP boundary's one error type, mapped to a status and a JSON body in one place.
//!
//! Every error response has the body `{"error": {"code": "...", "message": "..."}}`. Client
//! errors are logged by code only; unexpected errors are logged with their cause (which never
//! carries request data) and shown to the client as a bare `internal_error`.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;

use crate::domain::ValidationError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body or a parameter is not well-formed (invalid JSON, wrong content type).
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed but breaks a rule (password too short, unknown field, wrong type).
    #[error("{0}")]
    Validation(String),
    #[error("authentication required")]
    Unauthorized {
        code: &'static str,
        message: &'static str,
    },
    /// 402: the account's free allocation is used up (`free_interviews_exhausted`).
    #[error("payment required")]
    PaymentRequired {
        code: &'static str,
        message: &'static str,
    },
    #[error("forbidden")]
    Forbidden(&'static str),
    /// 403 with a code of its own (for refusals clients handle specifically).
    #[error("forbidden")]
    ForbiddenWith {
        code: &'static str,
        message: &'static str,
    },
    #[error("not found")]
    NotFound,
    #[error("conflict")]
    Conflict {
        code: &'static str,
        message: &'static str,
    },
    /// 410: something that existed and no longer works (a used or expired link).
    #[error("gone")]
    Gone {
        code: &'static str,
        message: &'static str,
    },
    #[error("payload too large")]
    PayloadTooLarge(String),
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("{0}")]
    UnsupportedMediaTypeWith(String),
    #[error("too many requests")]
    TooManyRequests {
        code: &'static str,
        retry_after_secs: u64,
    },
    #[error("service unavailable")]
    Unavailable(&'static str),
    /// 422 with a code of its own (for rejections clients handle specifically).
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    #[error("unexpected error: {0}")]
    Unexpected(#[from] anyhow::Error),
}

impl From<ValidationError> for ApiError {
    fn from(error: ValidationError) -> Self {
        ApiError::Validation(error.to_string())
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(error: sea_orm::DbErr) -> Self {
        ApiError::Unexpected(anyhow::Error::new(error).context("database"))
    }
}

impl From<sea_orm::TransactionError<ApiError>> for ApiError {
    fn from(error: sea_orm::TransactionError<ApiError>) -> Self {
        match error {
            sea_orm::TransactionError::Connection(db) => db.into(),
            sea_orm::TransactionError::Transaction(api) => api,
        }
    }
}

/// A resume the extractor refused, by why.
impl From<crate::resume::ResumeError> for ApiError {
    fn from(error: crate::resume::ResumeError) -> Self {
        use crate::resume::ResumeError;
        let message = error.to_string();
        match error {
            ResumeError::UnsupportedType => ApiError::UnsupportedMediaTypeWith(message),
            ResumeError::TooMuchText => ApiError::PayloadTooLarge(message),
            ResumeError::Corrupt | ResumeError::Encrypted | ResumeError::Empty => {
                ApiError::Validation(message)
            }
            ResumeError::TooComplex => ApiError::Unprocessable {
                code: error.code(),
                message,
            },
        }
    }
}

/// The resume worker pool: a refused file, or no capacity.
impl From<crate::resume::worker::ExtractionError> for ApiError {
    fn from(error: crate::resume::worker::ExtractionError) -> Self {
        use crate::resume::worker::ExtractionError;
        match error {
            ExtractionError::Rejected(error) => error.into(),
            ExtractionError::InProgress => ApiError::TooManyRequests {
                code: "resume_upload_in_progress",
                retry_after_secs: 5,
            },
            ExtractionError::Busy => {
                ApiError::Unavailable("every resume worker is busy; retry later")
            }
            ExtractionError::Failed(cause) => {
                ApiError::Unexpected(anyhow::anyhow!("resume extraction: {cause}"))
            }
        }
    }
}

/// The engine refusing to start an interview.
impl From<engine::engine::EngineError> for ApiError {
    fn from(error: engine::engine::EngineError) -> Self {
        use engine::engine::EngineError;
        match error {
            EngineError::AtCapacity(_) => {
                ApiError::Unavailable("the server is at capacity; try again shortly")
            }
            EngineError::Draining => {
                ApiError::Unavailable("the server is restarting; try again shortly")
            }
            EngineError::AlreadyLive => ApiError::Conflict {
                code: "already_live",
                message: "you already have a live interview",
            },
            EngineError::Refused(crate::free_interviews::EMAIL_NOT_VERIFIED) => {
                ApiError::ForbiddenWith {
                    code: crate::free_interviews::EMAIL_NOT_VERIFIED,
                    message: "confirm your e-mail address first: follow the link we sent you \
                              (or ask for a new one), or add your own vendor keys in the settings",
                }
            }
            EngineError::Refused(crate::free_interviews::UNDER_REVIEW) => {
                ApiError::PaymentRequired {
                    code: crate::free_interviews::UNDER_REVIEW,
                    message: "this account's free interviews are waiting for a review; add your \
                              own vendor keys in the settings to practise meanwhile",
                }
            }
            EngineError::Refused(code) => ApiError::PaymentRequired {
                code,
                message: "no free interviews left on this account; add your own vendor keys in \
                          the settings to keep practising",
            },
            other => ApiError::Unexpected(anyhow::anyhow!("starting the interview: {other}")),
        }
    }
}

/// The WebRTC transport refusing an offer.
impl From<engine::transport::TransportError> for ApiError {
    fn from(error: engine::transport::TransportError) -> Self {
        use engine::transport::ErrorCategory;
        match error.category() {
            // The parser's message can quote the offer (addresses, fingerprints): never echo it
            // back or log it.
            ErrorCategory::InvalidInput => ApiError::BadRequest(
                "the offer is not a valid SDP offer with an Opus audio section".into(),
            ),
            ErrorCategory::Closed => ApiError::Conflict {
                code: "session_closed",
                message: "the session is closed",
            },
            category => ApiError::Unexpected(anyhow::anyhow!("WebRTC: {category:?}")),
        }
    }
}

/// The body of every error response.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
}

impl<'a> ErrorBody<'a> {
    pub fn new(code: &'a str, message: &'a str) -> Self {
        ErrorBody {
            error: ErrorDetail { code, message },
        }
    }
}

/// Builds the JSON error body used by every error response of the server.
pub fn error_json(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(ErrorBody::new(code, message))
}

impl ApiError {
    pub fn unauthorized() -> Self {
        ApiError::Unauthorized {
            code: "unauthorized",
            message: "a valid access token is required",
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Validation(_) => "validation_failed",
            ApiError::Unauthorized { code, .. } => code,
            ApiError::PaymentRequired { code, .. } => code,
            ApiError::Forbidden(_) => "forbidden",
            ApiError::ForbiddenWith { code, .. } => code,
            ApiError::NotFound => "not_found",
            ApiError::Conflict { code, .. } => code,
            ApiError::Gone { code, .. } => code,
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType | ApiError::UnsupportedMediaTypeWith(_) => {
                "unsupported_media_type"
            }
            ApiError::TooManyRequests { code, .. } => code,
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Unprocessable { code, .. } => code,
            ApiError::Unexpected(_) => "internal_error",
        }
    }

    fn message(&self) -> String {
        match self {
            ApiError::BadRequest(message)
            | ApiError::Validation(message)
            | ApiError::PayloadTooLarge(message)
            | ApiError::UnsupportedMediaTypeWith(message)
            | ApiError::Unprocessable { message, .. } => message.clone(),
            ApiError::Unauthorized { message, .. }
            | ApiError::Conflict { message, .. }
            | ApiError::Gone { message, .. }
            | ApiError::ForbiddenWith { message, .. }
            | ApiError::PaymentRequired { message, .. } => (*message).to_owned(),
            ApiError::Forbidden(message) | ApiError::Unavailable(message) => (*message).to_owned(),
            ApiError::NotFound => "not found".to_owned(),
            ApiError::UnsupportedMediaType => "expected Content-Type: application/json".to_owned(),
            ApiError::TooManyRequests { .. } => "too many requests; retry later".to_owned(),
            ApiError::Unexpected(_) => "an unexpected error occurred".to_owned(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Validation(_) | ApiError::Unprocessable { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::PaymentRequired { .. } => StatusCode::PAYMENT_REQUIRED,
            ApiError::Forbidden(_) | ApiError::ForbiddenWith { .. } => StatusCode::FORBIDDEN,
            ApiError::Gone { .. } => StatusCode::GONE,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType | ApiError::UnsupportedMediaTypeWith(_) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if let ApiError::Unexpected(cause) = self {
            tracing::error!(error = format!("{cause:#}"), "request failed");
        } else {
            tracing::debug!(
                code = self.code(),
                status = status.as_u16(),
                "request rejected"
            );
        }
        let mut response = error_json(status, self.code(), &self.message());
        let headers = response.headers_mut();
        match self {
            ApiError::TooManyRequests {
                retry_after_secs, ..
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            ApiError::Unauthorized { .. } => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

/// Maps actix's JSON extractor errors to our JSON error bodies (never echoing the body).
pub fn json_error_handler(
    error: actix_web::error::JsonPayloadError,
    _: &HttpRequest,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as E;
    let api_error = match &error {
        E::OverflowKnownLength { limit, .. } | E::Overflow { limit } => {
            ApiError::PayloadTooLarge(format!("JSON body larger than {limit} bytes"))
        }
        E::ContentType => ApiError::UnsupportedMediaType,
        E::Deserialize(inner) => match inner.classify() {
            serde_json::error::Category::Data => {
                ApiError::Validation(format!("invalid field: {}", describe_data_error(inner)))
            }
            _ => ApiError::BadRequest(format!(
                "invalid JSON at line {} column {}",
                inner.line(),
                inner.column()
            )),
        },
        _ => ApiError::BadRequest("could not read the request body".to_owned()),
    };
    api_error.into()
}

/// A description of a serde data error without the offending value (which may be a secret, e.g.
/// a password sent as a number): keeps serde's text up to the first value it quotes.
fn describe_data_error(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let text = text.split(" at line ").next().unwrap_or(&text);
    if let Some(field) = text.strip_prefix("unknown field `") {
        let name: String = field.chars().take_while(|c| *c != '`').take(64).collect();
        return format!("unknown field `{name}`");
    }
    if let Some(field) = text.strip_prefix("missing field `") {
        let name: String = field.chars().take_while(|c| *c != '`').take(64).collect();
        return format!("missing field `{name}`");
    }
    if text.starts_with("invalid type") {
        let expected = text.rsplit(", expected ").next().unwrap_or("another type");
        return format!("wrong type, expected {expected}");
    }
    "a value has the wrong type or format".to_owned()
}

/// Maps path and query extraction errors to 400/404 JSON bodies.
pub fn query_error_handler(
    error: actix_web::error::QueryPayloadError,
    _: &HttpRequest,
) -> actix_web::Error {
    // A number out of range or of the wrong type is a rule broken, like a JSON data error; the
    // value itself is never echoed.
    let _ = error;
    ApiError::Validation(
        "invalid query parameter: a value is missing, unknown or out of range".to_owned(),
    )
    .into()
}

pub fn path_error_handler(error: actix_web::error::PathError, _: &HttpRequest) -> actix_web::Error {
    let _ = error;
    ApiError::NotFound.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_error_description_never_contains_the_value() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Body {
            password: String,
        }
        let error = serde_json::from_str::<Body>(r#"{"password": 12345678901234}"#)
            .expect_err("number is not a string");
        let described = describe_data_error(&error);
        assert!(!described.contains("12345678901234"), "{described}");
        assert!(described.contains("expected a string"), "{described}");
    }
}
