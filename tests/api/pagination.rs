//! `limit` and `offset` on every list endpoint, and `{"data": [...], "has_more": bool}`.

use reqwest::Response;
use uuid::Uuid;

use crate::helpers::{assert_page, column, error_body, spawn_app, TestApp, TestUser};

#[derive(Debug, Clone, Copy)]
enum List {
    Organizations,
    UserOrganizations,
    TenantOrganizations,
    Members,
}

const LISTS: [List; 4] = [
    List::Organizations,
    List::UserOrganizations,
    List::TenantOrganizations,
    List::Members,
];

/// Five organizations owned by one user, in a tenant with no others; the first has five members.
struct Fixture {
    owner: TestUser,
    admin: TestUser,
    org: Uuid,
}

async fn five_of_everything(app: &TestApp) -> Fixture {
    let owner = app.user("olivia").await;
    let admin = app.tenant_admin("tess").await;
    let mut orgs = Vec::new();
    for slug in ["echo", "alpha", "delta", "bravo", "charlie"] {
        orgs.push(app.new_org(&owner, slug).await);
    }
    for name in ["mia", "max", "moe", "mel"] {
        let user = app.user(name).await;
        app.new_member(&owner, orgs[0], &user, "member", "active")
            .await;
    }
    Fixture {
        owner,
        admin,
        org: orgs[0],
    }
}

impl List {
    async fn send(self, app: &TestApp, fixture: &Fixture, query: &str) -> Response {
        let Fixture { owner, admin, org } = fixture;
        match self {
            List::Organizations => app.list_organizations(&owner.token, query).await,
            List::UserOrganizations => {
                app.list_user_organizations(&admin.token, owner.id, query)
                    .await
            }
            List::TenantOrganizations => app.list_tenant_organizations(&admin.token, query).await,
            List::Members => app.list_members(&owner.token, org, query).await,
        }
    }
}

#[tokio::test]
async fn every_list_walks_its_pages_with_limit_and_offset() {
    let app = spawn_app().await;
    let fixture = five_of_everything(&app).await;

    for list in LISTS {
        let key = match list {
            List::Members => "user_id",
            _ => "id",
        };
        let (all, has_more) =
            assert_page(list.send(&app, &fixture, "").await, &format!("{list:?}")).await;
        assert_eq!(
            5,
            all.len(),
            "{list:?}: the default limit (50) holds all five"
        );
        assert!(!has_more, "{list:?}: nothing after the default page");
        let all = column(&all, key);

        let mut walked = Vec::new();
        for (offset, expected_len, expected_more) in [(0, 2, true), (2, 2, true), (4, 1, false)] {
            let query = format!("limit=2&offset={offset}");
            let context = format!("{list:?} ?{query}");
            let (rows, has_more) =
                assert_page(list.send(&app, &fixture, &query).await, &context).await;
            assert_eq!(expected_len, rows.len(), "{context}: rows");
            assert_eq!(expected_more, has_more, "{context}: has_more");
            walked.extend(column(&rows, key));
        }
        assert_eq!(
            all, walked,
            "{list:?}: the pages put together are the whole list"
        );

        for (query, expected, expected_more) in [
            ("offset=1&limit=2", &all[1..3], true),
            ("offset=3", &all[3..], false),
            ("limit=5", &all[..], false),
            ("limit=4", &all[..4], true),
            ("offset=5", &all[5..], false),
            ("offset=1000&limit=200", &all[5..], false),
        ] {
            let context = format!("{list:?} ?{query}");
            let (rows, has_more) =
                assert_page(list.send(&app, &fixture, query).await, &context).await;
            assert_eq!(expected, column(&rows, key), "{context}: rows");
            assert_eq!(expected_more, has_more, "{context}: has_more");
        }
    }
}

#[tokio::test]
async fn every_list_checks_limit_and_offset() {
    let app = spawn_app().await;
    let fixture = five_of_everything(&app).await;

    // (query, status, what the message names).
    let cases = [
        ("limit=0", 422, "got 0"),
        ("limit=201", 422, "got 201"),
        ("limit=-1", 422, "got -1"),
        ("offset=-1", 422, "got -1"),
        ("offset=2147483648", 422, "got 2147483648"),
        ("limit=abc", 400, "limit"),
        ("offset=abc", 400, "offset"),
        ("limit=1.5", 400, "limit"),
    ];
    for list in LISTS {
        for (query, status, fragment) in cases {
            let context = format!("{list:?} ?{query} should be rejected with {status}");
            let response = list.send(&app, &fixture, query).await;
            let (code, message) = error_body(response, status, &context).await;
            let expected_code = if status == 422 {
                "invalid_input"
            } else {
                "bad_request"
            };
            assert_eq!(expected_code, code, "{context}: code");
            assert!(
                message.contains(fragment),
                "{context}: the message should name {fragment:?}: {message}"
            );
        }
        // Members cap offset at 10000 (they page by cursor beyond: see the next test).
        let deepest = match list {
            List::Members => "limit=200&offset=10000",
            _ => "limit=200&offset=2147483647",
        };
        for query in ["limit=1", "limit=200", deepest] {
            let context = format!("{list:?} ?{query} should be accepted");
            assert_page(list.send(&app, &fixture, query).await, &context).await;
        }
    }
}

/// Members also page by cursor: `next_after` of one page is the `after` of the next, and the
/// pages are those of offset paging; offset is capped, and the two do not mix.
#[tokio::test]
async fn members_page_by_cursor_as_they_do_by_offset() {
    let app = spawn_app().await;
    let fixture = five_of_everything(&app).await;
    let (all, _) = assert_page(List::Members.send(&app, &fixture, "").await, "all").await;
    let all = column(&all, "membership_id");

    let mut walked = Vec::new();
    let mut query = "limit=2".to_owned();
    loop {
        let page = app
            .list_members(&fixture.owner.token, fixture.org, &query)
            .await;
        let body: serde_json::Value = page.json().await.expect("a JSON page");
        let data = body["data"].as_array().expect("data").clone();
        walked.extend(column(&data, "membership_id"));
        match body["next_after"].as_str() {
            Some(after) => {
                assert_eq!(body["has_more"], true, "{body}");
                query = format!("limit=2&after={after}");
            }
            None => {
                assert_eq!(body["has_more"], false, "{body}");
                break;
            }
        }
    }
    assert_eq!(
        all, walked,
        "cursor pages visit every member once, in order"
    );

    let first = &all[0];
    let cases = [
        ("offset=10001".to_owned(), 422, "10000"),
        (format!("offset=1&after={first}"), 422, "not both"),
        ("after=nope".to_owned(), 400, "after"),
        (format!("after={}", Uuid::new_v4()), 422, "no membership"),
    ];
    for (query, status, fragment) in cases {
        let response = app
            .list_members(&fixture.owner.token, fixture.org, &query)
            .await;
        let (_, message) = error_body(response, status, &format!("?{query}")).await;
        assert!(message.contains(fragment), "?{query}: {message}");
    }
}
