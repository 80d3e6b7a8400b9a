//! The simulated candidate's side of a spoken interview, sans-IO: what to send in each 20 ms
//! frame (a voiced frame of the answer or silence) given when the interviewer's audio arrived,
//! and what the candidate measured. Time is an input ([`Conversation::hear`] with each reply
//! packet's arrival, [`Conversation::tick`] every 20 ms), so every timing rule is unit-tested
//! without a network.
//!
//! The interviewer's audio is every packet the server sends: it sends packets only while it
//! plays an utterance, so a packet arriving is reply audio, and no packet for
//! [`REPLY_END_GAP`] is the end of the reply.
//!
//! Modes (they combine):
//! - plain: answer `speech` of voice `reaction` after each reply ends;
//! - barge-in: every second answer (the 2nd, 4th, …) starts `after` into the reply instead of
//!   after it and lasts at least [`BARGE_IN_SPEECH`]; the reaction measured is voice onset →
//!   the last reply packet received (the reply audio stopped);
//! - pauses: each answer has one pause (a length drawn from a range, seeded) after 40–60 % of
//!   its voice; a reply that starts after the pause began and before the answer ended is a
//!   turn cut (the server took the pause for the end of the turn).

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use serde::Serialize;

/// No reply audio for this long: the interviewer has stopped speaking. Generous, because a
/// loaded server can stall its playback for a few hundred ms mid-reply (counted as a stall).
pub const REPLY_END_GAP: Duration = Duration::from_millis(800);
/// Reply audio resuming after a silence longer than this (within one reply) is a stall.
pub const STALL_GAP: Duration = Duration::from_millis(100);
/// A barge-in answer lasts at least this long, so the server has time to decide.
pub const BARGE_IN_SPEECH: Duration = Duration::from_millis(2500);
/// Reply audio still arriving this close to the end of a barge-in answer: it never stopped.
const STILL_PLAYING: Duration = Duration::from_millis(200);
const FRAME: Duration = Duration::from_millis(20);

/// What the candidate does.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub answers: usize,
    /// How long each answer is voiced (without its pause).
    pub speech: Duration,
    /// Silence after the interviewer stops before answering.
    pub reaction: Duration,
    /// Longest wait for the greeting or for a reply after an answer.
    pub reply_timeout: Duration,
    /// Barge-in mode: every second answer starts this long into the reply.
    pub barge_in_after: Option<Duration>,
    /// Pause mode: each answer pauses once for a length in this range.
    pub pauses: Option<(Duration, Duration)>,
    /// Seeds the pause lengths and positions (the candidate's index: reproducible runs).
    pub seed: u64,
}

/// What to send in this frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The `index`-th voiced frame of the current answer.
    Voiced {
        index: usize,
    },
    Silence,
    /// Every answer was given and the last reply has ended.
    Done,
}

/// Why the conversation cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversationError {
    #[error("greeting: no audio within {0:?}")]
    NoGreeting(Duration),
    #[error("reply {answer}: no audio within {timeout:?} of the answer")]
    NoReply { answer: usize, timeout: Duration },
}

/// What the candidate measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Measured {
    /// Per answer followed by a reply: last voiced frame sent → first reply audio received.
    pub gaps_ms: Vec<f64>,
    pub replies_heard: usize,
    pub answers: usize,
    /// Reply audio pausing for more than 100 ms and resuming within the same reply.
    pub reply_stalls: u32,
    /// A reply starting while the candidate answered, not because of a planned pause nor a
    /// planned barge-in.
    pub talked_over: u32,
    /// Per barge-in whose reply stopped: voice onset → last reply audio received.
    pub barge_in_ms: Vec<f64>,
    /// Barge-in answers given (the reply was still playing `after` into it).
    pub barge_in_attempts: u32,
    /// Of which the reply never stopped while the candidate talked.
    pub barge_in_missed: u32,
    /// Barge-in answers given after the reply instead (it was shorter than `after`).
    pub barge_in_skipped: u32,
    /// Answers with a pause.
    pub pauses: u32,
    /// Of which a reply started after the pause began, before the answer ended.
    pub turn_cuts: u32,
}

#[derive(Debug, Clone, Copy)]
struct ReplyAudio {
    first_at: Instant,
    last_at: Instant,
    /// Answers given when it started.
    after_answers: usize,
    /// It started while the candidate was answering.
    during_answer: bool,
}

#[derive(Debug, Clone, Copy)]
struct Answer {
    started: Instant,
    /// Voice before the pause (the whole `speech` without a pause).
    first_part: Duration,
    pause: Duration,
    /// Voice after the pause.
    second_part: Duration,
    over_reply: bool,
    /// A reply started while it was being given (a cut, or talked over).
    cut_in: bool,
    voiced_sent: usize,
}

impl Answer {
    fn length(&self) -> Duration {
        self.first_part + self.pause + self.second_part
    }

    fn pause_started(&self, at: Instant) -> bool {
        !self.pause.is_zero() && at >= self.started + self.first_part
    }

    fn pausing(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.started);
        !self.pause.is_zero()
            && elapsed >= self.first_part
            && elapsed < self.first_part + self.pause
    }
}

/// See the module docs.
#[derive(Debug)]
pub struct Conversation {
    plan: Plan,
    rng: rand::rngs::StdRng,
    started: Instant,
    reply: Option<ReplyAudio>,
    /// When the last reply's audio ended (its last packet).
    reply_ended_at: Option<Instant>,
    answer: Option<Answer>,
    /// The last answer ended at this instant and no reply has started since.
    awaiting_since: Option<Instant>,
    last_voiced_sent: Option<Instant>,
    measured: Measured,
}

impl Conversation {
    pub fn new(plan: Plan, now: Instant) -> Self {
        Self {
            rng: rand::rngs::StdRng::seed_from_u64(plan.seed),
            plan,
            started: now,
            reply: None,
            reply_ended_at: None,
            answer: None,
            awaiting_since: None,
            last_voiced_sent: None,
            measured: Measured::default(),
        }
    }

    pub fn measured(&self) -> &Measured {
        &self.measured
    }

    /// Answers given so far.
    pub fn answered(&self) -> usize {
        self.measured.answers
    }

    /// A packet of the interviewer's audio arrived at `at`.
    pub fn hear(&mut self, at: Instant) {
        if let Some(reply) = self.reply.as_mut() {
            let silence = at.saturating_duration_since(reply.last_at);
            if silence <= REPLY_END_GAP {
                if silence > STALL_GAP {
                    self.measured.reply_stalls += 1;
                }
                reply.last_at = reply.last_at.max(at);
                return;
            }
            self.reply_ended_at = Some(reply.last_at);
        }
        // A new reply.
        self.measured.replies_heard += 1;
        self.reply = Some(ReplyAudio {
            first_at: at,
            last_at: at,
            after_answers: self.measured.answers,
            during_answer: self.answer.is_some(),
        });
        if self.awaiting_since.take().is_some()
            && let Some(sent) = self.last_voiced_sent
        {
            self.measured
                .gaps_ms
                .push(at.saturating_duration_since(sent).as_secs_f64() * 1e3);
        } else if let Some(answer) = self.answer.as_mut()
            && !answer.over_reply
        {
            answer.cut_in = true;
            if answer.pause_started(at) {
                self.measured.turn_cuts += 1;
            } else {
                self.measured.talked_over += 1;
            }
        }
    }

    /// One 20 ms frame at `now`: what to send.
    pub fn tick(&mut self, now: Instant) -> Result<Step, ConversationError> {
        if let Some(reply) = self.reply
            && now.saturating_duration_since(reply.last_at) > REPLY_END_GAP
        {
            self.reply = None;
            self.reply_ended_at = Some(reply.last_at);
        }
        if let Some(answer) = self.answer
            && now >= answer.started + answer.length()
        {
            self.finish_answer(answer, now);
        }
        let plan = &self.plan;
        if self.answer.is_none()
            && self.reply.is_none()
            && self.awaiting_since.is_none()
            && self.measured.answers == plan.answers
            && self.measured.replies_heard > 0
        {
            return Ok(Step::Done);
        }
        if self.measured.replies_heard == 0
            && now.saturating_duration_since(self.started) > plan.reply_timeout
        {
            return Err(ConversationError::NoGreeting(plan.reply_timeout));
        }
        if let Some(since) = self.awaiting_since
            && now.saturating_duration_since(since) > plan.reply_timeout
        {
            return Err(ConversationError::NoReply {
                answer: self.measured.answers,
                timeout: plan.reply_timeout,
            });
        }
        if self.answer.is_none() {
            self.maybe_start_answer(now);
        }
        let Some(answer) = self.answer.as_mut() else {
            return Ok(Step::Silence);
        };
        if answer.pausing(now) {
            return Ok(Step::Silence);
        }
        let index = answer.voiced_sent;
        answer.voiced_sent += 1;
        self.last_voiced_sent = Some(now);
        Ok(Step::Voiced { index })
    }

    fn maybe_start_answer(&mut self, now: Instant) {
        let next = self.measured.answers + 1;
        if next > self.plan.answers || self.awaiting_since.is_some() {
            return;
        }
        let barges_in = self.plan.barge_in_after.is_some() && next.is_multiple_of(2);
        match (self.reply, self.plan.barge_in_after) {
            // Over the reply to the previous answer, `after` into it.
            (Some(reply), Some(after))
                if barges_in
                    && reply.after_answers == self.measured.answers
                    && !reply.during_answer
                    && now.saturating_duration_since(reply.first_at) >= after
                    // Still playing (not in the silence that may end it).
                    && now.saturating_duration_since(reply.last_at) <= STALL_GAP =>
            {
                self.measured.barge_in_attempts += 1;
                self.start_answer(now, true);
            }
            (None, _)
                if self.measured.replies_heard > 0
                    && self.reply_ended_at.is_some_and(|at| {
                        now.saturating_duration_since(at) >= self.plan.reaction
                    }) =>
            {
                if barges_in {
                    self.measured.barge_in_skipped += 1;
                }
                self.start_answer(now, false);
            }
            _ => {}
        }
    }

    fn start_answer(&mut self, now: Instant, over_reply: bool) {
        let speech = if over_reply {
            self.plan.speech.max(BARGE_IN_SPEECH)
        } else {
            self.plan.speech
        };
        let (first_part, pause) = match self.plan.pauses {
            Some((shortest, longest)) if !over_reply => {
                self.measured.pauses += 1;
                let share = self.rng.random_range(0.4..=0.6);
                let first = frames(speech.mul_f64(share));
                let pause = frames(Duration::from_secs_f64(
                    self.rng
                        .random_range(shortest.as_secs_f64()..=longest.as_secs_f64()),
                ));
                (first, pause)
            }
            _ => (speech, Duration::ZERO),
        };
        self.measured.answers += 1;
        self.answer = Some(Answer {
            started: now,
            first_part,
            pause,
            second_part: speech.saturating_sub(first_part),
            over_reply,
            cut_in: false,
            voiced_sent: 0,
        });
    }

    fn finish_answer(&mut self, answer: Answer, now: Instant) {
        self.answer = None;
        if answer.over_reply {
            match self.reply {
                Some(reply) if now.saturating_duration_since(reply.last_at) < STILL_PLAYING => {
                    self.measured.barge_in_missed += 1;
                }
                Some(reply) => {
                    let stopped = reply.last_at.saturating_duration_since(answer.started);
                    self.measured.barge_in_ms.push(stopped.as_secs_f64() * 1e3);
                    // It stopped: whatever comes next is a new reply.
                    self.reply = None;
                    self.reply_ended_at = Some(reply.last_at);
                }
                None => {
                    let last = self.reply_ended_at.unwrap_or(answer.started);
                    let stopped = last.saturating_duration_since(answer.started);
                    self.measured.barge_in_ms.push(stopped.as_secs_f64() * 1e3);
                }
            }
        }
        // A reply that cut in is this answer's reply (the server took the turn; what the
        // candidate said over it is heard as talk during playback unless it barged in): the
        // candidate answers the next question after it instead of waiting for another.
        if !answer.cut_in {
            self.awaiting_since = Some(now);
        }
    }
}

/// `d` rounded to whole 20 ms frames (at least one).
fn frames(d: Duration) -> Duration {
    let n = (d.as_secs_f64() / FRAME.as_secs_f64()).round().max(1.0);
    FRAME.mul_f64(n)
}

/// Counts packets lost from RTP sequence numbers (RFC 3550 A.3: expected − received, over the
/// extended sequence number, so wrap-arounds count).
#[derive(Debug, Default, Clone, Copy)]
pub struct LossCounter {
    first: Option<u64>,
    highest: u64,
    received: u64,
}

impl LossCounter {
    pub fn packet(&mut self, seq: u16) {
        self.received += 1;
        let seq = u64::from(seq);
        if self.first.is_none() {
            // Start one cycle up, so a packet from before the first still has a number.
            self.first = Some(seq + (1 << 16));
            self.highest = seq + (1 << 16);
            return;
        }
        // The extended number closest to the highest seen.
        let cycle = self.highest & !0xffff;
        let extended = [cycle - (1 << 16), cycle, cycle + (1 << 16)]
            .map(|c| c | seq)
            .into_iter()
            .min_by_key(|c| c.abs_diff(self.highest))
            .unwrap_or(self.highest);
        self.highest = self.highest.max(extended);
    }

    pub fn received(&self) -> u64 {
        self.received
    }

    pub fn lost(&self) -> u64 {
        self.first.map_or(0, |first| {
            (self.highest + 1 - first).saturating_sub(self.received)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn plan() -> Plan {
        Plan {
            answers: 2,
            speech: Duration::from_millis(1000),
            reaction: Duration::from_millis(300),
            reply_timeout: Duration::from_secs(10),
            barge_in_after: None,
            pauses: None,
            seed: 7,
        }
    }

    /// Drives a conversation in 20 ms steps against a scripted interviewer.
    struct Sim {
        conv: Conversation,
        now: Instant,
        sent: Vec<(Instant, Step)>,
    }

    impl Sim {
        fn new(plan: Plan) -> Self {
            let now = Instant::now();
            Self {
                conv: Conversation::new(plan, now),
                now,
                sent: Vec::new(),
            }
        }

        /// Reply audio for `length` (a packet per 20 ms), ticking the candidate meanwhile.
        fn reply(&mut self, length: Duration) {
            let end = self.now + length;
            while self.now < end {
                self.conv.hear(self.now);
                self.tick();
            }
        }

        /// Silence from the interviewer for `length`.
        fn quiet(&mut self, length: Duration) {
            let end = self.now + length;
            while self.now < end {
                self.tick();
            }
        }

        fn tick(&mut self) -> Step {
            let step = self.conv.tick(self.now).expect("no timeout");
            self.sent.push((self.now, step));
            self.now += FRAME;
            step
        }

        /// Ticks until the candidate has spoken and stopped; returns when its last voiced
        /// frame was sent.
        fn until_answered(&mut self) -> Instant {
            while !matches!(self.tick(), Step::Voiced { .. }) {}
            let mut last = self.now - FRAME;
            for _ in 0..1000 {
                match self.tick() {
                    Step::Voiced { .. } => last = self.now - FRAME,
                    Step::Silence if self.conv.answer.is_none() => return last,
                    _ => {}
                }
            }
            panic!("the answer never ended");
        }
    }

    #[test]
    fn the_candidate_answers_after_each_reply_and_measures_the_gap() {
        let mut sim = Sim::new(plan());
        sim.quiet(Duration::from_millis(500));
        sim.reply(Duration::from_millis(1000));
        let reply_end = sim.now;
        let last_voice = sim.until_answered();
        // It waited for the end of the reply (800 ms of silence) and then the reaction.
        let first_voice = sim
            .sent
            .iter()
            .find(|(_, s)| matches!(s, Step::Voiced { .. }))
            .map(|(at, _)| *at)
            .expect("an answer");
        assert!(first_voice >= reply_end + REPLY_END_GAP);
        let voiced = sim
            .sent
            .iter()
            .filter(|(_, s)| matches!(s, Step::Voiced { .. }))
            .count();
        assert_eq!(voiced, 50, "1 s of voice in 20 ms frames");
        sim.quiet(Duration::from_millis(700));
        sim.reply(Duration::from_millis(600));
        let measured = sim.conv.measured();
        assert_eq!(measured.gaps_ms.len(), 1);
        let gap = measured.gaps_ms[0];
        // Last voice at +980 ms; the answer ends at +1000 (that tick is silent), then 720 ms.
        assert!((gap - 740.0).abs() < 1.0, "{gap} ms");
        assert!(last_voice < sim.now);
        sim.until_answered();
        sim.quiet(Duration::from_millis(400));
        sim.reply(Duration::from_millis(400));
        let mut done = false;
        for _ in 0..100 {
            if sim.tick() == Step::Done {
                done = true;
                break;
            }
        }
        assert!(done, "two answers, their replies ended: done");
        assert_eq!(sim.conv.measured().reply_stalls, 0);
    }

    #[test]
    fn a_gap_inside_a_reply_is_a_stall_and_a_long_one_ends_it() {
        let mut sim = Sim::new(plan());
        sim.reply(Duration::from_millis(400));
        sim.quiet(Duration::from_millis(300));
        sim.reply(Duration::from_millis(400));
        assert_eq!(sim.conv.measured().reply_stalls, 1);
        assert_eq!(sim.conv.measured().replies_heard, 1);
    }

    #[test]
    fn a_barge_in_answer_starts_over_the_reply_and_measures_until_the_audio_stops() {
        let plan = Plan {
            barge_in_after: Some(Duration::from_millis(400)),
            ..plan()
        };
        let mut sim = Sim::new(plan);
        sim.reply(Duration::from_millis(600));
        sim.until_answered();
        sim.quiet(Duration::from_millis(500));
        // Reply 1: the candidate starts 400 ms in; the server stops it 700 ms later.
        let reply_start = sim.now;
        sim.reply(Duration::from_millis(1100));
        let onset = sim
            .sent
            .iter()
            .filter(|(at, s)| *at >= reply_start && matches!(s, Step::Voiced { .. }))
            .map(|(at, _)| *at)
            .next()
            .expect("the candidate talked over the reply");
        assert_eq!(onset, reply_start + 400 * MS);
        // It keeps talking (2.5 s in all), then a new reply comes.
        let last_voice = sim.until_answered();
        assert_eq!(last_voice, onset + BARGE_IN_SPEECH - FRAME);
        sim.quiet(Duration::from_millis(500));
        sim.reply(Duration::from_millis(300));
        let m = sim.conv.measured();
        assert_eq!((m.barge_in_attempts, m.barge_in_missed), (1, 0));
        assert_eq!(m.barge_in_ms.len(), 1);
        // Last packet at reply_start + 1080 ms: 680 ms after the onset.
        assert!(
            (m.barge_in_ms[0] - 680.0).abs() < 1.0,
            "{:?}",
            m.barge_in_ms
        );
        assert_eq!(
            m.gaps_ms.len(),
            2,
            "the reply after the barge-in is a new reply"
        );
        assert_eq!((m.talked_over, m.turn_cuts), (0, 0));
    }

    #[test]
    fn a_reply_that_never_stops_is_a_missed_barge_in() {
        let plan = Plan {
            barge_in_after: Some(Duration::from_millis(200)),
            ..plan()
        };
        let mut sim = Sim::new(plan);
        sim.reply(Duration::from_millis(400));
        sim.until_answered();
        sim.quiet(Duration::from_millis(300));
        sim.reply(Duration::from_millis(4000));
        let m = sim.conv.measured();
        assert_eq!((m.barge_in_attempts, m.barge_in_missed), (1, 1));
        assert!(m.barge_in_ms.is_empty());
    }

    #[test]
    fn a_reply_shorter_than_the_barge_in_point_is_answered_after() {
        let plan = Plan {
            barge_in_after: Some(Duration::from_millis(800)),
            ..plan()
        };
        let mut sim = Sim::new(plan);
        sim.reply(Duration::from_millis(400));
        sim.until_answered();
        sim.quiet(Duration::from_millis(300));
        sim.reply(Duration::from_millis(500));
        sim.until_answered();
        let m = sim.conv.measured();
        assert_eq!((m.barge_in_attempts, m.barge_in_skipped), (0, 1));
    }

    #[test]
    fn answers_pause_once_and_a_reply_during_the_pause_is_a_turn_cut() {
        let plan = Plan {
            pauses: Some((Duration::from_millis(600), Duration::from_millis(900))),
            ..plan()
        };
        let mut sim = Sim::new(plan);
        sim.reply(Duration::from_millis(400));
        // Wait for the answer to begin, then find its pause.
        while !matches!(sim.tick(), Step::Voiced { .. }) {}
        let answer = sim.conv.answer.expect("answering");
        assert!(
            (600..=900).contains(&answer.pause.as_millis()),
            "{answer:?}"
        );
        let share = answer.first_part.as_secs_f64() / 1.0;
        assert!((0.38..=0.62).contains(&share), "{answer:?}");
        assert_eq!(answer.first_part + answer.second_part, plan_speech());
        // The interviewer starts 500 ms into the pause.
        while sim.now < answer.started + answer.first_part + 500 * MS {
            assert_ne!(sim.tick(), Step::Done);
        }
        sim.conv.hear(sim.now);
        let m = sim.conv.measured();
        assert_eq!((m.pauses, m.turn_cuts, m.talked_over), (1, 1, 0));
        // The pause is silence, the rest voice.
        let in_pause = sim
            .sent
            .iter()
            .filter(|(at, _)| {
                *at >= answer.started + answer.first_part
                    && *at < answer.started + answer.first_part + answer.pause
            })
            .all(|(_, s)| *s == Step::Silence);
        assert!(in_pause);
    }

    #[test]
    fn after_a_turn_cut_the_candidate_answers_the_reply_that_cut_in() {
        let plan = Plan {
            pauses: Some((Duration::from_millis(800), Duration::from_millis(800))),
            ..plan()
        };
        let mut sim = Sim::new(plan);
        sim.reply(Duration::from_millis(300));
        while !matches!(sim.tick(), Step::Voiced { .. }) {}
        let answer = sim.conv.answer.expect("answering");
        while sim.now < answer.started + answer.first_part + 400 * MS {
            sim.tick();
        }
        // The server replies in the pause, for 3 s, over the rest of the answer.
        sim.reply(Duration::from_secs(3));
        assert!(sim.conv.answer.is_none(), "the answer ended meanwhile");
        assert!(sim.conv.awaiting_since.is_none(), "no other reply awaited");
        // The second answer follows that reply.
        let next = sim.until_answered();
        assert!(next > sim.now - Duration::from_secs(2));
        let m = sim.conv.measured();
        assert_eq!((m.answers, m.turn_cuts, m.pauses), (2, 1, 2));
    }

    fn plan_speech() -> Duration {
        plan().speech
    }

    #[test]
    fn pauses_are_reproducible_per_seed() {
        let draw = |seed| {
            let plan = Plan {
                pauses: Some((Duration::from_millis(600), Duration::from_millis(900))),
                seed,
                ..plan()
            };
            let mut sim = Sim::new(plan);
            sim.reply(Duration::from_millis(200));
            while !matches!(sim.tick(), Step::Voiced { .. }) {}
            let a = sim.conv.answer.expect("answering");
            (a.first_part, a.pause)
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
    }

    #[test]
    fn no_greeting_and_no_reply_time_out() {
        let mut conv = Conversation::new(plan(), Instant::now());
        let later = Instant::now() + Duration::from_secs(11);
        assert!(matches!(
            conv.tick(later),
            Err(ConversationError::NoGreeting(_))
        ));
        let mut sim = Sim::new(plan());
        sim.reply(Duration::from_millis(200));
        sim.until_answered();
        let late = sim.now + Duration::from_secs(11);
        assert!(matches!(
            sim.conv.tick(late),
            Err(ConversationError::NoReply { answer: 1, .. })
        ));
    }

    #[test]
    fn loss_is_counted_from_sequence_numbers_across_the_wrap() {
        let mut loss = LossCounter::default();
        for seq in [65_530u16, 65_531, 65_533, 65_535, 0, 1, 3] {
            loss.packet(seq);
        }
        assert_eq!(loss.received(), 7);
        assert_eq!(loss.lost(), 3, "65532, 65534 and 2");
        // A late duplicate of an old packet changes nothing but the count received.
        let mut reordered = LossCounter::default();
        for seq in [10u16, 12, 11, 13] {
            reordered.packet(seq);
        }
        assert_eq!(reordered.lost(), 0);
    }
}
