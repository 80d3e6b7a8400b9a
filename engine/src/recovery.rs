//! Start-up recovery of the interview registry. A node that stopped without ending its
//! interviews (a crash, SIGKILL, power loss) leaves their rows `live` with its `node_id`: the
//! account would look busy and the interviews would never show as finished. At start, before it
//! accepts any offer, the node ends every interview it still holds with reason
//! [`NODE_RESTARTED`]. Their transcripts stay as stored: segments are written as the interview
//! goes (each final and each reply), so everything up to the last stored final is kept.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr};

use crate::interview_core::EndReason;

/// The end reason of an interview its node left live.
pub const NODE_RESTARTED: &str = "node_restarted";

/// Ends every interview that `node_id` left live; returns how many. Other nodes' live
/// interviews are untouched (they may still be running).
pub async fn end_interviews_left_live(
    db: &impl ConnectionTrait,
    node_id: &str,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    crate::interview_store::mark_node_ended(db, node_id, EndReason::NodeRestarted, now).await
}
