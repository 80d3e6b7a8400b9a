//! The local interviewer's drills: for each of the 24 microskills (FEEDBACK.md §3), the main
//! questions that exercise it, the probe it asks when an answer shows no sign of the skill,
//! and the words that count as such a sign. A drill started from the drill plan ("practise
//! this") names its skill in the system prompt; the local interviewer then asks from here
//! instead of its general bank, so a keyless drill practises what it says it does.

use crate::feedback::text;

/// One microskill's drill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drill {
    pub skill: &'static str,
    /// Main questions, in order.
    pub questions: [&'static str; 3],
    /// Asked once per question when the answer has none of [`Drill::signs`].
    pub probe: &'static str,
    /// Words or phrases (lower case) whose presence shows the skill being used.
    pub signs: &'static [&'static str],
}

/// A conciseness drill's answer shows the skill when it stays within this many words.
const CONCISE_WORDS: usize = 60;

impl Drill {
    /// Whether `answer` shows the skill: any of its signs as whole words or phrases, or a
    /// special sign: `#number` (states a quantity), `#short` (at most [`CONCISE_WORDS`]),
    /// `#no-fillers` (no filler words).
    pub fn shows_skill(&self, answer: &str) -> bool {
        let tokens = text::tokens(answer);
        let phrases: Vec<&str> = self
            .signs
            .iter()
            .copied()
            .filter(|sign| !sign.starts_with('#'))
            .collect();
        text::find_any(&tokens, &phrases).is_some()
            || self.signs.iter().any(|sign| match *sign {
                "#number" => tokens.iter().any(|t| text::is_number(t)),
                "#short" => tokens.len() <= CONCISE_WORDS,
                "#no-fillers" => text::fillers(&tokens).is_empty(),
                _ => false,
            })
    }
}

/// The drill of a microskill, if `skill` is one.
pub fn drill(skill: &str) -> Option<&'static Drill> {
    DRILLS.iter().find(|d| d.skill == skill)
}

/// Every microskill's drill, in the order of `feedback::skills::MICROSKILLS`.
pub const DRILLS: [Drill; 24] = [
    Drill {
        skill: "capacity_estimation",
        questions: [
            "Let's estimate. How much storage does a photo-sharing app with ten million daily users need per year? Walk me through your numbers.",
            "Estimate the peak requests per second of a food delivery app in one large city at dinner time.",
            "How many servers would a video call service need for one hundred thousand concurrent calls? State your assumptions.",
        ],
        probe: "Put numbers on it: what are your assumptions, and what does that come to per second or per day?",
        signs: &[
            "#number",
            "per second",
            "per day",
            "assume",
            "assuming",
            "roughly",
            "about",
            "estimate",
        ],
    },
    Drill {
        skill: "tradeoff_analysis",
        questions: [
            "Would you store user sessions in a relational database or in a cache? Argue both sides, then choose.",
            "A feature must ship in two weeks, but doing it properly takes six. What do you cut, and what does that cost you later?",
            "Tell me about a technical choice where you picked the option you liked less. What did you weigh?",
        ],
        probe: "What was the alternative, and what did you give up by not choosing it?",
        signs: &[
            "instead",
            "trade-off",
            "tradeoff",
            "alternative",
            "versus",
            "rather than",
            "downside",
            "cost",
            "on the other hand",
            "but",
        ],
    },
    Drill {
        skill: "component_design",
        questions: [
            "Design the components of a notification service that sends e-mail, push and text messages. What are the parts, and what does each own?",
            "Break a checkout flow into services. Where do you draw the boundaries, and why there?",
            "Design a rate limiter that several API servers share. What are its pieces, and how do they interact?",
        ],
        probe: "Which component owns that data, and how do the others talk to it?",
        signs: &[
            "service",
            "component",
            "queue",
            "database",
            "cache",
            "worker",
            "api",
            "module",
            "owns",
        ],
    },
    Drill {
        skill: "api_design",
        questions: [
            "Design the API for a to-do list app that syncs across devices. What are the endpoints and their requests and responses?",
            "How would you version a public API that thousands of clients use, without breaking them?",
            "Design the API for uploading large files that may be interrupted. How does a client resume?",
        ],
        probe: "What exactly does the request look like, and what does the client get back when it fails?",
        signs: &[
            "endpoint",
            "get",
            "post",
            "put",
            "delete",
            "request",
            "response",
            "status",
            "json",
            "version",
            "idempotent",
        ],
    },
    Drill {
        skill: "scalability_thinking",
        questions: [
            "Your service handles a thousand users today. What breaks first at a million, and what do you change?",
            "A single database is at ninety percent CPU. Walk me through your options, in order.",
            "How would you scale a leaderboard that updates every time any player scores?",
        ],
        probe: "What happens at ten times the load? What breaks first?",
        signs: &[
            "scale",
            "shard",
            "sharding",
            "partition",
            "replica",
            "replicas",
            "horizontal",
            "load",
            "bottleneck",
            "cache",
            "grow",
        ],
    },
    Drill {
        skill: "failure_modes",
        questions: [
            "A payment service calls a bank that sometimes times out. What can go wrong, and how do you make sure nobody is charged twice?",
            "One of your three database replicas dies during peak traffic. Walk me through what happens.",
            "Tell me about a production outage you saw or caused. What failed, and what changed afterwards?",
        ],
        probe: "And when that part fails? How do you detect it, and what does the user see?",
        signs: &[
            "fail",
            "fails",
            "failure",
            "retry",
            "retries",
            "timeout",
            "fallback",
            "outage",
            "down",
            "idempotent",
            "alert",
            "recover",
        ],
    },
    Drill {
        skill: "star_structure",
        questions: [
            "Tell me about a time you turned around a project that was going badly. Give me the situation, your task, what you did, and the result.",
            "Tell me about a time you had to learn something quickly to deliver.",
            "Tell me about the most difficult bug or problem you solved at work.",
        ],
        probe: "Walk me through it in order: the situation, your task, what you did, and how it ended.",
        signs: &[
            "situation",
            "task",
            "result",
            "as a result",
            "in the end",
            "my goal",
            "so i",
        ],
    },
    Drill {
        skill: "quantifiable_results",
        questions: [
            "Tell me about your biggest impact in your last role, and measure it for me.",
            "Describe an improvement you made to a process or a system. How much better did it get?",
            "Tell me about a goal you set and whether you reached it. How did you measure it?",
        ],
        probe: "Can you put a number on that? Before and after, and by when?",
        signs: &["#number", "percent"],
    },
    Drill {
        skill: "ownership_signal",
        questions: [
            "Tell me about something you owned from start to finish. What decisions were yours?",
            "Tell me about a time you took on a problem that was not your job.",
            "Tell me about a mistake you made and what you did about it.",
        ],
        probe: "What did you personally do there, and what did you decide yourself?",
        signs: &[
            "i decided",
            "i built",
            "i owned",
            "i led",
            "i wrote",
            "i proposed",
            "i took",
            "my decision",
            "i chose",
        ],
    },
    Drill {
        skill: "conflict_resolution",
        questions: [
            "Tell me about a time you strongly disagreed with a teammate. How did it end?",
            "Tell me about a time two people you worked with could not agree. What did you do?",
            "Tell me about feedback you received that you disagreed with. How did you handle it?",
        ],
        probe: "How did you bring the other person round, or what did you concede, and how did the relationship end up?",
        signs: &[
            "agreed",
            "compromise",
            "listened",
            "understood",
            "perspective",
            "resolved",
            "common ground",
            "conceded",
        ],
    },
    Drill {
        skill: "leadership_stories",
        questions: [
            "Tell me about a time you led a group toward a goal without being their manager.",
            "Tell me about a time you had to get several teams to agree on a plan.",
            "Tell me about a decision you made that was unpopular at first.",
        ],
        probe: "Who else had a stake in it, and how did you keep them aligned?",
        signs: &[
            "stakeholder",
            "stakeholders",
            "aligned",
            "convinced",
            "persuaded",
            "team",
            "teams",
            "manager",
            "product",
            "led",
        ],
    },
    Drill {
        skill: "mentoring_signal",
        questions: [
            "Tell me about someone you helped grow. What did you do, and how did they change?",
            "How do you bring a new engineer up to speed on a complex codebase?",
            "Tell me about a time you gave someone difficult feedback.",
        ],
        probe: "What did the person you helped do differently afterwards?",
        signs: &[
            "mentored",
            "mentor",
            "coached",
            "taught",
            "paired",
            "onboarded",
            "junior",
            "grew",
            "feedback",
        ],
    },
    Drill {
        skill: "conciseness",
        questions: [
            "In two or three sentences: what do you do, and what are you best at?",
            "Explain the last project you worked on to someone outside tech, in under thirty seconds.",
            "Why are you looking for a new role? Keep it short.",
        ],
        probe: "What is the one-sentence version?",
        signs: &["#short"],
    },
    Drill {
        skill: "filler_word_control",
        questions: [
            "Describe your current team and how it works, slowly and without filler words.",
            "Walk me through your typical working day. Take a breath before you start.",
            "Explain a technical concept you know well, as if to a new colleague.",
        ],
        probe: "Try that again a little slower, and pause instead of saying um or like.",
        signs: &["#no-fillers"],
    },
    Drill {
        skill: "pacing",
        questions: [
            "Tell me about yourself, at a calm, steady pace.",
            "Explain how the internet delivers a web page to a browser, step by step.",
            "Describe a project you are proud of. Pause between the parts of the story.",
        ],
        probe: "Take that again, one step at a time, with a short pause between steps.",
        signs: &["first", "then", "next", "finally", "second", "after that"],
    },
    Drill {
        skill: "confidence_under_pressure",
        questions: [
            "Why should we hire you rather than someone with more experience?",
            "What is your biggest weakness, honestly?",
            "Your answer to the last question was not convincing. Try again: what makes you the right person?",
        ],
        probe: "Say it as a statement, without hedging: what do you bring?",
        signs: &[
            "i am",
            "i'm",
            "i will",
            "i can",
            "i bring",
            "i know",
            "confident",
        ],
    },
    Drill {
        skill: "complexity_analysis",
        questions: [
            "What is the time and space complexity of finding duplicates in a list of a million numbers? Give me two approaches.",
            "How would you find the ten most frequent words in a huge file, and what does it cost?",
            "When is a hash map slower than a sorted array? Explain with complexity.",
        ],
        probe: "What is the big-O of that, in time and in memory?",
        signs: &[
            "o of n",
            "big o",
            "linear",
            "logarithmic",
            "quadratic",
            "n log n",
            "constant",
            "complexity",
            "memory",
        ],
    },
    Drill {
        skill: "edge_cases",
        questions: [
            "You are writing a function that splits a bill between friends. Which inputs would you test first?",
            "What can go wrong when parsing dates that users type in?",
            "Walk me through the edge cases of a function that merges two sorted lists.",
        ],
        probe: "What about the empty case, the huge case, and the invalid case?",
        signs: &[
            "empty",
            "null",
            "zero",
            "negative",
            "overflow",
            "invalid",
            "duplicate",
            "duplicates",
            "edge",
            "boundary",
            "unicode",
        ],
    },
    Drill {
        skill: "testing_approach",
        questions: [
            "How would you test a service that depends on a slow external API?",
            "Tell me how you decided what to test in your last project, and what you left out.",
            "A bug reached production despite your tests. How do you make sure it cannot happen again?",
        ],
        probe: "Which tests would catch that, and at which level: unit, integration, or end to end?",
        signs: &[
            "unit",
            "integration",
            "end to end",
            "end-to-end",
            "test",
            "tests",
            "mock",
            "fake",
            "fixture",
            "coverage",
            "regression",
        ],
    },
    Drill {
        skill: "code_review_reasoning",
        questions: [
            "A teammate's pull request works but is hard to read. What do you write in your review?",
            "What do you look for first when you review code, and why?",
            "Tell me about a review comment you received that changed how you write code.",
        ],
        probe: "Why does that matter for the people who maintain it later?",
        signs: &[
            "readable",
            "readability",
            "maintain",
            "maintainable",
            "naming",
            "tests",
            "because",
            "risk",
            "simpler",
        ],
    },
    Drill {
        skill: "anchoring",
        questions: [
            "I'd like to make you an offer. What salary are you expecting?",
            "What range did you have in mind for this role?",
            "Our budget is lower than you hoped. Where do you start?",
        ],
        probe: "Give me a specific number, and say what it is based on.",
        signs: &["#number", "market", "based on", "range"],
    },
    Drill {
        skill: "value_articulation",
        questions: [
            "Why are you worth the top of our range?",
            "What will you deliver in your first six months that justifies this offer?",
            "How would you describe the value you brought to your last employer?",
        ],
        probe: "What is that worth to us, concretely?",
        signs: &[
            "deliver",
            "delivered",
            "saved",
            "revenue",
            "impact",
            "value",
            "#number",
        ],
    },
    Drill {
        skill: "counter_strategy",
        questions: [
            "Our offer is ten percent below what you asked. What do you say?",
            "We can't move on salary. What else would you negotiate?",
            "Another candidate accepted a lower number. How do you respond?",
        ],
        probe: "What would you ask for in return, before agreeing?",
        signs: &[
            "counter",
            "in return",
            "equity",
            "bonus",
            "signing",
            "start date",
            "remote",
            "flexible",
            "instead",
        ],
    },
    Drill {
        skill: "emotional_control",
        questions: [
            "Frankly, your answer earlier was weak. Why should we still consider you?",
            "We need your decision by tomorrow morning. What do you say?",
            "We think you are asking too much for your level. Respond.",
        ],
        probe: "Take a breath. Answer calmly: what is your position?",
        signs: &[
            "understand",
            "i appreciate",
            "fair",
            "let me",
            "i'd like",
            "calm",
            "consider",
        ],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_microskill_has_a_drill_in_order() {
        let skills: Vec<&str> = DRILLS.iter().map(|d| d.skill).collect();
        let microskills: Vec<&str> = crate::feedback::skills::MICROSKILLS
            .iter()
            .map(|(s, _)| *s)
            .collect();
        assert_eq!(skills, microskills);
        for d in &DRILLS {
            assert!(
                d.questions.iter().all(|q| q.ends_with(['?', '.'])),
                "{}",
                d.skill
            );
            assert!(!d.signs.is_empty());
        }
    }

    #[test]
    fn signs_are_whole_words_and_numbers_count_where_they_should() {
        let tradeoff = drill("tradeoff_analysis").unwrap();
        assert!(tradeoff.shows_skill("We used Redis instead of Postgres."));
        assert!(!tradeoff.shows_skill("We used Redis for sessions."));
        assert!(
            !tradeoff.shows_skill("The costume was nice."),
            "no partial words"
        );
        let results = drill("quantifiable_results").unwrap();
        assert!(results.shows_skill("Errors dropped by forty percent."));
        assert!(results.shows_skill("We cut it to 3 seconds."));
        assert!(!results.shows_skill("It went really well."));
        assert!(drill("not_a_skill").is_none());
        let concise = drill("conciseness").unwrap();
        assert!(
            concise.shows_skill("I build payment systems, and I am best at making them reliable.")
        );
        assert!(!concise.shows_skill(&"word ".repeat(80)));
        let fillers = drill("filler_word_control").unwrap();
        assert!(!fillers.shows_skill("So, um, basically we, like, ship things."));
        assert!(fillers.shows_skill("We ship small changes every day."));
    }
}
