//! Concurrent writers. Every membership change locks its organization's row and bumps its
//! version (V42), so two transactions changing one organization's owners serialize on that row:
//! under READ COMMITTED the second waits, then counts the owners afresh (RLOWN); under REPEATABLE
//! READ its bump of the version row the first one changed fails with a serialization error
//! (40001) instead. Either way an active owner remains.
//!
//! Each race begins both transactions, runs the first change, starts the second in a task,
//! waits until pg_stat_activity shows it waiting for a lock, and only then commits the first.

use tokio_postgres::types::ToSql;
use tokio_postgres::Client;
use uuid::Uuid;

use crate::common::{self, TestDatabase};
use crate::support::*;

/// One statement of a race, with its uuid parameters.
pub(crate) struct Change {
    sql: String,
    params: Vec<Uuid>,
}

pub(crate) fn change(sql: &str, params: &[Uuid]) -> Change {
    Change {
        sql: sql.to_owned(),
        params: params.to_vec(),
    }
}

async fn run(client: &Client, change: &Change) -> Result<(), String> {
    let params: Vec<&(dyn ToSql + Sync)> = change
        .params
        .iter()
        .map(|id| id as &(dyn ToSql + Sync))
        .collect();
    attempt(client, &change.sql, &params).await.map(drop)
}

/// Races `first` against `second` at `isolation` and returns how `second` ended (its statement,
/// then its commit). `first` must succeed.
pub(crate) async fn race(
    db: &TestDatabase,
    isolation: &str,
    first: Change,
    second: Change,
) -> Result<(), String> {
    let tx1 = db.client().await;
    let tx2 = db.client().await;
    let monitor = db.client().await;
    let tx2_pid = backend_pid(&tx2).await;

    // A first statement in each fixes both snapshots before either writes (REPEATABLE READ).
    for tx in [&tx1, &tx2] {
        tx.batch_execute(&format!("begin isolation level {isolation}; select 1"))
            .await
            .expect("begin");
    }
    run(&tx1, &first)
        .await
        .unwrap_or_else(|code| panic!("the first change `{}` failed with {code}", first.sql));

    let second_sql = second.sql.clone();
    let task = tokio::spawn(async move {
        match run(&tx2, &second).await {
            Ok(()) => tx2.batch_execute("commit").await.map_err(|e| sqlstate(&e)),
            Err(code) => {
                tx2.batch_execute("rollback").await.expect("rollback");
                Err(code)
            }
        }
    });
    let blocked = wait_until_blocked(&monitor, tx2_pid, &task).await;
    assert!(
        blocked,
        "`{second_sql}` should wait for the first transaction, but finished first"
    );
    tx1.batch_execute("commit")
        .await
        .expect("commit the first change");
    task.await.expect("the second transaction's task")
}

/// The world plus a second active owner.
async fn two_owners() -> (TestDatabase, World, Uuid) {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let world = World::build(&client).await;
    let co_owner = world.new_co_owner(&client).await;
    (db, world, co_owner)
}

async fn owners_left(db: &TestDatabase, org: Uuid) -> i64 {
    active_owners(&db.client().await, org).await
}

const DEMOTE: &str = "select * from roster.update_member($1, $2, $3, p_role => 'admin')";
const RAW_DEMOTE: &str = "update roster.organization_memberships set role = 'admin' \
                          where organization_id = $1 and user_id = $2";

#[tokio::test]
async fn owners_demoting_each_other_at_once_read_committed() {
    let (db, w, b) = two_owners().await;
    let a = w.owner;
    let second = race(
        &db,
        "read committed",
        change(DEMOTE, &[b, w.org, a]),
        change(DEMOTE, &[a, w.org, b]),
    )
    .await;
    assert_eq!(second, Err("RLOWN".into()), "the second demotion");
    assert_eq!(owners_left(&db, w.org).await, 1);
}

#[tokio::test]
async fn owners_leaving_at_once_read_committed() {
    let (db, w, b) = two_owners().await;
    let leave = "select * from roster.remove_member($1, $2, $1)";
    let second = race(
        &db,
        "read committed",
        change(leave, &[w.owner, w.org]),
        change(leave, &[b, w.org]),
    )
    .await;
    assert_eq!(second, Err("RLOWN".into()), "the second owner leaving");
    assert_eq!(owners_left(&db, w.org).await, 1);
}

#[tokio::test]
async fn raw_demotions_at_once_read_committed() {
    let (db, w, b) = two_owners().await;
    let second = race(
        &db,
        "read committed",
        change(RAW_DEMOTE, &[w.org, w.owner]),
        change(RAW_DEMOTE, &[w.org, b]),
    )
    .await;
    assert_eq!(second, Err("RLOWN".into()), "the second raw demotion");
    assert_eq!(owners_left(&db, w.org).await, 1);
}

#[tokio::test]
async fn suspending_one_owner_while_deleting_the_others_user_read_committed() {
    let (db, w, b) = two_owners().await;
    let second = race(
        &db,
        "read committed",
        change(
            "select * from roster.update_member($1, $2, $3, p_status => 'suspended')",
            &[b, w.org, w.owner],
        ),
        change(
            "update roster.users set deleted_at = now() where id = $1",
            &[b],
        ),
    )
    .await;
    assert_eq!(
        second,
        Err("RLOWN".into()),
        "deleting the other owner's user"
    );
    assert_eq!(owners_left(&db, w.org).await, 1);
}

#[tokio::test]
async fn owners_demoting_each_other_at_once_repeatable_read() {
    let (db, w, b) = two_owners().await;
    let a = w.owner;
    let second = race(
        &db,
        "repeatable read",
        change(DEMOTE, &[b, w.org, a]),
        change(DEMOTE, &[a, w.org, b]),
    )
    .await;
    assert!(
        matches!(
            second.as_ref().map_err(String::as_str),
            Err("40001" | "RLOWN")
        ),
        "the second demotion should fail with 40001 or RLOWN, got {second:?}"
    );
    assert_eq!(owners_left(&db, w.org).await, 1);
}

#[tokio::test]
async fn raw_demotions_at_once_repeatable_read() {
    let (db, w, b) = two_owners().await;
    let second = race(
        &db,
        "repeatable read",
        change(RAW_DEMOTE, &[w.org, w.owner]),
        change(RAW_DEMOTE, &[w.org, b]),
    )
    .await;
    assert!(
        matches!(
            second.as_ref().map_err(String::as_str),
            Err("40001" | "RLOWN")
        ),
        "the second raw demotion should fail with 40001 or RLOWN, got {second:?}"
    );
    assert_eq!(owners_left(&db, w.org).await, 1);
}

#[tokio::test]
async fn adding_the_same_user_twice_at_once() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    let candidate = w.new_user(&client, "candidate@acme.test").await;
    let add = "select * from roster.add_member($1, $2, $3)";

    let second = race(
        &db,
        "read committed",
        change(add, &[w.owner, w.org, candidate]),
        change(add, &[w.admin, w.org, candidate]),
    )
    .await;
    assert_eq!(
        second,
        Err("RISMB".into()),
        "the second add of the same user"
    );
    let live: i64 = client
        .query_one(
            "select count(*) as n from roster.organization_memberships \
              where organization_id = $1 and user_id = $2 and deleted_at is null",
            &[&w.org, &candidate],
        )
        .await
        .expect("count memberships")
        .get("n");
    assert_eq!(live, 1);
}

// ----------------------------------------------------------------------------------------------
// Group members and memberships: only members are in groups, whatever the interleaving
// ----------------------------------------------------------------------------------------------

const JOIN_GROUP: &str = "select * from roster.add_group_member($1, $2, 'team', $3)";
const REMOVE_MEMBER: &str = "select roster.remove_member($1, $2, $3)";

/// The world with group `team` in `World::org`.
async fn with_group() -> (TestDatabase, World) {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let world = World::build(&client).await;
    must_run(
        &client,
        "select * from roster.create_group($1, $2, 'team', 'Team')",
        &[&world.owner, &world.org],
    )
    .await;
    (db, world)
}

async fn live_group_rows(db: &TestDatabase, user: Uuid) -> i64 {
    must_run(
        &db.client().await,
        "select count(*) as n from roster.group_members where user_id = $1 and deleted_at is null",
        &[&user],
    )
    .await[0]
        .get("n")
}

#[tokio::test]
async fn joining_a_group_while_being_removed_read_committed() {
    let (db, w) = with_group().await;
    let second = race(
        &db,
        "read committed",
        change(REMOVE_MEMBER, &[w.owner, w.org, w.member]),
        change(JOIN_GROUP, &[w.owner, w.org, w.member]),
    )
    .await;
    assert_eq!(
        second,
        Err("RMBNF".into()),
        "joining after the removal committed"
    );
    assert_eq!(0, live_group_rows(&db, w.member).await);
}

#[tokio::test]
async fn being_removed_while_joining_a_group_read_committed() {
    let (db, w) = with_group().await;
    let second = race(
        &db,
        "read committed",
        change(JOIN_GROUP, &[w.owner, w.org, w.member]),
        change(REMOVE_MEMBER, &[w.owner, w.org, w.member]),
    )
    .await;
    assert_eq!(second, Ok(()), "the removal");
    assert_eq!(
        0,
        live_group_rows(&db, w.member).await,
        "the removal takes the group row that committed first"
    );
}

/// Two additions to one organization: each one's insert holds KEY SHARE on the organization's
/// row (its foreign key), and the seat and owner checks used to lock that row FOR UPDATE, which
/// waits for KEY SHARE: two add_member calls deadlocked (40P01) until V35. Here the first
/// transaction holds KEY SHARE as its insert would, the second adds a member, and only then
/// does the first add one: both must succeed, whatever the order the server runs them in.
#[tokio::test]
async fn two_additions_to_one_organization_do_not_deadlock() {
    let db = common::fresh_database().await;
    let setup = db.client().await;
    let w = World::build(&setup).await;
    let first_user = w.new_user(&setup, "first@acme.test").await;
    let second_user = w.new_user(&setup, "second@acme.test").await;
    let tx1 = db.client().await;
    let tx2 = db.client().await;
    let monitor = db.client().await;
    let tx2_pid = backend_pid(&tx2).await;
    tx1.batch_execute("begin").await.expect("begin");
    tx1.execute(
        "select 1 from roster.organizations where tenant_id = $1 and id = $2 for key share",
        &[&w.tenant, &w.org],
    )
    .await
    .expect("hold KEY SHARE on the organization, as a foreign key check does");
    let (owner, org) = (w.owner, w.org);
    let second = tokio::spawn(async move {
        attempt(
            &tx2,
            "select roster.add_member($1, $2, $3, 'member')",
            &[&owner, &org, &second_user],
        )
        .await
        .map(drop)
    });
    // Finished (V35) or waiting for the first transaction (before V35): either way, now the
    // first adds its member; before V35 that closed the circle.
    wait_until_blocked(&monitor, tx2_pid, &second).await;
    let first = attempt(
        &tx1,
        "select roster.add_member($1, $2, $3, 'member')",
        &[&w.owner, &w.org, &first_user],
    )
    .await
    .map(drop);
    if first.is_ok() {
        tx1.batch_execute("commit").await.expect("commit");
    }
    assert_eq!(first, Ok(()), "the first transaction's addition");
    assert_eq!(second.await.unwrap(), Ok(()), "the second addition");
    for user in [first_user, second_user] {
        assert!(membership(&setup, w.org, user).await.is_some());
    }
}
