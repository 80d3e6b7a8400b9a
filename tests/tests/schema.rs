//! Protects the data model's privacy invariants: every table holding an account's data goes when
//! the account row goes (ON DELETE CASCADE, on SQLite and PostgreSQL), the table list in
//! `api::accounts::tables` (the one descriptor export and erasure walk) matches the database so no table can be forgotten, the usage log has no
//! text column, and migrations roll back and forward cleanly.

use engine::AccountId;
use entities::*;
use sea_orm::{ConnectionTrait, DatabaseBackend, EntityTrait, ModelTrait, Statement};
use sea_orm_migration::MigratorTrait;
use tests::fixtures::populate_every_table;
use tests::{Backend, TestApp, db_tests, spawn_app};

db_tests!(
    all_tables_lists_every_table_in_the_database,
    deleting_an_account_cascades_to_every_table_of_its_data,
    usage_log_has_no_column_that_could_hold_text,
    migrations_roll_back_and_apply_again,
);

async fn table_names(app: &TestApp) -> Vec<String> {
    let backend = app.db.get_database_backend();
    let sql = match backend {
        DatabaseBackend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        }
        _ => {
            "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public'"
        }
    };
    // As the owner: the server's role sees only the tables it was granted.
    let rows = app
        .owner_db
        .query_all_raw(Statement::from_string(backend, sql))
        .await
        .expect("list tables");
    let mut names: Vec<String> = rows
        .iter()
        .map(|row| row.try_get::<String>("", "name").expect("name"))
        .filter(|name| name != "seaql_migrations")
        .collect();
    names.sort();
    names
}

async fn all_tables_lists_every_table_in_the_database(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut expected: Vec<String> = api::accounts::tables::names()
        .iter()
        .map(|t| (*t).to_owned())
        .collect();
    expected.sort();
    assert_eq!(table_names(&app).await, expected);
}

async fn deleting_an_account_cascades_to_every_table_of_its_data(backend: Backend) {
    let app = spawn_app(backend).await;
    let doomed = AccountId::now_v7();
    let survivor = AccountId::now_v7();
    populate_every_table(&app.db, doomed).await;
    populate_every_table(&app.db, survivor).await;
    let mut before = std::collections::HashMap::new();
    for table in &api::accounts::tables::names() {
        let count = app.count_rows(table).await;
        assert!(count >= 1, "{table} was populated");
        before.insert(*table, count);
    }
    let account = accounts::Entity::find_by_id(doomed)
        .one(&app.db)
        .await
        .expect("query")
        .expect("account");
    account.delete(&app.db).await.expect("delete account");

    for table in &api::accounts::tables::names() {
        let count = app.count_rows(table).await;
        if api::accounts::tables::retained_names().contains(table) {
            assert_eq!(
                count, before[table],
                "{table} is not account data and keeps its rows"
            );
        } else {
            assert_eq!(
                count, 1,
                "{table}: only the surviving account's row remains"
            );
        }
    }
}

async fn usage_log_has_no_column_that_could_hold_text(backend: Backend) {
    use sea_orm::{EntityName, Iterable};
    let app = spawn_app(backend).await;
    let _ = app;
    let columns: Vec<String> = usage_log::Column::iter()
        .map(|column| sea_orm::IdenStatic::as_str(&column).to_owned())
        .collect();
    assert_eq!(usage_log::Entity.table_name(), "usage_log");
    // The only string columns are short fixed codes; anything else is a number or a time.
    let string_columns = [
        "id",
        "account_id",
        "interview_id",
        "provider",
        "model",
        "operation",
        "key_source",
    ];
    for column in &columns {
        let is_number_or_time = column.ends_with("_tokens")
            || column.ends_with("_ms")
            || column.ends_with("_seconds")
            || column.ends_with("_usd")
            || column.ends_with("_at")
            || column == "characters";
        assert!(
            is_number_or_time || string_columns.contains(&column.as_str()),
            "usage_log.{column} could hold text"
        );
    }
}

async fn migrations_roll_back_and_apply_again(backend: Backend) {
    let app = spawn_app(backend).await;
    // The retention sweeper's first sweep (at start) deletes from several tables in one
    // transaction; dropping them meanwhile deadlocks on PostgreSQL. It is over once a sweep
    // asked for now returns (the next one is an hour away).
    let _ = app.state.engine.sweep_now(chrono::Utc::now()).await;
    migrations::Migrator::down(&app.owner_db, None)
        .await
        .expect("roll back every migration");
    assert!(
        table_names(&app).await.is_empty(),
        "down removes every table"
    );
    migrations::Migrator::up(&app.owner_db, None)
        .await
        .expect("apply again");
    assert_eq!(
        table_names(&app).await.len(),
        api::accounts::tables::names().len()
    );
}

/// The server runs on PostgreSQL as a role that reads and writes rows and nothing else (the
/// test servers do, as README's production role does): it cannot drop, alter or create tables.
#[actix_web::test]
async fn the_servers_database_role_cannot_drop_alter_or_create_tables() {
    let Some(backend) = Backend::postgres() else {
        eprintln!("skipped: TEST_DATABASE_URL is not set");
        return;
    };
    let app = spawn_app(backend).await;
    let role = app
        .db
        .query_one_raw(Statement::from_string(
            DatabaseBackend::Postgres,
            "SELECT current_user AS name",
        ))
        .await
        .expect("current_user")
        .expect("a row")
        .try_get::<String>("", "name")
        .expect("name");
    assert_eq!(
        role,
        tests::APP_ROLE,
        "the server connects as the least-privilege role"
    );
    for statement in [
        "DROP TABLE usage_log",
        "ALTER TABLE accounts ADD COLUMN smuggled TEXT",
        "ALTER TABLE accounts DROP COLUMN email",
        "TRUNCATE admin_audit",
        "CREATE TABLE smuggled (id INT)",
    ] {
        let refused = app.db.execute_unprepared(statement).await;
        assert!(
            refused.is_err(),
            "the server's role may not run `{statement}`"
        );
    }
    // Rows are its job.
    let alice = app.signed_in_user().await;
    assert_eq!(app.me(&alice.access_token).await.status(), 200);
}

/// A server that does not migrate (a least-privilege role) refuses to start on a schema with a
/// pending migration, with one line saying who applies it, instead of failing at some query.
#[actix_web::test]
async fn a_server_that_does_not_migrate_refuses_a_schema_with_pending_migrations() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = tests::test_settings(dir.path());
    settings.database_url = Some(format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("never-migrated.db").display()
    ));
    settings.migrate_on_start = false;
    let error = api::startup::Application::build(settings)
        .await
        .err()
        .expect("the server refuses to start");
    let message = format!("{error:#}");
    assert!(
        message.contains("migrations are pending") && message.contains("interviewcraft migrate"),
        "{message}"
    );
}
