//! Roster's access tokens through the cache: the check that a token is still current (its `av`
//! against the versions now) is a cached lookup, so a warm request makes no database round
//! trip; a change made in psql makes the token stale as soon as its notification arrives; and an
//! exchange, which only records activity, makes no token stale.

use std::time::Instant;

use reqwest::header::CONTENT_TYPE;
use roster::cache::DepKind;
use uuid::Uuid;

use crate::helpers::{spawn_app, wait_for, Reply, TestApp, TestUser, INVALIDATION_DEADLINE};

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";

/// `POST /auth/token` for `user` in `org`: the access token.
async fn access_token(app: &TestApp, user: &TestUser, org: Uuid) -> String {
    let org = org.to_string();
    let body = serde_urlencoded::to_string([
        ("grant_type", EXCHANGE),
        ("subject_token", user.token.as_str()),
        ("subject_token_type", JWT),
        ("organization_id", org.as_str()),
    ])
    .expect("encode the form");
    let response = reqwest::Client::new()
        .post(format!("{}/auth/token", app.address))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("send the exchange");
    let reply = Reply {
        status: response.status().as_u16(),
        text: response.text().await.expect("read the exchange"),
    };
    assert_eq!(
        200, reply.status,
        "exchange for {}: {}",
        user.email, reply.text
    );
    let body = reply.json();
    assert_eq!(
        Some(org.as_str()),
        body["organization"]["id"].as_str(),
        "scoped to the organization asked for: {body}"
    );
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

/// The body's `code` of a 401, if the reply is one.
fn unauthorized_code(reply: &Reply) -> Option<String> {
    (reply.status == 401).then(|| {
        reply.json()["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("a 401 with a code: {}", reply.text))
            .to_owned()
    })
}

/// Asserts `token` opens `org`, the second time with no database round trip.
async fn assert_current_and_cached(app: &TestApp, token: &str, org: Uuid, what: &str) {
    let cold = app.get_org(token, org).await;
    assert_eq!(200, cold.status, "{what}: {}", cold.text);
    let (warm, trips) = app.counted(app.get_org(token, org)).await;
    assert_eq!(200, warm.status, "{what}, warm: {}", warm.text);
    assert_eq!(
        cold.text, warm.text,
        "{what}: the warm answer is the cold one"
    );
    assert_eq!(
        0, trips,
        "{what}: the token check and the read come from the cache"
    );
}

/// Runs `change` (committed when it returns) and polls until `token` is refused as stale,
/// failing on any other answer than 200 or that. Prints how long it took.
async fn assert_goes_stale(
    app: &TestApp,
    token: &str,
    org: Uuid,
    what: &str,
    change: &str,
    user: Uuid,
) {
    app.exec(change, &[&user, &org]).await;
    let changed = Instant::now();
    wait_for(
        &format!("{what}: the token to be stale"),
        INVALIDATION_DEADLINE,
        || async {
            let reply = app.get_org(token, org).await;
            match unauthorized_code(&reply) {
                Some(code) => {
                    assert_eq!("token_stale", code, "{what}: {}", reply.text);
                    Some(())
                }
                None => {
                    assert_eq!(200, reply.status, "{what}: {}", reply.text);
                    None
                }
            }
        },
    )
    .await;
    println!("token stale after {what}: {:?}", changed.elapsed());
    // Stays so, cached or not.
    let again = app.get_org(token, org).await;
    assert_eq!(
        Some("token_stale".to_owned()),
        unauthorized_code(&again),
        "{what}: {}",
        again.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_access_token_check_makes_no_database_round_trip() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let org = app.org(&owner, "acme").await;
    app.add(&owner, org, &member, "member").await;

    let token = access_token(&app, &member, org).await;
    let (cold, trips) = app.counted(app.get_org(&token, org)).await;
    assert_eq!(200, cold.status, "{}", cold.text);
    assert!(
        trips >= 1,
        "the first request reads the database, made {trips}"
    );
    for attempt in 1..=3 {
        let (warm, trips) = app.counted(app.get_org(&token, org)).await;
        assert_eq!(
            (200, cold.text.as_str()),
            (warm.status, warm.text.as_str()),
            "warm #{attempt}"
        );
        assert_eq!(0, trips, "warm #{attempt}: no database round trip");
    }

    // The owner's token warms on its own entries, then is free too; and the identity token
    // shares the member's entries with its access token.
    let owner_token = access_token(&app, &owner, org).await;
    assert_current_and_cached(&app, &owner_token, org, "the owner's access token").await;
    let (reply, trips) = app.counted(app.get_org(&member.token, org)).await;
    assert_eq!(200, reply.status, "{}", reply.text);
    assert_eq!(
        0, trips,
        "the identity token finds the entries the access token filled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_in_psql_makes_a_cached_token_stale() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let org = app.org(&owner, "acme").await;
    app.add(&owner, org, &member, "admin").await;
    app.exec(
        "select roster.create_group($1, $2, 'eng', 'Engineering')",
        &[&owner.id, &org],
    )
    .await;

    let changes = [
        (
            "a raw role change",
            "update roster.organization_memberships set role = 'member' \
              where user_id = $1 and organization_id = $2",
        ),
        (
            "a raw group membership",
            "insert into roster.group_members (tenant_id, organization_id, group_id, user_id) \
             select g.tenant_id, g.organization_id, g.id, $1 from roster.groups g \
              where g.organization_id = $2 and g.key = 'eng'",
        ),
        (
            "a raw grant",
            "insert into roster.grants (tenant_id, organization_id, subject_type, user_id, role_key) \
             select o.tenant_id, o.id, 'user', $1, 'admin' from roster.organizations o \
              where o.id = $2",
        ),
        (
            "a raw removal from the group",
            "update roster.group_members set deleted_at = now() \
              where user_id = $1 and organization_id = $2 and deleted_at is null",
        ),
    ];
    for (what, change) in changes {
        // A token issued now, checked from the cache: only a notification can make it stale.
        let token = access_token(&app, &member, org).await;
        assert_current_and_cached(&app, &token, org, what).await;
        assert_goes_stale(&app, &token, org, what, change, member.id).await;
        // The change is to the token, not to the access: a new exchange opens the org again.
        let fresh = access_token(&app, &member, org).await;
        let reply = app.get_org(&fresh, org).await;
        assert_eq!(200, reply.status, "{what}, a new token: {}", reply.text);
    }
    let role: String = app
        .sql
        .query_one(
            "select role from roster.organization_memberships where user_id = $1 and organization_id = $2",
            &[&member.id, &org],
        )
        .await
        .expect("read the role")
        .get("role");
    assert_eq!("member", role, "the raw changes were committed");
    assert_eq!("ok", app.cache_state().await, "the cache was on throughout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchanges_make_no_token_stale() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let org = app.org(&owner, "acme").await;
    let other = app.org(&owner, "other").await;
    for org in [org, other] {
        app.add(&owner, org, &alice, "member").await;
        app.add(&owner, org, &bob, "member").await;
    }
    // Untouched by everything below, changed last: its notification comes after theirs.
    let marker = app.user("marker").await;

    let token = access_token(&app, &alice, org).await;
    assert_current_and_cached(&app, &token, org, "alice's token").await;
    let versions = (
        app.org_version(org).await,
        app.user_version(alice.id).await,
        app.user_version(bob.id).await,
    );

    // Other members' exchanges, the owner's, and alice's own later ones: each writes a
    // membership's last_active_at.
    access_token(&app, &bob, org).await;
    access_token(&app, &bob, other).await;
    access_token(&app, &bob, org).await;
    access_token(&app, &owner, org).await;
    access_token(&app, &alice, other).await;
    let newer = access_token(&app, &alice, org).await;
    let recorded: i64 = app
        .sql
        .query_one(
            "select count(*) as n from roster.organization_memberships \
              where organization_id in ($1, $2) and last_active_at is not null",
            &[&org, &other],
        )
        .await
        .expect("count recorded activity")
        .get("n");
    assert_eq!(5, recorded, "alice's two, bob's two, the owner's one");
    assert_eq!(
        versions,
        (
            app.org_version(org).await,
            app.user_version(alice.id).await,
            app.user_version(bob.id).await,
        ),
        "no version moved"
    );

    // Whatever the exchanges announced has been applied once the marker's change has.
    app.exec(
        "update roster.users set display_name = 'Marker moved' where id = $1",
        &[&marker.id],
    )
    .await;
    let version = app.user_version(marker.id).await;
    wait_for(
        "the listener to apply the marker's change",
        INVALIDATION_DEADLINE,
        || async { (app.minimum(DepKind::User, marker.id).await >= Some(version)).then_some(()) },
    )
    .await;

    let (reply, trips) = app.counted(app.get_org(&token, org)).await;
    assert_eq!(
        200, reply.status,
        "alice's first token is current: {}",
        reply.text
    );
    assert_eq!(0, trips, "and its cached check was not even invalidated");
    assert_current_and_cached(&app, &newer, org, "alice's newer token").await;
    let bob_token = access_token(&app, &bob, org).await;
    assert_current_and_cached(&app, &bob_token, org, "bob's token").await;
    let reply = app.get_org(&token, org).await;
    assert_eq!(
        200, reply.status,
        "after bob's exchange again: {}",
        reply.text
    );
}
