//! A sans-IO Server-Sent Events decoder (WHATWG event-stream rules): bytes in, events out.
//! Handles `\n`, `\r\n` and `\r` line ends, comments, multi-line `data`, and chunk
//! boundaries anywhere (even inside a UTF-8 character).
//!
//! Hand-written on purpose: the SSE crates are async stream adapters over a particular HTTP
//! client's body type; this one is sans-IO (bytes in, events out), so the Anthropic client feeds
//! it from reqwest, the fuzz and property tests feed it arbitrary bytes, and its time-to-first-
//! token measurements see each event the moment its last byte arrives. It is small and its rules
//! are the WHATWG spec's, tested line by line.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// The decoder refused to buffer more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("SSE line longer than {0} bytes")]
pub struct SseLineTooLong(pub usize);

/// Lines longer than this are refused (a real event is a few KiB at most).
pub const MAX_SSE_LINE: usize = 1024 * 1024;

/// Incremental SSE decoder.
#[derive(Debug, Default)]
pub struct SseDecoder {
    buf: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
}

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; returns the events completed by them.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, SseLineTooLong> {
        self.buf.extend_from_slice(bytes);
        let mut events = Vec::new();
        let mut start = 0;
        let mut i = 0;
        while i < self.buf.len() {
            let b = self.buf[i];
            if b == b'\n' || b == b'\r' {
                if b == b'\r' {
                    // A `\r` at the very end may be the first half of `\r\n`: wait.
                    if i + 1 == self.buf.len() {
                        break;
                    }
                }
                let line = String::from_utf8_lossy(&self.buf[start..i]).into_owned();
                if let Some(e) = self.line(&line) {
                    events.push(e);
                }
                i += if b == b'\r' && self.buf.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                start = i;
            } else {
                i += 1;
            }
        }
        self.buf.drain(..start);
        if self.buf.len() > MAX_SSE_LINE {
            self.buf.clear();
            return Err(SseLineTooLong(MAX_SSE_LINE));
        }
        Ok(events)
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            let data = self.data.take();
            let event = self.event.take();
            return data.map(|data| SseEvent { event, data });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            _ => {} // id, retry and unknown fields do not matter here
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_at_any_byte_boundary_decode_the_same() {
        let stream =
            "event: a\r\ndata: {\"x\":\"é\"}\r\n\r\n: comment\nevent: b\ndata: 1\ndata: 2\n\n";
        let whole = SseDecoder::new()
            .push(stream.as_bytes())
            .expect("small input");
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[1].data, "1\n2");
        for cut in 0..stream.len() {
            let mut d = SseDecoder::new();
            let mut got = d.push(&stream.as_bytes()[..cut]).expect("small input");
            got.extend(d.push(&stream.as_bytes()[cut..]).expect("small input"));
            assert_eq!(got, whole, "cut at {cut}");
        }
    }

    #[test]
    fn a_blank_line_without_data_dispatches_nothing() {
        let got = SseDecoder::new()
            .push(b"event: ping\n\n")
            .expect("small input");
        assert!(got.is_empty());
    }
}
