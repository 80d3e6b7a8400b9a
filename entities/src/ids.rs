//! Typed identifiers: an interview's id and an account's id are both UUIDs, but one can no longer
//! be passed where the other is meant, in a query as much as in the engine's and API's own code.
//!
//! Both are `#[serde(transparent)]`, so on the wire (JSON bodies, JWT `sub`, path segments) they
//! are the bare UUID string. Both are sea-orm value types (`DeriveValueType`): the columns that
//! hold them (`accounts.id`, `interviews.id` and every `account_id` / `interview_id`) are typed
//! with them in the entities, so a row read back carries the typed id and an `ActiveModel` only
//! takes the right one. The database column stays a plain UUID.

use std::fmt;
use std::str::FromStr;

use sea_orm::{DbErr, DeriveValueType, TryFromU64};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Defines one id newtype over `Uuid` with the same conversions for each, so the two stay alike.
macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            Hash,
            PartialOrd,
            Ord,
            Serialize,
            Deserialize,
            DeriveValueType,
        )]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered id (UUIDv7), as the rows it names are created.
            pub fn now_v7() -> Self {
                Self(Uuid::now_v7())
            }

            /// The UUID itself, where no typed column takes it (e.g. an audit row's target).
            pub const fn as_uuid(self) -> Uuid {
                self.0
            }
        }

        /// Primary keys must say whether a database's integer last-insert id converts: a UUID
        /// never does (the ids are made by us, [`Self::now_v7`], never by the database).
        impl TryFromU64 for $name {
            fn try_from_u64(_: u64) -> Result<Self, DbErr> {
                Err(DbErr::ConvertFromU64(stringify!($name)))
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::from_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// The id of one interview (the `interviews` row, the live actor, its transcript and usage).
    InterviewId
);

uuid_id!(
    /// The id of one account (the `accounts` row; the JWT's subject).
    AccountId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_the_bare_uuid_string_and_back() {
        let uuid = Uuid::now_v7();
        let id = InterviewId::from(uuid);
        let json = serde_json::to_string(&id).expect("serialize");
        assert_eq!(json, format!("\"{uuid}\""));
        let back: InterviewId = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, id);
        let account: AccountId = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(account.as_uuid(), uuid);
    }

    #[test]
    fn displays_and_parses_as_the_uuid() {
        let uuid = Uuid::now_v7();
        assert_eq!(AccountId::from(uuid).to_string(), uuid.to_string());
        assert_eq!(InterviewId::from(uuid).to_string(), uuid.to_string());
        assert_eq!(
            uuid.to_string().parse::<AccountId>().expect("parse"),
            AccountId::from(uuid)
        );
        assert!("not-a-uuid".parse::<InterviewId>().is_err());
    }

    #[test]
    fn rejects_what_a_uuid_rejects() {
        assert!(serde_json::from_str::<InterviewId>("\"nope\"").is_err());
        assert!(serde_json::from_str::<AccountId>("42").is_err());
    }

    #[test]
    fn is_a_uuid_value_in_queries() {
        let uuid = Uuid::now_v7();
        assert_eq!(
            sea_orm::Value::from(AccountId::from(uuid)),
            sea_orm::Value::from(uuid)
        );
        assert!(AccountId::try_from_u64(7).is_err());
    }
}
