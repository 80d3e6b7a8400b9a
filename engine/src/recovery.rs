//! Start-up recovery of the interview registry. A node that stopped without ending its
//! interviews (a crash, SIGKILL, power loss) leaves their rows `live` with its `node_id`: the
//! account would look busy and the interviews would never show as finished. At start, before it
//! accepts any offer, the node ends every interview it still holds with reason
//! [`NODE_RESTARTED`]. Their transcripts stay as stored: segments are written as the interview
//! goes (each final and each reply), so everything up to the last stored final is kept.

use chrono::{DateTime, Utc};
use entities::interviews::{self, InterviewStatus};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

/// The end reason of an interview its node left live.
pub const NODE_RESTARTED: &str = "node_restarted";

/// Ends every interview that `node_id` left live; returns how many. Other nodes' live
/// interviews are untouched (they may still be running).
pub async fn end_interviews_left_live(
    db: &impl ConnectionTrait,
    node_id: &str,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let result = interviews::Entity::update_many()
        .col_expr(
            interviews::Column::Status,
            Expr::value(InterviewStatus::Ended),
        )
        .col_expr(interviews::Column::EndedAt, Expr::value(Some(now)))
        .col_expr(
            interviews::Column::EndReason,
            Expr::value(Some(NODE_RESTARTED.to_owned())),
        )
        .filter(interviews::Column::Status.eq(InterviewStatus::Live))
        .filter(interviews::Column::NodeId.eq(node_id))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}
