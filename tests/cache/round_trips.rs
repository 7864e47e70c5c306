//! A warm cache answers with no database round trip at all, refusals included; a cold request
//! makes one statement (two when it is also that statement's first prepare on the pooled
//! connection it got).

use std::future::Future;
use std::pin::Pin;

use uuid::Uuid;

use crate::helpers::{spawn_app, Reply, TestApp};

type Request<'a> = Box<dyn Fn() -> Pin<Box<dyn Future<Output = Reply> + 'a>> + 'a>;

/// One request of the table: what it is, how to send it, the status it must get, and whether
/// it is the first to need its cache entries (a cold miss) or finds them already there.
struct Case<'a> {
    what: &'static str,
    send: Request<'a>,
    status: u16,
    cold: bool,
}

fn case<'a, F, Fut>(what: &'static str, status: u16, cold: bool, send: F) -> Case<'a>
where
    F: Fn() -> Fut + 'a,
    Fut: Future<Output = Reply> + 'a,
{
    Case {
        what,
        send: Box::new(move || Box::pin(send())),
        status,
        cold,
    }
}

/// Sends each case once (cold or not) then three times more, which must come from the cache:
/// same status, same body, no round trip.
async fn assert_served_from_cache(app: &TestApp, cases: Vec<Case<'_>>) {
    for case in cases {
        let (first, trips) = app.counted((case.send)()).await;
        assert_eq!(case.status, first.status, "{}: {}", case.what, first.text);
        if case.cold {
            assert!(
                (1..=2).contains(&trips),
                "{}: a cold miss makes one statement (plus its first prepare), made {trips}",
                case.what
            );
        } else {
            assert_eq!(0, trips, "{}: its entries were already cached", case.what);
        }
        for attempt in 1..=3 {
            let (warm, trips) = app.counted((case.send)()).await;
            assert_eq!(
                (first.status, first.text.as_str()),
                (warm.status, warm.text.as_str()),
                "{} (warm #{attempt}) should answer as the cold request did",
                case.what
            );
            assert_eq!(
                0, trips,
                "{} (warm #{attempt}) should make no database round trip",
                case.what
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_reads_and_checks_make_no_database_round_trip() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let org = app.org(&owner, "acme").await;
    app.add(&owner, org, &member, "member").await;
    // Separate organizations, so that each check endpoint starts cold (they share entries).
    let me_org = app.org(&owner, "me-org").await;
    app.add(&owner, me_org, &member, "admin").await;
    let one_org = app.org(&owner, "one-org").await;
    app.add(&owner, one_org, &member, "member").await;
    // 10 organizations × 2 permissions = 20 checks: member, admin, or not a member at all.
    let mut checks: Vec<(Uuid, &str)> = Vec::new();
    let mut expected = Vec::new();
    for i in 0..10 {
        let many = app.org(&owner, &format!("many-{i}")).await;
        let role = ["member", "admin", ""][i % 3];
        if !role.is_empty() {
            app.add(&owner, many, &member, role).await;
        }
        checks.push((many, "members:read"));
        expected.push(!role.is_empty());
        checks.push((many, "members:invite"));
        expected.push(role == "admin");
    }

    let token = member.token.as_str();
    let checks = &checks;
    let app = &app;
    assert_served_from_cache(
        app,
        vec![
            case("GET /organizations/{id}", 200, true, move || {
                app.get_org(token, org)
            }),
            case(
                "GET /organizations/{id}/members?limit=20",
                200,
                true,
                move || app.members(token, org),
            ),
            case("GET /organizations", 200, true, move || app.orgs(token, "")),
            case("GET /organizations/{id}/me", 200, true, move || {
                app.me(token, me_org)
            }),
            case("POST /authz/check with 1 check", 200, true, move || {
                app.check(token, &[(one_org, "members:read")])
            }),
            case("POST /authz/check with 20 checks", 200, true, move || {
                app.check(token, checks)
            }),
        ],
    )
    .await;

    // The cached answers are the right ones.
    let results = app.check(token, checks).await.json();
    let allowed: Vec<bool> = results["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["allowed"].as_bool().expect("allowed"))
        .collect();
    assert_eq!(expected, allowed, "the 20 checks, in order");
    let me = app.me(token, me_org).await.json();
    assert_eq!("admin", me["role"], "/me: {me}");
    assert_eq!("active", me["status"], "/me: {me}");
}

/// The people of the refusal tests: an owner, a member, a non-member and a deleted member of
/// one organization, whose own entries are already cached.
struct Refused {
    app: TestApp,
    org: Uuid,
    member: String,
    outsider: String,
    deleted: String,
}

async fn refused() -> Refused {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let outsider = app.user("outsider").await;
    let deleted = app.user("deleted").await;
    let org = app.org(&owner, "acme").await;
    app.add(&owner, org, &member, "member").await;
    app.add(&owner, org, &deleted, "member").await;
    app.exec(
        "update roster.users set deleted_at = now() where id = $1",
        &[&deleted.id],
    )
    .await;
    // Warm the organization's own entries, as a member would.
    assert_eq!(200, app.get_org(&member.token, org).await.status);
    Refused {
        app,
        org,
        member: member.token,
        outsider: outsider.token,
        deleted: deleted.token,
    }
}

/// `/me` and `/authz/check` decide from the cached access alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_checks_come_from_the_cache_without_a_round_trip() {
    let Refused {
        app,
        org,
        member,
        outsider,
        deleted,
    } = refused().await;
    let app = &app;
    let (member, outsider, deleted) = (member.as_str(), outsider.as_str(), deleted.as_str());
    let denied = [
        "organization:update",
        "organization:delete",
        "members:invite",
        "members:remove",
        "audit:read",
    ];
    let denied: Vec<(Uuid, &str)> = denied.iter().map(|p| (org, *p)).collect();
    let denied = &denied;
    assert_served_from_cache(
        app,
        vec![
            case("a non-member's GET .../me", 404, true, move || {
                app.me(outsider, org)
            }),
            case("a non-member's POST /authz/check", 200, false, move || {
                app.check(outsider, &[(org, "organization:read")])
            }),
            case(
                "a member's checks of what it may not do",
                200,
                false,
                move || app.check(member, denied),
            ),
            case("a member's GET .../me", 200, false, move || {
                app.me(member, org)
            }),
            case("a deleted user's GET .../me", 401, true, move || {
                app.me(deleted, org)
            }),
            case(
                "a deleted user's POST /authz/check",
                401,
                false,
                move || app.check(deleted, &[(org, "organization:read")]),
            ),
        ],
    )
    .await;

    // And the cached answers say no.
    let results = app
        .check(outsider, &[(org, "organization:read")])
        .await
        .json();
    assert_eq!(false, results["results"][0]["allowed"], "{results}");
    let results = app.check(member, denied).await.json();
    for (i, (_, permission)) in denied.iter().enumerate() {
        assert_eq!(
            false, results["results"][i]["allowed"],
            "a member may not {permission}: {results}"
        );
    }
    let me = app.me(member, org).await.json();
    let permissions: Vec<&str> = me["permissions"]
        .as_array()
        .expect("permissions")
        .iter()
        .map(|p| p.as_str().expect("permission name"))
        .collect();
    assert_eq!(vec!["members:read", "organization:read"], permissions);
}

/// The reads that fetch access and data in one statement must cache a refusal too: the
/// issue's "unauthorized requests are refused from the cache without touching the database".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_reads_come_from_the_cache_without_a_round_trip() {
    let Refused {
        app,
        org,
        outsider,
        deleted,
        ..
    } = refused().await;
    let app = &app;
    let (outsider, deleted) = (outsider.as_str(), deleted.as_str());
    assert_served_from_cache(
        app,
        vec![
            case(
                "a non-member's GET /organizations/{id}",
                404,
                true,
                move || app.get_org(outsider, org),
            ),
            case("a non-member's GET .../members", 404, false, move || {
                app.members(outsider, org)
            }),
            case(
                "a deleted user's GET /organizations/{id}",
                401,
                true,
                move || app.get_org(deleted, org),
            ),
            case(
                "a deleted user's GET /organizations",
                401,
                true,
                move || app.orgs(deleted, ""),
            ),
        ],
    )
    .await;
}

/// Strangers are refused from the cache too: a token for a user the database does not know
/// (never provisioned, or purged) is unauthenticated (RNACT, 401), and a user of another tenant
/// probing this tenant's organization ids finds nothing (404).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_of_strangers_come_from_the_cache_without_a_round_trip() {
    let Refused { app, org, .. } = refused().await;
    let unknown = app.token_for(Uuid::new_v4());
    let other_tenant = app.create_tenant("globex").await;
    let foreigner = app.user_in(other_tenant, "foreigner", false).await;
    let foreign_admin = app.user_in(other_tenant, "foreign-admin", true).await;
    let app = &app;
    let (unknown, foreigner, foreign_admin) = (
        unknown.as_str(),
        foreigner.token.as_str(),
        foreign_admin.token.as_str(),
    );
    assert_served_from_cache(
        app,
        vec![
            case("an unknown user's GET .../me", 401, true, move || {
                app.me(unknown, org)
            }),
            case(
                "an unknown user's POST /authz/check",
                401,
                false,
                move || app.check(unknown, &[(org, "organization:read")]),
            ),
            case(
                "an unknown user's GET /organizations/{id}",
                401,
                false,
                move || app.get_org(unknown, org),
            ),
            case(
                "an unknown user's GET /organizations",
                401,
                true,
                move || app.orgs(unknown, ""),
            ),
            case("another tenant's user's GET .../me", 404, true, move || {
                app.me(foreigner, org)
            }),
            case(
                "another tenant's user's GET /organizations/{id}",
                404,
                false,
                move || app.get_org(foreigner, org),
            ),
            case(
                "another tenant's admin's GET /organizations/{id}",
                404,
                true,
                move || app.get_org(foreign_admin, org),
            ),
        ],
    )
    .await;
}
