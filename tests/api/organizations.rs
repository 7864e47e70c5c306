//! The organization endpoints' success paths: status, body shape and what changes.

use reqwest::header::LOCATION;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{
    assert_error, assert_json, assert_keys, assert_no_content, assert_page, column, spawn_app,
    uuid_at, ORGANIZATION_KEYS,
};

fn with(keys: &[&'static str], more: &[&'static str]) -> Vec<&'static str> {
    keys.iter().chain(more).copied().collect()
}

/// The keys of an organization as GET returns it: with its counts.
fn fetched_keys() -> Vec<&'static str> {
    with(ORGANIZATION_KEYS, &["member_count", "seats_used"])
}

/// The keys of an organization in a list: without its seat limit.
fn listed_keys(more: &[&'static str]) -> Vec<&'static str> {
    let keys: Vec<&'static str> = ORGANIZATION_KEYS
        .iter()
        .copied()
        .filter(|key| *key != "seat_limit")
        .collect();
    with(&keys, more)
}

#[tokio::test]
async fn create_organization_returns_201_the_organization_and_its_location() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let body = json!({
        "name": "Acme Corp",
        "slug": "acme-corp",
        "description": "Makers of everything",
        "domain": "acme.com",
        "billing_email": "billing@acme.com",
        "billing_address": {"city": "Springfield", "country": "US"},
        "stripe_customer_id": "cus_123",
        "metadata": {"tier": "gold"},
    });

    let response = app.create_organization(&owner.token, &body).await;
    let location = response
        .headers()
        .get(LOCATION)
        .map(|v| v.to_str().expect("ASCII Location").to_owned());
    let org = assert_json(response, 201, "create with every field").await;

    assert_keys(&org, ORGANIZATION_KEYS, "created organization");
    for (key, value) in body.as_object().expect("an object") {
        assert_eq!(value, &org[key], "created organization should echo {key}");
    }
    assert_eq!(json!(app.tenant), org["tenant_id"], "tenant of the creator");
    assert_eq!(
        json!(owner.id),
        org["created_by"],
        "created_by is the caller"
    );
    let id = uuid_at(&org, "id");
    assert_eq!(
        Some(format!("/organizations/{id}")),
        location,
        "Location of the new organization"
    );

    let fetched = assert_json(app.get_organization(&owner.token, id).await, 200, "GET it").await;
    assert_keys(&fetched, &fetched_keys(), "fetched organization");
    assert_eq!(
        json!(1),
        fetched["member_count"],
        "the creator is its one member"
    );
    for key in ORGANIZATION_KEYS {
        assert_eq!(org[key], fetched[key], "GET should return the stored {key}");
    }
}

#[tokio::test]
async fn create_organization_fills_optional_fields_with_null_and_empty_metadata() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;

    let response = app
        .create_organization(&owner.token, &json!({"name": "  Beta  ", "slug": "beta"}))
        .await;
    let org = assert_json(response, 201, "create with name and slug only").await;

    assert_keys(&org, ORGANIZATION_KEYS, "created organization");
    assert_eq!(json!("Beta"), org["name"], "the name is trimmed");
    for key in [
        "description",
        "domain",
        "billing_email",
        "billing_address",
        "stripe_customer_id",
    ] {
        assert_eq!(Value::Null, org[key], "{key} defaults to null");
    }
    assert_eq!(json!({}), org["metadata"], "metadata defaults to {{}}");
}

#[tokio::test]
async fn creator_becomes_the_active_owner() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let org = app.new_org(&owner, "acme").await;

    let (rows, _) = assert_page(app.list_members(&owner.token, org, "").await, "members").await;

    assert_eq!(1, rows.len(), "the creator is the only member: {rows:?}");
    assert_eq!(json!(owner.id), rows[0]["user_id"]);
    assert_eq!(json!("owner"), rows[0]["role"]);
    assert_eq!(json!("active"), rows[0]["status"]);
}

#[tokio::test]
async fn get_organization_counts_active_members_only() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let member = app.user("mia").await;
    let admin = app.user("adam").await;
    let invited = app.user("ivy").await;
    let suspended = app.user("sam").await;
    let org = app.new_org(&owner, "acme").await;
    app.new_member(&owner, org, &member, "member", "active")
        .await;
    app.new_member(&owner, org, &admin, "admin", "active").await;
    app.new_member(&owner, org, &invited, "member", "invited")
        .await;
    app.new_member(&owner, org, &suspended, "member", "active")
        .await;
    let response = app
        .update_member(
            &owner.token,
            org,
            suspended.id,
            &json!({"status": "suspended"}),
        )
        .await;
    assert_json(response, 200, "suspend sam").await;

    // A plain member may read the organization too.
    let response = app.get_organization(&member.token, org).await;
    let fetched = assert_json(response, 200, "GET as a member").await;

    assert_keys(&fetched, &fetched_keys(), "fetched organization");
    assert_eq!(
        json!(3),
        fetched["member_count"],
        "owner, member and admin count; invited and suspended do not"
    );
}

#[tokio::test]
async fn list_organizations_returns_the_callers_organizations_with_role_and_status() {
    let app = spawn_app().await;
    let carol = app.user("carol").await;
    let other = app.user("olivia").await;
    let alpha = app.new_org(&other, "alpha").await;
    let bravo = app.new_org(&other, "bravo").await;
    let charlie = app.new_org(&carol, "charlie").await;
    let delta = app.new_org(&other, "delta").await;
    let _echo = app.new_org(&other, "echo").await;
    let foxtrot = app.new_org(&other, "foxtrot").await;
    app.new_member(&other, alpha, &carol, "admin", "active")
        .await;
    app.new_member(&other, bravo, &carol, "member", "invited")
        .await;
    app.new_member(&other, delta, &carol, "member", "active")
        .await;
    let response = app
        .update_member(
            &other.token,
            delta,
            carol.id,
            &json!({"status": "suspended"}),
        )
        .await;
    assert_json(response, 200, "suspend carol in delta").await;
    app.new_member(&other, foxtrot, &carol, "member", "active")
        .await;
    assert_no_content(
        app.delete_organization(&other.token, foxtrot).await,
        "delete foxtrot",
    )
    .await;

    let (rows, has_more) =
        assert_page(app.list_organizations(&carol.token, "").await, "list").await;

    assert!(!has_more, "one page holds them all");
    // Invited and suspended members see which organization it is, not its details.
    let expected = [
        (alpha, "admin", "active", Some(2)),
        (bravo, "member", "invited", None),
        (charlie, "owner", "active", Some(1)),
        (delta, "member", "suspended", None),
    ];
    assert_eq!(
        expected.iter().map(|e| e.0.to_string()).collect::<Vec<_>>(),
        column(&rows, "id"),
        "carol's live organizations by name: not echo (not a member), not foxtrot (deleted)"
    );
    for (row, (id, role, status, count)) in rows.iter().zip(expected) {
        let extra: &[&str] = match count {
            Some(_) => &["member_count", "role", "status", "joined_at"],
            None => &["role", "status", "joined_at"],
        };
        assert_keys(row, &listed_keys(extra), "a row of GET /organizations");
        assert_eq!(json!(role), row["role"], "carol's role in {id}");
        assert_eq!(json!(status), row["status"], "carol's status in {id}");
        match count {
            Some(count) => assert_eq!(json!(count), row["member_count"], "active members of {id}"),
            None => {
                for hidden in [
                    "description",
                    "domain",
                    "billing_email",
                    "billing_address",
                    "stripe_customer_id",
                ] {
                    assert!(
                        row[hidden].is_null(),
                        "{hidden} of {id} is hidden from a {status} member"
                    );
                }
                assert_eq!(
                    json!({}),
                    row["metadata"],
                    "metadata of {id} is hidden from a {status} member"
                );
            }
        }
        assert_eq!(
            status == "invited",
            row["joined_at"].is_null(),
            "joined_at is null exactly while invited ({id})"
        );
    }
}

#[tokio::test]
async fn patch_organization_keeps_absent_fields_and_null_clears() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let body = json!({
        "name": "Acme", "slug": "acme", "description": "Widgets", "domain": "acme.com",
        "billing_address": {"city": "Springfield"},
    });
    let response = app.create_organization(&owner.token, &body).await;
    let created = assert_json(response, 201, "create").await;
    let org = uuid_at(&created, "id");

    let response = app
        .update_organization(&owner.token, org, &json!({"name": "Acme Inc"}))
        .await;
    let renamed = assert_json(response, 200, "PATCH name only").await;
    assert_keys(&renamed, ORGANIZATION_KEYS, "PATCH response");
    assert_eq!(json!("Acme Inc"), renamed["name"], "name changed");
    for key in [
        "slug",
        "description",
        "domain",
        "billing_address",
        "metadata",
    ] {
        assert_eq!(created[key], renamed[key], "absent {key} is kept");
    }

    let response = app
        .update_organization(
            &owner.token,
            org,
            &json!({"description": null, "domain": null, "billing_address": null}),
        )
        .await;
    let cleared = assert_json(response, 200, "PATCH nulls").await;
    for key in ["description", "domain", "billing_address"] {
        assert_eq!(Value::Null, cleared[key], "null clears {key}");
    }
    assert_eq!(json!("Acme Inc"), cleared["name"], "absent name is kept");

    let response = app
        .update_organization(&owner.token, org, &json!({"name": null}))
        .await;
    let message = assert_error(response, 422, "invalid_input", "PATCH name null").await;
    assert!(
        message.contains("name"),
        "the message names the field: {message}"
    );

    let response = app.update_organization(&owner.token, org, &json!({})).await;
    let unchanged = assert_json(response, 200, "PATCH with an empty object").await;
    assert_eq!(cleared, unchanged, "an empty PATCH changes nothing");

    let stored = assert_json(app.get_organization(&owner.token, org).await, 200, "GET").await;
    for key in ORGANIZATION_KEYS {
        assert_eq!(cleared[key], stored[key], "GET shows the stored {key}");
    }
}

#[tokio::test]
async fn put_organization_is_a_partial_update_like_patch() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let body =
        json!({"name": "Acme", "slug": "acme", "description": "Widgets", "domain": "acme.com"});
    let created = assert_json(
        app.create_organization(&owner.token, &body).await,
        201,
        "create",
    )
    .await;
    let org = uuid_at(&created, "id");

    let response = app
        .put_organization(&owner.token, org, &json!({"description": "Gadgets"}))
        .await;
    let updated = assert_json(response, 200, "PUT description only").await;
    assert_keys(&updated, ORGANIZATION_KEYS, "PUT response");
    assert_eq!(json!("Gadgets"), updated["description"]);
    for key in ["name", "slug", "domain"] {
        assert_eq!(created[key], updated[key], "PUT keeps absent {key}");
    }

    let response = app
        .put_organization(&owner.token, org, &json!({"domain": null}))
        .await;
    let cleared = assert_json(response, 200, "PUT domain null").await;
    assert_eq!(
        Value::Null,
        cleared["domain"],
        "null clears domain under PUT"
    );
    assert_eq!(
        json!("Gadgets"),
        cleared["description"],
        "PUT keeps description"
    );

    let response = app
        .put_organization(&owner.token, org, &json!({"slug": null}))
        .await;
    assert_error(response, 422, "invalid_input", "PUT slug null").await;
}

#[tokio::test]
async fn delete_organization_returns_204_hides_it_and_frees_its_slug() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let member = app.user("mia").await;
    let org = app.new_org(&owner, "acme").await;
    app.new_member(&owner, org, &member, "member", "active")
        .await;

    assert_no_content(app.delete_organization(&owner.token, org).await, "DELETE").await;

    let response = app.get_organization(&owner.token, org).await;
    assert_error(response, 404, "not_found", "GET after DELETE").await;
    let (rows, _) = assert_page(app.list_organizations(&member.token, "").await, "list").await;
    assert!(
        rows.is_empty(),
        "a deleted organization is listed nowhere: {rows:?}"
    );
    let response = app.delete_organization(&owner.token, org).await;
    assert_error(response, 404, "not_found", "DELETE twice").await;
    let again = app.new_org(&owner, "acme").await;
    assert_ne!(org, again, "a new organization takes the freed slug");
}

#[tokio::test]
async fn list_user_organizations_serves_the_user_and_tenant_admins_only() {
    let app = spawn_app().await;
    let uma = app.user("uma").await;
    let other = app.user("otto").await;
    let admin = app.tenant_admin("tess").await;
    let org = app.new_org(&uma, "uma-org").await;
    app.new_org(&other, "otto-org").await;

    let (rows, has_more) = assert_page(
        app.list_user_organizations(&uma.token, uma.id, "").await,
        "uma lists her own",
    )
    .await;
    assert_eq!(
        vec![org.to_string()],
        column(&rows, "id"),
        "uma's organizations"
    );
    assert!(!has_more);
    assert_eq!(json!("owner"), rows[0]["role"]);
    assert_keys(
        &rows[0],
        &listed_keys(&["member_count", "role", "status", "joined_at"]),
        "a row of GET /users/{id}/organizations",
    );

    let response = app.list_user_organizations(&other.token, uma.id, "").await;
    assert_error(response, 403, "forbidden", "otto lists uma's").await;

    let (rows, _) = assert_page(
        app.list_user_organizations(&admin.token, uma.id, "").await,
        "the tenant admin lists uma's",
    )
    .await;
    assert_eq!(
        vec![org.to_string()],
        column(&rows, "id"),
        "uma's organizations"
    );

    let response = app
        .list_user_organizations(&admin.token, Uuid::new_v4(), "")
        .await;
    assert_error(
        response,
        404,
        "user_not_found",
        "tenant admin, unknown user",
    )
    .await;
}

#[tokio::test]
async fn list_tenant_organizations_is_for_tenant_admins() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("tess").await;
    let owner = app.user("olivia").await;
    let bravo = app.new_org(&owner, "bravo").await;
    let alpha = app.new_org(&owner, "alpha").await;
    let gone = app.new_org(&owner, "gone").await;
    assert_no_content(app.delete_organization(&owner.token, gone).await, "delete").await;

    let (rows, has_more) = assert_page(
        app.list_tenant_organizations(&admin.token, "").await,
        "tenant admin lists the tenant",
    )
    .await;
    assert!(!has_more);
    assert_eq!(
        vec![alpha.to_string(), bravo.to_string()],
        column(&rows, "id"),
        "every live organization by name, though the admin is a member of none"
    );
    for row in &rows {
        assert_keys(
            row,
            &listed_keys(&["member_count"]),
            "a row of GET /tenant/organizations",
        );
        assert_eq!(json!(1), row["member_count"]);
    }

    let response = app.list_tenant_organizations(&owner.token, "").await;
    assert_error(response, 403, "forbidden", "a non-admin lists the tenant").await;
}
