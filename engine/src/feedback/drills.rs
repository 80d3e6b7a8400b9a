//! The drill plan (FEEDBACK.md §5): which skills to practise on which days, from the skill
//! levels and an optional target interview date. The date is passed in.

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

use super::FeedbackConfig;
use super::skills::{SkillState, Trend};

/// How often the plan practises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cadence {
    /// Interview within 7 days: 7 daily slots of 3 questions.
    Daily,
    /// Within 21 days: 5 weekday slots of 2.
    Weekdays,
    /// Otherwise: Monday, Wednesday and Friday, 1 question each.
    ThreePerWeek,
}

/// One practice session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillSlot {
    pub day: NaiveDate,
    pub skill: String,
    pub level: f64,
    pub trend: Trend,
    pub questions: u32,
    pub minutes: u32,
    /// "foundation", "slipping", "beat your best" or "keep building".
    pub focus: String,
    pub target_level: f64,
    pub urgency: f64,
}

/// The plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillPlan {
    pub cadence: Cadence,
    pub target_date: Option<NaiveDate>,
    pub slots: Vec<DrillSlot>,
}

/// `(100 − level) / 100 + min(0.5, 0.1 × days overdue)`, +0.2 declining, −0.1 improving.
pub fn urgency(skill: &SkillState, today: NaiveDate) -> f64 {
    let overdue = (today - skill.next_review_at.date_naive())
        .num_days()
        .max(0) as f64;
    let trend = match skill.trend {
        Trend::Declining => 0.2,
        Trend::Improving => -0.1,
        Trend::Stable => 0.0,
    };
    let value = (100.0 - skill.level) / 100.0 + (0.1 * overdue).min(0.5) + trend;
    (value * 1000.0).round() / 1000.0
}

fn focus(skill: &SkillState) -> &'static str {
    if skill.level < 40.0 {
        "foundation"
    } else if skill.trend == Trend::Declining {
        "slipping"
    } else if skill.best_level > skill.level + 10.0 {
        "beat your best"
    } else {
        "keep building"
    }
}

/// The next `count` days from `today` (inclusive) that `keep` accepts.
fn days(today: NaiveDate, count: usize, keep: impl Fn(Weekday) -> bool) -> Vec<NaiveDate> {
    (0..)
        .map(|i| today + Duration::days(i))
        .filter(|d| keep(d.weekday()))
        .take(count)
        .collect()
}

/// The plan for `today`: most urgent skills first, one per slot.
pub fn plan(
    config: &FeedbackConfig,
    skills: &[SkillState],
    today: NaiveDate,
    target_date: Option<NaiveDate>,
) -> DrillPlan {
    let days_away = target_date
        .map(|d| (d - today).num_days())
        .filter(|d| *d >= 0);
    let (cadence, slot_days, questions) = match days_away {
        Some(d) if d <= 7 => (Cadence::Daily, days(today, 7, |_| true), 3),
        Some(d) if d <= 21 => (
            Cadence::Weekdays,
            days(today, 5, |w| !matches!(w, Weekday::Sat | Weekday::Sun)),
            2,
        ),
        _ => (
            Cadence::ThreePerWeek,
            days(today, 3, |w| {
                matches!(w, Weekday::Mon | Weekday::Wed | Weekday::Fri)
            }),
            1,
        ),
    };
    let mut ranked: Vec<(&SkillState, f64)> =
        skills.iter().map(|s| (s, urgency(s, today))).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.skill.cmp(&b.0.skill)));
    let slots = slot_days
        .into_iter()
        .zip(ranked)
        .map(|(day, (skill, urgency))| {
            let questions = questions + u32::from(skill.level < 60.0);
            DrillSlot {
                day,
                skill: skill.skill.clone(),
                level: skill.level,
                trend: skill.trend,
                questions,
                minutes: questions * config.minutes_per_question,
                focus: focus(skill).to_owned(),
                target_level: (skill.level + 15.0).min(100.0),
                urgency,
            }
        })
        .collect();
    DrillPlan {
        cadence,
        target_date,
        slots,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, TimeZone, Utc};

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap()
    }

    fn skill(name: &str, level: f64, best: f64, trend: Trend, due: DateTime<Utc>) -> SkillState {
        SkillState {
            skill: name.into(),
            level,
            best_level: best,
            trend,
            updates: 3,
            updated_at: due,
            next_review_at: due,
        }
    }

    // Tuesday 1 December 2026.
    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()
    }

    fn skills() -> Vec<SkillState> {
        vec![
            skill("star_structure", 35.0, 40.0, Trend::Stable, at(2026, 12, 2)),
            skill("conciseness", 70.0, 90.0, Trend::Stable, at(2026, 11, 21)),
            skill(
                "ownership_signal",
                55.0,
                60.0,
                Trend::Declining,
                at(2026, 12, 3),
            ),
            skill(
                "tradeoff_analysis",
                85.0,
                85.0,
                Trend::Improving,
                at(2026, 12, 9),
            ),
        ]
    }

    #[test]
    fn urgency_adds_overdue_days_and_trend() {
        let s = skills();
        assert_eq!(urgency(&s[0], today()), 0.65);
        // 10 days overdue → capped at +0.5.
        assert_eq!(urgency(&s[1], today()), 0.8);
        assert_eq!(urgency(&s[2], today()), 0.65);
        assert_eq!(urgency(&s[3], today()), 0.05);
    }

    #[test]
    fn without_a_date_the_plan_is_three_slots_on_monday_wednesday_friday() {
        let p = plan(&FeedbackConfig::default(), &skills(), today(), None);
        assert_eq!(p.cadence, Cadence::ThreePerWeek);
        let days: Vec<String> = p.slots.iter().map(|s| s.day.to_string()).collect();
        assert_eq!(days, vec!["2026-12-02", "2026-12-04", "2026-12-07"]);
        let order: Vec<&str> = p.slots.iter().map(|s| s.skill.as_str()).collect();
        // Equal urgency breaks ties by name.
        assert_eq!(
            order,
            vec!["conciseness", "ownership_signal", "star_structure"]
        );
        assert_eq!(p.slots[0].focus, "beat your best");
        assert_eq!(p.slots[1].focus, "slipping");
        assert_eq!(p.slots[2].focus, "foundation");
        assert_eq!(p.slots[0].questions, 1);
        assert_eq!(p.slots[1].questions, 2, "+1 below 60");
        assert_eq!(p.slots[1].minutes, 14);
        assert_eq!(p.slots[2].target_level, 50.0);
    }

    #[test]
    fn a_close_interview_date_plans_daily_but_never_more_slots_than_skills() {
        let target = NaiveDate::from_ymd_opt(2026, 12, 5);
        let p = plan(&FeedbackConfig::default(), &skills(), today(), target);
        assert_eq!(p.cadence, Cadence::Daily);
        assert_eq!(p.slots.len(), 4, "four skills, seven days");
        assert_eq!(p.slots[0].day, today());
        assert_eq!(p.slots[3].day.to_string(), "2026-12-04");
        assert_eq!(p.slots[0].questions, 3);
        assert_eq!(p.slots[3].skill, "tradeoff_analysis");
    }

    #[test]
    fn a_date_within_three_weeks_plans_five_weekdays() {
        let target = NaiveDate::from_ymd_opt(2026, 12, 20);
        let mut many = skills();
        for (i, name) in ["pacing", "edge_cases", "anchoring"].iter().enumerate() {
            many.push(skill(
                name,
                60.0 + i as f64,
                70.0,
                Trend::Stable,
                at(2026, 12, 10),
            ));
        }
        let p = plan(&FeedbackConfig::default(), &many, today(), target);
        assert_eq!(p.cadence, Cadence::Weekdays);
        let days: Vec<String> = p.slots.iter().map(|s| s.day.to_string()).collect();
        assert_eq!(
            days,
            vec![
                "2026-12-01",
                "2026-12-02",
                "2026-12-03",
                "2026-12-04",
                "2026-12-07"
            ]
        );
        assert_eq!(p.slots[0].questions, 2);
        // A past date is no date.
        let past = plan(
            &FeedbackConfig::default(),
            &many,
            today(),
            NaiveDate::from_ymd_opt(2026, 11, 1),
        );
        assert_eq!(past.cadence, Cadence::ThreePerWeek);
        assert!(
            plan(&FeedbackConfig::default(), &[], today(), None)
                .slots
                .is_empty()
        );
    }
}
