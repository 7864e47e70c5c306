//! Database logins. The API serves through a login that is a member of roster_app only
//! (DATABASE_APP_URL): it can call the functions and nothing else, and there is no stronger
//! identity above it for a `reset role` to go back to, as there is when it serves as the owner
//! behind `set role roster_app`.

use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use crate::helpers::{assert_json, spawn_app, spawn_app_with, uuid_at, AppOptions};

/// The SQLSTATE of running `sql` (a batch), or None when it succeeds.
async fn outcome(client: &Client, sql: &str) -> Option<SqlState> {
    match client.batch_execute(sql).await {
        Ok(()) => None,
        Err(e) => Some(e.code().cloned().unwrap_or_else(|| panic!("{sql}: {e}"))),
    }
}

#[tokio::test]
async fn the_api_serves_through_an_app_login_that_cannot_touch_the_tables() {
    let app = spawn_app_with(AppOptions {
        app_login: true,
        ..AppOptions::default()
    })
    .await;
    let login = app.login.as_ref().expect("an app login").name.clone();

    // The API works through it: a write and a read, both through the functions.
    let owner = app.user("owner").await;
    let org = app.new_org(&owner, "acme").await;
    let body = assert_json(
        app.get_organization(&owner.token, org).await,
        200,
        "GET /organizations/{id} through the app login",
    )
    .await;
    assert_eq!(org, uuid_at(&body, "id"));
    let sessions: i64 = app
        .sql
        .query_one(
            "select count(*) as n from pg_catalog.pg_stat_activity
              where datname = pg_catalog.current_database() and usename = $1",
            &[&login],
        )
        .await
        .and_then(|row| row.try_get("n"))
        .expect("count the app's sessions");
    assert!(sessions >= 1, "the app's pool logs in as {login}");

    let client = app.login_connection().await;
    let facts = roster::db::session_login(&client)
        .await
        .expect("look up the login");
    assert_eq!(
        (login.as_str(), false, true),
        (facts.name.as_str(), facts.superuser, facts.acts_as_app),
        "what start-up learns of the app login"
    );
    assert!(
        roster::startup::login_warning(true, &facts).is_none(),
        "no warning for an app login"
    );
    let row = client
        .query_one(
            "select r.rolsuper, pg_catalog.pg_has_role(session_user, 'roster_app', 'usage') as app
               from pg_catalog.pg_roles r where r.rolname = session_user",
            &[],
        )
        .await
        .expect("read the login's attributes");
    assert!(
        !row.get::<_, bool>("rolsuper"),
        "{login} is not a superuser"
    );
    assert!(
        row.get::<_, bool>("app"),
        "{login} holds roster_app's grants"
    );
    let allowed = client
        .query_one(
            "select id from roster.get_organization($1, $2)",
            &[&owner.id, &org],
        )
        .await
        .map(|row| row.get::<_, uuid::Uuid>("id"));
    assert_eq!(
        Ok(org),
        allowed.map_err(|e| e.to_string()),
        "{login} may call the functions"
    );

    let refused = [
        ("select * from roster.organizations", "read a table"),
        (
            "reset role; select * from roster.organizations",
            "reset role, then read",
        ),
        (
            "set role roster_app; reset role; select * from roster.organization_memberships",
            "set role, reset role, then read",
        ),
        (
            "update roster.organization_memberships set role = 'owner'",
            "write a table",
        ),
        ("set role postgres", "become the superuser"),
        (
            "set session authorization postgres",
            "become the superuser another way",
        ),
        (
            "select roster.create_tenant('evil', 'Evil')",
            "call a provisioning function",
        ),
    ];
    for (sql, what) in refused {
        assert_eq!(
            Some(SqlState::INSUFFICIENT_PRIVILEGE),
            outcome(&client, sql).await,
            "{login} must not {what}: {sql}"
        );
    }
}

/// Why DATABASE_APP_URL exists: serving as the owner, the API's only protection is a
/// `set role roster_app` that any statement it is made to run can undo.
#[tokio::test]
async fn set_role_on_the_owners_login_is_undone_by_reset_role() {
    let app = spawn_app().await;
    let owner = app.sql_connection().await;
    owner
        .batch_execute("set role roster_app")
        .await
        .expect("set role");
    let facts = roster::db::session_login(&owner)
        .await
        .expect("look up the login");
    assert!(
        facts.superuser && facts.acts_as_app,
        "the tests' owner login is a superuser, acting as roster_app"
    );
    let warning = roster::startup::login_warning(false, &facts);
    assert_eq!(
        Some(log::Level::Error),
        warning.as_ref().map(|(level, _)| *level),
        "serving as a superuser is the loud warning: {warning:?}"
    );
    assert_eq!(
        Some(SqlState::INSUFFICIENT_PRIVILEGE),
        outcome(
            &owner,
            "set role roster_app; select * from roster.organizations"
        )
        .await,
        "as roster_app, the tables are out of reach"
    );
    assert_eq!(
        None,
        outcome(&owner, "reset role; select * from roster.organizations").await,
        "after reset role, the owner's login reads them"
    );
}
