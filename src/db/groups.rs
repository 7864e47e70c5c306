//! Groups: `roster.create_group` and friends. An organization's groups nest up to 8 levels;
//! their members are members of the organization, until an optional expiry.

use std::error::Error;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::Row;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{map_rows, query, query_one, write_one, Client};
use crate::domain::Page;
use crate::error::ApiError;

/// A group's key, unique in its organization. This type only refuses what can never be a key
/// (`ck_groups_key_format`); the database decides which groups exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, pattern = "^[a-z][a-z0-9_-]{1,49}$", example = "engineering")]
pub struct GroupKey(String);

impl GroupKey {
    pub const MAX_LEN: usize = 50;

    pub fn parse(text: &str) -> Result<GroupKey, String> {
        let mut chars = text.chars();
        let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && (2..=Self::MAX_LEN).contains(&text.len())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        match valid {
            true => Ok(GroupKey(text.to_owned())),
            false => Err(format!(
                "invalid group key {text:?}: 2 to 50 characters of a-z, 0-9, _ and -, starting with a letter"
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for GroupKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<GroupKey, D::Error> {
        let text = String::deserialize(deserializer)?;
        GroupKey::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl<'a> FromSql<'a> for GroupKey {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        <String as FromSql>::from_sql(ty, raw).map(GroupKey)
    }

    fn accepts(ty: &Type) -> bool {
        <String as FromSql>::accepts(ty)
    }
}

/// A group of an organization.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Group {
    pub id: Uuid,
    pub key: GroupKey,
    pub name: String,
    pub description: Option<String>,
    /// The parent group's key; null for a top-level group.
    pub parent_key: Option<GroupKey>,
    /// Its members whose group membership has not expired (not those of its descendants).
    pub member_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Group {
    fn from_row(row: &Row) -> Result<Group, tokio_postgres::Error> {
        Ok(Group {
            id: row.try_get("id")?,
            key: row.try_get("key")?,
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            parent_key: row.try_get("parent_key")?,
            member_count: row.try_get("member_count")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

/// A user's place in a group, as `roster.add_group_member` makes it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GroupMembership {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub group_key: GroupKey,
    pub user_id: Uuid,
    /// When it stops granting anything; null: never.
    pub expires_at: Option<DateTime<Utc>>,
    pub added_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

impl GroupMembership {
    fn from_row(row: &Row) -> Result<GroupMembership, tokio_postgres::Error> {
        Ok(GroupMembership {
            id: row.try_get("id")?,
            organization_id: row.try_get("organization_id")?,
            group_key: row.try_get("group_key")?,
            user_id: row.try_get("user_id")?,
            expires_at: row.try_get("expires_at")?,
            added_by: row.try_get("added_by")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

/// A row of a group's member list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GroupMember {
    pub user_id: Uuid,
    pub email: String,
    pub display_name: Option<String>,
    /// Expired members are listed, with their expiry, until purged.
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl GroupMember {
    fn from_row(row: &Row) -> Result<GroupMember, tokio_postgres::Error> {
        Ok(GroupMember {
            user_id: row.try_get("user_id")?,
            email: row.try_get("email")?,
            display_name: row.try_get("display_name")?,
            expires_at: row.try_get("expires_at")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

/// A group a user is directly in.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserGroup {
    pub key: GroupKey,
    pub name: String,
    pub parent_key: Option<GroupKey>,
    /// When the user's membership of the group ends; null: never.
    pub expires_at: Option<DateTime<Utc>>,
}

impl UserGroup {
    fn from_row(row: &Row) -> Result<UserGroup, tokio_postgres::Error> {
        Ok(UserGroup {
            key: row.try_get("key")?,
            name: row.try_get("name")?,
            parent_key: row.try_get("parent_key")?,
            expires_at: row.try_get("expires_at")?,
        })
    }
}

pub async fn create_group(
    client: &Client,
    actor: Uuid,
    org: Uuid,
    key: &GroupKey,
    name: &str,
    description: Option<&str>,
    parent_key: Option<&GroupKey>,
) -> Result<Group, ApiError> {
    let row = write_one(
        client,
        "select *, pg_current_xact_id()::text as written_xid from roster.create_group($1, $2, $3, $4, $5, $6)",
        &[
            &actor,
            &org,
            &key.as_str(),
            &name,
            &description,
            &parent_key.map(GroupKey::as_str),
        ],
    )
    .await?;
    Ok(Group::from_row(&row)?)
}

/// `changes` passes through: the SQL function owns the partial-update semantics.
pub async fn update_group(
    client: &Client,
    actor: Uuid,
    org: Uuid,
    key: &str,
    changes: &Value,
) -> Result<Group, ApiError> {
    let row = write_one(
        client,
        "select *, pg_current_xact_id()::text as written_xid from roster.update_group($1, $2, $3, $4)",
        &[&actor, &org, &key, changes],
    )
    .await?;
    Ok(Group::from_row(&row)?)
}

pub async fn delete_group(
    client: &Client,
    actor: Uuid,
    org: Uuid,
    key: &str,
) -> Result<(), ApiError> {
    write_one(
        client,
        "select roster.delete_group($1, $2, $3), pg_current_xact_id()::text as written_xid",
        &[&actor, &org, &key],
    )
    .await?;
    Ok(())
}

pub async fn list_groups(
    client: &Client,
    actor: Uuid,
    org: Uuid,
    page: Page,
) -> Result<Vec<Group>, ApiError> {
    let rows = query(
        client,
        "select * from roster.list_groups($1, $2, $3, $4)",
        &[&actor, &org, &page.fetch_limit(), &page.offset],
    )
    .await?;
    map_rows(&rows, Group::from_row)
}

pub async fn get_group(
    client: &Client,
    actor: Uuid,
    org: Uuid,
    key: &str,
) -> Result<Group, ApiError> {
    let row = query_one(
        client,
        "select * from roster.get_group($1, $2, $3)",
        &[&actor, &org, &key],
    )
    .await?;
    Ok(Group::from_row(&row)?)
}

/// The row names its group by id: its key is the one given.
pub async fn add_group_member(
    client: &Client,
    actor: Uuid,
    org: Uuid,
    group_key: &str,
    user: Uuid,
    expires_at: Option<DateTime<Utc>>,
) -> Result<GroupMembership, ApiError> {
    let row = write_one(
        client,
        "select pg_current_xact_id()::text as written_xid, m.id, m.organization_id, $3::text as group_key, m.user_id, m.expires_at,
                m.added_by, m.created_at
           from roster.add_group_member($1, $2, $3, $4, $5) m",
        &[&actor, &org, &group_key, &user, &expires_at],
    )
    .await?;
    Ok(GroupMembership::from_row(&row)?)
}

pub async fn remove_group_member(
    client: &Client,
    actor: Uuid,
    org: Uuid,
    group_key: &str,
    user: Uuid,
) -> Result<(), ApiError> {
    write_one(
        client,
        "select roster.remove_group_member($1, $2, $3, $4), pg_current_xact_id()::text as written_xid",
        &[&actor, &org, &group_key, &user],
    )
    .await?;
    Ok(())
}

/// `roster.get_group_member`: one member of a group, as the member list shows it.
pub async fn get_group_member(
    client: &Client,
    actor: Uuid,
    org: Uuid,
    group_key: &str,
    user: Uuid,
) -> Result<GroupMember, ApiError> {
    let row = query_one(
        client,
        "select * from roster.get_group_member($1, $2, $3, $4)",
        &[&actor, &org, &group_key, &user],
    )
    .await?;
    Ok(GroupMember::from_row(&row)?)
}

pub async fn list_group_members(
    client: &Client,
    actor: Uuid,
    org: Uuid,
    group_key: &str,
    page: Page,
) -> Result<Vec<GroupMember>, ApiError> {
    let rows = query(
        client,
        "select * from roster.list_group_members($1, $2, $3, $4, $5)",
        &[&actor, &org, &group_key, &page.fetch_limit(), &page.offset],
    )
    .await?;
    map_rows(&rows, GroupMember::from_row)
}

pub async fn list_user_groups(
    client: &Client,
    actor: Uuid,
    org: Uuid,
    user: Uuid,
) -> Result<Vec<UserGroup>, ApiError> {
    let rows = query(
        client,
        "select * from roster.list_user_groups($1, $2, $3)",
        &[&actor, &org, &user],
    )
    .await?;
    map_rows(&rows, UserGroup::from_row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_keys_are_well_formed_keys() {
        for key in ["eng", "platform-team", "qa_2", "ab", &"a".repeat(50)] {
            let parsed: GroupKey = serde_json::from_str(&format!("{key:?}")).unwrap();
            assert_eq!(parsed.as_str(), key, "{key} should be a group key");
        }
        let long = "a".repeat(51);
        for key in [
            "",
            "a",
            "Eng",
            "2fa",
            "-x",
            "has space",
            "dot.ted",
            "\u{e9}t\u{e9}",
            &long,
        ] {
            assert!(GroupKey::parse(key).is_err(), "{key:?} should be refused");
        }
    }
}
