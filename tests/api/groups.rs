//! Groups, their members and grants over HTTP: what each endpoint answers, who may call it, and
//! that a grant really changes what `/authz/check` says.

use reqwest::header::{CONTENT_TYPE, LOCATION};
use reqwest::{Method, Response};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{
    assert_error, assert_json, assert_keys, assert_no_content, assert_page, column, spawn_app,
    Reply, TestApp, TestUser,
};

const GROUP_KEYS: &[&str] = &[
    "id",
    "key",
    "name",
    "description",
    "parent_key",
    "member_count",
    "created_at",
    "updated_at",
];
const GROUP_MEMBERSHIP_KEYS: &[&str] = &[
    "id",
    "organization_id",
    "group_key",
    "user_id",
    "expires_at",
    "added_by",
    "created_at",
];
const GROUP_MEMBER_KEYS: &[&str] = &[
    "user_id",
    "email",
    "display_name",
    "expires_at",
    "created_at",
];
const GRANT_KEYS: &[&str] = &[
    "id",
    "subject_type",
    "subject_id",
    "role_key",
    "resource_type",
    "resource_id",
    "expires_at",
    "granted_by",
    "created_at",
];
const FUTURE: &str = "2999-01-01T00:00:00Z";
const PAST: &str = "2001-01-01T00:00:00Z";

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Response {
    let mut request = app.request(method, path).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("send the request")
}

async fn get(app: &TestApp, token: &str, path: &str) -> Response {
    call(app, Method::GET, path, token, None).await
}

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> Response {
    call(app, Method::POST, path, token, Some(body)).await
}

async fn patch(app: &TestApp, token: &str, path: &str, body: Value) -> Response {
    call(app, Method::PATCH, path, token, Some(body)).await
}

async fn delete(app: &TestApp, token: &str, path: &str) -> Response {
    call(app, Method::DELETE, path, token, None).await
}

fn groups(org: Uuid) -> String {
    format!("/organizations/{org}/groups")
}

fn group(org: Uuid, key: &str) -> String {
    format!("/organizations/{org}/groups/{key}")
}

fn group_members(org: Uuid, key: &str) -> String {
    format!("/organizations/{org}/groups/{key}/members")
}

fn grants(org: Uuid) -> String {
    format!("/organizations/{org}/grants")
}

/// Creates a group (under `parent`), asserting 201; returns it.
async fn new_group(
    app: &TestApp,
    actor: &TestUser,
    org: Uuid,
    key: &str,
    parent: Option<&str>,
) -> Value {
    let body = json!({"key": key, "name": format!("Group {key}"), "parent_key": parent});
    let response = post(app, &actor.token, &groups(org), body).await;
    assert_json(response, 201, &format!("create group {key}")).await
}

async fn add_to_group(app: &TestApp, actor: &TestUser, org: Uuid, key: &str, user: &TestUser) {
    let response = post(
        app,
        &actor.token,
        &group_members(org, key),
        json!({"user_id": user.id}),
    )
    .await;
    assert_json(response, 201, &format!("add {} to {key}", user.email)).await;
}

/// Registers permissions of the tenant's catalogue, as a tenant admin.
async fn register(app: &TestApp, names: &[&str]) {
    let admin = app.tenant_admin("tess").await;
    let items: Vec<Value> = names
        .iter()
        .map(|n| json!({"name": n, "description": n}))
        .collect();
    let response = post(app, &admin.token, "/tenant/permissions", json!(items)).await;
    assert_json(response, 200, "register permissions").await;
}

async fn new_role(app: &TestApp, owner: &TestUser, org: Uuid, key: &str, grants: &[&str]) {
    let body = json!({"key": key, "name": format!("Role {key}"), "permissions": grants});
    let response = post(
        app,
        &owner.token,
        &format!("/organizations/{org}/roles"),
        body,
    )
    .await;
    assert_json(response, 201, &format!("create role {key}")).await;
}

/// `POST /organizations/{org}/grants`; returns the reply.
async fn grant(app: &TestApp, actor: &TestUser, org: Uuid, body: Value) -> Response {
    post(app, &actor.token, &grants(org), body).await
}

async fn allowed(app: &TestApp, user: &TestUser, org: Uuid, permission: &str) -> bool {
    let body = json!({"checks": [{"organization_id": org, "permission": permission}]});
    let reply = assert_json(
        post(app, &user.token, "/authz/check", body).await,
        200,
        "check",
    )
    .await;
    reply["results"][0]["allowed"]
        .as_bool()
        .unwrap_or_else(|| panic!("a result: {reply}"))
}

fn location(response: &Response) -> Option<String> {
    response
        .headers()
        .get(LOCATION)
        .map(|v| v.to_str().expect("ASCII Location").to_owned())
}

// ----------------------------------------------------------------------------------------------
// Groups
// ----------------------------------------------------------------------------------------------

#[tokio::test]
async fn groups_are_created_listed_read_changed_and_deleted() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let mia = app.user("mia").await;
    let org = app.new_org(&owner, "acme").await;
    app.new_member(&owner, org, &mia, "member", "active").await;

    let body = json!({"key": "eng", "name": "  Engineering  ", "description": "Builders"});
    let response = post(&app, &owner.token, &groups(org), body).await;
    let created_at = location(&response);
    let eng = assert_json(response, 201, "create eng").await;
    assert_keys(&eng, GROUP_KEYS, "a new group");
    assert_eq!(Some(group(org, "eng")), created_at, "Location of the group");
    assert_eq!(json!("Engineering"), eng["name"], "the name is trimmed");
    assert_eq!(json!("Builders"), eng["description"]);
    assert_eq!(Value::Null, eng["parent_key"]);
    assert_eq!(json!(0), eng["member_count"]);

    let platform = new_group(&app, &owner, org, "platform", Some("eng")).await;
    assert_eq!(json!("eng"), platform["parent_key"], "created under eng");
    new_group(&app, &owner, org, "sales", None).await;
    add_to_group(&app, &owner, org, "eng", &mia).await;

    let (rows, has_more) = assert_page(get(&app, &mia.token, &groups(org)).await, "list").await;
    assert_eq!(vec!["eng", "platform", "sales"], column(&rows, "key"));
    assert!(!has_more);
    assert_keys(&rows[0], GROUP_KEYS, "a listed group");
    assert_eq!(json!(1), rows[0]["member_count"], "eng has mia: {rows:?}");
    assert_eq!(json!("eng"), rows[1]["parent_key"]);
    let path = format!("{}?limit=2&offset=1", groups(org));
    let (rows, has_more) = assert_page(get(&app, &mia.token, &path).await, "page 2").await;
    assert_eq!(vec!["platform", "sales"], column(&rows, "key"));
    assert!(!has_more, "nothing after sales");
    let path = format!("{}?limit=1", groups(org));
    let (_, has_more) = assert_page(get(&app, &mia.token, &path).await, "page 1 of 3").await;
    assert!(has_more);

    let read = assert_json(get(&app, &mia.token, &group(org, "eng")).await, 200, "get").await;
    assert_eq!(eng["id"], read["id"]);
    assert_eq!(json!(1), read["member_count"]);

    // A partial change keeps what it does not name; the group's count and parent stay.
    let changes = json!({"name": "Platform team", "description": null});
    let changed = assert_json(
        patch(&app, &owner.token, &group(org, "platform"), changes).await,
        200,
        "rename platform",
    )
    .await;
    assert_keys(&changed, GROUP_KEYS, "a changed group");
    assert_eq!(json!("Platform team"), changed["name"]);
    assert_eq!(Value::Null, changed["description"]);
    assert_eq!(json!("eng"), changed["parent_key"], "parent kept");
    let changed = assert_json(
        patch(
            &app,
            &owner.token,
            &group(org, "eng"),
            json!({"parent_key": "sales"}),
        )
        .await,
        200,
        "move eng under sales",
    )
    .await;
    assert_eq!(json!("sales"), changed["parent_key"]);
    assert_eq!(json!(1), changed["member_count"], "members stay");
    let changed = assert_json(
        patch(
            &app,
            &owner.token,
            &group(org, "eng"),
            json!({"parent_key": null}),
        )
        .await,
        200,
        "eng back to the top",
    )
    .await;
    assert_eq!(Value::Null, changed["parent_key"]);
    let read = assert_json(get(&app, &mia.token, &group(org, "eng")).await, 200, "get").await;
    assert_eq!(Value::Null, read["parent_key"], "as read back");

    assert_no_content(
        delete(&app, &owner.token, &group(org, "platform")).await,
        "delete platform",
    )
    .await;
    assert_error(
        get(&app, &mia.token, &group(org, "platform")).await,
        404,
        "group_not_found",
        "a deleted group",
    )
    .await;
    assert_error(
        delete(&app, &owner.token, &group(org, "platform")).await,
        404,
        "group_not_found",
        "deleting it again",
    )
    .await;
}

#[tokio::test]
async fn group_trees_have_no_cycles_nor_orphans_and_at_most_8_levels() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let org = app.new_org(&owner, "acme").await;
    new_group(&app, &owner, org, "top", None).await;
    new_group(&app, &owner, org, "middle", Some("top")).await;
    new_group(&app, &owner, org, "bottom", Some("middle")).await;

    let message = assert_error(
        patch(
            &app,
            &owner.token,
            &group(org, "top"),
            json!({"parent_key": "bottom"}),
        )
        .await,
        422,
        "invalid_hierarchy",
        "top under its own grandchild",
    )
    .await;
    assert!(message.contains("top"), "{message}");
    // The table's own check (ck_groups_not_own_parent) catches this one, before the tree's.
    let message = assert_error(
        patch(
            &app,
            &owner.token,
            &group(org, "top"),
            json!({"parent_key": "top"}),
        )
        .await,
        422,
        "invalid_hierarchy",
        "top under itself",
    )
    .await;
    assert!(message.contains("its own parent"), "{message}");
    assert_error(
        patch(
            &app,
            &owner.token,
            &group(org, "top"),
            json!({"parent_key": "nowhere"}),
        )
        .await,
        422,
        "invalid_input",
        "a parent that does not exist",
    )
    .await;
    let message = assert_error(
        delete(&app, &owner.token, &group(org, "top")).await,
        409,
        "group_has_children",
        "deleting a parent",
    )
    .await;
    assert!(message.contains("middle"), "names the child: {message}");

    // top > middle > bottom > l4 .. l8: eight levels; a ninth is refused.
    let mut parent = "bottom".to_owned();
    for level in 4..=8 {
        let key = format!("l{level}");
        new_group(&app, &owner, org, &key, Some(&parent)).await;
        parent = key;
    }
    let body = json!({"key": "l9", "name": "Nine", "parent_key": "l8"});
    assert_error(
        post(&app, &owner.token, &groups(org), body).await,
        422,
        "invalid_hierarchy",
        "a ninth level",
    )
    .await;
}

#[tokio::test]
async fn group_input_is_refused_naming_the_field() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let org = app.new_org(&owner, "acme").await;
    new_group(&app, &owner, org, "eng", None).await;

    let long_key = "k".repeat(51);
    // (description, body, status, code, a fragment the message must contain)
    let cases = [
        (
            "an uppercase key",
            json!({"key": "Eng", "name": "E"}),
            422,
            "invalid_input",
            "key",
        ),
        (
            "a one-letter key",
            json!({"key": "e", "name": "E"}),
            422,
            "invalid_input",
            "key",
        ),
        (
            "a key with a space",
            json!({"key": "e g", "name": "E"}),
            422,
            "invalid_input",
            "key",
        ),
        (
            "a 51-character key",
            json!({"key": long_key, "name": "E"}),
            422,
            "invalid_input",
            "key",
        ),
        ("no key", json!({"name": "E"}), 422, "invalid_input", "key"),
        (
            "a blank name",
            json!({"key": "ops", "name": "   "}),
            422,
            "invalid_input",
            "name",
        ),
        (
            "a name of 101",
            json!({"key": "ops", "name": "n".repeat(101)}),
            422,
            "invalid_input",
            "name",
        ),
        (
            "a description of 1001",
            json!({"key": "ops", "name": "Ops", "description": "d".repeat(1001)}),
            422,
            "invalid_input",
            "description",
        ),
        (
            "a malformed parent key",
            json!({"key": "ops", "name": "Ops", "parent_key": "Eng!"}),
            422,
            "invalid_input",
            "parent_key",
        ),
        (
            "an unknown field",
            json!({"key": "ops", "name": "Ops", "colour": "red"}),
            422,
            "invalid_input",
            "colour",
        ),
        (
            "a NUL in a name",
            json!({"key": "ops", "name": "O\u{0}ps"}),
            422,
            "invalid_input",
            "name",
        ),
        (
            "an unknown parent",
            json!({"key": "ops", "name": "Ops", "parent_key": "nope"}),
            422,
            "invalid_input",
            "parent_key: no group 'nope'",
        ),
        (
            "a taken key",
            json!({"key": "eng", "name": "Again"}),
            409,
            "group_key_taken",
            "eng",
        ),
    ];
    for (what, body, status, code, fragment) in cases {
        let message = assert_error(
            post(&app, &owner.token, &groups(org), body).await,
            status,
            code,
            what,
        )
        .await;
        assert!(
            message.contains(fragment),
            "{what}: {message} should name {fragment}"
        );
    }
    let accepted = json!({"key": "ops", "name": "n".repeat(100), "description": "d".repeat(1000)});
    assert_json(
        post(&app, &owner.token, &groups(org), accepted).await,
        201,
        "100 and 1000 characters",
    )
    .await;

    let changes = [
        ("an unknown field", json!({"key": "new"}), "key"),
        ("a name that is no string", json!({"name": 5}), "name"),
        ("a blank name", json!({"name": " "}), "name"),
        (
            "a parent key that is no string",
            json!({"parent_key": 7}),
            "parent_key",
        ),
        ("a body that is no object", json!(["name"]), "object"),
    ];
    for (what, body, fragment) in changes {
        let message = assert_error(
            patch(&app, &owner.token, &group(org, "eng"), body).await,
            422,
            "invalid_input",
            what,
        )
        .await;
        assert!(
            message.contains(fragment),
            "{what}: {message} should name {fragment}"
        );
    }

    // Path keys are any text: what no group has is not found, a NUL is refused, never a 500.
    for (key, status) in [
        ("NoSuch", 404),
        ("a%20b", 404),
        ("%C3%A9", 404),
        ("a%00b", 422),
    ] {
        let reply = Reply::read(get(&app, &owner.token, &group(org, key)).await).await;
        assert_eq!(status, reply.status, "GET group {key:?}: {}", reply.text);
    }
}

// ----------------------------------------------------------------------------------------------
// Group members
// ----------------------------------------------------------------------------------------------

#[tokio::test]
async fn group_members_are_added_listed_and_removed() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let mia = app.user("mia").await;
    let ned = app.user("ned").await;
    let stranger = app.user("stan").await;
    let elsewhere = app.create_tenant("globex").await;
    let foreigner = app.user_in(elsewhere, "fred", false).await;
    let org = app.new_org(&owner, "acme").await;
    app.new_member(&owner, org, &mia, "member", "active").await;
    app.new_member(&owner, org, &ned, "member", "active").await;
    new_group(&app, &owner, org, "eng", None).await;
    let members = group_members(org, "eng");

    let body = json!({"user_id": mia.id, "expires_at": FUTURE});
    let response = post(&app, &owner.token, &members, body).await;
    let created_at = location(&response);
    let membership = assert_json(response, 201, "add mia").await;
    assert_keys(&membership, GROUP_MEMBERSHIP_KEYS, "a group membership");
    assert_eq!(json!(org), membership["organization_id"]);
    assert_eq!(json!("eng"), membership["group_key"]);
    assert_eq!(json!(mia.id), membership["user_id"]);
    assert_eq!(json!(FUTURE), membership["expires_at"]);
    assert_eq!(json!(owner.id), membership["added_by"]);
    assert_eq!(Some(format!("{members}/{}", mia.id)), created_at);
    // The Location answers, to those who may read members; not for someone out of the group.
    let at = created_at.expect("Location");
    let read = assert_json(get(&app, &owner.token, &at).await, 200, "mia, by Location").await;
    assert_keys(&read, GROUP_MEMBER_KEYS, "a group member");
    assert_eq!(json!(mia.id), read["user_id"]);
    assert_eq!(json!(mia.email), read["email"]);
    assert_eq!(json!(FUTURE), read["expires_at"]);
    assert_error(
        get(&app, &owner.token, &format!("{members}/{}", ned.id)).await,
        404,
        "member_not_found",
        "ned, not in the group yet",
    )
    .await;
    assert_error(
        get(&app, &stranger.token, &at).await,
        404,
        "not_found",
        "a stranger to the organization",
    )
    .await;
    add_to_group(&app, &owner, org, "eng", &ned).await;

    let cases = [
        (
            "an existing member",
            json!({"user_id": mia.id}),
            409,
            "already_member",
        ),
        (
            "no member of the organization",
            json!({"user_id": stranger.id}),
            404,
            "member_not_found",
        ),
        // As unknown here as a user that exists nowhere.
        (
            "another tenant's user",
            json!({"user_id": foreigner.id}),
            404,
            "member_not_found",
        ),
        (
            "an id of no one",
            json!({"user_id": Uuid::new_v4()}),
            404,
            "member_not_found",
        ),
        (
            "an expiry in the past",
            json!({"user_id": stranger.id, "expires_at": PAST}),
            422,
            "invalid_input",
        ),
        (
            "an expiry that is no time",
            json!({"user_id": stranger.id, "expires_at": "tomorrow"}),
            422,
            "invalid_input",
        ),
        (
            "a user id that is no uuid",
            json!({"user_id": "mia"}),
            422,
            "invalid_input",
        ),
        (
            "an unknown field",
            json!({"user_id": mia.id, "role": "admin"}),
            422,
            "invalid_input",
        ),
    ];
    for (what, body, status, code) in cases {
        assert_error(
            post(&app, &owner.token, &members, body).await,
            status,
            code,
            what,
        )
        .await;
    }
    let message = assert_error(
        post(&app, &owner.token, &members, json!({"user_id": mia.id})).await,
        409,
        "already_member",
        "twice",
    )
    .await;
    assert!(message.contains("already in group eng"), "{message}");
    let message = assert_error(
        post(
            &app,
            &owner.token,
            &members,
            json!({"user_id": ned.id, "expires_at": "soon"}),
        )
        .await,
        422,
        "invalid_input",
        "a bad expiry",
    )
    .await;
    assert!(message.contains("expires_at"), "{message}");
    assert_error(
        post(
            &app,
            &owner.token,
            &group_members(org, "nope"),
            json!({"user_id": mia.id}),
        )
        .await,
        404,
        "group_not_found",
        "adding to a group that does not exist",
    )
    .await;

    let (rows, has_more) = assert_page(get(&app, &mia.token, &members).await, "members").await;
    assert_eq!(
        vec![mia.email.clone(), ned.email.clone()],
        column(&rows, "email"),
        "by email"
    );
    assert!(!has_more);
    assert_keys(&rows[0], GROUP_MEMBER_KEYS, "a group member");
    assert_eq!(json!(FUTURE), rows[0]["expires_at"]);
    let (rows, has_more) = assert_page(
        get(&app, &mia.token, &format!("{members}?limit=1")).await,
        "page",
    )
    .await;
    assert_eq!(1, rows.len());
    assert!(has_more);

    let mia_in_eng = format!("{members}/{}", mia.id);
    assert_no_content(delete(&app, &owner.token, &mia_in_eng).await, "remove mia").await;
    assert_error(
        delete(&app, &owner.token, &mia_in_eng).await,
        404,
        "member_not_found",
        "removing her again",
    )
    .await;
    assert_error(
        delete(&app, &owner.token, &format!("{members}/not-a-uuid")).await,
        400,
        "bad_request",
        "a user id in the path that is no uuid",
    )
    .await;
    let (rows, _) = assert_page(get(&app, &mia.token, &members).await, "after").await;
    assert_eq!(vec![ned.email.clone()], column(&rows, "email"));

    // Leaving the organization is leaving its groups.
    assert_no_content(
        app.remove_member(&owner.token, org, ned.id).await,
        "ned leaves",
    )
    .await;
    let (rows, _) = assert_page(get(&app, &owner.token, &members).await, "ned gone").await;
    assert!(rows.is_empty(), "{rows:?}");
}

#[tokio::test]
async fn a_users_groups_are_its_own_to_read_or_anyones_with_members_read() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let mia = app.user("mia").await;
    let vic = app.user("vic").await;
    let outsider = app.user("oscar").await;
    let org = app.new_org(&owner, "acme").await;
    new_role(&app, &owner, org, "viewer", &["organization:read"]).await;
    app.new_member(&owner, org, &mia, "member", "active").await;
    app.new_member(&owner, org, &vic, "viewer", "active").await;
    new_group(&app, &owner, org, "eng", None).await;
    new_group(&app, &owner, org, "platform", Some("eng")).await;
    let body = json!({"user_id": mia.id, "expires_at": FUTURE});
    let response = post(&app, &owner.token, &group_members(org, "platform"), body).await;
    assert_json(response, 201, "mia in platform").await;
    add_to_group(&app, &owner, org, "eng", &mia).await;
    add_to_group(&app, &owner, org, "eng", &vic).await;
    let groups_of = |user: &TestUser| format!("/organizations/{org}/members/{}/groups", user.id);

    let own = assert_json(get(&app, &mia.token, &groups_of(&mia)).await, 200, "own").await;
    assert_eq!(
        json!([
            {"key": "eng", "name": "Group eng", "parent_key": null, "expires_at": null},
            {"key": "platform", "name": "Group platform", "parent_key": "eng", "expires_at": FUTURE},
        ]),
        own
    );
    let seen = assert_json(
        get(&app, &mia.token, &groups_of(&vic)).await,
        200,
        "members:read",
    )
    .await;
    assert_eq!(
        json!(["eng"]),
        json!(column(seen.as_array().unwrap(), "key"))
    );
    let own = assert_json(
        get(&app, &vic.token, &groups_of(&vic)).await,
        200,
        "vic's own",
    )
    .await;
    assert_eq!(1, own.as_array().unwrap().len());
    assert_error(
        get(&app, &vic.token, &groups_of(&mia)).await,
        403,
        "forbidden",
        "another's groups without members:read",
    )
    .await;
    let none = assert_json(
        get(&app, &owner.token, &groups_of(&outsider)).await,
        200,
        "none",
    )
    .await;
    assert_eq!(json!([]), none, "no member, no groups");
    assert_error(
        get(&app, &outsider.token, &groups_of(&outsider)).await,
        404,
        "not_found",
        "an organization the caller cannot see",
    )
    .await;
}

#[tokio::test]
async fn only_group_managers_change_groups_and_strangers_see_nothing() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let admin = app.user("adam").await;
    let mia = app.user("mia").await;
    let elsewhere = app.create_tenant("globex").await;
    let foreigner = app.user_in(elsewhere, "fred", false).await;
    let org = app.new_org(&owner, "acme").await;
    app.new_member(&owner, org, &admin, "admin", "active").await;
    app.new_member(&owner, org, &mia, "member", "active").await;
    new_group(&app, &owner, org, "eng", None).await;
    add_to_group(&app, &owner, org, "eng", &mia).await;

    // Every change, by each caller: (caller, status, code).
    let writes = |org: Uuid| {
        [
            (
                Method::POST,
                groups(org),
                Some(json!({"key": "ops", "name": "Ops"})),
            ),
            (
                Method::PATCH,
                group(org, "eng"),
                Some(json!({"name": "Eng"})),
            ),
            (
                Method::POST,
                group_members(org, "eng"),
                Some(json!({"user_id": admin.id})),
            ),
            (
                Method::DELETE,
                format!("{}/{}", group_members(org, "eng"), mia.id),
                None,
            ),
            (Method::DELETE, group(org, "eng"), None),
        ]
    };
    for (caller, status, code) in [(&mia, 403, "forbidden"), (&foreigner, 404, "not_found")] {
        for (method, path, body) in writes(org) {
            let what = format!("{} {method} {path}", caller.email);
            let response = call(&app, method, &path, &caller.token, body).await;
            assert_error(response, status, code, &what).await;
        }
    }
    for path in [groups(org), group(org, "eng"), group_members(org, "eng")] {
        let what = format!("another tenant's user reading {path}");
        assert_error(
            get(&app, &foreigner.token, &path).await,
            404,
            "not_found",
            &what,
        )
        .await;
    }
    let service = roster::auth::issue_service_token(&app.jwt, "billing", app.tenant, 3600)
        .expect("sign a service token");
    assert_error(
        get(&app, &service, &groups(org)).await,
        403,
        "forbidden",
        "a service",
    )
    .await;

    // Admins hold groups:manage: every change goes through, in order.
    for (method, path, body) in writes(org) {
        let what = format!("the admin's {method} {path}");
        let reply = Reply::read(call(&app, method, &path, &admin.token, body).await).await;
        assert!(
            [200, 201, 204].contains(&reply.status),
            "{what}: {} {}",
            reply.status,
            reply.text
        );
    }

    // groups:manage alone is enough to create and change a group.
    let gus = app.user("gus").await;
    new_role(&app, &owner, org, "grouper", &["groups:manage"]).await;
    app.new_member(&owner, org, &gus, "grouper", "active").await;
    new_group(&app, &gus, org, "infra", None).await;
    let changed = assert_json(
        patch(
            &app,
            &gus.token,
            &group(org, "infra"),
            json!({"name": "Infra"}),
        )
        .await,
        200,
        "a change with groups:manage alone",
    )
    .await;
    assert_eq!(json!("Infra"), changed["name"], "the group as changed");
    let read = assert_json(
        get(&app, &owner.token, &group(org, "infra")).await,
        200,
        "get",
    )
    .await;
    assert_eq!(json!("Infra"), read["name"], "and read back");
}

// ----------------------------------------------------------------------------------------------
// Grants
// ----------------------------------------------------------------------------------------------

#[tokio::test]
async fn grants_are_made_listed_filtered_and_revoked() {
    let app = spawn_app().await;
    register(&app, &["invoice:approve", "invoice:read"]).await;
    let owner = app.user("olivia").await;
    let mia = app.user("mia").await;
    let org = app.new_org(&owner, "acme").await;
    app.new_member(&owner, org, &mia, "member", "active").await;
    new_role(&app, &owner, org, "approver", &["invoice:approve"]).await;
    new_group(&app, &owner, org, "finance", None).await;

    let body = json!({"subject_type": "user", "subject_id": mia.id, "role_key": "approver", "expires_at": FUTURE});
    let response = grant(&app, &owner, org, body.clone()).await;
    let created_at = location(&response);
    let to_mia = assert_json(response, 201, "an organization-wide grant to mia").await;
    assert_keys(&to_mia, GRANT_KEYS, "a grant");
    assert_eq!(
        Some(format!(
            "{}/{}",
            grants(org),
            to_mia["id"].as_str().unwrap()
        )),
        created_at
    );
    assert_eq!(
        json!({"subject_type": "user", "subject_id": mia.id.to_string(), "role_key": "approver",
               "resource_type": null, "resource_id": null, "expires_at": FUTURE,
               "granted_by": owner.id}),
        json!({"subject_type": to_mia["subject_type"], "subject_id": to_mia["subject_id"],
               "role_key": to_mia["role_key"], "resource_type": to_mia["resource_type"],
               "resource_id": to_mia["resource_id"], "expires_at": to_mia["expires_at"],
               "granted_by": to_mia["granted_by"]})
    );
    assert_error(
        grant(&app, &owner, org, body).await,
        409,
        "already_granted",
        "the same grant twice",
    )
    .await;
    let body = json!({"subject_type": "group", "subject_id": "finance", "role_key": "approver",
                      "resource_type": "invoice", "resource_id": "42"});
    let to_finance = assert_json(grant(&app, &owner, org, body).await, 201, "a group's").await;
    assert_eq!(json!("group"), to_finance["subject_type"]);
    assert_eq!(
        json!("finance"),
        to_finance["subject_id"],
        "a group by its key"
    );
    assert_eq!(json!("invoice"), to_finance["resource_type"]);
    assert_eq!(json!("42"), to_finance["resource_id"]);
    assert_eq!(Value::Null, to_finance["expires_at"]);
    let body = json!({"subject_type": "user", "subject_id": mia.id, "role_key": "member",
                      "resource_type": "invoice", "resource_id": "42"});
    let on_invoice = assert_json(grant(&app, &owner, org, body).await, 201, "mia on 42").await;

    let ids = |rows: &[Value]| column(rows, "id");
    let id = |grant: &Value| grant["id"].as_str().unwrap().to_owned();
    let (rows, has_more) = assert_page(get(&app, &mia.token, &grants(org)).await, "all").await;
    assert_eq!(
        vec![id(&to_mia), id(&to_finance), id(&on_invoice)],
        ids(&rows),
        "oldest first"
    );
    assert!(!has_more);
    assert_keys(&rows[0], GRANT_KEYS, "a listed grant");
    assert_eq!(to_mia, rows[0], "listed as made");
    assert_eq!(to_finance, rows[1], "listed as made");
    let filtered = [
        ("subject_type=group".to_owned(), vec![id(&to_finance)]),
        (
            format!("subject_id={}", mia.id),
            vec![id(&to_mia), id(&on_invoice)],
        ),
        ("subject_id=finance".to_owned(), vec![id(&to_finance)]),
        ("role_key=member".to_owned(), vec![id(&on_invoice)]),
        (
            "resource_type=invoice&resource_id=42".to_owned(),
            vec![id(&to_finance), id(&on_invoice)],
        ),
        (
            "resource_type=invoice&subject_type=user".to_owned(),
            vec![id(&on_invoice)],
        ),
        ("resource_id=43".to_owned(), vec![]),
        ("limit=1&offset=1".to_owned(), vec![id(&to_finance)]),
    ];
    for (query, expected) in filtered {
        let path = format!("{}?{query}", grants(org));
        let (rows, _) = assert_page(get(&app, &mia.token, &path).await, &query).await;
        assert_eq!(expected, ids(&rows), "?{query}");
    }
    for (query, fragment) in [
        ("subject_type=robot", "subject_type"),
        ("role_key=a%00b", "role_key"),
    ] {
        let path = format!("{}?{query}", grants(org));
        let message = assert_error(
            get(&app, &mia.token, &path).await,
            422,
            "invalid_input",
            query,
        )
        .await;
        assert!(message.contains(fragment), "{query}: {message}");
    }

    let path = format!("{}/{}", grants(org), id(&to_mia));
    let one = assert_json(get(&app, &mia.token, &path).await, 200, "one grant").await;
    assert_eq!(to_mia, one, "as created (Location)");
    assert_no_content(delete(&app, &owner.token, &path).await, "revoke").await;
    assert_error(
        get(&app, &mia.token, &path).await,
        404,
        "grant_not_found",
        "read after revoking",
    )
    .await;
    assert_error(
        delete(&app, &owner.token, &path).await,
        404,
        "grant_not_found",
        "again",
    )
    .await;
    let path = format!("{}/{}", grants(org), Uuid::new_v4());
    assert_error(
        delete(&app, &owner.token, &path).await,
        404,
        "grant_not_found",
        "none",
    )
    .await;
    let path = format!("{}/not-a-uuid", grants(org));
    assert_error(
        delete(&app, &owner.token, &path).await,
        400,
        "bad_request",
        "no uuid",
    )
    .await;
    let (rows, _) = assert_page(get(&app, &mia.token, &grants(org)).await, "after").await;
    assert_eq!(vec![id(&to_finance), id(&on_invoice)], ids(&rows));
}

#[tokio::test]
async fn grant_input_is_refused_naming_the_field() {
    let app = spawn_app().await;
    register(&app, &["invoice:approve"]).await;
    let owner = app.user("olivia").await;
    let mia = app.user("mia").await;
    let stranger = app.user("stan").await;
    let elsewhere = app.create_tenant("globex").await;
    let foreigner = app.user_in(elsewhere, "fred", false).await;
    let org = app.new_org(&owner, "acme").await;
    app.new_member(&owner, org, &mia, "member", "active").await;

    let to_mia = |extra: Value| {
        let mut body = json!({"subject_type": "user", "subject_id": mia.id, "role_key": "member"});
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        body
    };
    let long_id = "i".repeat(256);
    // (description, body, status, code, a fragment the message must contain)
    let cases = [
        (
            "a subject type of neither",
            to_mia(json!({"subject_type": "robot"})),
            422,
            "invalid_input",
            "subject_type",
        ),
        (
            "a user id that is none",
            to_mia(json!({"subject_id": "mia"})),
            422,
            "invalid_input",
            "subject_id",
        ),
        (
            "a malformed role key",
            to_mia(json!({"role_key": "Admin"})),
            422,
            "invalid_input",
            "role_key",
        ),
        (
            "a role that does not exist",
            to_mia(json!({"role_key": "nope"})),
            422,
            "invalid_input",
            "nope",
        ),
        (
            "a malformed resource type",
            to_mia(json!({"resource_type": "Invoice", "resource_id": "1"})),
            422,
            "invalid_input",
            "resource_type",
        ),
        (
            "a resource type of no permission",
            to_mia(json!({"resource_type": "spaceship", "resource_id": "1"})),
            422,
            "invalid_input",
            "spaceship",
        ),
        (
            "a resource type without an id",
            to_mia(json!({"resource_type": "invoice"})),
            422,
            "invalid_input",
            "resource_id",
        ),
        (
            "an empty resource id",
            to_mia(json!({"resource_type": "invoice", "resource_id": ""})),
            422,
            "invalid_input",
            "resource_id",
        ),
        (
            "a resource id of 256",
            to_mia(json!({"resource_type": "invoice", "resource_id": long_id})),
            422,
            "invalid_input",
            "resource_id",
        ),
        (
            "a NUL in a resource id",
            to_mia(json!({"resource_type": "invoice", "resource_id": "4\u{0}2"})),
            422,
            "invalid_input",
            "resource_id",
        ),
        (
            "an expiry in the past",
            to_mia(json!({"expires_at": PAST})),
            422,
            "invalid_input",
            "expires_at",
        ),
        (
            "an expiry that is no time",
            to_mia(json!({"expires_at": "next week"})),
            422,
            "invalid_input",
            "expires_at",
        ),
        (
            "an unknown field",
            to_mia(json!({"user_id": mia.id})),
            422,
            "invalid_input",
            "user_id",
        ),
        (
            "no role",
            json!({"subject_type": "user", "subject_id": mia.id}),
            422,
            "invalid_input",
            "role_key",
        ),
        (
            "a group that does not exist",
            to_mia(json!({"subject_type": "group", "subject_id": "nope"})),
            404,
            "group_not_found",
            "nope",
        ),
        (
            "no member of the organization",
            to_mia(json!({"subject_id": stranger.id})),
            404,
            "member_not_found",
            "",
        ),
        // As for group members.
        (
            "another tenant's user",
            to_mia(json!({"subject_id": foreigner.id})),
            404,
            "member_not_found",
            "not a member",
        ),
    ];
    for (what, body, status, code, fragment) in cases {
        let message = assert_error(grant(&app, &owner, org, body).await, status, code, what).await;
        assert!(
            message.contains(fragment),
            "{what}: {message} should name {fragment}"
        );
    }
    let unseen = app.new_org(&foreigner, "globex").await;
    assert_error(
        grant(&app, &owner, unseen, to_mia(json!({}))).await,
        404,
        "not_found",
        "another tenant's organization",
    )
    .await;
    let reply = Reply::read(
        app.request(Method::POST, &grants(org))
            .bearer_auth(&owner.token)
            .header(CONTENT_TYPE, "application/json")
            .body("{")
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(400, reply.status, "malformed JSON: {}", reply.text);
}

#[tokio::test]
async fn granting_needs_grants_manage_and_holding_what_the_role_grants() {
    let app = spawn_app().await;
    register(&app, &["invoice:approve"]).await;
    let owner = app.user("olivia").await;
    let admin = app.user("adam").await;
    let mia = app.user("mia").await;
    let ned = app.user("ned").await;
    let org = app.new_org(&owner, "acme").await;
    app.new_member(&owner, org, &admin, "admin", "active").await;
    app.new_member(&owner, org, &mia, "member", "active").await;
    app.new_member(&owner, org, &ned, "member", "active").await;
    new_role(&app, &owner, org, "approver", &["invoice:approve"]).await;
    new_group(&app, &owner, org, "finance", None).await;
    let to_mia =
        |role: &str| json!({"subject_type": "user", "subject_id": mia.id, "role_key": role});

    let cases = [
        (
            "a member granting",
            &mia,
            to_mia("member"),
            403,
            "forbidden",
        ),
        (
            "an admin granting owner",
            &admin,
            to_mia("owner"),
            403,
            "forbidden",
        ),
        (
            "an admin granting more than it holds",
            &admin,
            to_mia("approver"),
            403,
            "privilege_escalation",
        ),
        (
            "an admin granting more than it holds to a group",
            &admin,
            json!({"subject_type": "group", "subject_id": "finance", "role_key": "approver"}),
            403,
            "privilege_escalation",
        ),
    ];
    for (what, caller, body, status, code) in cases {
        assert_error(grant(&app, caller, org, body).await, status, code, what).await;
    }
    let made = assert_json(
        grant(&app, &admin, org, to_mia("admin")).await,
        201,
        "admin",
    )
    .await;
    assert_eq!(json!(admin.id), made["granted_by"]);
    assert_json(
        grant(&app, &owner, org, to_mia("owner")).await,
        201,
        "an owner's owner",
    )
    .await;
    assert_json(
        grant(&app, &owner, org, to_mia("approver")).await,
        201,
        "approver",
    )
    .await;

    let path = format!("{}/{}", grants(org), made["id"].as_str().unwrap());
    assert_error(
        delete(&app, &ned.token, &path).await,
        403,
        "forbidden",
        "a member revoking",
    )
    .await;
    let (rows, _) = assert_page(get(&app, &ned.token, &grants(org)).await, "members read").await;
    assert_eq!(3, rows.len());
    assert_no_content(delete(&app, &admin.token, &path).await, "an admin revoking").await;
}

#[tokio::test]
async fn a_grant_changes_what_checks_answer_until_revoked() {
    let app = spawn_app().await;
    register(&app, &["invoice:approve"]).await;
    let owner = app.user("olivia").await;
    let mia = app.user("mia").await;
    let ned = app.user("ned").await;
    let org = app.new_org(&owner, "acme").await;
    app.new_member(&owner, org, &mia, "member", "active").await;
    app.new_member(&owner, org, &ned, "member", "active").await;
    new_role(&app, &owner, org, "approver", &["invoice:approve"]).await;
    assert!(!allowed(&app, &mia, org, "invoice:approve").await, "before");

    let body = json!({"subject_type": "user", "subject_id": mia.id, "role_key": "approver"});
    let made = assert_json(grant(&app, &owner, org, body).await, 201, "grant").await;
    assert!(allowed(&app, &mia, org, "invoice:approve").await, "granted");
    assert!(
        !allowed(&app, &ned, org, "invoice:approve").await,
        "only to mia"
    );
    let path = format!("{}/{}", grants(org), made["id"].as_str().unwrap());
    assert_no_content(delete(&app, &owner.token, &path).await, "revoke").await;
    assert!(
        !allowed(&app, &mia, org, "invoice:approve").await,
        "revoked"
    );

    // Through a group: the grant reaches the members of the group and of its descendants.
    new_group(&app, &owner, org, "finance", None).await;
    new_group(&app, &owner, org, "payables", Some("finance")).await;
    add_to_group(&app, &owner, org, "payables", &ned).await;
    let body = json!({"subject_type": "group", "subject_id": "finance", "role_key": "approver"});
    assert_json(grant(&app, &owner, org, body).await, 201, "to finance").await;
    assert!(
        allowed(&app, &ned, org, "invoice:approve").await,
        "through payables"
    );
    assert!(
        !allowed(&app, &mia, org, "invoice:approve").await,
        "mia is in no group"
    );
    let ned_in_payables = format!("{}/{}", group_members(org, "payables"), ned.id);
    assert_no_content(
        delete(&app, &owner.token, &ned_in_payables).await,
        "ned out",
    )
    .await;
    assert!(
        !allowed(&app, &ned, org, "invoice:approve").await,
        "out of the group"
    );
}
