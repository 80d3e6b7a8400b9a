//! A deliberately small HTTP/1.1 server: enough to read one request head (and a
//! `content-length` body), answer it plainly or with a chunked body, or upgrade it to a
//! WebSocket. Written on plain tokio so that the fakes control every byte on the wire, which
//! is what fault injection (slow first byte, drop mid-body, stall) needs.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

/// Largest request head we accept; real clients send well under 8 KiB.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Longest wait for each read of a request head (slow or silent peers are dropped).
const HEAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Largest request body we accept (Anthropic's real limit is 32 MB; tests send kilobytes).
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// One parsed HTTP request.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Header names are lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Bytes read past the head that belong to the next protocol (WebSocket frames).
    pub leftover: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn is_websocket_upgrade(&self) -> bool {
        self.header("upgrade")
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
            && self.header("sec-websocket-key").is_some()
    }
}

/// An error answer before any reply: status, the vendor's error code or type, its message and
/// extra headers (each fake writes it in its own vendor's body shape).
pub(crate) struct Refusal {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub headers: Vec<(&'static str, String)>,
}

impl Refusal {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// Why a request could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The socket failed; there is no one to answer.
    Io,
    /// The peer sent something that is not HTTP/1.1 we understand; answer 400.
    Malformed(&'static str),
    /// The peer closed before sending a request (keep-alive probes, port scans).
    Closed,
}

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> Self {
        ReadError::Io
    }
}

/// Most headers accepted in a request head (real clients send about a dozen).
const MAX_HEADERS: usize = 64;

/// Reads one request head (parsed by `httparse`) and its `content-length` body.
pub(crate) async fn read_request(stream: &mut TcpStream) -> Result<Request, ReadError> {
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    let (head, head_end) = loop {
        if let Some(parsed) = parse_head(&buf)? {
            break parsed;
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Err(ReadError::Malformed("request head too large"));
        }
        let n = match tokio::time::timeout(HEAD_TIMEOUT, stream.read(&mut chunk)).await {
            Ok(read) => read?,
            Err(_) => return Err(ReadError::Malformed("request head timed out")),
        };
        if n == 0 {
            return Err(ReadError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let mut req = Request {
        leftover: buf[head_end..].to_vec(),
        ..head
    };
    if req
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        return Err(ReadError::Malformed(
            "chunked request bodies are not supported",
        ));
    }
    let length: usize = match req.header("content-length") {
        Some(v) => v
            .parse()
            .map_err(|_| ReadError::Malformed("bad content-length"))?,
        None => 0,
    };
    if length > MAX_BODY_BYTES {
        return Err(ReadError::Malformed("request body too large"));
    }
    if length > 0 {
        let mut body = std::mem::take(&mut req.leftover);
        while body.len() < length {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(ReadError::Closed);
            }
            body.extend_from_slice(&chunk[..n]);
        }
        req.leftover = body.split_off(length);
        req.body = body;
    }
    Ok(req)
}

/// The request head in `buf` (without body) and where it ends, once it is complete; `None`
/// while it is not. Anything that is not an HTTP/1.x request (a TLS ClientHello, binary) is
/// refused at its first bytes rather than waited for.
pub(crate) fn parse_head(buf: &[u8]) -> Result<Option<(Request, usize)>, ReadError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut slots);
    let end = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(end)) => end,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ReadError::Malformed("too many request headers"));
        }
        Err(httparse::Error::Version) => {
            return Err(ReadError::Malformed("unsupported HTTP version"));
        }
        Err(_) => return Err(ReadError::Malformed("not an HTTP/1.1 request")),
    };
    let (Some(method), Some(target)) = (parsed.method, parsed.path) else {
        return Err(ReadError::Malformed("empty request"));
    };
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), parse_query(q)),
        None => (target.to_string(), Vec::new()),
    };
    let mut headers = Vec::with_capacity(parsed.headers.len());
    for header in parsed.headers.iter() {
        let value = std::str::from_utf8(header.value)
            .map_err(|_| ReadError::Malformed("request head is not UTF-8"))?;
        headers.push((header.name.to_ascii_lowercase(), value.trim().to_string()));
    }
    let request = Request {
        method: method.to_string(),
        path,
        query,
        headers,
        body: Vec::new(),
        leftover: Vec::new(),
    };
    Ok(Some((request, end)))
}

/// Splits and percent-decodes a query string (`application/x-www-form-urlencoded`: `+` is a
/// space; a malformed escape is kept as it is).
pub(crate) fn parse_query(q: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        529 => "Overloaded",
        _ => "Status",
    }
}

fn head(status: u16, headers: &[(&str, String)]) -> String {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status));
    for (name, value) in headers {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    out
}

/// Writes a complete response and leaves the connection to be closed by the caller.
pub(crate) async fn write_response(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
) -> io::Result<()> {
    let mut out = head(status, headers);
    out.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    stream.write_all(out.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await
}

/// A response whose body is sent with chunked transfer encoding, one flush per chunk.
pub(crate) struct ChunkedBody<'a> {
    stream: &'a mut TcpStream,
}

impl<'a> ChunkedBody<'a> {
    pub async fn start(
        stream: &'a mut TcpStream,
        status: u16,
        headers: &[(&str, String)],
    ) -> io::Result<Self> {
        let mut out = head(status, headers);
        out.push_str("transfer-encoding: chunked\r\nconnection: close\r\n\r\n");
        stream.write_all(out.as_bytes()).await?;
        stream.flush().await?;
        Ok(Self { stream })
    }

    pub async fn chunk(&mut self, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        self.stream
            .write_all(format!("{:x}\r\n", data.len()).as_bytes())
            .await?;
        self.stream.write_all(data).await?;
        self.stream.write_all(b"\r\n").await?;
        self.stream.flush().await
    }

    /// The underlying socket, e.g. to wait for the peer to close while stalling.
    pub fn stream_mut(&mut self) -> &mut TcpStream {
        self.stream
    }

    pub async fn finish(self) -> io::Result<()> {
        self.stream.write_all(b"0\r\n\r\n").await?;
        self.stream.flush().await
    }
}

/// Completes a WebSocket upgrade (RFC 6455 101 response) with extra response headers.
pub(crate) async fn accept_websocket(
    mut stream: TcpStream,
    req: &Request,
    extra_headers: &[(&str, String)],
) -> io::Result<WebSocketStream<TcpStream>> {
    let key = req
        .header("sec-websocket-key")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no sec-websocket-key"))?;
    let mut headers: Vec<(&str, String)> = vec![
        ("upgrade", "websocket".to_string()),
        ("connection", "Upgrade".to_string()),
        ("sec-websocket-accept", derive_accept_key(key.as_bytes())),
    ];
    headers.extend(extra_headers.iter().cloned());
    let mut out = head(101, &headers);
    out.push_str("\r\n");
    stream.write_all(out.as_bytes()).await?;
    stream.flush().await?;
    Ok(WebSocketStream::from_partially_read(
        stream,
        req.leftover.clone(),
        Role::Server,
        // A small read buffer, as the engine's vendor clients use: tungstenite zeroes its
        // whole read buffer (128 KiB by default) on every read.
        Some(WebSocketConfig::default().read_buffer_size(8 * 1024)),
    )
    .await)
}

/// A running listener: accepts connections and runs one task per connection until shut down.
pub(crate) struct Listener {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Listener {
    /// Binds `addr` (port 0 picks a free port) and serves each connection with `serve`.
    pub async fn bind<F, Fut>(addr: SocketAddr, serve: F) -> io::Result<Self>
    where
        F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (tx, mut rx) = oneshot::channel::<()>();
        let serve = Arc::new(serve);
        let task = tokio::spawn(async move {
            // Dropping the set aborts every connection task, so shutdown is immediate.
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    _ = &mut rx => break,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => {
                            let _ = stream.set_nodelay(true);
                            let serve = Arc::clone(&serve);
                            connections.spawn(async move { serve(stream).await });
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "fake vendor accept failed");
                            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                        }
                    },
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        Ok(Self {
            addr,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// The start-up every fake shares: binds `addr` and serves each connection with
    /// `handle(inner, stream)` on the fake's shared state.
    pub async fn serve<I, F, Fut>(addr: SocketAddr, inner: &Arc<I>, handle: F) -> io::Result<Self>
    where
        I: Send + Sync + 'static,
        F: Fn(Arc<I>, TcpStream) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let inner = Arc::clone(inner);
        Self::bind(addr, move |stream| handle(Arc::clone(&inner), stream)).await
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_are_percent_decoded() {
        let q = parse_query("model=nova-3&keyterm=a%20b&x=1+2&flag");
        assert_eq!(q[1], ("keyterm".to_string(), "a b".to_string()));
        assert_eq!(q[2], ("x".to_string(), "1 2".to_string()));
        assert_eq!(q[3], ("flag".to_string(), String::new()));
    }

    #[test]
    fn truncated_percent_escapes_are_kept_literally() {
        let q = parse_query("a=a%2&b=%&c=%zz");
        let values: Vec<&str> = q.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(values, ["a%2", "%", "%zz"]);
    }

    #[test]
    fn a_request_head_is_parsed_with_lower_cased_names_and_its_end() {
        let raw = b"GET /v1/listen?model=nova-3&x=1+2 HTTP/1.1\r\nHost: h\r\nAuthorization: Token k\r\n\r\nrest";
        let (req, end) = parse_head(raw).expect("valid").expect("complete");
        assert_eq!(
            (req.method.as_str(), req.path.as_str()),
            ("GET", "/v1/listen")
        );
        assert_eq!(req.query("x"), Some("1 2"));
        assert_eq!(req.header("authorization"), Some("Token k"));
        assert_eq!(req.headers[0].0, "host");
        assert_eq!(&raw[end..], b"rest");
    }

    #[test]
    fn partial_binary_and_foreign_heads_are_told_apart() {
        assert!(matches!(
            parse_head(b"POST /v1/messages HTTP/1.1\r\nHo"),
            Ok(None)
        ));
        assert!(matches!(
            parse_head(b"\x16\x03\x01\x02\x00"),
            Err(ReadError::Malformed("not an HTTP/1.1 request"))
        ));
        assert!(matches!(
            parse_head(b"GET / HTTP/2.0\r\n\r\n"),
            Err(ReadError::Malformed(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_or_are_refused_without_panicking(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)
        ) {
            let _ = parse_head(&bytes);
            let mut head = b"GET /?".to_vec();
            head.extend_from_slice(&bytes);
            let _ = parse_head(&head);
            let _ = parse_query(&String::from_utf8_lossy(&bytes));
        }
    }
}
