//! JSON bodies for the answers actix-http writes on its own.
//!
//! actix-http's HTTP/1 dispatcher answers a request it cannot parse (400), a head over its size
//! limit (431) and a head that does not arrive in time (408) itself, with an empty body, and
//! then closes the connection; no middleware or error handler sees those answers, and actix has
//! no hook for them. Every other error of this API has a JSON body, so clients and the OpenAPI
//! document can rely on one shape.
//!
//! [`JsonProtocolErrors`] wraps each connection's stream (inside TLS) and, when the dispatcher
//! starts writing one of those three answers with `content-length: 0`, writes the same head with
//! the JSON body instead. It is hand-written because nothing else can reach these answers; it
//! only looks at the start of a write (where the dispatcher puts the head of an answer that
//! follows no other bytes in its buffer), and passes everything else through untouched. An
//! error answer queued behind pipelined responses in the same buffer keeps its empty body.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::ErrorBody;

/// The answers the dispatcher writes itself: status, error code, message.
const PROTOCOL_ERRORS: [(&[u8], &str, &str); 3] = [
    (
        b"400",
        "bad_request",
        "the request could not be parsed as HTTP",
    ),
    (
        b"408",
        "request_timeout",
        "the request head did not arrive in time",
    ),
    (
        b"431",
        "request_header_fields_too_large",
        "the request head is too large",
    ),
];

/// The JSON body of an error answer, the one [`crate::error::error_json`] writes.
fn body(code: &str, message: &str) -> Vec<u8> {
    serde_json::to_vec(&ErrorBody::new(code, message)).unwrap_or_default()
}

/// If `buf` starts with the whole head of a dispatcher-written 400/408/431 with an empty body,
/// the number of bytes that head spans and the answer to write instead.
pub fn rewrite(buf: &[u8]) -> Option<(usize, Vec<u8>)> {
    // `HTTP/1.1 431 Request Header Fields Too Large\r\n…\r\n\r\n`
    let version = buf.get(..9)?;
    if !(version == b"HTTP/1.1 " || version == b"HTTP/1.0 ") {
        return None;
    }
    let status = buf.get(9..12)?;
    let (_, code, message) = PROTOCOL_ERRORS.iter().find(|(s, ..)| *s == status)?;
    let head_len = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    // Every line of the head, each with its CRLF (the blank line's excluded).
    let mut lines = buf[..head_len - 2].split_inclusive(|&b| b == b'\n');
    let status_line = lines.next()?.strip_suffix(b"\r\n")?;
    let mut empty_body = false;
    let mut kept: Vec<&[u8]> = Vec::new();
    for line in lines {
        let line = line.strip_suffix(b"\r\n")?;
        let name_end = line.iter().position(|&b| b == b':')?;
        let (name, value) = (&line[..name_end], line[name_end + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"content-length") {
            if value != b"0" {
                return None;
            }
            empty_body = true;
        } else if name.eq_ignore_ascii_case(b"content-type")
            || name.eq_ignore_ascii_case(b"transfer-encoding")
        {
            // Not one of the dispatcher's bare answers.
            return None;
        } else {
            kept.push(line);
        }
    }
    if !empty_body {
        return None;
    }
    let body = body(code, message);
    let mut answer = Vec::with_capacity(head_len + body.len() + 64);
    answer.extend_from_slice(status_line);
    answer.extend_from_slice(b"\r\n");
    for line in kept {
        answer.extend_from_slice(line);
        answer.extend_from_slice(b"\r\n");
    }
    answer.extend_from_slice(b"content-type: application/json\r\n");
    answer.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    answer.extend_from_slice(&body);
    Some((head_len, answer))
}

/// A connection's stream that gives the dispatcher's own error answers a JSON body (module
/// docs).
#[derive(Debug)]
pub struct JsonProtocolErrors<T> {
    io: T,
    /// A rewritten answer still to be written, and how much of it is written.
    pending: Vec<u8>,
    written: usize,
}

impl<T> JsonProtocolErrors<T> {
    pub fn new(io: T) -> Self {
        Self {
            io,
            pending: Vec::new(),
            written: 0,
        }
    }

    pub fn get_ref(&self) -> &T {
        &self.io
    }
}

impl<T: AsyncWrite + Unpin> JsonProtocolErrors<T> {
    /// Writes what is left of a rewritten answer.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for JsonProtocolErrors<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for JsonProtocolErrors<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_pending(cx))?;
        if let Some((head_len, answer)) = rewrite(buf) {
            this.pending = answer;
            this.written = 0;
            // The head is taken; the answer goes out now or on the next write, flush or
            // shutdown (each writes what is pending first).
            if let Poll::Ready(Err(error)) = this.poll_pending(cx) {
                return Poll::Ready(Err(error));
            }
            return Poll::Ready(Ok(head_len));
        }
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tokio::io::AsyncWriteExt;

    const BARE_431: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\ndate: Sun, 06 Dec 2026 08:00:00 GMT\r\n\r\n";

    fn split(answer: &[u8]) -> (String, serde_json::Value) {
        let at = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a head")
            + 4;
        let head = String::from_utf8(answer[..at].to_vec()).expect("ASCII head");
        let body = serde_json::from_slice(&answer[at..]).expect("a JSON body");
        (head, body)
    }

    #[test]
    fn the_dispatchers_bare_answers_get_a_json_body_and_keep_their_head() {
        let (taken, answer) = rewrite(BARE_431).expect("rewritten");
        assert_eq!(taken, BARE_431.len());
        let (head, body) = split(&answer);
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
        assert!(head.contains("\r\ndate: Sun, 06 Dec 2026 08:00:00 GMT\r\n"));
        assert!(head.contains("\r\ncontent-type: application/json\r\n"));
        let length = format!("\r\ncontent-length: {}\r\n", answer.len() - head.len());
        assert!(head.contains(&length), "{head}");
        assert!(!head.contains("content-length: 0"));
        assert_eq!(body["error"]["code"], "request_header_fields_too_large");
        for (status, code) in [
            ("400 Bad Request", "bad_request"),
            ("408 Request Timeout", "request_timeout"),
        ] {
            let bare = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
            let (_, answer) = rewrite(bare.as_bytes()).expect(status);
            assert_eq!(split(&answer).1["error"]["code"], code);
        }
    }

    #[test]
    fn other_answers_pass_untouched() {
        for other in [
            // Our own errors already have a body.
            &b"HTTP/1.1 400 Bad Request\r\ncontent-length: 52\r\ncontent-type: application/json\r\n\r\n{}"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ntransfer-encoding: chunked\r\n\r\n",
            // A head still incomplete in this write, and bytes in the middle of a body.
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
            b"{\"text\":\"HTTP/1.1 400 Bad Request\"}",
            b"",
        ] {
            assert!(rewrite(other).is_none(), "{:?}", String::from_utf8_lossy(other));
        }
    }

    proptest! {
        /// Whatever the dispatcher (or a response body) writes, the check never panics, and
        /// what it rewrites is always a complete head followed by a JSON body.
        #[test]
        fn rewriting_never_panics_and_is_always_well_formed(
            prefix in prop::sample::select(vec![&b"HTTP/1.1 400 "[..], b"HTTP/1.0 408 ", b"HTTP/1.1 431 ", b"HTTP/1.1 ", b""]),
            rest in prop::collection::vec(any::<u8>(), 0..200),
        ) {
            let mut buf = prefix.to_vec();
            buf.extend_from_slice(&rest);
            if let Some((taken, answer)) = rewrite(&buf) {
                prop_assert!(taken <= buf.len());
                prop_assert!(buf[..taken].ends_with(b"\r\n\r\n"));
                let (_, body) = split(&answer);
                prop_assert!(body["error"]["code"].is_string());
            }
        }
    }

    #[tokio::test]
    async fn a_stream_that_takes_one_byte_at_a_time_still_gets_the_whole_answer() {
        // A writer that accepts a single byte per call and is sometimes not ready.
        struct Trickle {
            out: Vec<u8>,
            calls: usize,
        }
        impl AsyncWrite for Trickle {
            fn poll_write(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.calls += 1;
                if self.calls.is_multiple_of(3) {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                self.out.push(buf[0]);
                Poll::Ready(Ok(1))
            }
            fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }
            fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }
        }
        let mut stream = JsonProtocolErrors::new(Trickle {
            out: Vec::new(),
            calls: 0,
        });
        stream.write_all(BARE_431).await.expect("write");
        stream.shutdown().await.expect("shutdown");
        let (_, answer) = rewrite(BARE_431).expect("rewritten");
        assert_eq!(stream.get_ref().out, answer);
    }
}
