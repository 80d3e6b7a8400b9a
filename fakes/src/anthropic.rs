//! Fake Anthropic Messages API: `POST /v1/messages` with `stream: true`, answered as SSE with
//! the real event grammar, cumulative usage, prompt-cache emulation and rate-limit headers
//! (providers.md B and D.2). Non-streaming requests are answered with one JSON `Message`.
//!
//! Tools: a request whose `tool_choice` forces a tool (`{"type":"tool","name":…}`, or `any`,
//! which picks the first) is answered with one `tool_use` block whose input is the scripted
//! reply, streamed as `input_json_delta` fragments, ending with `stop_reason: "tool_use"`
//! (`max_tokens` when the cap cuts it; the fragments then stop mid-JSON, as the real API's do).
//! The scripted text is sent as it is, so a test can script input that is not valid JSON.
//! `tools` and `tool_choice` are validated as the API does (names, `input_schema` of type
//! `object`, a forced name that is one of the tools); tool definitions are the first part of
//! the cached prompt prefix.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::common::{Pacing, Rng, rfc3339};
use crate::fault::{Fault, FaultBook, GateAction, UnitGate, key_is_valid};
use crate::http::{
    ChunkedBody, Listener, ReadError, Refusal, Request, read_request, write_response,
};

/// How the fake Anthropic behaves.
#[derive(Debug, Clone)]
pub struct AnthropicConfig {
    /// Where to listen; port 0 picks a free one. Loopback only.
    pub listen: SocketAddr,
    /// Scales every delay below.
    pub pacing: Pacing,
    /// Delay between the response headers and `message_start`.
    pub time_to_message_start: Duration,
    /// Further delay from `message_start` to the first `text_delta`.
    pub time_to_first_text: Duration,
    /// Delay between successive deltas.
    pub inter_delta: Duration,
    /// During longer waits a `ping` event is sent this often (the real cadence is undocumented).
    pub ping_interval: Duration,
    /// Replies, used in turn (request n gets `replies[n % len]`); for a forced tool call, the
    /// tool's input JSON.
    pub replies: Vec<String>,
    /// When set, every reply opens with a thinking block holding this text (never to be spoken).
    pub thinking: Option<String>,
    /// Accepted model ids; empty accepts any id starting with `claude-`.
    pub models: Vec<String>,
    /// Minimum cacheable prefix in (estimated) tokens; below it nothing is cached.
    pub min_cacheable_tokens: u64,
    /// Requests allowed before every further request gets 429 (the rate-limit window never resets).
    pub request_limit: u64,
    /// Seed for ids and delta splitting.
    pub seed: u64,
    /// How many of the latest request bodies [`FakeAnthropic::requests`] keeps (older ones are
    /// forgotten, so a long-running fake's memory stays bounded; 0 keeps none).
    pub recorded_requests: usize,
}

/// The default of [`AnthropicConfig::recorded_requests`]: enough for any test's inspection.
pub const RECORDED_REQUESTS: usize = 64;

impl Default for AnthropicConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            pacing: Pacing::REAL_TIME,
            time_to_message_start: Duration::from_millis(350),
            time_to_first_text: Duration::from_millis(150),
            inter_delta: Duration::from_millis(30),
            ping_interval: Duration::from_secs(5),
            replies: vec![
                "Thanks for that. Could you walk me through a project you are proud of?"
                    .to_string(),
            ],
            thinking: None,
            models: Vec::new(),
            min_cacheable_tokens: 1024,
            request_limit: u64::MAX,
            seed: 0x5eed_a17c,
            recorded_requests: RECORDED_REQUESTS,
        }
    }
}

/// Counters a test can read; every field is cumulative since start.
#[derive(Debug, Default)]
struct AnthropicStats {
    requests: AtomicU64,
    rejected: AtomicU64,
    streams_started: AtomicU64,
    streams_completed: AtomicU64,
    text_deltas: AtomicU64,
    input_tokens: AtomicU64,
    output_tokens: AtomicU64,
    cache_read_tokens: AtomicU64,
    cache_creation_tokens: AtomicU64,
}

/// A snapshot of [`AnthropicStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnthropicCounters {
    /// HTTP requests read (any path, any outcome).
    pub requests: u64,
    /// Requests answered with an HTTP error (auth, validation, injected fault).
    pub rejected: u64,
    /// Responses that started streaming (status 200).
    pub streams_started: u64,
    /// Streams that reached `message_stop`.
    pub streams_completed: u64,
    /// `text_delta` events sent.
    pub text_deltas: u64,
    /// Usage reported on streamed responses (uncached input, output, cache read, cache write).
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_creation_tokens: u64,
}

impl AnthropicStats {
    fn snapshot(&self) -> AnthropicCounters {
        let g = |a: &AtomicU64| a.load(Ordering::SeqCst);
        AnthropicCounters {
            requests: g(&self.requests),
            rejected: g(&self.rejected),
            streams_started: g(&self.streams_started),
            streams_completed: g(&self.streams_completed),
            text_deltas: g(&self.text_deltas),
            input_tokens: g(&self.input_tokens),
            output_tokens: g(&self.output_tokens),
            cache_read_tokens: g(&self.cache_read_tokens),
            cache_creation_tokens: g(&self.cache_creation_tokens),
        }
    }
}

/// A request as the fake received it (the key is not recorded).
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub anthropic_version: Option<String>,
    pub body: Value,
}

struct Inner {
    config: AnthropicConfig,
    faults: FaultBook,
    rng: Rng,
    stats: AnthropicStats,
    served: AtomicU64,
    cache: Mutex<HashMap<u64, Instant>>,
    recorded: Mutex<VecDeque<RecordedRequest>>,
}

/// A running fake Anthropic API.
pub struct FakeAnthropic {
    listener: Listener,
    inner: Arc<Inner>,
}

impl FakeAnthropic {
    /// Starts the fake on `config.listen`.
    pub async fn start(config: AnthropicConfig) -> std::io::Result<Self> {
        let inner = Arc::new(Inner {
            rng: Rng::new(config.seed),
            config,
            faults: FaultBook::default(),
            stats: AnthropicStats::default(),
            served: AtomicU64::new(0),
            cache: Mutex::new(HashMap::new()),
            recorded: Mutex::new(VecDeque::new()),
        });
        let listener = Listener::serve(inner.config.listen, &inner, handle).await?;
        Ok(Self { listener, inner })
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener.addr()
    }

    /// `http://127.0.0.1:PORT` (the client appends `/v1/messages`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr())
    }

    pub fn counters(&self) -> AnthropicCounters {
        self.inner.stats.snapshot()
    }

    /// The latest well-formed request bodies received (at most
    /// [`AnthropicConfig::recorded_requests`]), oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.inner
            .recorded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    pub async fn shutdown(self) {
        self.listener.shutdown().await;
    }
}

fn error_body(kind: &str, message: &str, request_id: &str) -> Vec<u8> {
    json!({"type":"error","error":{"type":kind,"message":message},"request_id":request_id})
        .to_string()
        .into_bytes()
}

fn rate_limit_headers(remaining: u64) -> Vec<(&'static str, String)> {
    let reset = rfc3339(std::time::SystemTime::now() + Duration::from_secs(60));
    vec![
        ("anthropic-ratelimit-requests-limit", "1000".to_string()),
        (
            "anthropic-ratelimit-requests-remaining",
            remaining.min(1000).to_string(),
        ),
        ("anthropic-ratelimit-requests-reset", reset.clone()),
        ("anthropic-ratelimit-tokens-limit", "96000".to_string()),
        ("anthropic-ratelimit-tokens-remaining", "96000".to_string()),
        ("anthropic-ratelimit-tokens-reset", reset),
    ]
}

async fn reply_error(
    inner: &Inner,
    stream: &mut TcpStream,
    status: u16,
    kind: &str,
    message: &str,
    request_id: &str,
    mut extra: Vec<(&'static str, String)>,
) {
    inner.stats.rejected.fetch_add(1, Ordering::SeqCst);
    extra.push(("request-id", request_id.to_string()));
    extra.push(("content-type", "application/json".to_string()));
    let _ = write_response(
        stream,
        status,
        &extra,
        &error_body(kind, message, request_id),
    )
    .await;
}

/// 429 `rate_limit_error` with the rate-limit headers at zero and `retry-after` when given.
fn rate_limited(message: &str, retry_after: Option<String>) -> Refusal {
    let mut refusal = Refusal::new(429, "rate_limit_error", message);
    refusal.headers = rate_limit_headers(0);
    match retry_after {
        Some(seconds) => refusal.with_header("retry-after", seconds),
        None => refusal,
    }
}

/// Writes a refusal as Anthropic does (an `error` object with its type and message).
async fn send(refusal: Refusal, inner: &Inner, stream: &mut TcpStream, request_id: &str) {
    let Refusal {
        status,
        code,
        message,
        headers,
    } = refusal;
    reply_error(inner, stream, status, code, &message, request_id, headers).await;
}

/// One connection: one request, in named steps (route, key and fault, headers, quota, body,
/// then the reply, streamed or whole).
async fn handle(inner: Arc<Inner>, mut stream: TcpStream) {
    let req = match read_request(&mut stream).await {
        Ok(r) => r,
        Err(ReadError::Malformed(why)) => {
            let _ = write_response(&mut stream, 400, &[], why.as_bytes()).await;
            return;
        }
        Err(_) => return,
    };
    inner.stats.requests.fetch_add(1, Ordering::SeqCst);
    let request_id = format!("req_011C{}", inner.rng.base62(20));
    let fault = match admit(&inner, &req).await {
        Ok(admitted) => admitted,
        Err(refusal) => return send(refusal, &inner, &mut stream, &request_id).await,
    };
    let served = inner.served.fetch_add(1, Ordering::SeqCst);
    if served >= inner.config.request_limit {
        let msg = "Number of requests has exceeded your per-minute rate limit";
        let refusal = rate_limited(msg, Some("60".to_string()));
        return send(refusal, &inner, &mut stream, &request_id).await;
    }
    let remaining = inner.config.request_limit.saturating_sub(served + 1);
    let (body, parsed) = match parse_body(&inner.config, &req.body) {
        Ok(ok) => ok,
        Err(refusal) => return send(refusal, &inner, &mut stream, &request_id).await,
    };
    record(&inner, req.header("anthropic-version"), &body);
    let plan = plan_reply(&inner, &parsed, served);
    let mut headers = rate_limit_headers(remaining);
    headers.push(("request-id", request_id.clone()));
    if parsed.stream {
        headers.push((
            "content-type",
            "text/event-stream; charset=utf-8".to_string(),
        ));
        headers.push(("cache-control", "no-cache".to_string()));
        stream_reply(&inner, &mut stream, &req, headers, &plan, &fault).await;
    } else {
        headers.push(("content-type", "application/json".to_string()));
        reply_whole(&inner, &mut stream, &headers, &plan).await;
    }
}

/// The route, the key (and the fault it asks for), the version header and the faults that
/// refuse the request outright; the fault to apply later otherwise.
async fn admit(inner: &Inner, req: &Request) -> Result<Fault, Refusal> {
    if req.path != "/v1/messages" {
        let msg = format!("Not found: {}", req.path);
        return Err(Refusal::new(404, "not_found_error", msg));
    }
    if req.method != "POST" {
        return Err(Refusal::new(
            405,
            "invalid_request_error",
            "Method not allowed",
        ));
    }
    let key = req
        .header("x-api-key")
        .or_else(|| {
            req.header("authorization")
                .and_then(|v| v.strip_prefix("Bearer "))
        })
        .unwrap_or_default();
    let fault = if key_is_valid(key) {
        inner.faults.next(key)
    } else {
        Fault::Unauthorized
    };
    if let Fault::SlowFirstByte(d) = fault {
        tokio::time::sleep(d).await;
    }
    if fault == Fault::Unauthorized {
        return Err(Refusal::new(
            401,
            "authentication_error",
            "invalid x-api-key",
        ));
    }
    if req.header("anthropic-version").is_none() {
        return Err(Refusal::new(
            400,
            "invalid_request_error",
            "anthropic-version: header is required",
        ));
    }
    match fault_refusal(&fault) {
        Some(refusal) => Err(refusal),
        None => Ok(fault),
    }
}

/// The answer of a fault that refuses the request before any reply.
fn fault_refusal(fault: &Fault) -> Option<Refusal> {
    Some(match fault {
        Fault::RateLimited { retry_after } => rate_limited(
            "Number of request tokens has exceeded your per-minute rate limit",
            retry_after.map(|s| s.to_string()),
        ),
        Fault::QuotaExceeded => Refusal::new(
            402,
            "billing_error",
            "Your credit balance is too low to access the Anthropic API.",
        ),
        Fault::Overloaded => Refusal::new(529, "overloaded_error", "Overloaded"),
        Fault::ServerError { should_retry } => {
            let refusal = Refusal::new(500, "api_error", "Internal server error");
            match should_retry {
                Some(b) => refusal.with_header("x-should-retry", b.to_string()),
                None => refusal,
            }
        }
        _ => return None,
    })
}

/// The request body as JSON and as a validated Messages request.
fn parse_body(config: &AnthropicConfig, raw: &[u8]) -> Result<(Value, Parsed), Refusal> {
    let body: Value = serde_json::from_slice(raw).map_err(|_| {
        Refusal::new(
            400,
            "invalid_request_error",
            "There was an error parsing the body of your request",
        )
    })?;
    let parsed =
        validate(config, &body).map_err(|(status, kind, msg)| Refusal::new(status, kind, msg))?;
    Ok((body, parsed))
}

/// Keeps the latest well-formed requests for [`FakeAnthropic::requests`].
fn record(inner: &Inner, version: Option<&str>, body: &Value) {
    if inner.config.recorded_requests == 0 {
        return;
    }
    let mut recorded = inner.recorded.lock().unwrap_or_else(|p| p.into_inner());
    if recorded.len() >= inner.config.recorded_requests {
        recorded.pop_front();
    }
    recorded.push_back(RecordedRequest {
        anthropic_version: version.map(str::to_string),
        body: body.clone(),
    });
}

/// A non-streamed reply: the whole message as one JSON body.
async fn reply_whole(
    inner: &Inner,
    stream: &mut TcpStream,
    headers: &[(&'static str, String)],
    plan: &Plan,
) {
    let text: String = plan.pieces.concat();
    let content = match &plan.tool {
        // Input that is not JSON cannot be a non-streamed `input` object; it arrives empty.
        Some((id, name)) => json!([{"type": "tool_use", "id": id, "name": name,
            "input": serde_json::from_str::<Value>(&text).unwrap_or_else(|_| json!({}))}]),
        None => json!([{"type":"text","text": text}]),
    };
    let body = json!({
        "id": plan.message_id, "type": "message", "role": "assistant", "model": plan.model,
        "content": content,
        "stop_reason": plan.stop_reason, "stop_sequence": plan.stop_sequence,
        "usage": usage_json(&plan.usage, plan.output_tokens),
    });
    inner.stats.streams_completed.fetch_add(1, Ordering::SeqCst);
    count_usage(inner, plan);
    let _ = write_response(stream, 200, headers, body.to_string().as_bytes()).await;
}

struct Parsed {
    model: String,
    /// The tool a `tool_choice` forces.
    forced_tool: Option<String>,
    max_tokens: u64,
    stream: bool,
    stop_sequences: Vec<String>,
    /// (text, cache_control ttl if this block is a breakpoint), in prompt order.
    blocks: Vec<(String, Option<String>)>,
}

fn validate(config: &AnthropicConfig, body: &Value) -> Result<Parsed, (u16, &'static str, String)> {
    let bad = |m: &str| (400, "invalid_request_error", m.to_string());
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("model: Field required"))?;
    let known = if config.models.is_empty() {
        model.starts_with("claude-")
    } else {
        config.models.iter().any(|m| m == model)
    };
    if !known {
        return Err((404, "not_found_error", format!("model: {model}")));
    }
    let max_tokens = body
        .get("max_tokens")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad("max_tokens: Field required"))?;
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| bad("messages: at least one message is required"))?;
    let mut blocks = Vec::new();
    let push_content = |content: &Value, blocks: &mut Vec<(String, Option<String>)>| match content {
        Value::String(s) => {
            blocks.push((s.clone(), None));
            Ok(())
        }
        Value::Array(items) => {
            for item in items {
                let text = item.get("text").and_then(Value::as_str).unwrap_or("");
                let ttl = item.get("cache_control").map(|c| {
                    c.get("ttl")
                        .and_then(Value::as_str)
                        .unwrap_or("5m")
                        .to_string()
                });
                blocks.push((text.to_string(), ttl));
            }
            Ok(())
        }
        _ => Err(bad("content: must be a string or a list of blocks")),
    };
    let forced_tool = validate_tools(body, &mut blocks)?;
    if let Some(system) = body.get("system") {
        push_content(system, &mut blocks)?;
    }
    let mut previous_role = "";
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        if role != "user" && role != "assistant" {
            return Err(bad(&format!(
                "messages.{i}.role: Input should be 'user' or 'assistant'"
            )));
        }
        if i == 0 && role != "user" {
            return Err(bad("messages: first message must use the \"user\" role"));
        }
        if role == previous_role {
            return Err(bad(
                "messages: roles must alternate between \"user\" and \"assistant\"",
            ));
        }
        previous_role = role;
        push_content(m.get("content").unwrap_or(&Value::Null), &mut blocks)?;
    }
    let stop_sequences = body
        .get("stop_sequences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Ok(Parsed {
        model: model.to_string(),
        forced_tool,
        max_tokens,
        stream: body.get("stream").and_then(Value::as_bool).unwrap_or(false),
        stop_sequences,
        blocks,
    })
}

/// Checks `tools` and `tool_choice`; adds the tool definitions to the prompt blocks (they come
/// first in the cached prefix) and returns the tool a `tool_choice` forces.
fn validate_tools(
    body: &Value,
    blocks: &mut Vec<(String, Option<String>)>,
) -> Result<Option<String>, (u16, &'static str, String)> {
    let bad = |m: String| (400, "invalid_request_error", m);
    let mut names = Vec::new();
    if let Some(tools) = body.get("tools") {
        let tools = tools
            .as_array()
            .ok_or_else(|| bad("tools: Input should be a valid list".into()))?;
        for (i, tool) in tools.iter().enumerate() {
            let name = tool
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| {
                    (1..=64).contains(&n.len())
                        && n.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                })
                .ok_or_else(|| {
                    bad(format!(
                        "tools.{i}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
                    ))
                })?;
            if tool.pointer("/input_schema/type").and_then(Value::as_str) != Some("object") {
                return Err(bad(format!(
                    "tools.{i}.input_schema.type: Input should be 'object'"
                )));
            }
            if names.contains(&name) {
                return Err(bad("tools: Tool names must be unique.".into()));
            }
            names.push(name);
            let ttl = tool.get("cache_control").map(|c| {
                c.get("ttl")
                    .and_then(Value::as_str)
                    .unwrap_or("5m")
                    .to_string()
            });
            blocks.push((tool.to_string(), ttl));
        }
    }
    let Some(choice) = body.get("tool_choice") else {
        return Ok(None);
    };
    if names.is_empty() {
        return Err(bad(
            "tool_choice: tool_choice may only be specified while providing tools".into(),
        ));
    }
    match choice.get("type").and_then(Value::as_str) {
        Some("auto" | "none") => Ok(None),
        Some("any") => Ok(Some(names[0].to_string())),
        Some("tool") => {
            let name = choice.get("name").and_then(Value::as_str).unwrap_or("");
            if names.contains(&name) {
                Ok(Some(name.to_string()))
            } else {
                Err(bad(format!(
                    "tool_choice.name: Tool '{name}' not found in provided tools"
                )))
            }
        }
        _ => Err(bad(
            "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'".into(),
        )),
    }
}

/// Splits a tool's input JSON into fragments of 4 to 24 characters, as `input_json_delta`s
/// arrive (anywhere, also inside strings).
fn split_json(rng: &Rng, json: &str) -> Vec<String> {
    let chars: Vec<char> = json.chars().collect();
    let mut pieces = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let end = (i + rng.range(4, 24) as usize).min(chars.len());
        pieces.push(chars[i..end].iter().collect());
        i = end;
    }
    pieces
}

fn estimate_tokens(chars: usize) -> u64 {
    (chars as u64).div_ceil(4)
}

#[derive(Debug, Clone, Default)]
struct InputUsage {
    input: u64,
    cache_read: u64,
    cache_creation: u64,
    creation_5m: u64,
    creation_1h: u64,
}

struct Plan {
    message_id: String,
    model: String,
    /// A forced tool call: the `tool_use` block's id and the tool's name; `pieces` are then
    /// its input fragments.
    tool: Option<(String, String)>,
    pieces: Vec<String>,
    thinking_pieces: Vec<String>,
    stop_reason: &'static str,
    stop_sequence: Option<String>,
    usage: InputUsage,
    output_tokens: u64,
}

fn plan_cache(inner: &Inner, parsed: &Parsed) -> InputUsage {
    let total_chars: usize = parsed.blocks.iter().map(|(t, _)| t.chars().count()).sum();
    let total = estimate_tokens(total_chars);
    let mut prefix = String::new();
    let mut breakpoints = Vec::new();
    for (text, ttl) in &parsed.blocks {
        prefix.push_str(text);
        if let Some(ttl) = ttl {
            let tokens = estimate_tokens(prefix.chars().count());
            if tokens >= inner.config.min_cacheable_tokens {
                let mut h = DefaultHasher::new();
                parsed.model.hash(&mut h);
                prefix.hash(&mut h);
                let ttl = if ttl == "1h" {
                    Duration::from_secs(3600)
                } else {
                    Duration::from_secs(300)
                };
                breakpoints.push((h.finish(), tokens, ttl));
            }
        }
    }
    let mut usage = InputUsage {
        input: total,
        ..Default::default()
    };
    let Some(&(_, last_tokens, last_ttl)) = breakpoints.last() else {
        return usage;
    };
    let now = Instant::now();
    let mut cache = inner.cache.lock().unwrap_or_else(|p| p.into_inner());
    // Expired entries are forgotten, as the real cache forgets them: the map stays bounded by
    // the prefixes seen within one TTL.
    cache.retain(|_, expires| *expires > now);
    let mut read = 0;
    for &(hash, tokens, ttl) in &breakpoints {
        let fresh = cache.get(&hash).is_some_and(|expires| *expires > now);
        if fresh {
            read = read.max(tokens);
        }
        cache.insert(hash, now + ttl);
    }
    let creation = last_tokens.saturating_sub(read);
    usage.cache_read = read;
    usage.cache_creation = creation;
    if last_ttl >= Duration::from_secs(3600) {
        usage.creation_1h = creation;
    } else {
        usage.creation_5m = creation;
    }
    usage.input = total.saturating_sub(read + creation);
    usage
}

/// Splits text into word-fragment deltas of one to three words, each keeping its leading space.
fn split_deltas(rng: &Rng, text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    for c in text.chars() {
        if c.is_whitespace() && in_word {
            words.push(std::mem::take(&mut current));
            in_word = false;
        } else if !c.is_whitespace() {
            in_word = true;
        }
        current.push(c);
    }
    if !current.is_empty() {
        words.push(current);
    }
    let mut pieces = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let n = rng.range(1, 3) as usize;
        let end = (i + n).min(words.len());
        pieces.push(words[i..end].concat());
        i = end;
    }
    pieces
}

fn plan_reply(inner: &Inner, parsed: &Parsed, served: u64) -> Plan {
    let replies = &inner.config.replies;
    let mut reply = if replies.is_empty() {
        String::from("Hello.")
    } else {
        replies[(served as usize) % replies.len()].clone()
    };
    let tool = parsed
        .forced_tool
        .clone()
        .map(|name| (format!("toolu_01{}", inner.rng.base62(22)), name));
    let mut stop_reason = if tool.is_some() {
        "tool_use"
    } else {
        "end_turn"
    };
    let mut stop_sequence = None;
    // Stop sequences apply to text, not to a tool's input.
    if let Some((pos, seq)) = parsed
        .stop_sequences
        .iter()
        .filter(|s| !s.is_empty() && tool.is_none())
        .filter_map(|s| reply.find(s.as_str()).map(|p| (p, s.clone())))
        .min_by_key(|(p, _)| *p)
    {
        reply.truncate(pos);
        stop_reason = "stop_sequence";
        stop_sequence = Some(seq);
    }
    // Forcing a tool rules thinking out (the API refuses the combination).
    let thinking_pieces = inner
        .config
        .thinking
        .as_deref()
        .filter(|_| tool.is_none())
        .map(|t| split_deltas(&inner.rng, t))
        .unwrap_or_default();
    let mut output_tokens: u64 = thinking_pieces
        .iter()
        .map(|p| estimate_tokens(p.chars().count()))
        .sum();
    let mut pieces = Vec::new();
    let fragments = if tool.is_some() {
        split_json(&inner.rng, &reply)
    } else {
        split_deltas(&inner.rng, &reply)
    };
    for piece in fragments {
        let t = estimate_tokens(piece.chars().count());
        if output_tokens + t > parsed.max_tokens {
            stop_reason = "max_tokens";
            stop_sequence = None;
            break;
        }
        output_tokens += t;
        pieces.push(piece);
    }
    Plan {
        message_id: format!("msg_01{}", inner.rng.base62(22)),
        model: parsed.model.clone(),
        tool,
        pieces,
        thinking_pieces,
        stop_reason,
        stop_sequence,
        usage: plan_cache(inner, parsed),
        output_tokens,
    }
}

fn usage_json(u: &InputUsage, output_tokens: u64) -> Value {
    json!({
        "input_tokens": u.input,
        "cache_creation_input_tokens": u.cache_creation,
        "cache_read_input_tokens": u.cache_read,
        "cache_creation": {"ephemeral_5m_input_tokens": u.creation_5m, "ephemeral_1h_input_tokens": u.creation_1h},
        "output_tokens": output_tokens,
        "service_tier": "standard",
    })
}

fn count_usage(inner: &Inner, plan: &Plan) {
    let s = &inner.stats;
    s.input_tokens.fetch_add(plan.usage.input, Ordering::SeqCst);
    s.output_tokens
        .fetch_add(plan.output_tokens, Ordering::SeqCst);
    s.cache_read_tokens
        .fetch_add(plan.usage.cache_read, Ordering::SeqCst);
    s.cache_creation_tokens
        .fetch_add(plan.usage.cache_creation, Ordering::SeqCst);
}

fn sse(event: &str, data: &Value) -> Vec<u8> {
    format!("event: {event}\ndata: {data}\n\n").into_bytes()
}

async fn stream_reply(
    inner: &Inner,
    stream: &mut TcpStream,
    _req: &Request,
    headers: Vec<(&'static str, String)>,
    plan: &Plan,
    fault: &Fault,
) {
    let pace = inner.config.pacing;
    let Ok(mut body) = ChunkedBody::start(stream, 200, &headers).await else {
        return;
    };
    inner.stats.streams_started.fetch_add(1, Ordering::SeqCst);
    let mut gate = UnitGate::new(fault);
    tokio::time::sleep(pace.scale(inner.config.time_to_message_start)).await;
    let start = json!({"type":"message_start","message":{
        "id": plan.message_id, "type":"message", "role":"assistant", "content":[], "model": plan.model,
        "stop_reason": null, "stop_sequence": null, "usage": usage_json(&plan.usage, 1)}});
    let mut events: Vec<(Option<Duration>, &str, Value)> = vec![(None, "message_start", start)];
    let mut index = 0;
    if !plan.thinking_pieces.is_empty() {
        events.push((None, "content_block_start", json!({"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}})));
        for p in &plan.thinking_pieces {
            events.push((Some(inner.config.inter_delta), "content_block_delta", json!({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":p}})));
        }
        events.push((None, "content_block_delta", json!({"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"}})));
        events.push((
            None,
            "content_block_stop",
            json!({"type":"content_block_stop","index":0}),
        ));
        index = 1;
    }
    let block = match &plan.tool {
        Some((id, name)) => json!({"type":"tool_use","id":id,"name":name,"input":{}}),
        None => json!({"type":"text","text":""}),
    };
    events.push((
        None,
        "content_block_start",
        json!({"type":"content_block_start","index":index,"content_block":block}),
    ));
    events.push((None, "ping", json!({"type":"ping"})));
    for (i, p) in plan.pieces.iter().enumerate() {
        let wait = if i == 0 {
            inner.config.time_to_first_text
        } else {
            inner.config.inter_delta
        };
        let delta = if plan.tool.is_some() {
            json!({"type":"input_json_delta","partial_json":p})
        } else {
            json!({"type":"text_delta","text":p})
        };
        events.push((
            Some(wait),
            "content_block_delta",
            json!({"type":"content_block_delta","index":index,"delta":delta}),
        ));
    }
    events.push((
        None,
        "content_block_stop",
        json!({"type":"content_block_stop","index":index}),
    ));
    let mut delta_usage = usage_json(&plan.usage, plan.output_tokens);
    if let Some(u) = delta_usage.as_object_mut() {
        u.remove("cache_creation");
        u.remove("service_tier");
    }
    events.push((None, "message_delta", json!({"type":"message_delta","delta":{"stop_reason":plan.stop_reason,"stop_sequence":plan.stop_sequence},"usage":delta_usage})));
    events.push((None, "message_stop", json!({"type":"message_stop"})));

    let ping = sse("ping", &json!({"type":"ping"}));
    let ping_every = pace
        .scale(inner.config.ping_interval)
        .max(Duration::from_millis(1));
    for (wait, name, data) in events {
        if let Some(w) = wait {
            // Long gaps carry pings, as the real service's do.
            let mut left = pace.scale(w);
            while left > ping_every {
                tokio::time::sleep(ping_every).await;
                if body.chunk(&ping).await.is_err() {
                    return;
                }
                left -= ping_every;
            }
            tokio::time::sleep(left).await;
        }
        // Faults strike output units: text deltas, or a tool's input fragments.
        let is_text = data
            .pointer("/delta/type")
            .and_then(Value::as_str)
            .is_some_and(|t| t == "text_delta" || t == "input_json_delta");
        if is_text {
            match gate.before_unit() {
                GateAction::Send => {
                    inner.stats.text_deltas.fetch_add(1, Ordering::SeqCst);
                }
                GateAction::MidStreamError => {
                    let err = json!({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}});
                    let _ = body.chunk(&sse("error", &err)).await;
                    let _ = body.finish().await;
                    return;
                }
                GateAction::Drop => return,
                GateAction::Stall => {
                    // Open but silent until the client gives up and closes.
                    let mut sink = [0u8; 256];
                    while matches!(body.stream_mut().read(&mut sink).await, Ok(n) if n > 0) {}
                    return;
                }
            }
        }
        if body.chunk(&sse(name, &data)).await.is_err() {
            return; // client went away (cancelled)
        }
    }
    inner.stats.streams_completed.fetch_add(1, Ordering::SeqCst);
    count_usage(inner, plan);
    let _ = body.finish().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_input_fragments_reassemble_the_json_exactly() {
        let rng = Rng::new(7);
        let json = r#"{"findings":[{"rule":"x","quote":"we \"did\" it"}],"improved_answer":"é"}"#;
        let pieces = split_json(&rng, json);
        assert!(pieces.len() > 2);
        assert_eq!(pieces.concat(), json);
    }

    #[test]
    fn a_forced_tool_must_be_one_of_the_tools() {
        let config = AnthropicConfig::default();
        let body = |choice: Value| {
            json!({"model": "claude-haiku-4-5", "max_tokens": 10,
                "messages": [{"role": "user", "content": "hi"}],
                "tools": [{"name": "score", "input_schema": {"type": "object"}}],
                "tool_choice": choice})
        };
        let parsed = validate(&config, &body(json!({"type": "tool", "name": "score"})))
            .unwrap_or_else(|_| panic!("valid"));
        assert_eq!(parsed.forced_tool.as_deref(), Some("score"));
        assert!(validate(&config, &body(json!({"type": "tool", "name": "other"}))).is_err());
        let mut no_schema = body(json!({"type": "any"}));
        no_schema["tools"][0]["input_schema"] = json!({"type": "string"});
        assert!(validate(&config, &no_schema).is_err());
        let auto = validate(&config, &body(json!({"type": "auto"}))).unwrap_or_else(|_| panic!());
        assert_eq!(auto.forced_tool, None);
    }

    #[test]
    fn deltas_reassemble_the_reply_exactly() {
        let rng = Rng::new(1);
        let text = "Hello there!  How are you, today?";
        assert_eq!(split_deltas(&rng, text).concat(), text);
    }
}
