//! Fixtures and helpers for the SQL tests.
//!
//! A `World` is one tenant with one user per kind of actor, built through the `roster.*`
//! functions the way a DBA would in psql. Tests match errors by SQLSTATE (`sqlstate`), never by
//! message text: see `sql/ERRORS.md`.

use std::fmt;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, GenericClient, Row};
use uuid::Uuid;

// ============================================================================================
// Errors
// ============================================================================================

/// The SQLSTATE of a database error, e.g. "RNFND"; a readable placeholder for any other error
/// (a dropped connection, a type mismatch) so that it shows up in an assertion's output.
pub fn sqlstate(err: &tokio_postgres::Error) -> String {
    match err.code() {
        Some(code) => code.code().to_owned(),
        None => format!("(no SQLSTATE: {err})"),
    }
}

/// The constraint a database error names, if any (kept by the functions when they re-raise).
pub fn constraint(err: &tokio_postgres::Error) -> Option<String> {
    err.as_db_error()
        .and_then(|e| e.constraint())
        .map(str::to_owned)
}

/// The primary message of a database error.
pub fn message(err: &tokio_postgres::Error) -> String {
    err.as_db_error()
        .map_or_else(|| err.to_string(), |e| e.message().to_owned())
}

/// Runs a statement and reduces its error to the SQLSTATE.
pub async fn attempt(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, String> {
    client.query(sql, params).await.map_err(|e| sqlstate(&e))
}

/// Runs a statement that must fail and returns its error.
pub async fn must_fail(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> tokio_postgres::Error {
    match client.query(sql, params).await {
        Ok(rows) => panic!(
            "expected `{sql}` to fail, but it returned {} row(s)",
            rows.len()
        ),
        Err(e) => e,
    }
}

/// Runs a statement that must succeed.
pub async fn must_run(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Vec<Row> {
    client
        .query(sql, params)
        .await
        .unwrap_or_else(|e| panic!("`{sql}` failed with {}: {}", sqlstate(&e), message(&e)))
}

// ============================================================================================
// Actors
// ============================================================================================

/// The kinds of user that call the actor-checked functions, relative to `World::org`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    Owner,
    Admin,
    Member,
    Invited,
    Suspended,
    NonMember,
    OtherTenant,
    TenantAdmin,
    DeletedUser,
    UnknownUser,
}

impl Actor {
    pub const ALL: [Actor; 10] = [
        Actor::Owner,
        Actor::Admin,
        Actor::Member,
        Actor::Invited,
        Actor::Suspended,
        Actor::NonMember,
        Actor::OtherTenant,
        Actor::TenantAdmin,
        Actor::DeletedUser,
        Actor::UnknownUser,
    ];
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Actor::Owner => "owner",
            Actor::Admin => "admin",
            Actor::Member => "member",
            Actor::Invited => "invited user",
            Actor::Suspended => "suspended member",
            Actor::NonMember => "non-member of the tenant",
            Actor::OtherTenant => "user of another tenant",
            Actor::TenantAdmin => "tenant admin (not a member)",
            Actor::DeletedUser => "deleted user",
            Actor::UnknownUser => "unknown user id",
        })
    }
}

// ============================================================================================
// The world
// ============================================================================================

/// Tenant "acme" with organization "acme-widgets" and one user per `Actor`, plus tenant "globex"
/// whose only user owns "globex-gadgets".
pub struct World {
    pub tenant: Uuid,
    pub org: Uuid,
    pub owner: Uuid,
    pub admin: Uuid,
    pub member: Uuid,
    pub invited: Uuid,
    pub suspended: Uuid,
    pub non_member: Uuid,
    pub tenant_admin: Uuid,
    /// Was a member of `org`, then soft-deleted (raw SQL: there is no function for it).
    pub deleted_user: Uuid,
    /// Never existed.
    pub unknown_user: Uuid,
    pub other_tenant: Uuid,
    pub other_tenant_user: Uuid,
    /// Owned by `other_tenant_user`.
    pub other_org: Uuid,
}

pub const ORG_NAME: &str = "Acme Widgets";
pub const ORG_SLUG: &str = "acme-widgets";
pub const OTHER_ORG_SLUG: &str = "globex-gadgets";

impl World {
    pub async fn build(c: &impl GenericClient) -> World {
        let tenant = create_tenant(c, "acme", "Acme").await;
        let other_tenant = create_tenant(c, "globex", "Globex").await;
        let owner = create_user(c, tenant, "owner@acme.test", false).await;
        let admin = create_user(c, tenant, "admin@acme.test", false).await;
        let member = create_user(c, tenant, "member@acme.test", false).await;
        let invited = create_user(c, tenant, "invited@acme.test", false).await;
        let suspended = create_user(c, tenant, "suspended@acme.test", false).await;
        let non_member = create_user(c, tenant, "outsider@acme.test", false).await;
        let tenant_admin = create_user(c, tenant, "root@acme.test", true).await;
        let deleted_user = create_user(c, tenant, "gone@acme.test", false).await;
        let other_tenant_user = create_user(c, other_tenant, "owner@globex.test", false).await;

        let org = create_organization(c, owner, ORG_NAME, ORG_SLUG).await;
        let other_org =
            create_organization(c, other_tenant_user, "Globex Gadgets", OTHER_ORG_SLUG).await;
        add_member(c, owner, org, admin, "admin", "active").await;
        add_member(c, owner, org, member, "member", "active").await;
        add_member(c, owner, org, invited, "member", "invited").await;
        add_member(c, owner, org, suspended, "member", "active").await;
        must_run(
            c,
            "select * from roster.update_member($1, $2, $3, p_status => 'suspended')",
            &[&owner, &org, &suspended],
        )
        .await;
        add_member(c, owner, org, deleted_user, "member", "active").await;
        must_run(
            c,
            "update roster.users set deleted_at = now() where id = $1",
            &[&deleted_user],
        )
        .await;

        World {
            tenant,
            org,
            owner,
            admin,
            member,
            invited,
            suspended,
            non_member,
            tenant_admin,
            deleted_user,
            unknown_user: Uuid::new_v4(),
            other_tenant,
            other_tenant_user,
            other_org,
        }
    }

    /// The id an actor passes as `p_actor_id`.
    pub fn id(&self, actor: Actor) -> Uuid {
        match actor {
            Actor::Owner => self.owner,
            Actor::Admin => self.admin,
            Actor::Member => self.member,
            Actor::Invited => self.invited,
            Actor::Suspended => self.suspended,
            Actor::NonMember => self.non_member,
            Actor::OtherTenant => self.other_tenant_user,
            Actor::TenantAdmin => self.tenant_admin,
            Actor::DeletedUser => self.deleted_user,
            Actor::UnknownUser => self.unknown_user,
        }
    }

    /// A new user of the tenant, not a member of anything.
    pub async fn new_user(&self, c: &impl GenericClient, email: &str) -> Uuid {
        create_user(c, self.tenant, email, false).await
    }

    /// A new user of the tenant added to `org` by the owner.
    pub async fn new_member(
        &self,
        c: &impl GenericClient,
        email: &str,
        role: &str,
        status: &str,
    ) -> Uuid {
        let user = self.new_user(c, email).await;
        add_member(c, self.owner, self.org, user, role, status).await;
        user
    }

    /// A second active owner of `org`, so that the first may leave or be demoted.
    pub async fn new_co_owner(&self, c: &impl GenericClient) -> Uuid {
        self.new_member(c, "co-owner@acme.test", "owner", "active")
            .await
    }
}

// ============================================================================================
// Fixture calls (panic on failure: a broken fixture is not what the test is about)
// ============================================================================================

pub async fn create_tenant(c: &impl GenericClient, slug: &str, name: &str) -> Uuid {
    must_run(
        c,
        "select roster.create_tenant($1, $2) as id",
        &[&slug, &name],
    )
    .await[0]
        .get("id")
}

pub async fn create_user(
    c: &impl GenericClient,
    tenant: Uuid,
    email: &str,
    tenant_admin: bool,
) -> Uuid {
    must_run(
        c,
        "select roster.create_user($1, $2, p_is_tenant_admin => $3) as id",
        &[&tenant, &email, &tenant_admin],
    )
    .await[0]
        .get("id")
}

pub async fn create_organization(
    c: &impl GenericClient,
    actor: Uuid,
    name: &str,
    slug: &str,
) -> Uuid {
    must_run(
        c,
        "select id from roster.create_organization($1, $2, $3)",
        &[&actor, &name, &slug],
    )
    .await[0]
        .get("id")
}

pub async fn add_member(
    c: &impl GenericClient,
    actor: Uuid,
    org: Uuid,
    user: Uuid,
    role: &str,
    status: &str,
) {
    must_run(
        c,
        "select * from roster.add_member($1, $2, $3, $4, $5)",
        &[&actor, &org, &user, &role, &status],
    )
    .await;
}

// ============================================================================================
// Raw reads (the tests connect as a superuser)
// ============================================================================================

/// The live membership of `user` in `org` as (role, status), if any.
pub async fn membership(c: &impl GenericClient, org: Uuid, user: Uuid) -> Option<(String, String)> {
    c.query_opt(
        "select role, status from roster.organization_memberships \
          where organization_id = $1 and user_id = $2 and deleted_at is null",
        &[&org, &user],
    )
    .await
    .expect("read a membership")
    .map(|row| (row.get("role"), row.get("status")))
}

/// The number of active owners of `org` that are live users: what the last-owner guard counts.
pub async fn active_owners(c: &impl GenericClient, org: Uuid) -> i64 {
    c.query_one(
        "select count(*) as n from roster.organization_memberships m \
           join roster.users u on u.tenant_id = m.tenant_id and u.id = m.user_id \
          where m.organization_id = $1 and m.role = 'owner' and m.status = 'active' \
            and m.deleted_at is null and u.deleted_at is null",
        &[&org],
    )
    .await
    .expect("count active owners")
    .get("n")
}

/// An organization's authorization version (roster.organization_versions, V42).
pub async fn authz_version(c: &impl GenericClient, org: Uuid) -> i64 {
    c.query_one(
        "select version from roster.organization_versions where organization_id = $1",
        &[&org],
    )
    .await
    .expect("read an organization's version")
    .get("version")
}

/// A user's authorization version (roster.user_versions, V42).
pub async fn user_version(c: &impl GenericClient, user: Uuid) -> i64 {
    c.query_one(
        "select version from roster.user_versions where user_id = $1",
        &[&user],
    )
    .await
    .expect("read a user's version")
    .get("version")
}

/// An organization's authorization version and its updated_at, read together.
pub async fn version_and_touch(
    c: &impl GenericClient,
    org: Uuid,
) -> (i64, chrono::DateTime<chrono::Utc>) {
    let row = c
        .query_one(
            "select v.version, o.updated_at from roster.organizations o \
               join roster.organization_versions v \
                 on v.tenant_id = o.tenant_id and v.organization_id = o.id \
              where o.id = $1",
            &[&org],
        )
        .await
        .expect("read an organization's version and updated_at");
    (row.get("version"), row.get("updated_at"))
}

/// The slugs a listing function returned, in order.
pub fn slugs(rows: &[Row]) -> Vec<String> {
    rows.iter().map(|row| row.get("slug")).collect()
}

// ============================================================================================
// Permission matrices
// ============================================================================================

/// Success, or the SQLSTATE the call must fail with.
pub type Expect = Result<(), &'static str>;

pub const OK: Expect = Ok(());
pub const NO_ACTOR: Expect = Err("RNACT");
pub const NOT_FOUND: Expect = Err("RNFND");
pub const DENIED: Expect = Err("RDNID");

/// Makes every call once per actor kind, with the actor's id bound to `$1`, each in its own
/// transaction that is rolled back, so that the world is the same for every case. After a call
/// that succeeds, `set constraints all immediate` runs the checks deferred to commit (such as
/// "an organization has an owner") so that a success means the transaction could commit.
///
/// `rows` is the matrix: one row per actor kind, one column per call. Every mismatch is reported
/// at once, each naming the actor and the call.
pub async fn assert_matrix<const N: usize>(
    client: &mut Client,
    world: &World,
    calls: [(&str, String); N],
    rows: &[(Actor, [Expect; N])],
) {
    let listed: Vec<Actor> = rows.iter().map(|(actor, _)| *actor).collect();
    assert_eq!(
        listed,
        Actor::ALL,
        "the matrix must list every actor kind once, in order"
    );

    let mut mismatches = Vec::new();
    for (actor, expected) in rows {
        let actor_id = world.id(*actor);
        for ((what, sql), want) in calls.iter().zip(expected) {
            let got = attempt_rolled_back(client, sql, &[&actor_id]).await;
            let want = want.map_err(str::to_owned);
            if got != want {
                mismatches.push(format!(
                    "{actor} calling {what}: expected {}, got {}",
                    describe(&want),
                    describe(&got)
                ));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} case(s) of the matrix failed:\n  {}",
        mismatches.len(),
        mismatches.join("\n  ")
    );
}

/// Runs `sql` in a transaction that is rolled back whatever happens.
pub async fn attempt_rolled_back(
    client: &mut Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<(), String> {
    let tx = client.transaction().await.expect("begin");
    let mut result = tx.query(sql, params).await.map(drop);
    if result.is_ok() {
        result = tx.batch_execute("set constraints all immediate").await;
    }
    tx.rollback().await.expect("rollback");
    result.map_err(|e| sqlstate(&e))
}

fn describe(outcome: &Result<(), String>) -> String {
    match outcome {
        Ok(()) => "success".to_owned(),
        Err(code) => format!("error {code}"),
    }
}

// ============================================================================================
// Concurrency
// ============================================================================================

/// The backend pid of a connection, to watch it from another one.
pub async fn backend_pid(c: &Client) -> i32 {
    c.query_one("select pg_backend_pid() as pid", &[])
        .await
        .expect("pg_backend_pid")
        .get("pid")
}

/// Waits until session `pid` waits for a lock (true) or `task`, which runs its statement, has
/// finished without waiting (false). `monitor` must not be inside a transaction:
/// pg_stat_activity is read once per transaction.
pub async fn wait_until_blocked<T>(monitor: &Client, pid: i32, task: &JoinHandle<T>) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if task.is_finished() {
            return false;
        }
        let waiting: i64 = monitor
            .query_one(
                "select count(*) as n from pg_stat_activity \
                  where pid = $1 and wait_event_type = 'Lock' and datname = current_database()",
                &[&pid],
            )
            .await
            .expect("read pg_stat_activity")
            .get("n");
        if waiting > 0 {
            return true;
        }
        assert!(
            Instant::now() < deadline,
            "session {pid} neither waited for a lock nor finished within 20s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
