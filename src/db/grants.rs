//! Grants: `roster.grant_role` and friends. A role granted to a user or a group, across the
//! organization or on one resource (and its descendants), until an optional expiry.

use std::error::Error;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::Row;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{map_rows, query, query_one, write_one, Client};
use crate::domain::{Page, RoleKey};
use crate::error::ApiError;

/// Whom a grant is to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubjectType {
    User,
    Group,
}

impl SubjectType {
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectType::User => "user",
            SubjectType::Group => "group",
        }
    }
}

impl<'a> FromSql<'a> for SubjectType {
    /// Refuses a value `ck_grants_subject` should never let in, rather than guessing.
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        match <&str as FromSql>::from_sql(ty, raw)? {
            "user" => Ok(SubjectType::User),
            "group" => Ok(SubjectType::Group),
            other => Err(format!("unknown subject type {other:?}").into()),
        }
    }

    fn accepts(ty: &Type) -> bool {
        <&str as FromSql>::accepts(ty)
    }
}

/// `ck_grants_resource_type_format`: `^[a-z][a-z0-9_-]*$`, at most this long.
pub const RESOURCE_TYPE_MAX: usize = 100;
/// `ck_grants_resource_id_length`.
pub const RESOURCE_ID_MAX: usize = 255;

/// A grant of a role.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Grant {
    pub id: Uuid,
    pub subject_type: SubjectType,
    /// The user's id, or the group's key.
    pub subject_id: String,
    pub role_key: RoleKey,
    /// The resource it is on, with `resource_id`; null: the whole organization.
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    /// When it stops granting anything; null: never.
    pub expires_at: Option<DateTime<Utc>>,
    pub granted_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

impl Grant {
    fn from_row(row: &Row) -> Result<Grant, tokio_postgres::Error> {
        Ok(Grant {
            id: row.try_get("id")?,
            subject_type: row.try_get("subject_type")?,
            subject_id: row.try_get("subject_id")?,
            role_key: row.try_get("role_key")?,
            resource_type: row.try_get("resource_type")?,
            resource_id: row.try_get("resource_id")?,
            expires_at: row.try_get("expires_at")?,
            granted_by: row.try_get("granted_by")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

/// A new grant: the body of `POST /organizations/{org_id}/grants` and the arguments of
/// `roster.grant_role`, in its order. The resource's type and id are checked here against the
/// table's constraints, so that a bad one is refused naming the field.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGrant {
    pub subject_type: SubjectType,
    /// The user's id (a member of the organization), or the group's key.
    pub subject_id: String,
    /// A role available in the organization; granting it needs every permission it grants
    /// (`owner`: members:manage_owners).
    pub role_key: RoleKey,
    /// With `resource_id`, or neither (the whole organization): the resource part of some
    /// permission of the tenant's catalogue (`invoice` for `invoice:approve`).
    #[serde(default, deserialize_with = "resource_type")]
    #[schema(pattern = "^[a-z][a-z0-9_-]*$", max_length = 100)]
    pub resource_type: Option<String>,
    #[serde(default, deserialize_with = "resource_id")]
    #[schema(min_length = 1, max_length = 255)]
    pub resource_id: Option<String>,
    /// RFC 3339, in the future; null or absent: never expires.
    pub expires_at: Option<DateTime<Utc>>,
}

fn resource_type<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let text = Option::<String>::deserialize(deserializer)?;
    if let Some(text) = &text {
        let mut chars = text.chars();
        let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && text.len() <= RESOURCE_TYPE_MAX
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !valid {
            return Err(serde::de::Error::custom(format!(
                "invalid resource type {text:?}: at most {RESOURCE_TYPE_MAX} characters of a-z, 0-9, _ and -, starting with a letter"
            )));
        }
    }
    Ok(text)
}

fn resource_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let text = Option::<String>::deserialize(deserializer)?;
    if let Some(text) = &text {
        let length = text.chars().count();
        if !(1..=RESOURCE_ID_MAX).contains(&length) {
            return Err(serde::de::Error::custom(format!(
                "a resource id is 1 to {RESOURCE_ID_MAX} characters, got {length}"
            )));
        }
    }
    Ok(text)
}

/// `roster.grant_role` returns the table row, which has the user's id or the group's id: the
/// subject's id is the user's id as text, or the group key given.
pub async fn grant_role(
    client: &Client,
    actor: Uuid,
    org: Uuid,
    new: &NewGrant,
) -> Result<Grant, ApiError> {
    let row = write_one(
        client,
        "select pg_current_xact_id()::text as written_xid, g.id, g.subject_type, coalesce(g.user_id::text, $4::text) as subject_id, g.role_key,
                g.resource_type, g.resource_id, g.expires_at, g.granted_by, g.created_at
           from roster.grant_role($1, $2, $3, $4, $5, $6, $7, $8) g",
        &[
            &actor,
            &org,
            &new.subject_type.as_str(),
            &new.subject_id,
            &new.role_key.as_str(),
            &new.resource_type,
            &new.resource_id,
            &new.expires_at,
        ],
    )
    .await?;
    Ok(Grant::from_row(&row)?)
}

pub async fn revoke_grant(
    client: &Client,
    actor: Uuid,
    org: Uuid,
    grant: Uuid,
) -> Result<(), ApiError> {
    write_one(
        client,
        "select roster.revoke_grant($1, $2, $3), pg_current_xact_id()::text as written_xid",
        &[&actor, &org, &grant],
    )
    .await?;
    Ok(())
}

pub async fn get_grant(
    client: &Client,
    actor: Uuid,
    org: Uuid,
    grant: Uuid,
) -> Result<Grant, ApiError> {
    let row = query_one(
        client,
        "select * from roster.get_grant($1, $2, $3)",
        &[&actor, &org, &grant],
    )
    .await?;
    Ok(Grant::from_row(&row)?)
}

/// `filters`: an object of the filters given (subject_type, subject_id, role_key,
/// resource_type, resource_id), each a string.
pub async fn list_grants(
    client: &Client,
    actor: Uuid,
    org: Uuid,
    filters: &Value,
    page: Page,
) -> Result<Vec<Grant>, ApiError> {
    let rows = query(
        client,
        "select * from roster.list_grants($1, $2, $3, $4, $5)",
        &[&actor, &org, filters, &page.fetch_limit(), &page.offset],
    )
    .await?;
    map_rows(&rows, Grant::from_row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_grant_refuses_resources_the_table_cannot_hold_naming_the_field() {
        let body = |resource: &str| {
            format!(
                r#"{{"subject_type": "user", "subject_id": "x", "role_key": "admin", {resource}}}"#
            )
        };
        let long_type = format!(r#""resource_type": "{}""#, "a".repeat(101));
        let long_id = format!(
            r#""resource_type": "a", "resource_id": "{}""#,
            "é".repeat(256)
        );
        for (resource, field) in [
            (r#""resource_type": "Invoice""#, "resource_type"),
            (r#""resource_type": "9lives""#, "resource_type"),
            (r#""resource_type": """#, "resource_type"),
            (long_type.as_str(), "resource_type"),
            (r#""resource_type": "a", "resource_id": """#, "resource_id"),
            (long_id.as_str(), "resource_id"),
        ] {
            let text = body(resource);
            let mut deserializer = serde_json::Deserializer::from_str(&text);
            let error = serde_path_to_error::deserialize::<_, NewGrant>(&mut deserializer)
                .expect_err(&text);
            assert_eq!(field, error.path().to_string(), "{text}: {error}");
        }
        for resource in [
            format!(r#""resource_type": "{}""#, "a".repeat(100)),
            format!(
                r#""resource_type": "model_v2-x", "resource_id": "{}""#,
                "é".repeat(255)
            ),
            r#""resource_type": null, "resource_id": null"#.to_owned(),
        ] {
            let text = body(&resource);
            serde_json::from_str::<NewGrant>(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        }
    }
}
