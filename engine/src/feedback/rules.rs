//! The local rule-based scorer: the 15 rules of FEEDBACK.md §2 over the candidate's words
//! (structure cues, numbers, ownership pronouns, length, fillers, tradeoff words), category
//! scores, an overall score, a confidence and a short improved answer.
//!
//! Every finding's evidence is a span of the answer's own words ([`super::evidence::span`]).

use serde::{Deserialize, Serialize};

use super::evidence::span;
use super::segments::Segment;
use super::text::{fillers, find_any, is_number, normalize, positions_of};
use super::{
    AnswerKind, AnswerScore, Category, CategoryScores, Confidence, FeedbackConfig, Finding, Word,
};

/// The rubric's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    NoStarStructure,
    MissingResult,
    ResultNotSpecific,
    MissingMetrics,
    NoTradeoff,
    NoAssumptions,
    ShallowFollowup,
    Rambling,
    FillerSpike,
    NoOwnership,
    NoScaleThinking,
    NoStakeholderMgmt,
    NoMentoringSignal,
    WeakAnchor,
    EarlyConcession,
}

use AnswerKind::{Behavioral, Negotiation, SystemDesign, Technical};

impl Rule {
    pub const ALL: [Rule; 15] = [
        Rule::NoStarStructure,
        Rule::MissingResult,
        Rule::ResultNotSpecific,
        Rule::MissingMetrics,
        Rule::NoTradeoff,
        Rule::NoAssumptions,
        Rule::ShallowFollowup,
        Rule::Rambling,
        Rule::FillerSpike,
        Rule::NoOwnership,
        Rule::NoScaleThinking,
        Rule::NoStakeholderMgmt,
        Rule::NoMentoringSignal,
        Rule::WeakAnchor,
        Rule::EarlyConcession,
    ];

    /// The rule's id as stored and served (`no_star_structure`, ...).
    pub fn id(self) -> &'static str {
        match self {
            Rule::NoStarStructure => "no_star_structure",
            Rule::MissingResult => "missing_result",
            Rule::ResultNotSpecific => "result_not_specific",
            Rule::MissingMetrics => "missing_metrics",
            Rule::NoTradeoff => "no_tradeoff",
            Rule::NoAssumptions => "no_assumptions",
            Rule::ShallowFollowup => "shallow_followup",
            Rule::Rambling => "rambling",
            Rule::FillerSpike => "filler_spike",
            Rule::NoOwnership => "no_ownership",
            Rule::NoScaleThinking => "no_scale_thinking",
            Rule::NoStakeholderMgmt => "no_stakeholder_mgmt",
            Rule::NoMentoringSignal => "no_mentoring_signal",
            Rule::WeakAnchor => "weak_anchor",
            Rule::EarlyConcession => "early_concession",
        }
    }

    pub fn from_id(id: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.id() == id)
    }

    pub fn category(self) -> Category {
        match self {
            Rule::NoStarStructure
            | Rule::MissingResult
            | Rule::ResultNotSpecific
            | Rule::MissingMetrics => Category::Structure,
            Rule::NoTradeoff | Rule::NoAssumptions | Rule::ShallowFollowup => Category::Depth,
            Rule::Rambling | Rule::FillerSpike | Rule::NoOwnership => Category::Communication,
            Rule::NoScaleThinking
            | Rule::NoStakeholderMgmt
            | Rule::NoMentoringSignal
            | Rule::WeakAnchor
            | Rule::EarlyConcession => Category::SenioritySignal,
        }
    }

    /// Which interview kinds the rule applies to.
    pub fn applies(self, kind: AnswerKind) -> bool {
        match self {
            Rule::NoStarStructure
            | Rule::NoOwnership
            | Rule::NoStakeholderMgmt
            | Rule::NoMentoringSignal => kind == Behavioral,
            Rule::NoTradeoff => matches!(kind, SystemDesign | Behavioral | Technical),
            Rule::NoAssumptions => kind == SystemDesign,
            Rule::NoScaleThinking => matches!(kind, SystemDesign | Technical),
            Rule::WeakAnchor | Rule::EarlyConcession => kind == Negotiation,
            Rule::MissingResult
            | Rule::ResultNotSpecific
            | Rule::MissingMetrics
            | Rule::ShallowFollowup
            | Rule::Rambling
            | Rule::FillerSpike => true,
        }
    }

    /// Points a strong finding takes off its category (a weak one takes `weak_share` of it).
    pub fn weight(self) -> u32 {
        match self {
            Rule::NoStarStructure | Rule::NoTradeoff | Rule::NoOwnership => 30,
            Rule::NoScaleThinking => 30,
            Rule::WeakAnchor | Rule::EarlyConcession => 35,
            Rule::MissingResult | Rule::NoAssumptions | Rule::ShallowFollowup => 25,
            Rule::Rambling | Rule::FillerSpike => 25,
            Rule::MissingMetrics | Rule::NoStakeholderMgmt => 20,
            Rule::ResultNotSpecific | Rule::NoMentoringSignal => 15,
        }
    }

    /// When the rule fires and when it does not, for a scorer that reads the answer (the
    /// language model's rubric); the local rules implement the same judgement with cues.
    pub fn definition(self) -> &'static str {
        match self {
            Rule::NoStarStructure => {
                "The story has no recognisable shape: the listener cannot tell the situation, \
                 the candidate's task, what they did and how it ended. Fires when two or more of \
                 the four parts are missing. Does not fire for a short, complete story that \
                 merges situation and task in one sentence."
            }
            Rule::MissingResult => {
                "The answer never says how things turned out: no outcome, no 'so', no 'in the \
                 end', the story stops at the actions. Does not fire when any outcome is stated, \
                 even a failure ('it did not work, and I learned...')."
            }
            Rule::ResultNotSpecific => {
                "An outcome is stated but only as a vague judgement ('it went well', 'everyone \
                 was happy', 'it was a success') with nothing observable. Does not fire when the \
                 outcome names something checkable (a number, a date met, a decision taken)."
            }
            Rule::MissingMetrics => {
                "No quantity anywhere in the answer: no number of users, requests, money, time, \
                 percentage, size or count. Number words count ('twice', 'a dozen', 'half'). \
                 Does not fire for an answer with any concrete quantity."
            }
            Rule::NoTradeoff => {
                "The candidate presents a choice as the only option: no alternative considered, \
                 no cost accepted, no 'instead of', 'rather than', 'the downside was'. Does not \
                 fire when at least one alternative or cost is named."
            }
            Rule::NoAssumptions => {
                "A design answer dives into components without stating what it assumes: no \
                 scale, traffic, data size, read/write mix or requirement is named or estimated. \
                 Does not fire when one assumption or estimate is stated, even roughly."
            }
            Rule::ShallowFollowup => {
                "The question was a follow-up asking for more depth and the answer stays at the \
                 level it was at: it restates, generalises or is very short, with no new detail, \
                 example or mechanism. Only for answers to follow-up questions."
            }
            Rule::Rambling => {
                "The answer runs far past two minutes of speech, repeats itself or wanders to \
                 other topics before making its point. Does not fire for a long answer that stays \
                 on one line of argument."
            }
            Rule::FillerSpike => {
                "Filler words (um, uh, like, you know, basically, literally, so, actually, kind \
                 of, sort of) come more than about three a minute, enough to distract. A few \
                 fillers in a long answer do not fire it."
            }
            Rule::NoOwnership => {
                "The candidate says 'we' throughout and never says what they personally did or \
                 decided. Does not fire when at least one action or decision is clearly theirs \
                 ('I wrote', 'I proposed', 'my part was')."
            }
            Rule::NoScaleThinking => {
                "A design or technical answer never considers growth: nothing on what happens at \
                 ten times the load, where the bottleneck is, how to shard, cache or replicate. \
                 Does not fire when growth or a bottleneck is discussed at all."
            }
            Rule::NoStakeholderMgmt => {
                "A story about work that clearly involved other people (a manager, another team, \
                 customers) says nothing about how the candidate involved, convinced or kept them \
                 informed. Does not fire for a solo task or when anyone else's buy-in is handled."
            }
            Rule::NoMentoringSignal => {
                "A story of senior work gives no sign the candidate helped anyone else grow: no \
                 teaching, reviewing, pairing, onboarding or delegating. A weak signal: flag it \
                 only when the story had a natural place for it."
            }
            Rule::WeakAnchor => {
                "In a negotiation the first number is missing, hedged ('I don't know, maybe...'), \
                 below the market or given as a wide range starting low. Does not fire for a \
                 specific, confident number with a reason."
            }
            Rule::EarlyConcession => {
                "In a negotiation the candidate gives ground before hearing the offer or without \
                 getting anything in return ('whatever works for you', 'I can go lower'). Does \
                 not fire for a trade ('I can do that if...')."
            }
        }
    }

    /// What to do instead.
    pub fn fix(self) -> &'static str {
        match self {
            Rule::NoStarStructure => {
                "Shape the story: the situation, your task, the actions you took, and the result."
            }
            Rule::MissingResult => "Close with the outcome: what changed because of your work.",
            Rule::ResultNotSpecific => {
                "Replace \"it went well\" with a measurable outcome: before, after, and by when."
            }
            Rule::MissingMetrics => {
                "Put a number on it: users, latency, money, time saved, or error rate."
            }
            Rule::NoTradeoff => "Name the alternative you weighed and why you chose against it.",
            Rule::NoAssumptions => {
                "State your assumptions and a rough estimate (users, requests per second, data size) first."
            }
            Rule::ShallowFollowup => {
                "When asked to go deeper, give one concrete detail or example rather than a general answer."
            }
            Rule::Rambling => {
                "Keep answers under two minutes: lead with the point, then one supporting example."
            }
            Rule::FillerSpike => "Pause silently instead of filling the gap with filler words.",
            Rule::NoOwnership => {
                "Say what you did yourself: \"I decided\", \"I built\", not only \"we\"."
            }
            Rule::NoScaleThinking => {
                "Say what breaks first at ten times the load, and how you would scale past it."
            }
            Rule::NoStakeholderMgmt => {
                "Mention who else was involved and how you kept them aligned."
            }
            Rule::NoMentoringSignal => "Show how you helped others on the team grow.",
            Rule::WeakAnchor => {
                "Open with a specific, ambitious number backed by market data, without hedging."
            }
            Rule::EarlyConcession => {
                "Do not concede before you have heard the full offer; ask questions first."
            }
        }
    }
}

#[rustfmt::skip]
const SITUATION: &[&str] = &[
    "when i was", "at my last", "at my previous", "at my current", "we were", "situation",
    "context", "background", "last year", "years ago", "at the time", "our team", "the company",
    "there was", "back when", "i was working", "i joined",
];
#[rustfmt::skip]
const TASK: &[&str] = &[
    "my goal", "the goal", "task", "needed to", "had to", "responsible for", "asked to",
    "my job was", "my role was", "challenge was", "problem was", "objective", "we needed",
    "i needed", "the issue was",
];
#[rustfmt::skip]
const RESULT: &[&str] = &[
    "as a result", "result", "results", "resulted", "in the end", "outcome", "ended up", "reduced",
    "increased", "improved", "saved", "cut", "grew", "shipped", "launched", "went from", "dropped",
    "delivered", "succeeded", "which meant", "led to", "went well", "it worked", "worked well",
    "worked out", "was successful", "finished", "fell", "doubled", "halved", "faster",
];
#[rustfmt::skip]
const VAGUE: &[&str] = &[
    "went well", "it worked", "worked well", "worked out", "was good", "was fine", "pretty well",
    "was successful", "everyone was happy", "people liked it", "was a success", "was great",
    "pretty good", "went great", "turned out well", "it was better", "a lot better",
];
#[rustfmt::skip]
const PAST_IRREGULAR: &[&str] = &[
    "built", "wrote", "led", "ran", "took", "made", "brought", "set", "met", "chose", "drove",
    "spent", "sent", "found", "gave", "began", "did", "put", "got", "taught", "went", "kept",
    "told", "sold", "won", "rebuilt", "rewrote", "split", "sat", "spoke", "caught", "fixed",
];
#[rustfmt::skip]
const TRADEOFF: &[&str] = &[
    "tradeoff", "tradeoffs", "trade-off", "trade-offs", "trade off", "instead of", "rather than",
    "alternative", "alternatives", "option", "options", "on the other hand", "versus", "vs",
    "downside", "downsides", "drawback", "drawbacks", "cost of", "pros", "cons", "compared to",
    "weighed", "considered", "decided against", "at the expense", "in exchange", "the catch",
];
#[rustfmt::skip]
const ASSUME: &[&str] = &[
    "assume", "assuming", "assumption", "assumptions", "estimate", "estimated", "estimating",
    "roughly", "approximately", "back of the envelope", "let's say", "lets say", "suppose",
    "ballpark", "order of magnitude", "per second", "qps", "requests per",
];
#[rustfmt::skip]
const FOLLOWUP: &[&str] = &[
    "why", "how did", "how would", "how do you", "deeper", "more detail", "walk me through",
    "elaborate", "specifically", "what exactly", "can you explain", "tell me more", "what would",
    "how did you know", "go further",
];
#[rustfmt::skip]
const DEFLECT: &[&str] = &[
    "not sure", "don't know", "dont know", "don't remember", "can't remember", "no idea",
    "i guess", "hard to say", "i forget", "not really", "i don't recall",
];
const WE: &[&str] = &["we", "our", "us", "we're", "we've", "ourselves", "we'd"];
#[rustfmt::skip]
const I: &[&str] = &[
    "i", "my", "me", "i'm", "i've", "myself", "i'd", "i'll", "mine",
];
#[rustfmt::skip]
const SCALE: &[&str] = &[
    "scale", "scaling", "scales", "scalable", "million", "millions", "billion", "users", "traffic",
    "load", "throughput", "shard", "sharding", "partition", "partitioning", "replica", "replicas",
    "replication", "cache", "caching", "horizontal", "horizontally", "bottleneck", "growth",
    "peak", "qps", "concurrent", "concurrency", "distributed", "large inputs", "big o",
    "complexity",
];
#[rustfmt::skip]
const STAKEHOLDER: &[&str] = &[
    "stakeholder", "stakeholders", "manager", "product manager", "customer", "customers", "client",
    "clients", "leadership", "director", "aligned", "alignment", "align", "convinced",
    "negotiated", "expectations", "cross-functional", "partner", "partners", "vp", "ceo", "cto",
    "design team", "sales", "support team", "legal", "finance",
];
#[rustfmt::skip]
const MENTOR: &[&str] = &[
    "mentor", "mentored", "mentoring", "coached", "coaching", "taught", "teach", "onboarded",
    "onboarding", "junior", "juniors", "paired", "pairing", "trained", "training", "grow",
    "helped them", "helped him", "helped her", "intern", "interns", "knowledge sharing",
];
#[rustfmt::skip]
const HEDGE: &[&str] = &[
    "maybe", "around", "perhaps", "i was thinking", "hoping", "if possible", "flexible", "i guess",
    "somewhere", "would it be okay", "is that okay", "not sure",
];
#[rustfmt::skip]
const CONCEDE: &[&str] = &[
    "i can accept", "i'd accept", "i accept", "that's fine", "that works", "i'll take",
    "okay with", "fine with", "i could go lower", "i can go lower", "i can be flexible",
    "whatever you", "lower is fine", "happy to accept", "i can take less", "no problem with",
];

/// Words of the answer as comparable tokens, one per word (so token positions are word
/// positions).
fn word_tokens(words: &[Word]) -> Vec<String> {
    words.iter().map(|w| normalize(&w.text)).collect()
}

/// A rule that fired: its confidence and the span of words it points at.
struct Hit {
    confidence: Confidence,
    start: usize,
    len: usize,
}

fn hit(confidence: Confidence, start: usize, len: usize) -> Option<Hit> {
    Some(Hit {
        confidence,
        start,
        len,
    })
}

/// Length of evidence for a rule about something absent: the opening words.
const OPENING_WORDS: usize = 12;

fn action_cue(tokens: &[String]) -> Option<usize> {
    tokens.windows(2).position(|pair| {
        pair[0] == "i"
            && (PAST_IRREGULAR.contains(&pair[1].as_str())
                || (pair[1].len() > 3 && pair[1].ends_with("ed")))
    })
}

/// The window of `len` words holding the most of `positions`.
fn densest(positions: &[usize], len: usize) -> usize {
    positions
        .iter()
        .copied()
        .max_by_key(|&start| {
            (
                positions
                    .iter()
                    .filter(|&&p| p >= start && p < start + len)
                    .count(),
                std::cmp::Reverse(start),
            )
        })
        .unwrap_or(0)
}

/// Speaking time of a segment in minutes (the spans of its turns).
pub fn speaking_minutes(segment: &Segment) -> f64 {
    let ms: i64 = segment.spans.iter().map(|(s, e)| (e - s).max(0)).sum();
    ms as f64 / 60_000.0
}

fn check(rule: Rule, config: &FeedbackConfig, segment: &Segment, t: &[String]) -> Option<Hit> {
    use Confidence::{Strong, Weak};
    let n = t.len();
    let long = n >= 40;
    let has_number = t.iter().any(|x| is_number(x));
    let kind_strength = |strong: bool| if strong { Strong } else { Weak };
    match rule {
        Rule::NoStarStructure => {
            let groups = [
                find_any(t, SITUATION).is_some(),
                find_any(t, TASK).is_some(),
                action_cue(t).is_some(),
                find_any(t, RESULT).is_some(),
            ];
            let present = groups.iter().filter(|g| **g).count();
            (present < 3).then(|| Hit {
                confidence: kind_strength(present <= 1),
                start: 0,
                len: OPENING_WORDS,
            })
        }
        Rule::MissingResult => match find_any(t, RESULT) {
            Some(_) => None,
            None => hit(
                kind_strength(long),
                n.saturating_sub(OPENING_WORDS),
                OPENING_WORDS,
            ),
        },
        Rule::ResultNotSpecific => {
            let (start, len) = find_any(t, VAGUE)?;
            let around = &t[start.saturating_sub(6)..(start + len + 12).min(n)];
            if around.iter().any(|x| is_number(x)) {
                return None;
            }
            hit(kind_strength(!has_number), start, len)
        }
        Rule::MissingMetrics => {
            if has_number {
                return None;
            }
            let start = find_any(t, RESULT).map_or(0, |(s, _)| s);
            hit(kind_strength(long), start, OPENING_WORDS)
        }
        Rule::NoTradeoff => match find_any(t, TRADEOFF) {
            Some(_) => None,
            None => hit(Strong, 0, OPENING_WORDS),
        },
        Rule::NoAssumptions => match find_any(t, ASSUME) {
            Some(_) => None,
            None => hit(Strong, 0, OPENING_WORDS),
        },
        Rule::ShallowFollowup => {
            if !is_followup(segment) {
                return None;
            }
            if let Some((start, len)) = find_any(t, DEFLECT) {
                return hit(Strong, start, len.max(6));
            }
            (n < config.followup_min_words).then_some(Hit {
                confidence: Weak,
                start: 0,
                len: OPENING_WORDS,
            })
        }
        Rule::Rambling => {
            let (over, strong, from) = if segment.timed {
                let secs = segment.duration_secs();
                let limit = segment.start_ms() + (config.rambling_secs * 1000.0) as i64;
                let from = segment
                    .words
                    .iter()
                    .position(|w| w.start_ms >= limit)
                    .unwrap_or(0);
                (
                    secs > config.rambling_secs,
                    secs > config.rambling_strong_secs,
                    from,
                )
            } else {
                (
                    n > config.rambling_words,
                    n > config.rambling_words * 3 / 2,
                    config.rambling_words.min(n.saturating_sub(1)),
                )
            };
            over.then(|| Hit {
                confidence: kind_strength(strong),
                start: from,
                len: OPENING_WORDS,
            })
        }
        Rule::FillerSpike => {
            let found = fillers(t);
            if found.len() < config.filler_spike_min_count {
                return None;
            }
            let minutes = if segment.timed {
                speaking_minutes(segment)
            } else {
                n as f64 / 150.0
            }
            .max(0.25);
            let per_minute = found.len() as f64 / minutes;
            if per_minute <= config.filler_spike_per_minute {
                return None;
            }
            let positions: Vec<usize> = found.iter().map(|(s, _, _)| *s).collect();
            hit(
                kind_strength(per_minute > 2.0 * config.filler_spike_per_minute),
                densest(&positions, OPENING_WORDS),
                OPENING_WORDS,
            )
        }
        Rule::NoOwnership => {
            let we = positions_of(t, WE);
            let i = positions_of(t, I).len();
            (we.len() >= config.ownership_min_we && i * config.ownership_we_per_i < we.len()).then(
                || Hit {
                    confidence: kind_strength(i == 0),
                    start: we[0],
                    len: 10,
                },
            )
        }
        Rule::NoScaleThinking => match find_any(t, SCALE) {
            Some(_) => None,
            None => hit(Strong, 0, OPENING_WORDS),
        },
        Rule::NoStakeholderMgmt => match find_any(t, STAKEHOLDER) {
            Some(_) => None,
            None => hit(Weak, 0, OPENING_WORDS),
        },
        Rule::NoMentoringSignal => match find_any(t, MENTOR) {
            Some(_) => None,
            None => hit(Weak, 0, OPENING_WORDS),
        },
        Rule::WeakAnchor => {
            let Some(first) = t.iter().position(|x| is_number(x)) else {
                return hit(Strong, 0, OPENING_WORDS);
            };
            let before = &t[first.saturating_sub(6)..first];
            if let Some((start, _)) = find_any(before, HEDGE) {
                let start = first.saturating_sub(6) + start;
                return hit(Strong, start, first - start + 1);
            }
            let after = &t[first + 1..(first + 4).min(n)];
            find_any(after, &["or less", "or lower", "or so"]).map(|_| Hit {
                confidence: Weak,
                start: first,
                len: 4,
            })
        }
        Rule::EarlyConcession => {
            let (start, len) = find_any(t, CONCEDE)?;
            hit(Strong, start, len.max(6))
        }
    }
}

/// Whether the segment answers a follow-up ("why?", "how did you know?") rather than opening a
/// topic: a follow-up is judged on depth, not on the shape of a whole story.
pub fn is_followup(segment: &Segment) -> bool {
    segment.index > 0 && find_any(&super::text::tokens(&segment.question), FOLLOWUP).is_some()
}

/// Rules about a whole story's shape, not applied to answers to follow-ups.
const STORY_RULES: [Rule; 3] = [
    Rule::NoStarStructure,
    Rule::NoStakeholderMgmt,
    Rule::NoMentoringSignal,
];

/// The local scorer's verdict on one answer.
pub fn score_segment(config: &FeedbackConfig, kind: AnswerKind, segment: &Segment) -> AnswerScore {
    let t = word_tokens(&segment.words);
    let mut findings = Vec::new();
    let followup = is_followup(segment);
    let applicable = Rule::ALL
        .into_iter()
        .filter(|r| r.applies(kind) && !(followup && STORY_RULES.contains(r)));
    for rule in applicable {
        if let Some(mut found) = check(rule, config, segment, &t) {
            // Secondary rules for a kind count weakly.
            let secondary = matches!(
                (rule, kind),
                (Rule::NoTradeoff, Behavioral) | (Rule::NoScaleThinking, Technical)
            );
            if secondary {
                found.confidence = Confidence::Weak;
            }
            findings.push(Finding {
                rule,
                confidence: found.confidence,
                evidence: span(&segment.words, found.start, found.len),
                fix: rule.fix().to_owned(),
                impact: impact(config, rule, found.confidence),
            });
        }
    }
    let categories = category_scores(&findings);
    let overall = overall(config, &findings);
    let confidence = confidence(segment);
    let improved_answer = improved_answer(kind, segment, &findings);
    AnswerScore {
        findings,
        categories,
        overall,
        confidence,
        improved_answer,
        scorer: LOCAL_RULES,
    }
}

/// The local scorer's name, as stored with its scores.
pub const LOCAL_RULES: &str = "local_rules";

/// Points a finding takes off.
pub fn impact(config: &FeedbackConfig, rule: Rule, confidence: Confidence) -> u32 {
    match confidence {
        Confidence::Strong => rule.weight(),
        Confidence::Weak => (f64::from(rule.weight()) * config.weak_share).round() as u32,
    }
}

/// Category scores: 100 minus the impacts of the category's findings, at least 0.
pub fn category_scores(findings: &[Finding]) -> CategoryScores {
    let score = |category: Category| {
        let lost: u32 = findings
            .iter()
            .filter(|f| f.rule.category() == category)
            .map(|f| f.impact)
            .sum();
        (100.0 - f64::from(lost)).max(0.0)
    };
    CategoryScores {
        structure: score(Category::Structure),
        depth: score(Category::Depth),
        communication: score(Category::Communication),
        seniority_signal: score(Category::SenioritySignal),
    }
}

/// The overall score: 100 minus `overall_per_point` (0.6) of every finding's impact, within
/// 0–100, to one decimal. (A mean of the category scores would let one clean category hide
/// four failing ones.)
pub fn overall(config: &FeedbackConfig, findings: &[Finding]) -> f64 {
    let lost: u32 = findings.iter().map(|f| f.impact).sum();
    let score = (100.0 - config.overall_per_point * f64::from(lost)).clamp(0.0, 100.0);
    (score * 10.0).round() / 10.0
}

/// Longer answers with their own word times give more certain scores.
pub fn confidence(segment: &Segment) -> f64 {
    let by_length = (segment.words.len() as f64 / 80.0).min(1.0);
    let timing = if segment.timed { 1.0 } else { 0.8 };
    ((by_length * timing).max(0.1) * 100.0).round() / 100.0
}

/// Longest improved answer, in words of the candidate's own text kept.
const IMPROVED_KEEP_WORDS: usize = 60;

/// A short improved version: the candidate's words without fillers (and with "I" for "we" when
/// ownership was missing), cut to the point, then the missing parts as fill-in sentences.
pub fn improved_answer(kind: AnswerKind, segment: &Segment, findings: &[Finding]) -> String {
    let fired = |rule: Rule| findings.iter().any(|f| f.rule == rule);
    let tokens: Vec<String> = segment.words.iter().map(|w| normalize(&w.text)).collect();
    let filler_at: std::collections::HashSet<usize> = fillers(&tokens)
        .into_iter()
        .flat_map(|(s, len, _)| s..s + len)
        .collect();
    let mut kept: Vec<String> = segment
        .words
        .iter()
        .enumerate()
        .filter(|(i, _)| !filler_at.contains(i))
        .map(|(i, w)| {
            if fired(Rule::NoOwnership) {
                match tokens[i].as_str() {
                    "we" => return "I".to_owned(),
                    "our" => return "my".to_owned(),
                    _ => {}
                }
            }
            w.text.trim_matches(',').to_owned()
        })
        .filter(|w| !w.is_empty())
        .collect();
    kept.truncate(IMPROVED_KEEP_WORDS);
    let mut text = kept.join(" ");
    if !text.ends_with(['.', '!', '?']) {
        text.push('.');
    }
    let mut parts = Vec::new();
    if fired(Rule::NoStarStructure) && kind == Behavioral {
        parts.push("When [the situation], my task was [the goal].".to_owned());
    }
    parts.push(text);
    let additions: [(Rule, &str); 11] = [
        (
            Rule::ShallowFollowup,
            "Specifically, [the concrete detail asked for], for example [one example].",
        ),
        (
            Rule::NoAssumptions,
            "I assumed [N users] and [M requests per second], which means [a capacity estimate].",
        ),
        (
            Rule::NoTradeoff,
            "I chose this over [the alternative] because [the reason], accepting [the cost].",
        ),
        (
            Rule::NoScaleThinking,
            "At ten times the load, [the bottleneck] breaks first, so I would [shard, cache or queue].",
        ),
        (
            Rule::NoStakeholderMgmt,
            "I kept [the stakeholders] aligned by [how].",
        ),
        (
            Rule::NoMentoringSignal,
            "I also helped [a teammate] grow by [how].",
        ),
        (
            Rule::MissingResult,
            "As a result, [the key metric] went from [before] to [after] within [time].",
        ),
        (
            Rule::ResultNotSpecific,
            "Concretely, [the metric] improved by [N%] within [time].",
        ),
        (
            Rule::MissingMetrics,
            "That meant [a number: users, latency, money or time saved].",
        ),
        (
            Rule::WeakAnchor,
            "Based on market data for this role, I am looking for [a specific, ambitious figure].",
        ),
        (
            Rule::EarlyConcession,
            "Before we settle, I would like to understand the whole package.",
        ),
    ];
    let mut result_added = false;
    for (rule, sentence) in additions {
        let is_result = matches!(
            rule,
            Rule::MissingResult | Rule::ResultNotSpecific | Rule::MissingMetrics
        );
        if fired(rule) && !(is_result && result_added) {
            result_added |= is_result;
            parts.push(sentence.to_owned());
        }
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::super::segments::Segment;
    use super::*;

    fn segment(index: usize, question: &str, answer: &str, ms_per_word: i64) -> Segment {
        let words: Vec<Word> = answer
            .split_whitespace()
            .enumerate()
            .map(|(i, w)| Word {
                text: w.into(),
                start_ms: 60_000 + i as i64 * ms_per_word,
                end_ms: 60_000 + i as i64 * ms_per_word + ms_per_word * 3 / 4,
            })
            .collect();
        let spans = vec![(
            words.first().unwrap().start_ms,
            words.last().unwrap().end_ms,
        )];
        Segment {
            index,
            question: question.into(),
            words,
            turn_ids: Vec::new(),
            timed: true,
            spans,
        }
    }

    fn rules_of(score: &AnswerScore) -> Vec<&'static str> {
        score.findings.iter().map(|f| f.rule.id()).collect()
    }

    #[test]
    fn every_rule_has_a_distinct_id_that_round_trips() {
        for rule in Rule::ALL {
            assert_eq!(Rule::from_id(rule.id()), Some(rule));
            let json = serde_json::to_string(&rule).unwrap();
            assert_eq!(json, format!("\"{}\"", rule.id()));
        }
    }

    #[test]
    fn a_vague_we_story_gets_findings_quoting_its_own_words() {
        let config = FeedbackConfig::default();
        let s = segment(
            0,
            "Tell me about a project you are proud of.",
            "We worked on the search page and we made it better for our users, and we shipped \
             it on time and it went well for the whole group in the end.",
            400,
        );
        let score = score_segment(&config, AnswerKind::Behavioral, &s);
        let rules = rules_of(&score);
        for expected in ["no_ownership", "result_not_specific", "missing_metrics"] {
            assert!(rules.contains(&expected), "{expected} in {rules:?}");
        }
        let vague = score
            .findings
            .iter()
            .find(|f| f.rule == Rule::ResultNotSpecific)
            .unwrap();
        assert_eq!(vague.evidence.quote, "went well");
        assert_eq!(vague.evidence.start_ms, 60_000 + 22 * 400);
        let answer = s.answer_text();
        for finding in &score.findings {
            assert!(answer.contains(&finding.evidence.quote), "{finding:?}");
        }
        assert!(
            score
                .improved_answer
                .contains("I worked on the search page")
        );
        assert!(score.overall < 80.0, "{}", score.overall);
    }

    #[test]
    fn a_long_answer_rambles_from_the_two_minute_mark() {
        let config = FeedbackConfig::default();
        // 200 words at 750 ms each: 150 s.
        let answer = "I designed the cache layer and measured it carefully each week ".repeat(20);
        let s = segment(0, "Design a cache.", &answer, 750);
        let score = score_segment(&config, AnswerKind::SystemDesign, &s);
        let rambling = score
            .findings
            .iter()
            .find(|f| f.rule == Rule::Rambling)
            .expect("rambling");
        assert_eq!(rambling.confidence, Confidence::Weak, "under 180 s");
        assert_eq!(rambling.evidence.start_ms, 60_000 + 160 * 750);
    }

    #[test]
    fn overall_loses_a_share_of_every_impact() {
        let config = FeedbackConfig::default();
        let finding = |rule: Rule, confidence: Confidence| Finding {
            rule,
            confidence,
            evidence: span(&[], 0, 1),
            fix: String::new(),
            impact: impact(&config, rule, confidence),
        };
        let findings = vec![
            finding(Rule::NoTradeoff, Confidence::Strong),
            finding(Rule::MissingMetrics, Confidence::Weak),
        ];
        // 30 + 10 points at 0.6 each.
        assert_eq!(overall(&config, &findings), 76.0);
        assert_eq!(category_scores(&findings).depth, 70.0);
        assert_eq!(category_scores(&findings).structure, 90.0);
        let many: Vec<Finding> = (0..10)
            .map(|_| finding(Rule::WeakAnchor, Confidence::Strong))
            .collect();
        assert_eq!(overall(&config, &many), 0.0);
    }
}
