//! The cache keeps tenants apart and cannot be used against the database's answers: rows of
//! two tenants that share an id never share an entry; a change to one tenant leaves the other's
//! entries warm; whoever can write to Redis cannot grant access; and a client cannot make the
//! cache grow without bound.

use roster::cache::keys;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{
    spawn_app, spawn_app_with, wait_for, AppOptions, TestApp, INVALIDATION_DEADLINE,
};

/// Every key of the app's namespace.
async fn keys(app: &TestApp) -> Vec<String> {
    let client =
        redis::Client::open(app.redis_url.as_deref().expect("a cached app")).expect("Redis URL");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to Redis");
    redis::cmd("KEYS")
        .arg(format!("{}:*", app.namespace))
        .query_async(&mut connection)
        .await
        .expect("KEYS")
}

async fn redis_set(app: &TestApp, suffix: &str, value: &[u8]) {
    let client =
        redis::Client::open(app.redis_url.as_deref().expect("a cached app")).expect("Redis URL");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to Redis");
    redis::cmd("SET")
        .arg(format!("{}:{suffix}", app.namespace))
        .arg(value)
        .query_async::<()>(&mut connection)
        .await
        .expect("SET");
}

/// Waits until the listener has heard of every change to the tenant so far.
async fn wait_for_tenant_minimum(app: &TestApp, tenant: Uuid) {
    let version: i64 = app
        .sql
        .query_one(
            "select authz_version from roster.tenants where id = $1",
            &[&tenant],
        )
        .await
        .expect("read the tenant's version")
        .get("authz_version");
    let cache = app.cache.as_ref().expect("a cached app");
    wait_for(
        "the tenant's notification",
        INVALIDATION_DEADLINE,
        || async {
            (cache.minimum(roster::cache::DepKind::Tenant, tenant, tenant) >= Some(version))
                .then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_to_one_tenant_leaves_another_tenants_entries_warm() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let org = app.org(&owner, "acme").await;
    let other_tenant = app.create_tenant("globex").await;
    let other_owner = app.user_in(other_tenant, "other-owner", false).await;
    let other_org = app.org(&other_owner, "globex").await;
    for (token, org) in [(&owner.token, org), (&other_owner.token, other_org)] {
        assert_eq!(200, app.get_org(token, org).await.status);
        let (reply, trips) = app.counted(app.get_org(token, org)).await;
        assert_eq!((200, 0), (reply.status, trips), "warm: {reply:?}");
    }

    app.exec(
        "update roster.tenants set name = 'Acme renamed' where id = $1",
        &[&app.tenant],
    )
    .await;
    wait_for_tenant_minimum(&app, app.tenant).await;

    let (reply, trips) = app
        .counted(app.get_org(&other_owner.token, other_org))
        .await;
    assert_eq!(
        (200, 0),
        (reply.status, trips),
        "the other tenant's entries stay warm: {reply:?}"
    );
    let (reply, trips) = app.counted(app.get_org(&owner.token, org)).await;
    assert_eq!(200, reply.status, "{reply:?}");
    assert!(trips >= 1, "the changed tenant's entries are stale");
}

/// Raw SQL can give a tenant-2 organization the id (and the version) of a tenant-1 one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organization_id_shared_by_two_tenants_never_shares_an_entry() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let org = app.org(&owner, "acme").await;
    app.add(&owner, org, &member, "member").await;
    app.exec(
        "update roster.organizations set billing_email = 'billing@acme.test', \
                stripe_customer_id = 'cus_acme' where id = $1",
        &[&org],
    )
    .await;
    assert_eq!(200, app.get_org(&owner.token, org).await.status);
    assert_eq!(200, app.members(&owner.token, org).await.status);

    let other_tenant = app.create_tenant("globex").await;
    let twin_owner = app.user_in(other_tenant, "twin-owner", false).await;
    let version = app.org_version(org).await;
    let mut client = app.connect().await;
    let tx = client.transaction().await.expect("begin");
    tx.execute(
        "insert into roster.organizations (tenant_id, id, name, slug) values ($1, $2, 'Twin', 'twin')",
        &[&other_tenant, &org],
    )
    .await
    .expect("insert the twin organization");
    tx.execute(
        "update roster.organization_versions set version = $3 \
          where tenant_id = $1 and organization_id = $2",
        &[&other_tenant, &org, &version],
    )
    .await
    .expect("give the twin the same version");
    tx.execute(
        "insert into roster.organization_memberships (tenant_id, organization_id, user_id, role) \
         values ($1, $2, $3, 'owner')",
        &[&other_tenant, &org, &twin_owner.id],
    )
    .await
    .expect("give the twin an owner");
    tx.commit().await.expect("commit the twin");

    let twin = app.get_org(&twin_owner.token, org).await.json();
    assert_eq!(
        "Twin", twin["name"],
        "the twin's owner reads its own: {twin}"
    );
    assert_eq!(Value::Null, twin["billing_email"], "{twin}");
    assert_eq!(Value::Null, twin["stripe_customer_id"], "{twin}");
    let members = app.members(&twin_owner.token, org).await.json();
    let emails: Vec<&str> = members["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|m| m["email"].as_str().expect("email"))
        .collect();
    assert_eq!(vec![twin_owner.email.as_str()], emails, "{members}");
    // And tenant 1 still reads its own, from the cache.
    let (reply, trips) = app.counted(app.get_org(&owner.token, org)).await;
    assert_eq!((200, 0), (reply.status, trips), "{reply:?}");
    assert_eq!("Org acme", reply.json()["name"]);
}

/// A user id shared by two tenants is refused at every lookup, cached or not: never a grant
/// the database refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_id_shared_by_two_tenants_is_refused_even_when_cached() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let org = app.org(&owner, "acme").await;
    let check = [(org, "organization:delete")];
    let allowed = app.check(&owner.token, &check).await.json();
    assert_eq!(true, allowed["results"][0]["allowed"], "{allowed}");
    let (_, trips) = app.counted(app.check(&owner.token, &check)).await;
    assert_eq!(0, trips, "cached");

    let other_tenant = app.create_tenant("globex").await;
    app.exec(
        "insert into roster.users (tenant_id, id, email, is_tenant_admin) \
         values ($1, $2, 'twin@globex.test', true)",
        &[&other_tenant, &owner.id],
    )
    .await;
    let (reply, _) = wait_for("the twin to be refused", INVALIDATION_DEADLINE, || async {
        let reply = app.check(&owner.token, &check).await;
        (reply.status != 200).then_some(reply)
    })
    .await;
    assert_eq!(
        500, reply.status,
        "an ambiguous id is a data fault: {reply:?}"
    );
    for reply in [
        app.check(&owner.token, &check).await,
        app.get_org(&owner.token, org).await,
        app.orgs(&owner.token, "").await,
        app.me(&owner.token, org).await,
    ] {
        assert_eq!(500, reply.status, "refused at every read: {reply:?}");
    }
}

/// Whoever can write to Redis (a shared Redis, another deployment's namespace) cannot grant
/// access: entries are authenticated, and a forged or moved one is a miss.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_or_moved_entry_grants_nothing() {
    // Every lookup asks Redis: no near copy of the genuine entries stands in front.
    let app = spawn_app_with(AppOptions {
        near_entries: 0,
        ..AppOptions::default()
    })
    .await;
    let owner = app.user("owner").await;
    let outsider = app.user("outsider").await;
    let org = app.org(&owner, "acme").await;
    let tenant = app.tenant;
    let check = [(org, "organization:delete")];
    assert_eq!(
        true,
        app.check(&owner.token, &check).await.json()["results"][0]["allowed"]
    );
    assert_eq!(
        false,
        app.check(&outsider.token, &check).await.json()["results"][0]["allowed"]
    );
    let owner_key = keys::access(tenant, org, owner.id).name;
    let outsider_key = keys::access(tenant, org, outsider.id).name;
    let owner_entry = app
        .redis_get(&owner_key)
        .await
        .expect("the owner's cached access");
    let errors = app.metric("roster_cache_errors_total").await;

    // The owner's genuine entry, copied under the outsider's key.
    redis_set(&app, &outsider_key, &owner_entry).await;
    let (reply, trips) = app.counted(app.check(&outsider.token, &check)).await;
    assert_eq!(false, reply.json()["results"][0]["allowed"], "{reply:?}");
    assert!(trips >= 1, "the moved entry is a miss");

    // An entry written in the layout, with every permission, but no valid tag.
    let payload = String::from_utf8(owner_entry.clone()).expect("text");
    let forged = format!("{}{}", "0".repeat(32), &payload[32..]);
    redis_set(&app, &outsider_key, forged.as_bytes()).await;
    let (reply, trips) = app.counted(app.check(&outsider.token, &check)).await;
    assert_eq!(false, reply.json()["results"][0]["allowed"], "{reply:?}");
    assert!(trips >= 1, "the forged entry is a miss");

    // The owner's own entry, tampered with.
    let tampered = String::from_utf8(owner_entry)
        .expect("text")
        .replace("owner", "ownes");
    redis_set(&app, &owner_key, tampered.as_bytes()).await;
    let (_, trips) = app.counted(app.check(&owner.token, &check)).await;
    assert!(trips >= 1, "the tampered entry is a miss");
    assert!(
        app.metric("roster_cache_errors_total").await >= errors + 3,
        "each rejected entry is counted"
    );
}

/// A signed-in user probing random organization ids, and paging with every limit and offset,
/// adds no unbounded number of keys to Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cannot_fill_redis() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let loner = app.user("loner").await;
    let org = app.org(&owner, "acme").await;
    let before = keys(&app).await.len();
    for _ in 0..10 {
        let random: Vec<(Uuid, &str)> = (0..100)
            .map(|_| (Uuid::new_v4(), "organization:read"))
            .collect();
        let reply = app.check(&loner.token, &random).await;
        assert_eq!(200, reply.status, "{reply:?}");
    }
    for offset in 0..60 {
        let path = format!("/organizations/{org}/members?limit=1&offset={offset}");
        assert_eq!(200, app.get(&owner.token, &path).await.status);
    }
    for limit in 1..=60 {
        let path = format!("/organizations/{org}/members?limit={limit}");
        assert_eq!(200, app.get(&owner.token, &path).await.status);
    }
    let added = keys(&app).await.len() - before;
    // The owner's access, five aligned pages of limit 1, sixty first pages; nothing for the
    // thousand random ids.
    assert!(
        added <= 1 + 5 + 60,
        "{added} keys added: refusals for ids that exist nowhere, and later pages, are not stored"
    );
    // The random ids' refusals are still answered without the database (in-process).
    let random = [(Uuid::new_v4(), "organization:read")];
    assert_eq!(200, app.check(&loner.token, &random).await.status);
    let (_, trips) = app.counted(app.check(&loner.token, &random)).await;
    assert_eq!(0, trips, "a repeated refusal for an id that exists nowhere");
}
