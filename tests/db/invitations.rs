//! Invitations by email (V27, V28) as a DBA calls them: who may invite, tokens (shown once,
//! stored hashed, compared by hash, one common refusal for guesses), expiry, the wrong
//! address, a new user accepting, bulk invitations, invited memberships and invitations as one
//! concept whichever door or raw SQL changes them, final statuses, and the audit trail.

use tokio_postgres::{Client, GenericClient};
use uuid::Uuid;

use crate::common;
use crate::support::*;

/// Invites `email` into `org` as `actor`; returns the invitation's id and token.
pub async fn invite(
    c: &impl GenericClient,
    actor: Uuid,
    org: Uuid,
    email: &str,
    role: &str,
) -> (Uuid, String) {
    let row = must_run(
        c,
        "select id, token from roster.invite($1, $2, $3, $4)",
        &[&actor, &org, &email, &role],
    )
    .await
    .remove(0);
    (row.get("id"), row.get("token"))
}

/// The stored status of an invitation.
pub async fn stored_status(c: &impl GenericClient, id: Uuid) -> String {
    c.query_one(
        "select status from roster.invitations where id = $1",
        &[&id],
    )
    .await
    .expect("read an invitation")
    .get("status")
}

/// The invitation rows of an organization as list_invitations shows them: (email, status).
async fn listed(
    c: &impl GenericClient,
    actor: Uuid,
    org: Uuid,
    status: Option<&str>,
) -> Vec<(String, String)> {
    must_run(
        c,
        "select email, status from roster.list_invitations($1, $2, $3) order by email",
        &[&actor, &org, &status],
    )
    .await
    .iter()
    .map(|row| (row.get("email"), row.get("status")))
    .collect()
}

/// Seconds from an invitation's creation to its expiry.
async fn lifetime(c: &impl GenericClient, id: Uuid) -> i64 {
    c.query_one(
        "select extract(epoch from expires_at - created_at)::bigint as s from roster.invitations where id = $1",
        &[&id],
    )
    .await
    .expect("read a lifetime")
    .get("s")
}

async fn expire(c: &impl GenericClient, id: Uuid) {
    must_run(
        c,
        "update roster.invitations set expires_at = now() - interval '1 minute', \
                created_at = now() - interval '1 day', sent_at = now() - interval '1 day' \
          where id = $1",
        &[&id],
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
async fn who_may_invite_resend_revoke_and_list() {
    let (_db, mut client, w) = world().await;
    let (pending, _) = invite(&client, w.owner, w.org, "pending@example.com", "member").await;
    let org = w.org;
    assert_matrix(
        &mut client,
        &w,
        [
            ("invite a member", format!("select * from roster.invite($1, '{org}', 'new@example.com')")),
            ("invite an owner", format!("select * from roster.invite($1, '{org}', 'boss@example.com', 'owner')")),
            ("list invitations", format!("select * from roster.list_invitations($1, '{org}')")),
            ("resend", format!("select * from roster.resend_invitation($1, '{org}', '{pending}')")),
            ("revoke", format!("select * from roster.revoke_invitation($1, '{org}', '{pending}')")),
            ("bulk", format!(r#"select * from roster.invite_many($1, '{org}', '[{{"email": "b@example.com"}}]')"#)),
        ],
        &[
            (Actor::Owner, [OK, OK, OK, OK, OK, OK]),
            // Admins manage invitations, but giving the owner role is the owners' (as add_member).
            (Actor::Admin, [OK, DENIED, OK, OK, OK, OK]),
            (Actor::Member, [DENIED, DENIED, DENIED, DENIED, DENIED, DENIED]),
            (Actor::Invited, [NOT_FOUND; 6]),
            (Actor::Suspended, [NOT_FOUND; 6]),
            (Actor::NonMember, [NOT_FOUND; 6]),
            (Actor::OtherTenant, [NOT_FOUND; 6]),
            (Actor::TenantAdmin, [OK, OK, OK, OK, OK, OK]),
            (Actor::DeletedUser, [NO_ACTOR; 6]),
            (Actor::UnknownUser, [NO_ACTOR; 6]),
        ],
    )
    .await;

    // A custom role may not give more than it holds (RESCL), as in add_member.
    must_run(
        &client,
        "select * from roster.create_role($1, $2, 'recruiter', 'Recruiter', null, \
                array['organization:read', 'members:read', 'invitations:manage'])",
        &[&w.owner, &w.org],
    )
    .await;
    let recruiter = w
        .new_member(&client, "recruiter@acme.test", "recruiter", "active")
        .await;
    let got = attempt(
        &client,
        "select * from roster.invite($1, $2, 'x@example.com', 'admin')",
        &[&recruiter, &w.org],
    )
    .await;
    assert_eq!(
        got.map(drop),
        Err("RESCL".into()),
        "a recruiter invites an admin"
    );
    let got = attempt(
        &client,
        "select * from roster.invite($1, $2, 'x@example.com', 'recruiter')",
        &[&recruiter, &w.org],
    )
    .await;
    assert_eq!(got.map(drop), Ok(()), "a recruiter invites a recruiter");
}

#[tokio::test]
async fn the_token_is_shown_once_stored_as_its_hash_and_kept_out_of_everything_else() {
    let (_db, client, w) = world().await;
    let (id, token) = invite(&client, w.owner, w.org, "Carol@Example.COM", "admin").await;

    assert_eq!(43, token.len(), "32 bytes as unpadded base64: {token}");
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "URL-safe: {token}"
    );
    let row = must_run(
        &client,
        "select email, token_hash = sha256(convert_to($2, 'UTF8')) as hashed, \
                octet_length(token_hash) as bytes, \
                position($2 in row_to_json(i)::text) as plain \
           from roster.invitations i where id = $1",
        &[&id, &token],
    )
    .await
    .remove(0);
    assert_eq!(
        "carol@example.com",
        row.get::<_, String>("email"),
        "stored lowercase"
    );
    assert!(
        row.get::<_, bool>("hashed"),
        "the stored hash is the token's SHA-256"
    );
    assert_eq!(32, row.get::<_, i32>("bytes"));
    assert_eq!(
        0,
        row.get::<_, i32>("plain"),
        "the token itself is stored nowhere in the row"
    );

    let listed = must_run(
        &client,
        "select * from roster.list_invitations($1, $2)",
        &[&w.owner, &w.org],
    )
    .await;
    assert!(
        listed[0]
            .columns()
            .iter()
            .all(|c| c.name() != "token" && c.name() != "token_hash"),
        "lists show no token"
    );
    let leaks: i64 = must_run(
        &client,
        "select count(*) as n from roster.audit_events e \
          where position($1 in coalesce(e.before::text, '') || coalesce(e.after::text, '')) > 0 \
             or coalesce(e.before, '{}') ? 'token_hash' or coalesce(e.after, '{}') ? 'token_hash'",
        &[&token],
    )
    .await[0]
        .get("n");
    assert_eq!(
        0, leaks,
        "the audit trail holds neither the token nor its hash"
    );

    // Two invitations never share a token.
    let (_, other) = invite(&client, w.owner, w.org, "dave@example.com", "member").await;
    assert_ne!(token, other);
}

#[tokio::test]
async fn accepting_by_token_makes_an_active_member_at_once_and_the_token_is_spent() {
    let (_db, client, w) = world().await;
    let (id, token) = invite(&client, w.admin, w.org, "carol@example.com", "admin").await;
    // The address's user may come later, with any case.
    let carol = w.new_user(&client, "CAROL@example.com").await;

    let mine = must_run(
        &client,
        "select id, email, status from roster.list_my_invitations($1)",
        &[&carol],
    )
    .await;
    assert_eq!(1, mine.len(), "carol sees her invitation");
    assert_eq!(id, mine[0].get::<_, Uuid>("id"));

    let membership = must_run(
        &client,
        "select id, role, status, invited_by_user_id, joined_at is not null as joined \
           from roster.accept_invitation_token($1, $2)",
        &[&carol, &token],
    )
    .await
    .remove(0);
    assert_eq!(
        ("admin", "active"),
        (
            membership.get::<_, &str>("role"),
            membership.get::<_, &str>("status")
        )
    );
    assert_eq!(
        Some(w.admin),
        membership.get::<_, Option<Uuid>>("invited_by_user_id")
    );
    assert!(membership.get::<_, bool>("joined"));
    let row = must_run(
        &client,
        "select status, accepted_by_user_id, user_id, membership_id, accepted_at is not null as stamped \
           from roster.invitations where id = $1",
        &[&id],
    )
    .await
    .remove(0);
    assert_eq!("accepted", row.get::<_, &str>("status"));
    assert_eq!(
        Some(carol),
        row.get::<_, Option<Uuid>>("accepted_by_user_id"),
        "who accepted"
    );
    assert_eq!(
        Some(membership.get::<_, Uuid>("id")),
        row.get::<_, Option<Uuid>>("membership_id")
    );
    assert!(row.get::<_, bool>("stamped"));
    assert!(
        must_run(
            &client,
            "select * from roster.list_my_invitations($1)",
            &[&carol]
        )
        .await
        .is_empty(),
        "nothing pending any more"
    );

    for (what, sql) in [
        (
            "accept again",
            "select * from roster.accept_invitation_token($1, $2)",
        ),
        (
            "decline after accepting",
            "select * from roster.decline_invitation_token($1, $2)",
        ),
    ] {
        let got = attempt(&client, sql, &[&carol, &token]).await;
        assert_eq!(
            got.map(drop),
            Err("RIVNF".into()),
            "{what}: a used token is unknown"
        );
    }
}

#[tokio::test]
async fn guesses_the_wrong_address_and_other_tenants_learn_nothing_or_are_refused() {
    let (_db, client, w) = world().await;
    let (revoked, revoked_token) = invite(&client, w.owner, w.org, "r@example.com", "member").await;
    must_run(
        &client,
        "select * from roster.revoke_invitation($1, $2, $3)",
        &[&w.owner, &w.org, &revoked],
    )
    .await;
    let (_, declined_token) = invite(&client, w.owner, w.org, "d@example.com", "member").await;
    let declined_user = w.new_user(&client, "d@example.com").await;
    must_run(
        &client,
        "select * from roster.decline_invitation_token($1, $2)",
        &[&declined_user, &declined_token],
    )
    .await;
    let (_, token) = invite(&client, w.owner, w.org, "carol@example.com", "member").await;
    let carol = w.new_user(&client, "carol@example.com").await;
    // Same address in another tenant: a different person.
    let twin = create_user(&client, w.other_tenant, "carol@example.com", false).await;

    let mut guess = token.clone().into_bytes();
    guess[0] = if guess[0] == b'A' { b'B' } else { b'A' };
    let guess = String::from_utf8(guess).unwrap();
    for (what, user, token) in [
        ("a guessed token", carol, guess.as_str()),
        ("an empty token", carol, ""),
        (
            "a revoked invitation's token",
            carol,
            revoked_token.as_str(),
        ),
        (
            "a declined invitation's token",
            declined_user,
            declined_token.as_str(),
        ),
        ("the same address in another tenant", twin, token.as_str()),
    ] {
        for sql in [
            "select * from roster.accept_invitation_token($1, $2)",
            "select * from roster.decline_invitation_token($1, $2)",
        ] {
            let got = attempt(&client, sql, &[&user, &token]).await;
            assert_eq!(got.map(drop), Err("RIVNF".into()), "{what}: {sql}");
        }
    }
    let got = attempt(
        &client,
        "select * from roster.accept_invitation_as_new_user($1)",
        &[&guess],
    )
    .await;
    assert_eq!(got.map(drop), Err("RIVNF".into()), "a guess as a new user");

    // A valid token sent to someone else: 403, and nothing changes.
    for sql in [
        "select * from roster.accept_invitation_token($1, $2)",
        "select * from roster.decline_invitation_token($1, $2)",
    ] {
        let got = attempt(&client, sql, &[&w.member, &token]).await;
        assert_eq!(
            got.map(drop),
            Err("RIEML".into()),
            "another member uses carol's token: {sql}"
        );
    }
    assert_eq!(
        None,
        membership(&client, w.org, w.member)
            .await
            .filter(|m| m.1 != "active")
    );
    let got = attempt(
        &client,
        "select * from roster.accept_invitation_token($1, $2)",
        &[&w.unknown_user, &token],
    )
    .await;
    assert_eq!(got.map(drop), Err("RNACT".into()), "an unknown user");
    let got = attempt(
        &client,
        "select * from roster.accept_invitation_token($1, $2)",
        &[&carol, &token],
    )
    .await;
    assert_eq!(got.map(drop), Ok(()), "carol still can");
}

#[tokio::test]
async fn an_expired_token_gets_its_own_code_and_resending_renews_it() {
    let (_db, client, w) = world().await;
    let (id, token) = invite(&client, w.owner, w.org, "late@example.com", "member").await;
    let late = w.new_user(&client, "late@example.com").await;
    expire(&client, id).await;

    for sql in [
        "select * from roster.accept_invitation_token($1, $2)",
        "select * from roster.decline_invitation_token($1, $2)",
    ] {
        let got = attempt(&client, sql, &[&late, &token]).await;
        assert_eq!(got.map(drop), Err("RIEXP".into()), "{sql}");
    }
    let got = attempt(
        &client,
        "select * from roster.accept_invitation_as_new_user($1)",
        &[&token],
    )
    .await;
    assert_eq!(got.map(drop), Err("RIEXP".into()), "as a new user");
    let got = attempt(
        &client,
        "select * from roster.accept_invitation($1, $2)",
        &[&late, &w.org],
    )
    .await;
    assert_eq!(
        got.map(drop),
        Err("RIEXP".into()),
        "through accept_invitation (v1)"
    );
    assert_eq!(
        vec![("late@example.com".to_owned(), "expired".to_owned())],
        listed(&client, w.owner, w.org, Some("expired")).await
    );
    assert!(
        !listed(&client, w.owner, w.org, Some("pending"))
            .await
            .iter()
            .any(|(email, _)| email == "late@example.com"),
        "not pending"
    );
    assert!(
        must_run(
            &client,
            "select * from roster.list_my_invitations($1)",
            &[&late]
        )
        .await
        .is_empty(),
        "an expired invitation is not the invitee's to see"
    );

    let renewed = must_run(
        &client,
        "select token, status, expires_at > now() + interval '6 days' as renewed \
           from roster.resend_invitation($1, $2, $3)",
        &[&w.admin, &w.org, &id],
    )
    .await
    .remove(0);
    assert_eq!("pending", renewed.get::<_, &str>("status"));
    assert!(
        renewed.get::<_, bool>("renewed"),
        "the tenant's 7 days again"
    );
    let fresh: String = renewed.get("token");
    assert_ne!(token, fresh, "the token rotates");
    let got = attempt(
        &client,
        "select * from roster.accept_invitation_token($1, $2)",
        &[&late, &token],
    )
    .await;
    assert_eq!(got.map(drop), Err("RIVNF".into()), "the old token is dead");
    let got = attempt(
        &client,
        "select * from roster.accept_invitation_token($1, $2)",
        &[&late, &fresh],
    )
    .await;
    assert_eq!(got.map(drop), Ok(()), "the new one works");

    // An expired invitation frees its address: inviting it again writes the expiry.
    let (old, _) = invite(&client, w.owner, w.org, "again@example.com", "member").await;
    expire(&client, old).await;
    let (new, _) = invite(&client, w.owner, w.org, "again@example.com", "member").await;
    assert_eq!("expired", stored_status(&client, old).await);
    assert_eq!("pending", stored_status(&client, new).await);
    // expire_invitations writes what reads already see.
    expire(&client, new).await;
    let written: i64 = must_run(
        &client,
        "select roster.expire_invitations($1) as n",
        &[&w.tenant],
    )
    .await[0]
        .get("n");
    assert_eq!(1, written);
    assert_eq!("expired", stored_status(&client, new).await);
}

#[tokio::test]
async fn lifetimes_default_to_the_tenants_from_one_hour_to_ninety_days() {
    let (_db, mut client, w) = world().await;
    let (id, _) = invite(&client, w.owner, w.org, "a@example.com", "member").await;
    assert_eq!(
        7 * 24 * 3600,
        lifetime(&client, id).await,
        "7 days unless set"
    );
    let short = must_run(
        &client,
        "select id from roster.invite($1, $2, 'b@example.com', p_expires_in => interval '1 hour')",
        &[&w.owner, &w.org],
    )
    .await[0]
        .get::<_, Uuid>("id");
    assert_eq!(3600, lifetime(&client, short).await);
    for (what, interval) in [
        ("59 minutes", "59 minutes"),
        ("91 days", "91 days"),
        ("negative", "-1 day"),
    ] {
        let got = attempt(
            &client,
            &format!("select * from roster.invite($1, $2, 'c@example.com', p_expires_in => interval '{interval}')"),
            &[&w.owner, &w.org],
        )
        .await;
        assert_eq!(got.map(drop), Err("RINVL".into()), "a lifetime of {what}");
    }

    // The tenant's default: tenant admins, or the provisioning role.
    let got = attempt(
        &client,
        "select roster.set_invitation_lifetime(null, interval '2 days', $1)",
        &[&w.owner],
    )
    .await;
    assert_eq!(
        got.map(drop),
        Err("RDNID".into()),
        "an owner is no tenant admin"
    );
    let got = attempt(
        &client,
        "select roster.set_invitation_lifetime(null, interval '100 days', $1)",
        &[&w.tenant_admin],
    )
    .await;
    assert_eq!(got.map(drop), Err("RINVL".into()), "beyond 90 days");
    must_run(
        &client,
        "select roster.set_invitation_lifetime(null, interval '2 days', $1)",
        &[&w.tenant_admin],
    )
    .await;
    let (two, _) = invite(&client, w.owner, w.org, "d@example.com", "member").await;
    assert_eq!(
        2 * 24 * 3600,
        lifetime(&client, two).await,
        "the tenant's new default"
    );
    let tx = client.transaction().await.expect("begin");
    tx.batch_execute("set local role roster_provisioner")
        .await
        .expect("set role");
    must_run(
        &tx,
        "select roster.set_invitation_lifetime($1, interval '3 days')",
        &[&w.tenant],
    )
    .await;
    tx.commit().await.expect("commit");
    let (three, _) = invite(&client, w.owner, w.org, "e@example.com", "member").await;
    assert_eq!(
        3 * 24 * 3600,
        lifetime(&client, three).await,
        "set by the provisioning role"
    );
    let raw = attempt(
        &client,
        "update roster.tenants set invitation_lifetime = interval '10 minutes' where id = $1",
        &[&w.tenant],
    )
    .await;
    assert_eq!(
        raw.map(drop),
        Err("23514".into()),
        "raw SQL is held to the range too"
    );
}

#[tokio::test]
async fn a_person_without_a_user_accepts_through_the_identity_service() {
    let (_db, mut client, w) = world().await;
    let (id, token) = invite(&client, w.owner, w.org, "New.Person@Example.com", "admin").await;
    let (_, existing_token) = invite(&client, w.owner, w.org, "known@example.com", "member").await;
    let known = w.new_user(&client, "Known@example.com").await;

    let tx = client.transaction().await.expect("begin");
    tx.batch_execute("set local role roster_provisioner")
        .await
        .expect("set role");
    let membership = must_run(
        &tx,
        "select user_id, role, status from roster.accept_invitation_as_new_user($1, 'New Person')",
        &[&token],
    )
    .await
    .remove(0);
    let reused = must_run(
        &tx,
        "select user_id from roster.accept_invitation_as_new_user($1)",
        &[&existing_token],
    )
    .await;
    tx.commit().await.expect("commit");

    let user: Uuid = membership.get("user_id");
    assert_eq!(
        ("admin", "active"),
        (
            membership.get::<_, &str>("role"),
            membership.get::<_, &str>("status")
        )
    );
    let created = must_run(
        &client,
        "select email, display_name, tenant_id from roster.users where id = $1",
        &[&user],
    )
    .await
    .remove(0);
    assert_eq!("new.person@example.com", created.get::<_, &str>("email"));
    assert_eq!(
        Some("New Person"),
        created.get::<_, Option<&str>>("display_name")
    );
    assert_eq!(w.tenant, created.get::<_, Uuid>("tenant_id"));
    assert_eq!(
        known,
        reused[0].get::<_, Uuid>("user_id"),
        "an existing user of the address is found, not duplicated"
    );
    assert_eq!("accepted", stored_status(&client, id).await);
    let actor: Option<Uuid> = must_run(
        &client,
        "select actor_id from roster.audit_events where action = 'invitation.accepted' \
          and (after ->> 'id')::uuid = $1",
        &[&id],
    )
    .await[0]
        .get("actor_id");
    assert_eq!(
        Some(user),
        actor,
        "the trail names the new user as who accepted"
    );
    // The API's role may not do this.
    let tx = client.transaction().await.expect("begin");
    tx.batch_execute("set local role roster_app")
        .await
        .expect("set role");
    let got = attempt(
        &tx,
        "select * from roster.accept_invitation_as_new_user('x')",
        &[],
    )
    .await;
    assert_eq!(got.map(drop), Err("42501".into()), "roster_app");
    tx.rollback().await.expect("rollback");
}

#[tokio::test]
async fn a_bulk_invitation_makes_the_valid_items_and_says_why_of_the_others() {
    let (_db, client, w) = world().await;
    invite(&client, w.owner, w.org, "pending@example.com", "member").await;
    let items = r#"[
        {"email": "one@example.com"},
        {"email": "Two@Example.com", "role": "admin"},
        {"email": "member@acme.test"},
        {"email": "pending@example.com"},
        {"email": "one@example.com"},
        {"email": "not an address"},
        {"email": "boss@example.com", "role": "owner"},
        {"email": "x@example.com", "role": "nobody"},
        {"email": "y@example.com", "colour": "red"},
        7,
        {"email": "invited@acme.test"}
    ]"#;
    let rows = must_run(
        &client,
        "select item_index, item_email, result, error_sqlstate, token \
           from roster.invite_many($1, $2, $3::text::jsonb)",
        &[&w.admin, &w.org, &items],
    )
    .await;
    let got: Vec<(i32, String, Option<String>, bool)> = rows
        .iter()
        .map(|r| {
            (
                r.get("item_index"),
                r.get("result"),
                r.get("error_sqlstate"),
                r.get::<_, Option<String>>("token").is_some(),
            )
        })
        .collect();
    let expected: Vec<(i32, String, Option<String>, bool)> = [
        (0, "invited", None, true),
        (1, "invited", None, true),
        (2, "already_member", Some("RISMB"), false),
        (3, "already_invited", Some("23505"), false),
        (4, "already_invited", Some("23505"), false),
        (5, "invalid", Some("RINVL"), false),
        (6, "invalid", Some("RDNID"), false),
        (7, "invalid", Some("RINVL"), false),
        (8, "invalid", Some("RINVL"), false),
        (9, "invalid", Some("RINVL"), false),
        // The invited user of the world: its invitation is pending.
        (10, "already_invited", Some("23505"), false),
    ]
    .into_iter()
    .map(|(i, r, s, t)| (i, r.to_owned(), s.map(str::to_owned), t))
    .collect();
    assert_eq!(expected, got);
    assert_eq!(
        Some("Two@Example.com"),
        rows[1].get::<_, Option<&str>>("item_email"),
        "the address as sent"
    );
    let pending = listed(&client, w.owner, w.org, Some("pending")).await;
    let emails: Vec<&str> = pending.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(
        vec![
            "invited@acme.test",
            "one@example.com",
            "pending@example.com",
            "two@example.com"
        ],
        emails,
        "the valid items were made"
    );

    for (what, body) in [
        ("not an array", r#"{"email": "a@example.com"}"#.to_owned()),
        ("empty", "[]".to_owned()),
        (
            "101 items",
            format!("[{}]", vec![r#"{"email": "a@example.com"}"#; 101].join(",")),
        ),
    ] {
        let got = attempt(
            &client,
            "select * from roster.invite_many($1, $2, $3::text::jsonb)",
            &[&w.admin, &w.org, &body],
        )
        .await;
        assert_eq!(got.map(drop), Err("RINVL".into()), "{what}");
    }
    let got = attempt(
        &client,
        "select * from roster.invite_many($1, $2, '[{\"email\": \"z@example.com\"}]')",
        &[&w.member, &w.org],
    )
    .await;
    assert_eq!(got.map(drop), Err("RDNID".into()), "a member may not");
}

/// add_member's invitations (v1) and invite's are one concept: each door sees the other's, and
/// both end in the same states.
#[tokio::test]
async fn invited_memberships_are_invitations_at_both_doors() {
    let (_db, client, w) = world().await;
    // The world's invited user has an invitation, shown to both sides.
    let rows = must_run(
        &client,
        "select email, status, user_id, membership_id from roster.list_invitations($1, $2)",
        &[&w.owner, &w.org],
    )
    .await;
    assert_eq!(1, rows.len());
    assert_eq!("invited@acme.test", rows[0].get::<_, &str>("email"));
    assert_eq!(Some(w.invited), rows[0].get::<_, Option<Uuid>>("user_id"));
    assert!(rows[0].get::<_, Option<Uuid>>("membership_id").is_some());
    let mine = must_run(
        &client,
        "select organization_id, status from roster.list_my_invitations($1)",
        &[&w.invited],
    )
    .await;
    assert_eq!(w.org, mine[0].get::<_, Uuid>("organization_id"));

    // v1 acceptance settles the invitation.
    must_run(
        &client,
        "select * from roster.accept_invitation($1, $2)",
        &[&w.invited, &w.org],
    )
    .await;
    assert_eq!(
        vec![("invited@acme.test".to_owned(), "accepted".to_owned())],
        listed(&client, w.owner, w.org, Some("accepted")).await
    );

    // A v1 invitation resent has a token, and the token accepts the same membership.
    let ivy = w.new_user(&client, "ivy@acme.test").await;
    add_member(&client, w.owner, w.org, ivy, "admin", "invited").await;
    let id: Uuid = must_run(
        &client,
        "select id from roster.invitations where user_id = $1",
        &[&ivy],
    )
    .await[0]
        .get("id");
    let token: String = must_run(
        &client,
        "select token from roster.resend_invitation($1, $2, $3)",
        &[&w.owner, &w.org, &id],
    )
    .await[0]
        .get("token");
    let before: Uuid = must_run(
        &client,
        "select id from roster.organization_memberships where user_id = $1",
        &[&ivy],
    )
    .await[0]
        .get("id");
    let accepted = must_run(
        &client,
        "select id, role, status from roster.accept_invitation_token($1, $2)",
        &[&ivy, &token],
    )
    .await
    .remove(0);
    assert_eq!(
        before,
        accepted.get::<_, Uuid>("id"),
        "the invited membership itself becomes active"
    );
    assert_eq!(
        ("admin", "active"),
        (
            accepted.get::<_, &str>("role"),
            accepted.get::<_, &str>("status")
        )
    );
    assert_eq!("accepted", stored_status(&client, id).await);

    // An email invitation of an existing user is accepted through v1's door too.
    let eve = w.new_user(&client, "eve@acme.test").await;
    let (eve_invitation, _) = invite(&client, w.owner, w.org, "EVE@acme.test", "member").await;
    must_run(
        &client,
        "select * from roster.accept_invitation($1, $2)",
        &[&eve, &w.org],
    )
    .await;
    assert_eq!("accepted", stored_status(&client, eve_invitation).await);
    assert_eq!(
        Some(("member".to_owned(), "active".to_owned())),
        membership(&client, w.org, eve).await
    );

    // Declining: leaving an invited membership, or the token; either way no membership stays.
    let (d1, d2) = (
        w.new_user(&client, "d1@acme.test").await,
        w.new_user(&client, "d2@acme.test").await,
    );
    for user in [d1, d2] {
        add_member(&client, w.owner, w.org, user, "member", "invited").await;
    }
    must_run(
        &client,
        "select roster.remove_member($1, $2, $1)",
        &[&d1, &w.org],
    )
    .await;
    let d2_id: Uuid = must_run(
        &client,
        "select id from roster.invitations where user_id = $1",
        &[&d2],
    )
    .await[0]
        .get("id");
    let d2_token: String = must_run(
        &client,
        "select token from roster.resend_invitation($1, $2, $3)",
        &[&w.owner, &w.org, &d2_id],
    )
    .await[0]
        .get("token");
    must_run(
        &client,
        "select * from roster.decline_invitation_token($1, $2)",
        &[&d2, &d2_token],
    )
    .await;
    for user in [d1, d2] {
        assert_eq!(
            None,
            membership(&client, w.org, user).await,
            "declined: no membership"
        );
        let status: String = must_run(
            &client,
            "select status from roster.invitations where user_id = $1",
            &[&user],
        )
        .await[0]
            .get("status");
        assert_eq!("declined", status);
    }

    // Revoking: removing the invited member, or revoking the invitation.
    let (r1, r2) = (
        w.new_user(&client, "r1@acme.test").await,
        w.new_user(&client, "r2@acme.test").await,
    );
    for user in [r1, r2] {
        add_member(&client, w.owner, w.org, user, "member", "invited").await;
    }
    must_run(
        &client,
        "select roster.remove_member($1, $2, $3)",
        &[&w.admin, &w.org, &r1],
    )
    .await;
    let r2_id: Uuid = must_run(
        &client,
        "select id from roster.invitations where user_id = $1",
        &[&r2],
    )
    .await[0]
        .get("id");
    must_run(
        &client,
        "select * from roster.revoke_invitation($1, $2, $3)",
        &[&w.admin, &w.org, &r2_id],
    )
    .await;
    for user in [r1, r2] {
        assert_eq!(
            None,
            membership(&client, w.org, user).await,
            "revoked: no membership"
        );
        let status: String = must_run(
            &client,
            "select status from roster.invitations where user_id = $1",
            &[&user],
        )
        .await[0]
            .get("status");
        assert_eq!("revoked", status);
    }

    // One pending invitation per address, whichever door made it.
    let got = attempt(
        &client,
        "select * from roster.invite($1, $2, 'ivy@acme.test')",
        &[&w.owner, &w.org],
    )
    .await;
    assert_eq!(got.map(drop), Err("RISMB".into()), "ivy is a member now");
    let zed = w.new_user(&client, "zed@acme.test").await;
    add_member(&client, w.owner, w.org, zed, "member", "invited").await;
    let got = must_fail(
        &client,
        "select * from roster.invite($1, $2, 'ZED@acme.test')",
        &[&w.owner, &w.org],
    )
    .await;
    assert_eq!(
        (
            "23505".to_owned(),
            Some("uq_invitations_pending_email".to_owned())
        ),
        (sqlstate(&got), constraint(&got)),
        "zed is invited by add_member"
    );
    let yan = w.new_user(&client, "yan@acme.test").await;
    invite(&client, w.owner, w.org, "yan@acme.test", "member").await;
    let got = attempt(
        &client,
        "select * from roster.add_member($1, $2, $3, 'member', 'invited')",
        &[&w.owner, &w.org, &yan],
    )
    .await;
    assert_eq!(
        got.map(drop),
        Err("RISMB".into()),
        "yan is invited by email"
    );
    // Adding yan outright settles the invitation to his address.
    add_member(&client, w.owner, w.org, yan, "member", "active").await;
    let status: String = must_run(
        &client,
        "select status from roster.invitations where email = 'yan@acme.test'",
        &[],
    )
    .await[0]
        .get("status");
    assert_eq!("accepted", status);
}

#[tokio::test]
async fn raw_sql_keeps_the_two_sides_in_step_and_final_statuses_final() {
    let (_db, client, w) = world().await;
    // A raw invited membership gets its invitation; a raw activation accepts it.
    let raw = w.new_user(&client, "raw@acme.test").await;
    must_run(
        &client,
        "insert into roster.organization_memberships (tenant_id, organization_id, user_id, status) \
         values ($1, $2, $3, 'invited')",
        &[&w.tenant, &w.org, &raw],
    )
    .await;
    let id: Uuid = must_run(
        &client,
        "select id from roster.invitations where user_id = $1 and status = 'pending'",
        &[&raw],
    )
    .await[0]
        .get("id");
    must_run(
        &client,
        "update roster.organization_memberships set status = 'active' where user_id = $1",
        &[&raw],
    )
    .await;
    assert_eq!("accepted", stored_status(&client, id).await);

    // A raw revocation removes the invited membership; a purge revokes.
    let gone = must_run(
        &client,
        "select id, membership_id from roster.invitations where user_id = $1",
        &[&w.invited],
    )
    .await
    .remove(0);
    must_run(
        &client,
        "update roster.invitations set status = 'revoked' where id = $1",
        &[&gone.get::<_, Uuid>("id")],
    )
    .await;
    assert_eq!(
        None,
        membership(&client, w.org, w.invited).await,
        "the invited membership went with it"
    );

    let purged = w.new_user(&client, "purged@acme.test").await;
    add_member(&client, w.owner, w.org, purged, "member", "invited").await;
    must_run(
        &client,
        "delete from roster.organization_memberships where user_id = $1",
        &[&purged],
    )
    .await;
    let row = must_run(
        &client,
        "select status, membership_id from roster.invitations where user_id = $1",
        &[&purged],
    )
    .await
    .remove(0);
    assert_eq!("revoked", row.get::<_, &str>("status"));
    assert_eq!(
        None,
        row.get::<_, Option<Uuid>>("membership_id"),
        "no dangling membership id"
    );

    // Final statuses stay final; expired may only be renewed or revoked.
    for (what, from, to, code) in [
        ("accepted back to pending", "accepted", "pending", "RNINV"),
        ("revoked to accepted", "revoked", "accepted", "RNINV"),
        ("expired to accepted", "expired", "accepted", "RNINV"),
    ] {
        let (invitation, _) = invite(
            &client,
            w.owner,
            w.org,
            &format!("{from}-{to}@example.com"),
            "member",
        )
        .await;
        if from == "accepted" {
            let user = w
                .new_user(&client, &format!("{from}-{to}@example.com"))
                .await;
            add_member(&client, w.owner, w.org, user, "member", "active").await;
        } else {
            must_run(
                &client,
                &format!("update roster.invitations set status = '{from}' where id = $1"),
                &[&invitation],
            )
            .await;
        }
        let got = attempt(
            &client,
            &format!("update roster.invitations set status = '{to}' where id = $1"),
            &[&invitation],
        )
        .await;
        assert_eq!(got.map(drop), Err(code.into()), "{what}");
    }
    // The database holds the rest too.
    for (what, sql, code) in [
        ("an uppercase address is stored lowercase", "insert into roster.invitations (tenant_id, organization_id, email, expires_at) values ($1, $2, 'UP@EXAMPLE.COM', now() + interval '1 day') returning email", "ok"),
        ("a second pending invitation of an address", "insert into roster.invitations (tenant_id, organization_id, email, expires_at) values ($1, $2, 'up@example.com', now() + interval '1 day')", "23505"),
        ("an unknown role", "insert into roster.invitations (tenant_id, organization_id, email, role, expires_at) values ($1, $2, 'role@example.com', 'nobody', now() + interval '1 day')", "RINVL"),
        ("another organization's membership", "insert into roster.invitations (tenant_id, organization_id, email, membership_id, expires_at) select $1, $2, 'm@example.com', m.id, now() + interval '1 day' from roster.organization_memberships m where m.organization_id <> $2 limit 1", "23503"),
        ("not an address", "insert into roster.invitations (tenant_id, organization_id, email, expires_at) values ($1, $2, 'nope', now() + interval '1 day')", "23514"),
        ("a live member's address", "insert into roster.invitations (tenant_id, organization_id, email, expires_at) values ($1, $2, 'MEMBER@acme.test', now() + interval '1 day')", "RISMB"),
    ] {
        let got = attempt(&client, sql, &[&w.tenant, &w.org]).await;
        let want = if code == "ok" { Ok(()) } else { Err(code.to_owned()) };
        assert_eq!(got.map(drop), want, "{what}");
    }
}

#[tokio::test]
async fn a_role_given_by_pending_invitations_cannot_be_deleted() {
    let (_db, client, w) = world().await;
    must_run(&client, "select * from roster.create_role($1, $2, 'guest', 'Guest', null, array['organization:read'])", &[&w.owner, &w.org]).await;
    let (id, _) = invite(&client, w.owner, w.org, "guest@example.com", "guest").await;
    let got = attempt(
        &client,
        "select roster.delete_role($1, $2, 'guest')",
        &[&w.owner, &w.org],
    )
    .await;
    assert_eq!(
        got.map(drop),
        Err("RRLUS".into()),
        "a pending invitation gives it"
    );
    must_run(
        &client,
        "select * from roster.revoke_invitation($1, $2, $3)",
        &[&w.owner, &w.org, &id],
    )
    .await;
    let got = attempt(
        &client,
        "select roster.delete_role($1, $2, 'guest')",
        &[&w.owner, &w.org],
    )
    .await;
    assert_eq!(got.map(drop), Ok(()), "once revoked");
}

#[tokio::test]
async fn every_invitation_event_is_in_the_trail_with_its_actor() {
    let (_db, client, w) = world().await;
    let (accepted, token) = invite(&client, w.admin, w.org, "a@example.com", "member").await;
    let a = w.new_user(&client, "a@example.com").await;
    must_run(
        &client,
        "select * from roster.accept_invitation_token($1, $2)",
        &[&a, &token],
    )
    .await;
    let (declined, token) = invite(&client, w.admin, w.org, "d@example.com", "member").await;
    let d = w.new_user(&client, "d@example.com").await;
    must_run(
        &client,
        "select * from roster.decline_invitation_token($1, $2)",
        &[&d, &token],
    )
    .await;
    let (revoked, _) = invite(&client, w.admin, w.org, "r@example.com", "member").await;
    must_run(
        &client,
        "select * from roster.resend_invitation($1, $2, $3)",
        &[&w.owner, &w.org, &revoked],
    )
    .await;
    must_run(
        &client,
        "select * from roster.revoke_invitation($1, $2, $3)",
        &[&w.owner, &w.org, &revoked],
    )
    .await;
    let (expired, _) = invite(&client, w.admin, w.org, "e@example.com", "member").await;
    expire(&client, expired).await;
    must_run(&client, "select roster.expire_invitations()", &[]).await;

    let events = must_run(
        &client,
        "select action, actor_id, organization_id, (coalesce(after, before) ->> 'id')::uuid as invitation \
           from roster.list_audit_events($1, $2, 200) where action like 'invitation.%' order by id",
        &[&w.owner, &w.org],
    )
    .await;
    let got: Vec<(Uuid, String, Option<Uuid>)> = events
        .iter()
        .filter(|e| {
            [accepted, declined, revoked, expired].contains(&e.get::<_, Uuid>("invitation"))
        })
        .map(|e| (e.get("invitation"), e.get("action"), e.get("actor_id")))
        .collect();
    let expected = vec![
        (accepted, "invitation.created".to_owned(), Some(w.admin)),
        (accepted, "invitation.accepted".to_owned(), Some(a)),
        (declined, "invitation.created".to_owned(), Some(w.admin)),
        (declined, "invitation.declined".to_owned(), Some(d)),
        (revoked, "invitation.created".to_owned(), Some(w.admin)),
        (revoked, "invitation.resent".to_owned(), Some(w.owner)),
        (revoked, "invitation.revoked".to_owned(), Some(w.owner)),
        (expired, "invitation.created".to_owned(), Some(w.admin)),
        // The raw update moving expires_at, then the job.
        (expired, "invitation.updated".to_owned(), None),
        (expired, "invitation.expired".to_owned(), None),
    ];
    assert_eq!(expected, got);
    assert!(events
        .iter()
        .all(|e| e.get::<_, Option<Uuid>>("organization_id") == Some(w.org)));
}

/// Roster sends no email: an invitation is announced as its organization's new version.
#[tokio::test]
async fn an_invitation_is_announced_without_its_token() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    let (_listener, mut received) = crate::notifications::listen(&db).await;
    let mut reader = crate::notifications::ChangeReader::start(&client).await;
    let before = authz_version(&client, w.org).await;
    let (_, token) = invite(&client, w.owner, w.org, "n@example.com", "member").await;
    let mut payloads = reader.changes(&client).await;
    payloads.extend(crate::notifications::announced(&client, &mut received).await);
    let after = authz_version(&client, w.org).await;
    assert_eq!(before + 1, after, "one bump of the organization");
    assert!(
        payloads.iter().any(|p| p["kind"] == "organization"
            && p["organization_id"] == w.org.to_string()
            && p["version"] == after),
        "announced as the organization's new version: {payloads:?}"
    );
    assert!(
        payloads.iter().all(|p| !p.to_string().contains(&token)),
        "no token in {payloads:?}"
    );
}

/// An invitation and an addition of the same person at once: whichever commits first, no
/// pending invitation is left to a live member.
#[tokio::test]
async fn inviting_and_adding_the_same_person_at_once() {
    use crate::concurrency::{change, race};
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    let xavier = w.new_user(&client, "xavier@acme.test").await;
    let add = "select * from roster.add_member($1, $2, $3)";
    let invite_xavier = "select * from roster.invite($1, $2, 'xavier@acme.test')";

    let second = race(
        &db,
        "read committed",
        change(add, &[w.owner, w.org, xavier]),
        change(invite_xavier, &[w.admin, w.org]),
    )
    .await;
    assert_eq!(
        Err("RISMB".into()),
        second,
        "the invitation after the addition"
    );
    let pending: i64 = must_run(&client, "select count(*) as n from roster.invitations where email = 'xavier@acme.test' and status = 'pending'", &[]).await[0].get("n");
    assert_eq!(0, pending);

    let yvonne = w.new_user(&client, "yvonne@acme.test").await;
    let invite_yvonne = "select * from roster.invite($1, $2, 'yvonne@acme.test')";
    let second = race(
        &db,
        "read committed",
        change(invite_yvonne, &[w.admin, w.org]),
        change(add, &[w.owner, w.org, yvonne]),
    )
    .await;
    assert_eq!(Ok(()), second, "the addition after the invitation");
    let status: String = must_run(
        &client,
        "select status from roster.invitations where email = 'yvonne@acme.test'",
        &[],
    )
    .await[0]
        .get("status");
    assert_eq!("accepted", status, "the addition settled the invitation");
}
