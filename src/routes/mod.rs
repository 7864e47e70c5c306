//! HTTP handlers: each extracts the caller, path and body, makes one `db` call and returns JSON.

pub mod health;
pub mod members;
pub mod organizations;
