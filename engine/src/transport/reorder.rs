//! `ReorderBuffer`: puts inbound RTP packets back in sequence-number order over a small window.
//!
//! Sans-IO: `push(seq, ts, payload, now)` and `flush_due(now)` return what is ready, in order,
//! with explicit [`Released::Lost`] markers where packets are given up on. A packet is held back
//! only while an earlier one is missing, and then only until either `window` packets are waiting
//! behind the hole or the oldest waiting packet has been held `max_wait`. Late packets (whose
//! slot has already been released) and duplicates are discarded and counted.
//!
//! 16-bit sequence numbers are extended to 64 bits relative to the highest one seen, so wrap
//! around at 65535 → 0 is invisible to the caller.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What the buffer lets go of, in sequence order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Released<P> {
    /// The next packet in order.
    Packet {
        /// Extended (wrap-free) sequence number.
        seq: u64,
        /// RTP timestamp.
        ts: u32,
        payload: P,
    },
    /// `count` packets before the next released one will never be played.
    Lost { count: u64 },
}

/// Why a pushed packet did not enter the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// Its slot was already released (it came too late), or it is older than anything tracked.
    Late,
    /// The same sequence number is already waiting.
    Duplicate,
}

#[derive(Debug)]
struct Held<P> {
    ts: u32,
    payload: P,
    arrived: Instant,
}

/// See the module docs.
#[derive(Debug)]
pub struct ReorderBuffer<P> {
    window: usize,
    max_wait: Duration,
    /// Extended sequence number of the next packet to release; `None` before the first packet.
    next: Option<u64>,
    /// Highest extended sequence number seen (the reference for extending 16-bit numbers).
    highest: Option<u64>,
    held: BTreeMap<u64, Held<P>>,
}

/// Sequence numbers this far behind the next expected one are treated as a restarted stream
/// rather than as late packets (a sender that re-randomized its sequence, say).
const RESTART_DISTANCE: u64 = 1_000;

impl<P> ReorderBuffer<P> {
    /// A buffer holding at most `window` packets behind a hole, each for at most `max_wait`.
    pub fn new(window: usize, max_wait: Duration) -> Self {
        Self {
            window: window.max(1),
            max_wait,
            next: None,
            highest: None,
            held: BTreeMap::new(),
        }
    }

    /// Number of packets waiting behind a hole.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// When `flush_due` should next be called, if anything is held.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.held.values().map(|h| h.arrived + self.max_wait).min()
    }

    /// Extends a 16-bit sequence number to the 64-bit value closest to the highest seen.
    fn extend(&self, seq: u16) -> u64 {
        let Some(reference) = self.highest else {
            // Start high enough that stepping back never underflows.
            return (1u64 << 32) + u64::from(seq);
        };
        let cycle = reference & !0xFFFF;
        let candidates = [
            cycle.wrapping_sub(0x1_0000) | u64::from(seq),
            cycle | u64::from(seq),
            (cycle + 0x1_0000) | u64::from(seq),
        ];
        candidates
            .into_iter()
            .min_by_key(|c| c.abs_diff(reference))
            .unwrap_or(cycle | u64::from(seq))
    }

    /// Takes one packet; appends whatever became releasable to `out` (in order). Returns whether
    /// the packet arrived behind a higher sequence number (was reordered), or why it was rejected.
    pub fn push(
        &mut self,
        seq: u16,
        ts: u32,
        payload: P,
        now: Instant,
        out: &mut Vec<Released<P>>,
    ) -> Result<bool, Rejected> {
        let ext = self.extend(seq);
        let next = *self.next.get_or_insert(ext);
        if ext < next {
            if next - ext > RESTART_DISTANCE {
                // A restarted stream: give up on anything held, start over here.
                self.release_all(out);
                self.next = Some(ext);
                self.highest = Some(ext);
            } else {
                return Err(Rejected::Late);
            }
        } else if ext - next > RESTART_DISTANCE {
            // A jump far ahead is a restart too; do not wait for a thousand missing packets.
            self.release_all(out);
            self.next = Some(ext);
        }
        if self.held.contains_key(&ext) {
            return Err(Rejected::Duplicate);
        }
        let reordered = self.highest.is_some_and(|h| ext < h);
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        self.held.insert(
            ext,
            Held {
                ts,
                payload,
                arrived: now,
            },
        );
        self.release_in_order(out);
        while self.held.len() > self.window {
            self.skip_hole(out);
        }
        Ok(reordered)
    }

    /// Releases packets held longer than `max_wait` (declaring the holes before them lost).
    pub fn flush_due(&mut self, now: Instant, out: &mut Vec<Released<P>>) {
        while self
            .held
            .values()
            .any(|h| now.saturating_duration_since(h.arrived) >= self.max_wait)
        {
            self.skip_hole(out);
        }
    }

    /// Releases everything held, declaring holes lost (end of stream).
    pub fn release_all(&mut self, out: &mut Vec<Released<P>>) {
        while !self.held.is_empty() {
            self.skip_hole(out);
        }
    }

    /// Releases the run of packets starting exactly at `next`.
    fn release_in_order(&mut self, out: &mut Vec<Released<P>>) {
        while let Some(next) = self.next {
            let Some(held) = self.held.remove(&next) else {
                break;
            };
            out.push(Released::Packet {
                seq: next,
                ts: held.ts,
                payload: held.payload,
            });
            self.next = Some(next + 1);
        }
    }

    /// Gives up on the hole before the earliest held packet, then releases in order from there.
    fn skip_hole(&mut self, out: &mut Vec<Released<P>>) {
        let Some(&first) = self.held.keys().next() else {
            return;
        };
        let next = self.next.unwrap_or(first);
        if first > next {
            out.push(Released::Lost {
                count: first - next,
            });
        }
        self.next = Some(first);
        self.release_in_order(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs(out: &[Released<u16>]) -> Vec<String> {
        out.iter()
            .map(|r| match r {
                Released::Packet { payload, .. } => format!("{payload}"),
                Released::Lost { count } => format!("lost{count}"),
            })
            .collect()
    }

    fn push_all(buf: &mut ReorderBuffer<u16>, order: &[u16], now: Instant) -> Vec<String> {
        let mut out = Vec::new();
        for &s in order {
            let _ = buf.push(s, u32::from(s) * 960, s, now, &mut out);
        }
        seqs(&out)
    }

    #[test]
    fn in_order_packets_pass_straight_through() {
        let mut b = ReorderBuffer::new(3, Duration::from_millis(60));
        let now = Instant::now();
        assert_eq!(push_all(&mut b, &[10, 11, 12], now), ["10", "11", "12"]);
        assert_eq!(b.held(), 0);
    }

    #[test]
    fn a_swapped_pair_is_put_back_in_order() {
        let mut b = ReorderBuffer::new(3, Duration::from_millis(60));
        let now = Instant::now();
        assert_eq!(
            push_all(&mut b, &[10, 12, 11, 13], now),
            ["10", "11", "12", "13"]
        );
    }

    #[test]
    fn a_hole_is_declared_lost_once_the_window_fills() {
        let mut b = ReorderBuffer::new(2, Duration::from_secs(10));
        let now = Instant::now();
        assert_eq!(
            push_all(&mut b, &[1, 3, 4, 5], now),
            ["1", "lost1", "3", "4", "5"]
        );
    }

    #[test]
    fn a_hole_is_declared_lost_after_max_wait() {
        let mut b = ReorderBuffer::new(5, Duration::from_millis(60));
        let t0 = Instant::now();
        let mut out = Vec::new();
        assert_eq!(b.push(1, 0, 1, t0, &mut out), Ok(false));
        assert_eq!(b.push(3, 0, 3, t0, &mut out), Ok(false));
        assert_eq!(seqs(&out), ["1"]);
        assert_eq!(b.next_deadline(), Some(t0 + Duration::from_millis(60)));
        b.flush_due(t0 + Duration::from_millis(59), &mut out);
        assert_eq!(seqs(&out), ["1"]);
        b.flush_due(t0 + Duration::from_millis(60), &mut out);
        assert_eq!(seqs(&out), ["1", "lost1", "3"]);
    }

    #[test]
    fn late_and_duplicate_packets_are_rejected() {
        let mut b = ReorderBuffer::new(3, Duration::from_millis(60));
        let now = Instant::now();
        let mut out = Vec::new();
        b.push(5, 0, 5, now, &mut out).unwrap();
        b.push(7, 0, 7, now, &mut out).unwrap();
        assert_eq!(b.push(7, 0, 7, now, &mut out), Err(Rejected::Duplicate));
        assert_eq!(b.push(6, 0, 6, now, &mut out), Ok(true));
        assert_eq!(b.push(4, 0, 4, now, &mut out), Err(Rejected::Late));
        assert_eq!(b.push(6, 0, 6, now, &mut out), Err(Rejected::Late));
        assert_eq!(seqs(&out), ["5", "6", "7"]);
    }

    #[test]
    fn sequence_wraparound_is_seamless() {
        let mut b = ReorderBuffer::new(3, Duration::from_millis(60));
        let now = Instant::now();
        assert_eq!(
            push_all(&mut b, &[65534, 0, 65535, 1], now),
            ["65534", "65535", "0", "1"]
        );
    }

    #[test]
    fn a_far_jump_restarts_instead_of_waiting() {
        let mut b = ReorderBuffer::new(3, Duration::from_millis(60));
        let now = Instant::now();
        assert_eq!(
            push_all(&mut b, &[100, 101, 30000, 30001], now),
            ["100", "101", "30000", "30001"]
        );
    }
}
