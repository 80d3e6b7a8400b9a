//! Typed identifiers: an interview's id and an account's id. They live in `entities::ids`,
//! because the entities' columns are typed with them; the engine re-exports them here.

pub use entities::ids::{AccountId, InterviewId};
