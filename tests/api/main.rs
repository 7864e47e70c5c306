//! HTTP-level tests: the real app on a free port, one fresh database per test.

#[path = "../common/mod.rs"]
mod common;

mod auth;
mod authz;
mod domains;
mod errors;
mod groups;
mod health;
mod helpers;
mod invitations;
mod json_values;
mod logins;
mod members;
mod openapi;
mod organizations;
mod pagination;
mod permissions;
mod resources;
mod responses;
mod roles;
mod rs256;
mod seats;
mod shutdown;
mod timeouts;
mod tokens;
