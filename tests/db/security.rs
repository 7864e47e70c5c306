//! Security of the schema: comments for `\df+`, `security definer` with a pinned search_path,
//! and grants function by function. `roster_app` (the API) may call the actor-checked functions
//! and lookups and nothing else; `roster_provisioner` creates tenants and users; nobody else,
//! PUBLIC included, may call anything.

use tokio_postgres::Client;
use uuid::Uuid;

use crate::common;
use crate::support::*;

/// The functions `roster_app` may call.
const APP_FUNCTIONS: &[&str] = &[
    "accept_invitation",
    "accept_invitation_token",
    "accessible_resource_ids",
    "add_domain",
    "add_group_member",
    "add_member",
    "caller_identity",
    "change_reader_heartbeat",
    "changes_after",
    "create_group",
    "create_organization",
    "create_role",
    "decline_invitation_token",
    "delete_group",
    "delete_organization",
    "delete_role",
    "effective_permissions",
    "exchange_token",
    "explain_access",
    "find_organizations_by_domain",
    "get_grant",
    "get_group",
    "get_group_member",
    "get_member",
    "get_organization",
    "get_role",
    "grant_role",
    "has_permission",
    "invite",
    "invite_many",
    "join_organization",
    "list_audit_events",
    "list_domains",
    "list_grants",
    "list_group_members",
    "list_groups",
    "list_invitations",
    "list_members",
    "list_my_invitations",
    "list_organizations",
    "list_permissions",
    "list_resources",
    "list_roles",
    "list_subjects_with_permission",
    "list_suggested_organizations",
    "list_tenant_audit_events",
    "list_tenant_organizations",
    "list_user_groups",
    "list_user_organizations",
    "member_access",
    "member_role",
    "permission_catalogue",
    "register_change_reader",
    "register_permissions",
    "remove_domain",
    "remove_group_member",
    "remove_member",
    "resend_invitation",
    "resource_access",
    "retire_permission",
    "revoke_grant",
    "revoke_invitation",
    "set_invitation_lifetime",
    "set_resource_parent",
    "update_domain",
    "update_group",
    "update_member",
    "update_organization",
    "update_role",
    "verify_domain",
];

/// The functions `roster_provisioner` may call.
const PROVISIONER_FUNCTIONS: &[&str] = &[
    "accept_invitation_as_new_user",
    "create_tenant",
    "create_user",
    "expire_invitations",
    "list_permissions",
    "purge_expired",
    "register_permissions",
    "retire_permission",
    "set_invitation_lifetime",
    "verify_domain_as_provisioner",
];

/// The signatures of the functions of schema roster that satisfy `condition` (on pg_proc `p`).
async fn functions_where(client: &Client, condition: &str) -> Vec<String> {
    let sql = format!(
        "select p.oid::regprocedure::text as signature
           from pg_catalog.pg_proc p
           join pg_catalog.pg_namespace n on n.oid = p.pronamespace
          where n.nspname = 'roster' and ({condition})
          order by 1"
    );
    must_run(client, &sql, &[])
        .await
        .iter()
        .map(|row| row.get("signature"))
        .collect()
}

/// Public functions: neither trigger functions nor internal `_` helpers.
const PUBLIC: &str =
    "p.prorettype <> 'pg_catalog.trigger'::pg_catalog.regtype and p.proname !~ '^_'";

#[tokio::test]
async fn every_public_function_has_a_comment() {
    let db = common::fresh_database().await;
    let client = db.client().await;

    // By name: an overload (has_permission with a resource) is granted like the original.
    let mut public: Vec<String> = functions_where(&client, PUBLIC)
        .await
        .iter()
        .map(|signature| {
            signature
                .split('(')
                .next()
                .unwrap_or_default()
                .trim_start_matches("roster.")
                .to_owned()
        })
        .collect();
    public.dedup();
    let mut granted: Vec<&str> = APP_FUNCTIONS
        .iter()
        .chain(PROVISIONER_FUNCTIONS)
        .copied()
        .collect();
    granted.sort_unstable();
    granted.dedup();
    assert_eq!(
        public.len(),
        granted.len(),
        "the public functions are those granted to roster_app and roster_provisioner: {public:?}"
    );
    let uncommented = functions_where(
        &client,
        &format!(
            "{PUBLIC} and coalesce(btrim(pg_catalog.obj_description(p.oid, 'pg_proc')), '') = ''"
        ),
    )
    .await;
    assert!(
        uncommented.is_empty(),
        "functions without `comment on function`: {uncommented:?}"
    );
}

/// The internal helpers the planner inlines into their callers (see the test below).
const INLINED: &str = "array['_member_rows', '_group_rows', '_grant_rows', '_reaching_groups', \
                       '_reaching_grants', '_resource_ancestors', '_grants_allow', '_catalogue']";

#[tokio::test]
async fn public_functions_are_security_definer_and_every_function_pins_its_search_path() {
    let db = common::fresh_database().await;
    let client = db.client().await;

    let invoker = functions_where(&client, &format!("{PUBLIC} and not p.prosecdef")).await;
    assert!(
        invoker.is_empty(),
        "public functions that are not security definer: {invoker:?}"
    );

    // The exceptions: internal `language sql` helpers that the planner must inline, which a SET
    // clause would prevent. None is security definer or callable by the API's role; each names
    // everything by schema and runs inside callers that pin the path.
    let unpinned = functions_where(
        &client,
        &format!(
            "not coalesce(p.proconfig @> array['search_path=pg_catalog, pg_temp'], false) \
         and p.proname <> all ({INLINED})"
        ),
    )
    .await;
    assert!(
        unpinned.is_empty(),
        "functions without `set search_path = pg_catalog, pg_temp`: {unpinned:?}"
    );
    let inlined_definers = functions_where(
        &client,
        &format!("p.prosecdef and p.proname = any ({INLINED})"),
    )
    .await;
    assert!(
        inlined_definers.is_empty(),
        "inlined helpers must not be security definer: {inlined_definers:?}"
    );
}

/// The names of the roster functions `role` may execute.
async fn executable_by(client: &impl tokio_postgres::GenericClient, role: &str) -> Vec<String> {
    must_run(
        client,
        "select p.proname::text as name
           from pg_catalog.pg_proc p
           join pg_catalog.pg_namespace n on n.oid = p.pronamespace
          where n.nspname = 'roster' and pg_catalog.has_function_privilege($1, p.oid, 'execute')
          order by 1",
        &[&role],
    )
    .await
    .iter()
    .map(|row| row.get::<_, String>("name"))
    .fold(Vec::new(), |mut names, name| {
        // One entry per name: overloads are granted together.
        if names.last() != Some(&name) {
            names.push(name);
        }
        names
    })
}

#[tokio::test]
async fn execute_is_granted_function_by_function() {
    let db = common::fresh_database().await;
    let mut client = db.client().await;

    assert_eq!(
        executable_by(&client, "roster_app").await,
        APP_FUNCTIONS,
        "roster_app"
    );
    assert_eq!(
        executable_by(&client, "roster_provisioner").await,
        PROVISIONER_FUNCTIONS,
        "roster_provisioner"
    );

    // PUBLIC, seen through a role with no grants of its own (roles are cluster-wide: it only
    // lives in this transaction).
    let tx = client.transaction().await.expect("begin");
    let nobody = format!("roster_test_nobody_{}", Uuid::new_v4().simple());
    tx.batch_execute(&format!("create role {nobody}"))
        .await
        .expect("create a role without grants");
    assert_eq!(
        executable_by(&tx, &nobody).await,
        Vec::<String>::new(),
        "a role without grants"
    );
    let usage: bool = must_run(
        &tx,
        "select pg_catalog.has_schema_privilege($1, 'roster', 'usage') as usage",
        &[&nobody],
    )
    .await[0]
        .get("usage");
    assert!(
        !usage,
        "a role without grants should not have usage on schema roster"
    );
    tx.rollback().await.expect("rollback");
}

/// Runs `sql` as `role` in a transaction that is rolled back.
async fn as_role(
    client: &mut Client,
    role: &str,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<(), String> {
    let tx = client.transaction().await.expect("begin");
    tx.batch_execute(&format!("set local role {role}"))
        .await
        .expect("set role");
    let result = tx
        .query(sql, params)
        .await
        .map(drop)
        .map_err(|e| sqlstate(&e));
    tx.rollback().await.expect("rollback");
    result
}

#[tokio::test]
async fn roster_app_can_call_every_api_function() {
    let db = common::fresh_database().await;
    let mut client = db.client().await;
    let w = World::build(&client).await;
    let (org, owner, newcomer) = (w.org, w.owner, w.non_member);

    let tx = client.transaction().await.expect("begin");
    tx.batch_execute("set local role roster_app")
        .await
        .expect("set role roster_app");
    #[rustfmt::skip]
    let calls: [(&str, &[&(dyn tokio_postgres::types::ToSql + Sync)]); 17] = [
        ("select * from roster.get_organization($1, $2)", &[&owner, &org]),
        ("select * from roster.list_organizations($1)", &[&owner]),
        ("select * from roster.list_user_organizations($1, $2)", &[&w.tenant_admin, &owner]),
        ("select * from roster.list_tenant_organizations($1)", &[&w.tenant_admin]),
        (r#"select * from roster.update_organization($1, $2, '{"description": "by the API"}')"#, &[&owner, &org]),
        ("select * from roster.add_member($1, $2, $3, 'member', 'invited')", &[&owner, &org, &newcomer]),
        ("select * from roster.accept_invitation($1, $2)", &[&newcomer, &org]),
        ("select * from roster.update_member($1, $2, $3, 'admin')", &[&owner, &org, &newcomer]),
        ("select * from roster.list_members($1, $2)", &[&owner, &org]),
        ("select * from roster.get_member($1, $2, $3)", &[&owner, &org, &newcomer]),
        ("select * from roster.list_audit_events($1, $2)", &[&owner, &org]),
        ("select roster.member_role($1, $2)", &[&newcomer, &org]),
        ("select roster.has_permission($1, $2, 'members:read')", &[&newcomer, &org]),
        ("select * from roster.member_access($1, $2)", &[&newcomer, &org]),
        ("select * from roster.caller_identity($1)", &[&newcomer]),
        ("select * from roster.remove_member($1, $2, $3)", &[&owner, &org, &newcomer]),
        ("select * from roster.delete_organization($1, $2)", &[&owner, &org]),
    ];
    for (sql, params) in calls {
        if let Err(e) = tx.query(sql, params).await {
            panic!(
                "roster_app calling `{sql}`: {} {}",
                sqlstate(&e),
                message(&e)
            );
        }
    }
    tx.commit().await.expect("commit as roster_app");
}

/// create_organization inserts the organization and its owner; the check that it has one is a
/// trigger deferred to commit, which runs outside the security definer function, as the caller.
#[tokio::test]
async fn roster_app_can_create_an_organization() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;

    // Autocommit, as the API calls it.
    client
        .batch_execute("set role roster_app")
        .await
        .expect("set role roster_app");
    let got = attempt(
        &client,
        "select * from roster.create_organization($1, 'App Org', 'app-org')",
        &[&w.member],
    )
    .await;
    assert_eq!(
        got.map(drop),
        Ok(()),
        "roster_app calling create_organization"
    );
}

#[tokio::test]
async fn roster_app_has_no_table_privileges() {
    let db = common::fresh_database().await;
    let mut client = db.client().await;
    World::build(&client).await;

    let tables = must_run(
        &client,
        "select c.relname::text as name,
                (select a.attname::text from pg_catalog.pg_attribute a
                  where a.attrelid = c.oid and a.attnum = 1) as first_column
           from pg_catalog.pg_class c
           join pg_catalog.pg_namespace n on n.oid = c.relnamespace
          where n.nspname = 'roster' and c.relkind in ('r', 'p', 'v', 'm')
          order by 1",
        &[],
    )
    .await;
    let names: Vec<String> = tables.iter().map(|t| t.get("name")).collect();
    for expected in [
        "tenants",
        "users",
        "organizations",
        "organization_memberships",
        "permissions",
        "roles",
        "tenant_permissions",
        "audit_events",
        "audit_secret",
        "groups",
        "group_members",
        "grants",
        "resource_parents",
        "resource_versions",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} among {names:?}"
        );
    }
    for table in &tables {
        let (name, column): (String, String) = (table.get("name"), table.get("first_column"));
        for sql in [
            format!("select * from roster.{name}"),
            format!("insert into roster.{name} default values"),
            format!("update roster.{name} set {column} = {column}"),
            format!("delete from roster.{name}"),
            format!("truncate roster.{name}"),
        ] {
            let got = as_role(&mut client, "roster_app", &sql, &[]).await;
            assert_eq!(got, Err("42501".into()), "roster_app running `{sql}`");
        }
    }
}

#[tokio::test]
async fn only_the_provisioner_creates_tenants_and_users() {
    let db = common::fresh_database().await;
    let mut client = db.client().await;
    let w = World::build(&client).await;

    let create_tenant = "select roster.create_tenant('initech', 'Initech')";
    let create_user = format!("select roster.create_user('{}', 'new@acme.test')", w.tenant);
    for sql in [create_tenant, create_user.as_str()] {
        assert_eq!(
            as_role(&mut client, "roster_app", sql, &[]).await,
            Err("42501".into()),
            "roster_app running `{sql}`"
        );
        assert_eq!(
            as_role(&mut client, "roster_provisioner", sql, &[]).await,
            Ok(()),
            "roster_provisioner running `{sql}`"
        );
    }
    // ... and nothing else.
    let get = "select * from roster.get_organization($1, $2)";
    assert_eq!(
        as_role(&mut client, "roster_provisioner", get, &[&w.owner, &w.org]).await,
        Err("42501".into()),
        "roster_provisioner calling get_organization"
    );
}

/// User ids are unique only per tenant (the primary key includes tenant_id). If one id ever
/// appears in two tenants, acting as it fails rather than picking a tenant.
#[tokio::test]
async fn an_actor_id_shared_by_two_tenants_fails_closed() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    must_run(
        &client,
        "insert into roster.users (tenant_id, id, email) values ($1, $2, 'twin@globex.test')",
        &[&w.other_tenant, &w.owner],
    )
    .await;

    let got = attempt(
        &client,
        "select * from roster.get_organization($1, $2)",
        &[&w.owner, &w.org],
    )
    .await;
    assert_eq!(
        got.map(drop),
        Err("RAMBG".into()),
        "RAMBG (an id in two tenants) from roster._access"
    );
}

/// Any role may `set constraints all deferred`; the last-owner guard then runs at commit, outside
/// the security definer function, as that role. It must still hold, and say RLOWN.
#[tokio::test]
async fn roster_app_cannot_defer_its_way_past_the_guard() {
    let db = common::fresh_database().await;
    let mut client = db.client().await;
    let w = World::build(&client).await;

    let tx = client.transaction().await.expect("begin");
    tx.batch_execute("set local role roster_app; set constraints all deferred")
        .await
        .expect("defer every constraint as roster_app");
    must_run(
        &tx,
        "select * from roster.remove_member($1, $2, $1)",
        &[&w.owner, &w.org],
    )
    .await;
    let got = tx.commit().await.map_err(|e| sqlstate(&e));
    assert_eq!(
        got,
        Err("RLOWN".into()),
        "committing the last owner's departure as roster_app"
    );
    assert_eq!(active_owners(&client, w.org).await, 1);
}

/// What the exceptions above buy: the planner inlines each helper into the query that calls
/// it, so that it is planned once with its caller's cached plan instead of at every call.
#[tokio::test]
async fn the_inlined_helpers_are_inlined() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let id = "'00000000-0000-0000-0000-000000000001'::uuid";
    for (call, name) in [
        (
            format!("select * from roster._member_rows({id}, {id})"),
            "_member_rows",
        ),
        (
            format!("select * from roster._group_rows({id}, {id})"),
            "_group_rows",
        ),
        (
            format!("select * from roster._grant_rows({id}, {id})"),
            "_grant_rows",
        ),
        (
            format!("select * from roster._reaching_groups({id}, {id}, {id})"),
            "_reaching_groups",
        ),
        (
            format!("select * from roster._reaching_grants({id}, {id}, {id})"),
            "_reaching_grants",
        ),
        (
            format!("select * from roster._resource_ancestors({id}, {id}, 'model', '1')"),
            "_resource_ancestors",
        ),
        (
            format!("select * from roster._catalogue({id})"),
            "_catalogue",
        ),
        (
            "select roster._grants_allow(x.g, 'a:b') from (values (array['a:*'])) x(g)".to_owned(),
            "_grants_allow",
        ),
    ] {
        let plan: Vec<String> = must_run(
            &client,
            &format!("explain (verbose, costs off) {call}"),
            &[],
        )
        .await
        .iter()
        .map(|row| row.get::<_, String>(0))
        .collect();
        let plan = plan.join("\n");
        assert!(!plan.contains(name), "`{call}` is not inlined:\n{plan}");
    }
}
