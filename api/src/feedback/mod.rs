//! Feedback after the call, the stateful half: the scoring job and its rows. The scoring itself
//! is the sans-IO core `engine::feedback`.
//!
//! When an interview's actor stops, the engine tells [`job::ScoringQueue`] (one `try_send` on a
//! bounded channel, never blocking the actor). One tokio task takes ids off the channel, loads
//! the transcript, scores on the blocking pool and writes the rows in one transaction
//! ([`store`]). The job's state is a `scoring_jobs` row, so a job a restart interrupted (or one
//! the full channel dropped) is found again by the sweep at start and every few minutes.
//!
//! | channel | capacity | when full |
//! |---|---|---|
//! | interview ids to score | [`job::QUEUE_CAPACITY`] | dropped and logged; the sweep finds the interview in the database |

pub mod job;
pub mod store;
