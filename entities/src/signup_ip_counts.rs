//! `signup_ip_counts`: sign-ups per client address per UTC day, the address kept only as a keyed
//! hash (HMAC-SHA256; an IPv6 address by its /64) and only until its day is over (then swept).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "signup_ip_counts")]
pub struct Model {
    /// Hex of HMAC-SHA256 of the client address under the ledger key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub ip_hash: String,
    /// Midnight UTC of the day counted.
    #[sea_orm(primary_key, auto_increment = false)]
    pub day_start: DateTimeUtc,
    pub signups: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
