//! Landed migrations are frozen: every existing database has them applied, and refinery refuses
//! to run against one whose applied migration's checksum differs from the file's. A change is
//! a new `V…` file. And a function a later migration (or a DBA) creates is executable by no
//! application role until it is granted.

use crate::common;
use crate::support::*;

/// `(version, name, refinery checksum)` of every migration that has landed on main. Append a
/// row when a migration lands; never change one.
const LANDED: &[(i64, &str, u64)] = &[
    (1, "roster_schema", 11762297373091815188),
    (2, "tenants", 1828371432720812345),
    (3, "users", 17100080658945774839),
    (4, "organizations", 14705346661283604745),
    (5, "memberships", 1512979974173411753),
    (6, "permissions", 9851269816940520775),
    (7, "violation_messages", 6358778849449863040),
    (8, "organization_functions", 6047617366699673874),
    (9, "membership_functions", 16638893223739231044),
    (10, "change_notifications", 8757618714261486192),
    (11, "audit_events", 16759542739767254435),
    (12, "only_owners_change_roles", 5500318193841756068),
    (13, "tenant_versions", 1644039944591348617),
    (14, "access_resolver", 4191797604866960389),
    (15, "default_privileges", 12353934157211200222),
    (16, "honest_audit_actors", 12385412693386115785),
    (17, "audit_users_and_tenants", 13572662206086646773),
    (18, "member_keyset_pages", 7088045624947727110),
    (19, "tenant_permission_catalogue", 6032373135169365842),
    (20, "roles", 1699197836143250428),
    (21, "role_functions", 930021784844420259),
    (22, "access_explanations", 11681191950531220397),
    (23, "expiring_memberships", 13450774572466593504),
    (24, "groups", 17028989342455162890),
    (25, "grants_and_resources", 2691679704942726924),
    (26, "expiry_purge_and_group_audit", 13517941375071392045),
    (27, "invitations", 3263430224077102860),
    (28, "invitation_functions", 11099746665223523388),
    (29, "seat_limits", 11448091768147437280),
    (30, "organization_domains", 12286528072604015905),
    (31, "resolver_plans", 13264181016103048154),
    (32, "invitation_notifications", 16853762627121767492),
    (33, "token_exchange", 7272630835984504092),
    (
        34,
        "cached_plans_for_counts_and_bumps",
        14509346451045116097,
    ),
    (
        35,
        "organization_locks_without_deadlock",
        8710078729139223168,
    ),
    (36, "change_log", 6974312377212843369),
    (
        37,
        "audit_triggers_skip_version_bumps",
        13055843359370072532,
    ),
    (38, "change_delays", 7395749868095892561),
    (39, "change_log_reads_by_index", 3938753695442805229),
    (40, "group_parent_is_a_field", 18290439579357848448),
    (41, "get_group_member", 3578478590584263714),
];

#[test]
fn landed_migrations_are_unchanged() {
    let compiled = roster::migrate::checksums();
    for &(version, name, checksum) in LANDED {
        let found = compiled.iter().find(|(v, _, _)| *v == version);
        let Some((_, compiled_name, compiled_checksum)) = found else {
            panic!("V{version}__{name} has landed but is gone from sql/migrations");
        };
        assert_eq!(
            (name, checksum),
            (compiled_name.as_str(), *compiled_checksum),
            "V{version}__{name} has landed: it must not be renamed or edited (write a new V… file instead)"
        );
    }
}

#[tokio::test]
async fn a_new_function_is_executable_by_no_application_role_until_granted() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    // As the role that ran the migrations (the tests' superuser), like a later migration.
    must_run(
        &client,
        "create function roster.probe() returns integer language sql as 'select 1'",
        &[],
    )
    .await;
    for role in ["roster_app", "roster_provisioner", "public"] {
        let rows = must_run(
            &client,
            "select has_function_privilege($1, 'roster.probe()', 'execute') as allowed",
            &[&role],
        )
        .await;
        let allowed: bool = rows[0].get("allowed");
        assert!(
            !allowed,
            "{role} must not execute a function nobody granted"
        );
    }
}
