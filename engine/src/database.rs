//! Database access that must behave alike on SQLite and PostgreSQL.

use sea_orm::{DbErr, SqliteTransactionMode, TransactionOptions, TransactionTrait};

/// Begins a transaction that will write.
///
/// On SQLite a plain `BEGIN` is deferred: the transaction reads under a snapshot and asks for
/// the write lock only at its first write. If another connection (another pool on the same
/// file, e.g. a second node or the `interviewcraft` CLI beside a running server) committed in
/// between, SQLite cannot upgrade the stale snapshot and fails at once with "database is
/// locked" without waiting for the busy timeout. `BEGIN IMMEDIATE` takes the write lock up
/// front and waits for it under the busy timeout instead. PostgreSQL ignores the mode.
pub async fn begin_write<C>(db: &C) -> Result<C::Transaction, DbErr>
where
    C: TransactionTrait,
{
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sea_orm::{
        ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement,
        TransactionTrait,
    };

    use super::begin_write;

    /// Two pools on one SQLite file, as two nodes or the CLI beside a server have.
    async fn two_pools() -> (tempfile::TempDir, DatabaseConnection, DatabaseConnection) {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("db.sqlite").display()
        );
        let connect = || {
            let mut options = ConnectOptions::new(url.clone());
            options.max_connections(1).sqlx_logging(false);
            options.map_sqlx_sqlite_opts(|opts| {
                opts.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(10))
            });
            Database::connect(options)
        };
        let first = connect().await.expect("first pool");
        let second = connect().await.expect("second pool");
        first
            .execute_unprepared("CREATE TABLE t (n INTEGER NOT NULL)")
            .await
            .expect("create");
        (dir, first, second)
    }

    async fn count(db: &impl ConnectionTrait) -> i64 {
        let row = db
            .query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT COUNT(*) AS n FROM t",
            ))
            .await
            .expect("count")
            .expect("a row");
        row.try_get("", "n").expect("n")
    }

    /// A read-then-write transaction with another pool committing in between: a deferred
    /// `BEGIN` fails at its write ("database is locked", the stale snapshot cannot be
    /// upgraded), `begin_write` waits its turn and both writes are stored.
    #[tokio::test]
    async fn a_write_transaction_survives_another_pool_committing_in_between() {
        let (_dir, first, second) = two_pools().await;

        let deferred = first.begin().await.expect("begin");
        assert_eq!(count(&deferred).await, 0);
        second
            .execute_unprepared("INSERT INTO t (n) VALUES (1)")
            .await
            .expect("the other pool writes");
        let upgrade = deferred
            .execute_unprepared("INSERT INTO t (n) VALUES (2)")
            .await;
        assert!(
            upgrade.is_err(),
            "a deferred BEGIN cannot upgrade its snapshot"
        );
        deferred.rollback().await.expect("rollback");

        let txn = begin_write(&first).await.expect("begin immediate");
        assert_eq!(count(&txn).await, 1);
        let other = tokio::spawn(async move {
            second
                .execute_unprepared("INSERT INTO t (n) VALUES (3)")
                .await
                .map(|_| ())
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        txn.execute_unprepared("INSERT INTO t (n) VALUES (4)")
            .await
            .expect("the write transaction holds the lock");
        txn.commit().await.expect("commit");
        other
            .await
            .expect("task")
            .expect("the other pool waits for the lock, then writes");
        assert_eq!(count(&first).await, 3);
    }
}
