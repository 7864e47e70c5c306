//! Seat limits (V29): seats used = live memberships of any status + pending invitations, each
//! person once; at the limit adding, inviting, joining, accepting and restoring fail with RSEAT
//! whoever writes; lowering the limit removes no one; and the last seat goes to exactly one of
//! two concurrent writers.

use tokio_postgres::GenericClient;
use uuid::Uuid;

use crate::common;
use crate::concurrency::{change, race};
use crate::invitations::invite;
use crate::support::*;

async fn seats(c: &impl GenericClient, actor: Uuid, org: Uuid) -> (Option<i32>, i64) {
    let row = must_run(
        c,
        "select seat_limit, seats_used from roster.get_organization($1, $2)",
        &[&actor, &org],
    )
    .await
    .remove(0);
    (row.get("seat_limit"), row.get("seats_used"))
}

async fn set_limit(c: &impl GenericClient, actor: Uuid, org: Uuid, limit: Option<i32>) {
    must_run(
        c,
        "select * from roster.update_organization($1, $2, jsonb_build_object('seat_limit', $3::integer))",
        &[&actor, &org, &limit],
    )
    .await;
}

#[tokio::test]
async fn seats_used_are_members_of_any_status_and_pending_invitations_once_each() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    // owner, admin, member, invited (with its own invitation: one seat), suspended.
    assert_eq!((None, 5), seats(&client, w.owner, w.org).await);
    let (expiring, _) = invite(&client, w.owner, w.org, "a@example.com", "member").await;
    invite(&client, w.owner, w.org, "b@example.com", "member").await;
    assert_eq!(
        (None, 7),
        seats(&client, w.owner, w.org).await,
        "two pending invitations"
    );
    must_run(&client, "update roster.invitations set expires_at = now() - interval '1 second', created_at = now() - interval '1 day' where id = $1", &[&expiring]).await;
    assert_eq!(
        (None, 6),
        seats(&client, w.owner, w.org).await,
        "an expired invitation holds no seat"
    );
    must_run(&client, "update roster.invitations set expires_at = now() - interval '1 second', created_at = now() - interval '1 day' where user_id = $1", &[&w.invited]).await;
    assert_eq!(
        (None, 5),
        seats(&client, w.owner, w.org).await,
        "nor its invited membership"
    );
    // The address's user joining takes the invitation's seat.
    let b = w.new_user(&client, "b@example.com").await;
    add_member(&client, w.owner, w.org, b, "member", "active").await;
    assert_eq!(
        (None, 5),
        seats(&client, w.owner, w.org).await,
        "b is counted once"
    );
    let members: i64 = must_run(
        &client,
        "select member_count from roster.get_organization($1, $2)",
        &[&w.owner, &w.org],
    )
    .await[0]
        .get("member_count");
    assert_eq!(4, members, "member_count stays the active members");
}

#[tokio::test]
async fn at_the_limit_every_door_refuses_and_lowering_removes_no_one() {
    let db = common::fresh_database().await;
    let mut client = db.client().await;
    let w = World::build(&client).await;
    let (pending, pending_token) =
        invite(&client, w.owner, w.org, "pending@example.com", "member").await;
    let (expired, _) = invite(&client, w.owner, w.org, "expired@example.com", "member").await;
    must_run(&client, "update roster.invitations set expires_at = now() - interval '1 second', created_at = now() - interval '1 day' where id = $1", &[&expired]).await;
    // Joining needs a verified auto_join domain.
    must_run(
        &client,
        "select * from roster.add_domain($1, $2, 'acme.test', 'auto_join')",
        &[&w.owner, &w.org],
    )
    .await;
    must_run(
        &client,
        "select * from roster.verify_domain($1, $2, 'acme.test')",
        &[&w.tenant_admin, &w.org],
    )
    .await;
    let joiner = w.new_user(&client, "joiner@acme.test").await;
    let newcomer = w.new_user(&client, "newcomer@acme.test").await;
    assert_eq!(
        (None, 6),
        seats(&client, w.owner, w.org).await,
        "5 members, 1 pending invitation"
    );
    set_limit(&client, w.owner, w.org, Some(6)).await;
    assert_eq!((Some(6), 6), seats(&client, w.owner, w.org).await);

    let org = w.org;
    let cases: Vec<(&str, String, Vec<Uuid>)> = vec![
        ("add a member", format!("select * from roster.add_member($1, '{org}', $2)"), vec![w.owner, newcomer]),
        ("invite a member (v1)", format!("select * from roster.add_member($1, '{org}', $2, 'member', 'invited')"), vec![w.owner, newcomer]),
        ("invite by email", format!("select * from roster.invite($1, '{org}', 'x@example.com')"), vec![w.admin]),
        ("join", format!("select * from roster.join_organization($1, '{org}')"), vec![joiner]),
        ("resend an expired invitation", format!("select * from roster.resend_invitation($1, '{org}', '{expired}')"), vec![w.admin]),
        ("raw insert of a membership", format!("insert into roster.organization_memberships (tenant_id, organization_id, user_id) values ('{}', '{org}', $1)", w.tenant), vec![newcomer]),
        ("raw insert of an invitation", format!("insert into roster.invitations (tenant_id, organization_id, email, expires_at) values ('{}', '{org}', 'raw@example.com', now() + interval '1 day')", w.tenant), vec![]),
        ("raw restore of a removed member", format!("update roster.organization_memberships set deleted_at = null where organization_id = '{org}' and user_id = $1"), vec![w.deleted_user]),
    ];
    // The deleted user's membership ended with it: restoring the user too.
    must_run(
        &client,
        "update roster.users set deleted_at = null where id = $1",
        &[&w.deleted_user],
    )
    .await;
    for (what, sql, params) in &cases {
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            params.iter().map(|p| p as _).collect();
        let got = attempt_rolled_back(&mut client, sql, &params).await;
        assert_eq!(Err("RSEAT".to_owned()), got, "{what} at the limit");
    }
    let got = attempt(
        &client,
        "select item_index, result, error_sqlstate from roster.invite_many($1, $2, '[{\"email\": \"y@example.com\"}]')",
        &[&w.admin, &w.org],
    )
    .await
    .expect("bulk");
    assert_eq!(
        ("invalid", Some("RSEAT")),
        (
            got[0].get::<_, &str>("result"),
            got[0].get::<_, Option<&str>>("error_sqlstate")
        ),
        "a bulk item"
    );

    // What holds a seat already is not an addition: accepting at the limit works.
    let p = w.new_user(&client, "pending@example.com").await;
    let got = attempt_rolled_back(
        &mut client,
        "select * from roster.accept_invitation_token($1, $2)",
        &[&p, &pending_token],
    )
    .await;
    assert_eq!(Ok(()), got, "accepting a pending invitation at the limit");
    let got = attempt_rolled_back(
        &mut client,
        "select * from roster.accept_invitation($1, $2)",
        &[&w.invited, &w.org],
    )
    .await;
    assert_eq!(Ok(()), got, "accepting an invited membership at the limit");
    let got = attempt_rolled_back(
        &mut client,
        "select * from roster.resend_invitation($1, $2, $3)",
        &[&w.admin, &w.org, &pending],
    )
    .await;
    assert_eq!(Ok(()), got, "resending a pending invitation");
    let got = attempt_rolled_back(
        &mut client,
        "select * from roster.update_member($1, $2, $3, p_status => 'active')",
        &[&w.owner, &w.org, &w.suspended],
    )
    .await;
    assert_eq!(
        Ok(()),
        got,
        "reactivating a suspended member (it holds its seat)"
    );

    // Lowering below the seats used removes no one; it blocks additions, acceptances included.
    set_limit(&client, w.owner, w.org, Some(2)).await;
    assert_eq!(
        (Some(2), 6),
        seats(&client, w.owner, w.org).await,
        "nobody removed"
    );
    let got = attempt_rolled_back(
        &mut client,
        "select * from roster.accept_invitation_token($1, $2)",
        &[&p, &pending_token],
    )
    .await;
    assert_eq!(Err("RSEAT".to_owned()), got, "accepting over the limit");
    let got = attempt_rolled_back(
        &mut client,
        "select * from roster.accept_invitation($1, $2)",
        &[&w.invited, &w.org],
    )
    .await;
    assert_eq!(
        Err("RSEAT".to_owned()),
        got,
        "accepting an invited membership over the limit"
    );
    // Removing is always allowed; no limit, no refusal.
    must_run(
        &client,
        "select roster.remove_member($1, $2, $3)",
        &[&w.owner, &w.org, &w.member],
    )
    .await;
    set_limit(&client, w.owner, w.org, None).await;
    add_member(&client, w.owner, w.org, newcomer, "member", "active").await;
    assert_eq!((None, 6), seats(&client, w.owner, w.org).await);
}

#[tokio::test]
async fn the_seat_limit_is_a_whole_number_or_null() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    for (what, changes) in [
        ("negative", r#"{"seat_limit": -1}"#),
        ("a fraction", r#"{"seat_limit": 1.5}"#),
        ("a string", r#"{"seat_limit": "5"}"#),
        ("beyond integer", r#"{"seat_limit": 3000000000}"#),
        ("an object", r#"{"seat_limit": {}}"#),
    ] {
        let got = attempt(
            &client,
            "select * from roster.update_organization($1, $2, $3::text::jsonb)",
            &[&w.owner, &w.org, &changes],
        )
        .await;
        assert_eq!(got.map(drop), Err("RINVL".into()), "seat_limit {what}");
    }
    let row = must_run(
        &client,
        r#"select seat_limit from roster.update_organization($1, $2, '{"seat_limit": 10.0}')"#,
        &[&w.owner, &w.org],
    )
    .await;
    assert_eq!(
        Some(10),
        row[0].get::<_, Option<i32>>("seat_limit"),
        "10.0 is a whole number"
    );
    let got = attempt(
        &client,
        r#"select * from roster.update_organization($1, $2, '{"seat_limit": 5}')"#,
        &[&w.admin, &w.org],
    )
    .await;
    assert_eq!(
        got.map(drop),
        Ok(()),
        "admins update the organization, its limit included"
    );
    let got = attempt(
        &client,
        r#"select * from roster.update_organization($1, $2, '{"seat_limit": 5}')"#,
        &[&w.member, &w.org],
    )
    .await;
    assert_eq!(got.map(drop), Err("RDNID".into()), "members do not");
    let raw = attempt(
        &client,
        "update roster.organizations set seat_limit = -3 where id = $1",
        &[&w.org],
    )
    .await;
    assert_eq!(raw.map(drop), Err("23514".into()), "raw SQL neither");
    let events: i64 = must_run(
        &client,
        "select count(*) as n from roster.audit_events where action = 'organization.updated' \
          and (after ->> 'seat_limit')::int = 5",
        &[],
    )
    .await[0]
        .get("n");
    assert_eq!(1, events, "a limit change is in the trail");
}

/// Two connections invite two addresses for the last seat at once: exactly one wins.
#[tokio::test]
async fn two_invitations_for_the_last_seat_one_wins_read_committed() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    set_limit(&client, w.owner, w.org, Some(6)).await;
    let second = race(
        &db,
        "read committed",
        change(
            "select * from roster.invite($1, $2, 'first@example.com')",
            &[w.owner, w.org],
        ),
        change(
            "select * from roster.invite($1, $2, 'second@example.com')",
            &[w.admin, w.org],
        ),
    )
    .await;
    assert_eq!(
        Err("RSEAT".into()),
        second,
        "the second invitation waited, counted afresh, and lost"
    );
    assert_eq!(
        (Some(6), 6),
        seats(&client, w.owner, w.org).await,
        "exactly the limit"
    );
}

#[tokio::test]
async fn two_invitations_for_the_last_seat_one_wins_repeatable_read() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    set_limit(&client, w.owner, w.org, Some(6)).await;
    let second = race(
        &db,
        "repeatable read",
        change(
            "select * from roster.invite($1, $2, 'first@example.com')",
            &[w.owner, w.org],
        ),
        change(
            "select * from roster.invite($1, $2, 'second@example.com')",
            &[w.admin, w.org],
        ),
    )
    .await;
    assert!(
        matches!(
            second.as_ref().map_err(String::as_str),
            Err("40001" | "RSEAT")
        ),
        "the second invitation should fail with 40001 or RSEAT, got {second:?}"
    );
    assert_eq!((Some(6), 6), seats(&client, w.owner, w.org).await);
}

/// Whoever writes: a raw INSERT of a membership against an invitation for the last seat.
#[tokio::test]
async fn a_raw_insert_and_an_invitation_for_the_last_seat_one_wins() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    set_limit(&client, w.owner, w.org, Some(6)).await;
    let newcomer = w.new_user(&client, "newcomer@acme.test").await;
    let second = race(
        &db,
        "read committed",
        change(
            "insert into roster.organization_memberships (tenant_id, organization_id, user_id) values ($1, $2, $3)",
            &[w.tenant, w.org, newcomer],
        ),
        change("select * from roster.invite($1, $2, 'second@example.com')", &[w.admin, w.org]),
    )
    .await;
    assert_eq!(
        Err("RSEAT".into()),
        second,
        "the invitation after the raw insert"
    );
    assert_eq!((Some(6), 6), seats(&client, w.owner, w.org).await);
}
