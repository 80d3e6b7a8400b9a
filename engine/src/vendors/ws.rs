//! WebSocket connection set-up shared by the Deepgram and ElevenLabs clients.
//!
//! The upgrade request is written here rather than by tungstenite's client handshake, which
//! logs the whole request (API key included) at TRACE level. After the 101 the socket is
//! handed to tokio-tungstenite as an already-upgraded client stream.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::http::{HeaderMap, HeaderName, HeaderValue, Uri};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::error::{ErrorCategory, Vendor, VendorError};

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Largest upgrade-response head accepted.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;
/// Largest error body read from a refused upgrade.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Why a WebSocket handshake failed.
#[derive(Debug)]
pub(crate) enum ConnectFailure {
    /// The server answered the upgrade with an HTTP error.
    Http {
        status: u16,
        headers: HeaderMap,
        body: Vec<u8>,
    },
    Other(VendorError),
}

fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
            .map_err(|e| e.to_string())
        })
        .clone()
}

/// Opens `url` (`ws://` or `wss://`) with extra request headers within `timeout`.
pub(crate) async fn connect(
    vendor: Vendor,
    url: &str,
    headers: &[(&'static str, &str)],
    timeout: Duration,
) -> Result<(Ws, HeaderMap), ConnectFailure> {
    match tokio::time::timeout(timeout, connect_inner(vendor, url, headers)).await {
        Ok(result) => result,
        Err(_) => Err(ConnectFailure::Other(VendorError::new(
            vendor,
            ErrorCategory::Timeout,
            "WebSocket handshake timed out",
        ))),
    }
}

async fn connect_inner(
    vendor: Vendor,
    url: &str,
    headers: &[(&'static str, &str)],
) -> Result<(Ws, HeaderMap), ConnectFailure> {
    let other = |c: ErrorCategory, m: String| ConnectFailure::Other(VendorError::new(vendor, c, m));
    let uri: Uri = url
        .parse()
        .map_err(|e| other(ErrorCategory::BadRequest, format!("bad URL: {e}")))?;
    let secure = match uri.scheme_str() {
        Some("wss") => true,
        Some("ws") => false,
        _ => {
            return Err(other(
                ErrorCategory::BadRequest,
                "the URL must be ws:// or wss://".into(),
            ));
        }
    };
    let host = uri
        .host()
        .ok_or_else(|| other(ErrorCategory::BadRequest, "the URL has no host".into()))?;
    let bare_host = host.trim_start_matches('[').trim_end_matches(']');
    let default_port = if secure { 443 } else { 80 };
    let port = uri.port_u16().unwrap_or(default_port);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());

    let mut request = format!("GET {path} HTTP/1.1\r\n");
    if port == default_port {
        request.push_str(&format!("Host: {host}\r\n"));
    } else {
        request.push_str(&format!("Host: {host}:{port}\r\n"));
    }
    let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 16]>());
    request.push_str(&format!(
        "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n"
    ));
    for (name, value) in headers {
        if HeaderValue::from_str(value).is_err() || value.contains(['\r', '\n']) {
            return Err(other(
                ErrorCategory::Auth,
                format!("the {name} header holds characters not allowed in a header"),
            ));
        }
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");

    let tcp = TcpStream::connect((bare_host, port))
        .await
        .map_err(|e| other(ErrorCategory::Network, format!("connect failed: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let mut stream = if secure {
        let config =
            tls_config().map_err(|e| other(ErrorCategory::Protocol, format!("TLS set-up: {e}")))?;
        let name = rustls::pki_types::ServerName::try_from(bare_host.to_string()).map_err(|e| {
            other(
                ErrorCategory::BadRequest,
                format!("bad TLS server name: {e}"),
            )
        })?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| other(ErrorCategory::Network, format!("TLS handshake failed: {e}")))?;
        MaybeTlsStream::Rustls(tls)
    } else {
        MaybeTlsStream::Plain(tcp)
    };
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| other(ErrorCategory::Network, format!("send failed: {e}")))?;
    zeroize::Zeroize::zeroize(&mut request); // it holds the key

    let (status, response_headers, leftover) = read_response_head(&mut stream)
        .await
        .map_err(|m| other(ErrorCategory::Network, m))?;
    if status != 101 {
        let body = read_error_body(&mut stream, &response_headers, leftover).await;
        return Err(ConnectFailure::Http {
            status,
            headers: response_headers,
            body,
        });
    }
    let accept = response_headers
        .get("sec-websocket-accept")
        .and_then(|v| v.to_str().ok());
    if accept != Some(derive_accept_key(key.as_bytes()).as_str()) {
        return Err(other(
            ErrorCategory::Protocol,
            "the server's Sec-WebSocket-Accept does not match".into(),
        ));
    }
    let ws =
        WebSocketStream::from_partially_read(stream, leftover, Role::Client, Some(ws_config()))
            .await;
    Ok((ws, response_headers))
}

/// The vendor sockets' settings: tungstenite's defaults but an 8 KiB read buffer. The default
/// 128 KiB buffer is zeroed on every read (`BytesMut::resize` in its frame reader), which was
/// 2.6 % of the server's CPU under load for the STT's small JSON messages, and it is resident
/// memory per socket; larger messages (the TTS's audio) are simply read in more pieces.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(8 * 1024)
}

/// Most headers accepted in an upgrade response (vendors send about a dozen).
const MAX_RESPONSE_HEADERS: usize = 64;

/// Reads the status line and headers (parsed by `httparse`); returns bytes read past the head.
async fn read_response_head<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<(u16, HeaderMap, Vec<u8>), String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        if let Some(parsed) = parse_response_head(&buf)? {
            return Ok(parsed);
        }
        if buf.len() > MAX_RESPONSE_HEAD {
            return Err("upgrade response head too large".into());
        }
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("reading the upgrade response: {e}"))?;
        if n == 0 {
            return Err("the server closed during the upgrade".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The status, headers and the bytes past the head, once `buf` holds a whole response head;
/// `None` while it is incomplete. Headers whose name or value `http` refuses are skipped.
fn parse_response_head(buf: &[u8]) -> Result<Option<(u16, HeaderMap, Vec<u8>)>, String> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
    let mut response = httparse::Response::new(&mut slots);
    let end = match response.parse(buf) {
        Ok(httparse::Status::Complete(end)) => end,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("malformed upgrade response: {e}")),
    };
    let status = response
        .code
        .ok_or("malformed upgrade response status line")?;
    let mut headers = HeaderMap::new();
    for header in response.headers.iter() {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(header.name.as_bytes()),
            HeaderValue::from_bytes(header.value),
        ) {
            headers.append(n, v);
        }
    }
    Ok(Some((status, headers, buf[end..].to_vec())))
}

/// Reads a refused upgrade's body (by `content-length`, else to EOF), bounded in size and time.
async fn read_error_body<S: AsyncRead + Unpin>(
    stream: &mut S,
    headers: &HeaderMap,
    mut body: Vec<u8>,
) -> Vec<u8> {
    let length = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .map(|n| n.min(MAX_ERROR_BODY));
    let mut chunk = [0u8; 2048];
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while length.is_none_or(|n| body.len() < n) && body.len() < MAX_ERROR_BODY {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => body.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    if let Some(n) = length {
        body.truncate(n);
    }
    body
}

pub(crate) fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_whole_upgrade_head_is_parsed_and_the_bytes_after_it_kept() {
        let head = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: abc=\r\nX-Odd: caf\xc3\xa9\r\n\r\n\x81\x02hi";
        let (status, headers, rest) = parse_response_head(head).expect("valid").expect("complete");
        assert_eq!(status, 101);
        assert_eq!(headers["sec-websocket-accept"], "abc=");
        assert_eq!(headers["upgrade"], "websocket");
        assert_eq!(rest, b"\x81\x02hi");
    }

    #[test]
    fn a_partial_head_waits_and_garbage_is_an_error() {
        assert_eq!(
            parse_response_head(b"HTTP/1.1 401 Unauthorized\r\nContent-Le").expect("valid"),
            None
        );
        assert!(parse_response_head(b"\x16\x03\x01 not http\r\n\r\n").is_err());
    }

    proptest! {
        #[test]
        fn any_bytes_parse_or_fail_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_response_head(&bytes);
            let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
            head.extend_from_slice(&bytes);
            let _ = parse_response_head(&head);
        }
    }
}
