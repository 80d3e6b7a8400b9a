//! Per-connection fault injection, selected by the API key the client presents.
//!
//! The key is the one piece of the request every vendor protocol carries and that a
//! production client sends unchanged, so choosing the fault by key keeps the client's wire
//! behaviour untouched (providers.md D, "scenario control channel").
//!
//! # Key grammar
//!
//! ```text
//! <base>[~<fault>]*
//! ```
//!
//! The n-th connection (or HTTP request) that presents exactly this key gets the n-th fault in
//! the list; once the list is used up, connections are served normally. So `k~429:0.05~ok`
//! means "first request rate-limited with `retry-after: 0.05`, every later request fine".
//! A base starting with `invalid` is always rejected as a bad key (401).
//!
//! | token | effect |
//! |---|---|
//! | `ok` | serve normally |
//! | `401` | reject the key (vendor's 401 body) |
//! | `402` or `quota` | quota / billing failure (Deepgram 402, Anthropic 402 `billing_error`, ElevenLabs 401 `quota_exceeded` on HTTP, silent `isFinal` without audio on WS) |
//! | `429`, `429:<secs>`, `429:none` | rate limited, `retry-after` 1 s, `<secs>`, or no header |
//! | `529` | overloaded before the stream (Anthropic 529, Deepgram 503, ElevenLabs 429 `system_busy`) |
//! | `500`, `500:noretry` | server error; `noretry` adds `x-should-retry: false` (Anthropic) |
//! | `midstream:<n>` | after `n` units, an in-stream vendor error (Anthropic `event: error` `overloaded_error`, Deepgram close 1011 NET-0000, ElevenLabs close 1011) |
//! | `drop:<n>` | after `n` units, drop the TCP connection without a close frame or final chunk |
//! | `stall:<n>` | after `n` units, stay open and send nothing more (no pings, no timeouts) |
//! | `slow:<ms>` | wait `ms` (unscaled) before the first response byte or the 101 |
//!
//! Two modifiers, for vendors with more than one way in (ElevenLabs: WebSocket and HTTP):
//!
//! | modifier | effect |
//! |---|---|
//! | `ws=<token>`, `http=<token>` | the token only counts for connections of that protocol; once a key has a scoped token, each protocol counts its own connections over the tokens that apply to it (unscoped ones included) |
//! | `<token>*` | sticky: this and every later connection (of its scope) get the token |
//!
//! So `k~ws=drop:0*` drops every WebSocket and serves every HTTP request, and
//! `k~ws=500*~http=500*` fails both.
//!
//! A "unit" is what the vendor streams: a Deepgram server message (Results, SpeechStarted,
//! UtteranceEnd), an Anthropic `text_delta`, an ElevenLabs audio chunk (WS message or HTTP chunk).

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

/// One injected fault.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Serve normally.
    None,
    /// Reject the credential.
    Unauthorized,
    /// Quota or billing exhausted.
    QuotaExceeded,
    /// Rate limited; `retry_after` in seconds (fractions allowed), `None` sends no header.
    RateLimited { retry_after: Option<f64> },
    /// Overloaded before the stream starts.
    Overloaded,
    /// Internal server error; `should_retry` adds `x-should-retry` where the vendor has it.
    ServerError { should_retry: Option<bool> },
    /// An in-stream vendor error after `after` units.
    MidStreamError { after: u32 },
    /// Drop the TCP connection after `after` units.
    Drop { after: u32 },
    /// Stop sending after `after` units but keep the connection open.
    Stall { after: u32 },
    /// Delay the first response byte.
    SlowFirstByte(Duration),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::None => write!(f, "ok"),
            Fault::Unauthorized => write!(f, "401"),
            Fault::QuotaExceeded => write!(f, "quota"),
            Fault::RateLimited { retry_after: None } => write!(f, "429:none"),
            Fault::RateLimited {
                retry_after: Some(s),
            } => write!(f, "429:{s}"),
            Fault::Overloaded => write!(f, "529"),
            Fault::ServerError {
                should_retry: Some(false),
            } => write!(f, "500:noretry"),
            Fault::ServerError { .. } => write!(f, "500"),
            Fault::MidStreamError { after } => write!(f, "midstream:{after}"),
            Fault::Drop { after } => write!(f, "drop:{after}"),
            Fault::Stall { after } => write!(f, "stall:{after}"),
            Fault::SlowFirstByte(d) => write!(f, "slow:{}", d.as_millis()),
        }
    }
}

impl Fault {
    /// Parses one token of the key grammar; unknown tokens are `None` (served normally).
    pub fn parse(token: &str) -> Option<Fault> {
        let (name, arg) = match token.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (token, None),
        };
        let count = |a: Option<&str>| a.and_then(|a| a.parse::<u32>().ok()).unwrap_or(0);
        Some(match name {
            "ok" => Fault::None,
            "401" => Fault::Unauthorized,
            "402" | "quota" => Fault::QuotaExceeded,
            "429" => Fault::RateLimited {
                retry_after: match arg {
                    None => Some(1.0),
                    Some("none") => None,
                    Some(a) => Some(
                        a.parse::<f64>()
                            .ok()
                            .filter(|s| s.is_finite() && *s >= 0.0)?,
                    ),
                },
            },
            "529" | "overloaded" => Fault::Overloaded,
            "500" => Fault::ServerError {
                should_retry: (arg == Some("noretry")).then_some(false),
            },
            "midstream" => Fault::MidStreamError { after: count(arg) },
            "drop" => Fault::Drop { after: count(arg) },
            "stall" => Fault::Stall { after: count(arg) },
            "slow" => Fault::SlowFirstByte(Duration::from_millis(
                arg.and_then(|a| a.parse::<u64>().ok())?,
            )),
            _ => return None,
        })
    }

    /// How many units are streamed before this fault fires, for in-stream faults.
    pub(crate) fn units_before(&self) -> Option<u32> {
        match self {
            Fault::MidStreamError { after } | Fault::Drop { after } | Fault::Stall { after } => {
                Some(*after)
            }
            _ => None,
        }
    }
}

/// Builds a key that selects `faults` for successive connections; see the module docs.
pub fn fault_key(base: &str, faults: &[Fault]) -> String {
    let mut key = base.to_string();
    for f in faults {
        key.push('~');
        key.push_str(&f.to_string());
    }
    key
}

/// The base part of a key (before the first `~`).
pub(crate) fn key_base(key: &str) -> &str {
    key.split('~').next().unwrap_or("")
}

/// Is this key one the fake accepts at all?
pub(crate) fn key_is_valid(key: &str) -> bool {
    let base = key_base(key);
    !base.is_empty() && !base.starts_with("invalid")
}

/// Which way in a connection came, for the `ws=` / `http=` scopes of the key grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Protocol {
    WebSocket,
    Http,
}

/// One token with its modifiers stripped: `None` scope applies to every protocol.
fn split_token(token: &str) -> (Option<Protocol>, &str, bool) {
    let (scope, rest) = if let Some(rest) = token.strip_prefix("ws=") {
        (Some(Protocol::WebSocket), rest)
    } else if let Some(rest) = token.strip_prefix("http=") {
        (Some(Protocol::Http), rest)
    } else {
        (None, token)
    };
    match rest.strip_suffix('*') {
        Some(fault) => (scope, fault, true),
        None => (scope, rest, false),
    }
}

/// Counts connections per key (and protocol, once the key scopes its tokens) and hands out
/// the scripted fault for each.
#[derive(Debug, Default)]
pub(crate) struct FaultBook {
    seen: Mutex<HashMap<(String, Option<Protocol>), usize>>,
}

impl FaultBook {
    /// The fault for the next connection presenting `key` (a vendor with one way in).
    pub fn next(&self, key: &str) -> Fault {
        self.pick(key, None)
    }

    /// The fault for the next connection presenting `key` over `protocol`.
    pub fn next_for(&self, key: &str, protocol: Protocol) -> Fault {
        self.pick(key, Some(protocol))
    }

    fn pick(&self, key: &str, protocol: Option<Protocol>) -> Fault {
        let tokens: Vec<(Option<Protocol>, &str, bool)> =
            key.split('~').skip(1).map(split_token).collect();
        if tokens.is_empty() {
            return Fault::None;
        }
        let scoped = tokens.iter().any(|(scope, _, _)| scope.is_some());
        let counted_as = if scoped { protocol } else { None };
        let applicable: Vec<(&str, bool)> = tokens
            .iter()
            .filter(|(scope, _, _)| scope.is_none() || (scoped && *scope == protocol))
            .map(|(_, fault, sticky)| (*fault, *sticky))
            .collect();
        let index = {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            let n = seen.entry((key.to_string(), counted_as)).or_insert(0);
            let i = *n;
            *n += 1;
            i
        };
        // A sticky token holds for every connection from its position on.
        let token = applicable
            .iter()
            .take(index + 1)
            .find(|(_, sticky)| *sticky)
            .or_else(|| applicable.get(index));
        token
            .and_then(|(fault, _)| Fault::parse(fault))
            .unwrap_or(Fault::None)
    }
}

/// Counts streamed units against an in-stream fault.
#[derive(Debug)]
pub(crate) struct UnitGate {
    fault: Fault,
    sent: u32,
}

/// What to do instead of (or before) sending the next unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GateAction {
    Send,
    MidStreamError,
    Drop,
    Stall,
}

impl UnitGate {
    pub fn new(fault: &Fault) -> Self {
        Self {
            fault: fault.clone(),
            sent: 0,
        }
    }

    /// Call before sending each unit.
    pub fn before_unit(&mut self) -> GateAction {
        let action = match (self.fault.units_before(), &self.fault) {
            (Some(n), Fault::MidStreamError { .. }) if self.sent >= n => GateAction::MidStreamError,
            (Some(n), Fault::Drop { .. }) if self.sent >= n => GateAction::Drop,
            (Some(n), Fault::Stall { .. }) if self.sent >= n => GateAction::Stall,
            _ => GateAction::Send,
        };
        if action == GateAction::Send {
            self.sent += 1;
        }
        action
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_round_trip_through_the_key_grammar() {
        let faults = [
            Fault::None,
            Fault::Unauthorized,
            Fault::QuotaExceeded,
            Fault::RateLimited { retry_after: None },
            Fault::RateLimited {
                retry_after: Some(0.25),
            },
            Fault::Overloaded,
            Fault::ServerError {
                should_retry: Some(false),
            },
            Fault::MidStreamError { after: 3 },
            Fault::Drop { after: 2 },
            Fault::Stall { after: 0 },
            Fault::SlowFirstByte(Duration::from_millis(150)),
        ];
        let key = fault_key("k", &faults);
        let book = FaultBook::default();
        for f in &faults {
            assert_eq!(&book.next(&key), f);
        }
        assert_eq!(book.next(&key), Fault::None, "list used up: normal service");
    }

    #[test]
    fn scoped_tokens_count_per_protocol_and_sticky_tokens_repeat() {
        let book = FaultBook::default();
        let key = "k~ws=drop:0*~http=500";
        for _ in 0..3 {
            assert_eq!(
                book.next_for(key, Protocol::WebSocket),
                Fault::Drop { after: 0 }
            );
        }
        assert_eq!(
            book.next_for(key, Protocol::Http),
            Fault::ServerError { should_retry: None }
        );
        assert_eq!(book.next_for(key, Protocol::Http), Fault::None);
        assert_eq!(
            book.next_for(key, Protocol::WebSocket),
            Fault::Drop { after: 0 }
        );
    }

    #[test]
    fn unscoped_keys_share_one_count_across_protocols() {
        let book = FaultBook::default();
        let key = "k~429~ok~500*";
        assert!(matches!(
            book.next_for(key, Protocol::WebSocket),
            Fault::RateLimited { .. }
        ));
        assert_eq!(book.next_for(key, Protocol::Http), Fault::None);
        for protocol in [Protocol::Http, Protocol::WebSocket, Protocol::Http] {
            assert_eq!(
                book.next_for(key, protocol),
                Fault::ServerError { should_retry: None }
            );
        }
    }

    #[test]
    fn keys_starting_with_invalid_are_rejected() {
        assert!(!key_is_valid("invalid-key"));
        assert!(!key_is_valid("~429"));
        assert!(key_is_valid("test~401"));
    }
}
