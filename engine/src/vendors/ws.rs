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
use tokio_tungstenite::tungstenite::protocol::Role;
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
    let ws = WebSocketStream::from_partially_read(stream, leftover, Role::Client, None).await;
    Ok((ws, response_headers))
}

/// Reads the status line and headers; returns bytes read past the head.
async fn read_response_head<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<(u16, HeaderMap, Vec<u8>), String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
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
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or("malformed upgrade response status line")?;
    let mut headers = HeaderMap::new();
    for line in lines {
        if let Some((name, value)) = line.split_once(':')
            && let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.trim().as_bytes()),
                HeaderValue::from_str(value.trim()),
            )
        {
            headers.append(n, v);
        }
    }
    Ok((status, headers, buf[end + 4..].to_vec()))
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
