//! Verified domains and joining (V30): who manages and who verifies, one organization per
//! verified domain of a tenant (raw SQL included), the provisioning role's verification,
//! suggestions, finding by domain, joining only through a verified auto_join domain, and the
//! audit trail.

use tokio_postgres::{Client, GenericClient};
use uuid::Uuid;

use crate::common;
use crate::support::*;

async fn add_domain(
    c: &impl GenericClient,
    actor: Uuid,
    org: Uuid,
    domain: &str,
    policy: &str,
) -> String {
    must_run(
        c,
        "select verification_token from roster.add_domain($1, $2, $3, $4)",
        &[&actor, &org, &domain, &policy],
    )
    .await[0]
        .get("verification_token")
}

async fn verify(c: &impl GenericClient, w: &World, org: Uuid, domain: &str) {
    must_run(
        c,
        "select * from roster.verify_domain($1, $2, $3)",
        &[&w.tenant_admin, &org, &domain],
    )
    .await;
}

async fn world() -> (common::TestDatabase, Client, World) {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    (db, client, w)
}

#[tokio::test]
async fn who_manages_and_who_verifies_domains() {
    let (_db, mut client, w) = world().await;
    add_domain(&client, w.owner, w.org, "claimed.test", "none").await;
    let org = w.org;
    assert_matrix(
        &mut client,
        &w,
        [
            ("add", format!("select * from roster.add_domain($1, '{org}', 'new.test')")),
            ("list", format!("select * from roster.list_domains($1, '{org}')")),
            ("update", format!(r#"select * from roster.update_domain($1, '{org}', 'claimed.test', '{{"policy": "suggest"}}')"#)),
            ("remove", format!("select roster.remove_domain($1, '{org}', 'claimed.test')")),
            ("verify", format!("select * from roster.verify_domain($1, '{org}', 'claimed.test')")),
            ("join role owner", format!("select * from roster.add_domain($1, '{org}', 'own.test', 'auto_join', 'owner')")),
        ],
        &[
            (Actor::Owner, [OK, OK, OK, OK, DENIED, OK]),
            (Actor::Admin, [OK, OK, OK, OK, DENIED, DENIED]),
            (Actor::Member, [DENIED, DENIED, DENIED, DENIED, DENIED, DENIED]),
            (Actor::Invited, [NOT_FOUND; 6]),
            (Actor::Suspended, [NOT_FOUND; 6]),
            (Actor::NonMember, [NOT_FOUND; 6]),
            (Actor::OtherTenant, [NOT_FOUND; 6]),
            (Actor::TenantAdmin, [OK; 6]),
            (Actor::DeletedUser, [NO_ACTOR; 6]),
            (Actor::UnknownUser, [NO_ACTOR; 6]),
        ],
    )
    .await;

    for (what, sql, code) in [
        (
            "an uppercase domain",
            "select * from roster.add_domain($1, $2, 'Acme.com')",
            "RINVL",
        ),
        (
            "no dot",
            "select * from roster.add_domain($1, $2, 'localhost')",
            "RINVL",
        ),
        (
            "an unknown policy",
            "select * from roster.add_domain($1, $2, 'p.test', 'everyone')",
            "RINVL",
        ),
        (
            "an unknown join role",
            "select * from roster.add_domain($1, $2, 'r.test', 'auto_join', 'nobody')",
            "RINVL",
        ),
        (
            "twice",
            "select * from roster.add_domain($1, $2, 'claimed.test')",
            "23505",
        ),
        (
            "updating an unclaimed domain",
            r#"select * from roster.update_domain($1, $2, 'other.test', '{"policy": "none"}')"#,
            "RDMNF",
        ),
        (
            "an unknown field",
            r#"select * from roster.update_domain($1, $2, 'claimed.test', '{"status": "verified"}')"#,
            "RINVL",
        ),
        (
            "nothing to change",
            "select * from roster.update_domain($1, $2, 'claimed.test', '{}')",
            "RINVL",
        ),
        (
            "removing an unclaimed domain",
            "select roster.remove_domain($1, $2, 'other.test')",
            "RDMNF",
        ),
    ] {
        let got = attempt(&client, sql, &[&w.owner, &w.org]).await;
        assert_eq!(got.map(drop), Err(code.into()), "{what}");
    }
    let verified = must_run(&client, "select status, verified_by_user_id, verified_at is not null as stamped from roster.verify_domain($1, $2, 'claimed.test')", &[&w.tenant_admin, &w.org]).await.remove(0);
    assert_eq!("verified", verified.get::<_, &str>("status"));
    assert_eq!(
        Some(w.tenant_admin),
        verified.get::<_, Option<Uuid>>("verified_by_user_id")
    );
    assert!(verified.get::<_, bool>("stamped"));
    let again = attempt(
        &client,
        "select * from roster.verify_domain($1, $2, 'claimed.test')",
        &[&w.tenant_admin, &w.org],
    )
    .await;
    assert_eq!(again.map(drop), Ok(()), "verifying again changes nothing");
}

#[tokio::test]
async fn a_verified_domain_belongs_to_one_organization_of_a_tenant() {
    let (_db, client, w) = world().await;
    let second = create_organization(&client, w.owner, "Second", "second").await;
    add_domain(&client, w.owner, w.org, "acme.com", "auto_join").await;
    add_domain(&client, w.owner, second, "acme.com", "none").await;
    // Claims may compete; verification decides.
    verify(&client, &w, w.org, "acme.com").await;
    let got = must_fail(
        &client,
        "select * from roster.verify_domain($1, $2, 'acme.com')",
        &[&w.tenant_admin, &second],
    )
    .await;
    assert_eq!(
        (
            "23505".to_owned(),
            Some("uq_organization_domains_verified".to_owned())
        ),
        (sqlstate(&got), constraint(&got))
    );
    let raw = must_fail(
        &client,
        "update roster.organization_domains set status = 'verified' where organization_id = $1",
        &[&second],
    )
    .await;
    assert_eq!(
        (
            "23505".to_owned(),
            Some("uq_organization_domains_verified".to_owned())
        ),
        (sqlstate(&raw), constraint(&raw)),
        "raw SQL too"
    );
    // Another tenant may verify the same domain.
    let theirs = add_domain(
        &client,
        w.other_tenant_user,
        w.other_org,
        "acme.com",
        "none",
    )
    .await;
    assert!(!theirs.is_empty());
    let globex_admin = create_user(&client, w.other_tenant, "root@globex.test", true).await;
    must_run(
        &client,
        "select * from roster.verify_domain($1, $2, 'acme.com')",
        &[&globex_admin, &w.other_org],
    )
    .await;

    // Removing the claim frees it; so does deleting the organization.
    must_run(
        &client,
        "select roster.remove_domain($1, $2, 'acme.com')",
        &[&w.owner, &w.org],
    )
    .await;
    verify(&client, &w, second, "acme.com").await;
    must_run(
        &client,
        "select roster.delete_organization($1, $2)",
        &[&w.owner, &second],
    )
    .await;
    add_domain(&client, w.owner, w.org, "acme.com", "none").await;
    verify(&client, &w, w.org, "acme.com").await;
    let left: i64 = must_run(
        &client,
        "select count(*) as n from roster.organization_domains where organization_id = $1",
        &[&second],
    )
    .await[0]
        .get("n");
    assert_eq!(0, left, "a deleted organization releases its domains");
    for (what, sql) in [
        ("an uppercase domain", "insert into roster.organization_domains (tenant_id, organization_id, domain) values ($1, $2, 'UP.test')"),
        ("an unknown policy", "insert into roster.organization_domains (tenant_id, organization_id, domain, policy) values ($1, $2, 'p.test', 'all')"),
    ] {
        let got = attempt(&client, sql, &[&w.tenant, &w.org]).await;
        assert_eq!(got.map(drop), Err("23514".into()), "raw SQL: {what}");
    }
    let got = attempt(&client, "insert into roster.organization_domains (tenant_id, organization_id, domain, join_role) values ($1, $2, 'j.test', 'nobody')", &[&w.tenant, &w.org]).await;
    assert_eq!(
        got.map(drop),
        Err("RINVL".into()),
        "raw SQL: an unknown join role"
    );
}

#[tokio::test]
async fn the_identity_service_verifies_through_the_provisioning_role() {
    let (_db, mut client, w) = world().await;
    let second = create_organization(&client, w.owner, "Second", "second").await;
    add_domain(&client, w.owner, w.org, "solo.test", "none").await;
    add_domain(&client, w.owner, w.org, "shared.test", "none").await;
    let second_token = add_domain(&client, w.owner, second, "shared.test", "none").await;

    let tx = client.transaction().await.expect("begin");
    tx.batch_execute("set local role roster_provisioner")
        .await
        .expect("set role");
    let solo = must_run(&tx, "select organization_id, status, verified_by_user_id from roster.verify_domain_as_provisioner($1, 'solo.test')", &[&w.tenant]).await.remove(0);
    assert_eq!(
        (w.org, "verified"),
        (
            solo.get::<_, Uuid>("organization_id"),
            solo.get::<_, &str>("status")
        )
    );
    assert_eq!(
        None,
        solo.get::<_, Option<Uuid>>("verified_by_user_id"),
        "no user verified it"
    );
    tx.commit().await.expect("commit");

    for (what, sql, code) in [
        (
            "two claims without the token",
            "select * from roster.verify_domain_as_provisioner($1, 'shared.test')",
            Err("RINVL"),
        ),
        (
            "a wrong token",
            "select * from roster.verify_domain_as_provisioner($1, 'shared.test', 'nope')",
            Err("RDMNF"),
        ),
        (
            "an unclaimed domain",
            "select * from roster.verify_domain_as_provisioner($1, 'none.test')",
            Err("RDMNF"),
        ),
    ] {
        let got = as_provisioner(&mut client, sql, &[&w.tenant]).await;
        assert_eq!(got, code.map_err(str::to_owned), "{what}");
    }
    let got = as_provisioner(
        &mut client,
        "select * from roster.verify_domain_as_provisioner($1, 'shared.test', $2)",
        &[&w.tenant, &second_token],
    )
    .await;
    assert_eq!(got, Ok(()), "the token found in DNS says which");
    let unknown = Uuid::new_v4();
    let got = as_provisioner(
        &mut client,
        "select * from roster.verify_domain_as_provisioner($1, 'solo.test')",
        &[&unknown],
    )
    .await;
    assert_eq!(got, Err("RTNNF".to_owned()), "an unknown tenant");
    let got = as_role(
        &mut client,
        "roster_app",
        "select * from roster.verify_domain_as_provisioner($1, 'solo.test')",
        &[&w.tenant],
    )
    .await;
    assert_eq!(got, Err("42501".to_owned()), "the API's role may not");
}

async fn as_provisioner(
    client: &mut Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<(), String> {
    as_role(client, "roster_provisioner", sql, params).await
}

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
async fn joining_needs_a_verified_auto_join_domain_of_ones_email() {
    let (_db, client, w) = world().await;
    let second = create_organization(&client, w.owner, "Second", "second").await;
    let third = create_organization(&client, w.owner, "Third", "third").await;
    let newcomer = w.new_user(&client, "newcomer@acme.test").await;
    let stranger = w.new_user(&client, "stranger@elsewhere.test").await;
    let join = "select * from roster.join_organization($1, $2)";

    // Nothing yet: the organization is invisible.
    assert_eq!(
        attempt(&client, join, &[&newcomer, &w.org]).await.map(drop),
        Err("RNFND".into()),
        "no domain"
    );
    add_domain(&client, w.owner, w.org, "acme.test", "auto_join").await;
    assert_eq!(
        attempt(&client, join, &[&newcomer, &w.org]).await.map(drop),
        Err("RNFND".into()),
        "a pending domain"
    );
    assert!(
        must_run(
            &client,
            "select * from roster.list_suggested_organizations($1)",
            &[&newcomer]
        )
        .await
        .is_empty(),
        "nor suggested"
    );
    verify(&client, &w, w.org, "acme.test").await;
    add_domain(&client, w.owner, second, "elsewhere.test", "suggest").await;
    verify(&client, &w, second, "elsewhere.test").await;
    add_domain(&client, w.owner, third, "third.test", "none").await;
    verify(&client, &w, third, "third.test").await;

    let suggested: Vec<(Uuid, String)> = must_run(
        &client,
        "select organization_id, policy from roster.list_suggested_organizations($1)",
        &[&newcomer],
    )
    .await
    .iter()
    .map(|r| (r.get("organization_id"), r.get("policy")))
    .collect();
    assert_eq!(
        vec![(w.org, "auto_join".to_owned())],
        suggested,
        "newcomer's domain"
    );
    let suggested: Vec<Uuid> = must_run(
        &client,
        "select organization_id from roster.list_suggested_organizations($1)",
        &[&w.member],
    )
    .await
    .iter()
    .map(|r| r.get("organization_id"))
    .collect();
    assert!(
        suggested.is_empty(),
        "members are not suggested their own organization"
    );

    assert_eq!(
        attempt(&client, join, &[&stranger, &w.org]).await.map(drop),
        Err("RNFND".into()),
        "another email domain"
    );
    assert_eq!(
        attempt(&client, join, &[&stranger, &second])
            .await
            .map(drop),
        Err("RDNID".into()),
        "policy suggest: ask for an invitation"
    );
    assert_eq!(
        attempt(&client, join, &[&w.other_tenant_user, &w.org])
            .await
            .map(drop),
        Err("RNFND".into()),
        "another tenant"
    );
    must_run(
        &client,
        r#"select * from roster.update_domain($1, $2, 'acme.test', '{"join_role": "admin"}')"#,
        &[&w.owner, &w.org],
    )
    .await;
    let joined = must_run(
        &client,
        "select role, status, invited_by_user_id from roster.join_organization($1, $2)",
        &[&newcomer, &w.org],
    )
    .await
    .remove(0);
    assert_eq!(
        ("admin", "active"),
        (
            joined.get::<_, &str>("role"),
            joined.get::<_, &str>("status")
        ),
        "with the domain's role, at once"
    );
    assert_eq!(None, joined.get::<_, Option<Uuid>>("invited_by_user_id"));
    assert_eq!(
        attempt(&client, join, &[&newcomer, &w.org]).await.map(drop),
        Err("RISMB".into()),
        "again"
    );
    assert_eq!(
        attempt(&client, join, &[&w.invited, &w.org])
            .await
            .map(drop),
        Err("RISMB".into()),
        "an invited member accepts instead"
    );

    // The join role is held to the escalation rules and cannot be deleted from under a domain.
    must_run(&client, "select * from roster.create_role($1, $2, 'joiner', 'Joiner', null, array['organization:read'])", &[&w.owner, &w.org]).await;
    must_run(
        &client,
        r#"select * from roster.update_domain($1, $2, 'acme.test', '{"join_role": "joiner"}')"#,
        &[&w.owner, &w.org],
    )
    .await;
    let got = attempt(
        &client,
        r#"select * from roster.update_domain($1, $2, 'acme.test', '{"join_role": "owner"}')"#,
        &[&w.admin, &w.org],
    )
    .await;
    assert_eq!(
        got.map(drop),
        Err("RDNID".into()),
        "an admin may not make joiners owners"
    );
    let got = attempt(
        &client,
        "select roster.delete_role($1, $2, 'joiner')",
        &[&w.owner, &w.org],
    )
    .await;
    assert_eq!(got.map(drop), Err("RRLUS".into()), "the domain's join role");
}

#[tokio::test]
async fn finding_organizations_by_domain_shows_each_actor_what_it_may_know() {
    let (_db, client, w) = world().await;
    let second = create_organization(&client, w.owner, "Second", "second").await;
    let hidden = create_organization(&client, w.owner, "Hidden", "hidden").await;
    add_domain(&client, w.owner, w.org, "acme.test", "auto_join").await;
    verify(&client, &w, w.org, "acme.test").await;
    add_domain(&client, w.owner, second, "acme.test", "none").await;
    must_run(
        &client,
        r#"select * from roster.update_organization($1, $2, '{"domain": "acme.test"}')"#,
        &[&w.owner, &hidden],
    )
    .await;
    let newcomer = w.new_user(&client, "newcomer@acme.test").await;
    let stranger = w.new_user(&client, "stranger@elsewhere.test").await;

    let found = |actor: Uuid| {
        let client = &client;
        async move {
            must_run(
                client,
                "select slug from roster.find_organizations_by_domain($1, 'ACME.test')",
                &[&actor],
            )
            .await
            .iter()
            .map(|r| r.get::<_, String>("slug"))
            .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        vec![ORG_SLUG, "hidden", "second"],
        found(w.tenant_admin).await,
        "a tenant admin sees every claim and organizations.domain"
    );
    assert_eq!(
        vec![ORG_SLUG, "hidden", "second"],
        found(w.owner).await,
        "the owner belongs to all three"
    );
    assert_eq!(
        vec![ORG_SLUG],
        found(w.member).await,
        "a member: its own organization"
    );
    assert_eq!(
        vec![ORG_SLUG],
        found(newcomer).await,
        "a newcomer of the domain: what it could join"
    );
    assert!(found(stranger).await.is_empty(), "anyone else: nothing");
    assert!(
        found(w.other_tenant_user).await.is_empty(),
        "another tenant: nothing"
    );
    let row = must_run(&client, "select domain_status, policy, membership_status from roster.find_organizations_by_domain($1, 'acme.test') where slug = $2", &[&newcomer, &ORG_SLUG]).await.remove(0);
    assert_eq!(
        (Some("verified"), Some("auto_join"), None),
        (
            row.get("domain_status"),
            row.get("policy"),
            row.get::<_, Option<&str>>("membership_status")
        )
    );
}

#[tokio::test]
async fn every_domain_event_is_in_the_trail() {
    let (_db, client, w) = world().await;
    add_domain(&client, w.admin, w.org, "acme.test", "none").await;
    verify(&client, &w, w.org, "acme.test").await;
    must_run(
        &client,
        r#"select * from roster.update_domain($1, $2, 'acme.test', '{"policy": "auto_join"}')"#,
        &[&w.owner, &w.org],
    )
    .await;
    must_run(
        &client,
        "update roster.organization_domains set status = 'pending' where organization_id = $1",
        &[&w.org],
    )
    .await;
    must_run(
        &client,
        "select roster.remove_domain($1, $2, 'acme.test')",
        &[&w.owner, &w.org],
    )
    .await;
    let events: Vec<(String, Option<Uuid>)> = must_run(
        &client,
        "select action, actor_id from roster.audit_events where organization_id = $1 and action like 'domain.%' order by id",
        &[&w.org],
    )
    .await
    .iter()
    .map(|r| (r.get("action"), r.get("actor_id")))
    .collect();
    assert_eq!(
        vec![
            ("domain.added".to_owned(), Some(w.admin)),
            ("domain.verified".to_owned(), Some(w.tenant_admin)),
            ("domain.updated".to_owned(), Some(w.owner)),
            ("domain.unverified".to_owned(), None),
            ("domain.removed".to_owned(), Some(w.owner)),
        ],
        events
    );
    let version_before = authz_version(&client, w.org).await;
    add_domain(&client, w.owner, w.org, "acme.test", "none").await;
    assert_eq!(
        version_before + 1,
        authz_version(&client, w.org).await,
        "a domain change bumps its organization"
    );
}
