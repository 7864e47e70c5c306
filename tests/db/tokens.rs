//! `roster.exchange_token` (V33) as a DBA calls it: the organization an access token is for
//! (the one asked for, else the last active one, else the only one, else none and the choices),
//! who may exchange for what (RNFND, RNACT), and the bookkeeping it does: the chosen
//! membership's last_active_at, and nothing else (no version, no updated_at, no audit event, no
//! notification), while every other membership change stays audited and touched.
//!
//! Comments and grants of every function are checked generically in `security.rs`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tokio_postgres::{Client, GenericClient};
use uuid::Uuid;

use crate::common;
use crate::notifications::ChangeReader;
use crate::support::*;

/// membership id → ((organization, user), last_active_at).
type Memberships = BTreeMap<Uuid, ((Uuid, Uuid), Option<DateTime<Utc>>)>;

/// One row of `roster.exchange_token`.
#[derive(Debug, PartialEq)]
struct Exchanged {
    tenant: Option<Uuid>,
    org: Option<Uuid>,
    name: Option<String>,
    choices: Option<Value>,
}

impl Exchanged {
    /// A scoped answer: `org`, named `name`, of tenant `tenant`, no choices.
    fn scoped(tenant: Uuid, org: Uuid, name: &str) -> Exchanged {
        Exchanged {
            tenant: Some(tenant),
            org: Some(org),
            name: Some(name.to_owned()),
            choices: None,
        }
    }

    /// No organization chosen, and these to choose from.
    fn unscoped(tenant: Uuid, choices: Value) -> Exchanged {
        Exchanged {
            tenant: Some(tenant),
            org: None,
            name: None,
            choices: Some(choices),
        }
    }
}

async fn exchange(c: &impl GenericClient, user: Uuid, org: Option<Uuid>) -> Exchanged {
    let rows = must_run(
        c,
        "select tenant_id, organization_id, organization_name, choices \
           from roster.exchange_token($1, $2)",
        &[&user, &org],
    )
    .await;
    assert_eq!(1, rows.len(), "exchange_token returns one row");
    let row = &rows[0];
    Exchanged {
        tenant: row.get("tenant_id"),
        org: row.get("organization_id"),
        name: row.get("organization_name"),
        choices: row.get("choices"),
    }
}

/// The SQLSTATE an exchange fails with.
async fn exchange_error(c: &impl GenericClient, user: Option<Uuid>, org: Option<Uuid>) -> String {
    sqlstate(
        &must_fail(
            c,
            "select * from roster.exchange_token($1, $2)",
            &[&user, &org],
        )
        .await,
    )
}

/// Every membership row (live or not) as (organization, user) → last_active_at, by its id.
async fn activity(c: &impl GenericClient) -> Memberships {
    must_run(
        c,
        "select id, organization_id, user_id, last_active_at from roster.organization_memberships",
        &[],
    )
    .await
    .iter()
    .map(|row| {
        (
            row.get("id"),
            (
                (row.get("organization_id"), row.get("user_id")),
                row.get("last_active_at"),
            ),
        )
    })
    .collect()
}

/// The (organization, user) pairs whose last_active_at differs between two `activity` reads.
fn changed(before: &Memberships, after: &Memberships) -> Vec<(Uuid, Uuid)> {
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "the same membership rows"
    );
    before
        .iter()
        .filter(|(id, (_, at))| after[*id].1 != *at)
        .map(|(_, (pair, _))| *pair)
        .collect()
}

/// The live membership's last_active_at.
async fn last_active(c: &impl GenericClient, org: Uuid, user: Uuid) -> Option<DateTime<Utc>> {
    c.query_one(
        "select last_active_at from roster.organization_memberships \
          where organization_id = $1 and user_id = $2 and deleted_at is null",
        &[&org, &user],
    )
    .await
    .expect("read last_active_at")
    .get("last_active_at")
}

async fn clock(c: &impl GenericClient) -> DateTime<Utc> {
    must_run(c, "select clock_timestamp() as t", &[]).await[0].get("t")
}

/// Everything an exchange must leave alone, as text: every tenant, user and organization row
/// whole (versions and updated_at included), every membership row but its last_active_at, and
/// the audit trail's size and newest id.
async fn untouched_state(c: &impl GenericClient) -> Vec<String> {
    must_run(
        c,
        "select 'tenant ' || to_jsonb(t)::text as line from roster.tenants t \
         union all select 'user ' || to_jsonb(u)::text from roster.users u \
         union all select 'organization ' || to_jsonb(o)::text from roster.organizations o \
         union all select 'membership ' || (to_jsonb(m) - 'last_active_at')::text \
                     from roster.organization_memberships m \
         union all select 'audit ' || count(*) || ' ' || coalesce(max(id), 0) from roster.audit_events \
         order by 1",
        &[],
    )
    .await
    .iter()
    .map(|row| row.get("line"))
    .collect()
}

/// Fails with the lines of two `untouched_state` reads that differ.
fn assert_untouched(before: &[String], after: &[String]) {
    assert_eq!(before.len(), after.len(), "the same rows");
    let differences: Vec<String> = before
        .iter()
        .zip(after)
        .filter(|(b, a)| b != a)
        .map(|(b, a)| format!("before: {b}\n after: {a}"))
        .collect();
    assert!(
        differences.is_empty(),
        "versions, updated_at, the rest of the memberships and the audit trail are as they were:\n{}",
        differences.join("\n")
    );
}

/// The audit events of a membership, as (action, actor_id), oldest first.
async fn membership_events(
    c: &impl GenericClient,
    org: Uuid,
    user: Uuid,
) -> Vec<(String, Option<Uuid>)> {
    must_run(
        c,
        "select action, actor_id from roster.audit_events \
          where organization_id = $1 and target_user_id = $2 and action like 'membership.%' \
          order by id",
        &[&org, &user],
    )
    .await
    .iter()
    .map(|row| (row.get("action"), row.get("actor_id")))
    .collect()
}

/// (updated_at, organization authz_version, user authz_version) of a live membership.
async fn touch_and_versions(
    c: &impl GenericClient,
    org: Uuid,
    user: Uuid,
) -> (DateTime<Utc>, i64, i64) {
    let row = must_run(
        c,
        "select m.updated_at, o.version as org_version, u.version as user_version \
           from roster.organization_memberships m \
           join roster.organization_versions o \
             on o.tenant_id = m.tenant_id and o.organization_id = m.organization_id \
           join roster.user_versions u on u.tenant_id = m.tenant_id and u.user_id = m.user_id \
          where m.organization_id = $1 and m.user_id = $2 and m.deleted_at is null",
        &[&org, &user],
    )
    .await
    .remove(0);
    (
        row.get("updated_at"),
        row.get("org_version"),
        row.get("user_version"),
    )
}

async fn world() -> (common::TestDatabase, Client, World) {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    (db, client, w)
}

#[tokio::test]
async fn an_explicit_organization_is_returned_and_only_its_membership_records_the_activity() {
    let (_db, client, w) = world().await;
    let beta = create_organization(&client, w.owner, "Beta Tools", "beta-tools").await;
    add_member(&client, w.owner, beta, w.member, "admin", "active").await;
    add_member(&client, w.owner, beta, w.admin, "member", "active").await;
    let before = activity(&client).await;
    assert!(
        before.values().all(|(_, at)| at.is_none()),
        "nobody has exchanged yet: {before:?}"
    );

    let started = clock(&client).await;
    let got = exchange(&client, w.member, Some(beta)).await;
    let finished = clock(&client).await;
    assert_eq!(Exchanged::scoped(w.tenant, beta, "Beta Tools"), got);
    let after = activity(&client).await;
    assert_eq!(
        vec![(beta, w.member)],
        changed(&before, &after),
        "only the member's membership of Beta records the exchange (not its Acme one, not \
         Beta's other members)"
    );
    let first = last_active(&client, beta, w.member)
        .await
        .expect("last_active_at is set");
    assert!(
        started <= first && first <= finished,
        "last_active_at is the exchange's time: {started} <= {first} <= {finished}"
    );

    // Again: the time moves on, still on that membership alone.
    let got = exchange(&client, w.member, Some(beta)).await;
    assert_eq!(Exchanged::scoped(w.tenant, beta, "Beta Tools"), got);
    let second = last_active(&client, beta, w.member).await.expect("set");
    assert!(second > first, "a later exchange: {second} > {first}");
    assert_eq!(
        vec![(beta, w.member)],
        changed(&before, &activity(&client).await)
    );

    // Another organization of the user: its membership, and the first one keeps its time.
    let got = exchange(&client, w.member, Some(w.org)).await;
    assert_eq!(Exchanged::scoped(w.tenant, w.org, ORG_NAME), got);
    assert!(last_active(&client, w.org, w.member).await.is_some());
    assert_eq!(Some(second), last_active(&client, beta, w.member).await);
}

#[tokio::test]
async fn without_an_organization_the_only_one_the_user_may_act_in_is_picked() {
    let (_db, client, w) = world().await;
    // Memberships that do not count: invited, suspended, expired, removed, of a deleted org.
    let invited = create_organization(&client, w.owner, "Beta Invited", "beta-invited").await;
    add_member(&client, w.owner, invited, w.member, "member", "invited").await;
    let suspended = create_organization(&client, w.owner, "Beta Suspended", "beta-susp").await;
    add_member(&client, w.owner, suspended, w.member, "member", "active").await;
    must_run(
        &client,
        "select * from roster.update_member($1, $2, $3, p_status => 'suspended')",
        &[&w.owner, &suspended, &w.member],
    )
    .await;
    let expired = create_organization(&client, w.owner, "Beta Expired", "beta-expired").await;
    add_member(&client, w.owner, expired, w.member, "member", "active").await;
    must_run(
        &client,
        "update roster.organization_memberships set expires_at = now() - interval '1 minute' \
          where organization_id = $1 and user_id = $2",
        &[&expired, &w.member],
    )
    .await;
    let deleted = create_organization(&client, w.owner, "Beta Deleted", "beta-deleted").await;
    add_member(&client, w.owner, deleted, w.member, "member", "active").await;
    must_run(
        &client,
        "select roster.delete_organization($1, $2)",
        &[&w.owner, &deleted],
    )
    .await;
    let before = activity(&client).await;

    let got = exchange(&client, w.member, None).await;
    assert_eq!(
        Exchanged::scoped(w.tenant, w.org, ORG_NAME),
        got,
        "Acme is the member's only active membership of a live organization"
    );
    assert_eq!(
        vec![(w.org, w.member)],
        changed(&before, &activity(&client).await),
        "the pick is recorded on its membership only"
    );

    // The owner owns all of them but the deleted one, none exchanged for yet: its choices.
    let got = exchange(&client, w.owner, None).await;
    let names: Vec<&str> = got
        .choices
        .as_ref()
        .and_then(Value::as_array)
        .map(|choices| choices.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        (
            None,
            vec![ORG_NAME, "Beta Expired", "Beta Invited", "Beta Suspended"]
        ),
        (got.org, names),
        "the owner's choices: {got:?}"
    );
}

#[tokio::test]
async fn with_several_and_none_active_yet_the_choices_are_the_organizations_the_user_may_act_in() {
    let (_db, client, w) = world().await;
    let user = w.new_user(&client, "chooser@acme.test").await;
    let org = |name: &'static str, slug: &'static str| {
        let client = &client;
        let owner = w.owner;
        async move { create_organization(client, owner, name, slug).await }
    };
    // The three it may act in, created out of name order.
    let zeta = org("Zeta Labs", "zeta-labs").await;
    add_member(&client, w.owner, zeta, user, "admin", "active").await;
    let alpha = org("Alpha Works", "alpha-works").await;
    must_run(
        &client,
        "select * from roster.add_member($1, $2, $3, 'member', 'active', now() + interval '1 day')",
        &[&w.owner, &alpha, &user],
    )
    .await;
    let mid = org("Mid Co", "mid-co").await;
    add_member(&client, w.owner, mid, user, "owner", "active").await;
    // And those it may not.
    let invited = org("Bee Invited", "bee-invited").await;
    add_member(&client, w.owner, invited, user, "member", "invited").await;
    let suspended = org("Cee Suspended", "cee-suspended").await;
    add_member(&client, w.owner, suspended, user, "admin", "active").await;
    must_run(
        &client,
        "select * from roster.update_member($1, $2, $3, p_status => 'suspended')",
        &[&w.owner, &suspended, &user],
    )
    .await;
    let expired = org("Dee Expired", "dee-expired").await;
    add_member(&client, w.owner, expired, user, "member", "active").await;
    must_run(
        &client,
        "update roster.organization_memberships set expires_at = now() - interval '1 second' \
          where organization_id = $1 and user_id = $2",
        &[&expired, &user],
    )
    .await;
    let removed = org("Eee Removed", "eee-removed").await;
    add_member(&client, w.owner, removed, user, "member", "active").await;
    must_run(
        &client,
        "select roster.remove_member($1, $2, $3)",
        &[&w.owner, &removed, &user],
    )
    .await;
    let deleted = org("Eff Deleted", "eff-deleted").await;
    add_member(&client, w.owner, deleted, user, "admin", "active").await;
    must_run(
        &client,
        "select roster.delete_organization($1, $2)",
        &[&w.owner, &deleted],
    )
    .await;
    let before = activity(&client).await;

    let got = exchange(&client, user, None).await;
    assert_eq!(
        Exchanged::unscoped(
            w.tenant,
            json!([
                {"id": alpha, "slug": "alpha-works", "name": "Alpha Works", "role": "member"},
                {"id": mid, "slug": "mid-co", "name": "Mid Co", "role": "owner"},
                {"id": zeta, "slug": "zeta-labs", "name": "Zeta Labs", "role": "admin"},
            ])
        ),
        got,
        "the active, unexpired memberships of live organizations, by name"
    );
    assert_eq!(
        Vec::<(Uuid, Uuid)>::new(),
        changed(&before, &activity(&client).await),
        "no choice, no activity recorded"
    );

    // A user with no organization at all: none, and an empty list (not null).
    assert_eq!(
        Exchanged::unscoped(w.tenant, json!([])),
        exchange(&client, w.non_member, None).await
    );
    // Nor does a tenant admin get one it is no member of.
    assert_eq!(
        Exchanged::unscoped(w.tenant, json!([])),
        exchange(&client, w.tenant_admin, None).await
    );
    // The invited and the suspended members of Acme have only that one, which does not count.
    for user in [w.invited, w.suspended] {
        assert_eq!(
            Exchanged::unscoped(w.tenant, json!([])),
            exchange(&client, user, None).await
        );
    }
}

#[tokio::test]
async fn without_an_organization_the_last_exchanged_one_is_picked() {
    let (_db, client, w) = world().await;
    let user = w.new_user(&client, "hopper@acme.test").await;
    let a = create_organization(&client, w.owner, "Org A", "org-a").await;
    let b = create_organization(&client, w.owner, "Org B", "org-b").await;
    let c = create_organization(&client, w.owner, "Org C", "org-c").await;
    for org in [a, b, c] {
        add_member(&client, w.owner, org, user, "member", "active").await;
    }
    let got = exchange(&client, user, None).await;
    assert_eq!(None, got.org, "three and none active yet: {got:?}");
    assert_eq!(
        3,
        got.choices
            .as_ref()
            .and_then(Value::as_array)
            .map_or(0, Vec::len),
        "{got:?}"
    );

    assert_eq!(
        Exchanged::scoped(w.tenant, b, "Org B"),
        exchange(&client, user, Some(b)).await
    );
    let explicit = last_active(&client, b, user).await.expect("B recorded");
    assert_eq!(
        Exchanged::scoped(w.tenant, b, "Org B"),
        exchange(&client, user, None).await,
        "B was the last exchanged for"
    );
    let picked = last_active(&client, b, user).await.expect("B recorded");
    assert!(
        picked > explicit,
        "the pick is recorded too: {picked} > {explicit}"
    );

    assert_eq!(
        Exchanged::scoped(w.tenant, a, "Org A"),
        exchange(&client, user, Some(a)).await
    );
    assert_eq!(
        Exchanged::scoped(w.tenant, a, "Org A"),
        exchange(&client, user, None).await,
        "now A was"
    );
    assert_eq!(
        Exchanged::scoped(w.tenant, a, "Org A"),
        exchange(&client, user, None).await,
        "and stays so"
    );
    assert_eq!(None, last_active(&client, c, user).await, "C never chosen");

    // The last active among those the user may still act in: A suspended, B's time is the
    // latest left (C has none), though two remain.
    must_run(
        &client,
        "select * from roster.update_member($1, $2, $3, p_status => 'suspended')",
        &[&w.owner, &a, &user],
    )
    .await;
    assert_eq!(
        Exchanged::scoped(w.tenant, b, "Org B"),
        exchange(&client, user, None).await,
        "A suspended"
    );
    // B expired: C is the only one left.
    must_run(
        &client,
        "update roster.organization_memberships set expires_at = now() - interval '1 second' \
          where organization_id = $1 and user_id = $2",
        &[&b, &user],
    )
    .await;
    assert_eq!(
        Exchanged::scoped(w.tenant, c, "Org C"),
        exchange(&client, user, None).await,
        "B expired"
    );
    // C deleted: nothing left.
    must_run(
        &client,
        "select roster.delete_organization($1, $2)",
        &[&w.owner, &c],
    )
    .await;
    assert_eq!(
        Exchanged::unscoped(w.tenant, json!([])),
        exchange(&client, user, None).await,
        "C deleted"
    );
}

#[tokio::test]
async fn an_organization_the_user_may_not_see_is_not_found() {
    let (_db, client, w) = world().await;
    let deleted = create_organization(&client, w.owner, "Gone Co", "gone-co").await;
    add_member(&client, w.owner, deleted, w.member, "member", "active").await;
    must_run(
        &client,
        "select roster.delete_organization($1, $2)",
        &[&w.owner, &deleted],
    )
    .await;
    let expired = create_organization(&client, w.owner, "Expired Co", "expired-co").await;
    add_member(&client, w.owner, expired, w.member, "member", "active").await;
    must_run(
        &client,
        "update roster.organization_memberships set expires_at = now() - interval '1 second' \
          where organization_id = $1 and user_id = $2",
        &[&expired, &w.member],
    )
    .await;
    let removed = create_organization(&client, w.owner, "Removed Co", "removed-co").await;
    add_member(&client, w.owner, removed, w.member, "member", "active").await;
    must_run(
        &client,
        "select roster.remove_member($1, $2, $3)",
        &[&w.owner, &removed, &w.member],
    )
    .await;
    let before = activity(&client).await;

    let cases = [
        ("a non-member", w.non_member, w.org),
        ("an invited user", w.invited, w.org),
        ("a suspended member", w.suspended, w.org),
        (
            "a user of another tenant, for this tenant's org",
            w.other_tenant_user,
            w.org,
        ),
        ("a member, for another tenant's org", w.owner, w.other_org),
        (
            "a tenant admin, for another tenant's org",
            w.tenant_admin,
            w.other_org,
        ),
        (
            "a member, for an organization that never existed",
            w.member,
            Uuid::new_v4(),
        ),
        ("a member of a deleted organization", w.member, deleted),
        ("a member whose membership expired", w.member, expired),
        ("a removed member", w.member, removed),
    ];
    let mut mismatches = Vec::new();
    for (what, user, org) in cases {
        let got = exchange_error(&client, Some(user), Some(org)).await;
        if got != "RNFND" {
            mismatches.push(format!("{what}: expected RNFND, got {got}"));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert_eq!(
        Vec::<(Uuid, Uuid)>::new(),
        changed(&before, &activity(&client).await),
        "a refused exchange records nothing"
    );

    // A tenant admin sees every organization of its tenant, member or not: there is no
    // membership to record the activity on.
    assert_eq!(
        Exchanged::scoped(w.tenant, w.org, ORG_NAME),
        exchange(&client, w.tenant_admin, Some(w.org)).await
    );
    assert_eq!(
        Vec::<(Uuid, Uuid)>::new(),
        changed(&before, &activity(&client).await),
        "the tenant admin has no membership"
    );
}

#[tokio::test]
async fn an_unknown_or_deleted_user_is_no_actor() {
    let (_db, client, w) = world().await;
    let before = activity(&client).await;
    let cases = [
        ("an unknown user", Some(w.unknown_user), None),
        (
            "an unknown user, with an org",
            Some(w.unknown_user),
            Some(w.org),
        ),
        ("a deleted user", Some(w.deleted_user), None),
        (
            "a deleted user, with its org",
            Some(w.deleted_user),
            Some(w.org),
        ),
        ("a null user", None, None),
        ("a null user, with an org", None, Some(w.org)),
    ];
    let mut mismatches = Vec::new();
    for (what, user, org) in cases {
        let got = exchange_error(&client, user, org).await;
        if got != "RNACT" {
            mismatches.push(format!("{what}: expected RNACT, got {got}"));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert_eq!(
        Vec::<(Uuid, Uuid)>::new(),
        changed(&before, &activity(&client).await),
        "the deleted user's membership records nothing"
    );
}

#[tokio::test]
async fn an_exchange_bumps_no_version_touches_nothing_audits_nothing_and_announces_nothing() {
    let (_db, client, w) = world().await;
    let beta = create_organization(&client, w.owner, "Beta Tools", "beta-tools").await;
    add_member(&client, w.owner, beta, w.member, "member", "active").await;
    let mut reader = ChangeReader::start(&client).await;
    let before = untouched_state(&client).await;
    let activity_before = activity(&client).await;

    // An owner (whose row the last-owner guard watches), an admin, a member by choice and by
    // the only-one rule, the same one twice, and a tenant admin with no membership.
    exchange(&client, w.owner, Some(w.org)).await;
    exchange(&client, w.admin, Some(w.org)).await;
    exchange(&client, w.member, Some(beta)).await;
    exchange(&client, w.member, None).await;
    exchange(&client, w.member, Some(w.org)).await;
    exchange(&client, w.owner, None).await;
    exchange(&client, w.tenant_admin, Some(beta)).await;
    exchange(&client, w.member, None).await;

    let mut recorded = changed(&activity_before, &activity(&client).await);
    recorded.sort();
    let mut expected = vec![
        (w.org, w.owner),
        (w.org, w.admin),
        (beta, w.member),
        (w.org, w.member),
    ];
    expected.sort();
    assert_eq!(
        expected, recorded,
        "the exchanges did record their activity"
    );
    assert_eq!(
        Vec::<Value>::new(),
        reader.changes(&client).await,
        "nothing in the change log: no cache entry or token goes stale"
    );
    assert_untouched(&before, &untouched_state(&client).await);
}

/// Every membership update but the exchange's own is audited as before V33; anything beyond
/// an activity report also touches updated_at and bumps the versions.
#[tokio::test]
async fn every_other_membership_update_is_still_audited_touched_and_versioned() {
    let (_db, client, w) = world().await;
    let (org, member) = (w.org, w.member);
    let events = membership_events(&client, org, member).await.len();

    // Through the function.
    let (touched, org_version, user_version) = touch_and_versions(&client, org, member).await;
    must_run(
        &client,
        "select * from roster.update_member($1, $2, $3, p_role => 'admin')",
        &[&w.owner, &org, &member],
    )
    .await;
    let after = touch_and_versions(&client, org, member).await;
    assert!(after.0 > touched, "update_member touches updated_at");
    assert!(
        after.1 > org_version && after.2 > user_version,
        "and bumps both versions"
    );
    let trail = membership_events(&client, org, member).await;
    assert_eq!(
        &[("membership.updated".to_owned(), Some(w.owner))][..],
        &trail[events..],
        "update_member is audited with its actor"
    );

    // Raw SQL, a role alone; then a role together with an activity report.
    for (what, statement) in [
        (
            "a raw role change",
            "update roster.organization_memberships set role = 'member' \
              where organization_id = $1 and user_id = $2",
        ),
        (
            "a raw role change with an activity report",
            "update roster.organization_memberships set role = 'admin', last_active_at = now() \
              where organization_id = $1 and user_id = $2",
        ),
        (
            "a raw expiry change",
            "update roster.organization_memberships set expires_at = now() + interval '1 day' \
              where organization_id = $1 and user_id = $2",
        ),
    ] {
        let events = membership_events(&client, org, member).await.len();
        let (touched, org_version, user_version) = touch_and_versions(&client, org, member).await;
        must_run(&client, statement, &[&org, &member]).await;
        let after = touch_and_versions(&client, org, member).await;
        assert!(after.0 > touched, "{what} touches updated_at");
        assert!(
            after.1 > org_version && after.2 > user_version,
            "{what} bumps both versions"
        );
        let trail = membership_events(&client, org, member).await;
        assert_eq!(
            &[("membership.updated".to_owned(), None)][..],
            &trail[events..],
            "{what} is audited, with no actor"
        );
    }

    // A raw activity report alone (a DBA, a service that tracks activity), on a connection
    // that has just exchanged (whose exemption lasts for that call only): it keeps updated_at
    // and the versions, but stays in the trail; only the exchange's own report is left out.
    exchange(&client, member, Some(org)).await;
    let events = membership_events(&client, org, member).await.len();
    let before = touch_and_versions(&client, org, member).await;
    let reported = last_active(&client, org, member).await;
    must_run(
        &client,
        "update roster.organization_memberships set last_active_at = now() \
          where organization_id = $1 and user_id = $2",
        &[&org, &member],
    )
    .await;
    assert_ne!(reported, last_active(&client, org, member).await, "written");
    assert_eq!(
        before,
        touch_and_versions(&client, org, member).await,
        "an activity report keeps updated_at and the versions"
    );
    assert_eq!(
        &[("membership.updated".to_owned(), None)][..],
        &membership_events(&client, org, member).await[events..],
        "a raw activity report is audited, with no actor"
    );
}

/// Two exchanges in one transaction write the same now(): the second is no change of
/// last_active_at, and must not count as a change of something else.
#[tokio::test]
async fn a_repeated_exchange_in_one_transaction_is_still_no_change() {
    let (_db, mut client, w) = world().await;
    let before = untouched_state(&client).await;
    let tx = client.transaction().await.expect("begin");
    exchange(&tx, w.member, Some(w.org)).await;
    exchange(&tx, w.member, Some(w.org)).await;
    tx.commit().await.expect("commit");
    assert_untouched(&before, &untouched_state(&client).await);
}

/// The API's statement, as the API's role: the exchange writes a table roster_app has no
/// privilege on (security definer) and, as for anyone, audits and touches nothing else; the
/// claims read in the same statement carry the
/// versions a token's `av` is the sum of.
#[tokio::test]
async fn roster_app_exchanges_and_reads_the_claims_in_one_statement() {
    let (_db, mut client, w) = world().await;
    let before = untouched_state(&client).await;
    let tx = client.transaction().await.expect("begin");
    tx.batch_execute("set local role roster_app")
        .await
        .expect("set role roster_app");
    let row = must_run(
        &tx,
        "select x.organization_id, a.role, a.tenant_version + a.user_version + a.org_version as av \
           from roster.exchange_token($1, $2) x \
          cross join lateral roster.member_access($1, x.organization_id) a",
        &[&w.member, &Some(w.org)],
    )
    .await
    .remove(0);
    tx.commit().await.expect("commit as roster_app");
    assert_eq!(Some(w.org), row.get::<_, Option<Uuid>>("organization_id"));
    assert_eq!(Some("member"), row.get::<_, Option<&str>>("role"));
    let versions: i64 = must_run(
        &client,
        "select t.authz_version + u.version + o.version as av \
           from roster.user_versions u \
           join roster.tenants t on t.id = u.tenant_id \
           join roster.organization_versions o \
             on o.tenant_id = u.tenant_id and o.organization_id = $2 \
          where u.user_id = $1",
        &[&w.member, &w.org],
    )
    .await[0]
        .get("av");
    assert_eq!(
        versions,
        row.get::<_, i64>("av"),
        "av is the tenant's, the user's and the organization's authz_version"
    );
    assert!(
        last_active(&client, w.org, w.member).await.is_some(),
        "recorded as roster_app"
    );
    assert_untouched(&before, &untouched_state(&client).await);
}
