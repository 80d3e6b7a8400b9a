//! Anthropic Messages API client: `POST {base}/v1/messages` with `stream: true`, SSE parsed by
//! [`super::sse::SseDecoder`], events by [`parse_event`], assembled by [`ReplyAssembler`]
//! (sans-IO), retried per [`super::retry`]. The system prompt is sent as one text block
//! with `cache_control` so the vendor caches it across turns.
//!
//! A forced tool call ([`LanguageModel::call_tool`]) sends `tools` with one definition and
//! `tool_choice: {"type":"tool","name":…}`; the reply's `tool_use` block streams its input as
//! `input_json_delta` fragments, which [`ReplyAssembler`] concatenates. The tool definition
//! comes before the system prompt in the cached prefix, so the system block's breakpoint
//! caches both.
//!
//! A streamed reply has a watchdog ([`AnthropicConfig::first_token_timeout`],
//! [`AnthropicConfig::inter_token_timeout`]): once the headers are in, a stream that sends no
//! content delta in time (pings do not count) is stalled. Before any text reached the caller
//! the request is sent again, up to `retry.max_retries` times, so the caller only sees a later
//! reply; after that the stream fails with [`ErrorCategory::Timeout`] like any mid-stream
//! failure. Stalls are counted in [`stalled_streams`]. A forced tool call (the scorer's) keeps
//! only `idle_timeout`: nobody is waiting to hear it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use futures_util::StreamExt;
use reqwest::header::{HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::error::{ErrorCategory, Vendor, VendorError, category_for_status};
use super::key::{ApiKey, KeyHandle};
use super::retry::{RetryPolicy, parse_retry_after, should_retry_status};
use super::sse::SseDecoder;
use super::usage::{LlmReport, LlmTiming, LlmUsage, TokenPrices};
use super::{
    EVENT_QUEUE, LanguageModel, LlmEvent, LlmRequest, LlmStream, Role, StopReason, ToolDefinition,
    ToolOutcome,
};

/// How long a cached system prompt lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CacheTtl {
    FiveMinutes,
    OneHour,
}

/// Configuration of the Anthropic client. `Debug` never shows the key.
#[derive(Debug, Clone)]
pub struct AnthropicConfig {
    /// `https://api.anthropic.com`, or a fake's base URL.
    pub base_url: String,
    /// Read at every request: the key leaser may swap it (fail over) or revoke it.
    pub api_key: KeyHandle,
    pub model: String,
    pub max_tokens: u32,
    pub prices: TokenPrices,
    pub retry: RetryPolicy,
    /// `None` sends the system prompt uncached.
    pub cache_system_prompt: Option<CacheTtl>,
    /// Omitted by default: newer models reject non-default sampling parameters.
    pub temperature: Option<f32>,
    pub anthropic_version: String,
    pub connect_timeout: Duration,
    /// Longest wait for the response headers of one attempt.
    pub response_timeout: Duration,
    /// Longest silence inside a stream before it counts as stalled (pings reset it).
    pub idle_timeout: Duration,
    /// Streaming watchdog: the longest wait from the response headers to the first content
    /// delta (pings do not count).
    pub first_token_timeout: Duration,
    /// Streaming watchdog: the longest wait after a content delta for the stream's next event
    /// (pings do not count), until `message_stop`.
    pub inter_token_timeout: Duration,
}

impl AnthropicConfig {
    /// Defaults for `model` at `base_url`; prices default to Haiku 4.5's ($1 / $5 per MTok).
    pub fn new(
        base_url: impl Into<String>,
        api_key: impl Into<KeyHandle>,
        model: impl Into<String>,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            api_key: api_key.into(),
            model: model.into(),
            max_tokens: 400,
            prices: TokenPrices::from_base(1.0, 5.0),
            retry: RetryPolicy::default(),
            cache_system_prompt: Some(CacheTtl::FiveMinutes),
            temperature: None,
            anthropic_version: "2023-06-01".to_string(),
            connect_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(30),
            first_token_timeout: Duration::from_secs(2),
            inter_token_timeout: Duration::from_millis(1500),
        }
    }
}

/// Streams given up by the watchdog in this process.
static STALLED_STREAMS: std::sync::LazyLock<prometheus_client::metrics::counter::Counter> =
    std::sync::LazyLock::new(Default::default);

/// How many connected-but-silent Claude streams the watchdog has given up on in this process
/// (each then sent again, or failed when text had already reached the caller).
pub fn stalled_streams() -> u64 {
    STALLED_STREAMS.get()
}

/// The same count as a counter for the server's `/metrics` registry.
pub fn stalled_streams_counter() -> prometheus_client::metrics::counter::Counter {
    STALLED_STREAMS.clone()
}

// ---------------------------------------------------------------------------------------------
// Wire events
// ---------------------------------------------------------------------------------------------

/// Usage as it appears on the wire; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct WireUsage {
    #[serde(default)]
    pub input_tokens: Option<u64>,
    #[serde(default)]
    pub output_tokens: Option<u64>,
    #[serde(default)]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    pub cache_creation: Option<WireCacheCreation>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct WireCacheCreation {
    #[serde(default)]
    pub ephemeral_5m_input_tokens: Option<u64>,
    #[serde(default)]
    pub ephemeral_1h_input_tokens: Option<u64>,
}

/// The kind of a content block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockKind {
    Text,
    Thinking,
    RedactedThinking,
    ToolUse,
    Other(String),
}

/// A content-block delta.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delta {
    Text(String),
    Thinking(String),
    Signature,
    InputJson(String),
    Other(String),
}

/// One parsed stream event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    MessageStart {
        id: String,
        model: String,
        usage: WireUsage,
    },
    ContentBlockStart {
        index: u64,
        kind: BlockKind,
    },
    ContentBlockDelta {
        index: u64,
        delta: Delta,
    },
    ContentBlockStop {
        index: u64,
    },
    MessageDelta {
        stop_reason: Option<String>,
        stop_sequence: Option<String>,
        usage: WireUsage,
    },
    MessageStop,
    Ping,
    Error {
        kind: String,
        message: String,
    },
    /// A type this client does not know; ignored for forward compatibility.
    Unknown(String),
}

/// An event whose JSON could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed Anthropic stream event: {0}")]
pub struct EventParseError(pub String);

fn field_str(v: &Value, ptr: &str) -> String {
    v.pointer(ptr)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn usage_at(v: &Value, ptr: &str) -> Result<WireUsage, EventParseError> {
    match v.pointer(ptr) {
        None | Some(Value::Null) => Ok(WireUsage::default()),
        Some(u) => WireUsage::deserialize(u).map_err(|e| EventParseError(format!("usage: {e}"))),
    }
}

/// Parses one SSE event. The JSON `type` decides; the `event:` name is the fallback.
pub fn parse_event(event_name: Option<&str>, data: &str) -> Result<StreamEvent, EventParseError> {
    let v: Value = serde_json::from_str(data).map_err(|e| EventParseError(e.to_string()))?;
    let kind = v
        .get("type")
        .and_then(Value::as_str)
        .or(event_name)
        .unwrap_or("")
        .to_string();
    let index = || {
        v.get("index")
            .and_then(Value::as_u64)
            .ok_or_else(|| EventParseError(format!("{kind} without index")))
    };
    Ok(match kind.as_str() {
        "message_start" => StreamEvent::MessageStart {
            id: field_str(&v, "/message/id"),
            model: field_str(&v, "/message/model"),
            usage: usage_at(&v, "/message/usage")?,
        },
        "content_block_start" => StreamEvent::ContentBlockStart {
            index: index()?,
            kind: match v.pointer("/content_block/type").and_then(Value::as_str) {
                Some("text") => BlockKind::Text,
                Some("thinking") => BlockKind::Thinking,
                Some("redacted_thinking") => BlockKind::RedactedThinking,
                Some("tool_use") => BlockKind::ToolUse,
                Some(other) => BlockKind::Other(other.to_string()),
                None => return Err(EventParseError("content_block_start without type".into())),
            },
        },
        "content_block_delta" => {
            let d = v.get("delta").unwrap_or(&Value::Null);
            let s = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            StreamEvent::ContentBlockDelta {
                index: index()?,
                delta: match d.get("type").and_then(Value::as_str) {
                    Some("text_delta") => Delta::Text(
                        d.get("text")
                            .and_then(Value::as_str)
                            .ok_or_else(|| EventParseError("text_delta without text".into()))?
                            .to_string(),
                    ),
                    Some("thinking_delta") => Delta::Thinking(s("thinking")),
                    Some("signature_delta") => Delta::Signature,
                    Some("input_json_delta") => Delta::InputJson(s("partial_json")),
                    Some(other) => Delta::Other(other.to_string()),
                    None => return Err(EventParseError("delta without type".into())),
                },
            }
        }
        "content_block_stop" => StreamEvent::ContentBlockStop { index: index()? },
        "message_delta" => StreamEvent::MessageDelta {
            stop_reason: v
                .pointer("/delta/stop_reason")
                .and_then(Value::as_str)
                .map(str::to_string),
            stop_sequence: v
                .pointer("/delta/stop_sequence")
                .and_then(Value::as_str)
                .map(str::to_string),
            usage: usage_at(&v, "/usage")?,
        },
        "message_stop" => StreamEvent::MessageStop,
        "ping" => StreamEvent::Ping,
        "error" => StreamEvent::Error {
            kind: field_str(&v, "/error/type"),
            message: field_str(&v, "/error/message"),
        },
        other => StreamEvent::Unknown(other.to_string()),
    })
}

/// Maps an Anthropic `error.type` to a category (the status is the fallback).
pub fn category_for_error_type(kind: &str, message: &str, status: Option<u16>) -> ErrorCategory {
    match kind {
        "authentication_error" | "permission_error" => ErrorCategory::Auth,
        "billing_error" => ErrorCategory::Quota,
        "rate_limit_error" => ErrorCategory::RateLimited,
        "overloaded_error" => ErrorCategory::Overloaded,
        "invalid_request_error" if message.contains("credit balance") => ErrorCategory::Quota,
        "invalid_request_error" | "not_found_error" | "request_too_large" => {
            ErrorCategory::BadRequest
        }
        "api_error" => ErrorCategory::Server,
        "timeout_error" => ErrorCategory::Timeout,
        _ => status.map_or(ErrorCategory::Server, category_for_status),
    }
}

/// What applying one event to a reply produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyStep {
    Nothing,
    /// Text to speak.
    Text(String),
    /// `message_stop` arrived.
    Done(StopReason),
    /// An `error` event arrived.
    Failed {
        kind: String,
        message: String,
    },
}

/// Sans-IO state of one streamed reply: which blocks are text, cumulative usage, stop reason,
/// and the input of the first `tool_use` block.
#[derive(Debug, Default)]
pub struct ReplyAssembler {
    blocks: HashMap<u64, BlockKind>,
    /// The first tool call's index and its input so far (concatenated `partial_json`).
    tool: Option<(u64, String)>,
    pub usage: LlmUsage,
    pub message_id: Option<String>,
    pub model: Option<String>,
    stop_reason: Option<String>,
    stop_sequence: Option<String>,
}

impl ReplyAssembler {
    fn merge_usage(&mut self, u: &WireUsage) {
        let s = &mut self.usage;
        if let Some(v) = u.input_tokens {
            s.input_tokens = v;
        }
        if let Some(v) = u.output_tokens {
            s.output_tokens = v;
        }
        if let Some(v) = u.cache_creation_input_tokens {
            s.cache_creation_input_tokens = v;
        }
        if let Some(v) = u.cache_read_input_tokens {
            s.cache_read_input_tokens = v;
        }
        if let Some(c) = &u.cache_creation {
            if let Some(v) = c.ephemeral_5m_input_tokens {
                s.cache_creation_5m_tokens = v;
            }
            if let Some(v) = c.ephemeral_1h_input_tokens {
                s.cache_creation_1h_tokens = v;
            }
        }
    }

    /// The first tool call's input as streamed so far; `None` when no `tool_use` block started.
    pub fn tool_input(&self) -> Option<&str> {
        self.tool.as_ref().map(|(_, input)| input.as_str())
    }

    pub fn apply(&mut self, event: StreamEvent) -> ReplyStep {
        match event {
            StreamEvent::MessageStart { id, model, usage } => {
                self.message_id = Some(id);
                self.model = Some(model);
                self.merge_usage(&usage);
            }
            StreamEvent::ContentBlockStart { index, kind } => {
                if kind == BlockKind::ToolUse && self.tool.is_none() {
                    self.tool = Some((index, String::new()));
                }
                self.blocks.insert(index, kind);
            }
            StreamEvent::ContentBlockDelta {
                index,
                delta: Delta::InputJson(part),
            } => {
                if let Some((tool_index, input)) = &mut self.tool
                    && *tool_index == index
                {
                    input.push_str(&part);
                }
            }
            StreamEvent::ContentBlockDelta {
                index,
                delta: Delta::Text(text),
            } => {
                // Blocks are selected by type, not index; an unannounced block is not spoken.
                if self.blocks.get(&index) == Some(&BlockKind::Text) && !text.is_empty() {
                    return ReplyStep::Text(text);
                }
            }
            StreamEvent::MessageDelta {
                stop_reason,
                stop_sequence,
                usage,
            } => {
                if stop_reason.is_some() {
                    self.stop_reason = stop_reason;
                    self.stop_sequence = stop_sequence;
                }
                self.merge_usage(&usage);
            }
            StreamEvent::MessageStop => {
                let reason = match self.stop_reason.as_deref() {
                    Some("end_turn") | None => StopReason::EndTurn,
                    Some("max_tokens") => StopReason::MaxTokens,
                    Some("stop_sequence") => {
                        StopReason::StopSequence(self.stop_sequence.clone().unwrap_or_default())
                    }
                    Some("tool_use") => StopReason::ToolUse,
                    Some("pause_turn") => StopReason::PauseTurn,
                    Some("refusal") => StopReason::Refusal,
                    Some("model_context_window_exceeded") => StopReason::ContextWindowExceeded,
                    Some(other) => StopReason::Other(other.to_string()),
                };
                return ReplyStep::Done(reason);
            }
            StreamEvent::Error { kind, message } => return ReplyStep::Failed { kind, message },
            StreamEvent::ContentBlockDelta { .. }
            | StreamEvent::ContentBlockStop { .. }
            | StreamEvent::Ping
            | StreamEvent::Unknown(_) => {}
        }
        ReplyStep::Nothing
    }
}

// ---------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------

/// The real Anthropic client.
#[derive(Debug, Clone)]
pub struct AnthropicLlm {
    config: Arc<AnthropicConfig>,
    http: reqwest::Client,
}

fn err(category: ErrorCategory, message: impl Into<String>) -> VendorError {
    VendorError::new(Vendor::Anthropic, category, message)
}

/// Builds the request body (public for inspection in tests).
pub fn request_body(config: &AnthropicConfig, request: &LlmRequest) -> Value {
    request_body_with_tool(config, request, None)
}

/// The request body, with `tool` (if any) as the only tool and the forced `tool_choice`.
pub fn request_body_with_tool(
    config: &AnthropicConfig,
    request: &LlmRequest,
    tool: Option<&ToolDefinition>,
) -> Value {
    let mut body = json!({
        "model": config.model,
        "max_tokens": request.max_tokens.unwrap_or(config.max_tokens),
        "stream": true,
        "messages": request.messages.iter().map(|m| json!({
            "role": match m.role { Role::User => "user", Role::Assistant => "assistant" },
            "content": m.content,
        })).collect::<Vec<_>>(),
    });
    if !request.system.is_empty() {
        let mut block = json!({"type": "text", "text": request.system});
        match config.cache_system_prompt {
            Some(CacheTtl::FiveMinutes) => block["cache_control"] = json!({"type": "ephemeral"}),
            Some(CacheTtl::OneHour) => {
                block["cache_control"] = json!({"type": "ephemeral", "ttl": "1h"});
            }
            None => {}
        }
        body["system"] = json!([block]);
    }
    if !request.stop_sequences.is_empty() {
        body["stop_sequences"] = json!(request.stop_sequences);
    }
    if let Some(t) = config.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(tool) = tool {
        body["tools"] = json!([{
            "name": tool.name,
            "description": tool.description,
            "input_schema": tool.input_schema,
        }]);
        body["tool_choice"] = json!({"type": "tool", "name": tool.name});
    }
    body
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Turns an HTTP error response into a [`VendorError`].
pub fn http_error(status: u16, headers: &HeaderMap, body: &[u8]) -> VendorError {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let kind = field_str(&v, "/error/type");
    let mut message = field_str(&v, "/error/message");
    if message.is_empty() {
        message = format!("HTTP {status}");
    }
    let request_id = header_str(headers, "request-id")
        .map(str::to_string)
        .or_else(|| {
            v.get("request_id")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
    err(
        category_for_error_type(&kind, &message, Some(status)),
        message,
    )
    .with_status(status)
    .with_retry_after(parse_retry_after(
        header_str(headers, "retry-after-ms"),
        header_str(headers, "retry-after"),
        SystemTime::now(),
    ))
    .with_request_id(request_id)
}

fn network_error(e: &reqwest::Error) -> VendorError {
    let category = if e.is_timeout() {
        ErrorCategory::Timeout
    } else {
        ErrorCategory::Network
    };
    // Display without the URL: it is configuration, not secret, but keep errors short.
    err(category, e.without_url_ref().to_string())
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let mut s = self.to_string();
        if let Some(url) = self.url() {
            s = s.replace(url.as_str(), "<url>");
        }
        let mut source = std::error::Error::source(self);
        while let Some(inner) = source {
            s.push_str(": ");
            s.push_str(&inner.to_string());
            source = inner.source();
        }
        s
    }
}

impl AnthropicLlm {
    pub fn new(config: AnthropicConfig) -> Result<Self, VendorError> {
        let http = super::shared_http_client(config.connect_timeout)
            .map_err(|e| err(ErrorCategory::Protocol, format!("HTTP client: {e}")))?;
        Ok(Self {
            config: Arc::new(config),
            http,
        })
    }

    pub fn config(&self) -> &AnthropicConfig {
        &self.config
    }

    fn key_header(api_key: &ApiKey) -> Result<HeaderValue, VendorError> {
        let mut v = HeaderValue::from_str(api_key.expose_secret()).map_err(|_| {
            err(
                ErrorCategory::Auth,
                "the API key contains characters not allowed in a header",
            )
        })?;
        v.set_sensitive(true);
        Ok(v)
    }

    /// Sends with retries; returns the 200 response, the retries made and time to headers.
    async fn send_with_retries(
        &self,
        body: &[u8],
        started: Instant,
    ) -> Result<(reqwest::Response, u32), VendorError> {
        let url = format!("{}/v1/messages", self.config.base_url.trim_end_matches('/'));
        let api_key = self.config.api_key.current(Vendor::Anthropic)?;
        let key = Self::key_header(&api_key)?;
        let secret = api_key.expose_secret();
        let mut retries = 0u32;
        loop {
            let attempt = self
                .http
                .post(&url)
                .header("x-api-key", key.clone())
                .header("anthropic-version", &self.config.anthropic_version)
                .header("content-type", "application/json")
                .header("accept", "text/event-stream")
                .header("x-stainless-retry-count", retries.to_string())
                .body(body.to_vec())
                .send();
            let outcome = tokio::time::timeout(self.config.response_timeout, attempt).await;
            let (error, server_delay, retryable) = match outcome {
                Ok(Ok(resp)) if resp.status().is_success() => return Ok((resp, retries)),
                Ok(Ok(resp)) => {
                    let status = resp.status().as_u16();
                    let headers = resp.headers().clone();
                    let body = tokio::time::timeout(self.config.idle_timeout, resp.bytes())
                        .await
                        .ok()
                        .and_then(Result::ok)
                        .unwrap_or_default();
                    let e = http_error(status, &headers, &body).redacted(secret);
                    let retryable =
                        should_retry_status(status, header_str(&headers, "x-should-retry"));
                    let delay = e.retry_after;
                    (e, delay, retryable)
                }
                Ok(Err(e)) => (network_error(&e).redacted(secret), None, true),
                Err(_) => (
                    err(
                        ErrorCategory::Timeout,
                        "no response headers within the timeout",
                    ),
                    None,
                    true,
                ),
            };
            if !retryable || retries >= self.config.retry.max_retries {
                tracing::debug!(vendor = %Vendor::Anthropic, category = ?error.category, retries, elapsed_ms = started.elapsed().as_millis() as u64, "request failed");
                return Err(error);
            }
            let wait = self
                .config
                .retry
                .delay(retries, server_delay, rand::random::<f64>());
            tracing::debug!(vendor = %Vendor::Anthropic, category = ?error.category, wait_ms = wait.as_millis() as u64, "retrying");
            tokio::time::sleep(wait).await;
            retries += 1;
        }
    }
}

#[async_trait]
impl LanguageModel for AnthropicLlm {
    async fn stream(&self, request: LlmRequest) -> Result<LlmStream, VendorError> {
        let started = Instant::now();
        let body = serde_json::to_vec(&request_body(&self.config, &request))
            .map_err(|e| err(ErrorCategory::BadRequest, e.to_string()))?;
        let (response, retries) = self.send_with_retries(&body, started).await?;
        let request_id = header_str(response.headers(), "request-id").map(str::to_string);
        let timing = LlmTiming {
            time_to_headers: Some(started.elapsed()),
            retries,
            ..LlmTiming::default()
        };
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let (cancel_tx, cancel_rx) = oneshot::channel();
        let task = StreamTask {
            llm: self.clone(),
            body,
            started,
            timing,
            request_id,
            assembler: ReplyAssembler::default(),
            abandoned: LlmUsage::default(),
            stall_retries: 0,
            delivered_text: false,
            tx,
        };
        tokio::spawn(task.run(response, cancel_rx));
        Ok(LlmStream::new(rx, cancel_tx))
    }

    async fn call_tool(&self, request: LlmRequest, tool: &ToolDefinition) -> ToolOutcome {
        let started = Instant::now();
        let body =
            match serde_json::to_vec(&request_body_with_tool(&self.config, &request, Some(tool))) {
                Ok(body) => body,
                Err(e) => {
                    return ToolOutcome::Failed {
                        error: err(ErrorCategory::BadRequest, e.to_string()),
                        report: None,
                    };
                }
            };
        let (response, retries) = match self.send_with_retries(&body, started).await {
            Ok(sent) => sent,
            Err(error) => {
                return ToolOutcome::Failed {
                    error,
                    report: None,
                };
            }
        };
        let request_id = header_str(response.headers(), "request-id").map(str::to_string);
        let mut reply = ToolReply {
            config: &self.config,
            started,
            timing: LlmTiming {
                time_to_headers: Some(started.elapsed()),
                retries,
                ..LlmTiming::default()
            },
            request_id,
            assembler: ReplyAssembler::default(),
        };
        reply.read(response).await
    }
}

/// Reads one forced tool call's reply to its end (the caller awaits the whole input: nothing
/// of it is usable before it is complete).
struct ToolReply<'a> {
    config: &'a AnthropicConfig,
    started: Instant,
    timing: LlmTiming,
    request_id: Option<String>,
    assembler: ReplyAssembler,
}

impl ToolReply<'_> {
    fn report(&self) -> LlmReport {
        let mut timing = self.timing;
        timing.total = self.started.elapsed();
        let usage = self.assembler.usage;
        LlmReport {
            model: self
                .assembler
                .model
                .clone()
                .unwrap_or_else(|| self.config.model.clone()),
            usage,
            timing,
            cost_usd: usage.cost_usd(&self.config.prices),
            request_id: self.request_id.clone(),
        }
    }

    fn failed(&self, error: VendorError) -> ToolOutcome {
        tracing::debug!(vendor = %Vendor::Anthropic, category = ?error.category, "tool call failed");
        ToolOutcome::Failed {
            error: error.with_request_id(self.request_id.clone()),
            report: Some(self.report()),
        }
    }

    async fn read(&mut self, response: reqwest::Response) -> ToolOutcome {
        let mut bytes = response.bytes_stream();
        let mut decoder = SseDecoder::new();
        loop {
            let chunk = match tokio::time::timeout(self.config.idle_timeout, bytes.next()).await {
                Err(_) => return self.failed(err(ErrorCategory::Timeout, "the stream stalled")),
                Ok(None) => {
                    return self.failed(err(
                        ErrorCategory::Network,
                        "the stream ended before message_stop",
                    ));
                }
                Ok(Some(Err(e))) => return self.failed(network_error(&e)),
                Ok(Some(Ok(chunk))) => chunk,
            };
            let events = match decoder.push(&chunk) {
                Ok(events) => events,
                Err(e) => return self.failed(err(ErrorCategory::Protocol, e.to_string())),
            };
            for sse in events {
                let event = match parse_event(sse.event.as_deref(), &sse.data) {
                    Ok(event) => event,
                    Err(e) => return self.failed(err(ErrorCategory::Protocol, e.to_string())),
                };
                let input_delta = matches!(
                    event,
                    StreamEvent::ContentBlockDelta {
                        delta: Delta::InputJson(_),
                        ..
                    }
                );
                if input_delta && self.timing.time_to_first_text.is_none() {
                    // The first output of a tool call is its first input fragment.
                    self.timing.time_to_first_text = Some(self.started.elapsed());
                }
                match self.assembler.apply(event) {
                    ReplyStep::Nothing | ReplyStep::Text(_) => {}
                    ReplyStep::Done(stop_reason) => {
                        return ToolOutcome::Called {
                            input: self.assembler.tool_input().map(str::to_owned),
                            stop_reason,
                            report: self.report(),
                        };
                    }
                    ReplyStep::Failed { kind, message } => {
                        let category = category_for_error_type(&kind, &message, None);
                        return self.failed(err(category, format!("{kind}: {message}")));
                    }
                }
            }
        }
    }
}

/// How one streamed attempt ended.
enum AttemptEnd {
    /// A terminal event went to the caller, or the caller is gone.
    Over,
    /// The watchdog fired: no content delta in time.
    Stalled(VendorError),
    Failed(VendorError),
}

/// Reads a streamed reply, and sends it again after a stall while nothing was delivered.
struct StreamTask {
    /// The client, to send the request again after a stall.
    llm: AnthropicLlm,
    body: Vec<u8>,
    started: Instant,
    timing: LlmTiming,
    request_id: Option<String>,
    /// The current attempt's reply.
    assembler: ReplyAssembler,
    /// What the attempts given up after a stall used (their input was billed).
    abandoned: LlmUsage,
    stall_retries: u32,
    /// Whether any text reached the caller: then the reply can no longer be sent again.
    delivered_text: bool,
    tx: mpsc::Sender<LlmEvent>,
}

impl StreamTask {
    fn report(&self) -> LlmReport {
        let config = &self.llm.config;
        let mut timing = self.timing;
        timing.total = self.started.elapsed();
        let usage = self.abandoned.plus(self.assembler.usage);
        LlmReport {
            model: self
                .assembler
                .model
                .clone()
                .unwrap_or_else(|| config.model.clone()),
            usage,
            timing,
            cost_usd: usage.cost_usd(&config.prices),
            request_id: self.request_id.clone(),
        }
    }

    async fn fail(self, error: VendorError) {
        let error = error.with_request_id(self.request_id.clone());
        let report = self.report();
        tracing::debug!(vendor = %Vendor::Anthropic, category = ?error.category, "stream failed");
        let _ = self.tx.send(LlmEvent::Failed { error, report }).await;
    }

    async fn run(mut self, mut response: reqwest::Response, mut cancel: oneshot::Receiver<()>) {
        loop {
            let error = match self.read(response, &mut cancel).await {
                AttemptEnd::Over => return,
                AttemptEnd::Failed(error) => return self.fail(error).await,
                AttemptEnd::Stalled(error) => error,
            };
            STALLED_STREAMS.inc();
            // A reply partly heard cannot be sent again: the caller's failure handling
            // decides. Before that, the same request is sent again at once (no backoff: a
            // stall is a stuck stream, not a server asking for room, and someone is waiting).
            let retrying =
                !self.delivered_text && self.stall_retries < self.llm.config.retry.max_retries;
            tracing::warn!(
                vendor = %Vendor::Anthropic,
                stalled = true,
                text_delivered = self.delivered_text,
                retrying,
                "the stream sent no token in time"
            );
            if !retrying {
                return self.fail(error).await;
            }
            self.stall_retries += 1;
            self.abandoned = self.abandoned.plus(self.assembler.usage);
            self.assembler = ReplyAssembler::default();
            let sent = tokio::select! {
                biased;
                _ = &mut cancel => {
                    return self.fail(err(ErrorCategory::Cancelled, "cancelled by the caller")).await;
                }
                sent = self.llm.send_with_retries(&self.body, self.started) => sent,
            };
            match sent {
                Ok((next, retries)) => {
                    self.timing.retries += 1 + retries;
                    self.request_id = header_str(next.headers(), "request-id").map(str::to_string);
                    response = next;
                }
                Err(error) => return self.fail(error).await,
            }
        }
    }

    /// Reads one attempt's stream until its end, a failure or a stall.
    async fn read(
        &mut self,
        response: reqwest::Response,
        cancel: &mut oneshot::Receiver<()>,
    ) -> AttemptEnd {
        let config = Arc::clone(&self.llm.config);
        let mut bytes = response.bytes_stream();
        let mut decoder = SseDecoder::new();
        let mut first_token = true;
        let mut token_deadline = tokio::time::Instant::now() + config.first_token_timeout;
        loop {
            let idle_deadline = tokio::time::Instant::now() + config.idle_timeout;
            let chunk = tokio::select! {
                biased;
                _ = &mut *cancel => {
                    return AttemptEnd::Failed(err(ErrorCategory::Cancelled, "cancelled by the caller"));
                }
                next = tokio::time::timeout_at(idle_deadline.min(token_deadline), bytes.next()) => next,
            };
            let chunk = match chunk {
                Err(_) if token_deadline <= idle_deadline => {
                    let message = if first_token {
                        format!(
                            "no first token within {} ms",
                            config.first_token_timeout.as_millis()
                        )
                    } else {
                        format!(
                            "no token within {} ms of the last",
                            config.inter_token_timeout.as_millis()
                        )
                    };
                    return AttemptEnd::Stalled(err(ErrorCategory::Timeout, message));
                }
                Err(_) => {
                    return AttemptEnd::Failed(err(ErrorCategory::Timeout, "the stream stalled"));
                }
                Ok(None) => {
                    return AttemptEnd::Failed(err(
                        ErrorCategory::Network,
                        "the stream ended before message_stop",
                    ));
                }
                Ok(Some(Err(e))) => return AttemptEnd::Failed(network_error(&e)),
                Ok(Some(Ok(c))) => c,
            };
            let events = match decoder.push(&chunk) {
                Ok(e) => e,
                Err(e) => return AttemptEnd::Failed(err(ErrorCategory::Protocol, e.to_string())),
            };
            let mut progressed = false;
            for sse in events {
                let event = match parse_event(sse.event.as_deref(), &sse.data) {
                    Ok(e) => e,
                    Err(e) => {
                        return AttemptEnd::Failed(err(ErrorCategory::Protocol, e.to_string()));
                    }
                };
                // The first token is a content delta; after it, any event but a ping is
                // progress, so a stream stuck before its `message_stop` is caught too.
                progressed |= match event {
                    StreamEvent::ContentBlockDelta { .. } => true,
                    StreamEvent::Ping => false,
                    _ => !first_token,
                };
                match self.assembler.apply(event) {
                    ReplyStep::Nothing => {}
                    ReplyStep::Text(text) => {
                        if self.timing.time_to_first_text.is_none() {
                            self.timing.time_to_first_text = Some(self.started.elapsed());
                        }
                        self.delivered_text = true;
                        if self.tx.send(LlmEvent::TextDelta(text)).await.is_err() {
                            return AttemptEnd::Over; // consumer gone: dropping the response closes the connection
                        }
                    }
                    ReplyStep::Done(stop_reason) => {
                        let report = self.report();
                        let _ = self
                            .tx
                            .send(LlmEvent::Finished {
                                stop_reason,
                                report,
                            })
                            .await;
                        return AttemptEnd::Over;
                    }
                    ReplyStep::Failed { kind, message } => {
                        let category = category_for_error_type(&kind, &message, None);
                        return AttemptEnd::Failed(err(category, format!("{kind}: {message}")));
                    }
                }
            }
            if progressed {
                // Counted from here: time spent handing text to a slow caller is not a stall.
                first_token = false;
                token_deadline = tokio::time::Instant::now() + config.inter_token_timeout;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_of_blocks_never_started_are_not_spoken() {
        let mut a = ReplyAssembler::default();
        let step = a.apply(StreamEvent::ContentBlockDelta {
            index: 3,
            delta: Delta::Text("x".into()),
        });
        assert_eq!(step, ReplyStep::Nothing);
    }

    #[test]
    fn tool_input_is_the_first_tool_blocks_fragments_in_order() {
        let mut a = ReplyAssembler::default();
        assert_eq!(a.tool_input(), None);
        a.apply(StreamEvent::ContentBlockStart {
            index: 0,
            kind: BlockKind::Text,
        });
        a.apply(StreamEvent::ContentBlockDelta {
            index: 0,
            delta: Delta::InputJson("{\"no\"".into()),
        });
        a.apply(StreamEvent::ContentBlockStart {
            index: 1,
            kind: BlockKind::ToolUse,
        });
        for part in ["{\"a\":", " [1,", " 2]}"] {
            a.apply(StreamEvent::ContentBlockDelta {
                index: 1,
                delta: Delta::InputJson(part.into()),
            });
        }
        a.apply(StreamEvent::ContentBlockStart {
            index: 2,
            kind: BlockKind::ToolUse,
        });
        a.apply(StreamEvent::ContentBlockDelta {
            index: 2,
            delta: Delta::InputJson("{}".into()),
        });
        assert_eq!(a.tool_input(), Some("{\"a\": [1, 2]}"));
    }

    #[test]
    fn a_tool_call_body_forces_the_tool_and_caches_the_system_prompt() {
        let cfg = AnthropicConfig::new(
            "http://x",
            secrecy::SecretString::from("k"),
            "claude-haiku-4-5",
        );
        let req = LlmRequest {
            system: "Score it.".into(),
            messages: vec![super::super::ChatMessage::user("an answer")],
            ..LlmRequest::default()
        };
        let tool = ToolDefinition {
            name: "record_score".into(),
            description: "Records the score.".into(),
            input_schema: json!({"type": "object", "properties": {}}),
        };
        let body = request_body_with_tool(&cfg, &req, Some(&tool));
        assert_eq!(body["tools"][0]["name"], "record_score");
        assert_eq!(body["tools"][0]["input_schema"]["type"], "object");
        assert_eq!(
            body["tool_choice"],
            json!({"type": "tool", "name": "record_score"})
        );
        assert_eq!(body["system"][0]["cache_control"]["type"], "ephemeral");
        assert!(request_body(&cfg, &req).get("tools").is_none());
    }

    #[test]
    fn body_marks_the_system_prompt_for_caching() {
        let cfg = AnthropicConfig::new(
            "http://x",
            secrecy::SecretString::from("k"),
            "claude-haiku-4-5",
        );
        let req = LlmRequest {
            system: "Be brief.".into(),
            messages: vec![super::super::ChatMessage::user("hi")],
            ..LlmRequest::default()
        };
        let body = request_body(&cfg, &req);
        assert_eq!(body["system"][0]["cache_control"]["type"], "ephemeral");
        assert_eq!(body["stream"], true);
        assert!(body.get("temperature").is_none());
    }
}
