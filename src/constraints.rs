//! The limits the API enforces on its inputs, as constants and as the JSON Schemas the OpenAPI
//! document shows, so that the document states exactly what the server accepts.
//!
//! Organization fields are checked by the database (`ck_organizations_*` in
//! `sql/migrations/V4__organizations.sql`): the schemas here restate those constraints, and
//! `tests/api/openapi.rs` holds the document to them, at their boundaries, through the API.
//! Patterns are written so that ECMA-262 and Python read them the same way, since schema-driven
//! tools (schemathesis, client generators) are written in either.

use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{KnownFormat, Ref, RefOr, Schema, SchemaFormat};

/// `ck_organizations_name_length`: `btrim(name) <> '' and length(name) <= 255`, on the name as
/// stored, which the functions trim first (`btrim` removes spaces, nothing else).
pub const NAME_MAX: usize = 255;
/// `ck_organizations_slug_format`.
pub const SLUG_PATTERN: &str = "^[a-z0-9]+(-[a-z0-9]+)*$";
pub const SLUG_MIN: usize = 2;
pub const SLUG_MAX: usize = 50;
/// `ck_organizations_description_length`.
pub const DESCRIPTION_MAX: usize = 2000;
/// `ck_organizations_domain_format`: a lowercase hostname with at least one dot.
pub const DOMAIN_PATTERN: &str =
    r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$";
pub const DOMAIN_MAX: usize = 253;
/// `ck_organizations_billing_email_format`: `^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$`.
/// `[:space:]` is spelled out as what it matches under the database's C.UTF-8 character type
/// (ECMA's and Python's `\s` take in more, such as U+00A0).
pub const EMAIL_PATTERN: &str = concat!(
    r"^[^@\t\n\v\f\r \u1680\u2000-\u2006\u2008-\u200a\u2028\u2029\u205f\u3000]+",
    r"@[^@\t\n\v\f\r \u1680\u2000-\u2006\u2008-\u200a\u2028\u2029\u205f\u3000]+",
    r"\.[^@\t\n\v\f\r \u1680\u2000-\u2006\u2008-\u200a\u2028\u2029\u205f\u3000]+$",
);
pub const EMAIL_MAX: usize = 320;
/// `ck_organizations_stripe_customer_id_length`: not only spaces, at most 255 characters.
pub const STRIPE_CUSTOMER_ID_MAX: usize = 255;
/// "Not only spaces" (`btrim(x) <> ''`): an unanchored pattern matches anywhere in the value.
const NOT_BLANK: &str = "[^ ]";

/// A string, or a string or null.
fn text(nullable: bool, description: &str) -> ObjectBuilder {
    let schema_type = match nullable {
        true => SchemaType::from_iter([Type::String, Type::Null]),
        false => SchemaType::new(Type::String),
    };
    ObjectBuilder::new()
        .schema_type(schema_type)
        .description(Some(description))
}

/// A JSON object of any keys, or also null.
fn object(nullable: bool, description: &str) -> Schema {
    let schema_type = match nullable {
        true => SchemaType::from_iter([Type::Object, Type::Null]),
        false => SchemaType::new(Type::Object),
    };
    ObjectBuilder::new()
        .schema_type(schema_type)
        .description(Some(description))
        .into()
}

/// `^ *` + 1 to NAME_MAX characters that neither start nor end with a space + ` *$`: the length
/// is that of the trimmed name, whatever spaces surround it.
pub fn name_pattern() -> String {
    format!(r"^ *[^ ](?:[\s\S]{{0,{}}}[^ ])? *$", NAME_MAX - 2)
}

pub fn name() -> Schema {
    text(
        false,
        &format!(
            "1 to {NAME_MAX} characters once leading and trailing spaces are trimmed (they are), \
             unique in the tenant case-insensitively."
        ),
    )
    .min_length(Some(1))
    .pattern(Some(name_pattern()))
    .into()
}

pub fn slug() -> Schema {
    text(
        false,
        &format!(
            "{SLUG_MIN} to {SLUG_MAX} characters: groups of lowercase letters and digits joined \
             by single hyphens. Unique in the tenant."
        ),
    )
    .pattern(Some(SLUG_PATTERN))
    .min_length(Some(SLUG_MIN))
    .max_length(Some(SLUG_MAX))
    .into()
}

pub fn description() -> Schema {
    text(true, &format!("At most {DESCRIPTION_MAX} characters."))
        .max_length(Some(DESCRIPTION_MAX))
        .into()
}

pub fn domain() -> Schema {
    text(
        true,
        &format!(
            "The organization's domain: a lowercase hostname with at least one dot, at most \
             {DOMAIN_MAX} characters."
        ),
    )
    .pattern(Some(DOMAIN_PATTERN))
    .max_length(Some(DOMAIN_MAX))
    .into()
}

pub fn billing_email() -> Schema {
    text(
        true,
        &format!(
            "`local@domain.tld` with no spaces and a single `@`, at most {EMAIL_MAX} characters."
        ),
    )
    .pattern(Some(EMAIL_PATTERN))
    .max_length(Some(EMAIL_MAX))
    .into()
}

pub fn stripe_customer_id() -> Schema {
    text(
        true,
        &format!("Not only spaces, at most {STRIPE_CUSTOMER_ID_MAX} characters."),
    )
    .pattern(Some(NOT_BLANK))
    .max_length(Some(STRIPE_CUSTOMER_ID_MAX))
    .into()
}

pub fn billing_address() -> Schema {
    object(true, "A free-form address object, e.g. `{\"city\": ...}`.")
}

/// `metadata` where null stands for the default, `{}` (creation).
pub fn metadata_or_null() -> Schema {
    object(true, "Free-form JSON object; absent or null means `{}`.")
}

/// `metadata` where null is refused (updates: it cannot be cleared, only replaced).
pub fn metadata() -> Schema {
    object(false, "Free-form JSON object, replaced whole.")
}

/// `seat_limit` in changes to an organization (`ck_organizations_seat_limit`, and
/// `roster.update_organization`'s check of the JSON number).
pub fn seat_limit() -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
        .minimum(Some(0))
        .maximum(Some(i32::MAX))
        .description(Some(
            "The most seats (members of any status and pending invitations) the organization              may use; null for no limit. Lowering it below the seats used removes no one: it              blocks additions.",
        ))
        .into()
}

/// An email address as an invitation takes it: the check of `ck_users_email_format`
/// (stored lowercase).
pub fn invitation_email() -> Schema {
    text(
        false,
        &format!(
            "`local@domain.tld` with no spaces and a single `@`, at most {EMAIL_MAX} characters;              stored lowercase."
        ),
    )
    .pattern(Some(EMAIL_PATTERN))
    .max_length(Some(EMAIL_MAX))
    .into()
}

/// A domain an organization claims: the rule of `organizations.domain`
/// (`ck_organization_domains_domain_format`).
pub fn claimed_domain() -> Schema {
    text(
        false,
        &format!("A lowercase hostname with at least one dot, at most {DOMAIN_MAX} characters."),
    )
    .pattern(Some(DOMAIN_PATTERN))
    .max_length(Some(DOMAIN_MAX))
    .into()
}

/// The bounds of an invitation's lifetime, in seconds: 1 hour to 90 days.
pub const INVITATION_LIFETIME_MIN: i64 = 3600;
pub const INVITATION_LIFETIME_MAX: i64 = 90 * 24 * 3600;

pub fn expires_in_seconds() -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(INVITATION_LIFETIME_MIN))
        .maximum(Some(INVITATION_LIFETIME_MAX))
        .description(Some(
            "Seconds until the invitation expires, 3600 (1 hour) to 7776000 (90 days); absent or              null: the tenant's invitation lifetime (7 days unless set).",
        ))
        .into()
}

/// The items of a bulk invitation: 1 to [`crate::routes::invitations::MAX_BULK`].
pub fn bulk_invitations() -> RefOr<Schema> {
    ArrayBuilder::new()
        .items(Ref::from_schema_name("BulkInvitationItem"))
        .min_items(Some(1))
        .max_items(Some(crate::routes::invitations::MAX_BULK))
        .description(Some(format!(
            "1 to {} invitations; each is made or refused on its own.",
            crate::routes::invitations::MAX_BULK
        )))
        .into()
}

/// `?status=` of an organization's invitations.
pub fn invitation_status_filter() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some([
            "pending", "accepted", "declined", "revoked", "expired", "all",
        ]))
        .default(Some("pending".into()))
        .into()
}

/// `?limit=`: see [`crate::domain::Page`].
pub fn limit() -> Schema {
    use crate::domain::Page;
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
        .minimum(Some(1))
        .maximum(Some(Page::MAX_LIMIT))
        .default(Some(Page::DEFAULT_LIMIT.into()))
        .into()
}

/// `?offset=`: see [`crate::domain::Page`].
pub fn offset() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
        .minimum(Some(0))
        .maximum(Some(i32::MAX))
        .default(Some(0.into()))
        .into()
}

/// `?offset=` of a list that also pages by cursor: at most 10000 (`roster.list_members`).
pub fn cursor_offset() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
        .minimum(Some(0))
        .maximum(Some(crate::domain::Page::MAX_CURSOR_OFFSET))
        .default(Some(0.into()))
        .into()
}

/// The `checks` of `POST /authz/check`: 1 to [`crate::routes::authz::MAX_CHECKS`].
pub fn checks() -> RefOr<Schema> {
    ArrayBuilder::new()
        .items(Ref::from_schema_name("Check"))
        .min_items(Some(1))
        .max_items(Some(crate::routes::authz::MAX_CHECKS))
        .description(Some(format!(
            "1 to {} checks, answered in order.",
            crate::routes::authz::MAX_CHECKS
        )))
        .into()
}
