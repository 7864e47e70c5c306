//! Validation: each check with a bad value, asserting the SQLSTATE and the constraint (or column)
//! the error names. The functions re-raise constraint violations with the constraint kept and a
//! message naming the offending value, which a few cases check as well (the only text checks).

use serde_json::{json, Value};
use tokio_postgres::{Client, GenericClient, Row};
use uuid::Uuid;

use crate::common;
use crate::support::*;

/// The arguments of create_organization after the actor.
#[derive(Clone, Default)]
struct NewOrg {
    name: Option<String>,
    slug: Option<String>,
    description: Option<String>,
    domain: Option<String>,
    billing_email: Option<String>,
    billing_address: Option<Value>,
    stripe_customer_id: Option<String>,
    metadata: Option<Value>,
}

impl NewOrg {
    fn named(name: &str, slug: &str) -> NewOrg {
        NewOrg {
            name: Some(name.into()),
            slug: Some(slug.into()),
            ..NewOrg::default()
        }
    }

    fn with(mut self, change: impl FnOnce(&mut NewOrg)) -> NewOrg {
        change(&mut self);
        self
    }

    async fn create(
        &self,
        c: &impl GenericClient,
        actor: Uuid,
    ) -> Result<Row, tokio_postgres::Error> {
        c.query_one(
            "select * from roster.create_organization($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &actor,
                &self.name,
                &self.slug,
                &self.description,
                &self.domain,
                &self.billing_email,
                &self.billing_address,
                &self.stripe_customer_id,
                &self.metadata,
            ],
        )
        .await
    }
}

/// What a rejected value's error must name.
#[derive(Clone, Copy)]
enum Names {
    Constraint(&'static str),
    Column(&'static str),
}

/// Asserts the error's SQLSTATE and constraint or column, and that its message contains `shows`.
fn assert_rejected(
    err: &tokio_postgres::Error,
    case: &str,
    code: &str,
    names: Names,
    shows: Option<&str>,
) {
    assert_eq!(sqlstate(err), code, "{case}: SQLSTATE ({})", message(err));
    let db = err.as_db_error().expect("a database error");
    match names {
        Names::Constraint(name) => {
            assert_eq!(db.constraint(), Some(name), "{case}: constraint")
        }
        Names::Column(name) => assert_eq!(db.column(), Some(name), "{case}: column"),
    }
    if let Some(value) = shows {
        assert!(
            db.message().contains(value),
            "{case}: the message should name {value:?}, got {:?}",
            db.message()
        );
    }
}

#[tokio::test]
async fn create_organization_rejects_bad_values() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    let valid = || NewOrg::named("Acme Gizmos", "acme-gizmos");
    let slug = |s: &str| valid().with(|o| o.slug = Some(s.into()));
    let name = |s: &str| valid().with(|o| o.name = Some(s.into()));
    let domain = |s: &str| valid().with(|o| o.domain = Some(s.into()));
    let billing_email = |s: &str| valid().with(|o| o.billing_email = Some(s.into()));
    let metadata = |v: Value| valid().with(|o| o.metadata = Some(v));
    let address = |v: Value| valid().with(|o| o.billing_address = Some(v));
    let long_slug = "a".repeat(51);
    let long_name = "n".repeat(256);

    use Names::{Column, Constraint};
    let slug_format = Constraint("ck_organizations_slug_format");
    let name_length = Constraint("ck_organizations_name_length");
    let domain_format = Constraint("ck_organizations_domain_format");
    let email_format = Constraint("ck_organizations_billing_email_format");
    let metadata_object = Constraint("ck_organizations_metadata_object");
    let address_object = Constraint("ck_organizations_billing_address_object");
    #[rustfmt::skip]
    let cases: Vec<(&str, NewOrg, &str, Names, Option<&str>)> = vec![
        ("uppercase slug", slug("Acme-Gizmos"), "23514", slug_format, Some("Acme-Gizmos")),
        ("slug with a space", slug("acme gizmos"), "23514", slug_format, Some("acme gizmos")),
        ("slug with a leading hyphen", slug("-acme"), "23514", slug_format, Some("-acme")),
        ("slug with a trailing hyphen", slug("acme-"), "23514", slug_format, Some("acme-")),
        ("slug with a double hyphen", slug("acme--gizmos"), "23514", slug_format, Some("acme--gizmos")),
        ("one-character slug", slug("a"), "23514", slug_format, None),
        ("51-character slug", slug(&long_slug), "23514", slug_format, Some(&long_slug)),
        ("missing slug", valid().with(|o| o.slug = None), "23502", Column("slug"), None),
        ("blank name", name("   "), "23514", name_length, None),
        ("256-character name", name(&long_name), "23514", name_length, Some(&long_name)),
        ("missing name", valid().with(|o| o.name = None), "23502", Column("name"), None),
        ("uppercase domain", domain("Acme.com"), "23514", domain_format, Some("Acme.com")),
        ("domain without a dot", domain("localhost"), "23514", domain_format, Some("localhost")),
        ("domain with a leading hyphen", domain("-acme.com"), "23514", domain_format, Some("-acme.com")),
        ("billing email without @", billing_email("billing.acme.com"), "23514", email_format, Some("billing.acme.com")),
        ("billing email without a dot after @", billing_email("billing@acme"), "23514", email_format, Some("billing@acme")),
        ("billing email with a space", billing_email("bill ing@acme.com"), "23514", email_format, None),
        ("metadata that is an array", metadata(json!([1, 2])), "23514", metadata_object, Some("array")),
        ("metadata that is a string", metadata(json!("x")), "23514", metadata_object, Some("string")),
        ("billing address that is an array", address(json!(["1 Main St"])), "23514", address_object, Some("array")),
        ("billing address that is a string", address(json!("1 Main St")), "23514", address_object, Some("string")),
        (
            "2001-character description",
            valid().with(|o| o.description = Some("d".repeat(2001))),
            "23514",
            Constraint("ck_organizations_description_length"),
            None,
        ),
        (
            "blank stripe customer id",
            valid().with(|o| o.stripe_customer_id = Some("  ".into())),
            "23514",
            Constraint("ck_organizations_stripe_customer_id_length"),
            None,
        ),
    ];
    for (case, org, code, names, shows) in cases {
        let err = org
            .create(&client, w.owner)
            .await
            .err()
            .unwrap_or_else(|| panic!("create_organization with a {case} should fail"));
        assert_rejected(&err, case, code, names, shows);
    }

    // The boundaries that are allowed.
    let accepted = [
        ("two-character slug", NewOrg::named("Two", "ab")),
        ("50-character slug", NewOrg::named("Fifty", &"a".repeat(50))),
        (
            "255-character name",
            NewOrg::named(&"n".repeat(255), "long-name"),
        ),
        (
            "every optional field",
            NewOrg {
                description: Some("d".repeat(2000)),
                domain: Some("mail.acme-gizmos.co.uk".into()),
                billing_email: Some("billing@acme-gizmos.co.uk".into()),
                billing_address: Some(json!({"city": "Springfield", "country": "US"})),
                stripe_customer_id: Some("cus_123".into()),
                metadata: Some(json!({"plan": "pro"})),
                ..NewOrg::named("Everything", "everything")
            },
        ),
    ];
    for (case, org) in accepted {
        if let Err(e) = org.create(&client, w.owner).await {
            panic!(
                "create_organization with a {case} failed with {}: {}",
                sqlstate(&e),
                message(&e)
            );
        }
    }
}

#[tokio::test]
async fn organization_names_and_slugs_are_unique_per_tenant() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;

    #[rustfmt::skip]
    let cases = [
        ("the same name in lowercase", NewOrg::named("acme widgets", "new-slug"), "uq_organizations_tenant_name", "acme widgets"),
        ("the same name with spaces around", NewOrg::named("  Acme Widgets ", "new-slug"), "uq_organizations_tenant_name", "Acme Widgets"),
        ("the same slug", NewOrg::named("New Name", ORG_SLUG), "uq_organizations_tenant_slug", ORG_SLUG),
    ];
    for (case, org, unique, value) in cases {
        let err = org
            .create(&client, w.member)
            .await
            .err()
            .unwrap_or_else(|| panic!("creating an organization with {case} should fail"));
        assert_rejected(&err, case, "23505", Names::Constraint(unique), Some(value));
    }

    // Another tenant may use both.
    NewOrg::named(ORG_NAME, ORG_SLUG)
        .create(&client, w.other_tenant_user)
        .await
        .expect("the same name and slug in another tenant");
}

#[tokio::test]
async fn tenants_and_users_reject_bad_values() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    let deleted_tenant = create_tenant(&client, "initech", "Initech").await;
    must_run(
        &client,
        "update roster.tenants set deleted_at = now() where id = $1",
        &[&deleted_tenant],
    )
    .await;

    use Names::Constraint;
    #[rustfmt::skip]
    let tenant_cases = [
        ("a taken slug", "acme", "Acme Again", "23505", "uq_tenants_slug", Some("acme")),
        ("an uppercase slug", "Acme2", "Acme 2", "23514", "ck_tenants_slug_format", Some("Acme2")),
        ("a one-character slug", "a", "A", "23514", "ck_tenants_slug_format", None),
        ("a slug with a double hyphen", "ac--me", "Acme", "23514", "ck_tenants_slug_format", Some("ac--me")),
        ("a blank name", "blank", "   ", "23514", "ck_tenants_name_length", None),
    ];
    for (case, slug, name, code, constraint, shows) in tenant_cases {
        let err = must_fail(
            &client,
            "select roster.create_tenant($1, $2)",
            &[&slug, &name],
        )
        .await;
        assert_rejected(
            &err,
            &format!("create_tenant with {case}"),
            code,
            Constraint(constraint),
            shows,
        );
    }

    let create_user = "select roster.create_user($1, $2)";
    #[rustfmt::skip]
    let user_cases = [
        ("an email taken in another case", w.tenant, "OWNER@acme.test", "23505", "uq_users_tenant_email", Some("OWNER@acme.test")),
        ("an email without @", w.tenant, "owner.acme.test", "23514", "ck_users_email_format", Some("owner.acme.test")),
    ];
    for (case, tenant, email, code, constraint, shows) in user_cases {
        let err = must_fail(&client, create_user, &[&tenant, &email]).await;
        assert_rejected(
            &err,
            &format!("create_user with {case}"),
            code,
            Constraint(constraint),
            shows,
        );
    }
    for (case, tenant) in [
        ("an unknown tenant", Uuid::new_v4()),
        ("a deleted tenant", deleted_tenant),
    ] {
        let err = must_fail(&client, create_user, &[&tenant, &"someone@acme.test"]).await;
        assert_eq!(sqlstate(&err), "RTNNF", "create_user in {case}");
    }

    // The same email in another tenant, and a deleted user's email, are free.
    must_run(&client, create_user, &[&w.other_tenant, &"owner@acme.test"]).await;
    must_run(&client, create_user, &[&w.tenant, &"GONE@acme.test"]).await;
}

async fn update_org(
    client: &Client,
    w: &World,
    changes: &Value,
) -> Result<Row, tokio_postgres::Error> {
    client
        .query_one(
            "select * from roster.update_organization($1, $2, $3)",
            &[&w.owner, &w.org, changes],
        )
        .await
}

#[tokio::test]
async fn update_organization_refuses_unknown_and_mistyped_changes() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    create_organization(&client, w.owner, "Acme Labs", "acme-labs").await;

    #[rustfmt::skip]
    let invalid = [
        ("an unknown key", json!({"nmae": "Acme"})),
        ("an unknown key beside a known one", json!({"name": "Acme", "colour": "red"})),
        ("a number for name", json!({"name": 5})),
        ("a boolean for slug", json!({"slug": true})),
        ("an array for description", json!({"description": ["x"]})),
        ("a number for domain", json!({"domain": 1})),
        ("an object for billing_email", json!({"billing_email": {}})),
        ("a string for metadata", json!({"metadata": "x"})),
        ("an array for metadata", json!({"metadata": []})),
        ("a string for billing_address", json!({"billing_address": "1 Main St"})),
        ("null for name", json!({"name": null})),
        ("null for slug", json!({"slug": null})),
        ("null for metadata", json!({"metadata": null})),
        ("changes that are an array", json!([{"name": "Acme"}])),
        ("changes that are a string", json!("name")),
        ("changes that are JSON null", Value::Null),
    ];
    for (case, changes) in &invalid {
        let err = update_org(&client, &w, changes).await.expect_err(case);
        assert_eq!(
            sqlstate(&err),
            "RINVL",
            "update_organization with {case} ({})",
            message(&err)
        );
    }
    let err = must_fail(
        &client,
        "select * from roster.update_organization($1, $2, null)",
        &[&w.owner, &w.org],
    )
    .await;
    assert_eq!(
        sqlstate(&err),
        "RINVL",
        "update_organization with SQL NULL changes"
    );

    use Names::Constraint;
    #[rustfmt::skip]
    let violations = [
        ("a bad slug", json!({"slug": "Bad Slug"}), "23514", "ck_organizations_slug_format", Some("Bad Slug")),
        ("a blank name", json!({"name": "  "}), "23514", "ck_organizations_name_length", None),
        ("a bad domain", json!({"domain": "ACME.COM"}), "23514", "ck_organizations_domain_format", Some("ACME.COM")),
        ("a taken slug", json!({"slug": "acme-labs"}), "23505", "uq_organizations_tenant_slug", Some("acme-labs")),
        ("a taken name", json!({"name": "ACME LABS"}), "23505", "uq_organizations_tenant_name", Some("ACME LABS")),
    ];
    for (case, changes, code, constraint, shows) in violations {
        let err = update_org(&client, &w, &changes).await.expect_err(case);
        assert_rejected(
            &err,
            &format!("update_organization with {case}"),
            code,
            Constraint(constraint),
            shows,
        );
    }
}

#[tokio::test]
async fn update_organization_changes_only_the_keys_given() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    let read = |row: &Row| -> (
        String,
        String,
        Option<String>,
        Option<String>,
        Option<Value>,
        Value,
    ) {
        (
            row.get("name"),
            row.get("slug"),
            row.get("description"),
            row.get("domain"),
            row.get("billing_address"),
            row.get("metadata"),
        )
    };

    let row = update_org(
        &client,
        &w,
        &json!({
            "description": "Widgets for all",
            "domain": "acme.com",
            "billing_address": {"city": "Springfield"},
            "metadata": {"plan": "pro"},
        }),
    )
    .await
    .expect("set the optional fields");
    assert_eq!(
        read(&row),
        (
            ORG_NAME.into(),
            ORG_SLUG.into(),
            Some("Widgets for all".into()),
            Some("acme.com".into()),
            Some(json!({"city": "Springfield"})),
            json!({"plan": "pro"}),
        )
    );

    // Absent keys stay; the name is trimmed.
    let row = update_org(&client, &w, &json!({"name": "  Acme Widgets Ltd  "}))
        .await
        .expect("rename");
    assert_eq!(
        read(&row),
        (
            "Acme Widgets Ltd".into(),
            ORG_SLUG.into(),
            Some("Widgets for all".into()),
            Some("acme.com".into()),
            Some(json!({"city": "Springfield"})),
            json!({"plan": "pro"}),
        )
    );

    // JSON null clears a nullable field.
    let row = update_org(
        &client,
        &w,
        &json!({"domain": null, "billing_address": null, "description": null}),
    )
    .await
    .expect("clear the optional fields");
    assert_eq!(
        read(&row),
        (
            "Acme Widgets Ltd".into(),
            ORG_SLUG.into(),
            None,
            None,
            None,
            json!({"plan": "pro"})
        )
    );

    // `{}` changes nothing, not even the version or the timestamp.
    let before = version_and_touch(&client, w.org).await;
    let row = update_org(&client, &w, &json!({}))
        .await
        .expect("empty changes");
    assert_eq!(read(&row).0, "Acme Widgets Ltd");
    let after = version_and_touch(&client, w.org).await;
    assert_eq!(before.0, after.0, "{{}} must not bump authz_version");
    assert_eq!(before.1, after.1, "{{}} must not touch updated_at");
}

/// A membership call's case: what it is, the target user, role, status, and the SQLSTATE.
type MembershipCase = (
    &'static str,
    Uuid,
    Option<&'static str>,
    Option<&'static str>,
    &'static str,
);

#[tokio::test]
async fn membership_functions_reject_bad_arguments() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    let candidate = w.new_user(&client, "candidate@acme.test").await;
    let (org, owner) = (w.org, w.owner);

    let add = "select * from roster.add_member($1, $2, $3, $4, $5)";
    #[rustfmt::skip]
    let add_cases: [MembershipCase; 12] = [
        ("an unknown role", candidate, Some("superuser"), Some("active"), "RINVL"),
        ("a null role", candidate, None, Some("active"), "RINVL"),
        ("an unknown status", candidate, Some("member"), Some("pending"), "RINVL"),
        ("status suspended", candidate, Some("member"), Some("suspended"), "RINVL"),
        ("a null status", candidate, Some("member"), None, "RINVL"),
        ("a user of another tenant", w.other_tenant_user, Some("member"), Some("active"), "RUSNF"),
        ("a deleted user", w.deleted_user, Some("member"), Some("active"), "RUSNF"),
        ("an unknown user", Uuid::new_v4(), Some("member"), Some("active"), "RUSNF"),
        ("an active member", w.member, Some("member"), Some("active"), "RISMB"),
        ("an invited user", w.invited, Some("member"), Some("invited"), "RISMB"),
        ("a suspended member", w.suspended, Some("admin"), Some("active"), "RISMB"),
        ("the owner", w.owner, Some("member"), Some("active"), "RISMB"),
    ];
    for (case, user, role, status, code) in add_cases {
        let got = attempt(&client, add, &[&owner, &org, &user, &role, &status]).await;
        assert_eq!(got.map(drop), Err(code.into()), "add_member with {case}");
    }

    let update = "select * from roster.update_member($1, $2, $3, $4, $5)";
    #[rustfmt::skip]
    let update_cases: [MembershipCase; 9] = [
        ("nothing to change", w.member, None, None, "RINVL"),
        ("status invited", w.member, None, Some("invited"), "RINVL"),
        ("an unknown status", w.member, None, Some("banned"), "RINVL"),
        ("an unknown role", w.member, Some("superuser"), None, "RINVL"),
        ("activating someone else's invitation", w.invited, None, Some("active"), "RINVL"),
        ("suspending an invitation", w.invited, None, Some("suspended"), "RINVL"),
        ("a user who is not a member", w.non_member, Some("admin"), None, "RMBNF"),
        ("a deleted user's ended membership", w.deleted_user, Some("admin"), None, "RMBNF"),
        ("an unknown user", Uuid::new_v4(), Some("admin"), None, "RMBNF"),
    ];
    for (case, user, role, status, code) in update_cases {
        let got = attempt(&client, update, &[&owner, &org, &user, &role, &status]).await;
        assert_eq!(got.map(drop), Err(code.into()), "update_member with {case}");
    }

    for (case, user) in [
        ("a user who is not a member", w.non_member),
        ("a deleted user's ended membership", w.deleted_user),
        ("an unknown user", Uuid::new_v4()),
    ] {
        for function in ["remove_member", "get_member"] {
            let sql = format!("select * from roster.{function}($1, $2, $3)");
            let got = attempt(&client, &sql, &[&owner, &org, &user]).await;
            assert_eq!(got.map(drop), Err("RMBNF".into()), "{function} of {case}");
        }
    }
}

#[tokio::test]
async fn pages_must_be_within_bounds() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    let org = w.org;

    let listings = [
        "select * from roster.list_organizations($1, $2, $3)".to_owned(),
        "select * from roster.list_user_organizations($1, $1, $2, $3)".to_owned(),
        "select * from roster.list_tenant_organizations($1, $2, $3)".to_owned(),
        format!("select * from roster.list_members($1, '{org}', $2, $3)"),
        format!("select * from roster.list_audit_events($1, '{org}', $2, $3)"),
    ];
    #[rustfmt::skip]
    let bad_pages: [(Option<i32>, Option<i32>, &str); 6] = [
        (Some(0), Some(0), "0"),
        (Some(1001), Some(0), "1001"),
        (Some(-1), Some(0), "-1"),
        (None, Some(0), "null"),
        (Some(50), Some(-1), "-1"),
        (Some(50), None, "null"),
    ];
    for sql in &listings {
        for (limit, offset, shows) in bad_pages {
            let err = must_fail(&client, sql, &[&w.tenant_admin, &limit, &offset]).await;
            let case = format!("`{sql}` with limit {limit:?} and offset {offset:?}");
            assert_eq!(sqlstate(&err), "RINVL", "{case}");
            assert!(
                message(&err).contains(shows),
                "{case}: message {:?}",
                message(&err)
            );
        }
        must_run(&client, sql, &[&w.tenant_admin, &1000i32, &0i32]).await;
    }

    // Pages of list_members, oldest first, add up to the whole list.
    let members = "select * from roster.list_members($1, $2, $3, $4)";
    let all = must_run(&client, members, &[&w.owner, &org, &1000i32, &0i32]).await;
    assert_eq!(all.len(), 5, "owner, admin, member, invited and suspended");
    let mut paged = Vec::new();
    for offset in [0i32, 2, 4, 6] {
        let page = must_run(&client, members, &[&w.owner, &org, &2i32, &offset]).await;
        assert!(page.len() <= 2, "a page of 2 at offset {offset}");
        paged.extend(page.iter().map(|row| row.get::<_, Uuid>("user_id")));
    }
    let whole: Vec<Uuid> = all.iter().map(|row| row.get("user_id")).collect();
    assert_eq!(paged, whole);
}

/// What PostgreSQL itself refuses before a function runs (U+0000 in text or jsonb, a number
/// beyond numeric's range) carries PostgreSQL's SQLSTATE, which the error catalogue lists and
/// the API maps to 422 `invalid_input`, like every value a caller can get wrong.
#[tokio::test]
async fn values_the_database_cannot_store_raise_catalogued_codes() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    let nul_text = "a\u{0}b".to_owned();
    let nul_json = serde_json::json!({"description": "x\u{0}"});
    let cases: [(
        &str,
        &str,
        Vec<&(dyn tokio_postgres::types::ToSql + Sync)>,
        &str,
    ); 4] = [
        (
            "a NUL in a text argument",
            "select * from roster.create_organization($1, $2, 'beta')",
            vec![&w.owner, &nul_text],
            "22021",
        ),
        (
            "a NUL in a jsonb argument",
            "select * from roster.update_organization($1, $2, $3)",
            vec![&w.owner, &w.org, &nul_json],
            "22P05",
        ),
        (
            "a \\u0000 escape in a jsonb literal (psql)",
            r#"select * from roster.update_organization($1, $2, '{"name": "a\u0000"}')"#,
            vec![&w.owner, &w.org],
            "22P05",
        ),
        (
            "a number beyond numeric's range",
            r#"select * from roster.update_organization($1, $2, '{"metadata": {"n": 1e1000000}}')"#,
            vec![&w.owner, &w.org],
            "22003",
        ),
    ];
    for (description, sql, params, expected) in cases {
        let got = attempt(&client, sql, &params).await.map(drop);
        assert_eq!(got, Err(expected.to_owned()), "{description}");
        let mapped = roster::error::SQLSTATES
            .iter()
            .find(|(sqlstate, _, _)| *sqlstate == expected);
        assert_eq!(
            mapped.map(|(_, code, status)| (*code, *status)),
            Some(("invalid_input", 422)),
            "{description}: {expected} is mapped to 422 invalid_input"
        );
    }
}
