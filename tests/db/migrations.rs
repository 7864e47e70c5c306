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
