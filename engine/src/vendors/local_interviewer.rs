//! The local interviewer of keyless local mode: a rule-based program behind the
//! [`LanguageModel`] trait, honest about what it is. It asks questions from a bank per interview
//! kind (shaped by the role, company and resume profile the system prompt carries), chooses a
//! follow-up from the shape of the candidate's last answer, keeps time against the planned length,
//! and closes with `[END]`.
//!
//! Sans-IO core: [`next_reply`] is a pure function of the request (system prompt and history).
//! The interviewer keeps no state between calls: it replays its own earlier decisions from the
//! history it is given, so every interview has its own progress and two interviews never share
//! a script. [`LocalInterviewer`] streams the reply as text deltas, a few words at a time, like
//! a vendor.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use crate::conversation::Cue;
use crate::vendors::local_drills::{self, Drill};
use crate::vendors::{
    ChatMessage, EVENT_QUEUE, ErrorCategory, LanguageModel, LlmEvent, LlmReport, LlmRequest,
    LlmStream, LlmTiming, Role, StopReason, Vendor, VendorError,
};

/// The model name in usage rows.
pub const MODEL: &str = "local-interviewer";

/// Answers shorter than this (in words) get "give me an example".
const SHORT_ANSWER_WORDS: usize = 15;
/// Answers longer than this (about a minute of speech) get "the one-sentence version".
const LONG_ANSWER_WORDS: usize = 150;
/// Follow-ups on one main question at most, before moving on.
const MAX_FOLLOW_UPS: usize = 2;
/// Speaking rates for the time estimate (words per second) and the pause around each turn.
const CANDIDATE_WORDS_PER_SECOND: f64 = 2.3;
const INTERVIEWER_WORDS_PER_SECOND: f64 = 2.6;
const TURN_OVERHEAD_SECONDS: f64 = 2.5;
/// Planned seconds per main question (follow-ups included).
const SECONDS_PER_MAIN_QUESTION: u64 = 240;

/// How the system prompt announces a drill (see [`crate::conversation::system_prompt`]).
const DRILL_LINE: &str = "This is a drill focused on one skill: ";

/// The note the interview actor appends when the model waited too often in a row.
const RESPOND_NOW: &str = "(Please respond to the candidate now; do not wait.)";

/// The kinds of interview, as the system prompt names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Behavioral,
    SystemDesign,
    Technical,
}

/// What the interviewer knows of the interview, read from the system prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptPlan {
    pub kind: Kind,
    pub role: Option<String>,
    pub company: Option<String>,
    pub minutes: u64,
    pub current_role: Option<String>,
    pub skills: Vec<String>,
    /// A drill's microskill (the drill plan's "practise this"): its questions and probe replace
    /// the general bank.
    pub focus: Option<&'static Drill>,
}

impl PromptPlan {
    /// Reads the plan from a prompt written by [`crate::conversation::system_prompt`].
    pub fn parse(system: &str) -> Self {
        let kind = if system.contains("a system design interview") {
            Kind::SystemDesign
        } else if system.contains("a technical deep-dive") {
            Kind::Technical
        } else {
            Kind::Behavioral
        };
        let mut role = None;
        let mut company = None;
        if let Some(start) = system.find("preparing for a ") {
            let rest = &system[start + "preparing for a ".len()..];
            let sentence = rest
                .find(" The interview lasts about")
                .map_or(rest, |end| &rest[..end]);
            let sentence = sentence.strip_suffix('.').unwrap_or(sentence);
            match sentence.split_once(" role at ") {
                Some((r, c)) => {
                    role = Some(r.trim().to_owned());
                    company = Some(c.trim().to_owned());
                }
                None => role = sentence.strip_suffix(" role").map(|r| r.trim().to_owned()),
            }
        }
        let minutes = system
            .split_once("The interview lasts about ")
            .and_then(|(_, rest)| {
                rest.split_whitespace()
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
            })
            .unwrap_or(20)
            .max(1);
        let line = |prefix: &str| {
            system
                .lines()
                .find_map(|line| line.strip_prefix(prefix))
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty())
        };
        let skills = line("- Skills: ")
            .map(|skills| {
                skills
                    .split(", ")
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        // "This is a drill focused on one skill: tradeoff analysis. ..."
        let focus = system
            .split_once(DRILL_LINE)
            .and_then(|(_, rest)| rest.split('.').next())
            .and_then(|skill| local_drills::drill(&skill.trim().replace(' ', "_")));
        Self {
            focus,
            kind,
            role: role.filter(|r| !r.is_empty()),
            company: company.filter(|c| !c.is_empty()),
            minutes,
            current_role: line("- Current role: "),
            skills,
        }
    }

    fn kind_name(&self) -> &'static str {
        match self.kind {
            Kind::Behavioral => "behavioral",
            Kind::SystemDesign => "system design",
            Kind::Technical => "technical",
        }
    }

    /// How many main questions fit the planned length.
    fn main_question_target(&self, bank: usize) -> usize {
        let fit = (self.minutes * 60 / SECONDS_PER_MAIN_QUESTION) as usize;
        fit.clamp(2, bank.max(2)).min(bank)
    }
}

/// The main questions of an interview, in order.
pub fn question_bank(plan: &PromptPlan) -> Vec<String> {
    if let Some(drill) = plan.focus {
        return drill.questions.iter().map(|q| (*q).to_owned()).collect();
    }
    let company = plan.company.as_deref();
    let skill = |i: usize| plan.skills.get(i).map(String::as_str);
    match plan.kind {
        Kind::Behavioral => {
            let mut bank = vec![
                "To start, tell me about a project you are proud of, and what your part in it was.".to_owned(),
                "Tell me about a time you disagreed with a colleague or a manager. What happened, and how was it resolved?".to_owned(),
                "Tell me about a time something you owned went wrong. What did you do, and what did you learn?".to_owned(),
                "Tell me about a decision you had to make without all the information you wanted.".to_owned(),
                "Tell me about a time you led others without having authority over them.".to_owned(),
            ];
            if let Some(company) = company {
                bank.insert(
                    3,
                    format!("What draws you to {company}, and what would you want to achieve there in your first six months?"),
                );
            }
            bank
        }
        Kind::SystemDesign => {
            let problem = design_problem(plan);
            vec![
                format!(
                    "Here is the problem: design {problem}. Start with the requirements: what would you ask, and what would you assume?"
                ),
                "Now the data model and the main components: what do you store, where, and how do the parts talk to each other?".to_owned(),
                "Suppose traffic grows ten times. What breaks first, and how do you scale it?".to_owned(),
                "What happens when a component fails? How do you avoid losing or duplicating work?".to_owned(),
                "Which trade-offs did you make, and what would you change with more time?".to_owned(),
            ]
        }
        Kind::Technical => vec![
            match (skill(0), &plan.current_role) {
                (Some(skill), _) => format!(
                    "Your resume mentions {skill}. Walk me through a project where you used it: what did it do, and how was it built?"
                ),
                (None, Some(current)) => format!(
                    "Pick a system you worked on as a {current} and walk me through how it works."
                ),
                (None, None) => "Pick a project you know well and walk me through how it works.".to_owned(),
            },
            "Why was it built that way? Which alternatives did you consider, and why did you reject them?".to_owned(),
            "What was the hardest bug or performance problem in it, and how did you track it down?".to_owned(),
            match skill(1) {
                Some(skill) => format!(
                    "Let's switch to {skill}. How does it work under the hood, and where has it surprised you?"
                ),
                None => "How did you test it, and how did you know it worked in production?".to_owned(),
            },
            "If you rebuilt it today, what would you change, and why?".to_owned(),
        ],
    }
}

/// A design problem suited to the role.
fn design_problem(plan: &PromptPlan) -> &'static str {
    let hint = format!(
        "{} {} {}",
        plan.role.as_deref().unwrap_or_default(),
        plan.current_role.as_deref().unwrap_or_default(),
        plan.skills.join(" ")
    )
    .to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| hint.contains(w));
    if has(&[
        "data",
        "analytics",
        "machine learning",
        "ml ",
        "spark",
        "kafka",
    ]) {
        "a pipeline that collects click events from a large website and serves hourly reports"
    } else if has(&["frontend", "front-end", "mobile", "ios", "android", "react"]) {
        "the backend of a chat app used by millions of phones, with offline sync"
    } else if has(&["payment", "fintech", "bank"]) {
        "a payment service that charges cards exactly once, even when clients retry"
    } else {
        "a URL shortener with click statistics, for a hundred million links"
    }
}

/// A follow-up chosen from the shape of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowUp {
    /// Very short: ask for an example.
    Example,
    /// Very long: ask for the one-sentence version.
    OneSentence,
    /// Only "we": ask what they did personally.
    Personal,
    /// No result stated: ask for the outcome.
    Outcome,
    /// No numbers: ask to quantify.
    Quantify,
    /// A drill's answer shows no sign of its skill: ask the drill's probe.
    Skill,
}

/// The shape of an answer, as the follow-up rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerShape {
    pub words: usize,
    pub has_numbers: bool,
    pub has_result: bool,
    pub says_we: bool,
    pub says_i: bool,
}

const RESULT_WORDS: &[&str] = &[
    "result",
    "resulted",
    "outcome",
    "so that",
    "led to",
    "ended up",
    "in the end",
    "finally",
    "reduced",
    "increased",
    "improved",
    "saved",
    "grew",
    "launched",
    "shipped",
    "delivered",
    "achieved",
    "fixed",
    "solved",
    "resolved",
    "succeeded",
    "worked",
    "learned",
    "impact",
    "because of that",
    "which meant",
    "faster",
    "cheaper",
];

/// Measures an answer.
pub fn answer_shape(answer: &str) -> AnswerShape {
    let lower = answer.to_lowercase();
    let tokens: Vec<String> = lower
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | '.' | '?' | '!' | ';' | ':' | '"'))
        .map(|t| t.trim_matches(|c: char| !c.is_alphanumeric() && c != '\''))
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    let has = |list: &[&str]| tokens.iter().any(|t| list.contains(&t.as_str()));
    let padded = format!(" {} ", tokens.join(" "));
    AnswerShape {
        words: tokens.len(),
        // One notion of "states a quantity" for the interviewer and the scorer alike.
        has_numbers: tokens.iter().any(|t| crate::feedback::text::is_number(t)),
        has_result: RESULT_WORDS
            .iter()
            .any(|w| padded.contains(&format!(" {w} ")) || padded.contains(&format!(" {w}"))),
        says_we: has(&["we", "we're", "we've", "we'd", "our", "ours", "us"]),
        says_i: has(&[
            "i", "i'm", "i've", "i'd", "i'll", "my", "me", "mine", "myself",
        ]),
    }
}

/// The follow-up an answer calls for, if any, given those already asked on this question.
pub fn choose_follow_up(kind: Kind, shape: &AnswerShape, asked: &[FollowUp]) -> Option<FollowUp> {
    if asked.len() >= MAX_FOLLOW_UPS {
        return None;
    }
    let candidates = [
        (shape.words < SHORT_ANSWER_WORDS, FollowUp::Example),
        (shape.words > LONG_ANSWER_WORDS, FollowUp::OneSentence),
        // In a design discussion "we would" is the normal voice.
        (
            kind != Kind::SystemDesign && shape.says_we && !shape.says_i,
            FollowUp::Personal,
        ),
        (
            kind != Kind::SystemDesign && !shape.has_result,
            FollowUp::Outcome,
        ),
        (!shape.has_numbers, FollowUp::Quantify),
    ];
    candidates
        .into_iter()
        .find(|(applies, follow_up)| *applies && !asked.contains(follow_up))
        .map(|(_, follow_up)| follow_up)
}

fn follow_up_text(kind: Kind, follow_up: FollowUp) -> &'static str {
    match (kind, follow_up) {
        (Kind::SystemDesign, FollowUp::Example) => {
            "Can you be more concrete? Which components would you use, and how do they talk to each other?"
        }
        (_, FollowUp::Example) => "Could you give me a specific example, from a real situation?",
        (Kind::SystemDesign, FollowUp::OneSentence) => {
            "That was a lot. Summarize your design so far in one sentence."
        }
        (_, FollowUp::OneSentence) => "That was a lot of detail. What is the one-sentence version?",
        (_, FollowUp::Personal) => {
            "You said we a lot. What did you personally do, and what did you decide yourself?"
        }
        (Kind::Technical, FollowUp::Outcome) => {
            "And how did it turn out? Did it work, and how did you know?"
        }
        (_, FollowUp::Outcome) => "What was the outcome, and how did you know it had worked?",
        (Kind::SystemDesign, FollowUp::Quantify) => {
            "Let's put numbers on it. How many requests per second and how much data are you designing for?"
        }
        (Kind::Technical, FollowUp::Quantify) => {
            "Can you quantify that? Latency, throughput, size, or time saved?"
        }
        (_, FollowUp::Quantify) => {
            "Can you put a number on that? How much time, money, or how many people did it affect?"
        }
        // Only asked in a drill, which says its own probe (see `say`).
        (_, FollowUp::Skill) => "How does that show the skill we are practising?",
    }
}

/// The interviewer's progress, replayed from the history.
#[derive(Debug, Clone, Default, PartialEq)]
struct Progress {
    greeted: bool,
    /// Main questions asked so far; the current one is `main_asked - 1`.
    main_asked: usize,
    follow_ups: Vec<FollowUp>,
    closed: bool,
    /// Estimated seconds of interview so far.
    elapsed: f64,
    turns: usize,
}

/// What the interviewer does next.
#[derive(Debug, Clone, PartialEq)]
enum Decision {
    Greet,
    Wait,
    CheckIn,
    FollowUp(FollowUp),
    NextMain,
    Close,
}

/// The parts of one user message: the candidate's words and the actor's cues.
#[derive(Debug, Default)]
struct UserTurn {
    answer: String,
    start: bool,
    idle: bool,
    time_up: bool,
    respond_now: bool,
}

fn user_turn(content: &str) -> UserTurn {
    let start = Cue::Start.message();
    let idle = Cue::Idle.message();
    let time_up = Cue::TimeUp.message();
    let mut turn = UserTurn::default();
    let mut answer = Vec::new();
    for part in content.split("\n\n") {
        let part = part.trim();
        if part == start {
            turn.start = true;
        } else if part == idle {
            turn.idle = true;
        } else if part == time_up {
            turn.time_up = true;
        } else if part == RESPOND_NOW {
            turn.respond_now = true;
        } else if !part.is_empty() {
            answer.push(part);
        }
    }
    turn.answer = answer.join(" ");
    turn
}

fn word_count(text: &str) -> usize {
    text.split_whitespace().count()
}

/// Ends in a word that says more is coming.
fn sounds_unfinished(answer: &str) -> bool {
    let last = answer
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase();
    let ends_sentence = answer.trim_end().ends_with(['.', '?', '!']);
    !ends_sentence
        && matches!(
            last.as_str(),
            "and" | "but" | "so" | "because" | "um" | "uh" | "or" | "then" | "like"
        )
}

fn decide(plan: &PromptPlan, bank: usize, progress: &Progress, turn: &UserTurn) -> Decision {
    if progress.closed || turn.time_up {
        return Decision::Close;
    }
    if !progress.greeted {
        return Decision::Greet;
    }
    if turn.answer.is_empty() {
        return if turn.idle {
            Decision::CheckIn
        } else {
            Decision::NextMain
        };
    }
    // Waiting makes sense only while the candidate may go on: not after a silence.
    if !turn.respond_now && !turn.idle && sounds_unfinished(&turn.answer) {
        return Decision::Wait;
    }
    let planned = (plan.minutes * 60) as f64;
    if progress.elapsed >= planned {
        return Decision::Close;
    }
    // A drill first probes its own skill, once per question.
    if let Some(drill) = plan.focus
        && progress.follow_ups.len() < MAX_FOLLOW_UPS
        && !progress.follow_ups.contains(&FollowUp::Skill)
        && !drill.shows_skill(&turn.answer)
    {
        return Decision::FollowUp(FollowUp::Skill);
    }
    let shape = answer_shape(&turn.answer);
    if let Some(follow_up) = choose_follow_up(plan.kind, &shape, &progress.follow_ups) {
        return Decision::FollowUp(follow_up);
    }
    if progress.main_asked >= plan.main_question_target(bank) {
        Decision::Close
    } else {
        Decision::NextMain
    }
}

fn apply(progress: &mut Progress, decision: &Decision) {
    match decision {
        Decision::Greet => {
            progress.greeted = true;
            progress.main_asked = 1;
        }
        Decision::NextMain => {
            progress.main_asked += 1;
            progress.follow_ups.clear();
        }
        Decision::FollowUp(follow_up) => progress.follow_ups.push(*follow_up),
        Decision::Close => progress.closed = true,
        Decision::Wait | Decision::CheckIn => {}
    }
}

/// A short acknowledgement, varied by turn.
fn acknowledgement(turn: usize) -> &'static str {
    ["Thank you.", "Got it.", "Okay.", "Understood.", "Thanks."][turn % 5]
}

fn say(plan: &PromptPlan, bank: &[String], progress: &Progress, decision: &Decision) -> String {
    let question = |index: usize| bank.get(index).cloned().unwrap_or_default();
    match decision {
        Decision::Greet => {
            let mut about = format!(
                "This is a {}-minute {} interview",
                plan.minutes,
                plan.kind_name()
            );
            if let Some(role) = &plan.role {
                about.push_str(&format!(" for a {role} role"));
            }
            if let Some(company) = &plan.company {
                about.push_str(&format!(" at {company}"));
            }
            if let Some(drill) = plan.focus {
                about.push_str(&format!(", a drill on {}", drill.skill.replace('_', " ")));
            }
            format!(
                "Hello, and welcome to your practice interview. I am a rule-based program on this \
                 computer, not an AI model: I ask from a question bank and follow up on the shape \
                 of your answers. {about}. {}",
                question(0)
            )
        }
        Decision::Wait => "[WAIT]".to_owned(),
        Decision::CheckIn => format!(
            "Take your time. The question was: {}",
            question(progress.main_asked.saturating_sub(1))
        ),
        Decision::FollowUp(FollowUp::Skill) => match plan.focus {
            Some(drill) => drill.probe.to_owned(),
            None => follow_up_text(plan.kind, FollowUp::Skill).to_owned(),
        },
        Decision::FollowUp(follow_up) => follow_up_text(plan.kind, *follow_up).to_owned(),
        Decision::NextMain => {
            let index = progress.main_asked;
            let last = index + 1 >= plan.main_question_target(bank.len());
            let lead = if last {
                "We are nearly out of time, so one last question."
            } else {
                acknowledgement(progress.turns)
            };
            format!("{lead} {}", question(index))
        }
        Decision::Close => "Thank you, that brings us to the end of this practice interview. \
             Well done for working through it, and good luck with the real one. [END]"
            .to_owned(),
    }
}

/// The interviewer's next reply to a request, a pure function of its system prompt and history.
pub fn next_reply(system: &str, messages: &[ChatMessage]) -> String {
    let plan = PromptPlan::parse(system);
    let bank = question_bank(&plan);
    let mut progress = Progress::default();
    let mut reply = None;
    for (index, message) in messages.iter().enumerate() {
        match message.role {
            Role::Assistant => {
                progress.elapsed += word_count(&message.content) as f64
                    / INTERVIEWER_WORDS_PER_SECOND
                    + TURN_OVERHEAD_SECONDS;
            }
            Role::User => {
                let turn = user_turn(&message.content);
                progress.elapsed += word_count(&turn.answer) as f64 / CANDIDATE_WORDS_PER_SECOND;
                let decision = decide(&plan, bank.len(), &progress, &turn);
                if index + 1 == messages.len() {
                    reply = Some(say(&plan, &bank, &progress, &decision));
                }
                apply(&mut progress, &decision);
                progress.turns += 1;
            }
        }
    }
    reply.unwrap_or_else(|| {
        // No user message last (not sent by the interview actor): check in.
        say(&plan, &bank, &progress, &Decision::CheckIn)
    })
}

/// The local interviewer as a streaming language model.
#[derive(Debug, Clone)]
pub struct LocalInterviewer {
    /// Pause between text deltas.
    pub delta_interval: Duration,
    /// Words per text delta.
    pub words_per_delta: usize,
}

impl Default for LocalInterviewer {
    fn default() -> Self {
        Self {
            delta_interval: Duration::from_millis(12),
            words_per_delta: 3,
        }
    }
}

/// Splits a reply into deltas of `words` words each, keeping the spacing.
fn deltas(text: &str, words: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut count = 0;
    for (i, word) in text.split(' ').enumerate() {
        if i > 0 {
            current.push(' ');
        }
        current.push_str(word);
        count += 1;
        if count >= words.max(1) {
            out.push(std::mem::take(&mut current));
            count = 0;
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[async_trait]
impl LanguageModel for LocalInterviewer {
    async fn stream(&self, request: LlmRequest) -> Result<LlmStream, VendorError> {
        let started = Instant::now();
        let text = next_reply(&request.system, &request.messages);
        let pieces = deltas(&text, self.words_per_delta);
        let interval = self.delta_interval;
        let (events, receiver) = mpsc::channel(EVENT_QUEUE);
        let (cancel, mut cancelled) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let mut report = LlmReport {
                model: MODEL.to_owned(),
                ..LlmReport::default()
            };
            for (i, piece) in pieces.into_iter().enumerate() {
                if i > 0 {
                    tokio::select! {
                        _ = tokio::time::sleep(interval) => {}
                        _ = &mut cancelled => {
                            report.timing.total = started.elapsed();
                            let error = VendorError::new(
                                Vendor::Local,
                                ErrorCategory::Cancelled,
                                "the reply was cancelled",
                            );
                            let _ = events.send(LlmEvent::Failed { error, report }).await;
                            return;
                        }
                    }
                }
                if report.timing.time_to_first_text.is_none() {
                    report.timing.time_to_first_text = Some(started.elapsed());
                }
                report.usage.output_tokens += 1;
                if events.send(LlmEvent::TextDelta(piece)).await.is_err() {
                    return;
                }
            }
            report.timing = LlmTiming {
                total: started.elapsed(),
                ..report.timing
            };
            let _ = events
                .send(LlmEvent::Finished {
                    stop_reason: StopReason::EndTurn,
                    report,
                })
                .await;
        });
        Ok(LlmStream::new(receiver, cancel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::{CandidateProfile, InterviewKind, InterviewPlan, system_prompt};

    fn plan(kind: InterviewKind, minutes: u64) -> InterviewPlan {
        InterviewPlan {
            kind,
            target_role: Some("Backend Engineer".into()),
            company: Some("Acme".into()),
            planned: Duration::from_secs(minutes * 60),
            profile: Some(CandidateProfile {
                role: Some("Software Developer".into()),
                skills: vec!["Rust".into(), "PostgreSQL".into()],
                experience_summary: "Built billing systems.".into(),
                years_experience: Some(6),
            }),
            focus_skill: None,
        }
    }

    const GOOD_ANSWER: &str = "I led the migration of our billing service to a new database. \
        I planned the cut-over, wrote the dual-write code and ran the backfill myself. \
        As a result we reduced invoice latency by 40 percent and saved about 2000 dollars a month.";

    /// A conversation: the start cue, then each answer after the interviewer's reply.
    struct Conversation {
        system: String,
        messages: Vec<ChatMessage>,
    }

    impl Conversation {
        fn new(plan: &InterviewPlan) -> Self {
            Self {
                system: system_prompt(plan),
                messages: Vec::new(),
            }
        }

        fn reply_to(&mut self, user: &str) -> String {
            self.messages.push(ChatMessage::user(user));
            let reply = next_reply(&self.system, &self.messages);
            let spoken = reply.replace("[END]", "");
            if reply != "[WAIT]" {
                self.messages.push(ChatMessage::assistant(spoken.trim()));
            }
            reply
        }

        fn start(&mut self) -> String {
            self.reply_to(&Cue::Start.message())
        }
    }

    #[test]
    fn the_plan_is_read_back_from_the_system_prompt() {
        let parsed = PromptPlan::parse(&system_prompt(&plan(InterviewKind::SystemDesign, 30)));
        assert_eq!(parsed.kind, Kind::SystemDesign);
        assert_eq!(parsed.role.as_deref(), Some("Backend Engineer"));
        assert_eq!(parsed.company.as_deref(), Some("Acme"));
        assert_eq!(parsed.minutes, 30);
        assert_eq!(parsed.current_role.as_deref(), Some("Software Developer"));
        assert_eq!(parsed.skills, vec!["Rust", "PostgreSQL"]);
        let bare = InterviewPlan {
            target_role: Some("Data Scientist".into()),
            company: None,
            profile: None,
            ..plan(InterviewKind::Technical, 15)
        };
        let parsed = PromptPlan::parse(&system_prompt(&bare));
        assert_eq!(parsed.kind, Kind::Technical);
        assert_eq!(parsed.role.as_deref(), Some("Data Scientist"));
        assert_eq!(parsed.company, None);
        assert!(parsed.skills.is_empty());
    }

    #[test]
    fn a_drill_asks_its_skills_questions_and_probes_an_answer_without_it() {
        let drill = InterviewPlan {
            focus_skill: Some("tradeoff_analysis".into()),
            ..plan(InterviewKind::Behavioral, 20)
        };
        let parsed = PromptPlan::parse(&system_prompt(&drill));
        assert_eq!(parsed.focus.map(|d| d.skill), Some("tradeoff_analysis"));
        let mut conversation = Conversation::new(&drill);
        let greeting = conversation.start();
        assert!(
            greeting.contains("a drill on tradeoff analysis"),
            "{greeting}"
        );
        assert!(
            greeting.contains("relational database or in a cache"),
            "the drill's first question: {greeting}"
        );
        // An answer that weighs nothing gets the drill's probe...
        let probe = conversation.reply_to(
            "I would put the sessions in Redis because it is fast, and I have used it before \
             on three projects where it worked well for us.",
        );
        assert_eq!(
            probe,
            local_drills::drill("tradeoff_analysis").unwrap().probe
        );
        // ...and one that weighs an alternative moves on to the drill's next question.
        let next = conversation.reply_to(
            "Instead of Postgres I chose Redis: the downside is losing sessions on a restart, \
             which I accepted because users can sign in again. As a result latency improved \
             by 30 percent.",
        );
        assert!(next.contains("ship in two weeks"), "{next}");
        // Without a drill, the general bank.
        let general = Conversation::new(&plan(InterviewKind::Behavioral, 20)).start();
        assert!(!general.contains("drill"), "{general}");
        assert!(
            PromptPlan::parse(&system_prompt(&plan(InterviewKind::Behavioral, 20)))
                .focus
                .is_none()
        );
    }

    #[test]
    fn greeting_is_honest_and_asks_a_question_for_the_role_and_company() {
        let mut conversation = Conversation::new(&plan(InterviewKind::Behavioral, 20));
        let greeting = conversation.start();
        assert!(greeting.contains("rule-based program"), "{greeting}");
        assert!(greeting.contains("not an AI model"), "{greeting}");
        assert!(
            greeting.contains("behavioral interview for a Backend Engineer role at Acme"),
            "{greeting}"
        );
        assert!(greeting.ends_with('.') && greeting.contains("project you are proud of"));
        let technical = Conversation::new(&plan(InterviewKind::Technical, 20)).start();
        assert!(
            technical.contains("Your resume mentions Rust"),
            "{technical}"
        );
        let design = Conversation::new(&plan(InterviewKind::SystemDesign, 20)).start();
        assert!(design.contains("Here is the problem: design"), "{design}");
    }

    #[test]
    fn follow_up_is_chosen_from_the_shape_of_the_answer() {
        let cases = [
            ("I did some testing.", FollowUp::Example),
            (
                "We moved the reports to a queue and we split the work between the two teams, \
                 and we wrote the new consumer and reviewed it together until our tests passed \
                 and it went live on 3 servers.",
                FollowUp::Personal,
            ),
            (
                "I rewrote the import job in Rust and moved it onto a queue, and I added \
                 retries with backoff and a dead letter table so bad rows could be replayed \
                 later by support across 12 regions.",
                FollowUp::Outcome,
            ),
            (
                "I rewrote the import job in Rust and moved it onto a queue, and I added \
                 retries with backoff and a dead letter table. As a result the nightly run \
                 became much faster and support stopped paging us about it.",
                FollowUp::Quantify,
            ),
        ];
        for (answer, expected) in cases {
            let mut conversation = Conversation::new(&plan(InterviewKind::Behavioral, 20));
            conversation.start();
            let reply = conversation.reply_to(answer);
            assert_eq!(
                reply,
                follow_up_text(Kind::Behavioral, expected),
                "answer: {answer}"
            );
        }
        let long = GOOD_ANSWER.repeat(4);
        let mut conversation = Conversation::new(&plan(InterviewKind::Behavioral, 20));
        conversation.start();
        assert_eq!(
            conversation.reply_to(&long),
            follow_up_text(Kind::Behavioral, FollowUp::OneSentence)
        );
        // A complete answer moves on to the next main question.
        let mut conversation = Conversation::new(&plan(InterviewKind::Behavioral, 20));
        conversation.start();
        let next = conversation.reply_to(GOOD_ANSWER);
        assert!(next.contains("disagreed with a colleague"), "{next}");
    }

    #[test]
    fn follow_ups_are_bounded_and_never_repeated_on_one_question() {
        let mut conversation = Conversation::new(&plan(InterviewKind::Behavioral, 20));
        conversation.start();
        let first = conversation.reply_to("Not sure.");
        let second = conversation.reply_to("Still not sure.");
        let third = conversation.reply_to("No idea.");
        assert_eq!(first, follow_up_text(Kind::Behavioral, FollowUp::Example));
        assert_ne!(second, first);
        assert!(third.contains("disagreed with a colleague"), "{third}");
    }

    #[test]
    fn two_interviews_in_parallel_keep_their_own_progress() {
        let mut one = Conversation::new(&plan(InterviewKind::Behavioral, 20));
        let mut two = Conversation::new(&plan(InterviewKind::Technical, 20));
        assert!(one.start().contains("Hello"));
        assert!(
            one.reply_to(GOOD_ANSWER)
                .contains("disagreed with a colleague")
        );
        // The second interview opens with its own greeting, not the first one's next line.
        let greeting = two.start();
        assert!(greeting.contains("Hello") && greeting.contains("technical interview"));
        let next = one.reply_to(GOOD_ANSWER);
        assert!(next.contains("went wrong"), "{next}");
        assert!(
            two.reply_to(GOOD_ANSWER)
                .contains("Why was it built that way")
        );
    }

    #[test]
    fn closes_with_end_after_the_planned_length_or_when_time_is_up() {
        // Five minutes fit two main questions; full answers exhaust them.
        let mut conversation = Conversation::new(&plan(InterviewKind::Behavioral, 5));
        conversation.start();
        let last = conversation.reply_to(GOOD_ANSWER);
        assert!(last.starts_with("We are nearly out of time"), "{last}");
        let closing = conversation.reply_to(GOOD_ANSWER);
        assert!(closing.ends_with("[END]"), "{closing}");
        // Long answers use up the estimated time before the bank runs out.
        let mut conversation = Conversation::new(&plan(InterviewKind::Behavioral, 2));
        conversation.start();
        let long = GOOD_ANSWER.repeat(5);
        let mut replies = Vec::new();
        for _ in 0..4 {
            replies.push(conversation.reply_to(&long));
        }
        assert!(replies.iter().any(|r| r.ends_with("[END]")), "{replies:#?}");
        // The actor's time-up cue closes at once.
        let mut conversation = Conversation::new(&plan(InterviewKind::Technical, 30));
        conversation.start();
        let closing = conversation.reply_to(&format!("{GOOD_ANSWER}\n\n{}", Cue::TimeUp.message()));
        assert!(closing.ends_with("[END]"), "{closing}");
    }

    #[test]
    fn unfinished_thought_waits_unless_told_to_respond() {
        let mut conversation = Conversation::new(&plan(InterviewKind::Behavioral, 20));
        conversation.start();
        assert_eq!(
            conversation.reply_to("So the first thing I did was, um"),
            "[WAIT]"
        );
        // A silence after the unfinished thought gets an answer, not another wait.
        let mut after_silence = Conversation::new(&plan(InterviewKind::Behavioral, 20));
        after_silence.start();
        let reply = after_silence.reply_to(&format!(
            "So the first thing I did was, um\n\n{}",
            Cue::Idle.message()
        ));
        assert_ne!(reply, "[WAIT]");
        let reply = conversation.reply_to(RESPOND_NOW);
        assert_ne!(reply, "[WAIT]");
        let idle = {
            let mut c = Conversation::new(&plan(InterviewKind::Behavioral, 20));
            c.start();
            c.reply_to(&Cue::Idle.message())
        };
        assert!(
            idle.starts_with("Take your time. The question was:"),
            "{idle}"
        );
    }

    #[tokio::test]
    async fn streams_the_reply_in_small_deltas_and_reports_no_cost() {
        let interviewer = LocalInterviewer::default();
        let request = LlmRequest {
            system: system_prompt(&plan(InterviewKind::Behavioral, 20)),
            messages: vec![ChatMessage::user(Cue::Start.message())],
            ..LlmRequest::default()
        };
        let mut stream = interviewer.stream(request.clone()).await.expect("stream");
        let mut deltas = Vec::new();
        let terminal = loop {
            match stream.next().await.expect("an event") {
                LlmEvent::TextDelta(text) => deltas.push(text),
                terminal => break terminal,
            }
        };
        assert!(deltas.len() > 5, "{deltas:?}");
        assert!(deltas.iter().all(|d| d.split_whitespace().count() <= 3));
        assert_eq!(
            deltas.concat(),
            next_reply(&request.system, &request.messages)
        );
        let LlmEvent::Finished { report, .. } = terminal else {
            panic!("{terminal:?}")
        };
        assert_eq!(report.cost_usd, 0.0);
        assert_eq!(report.model, MODEL);
        assert!(report.timing.time_to_first_text.is_some());
        // Cancelling mid-stream ends it with a cancelled failure.
        let stream = interviewer.stream(request).await.expect("stream");
        let report = stream.cancel().await.expect("a report");
        assert_eq!(report.model, MODEL);
    }
}
