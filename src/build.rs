//! Build script (kept under src/ to keep the top level tidy).
//!
//! `refinery::embed_migrations!` reads `sql/migrations/` at compile time, but a proc macro cannot
//! tell Cargo to watch a directory: without this, a new `V…` file would not be embedded until
//! something else forced a rebuild.
fn main() {
    println!("cargo:rerun-if-changed=sql/migrations");
}
