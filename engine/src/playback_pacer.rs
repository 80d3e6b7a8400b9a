//! `PlaybackPacer`: turns bursts of synthesized PCM into 20 ms frames released on the wall
//! clock, so the browser's jitter buffer stays small, and knows how much of an utterance was
//! actually played (for barge-in transcripts).
//!
//! Sans-IO: `push` queues samples, `poll(now)` releases the frames whose time has come, and
//! `next_deadline` tells the actor when to poll again. Frames are released on a grid anchored at
//! the first frame of a burst, up to `lead` ahead of real time; when the queue runs dry (the TTS
//! is slower than real time) the grid re-anchors on the next push instead of bursting to catch
//! up. `flush` drops everything queued at once (barge-in stops audio within one frame).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The frame length of all engine audio.
pub const FRAME: Duration = Duration::from_millis(20);

/// One frame of outbound audio.
#[derive(Debug, Clone, PartialEq)]
pub struct OutFrame {
    pub pcm: Vec<i16>,
    /// Index of this frame within the current utterance (0 = first frame of the reply).
    pub index_in_utterance: u64,
}

#[derive(Debug)]
pub struct PlaybackPacer {
    samples_per_frame: usize,
    lead: Duration,
    queue: VecDeque<i16>,
    /// Grid anchor and frames released since it.
    anchor: Option<Instant>,
    released_since_anchor: u32,
    /// Frames released in the current utterance.
    utterance_frames: u64,
    /// The utterance's text is complete: pad and release the last partial frame.
    input_finished: bool,
}

impl PlaybackPacer {
    /// A pacer for `sample_rate` audio, releasing frames up to `lead` ahead of real time.
    pub fn new(sample_rate: u32, lead: Duration) -> Self {
        let samples_per_frame = (sample_rate as usize * FRAME.as_millis() as usize) / 1000;
        Self {
            samples_per_frame,
            lead,
            queue: VecDeque::new(),
            anchor: None,
            released_since_anchor: 0,
            utterance_frames: 0,
            input_finished: false,
        }
    }

    pub fn samples_per_frame(&self) -> usize {
        self.samples_per_frame
    }

    /// Paces `sample_rate` audio from now on: an utterance's first audio sets the rate its
    /// synthesizer speaks at (frames then go to the encoder at that rate). Meant for when nothing
    /// is queued; samples already queued are re-framed at the new rate.
    pub fn set_sample_rate(&mut self, sample_rate: u32) {
        self.samples_per_frame = (sample_rate as usize * FRAME.as_millis() as usize) / 1000;
    }

    /// Starts a new utterance: counters reset, nothing queued.
    pub fn start_utterance(&mut self) {
        self.queue.clear();
        self.anchor = None;
        self.released_since_anchor = 0;
        self.utterance_frames = 0;
        self.input_finished = false;
    }

    /// Queues samples of the current utterance.
    pub fn push(&mut self, pcm: &[i16]) {
        self.queue.extend(pcm.iter().copied());
    }

    /// No more audio will come for this utterance: the tail is padded to a whole frame.
    pub fn finish_input(&mut self) {
        self.input_finished = true;
    }

    /// Drops everything queued; returns how many samples were dropped.
    pub fn flush(&mut self) -> usize {
        let dropped = self.queue.len();
        self.queue.clear();
        self.anchor = None;
        self.released_since_anchor = 0;
        self.input_finished = false;
        dropped
    }

    /// Audio queued but not yet released.
    pub fn queued_samples(&self) -> usize {
        self.queue.len()
    }

    /// How much of the current utterance has been released (played).
    pub fn played(&self) -> Duration {
        FRAME * u32::try_from(self.utterance_frames).unwrap_or(u32::MAX)
    }

    /// Everything queued has been released and the input is finished.
    pub fn is_drained(&self) -> bool {
        self.queue.is_empty() && self.input_finished
    }

    fn has_frame(&self) -> bool {
        self.queue.len() >= self.samples_per_frame
            || (self.input_finished && !self.queue.is_empty())
    }

    fn due_at(&self) -> Option<Instant> {
        let anchor = self.anchor?;
        let offset = FRAME * self.released_since_anchor;
        Some((anchor + offset).checked_sub(self.lead).unwrap_or(anchor))
    }

    /// Releases the next frame if one is queued and due at `now`.
    pub fn poll(&mut self, now: Instant) -> Option<OutFrame> {
        if !self.has_frame() {
            // Ran dry: the next frame re-anchors rather than bursting to catch up.
            if self.queue.is_empty() {
                self.anchor = None;
                self.released_since_anchor = 0;
            }
            return None;
        }
        match self.due_at() {
            None => {
                self.anchor = Some(now);
                self.released_since_anchor = 0;
            }
            Some(due) if due > now => return None,
            Some(due) if now.saturating_duration_since(due) > FRAME * 5 => {
                // The caller fell far behind (a stalled executor): re-anchor, don't burst.
                self.anchor = Some(now);
                self.released_since_anchor = 0;
            }
            Some(_) => {}
        }
        let take = self.samples_per_frame.min(self.queue.len());
        let mut pcm: Vec<i16> = self.queue.drain(..take).collect();
        pcm.resize(self.samples_per_frame, 0);
        self.released_since_anchor += 1;
        let frame = OutFrame {
            pcm,
            index_in_utterance: self.utterance_frames,
        };
        self.utterance_frames += 1;
        Some(frame)
    }

    /// When to poll next: the next frame's due time, `None` when nothing is queued.
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        if !self.has_frame() {
            return None;
        }
        Some(self.due_at().unwrap_or(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pacer() -> PlaybackPacer {
        PlaybackPacer::new(48_000, Duration::ZERO)
    }

    #[test]
    fn releases_one_frame_per_20_ms_on_the_wall_clock() {
        let mut p = pacer();
        let start = Instant::now();
        p.push(&vec![1; 960 * 10]);
        let mut released = Vec::new();
        let mut now = start;
        while released.len() < 10 {
            if let Some(frame) = p.poll(now) {
                released.push((now - start, frame));
                continue;
            }
            now = p.next_deadline(now).expect("more queued");
        }
        let times: Vec<u128> = released.iter().map(|(t, _)| t.as_millis()).collect();
        assert_eq!(times, (0..10).map(|i| i * 20).collect::<Vec<_>>());
        assert!(released.iter().all(|(_, f)| f.pcm.len() == 960));
        assert_eq!(p.played(), Duration::from_millis(200));
    }

    #[test]
    fn a_burst_is_not_released_early() {
        let mut p = pacer();
        let start = Instant::now();
        p.push(&vec![1; 960 * 50]);
        assert!(p.poll(start).is_some());
        assert!(p.poll(start).is_none(), "the second frame waits its turn");
        assert!(p.poll(start + Duration::from_millis(19)).is_none());
        assert!(p.poll(start + Duration::from_millis(20)).is_some());
    }

    #[test]
    fn lead_sends_frames_slightly_ahead() {
        let mut p = PlaybackPacer::new(48_000, Duration::from_millis(40));
        let start = Instant::now();
        p.push(&vec![1; 960 * 5]);
        let mut count = 0;
        while p.poll(start).is_some() {
            count += 1;
        }
        assert_eq!(count, 3, "the first frame plus 40 ms of lead");
    }

    #[test]
    fn running_dry_re_anchors_instead_of_bursting() {
        let mut p = pacer();
        let start = Instant::now();
        p.push(&vec![1; 960]);
        assert!(p.poll(start).is_some());
        assert!(p.poll(start + Duration::from_millis(20)).is_none(), "dry");
        // Audio arrives 500 ms later: released at once, then paced again.
        let later = start + Duration::from_millis(500);
        p.push(&vec![1; 960 * 3]);
        assert!(p.poll(later).is_some());
        assert!(p.poll(later).is_none());
        assert!(p.poll(later + Duration::from_millis(20)).is_some());
    }

    #[test]
    fn flush_stops_audio_at_once_and_played_counts_only_released_frames() {
        let mut p = pacer();
        let start = Instant::now();
        p.start_utterance();
        p.push(&vec![1; 960 * 100]);
        let mut now = start;
        for _ in 0..7 {
            assert!(p.poll(now).is_some());
            now += FRAME;
        }
        assert_eq!(p.flush(), 960 * 93);
        assert!(p.poll(now).is_none());
        assert!(p.next_deadline(now).is_none());
        assert_eq!(p.played(), Duration::from_millis(140));
    }

    #[test]
    fn the_last_partial_frame_is_padded_when_input_finishes() {
        let mut p = pacer();
        let start = Instant::now();
        p.push(&vec![7; 960 + 100]);
        assert!(p.poll(start).is_some());
        assert!(
            p.poll(start + FRAME).is_none(),
            "partial frame waits for more audio"
        );
        p.finish_input();
        let last = p.poll(start + FRAME).expect("padded tail");
        assert_eq!(last.pcm.len(), 960);
        assert_eq!(&last.pcm[..100], &[7; 100][..]);
        assert!(last.pcm[100..].iter().all(|s| *s == 0));
        assert!(p.is_drained());
    }

    #[test]
    fn a_stalled_caller_does_not_get_a_burst() {
        let mut p = pacer();
        let start = Instant::now();
        p.push(&vec![1; 960 * 20]);
        assert!(p.poll(start).is_some());
        let late = start + Duration::from_millis(1000);
        assert!(p.poll(late).is_some());
        assert!(p.poll(late).is_none(), "re-anchored at the late poll");
    }
}
