//! Small types parsed at the edge, so that handlers and the `db` module never see raw strings
//! where a closed set is meant. The database's constraints remain the final guard.

use std::error::Error;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_postgres::types::{FromSql, Type};
use utoipa::{IntoParams, ToSchema};

use crate::constraints;
use crate::error::ApiError;

/// Defines an enum stored as text in the database: its JSON form (snake_case), its database
/// text (`as_str`, the same words), and a `FromSql` that refuses any other value, so that a value
/// the database should never hold surfaces as an error rather than a guess.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl<'a> FromSql<'a> for $name {
            fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
                match <&str as FromSql>::from_sql(ty, raw)? {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!("unknown {} {other:?}", $what).into()),
                }
            }

            fn accepts(ty: &Type) -> bool {
                <&str as FromSql>::accepts(ty)
            }
        }
    };
}

text_enum!(
    /// A member's role in an organization.
    Role, "role", {
        Owner => "owner",
        Admin => "admin",
        Member => "member",
    }
);

text_enum!(
    /// A membership's status: `invited` until accepted, then `active` or `suspended`.
    MembershipStatus, "membership status", {
        Invited => "invited",
        Active => "active",
        Suspended => "suspended",
    }
);

/// The status a new membership may start in (`roster.add_member` refuses `suspended`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NewMemberStatus {
    Active,
    Invited,
}

/// The statuses `roster.update_member` may set: an invitation is only ever accepted by its
/// invitee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemberStatusChange {
    Active,
    Suspended,
}

impl From<NewMemberStatus> for MembershipStatus {
    fn from(status: NewMemberStatus) -> MembershipStatus {
        match status {
            NewMemberStatus::Active => MembershipStatus::Active,
            NewMemberStatus::Invited => MembershipStatus::Invited,
        }
    }
}

impl From<MemberStatusChange> for MembershipStatus {
    fn from(status: MemberStatusChange) -> MembershipStatus {
        match status {
            MemberStatusChange::Active => MembershipStatus::Active,
            MemberStatusChange::Suspended => MembershipStatus::Suspended,
        }
    }
}

/// For `#[serde(default, deserialize_with = "domain::present")]` on an `Option` field: absent
/// is `None`, and an explicit `null` is refused (422 naming the field) rather than read as
/// absent, where null cannot mean anything (a membership's role cannot be cleared).
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    match Option::<T>::deserialize(deserializer)? {
        Some(value) => Ok(Some(value)),
        None => Err(serde::de::Error::custom(
            "cannot be null: leave the field out to keep its value",
        )),
    }
}

/// A new organization: the body of `POST /organizations` and the arguments of
/// `roster.create_organization`, in its order. Unknown fields are refused.
//  The database checks the values; the schemas of `crate::constraints` say what it accepts.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrganization {
    #[schema(schema_with = constraints::name)]
    pub name: String,
    #[schema(schema_with = constraints::slug)]
    pub slug: String,
    #[schema(schema_with = constraints::description)]
    pub description: Option<String>,
    #[schema(schema_with = constraints::domain)]
    pub domain: Option<String>,
    #[schema(schema_with = constraints::billing_email)]
    pub billing_email: Option<String>,
    #[schema(schema_with = constraints::billing_address)]
    pub billing_address: Option<Value>,
    #[schema(schema_with = constraints::stripe_customer_id)]
    pub stripe_customer_id: Option<String>,
    #[schema(schema_with = constraints::metadata_or_null)]
    pub metadata: Option<Value>,
}

/// Changes to an organization: absent keeps, null clears a nullable field, unknown keys are
/// refused.
//  For the API document only, so never built: the handler passes the JSON through and
//  `roster.update_organization` applies it.
#[allow(dead_code)]
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganizationChanges {
    #[schema(required = false, schema_with = constraints::name)]
    name: String,
    #[schema(required = false, schema_with = constraints::slug)]
    slug: String,
    #[schema(schema_with = constraints::description)]
    description: Option<String>,
    #[schema(schema_with = constraints::domain)]
    domain: Option<String>,
    #[schema(schema_with = constraints::billing_email)]
    billing_email: Option<String>,
    #[schema(schema_with = constraints::billing_address)]
    billing_address: Option<Value>,
    #[schema(schema_with = constraints::stripe_customer_id)]
    stripe_customer_id: Option<String>,
    #[schema(required = false, schema_with = constraints::metadata)]
    metadata: Value,
}

/// `?limit=&offset=` as sent, still text, so that [`Page::parse`] can name the parameter
/// that is not a number.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1 to 200 (default 50).
    #[param(schema_with = constraints::limit)]
    pub limit: Option<String>,
    /// Items to skip (default 0).
    #[param(schema_with = constraints::offset)]
    pub offset: Option<String>,
}

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: i32,
    pub offset: i32,
}

impl Page {
    pub const DEFAULT_LIMIT: i64 = 50;
    pub const MAX_LIMIT: i64 = 200;

    pub fn parse(params: &PageParams) -> Result<Page, ApiError> {
        let limit = integer("limit", params.limit.as_deref())?.unwrap_or(Self::DEFAULT_LIMIT);
        if !(1..=Self::MAX_LIMIT).contains(&limit) {
            return Err(ApiError::Invalid(format!(
                "limit must be between 1 and {}, got {limit}",
                Self::MAX_LIMIT
            )));
        }
        let offset = integer("offset", params.offset.as_deref())?.unwrap_or(0);
        let offset = i32::try_from(offset)
            .ok()
            .filter(|o| *o >= 0)
            .ok_or_else(|| {
                ApiError::Invalid(format!(
                    "offset must be between 0 and {}, got {offset}",
                    i32::MAX
                ))
            })?;
        Ok(Page {
            limit: limit as i32,
            offset,
        })
    }

    /// One more row than the page holds, so that `has_more` needs no count query.
    pub fn fetch_limit(self) -> i32 {
        self.limit + 1
    }
}

/// A query parameter that must be a whole number when present: 400 otherwise.
fn integer(name: &str, text: Option<&str>) -> Result<Option<i64>, ApiError> {
    text.map(|text| {
        text.trim().parse::<i64>().map_err(|_| {
            ApiError::BadRequest(format!(
                "query parameter {name} must be a whole number, got {text:?}"
            ))
        })
    })
    .transpose()
}

/// A page of results, as every list endpoint returns it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Paginated<T> {
    pub data: Vec<T>,
    /// Whether another page follows.
    pub has_more: bool,
}

impl<T> Paginated<T> {
    /// Builds a page from rows fetched with [`Page::fetch_limit`].
    pub fn from_rows(mut rows: Vec<T>, page: Page) -> Paginated<T> {
        let has_more = rows.len() > page.limit as usize;
        rows.truncate(page.limit as usize);
        Paginated {
            data: rows,
            has_more,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(limit: Option<i64>, offset: Option<i64>) -> PageParams {
        PageParams {
            limit: limit.map(|n| n.to_string()),
            offset: offset.map(|n| n.to_string()),
        }
    }

    #[test]
    fn page_rejects_non_numbers_naming_the_parameter() {
        let sent = PageParams {
            limit: Some("abc".into()),
            offset: None,
        };
        match Page::parse(&sent) {
            Err(ApiError::BadRequest(message)) => assert!(message.contains("limit"), "{message}"),
            other => panic!("limit=abc should be a 400, got {other:?}"),
        }
    }

    #[test]
    fn page_defaults_to_fifty_from_the_start() {
        assert_eq!(
            Page::parse(&params(None, None)).unwrap(),
            Page {
                limit: 50,
                offset: 0
            }
        );
    }

    #[test]
    fn page_accepts_its_bounds() {
        for (limit, offset) in [(1, 0), (200, 0), (20, 1_000_000)] {
            let page = Page::parse(&params(Some(limit), Some(offset)));
            assert!(
                page.is_ok(),
                "limit {limit} offset {offset} should be accepted"
            );
        }
    }

    #[test]
    fn page_rejects_out_of_range_values() {
        let cases = [
            (Some(0), None, "limit 0"),
            (Some(201), None, "limit above 200"),
            (Some(-5), None, "negative limit"),
            (None, Some(-1), "negative offset"),
            (None, Some(i64::from(i32::MAX) + 1), "offset beyond i32"),
        ];
        for (limit, offset, description) in cases {
            let result = Page::parse(&params(limit, offset));
            assert!(
                matches!(result, Err(ApiError::Invalid(_))),
                "{description} should be rejected"
            );
        }
    }

    #[test]
    fn paginated_reports_has_more_from_the_extra_row() {
        let page = Page {
            limit: 2,
            offset: 0,
        };
        let full = Paginated::from_rows(vec![1, 2, 3], page);
        assert_eq!(full.data, vec![1, 2]);
        assert!(full.has_more);
        let last = Paginated::from_rows(vec![1, 2], page);
        assert!(!last.has_more);
    }

    #[test]
    fn json_names_are_the_database_texts() {
        for role in [Role::Owner, Role::Admin, Role::Member] {
            assert_eq!(serde_json::to_value(role).unwrap(), role.as_str());
        }
        for status in [
            MembershipStatus::Invited,
            MembershipStatus::Active,
            MembershipStatus::Suspended,
        ] {
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
    }

    #[test]
    fn roles_and_statuses_parse_from_snake_case_only() {
        assert_eq!(
            serde_json::from_str::<Role>("\"admin\"").unwrap(),
            Role::Admin
        );
        assert!(serde_json::from_str::<Role>("\"Admin\"").is_err());
        assert!(serde_json::from_str::<Role>("\"superuser\"").is_err());
        assert_eq!(
            serde_json::from_str::<MembershipStatus>("\"suspended\"").unwrap(),
            MembershipStatus::Suspended
        );
    }
}
