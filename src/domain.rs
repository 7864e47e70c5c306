//! Small types parsed at the edge, so that handlers and the `db` module never see raw strings
//! where a closed set is meant. The database's constraints remain the final guard.

use std::error::Error;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_postgres::types::{FromSql, Type};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

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

/// A role's key: a built-in role (`owner`, `admin`, `member`) or one an organization or tenant
/// defined. An open set: the database decides which keys exist; this type only refuses what
/// can never be a key (`^[a-z][a-z0-9_-]{1,49}$`), and reads any key the database holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, pattern = "^[a-z][a-z0-9_-]{1,49}$", example = "admin")]
pub struct RoleKey(String);

impl RoleKey {
    pub const MAX_LEN: usize = 50;

    pub fn parse(text: &str) -> Result<RoleKey, String> {
        let mut chars = text.chars();
        let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && (2..=Self::MAX_LEN).contains(&text.len())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        match valid {
            true => Ok(RoleKey(text.to_owned())),
            false => Err(format!(
                "invalid role key {text:?}: 2 to 50 characters of a-z, 0-9, _ and -, starting with a letter"
            )),
        }
    }

    /// The role a new member gets by default.
    pub fn member() -> RoleKey {
        RoleKey("member".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for RoleKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<RoleKey, D::Error> {
        let text = String::deserialize(deserializer)?;
        RoleKey::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl<'a> FromSql<'a> for RoleKey {
    /// Whatever key the database holds: it is the authority on which roles exist.
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        <String as FromSql>::from_sql(ty, raw).map(RoleKey)
    }

    fn accepts(ty: &Type) -> bool {
        <String as FromSql>::accepts(ty)
    }
}

text_enum!(
    /// A membership's status: `invited` until accepted, then `active` or `suspended`.
    MembershipStatus, "membership status", {
        Invited => "invited",
        Active => "active",
        Suspended => "suspended",
    }
);

text_enum!(
    /// An invitation's status as of now: `pending` until accepted, declined, revoked or past
    /// its `expires_at` (`expired`).
    InvitationStatus, "invitation status", {
        Pending => "pending",
        Accepted => "accepted",
        Declined => "declined",
        Revoked => "revoked",
        Expired => "expired",
    }
);

impl InvitationStatus {
    pub const ALL: [InvitationStatus; 5] = [
        InvitationStatus::Pending,
        InvitationStatus::Accepted,
        InvitationStatus::Declined,
        InvitationStatus::Revoked,
        InvitationStatus::Expired,
    ];
}

text_enum!(
    /// What became of one item of a bulk invitation.
    BulkInviteResult, "bulk invitation result", {
        Invited => "invited",
        AlreadyMember => "already_member",
        AlreadyInvited => "already_invited",
        Invalid => "invalid",
    }
);

text_enum!(
    /// A domain's status: `verified` once the DNS check was recorded.
    DomainStatus, "domain status", {
        Pending => "pending",
        Verified => "verified",
    }
);

text_enum!(
    /// What a verified domain lets the tenant's users of that address domain do: nothing,
    /// see the organization suggested, or join it themselves.
    DomainPolicy, "domain policy", {
        None => "none",
        Suggest => "suggest",
        AutoJoin => "auto_join",
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

/// For `#[serde(default, deserialize_with = "domain::nullable")]` on an `Option<Option<_>>`
/// field: absent is `None` (keep), `null` is `Some(None)` (clear), a value `Some(Some(_))`.
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
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
    #[serde(default, deserialize_with = "bounded_json")]
    pub billing_address: Option<Value>,
    #[schema(schema_with = constraints::stripe_customer_id)]
    pub stripe_customer_id: Option<String>,
    #[schema(schema_with = constraints::metadata_or_null)]
    #[serde(default, deserialize_with = "bounded_json")]
    pub metadata: Option<Value>,
}

/// The body of `PATCH /organizations/{id}`, passed through as JSON (the SQL function owns the
/// partial-update semantics), its numbers checked as in [`NewOrganization`].
#[derive(Debug, Deserialize)]
pub struct OrganizationChanges(#[serde(deserialize_with = "bounded_json")] pub Value);

/// The exponents a JSON number may be written with in client JSON: f64's range, subnormals
/// included (4.9e-324 to 1.8e308), what was accepted before numbers were passed through exactly.
pub const MAX_JSON_EXPONENT: i64 = 308;
pub const MIN_JSON_EXPONENT: i64 = -324;
/// PostgreSQL's numeric: at most this many digits after the point, and before it.
const NUMERIC_MAX_DECIMALS: i64 = 16_383;
const NUMERIC_MAX_INTEGER_DIGITS: i64 = 131_072;

/// Client JSON goes to jsonb with its numbers exact (serde_json's `arbitrary_precision`), and
/// jsonb prints numbers in full: `1e131071`, 8 bytes in a request, would come back as 131072
/// digits in every read. So a number written with an exponent outside f64's range is
/// refused, wherever it is in the value (a number written out in full costs what it weighs), and
/// so is one that numeric cannot hold, naming where it is rather than failing in the database.
fn bounded_json<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + JsonRef,
{
    let value = T::deserialize(deserializer)?;
    if let Some(json) = value.json() {
        check_numbers(json, &mut String::new()).map_err(serde::de::Error::custom)?;
    }
    Ok(value)
}

/// `Value` and `Option<Value>`, for [`bounded_json`].
trait JsonRef {
    fn json(&self) -> Option<&Value>;
}

impl JsonRef for Value {
    fn json(&self) -> Option<&Value> {
        Some(self)
    }
}

impl JsonRef for Option<Value> {
    fn json(&self) -> Option<&Value> {
        self.as_ref()
    }
}

fn check_numbers(value: &Value, path: &mut String) -> Result<(), String> {
    match value {
        Value::Number(number) => match number_problem(&number.to_string()) {
            None => Ok(()),
            Some(problem) if path.is_empty() => Err(problem),
            Some(problem) => Err(format!("at {path}: {problem}")),
        },
        Value::Array(items) => items.iter().enumerate().try_for_each(|(i, item)| {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            let result = check_numbers(item, path);
            path.truncate(len);
            result
        }),
        Value::Object(members) => members.iter().try_for_each(|(key, item)| {
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(key);
            let result = check_numbers(item, path);
            path.truncate(len);
            result
        }),
        _ => Ok(()),
    }
}

/// Why a JSON number (its text, as serde_json read it) should not go to jsonb, if it should not.
fn number_problem(text: &str) -> Option<String> {
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, Some(exponent)),
        None => (text, None),
    };
    let exponent = match exponent.map(|text| (text, text.parse::<i64>())) {
        None => 0,
        Some((_, Ok(e))) if (MIN_JSON_EXPONENT..=MAX_JSON_EXPONENT).contains(&e) => e,
        Some((_, Ok(e))) => {
            return Some(format!(
                "number exponent {e} is outside {MIN_JSON_EXPONENT}..{MAX_JSON_EXPONENT} (f64's range)"
            ));
        }
        Some((text, Err(_))) => {
            let shown: String = text.chars().take(12).collect();
            return Some(format!(
                "number exponent {shown}... is outside {MIN_JSON_EXPONENT}..{MAX_JSON_EXPONENT} (f64's range)"
            ));
        }
    };
    let mantissa = mantissa.trim_start_matches('-');
    let (integer, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if fraction.len() as i64 - exponent > NUMERIC_MAX_DECIMALS {
        return Some(format!(
            "number with more than {NUMERIC_MAX_DECIMALS} decimals (PostgreSQL's numeric limit)"
        ));
    }
    if integer.trim_start_matches('0').len() as i64 + exponent > NUMERIC_MAX_INTEGER_DIGITS {
        return Some(format!(
            "number with more than {NUMERIC_MAX_INTEGER_DIGITS} digits (PostgreSQL's numeric limit)"
        ));
    }
    None
}

/// [`OrganizationChanges`] as the API document shows it. Changes to an organization: absent
/// keeps, null clears a nullable field, unknown keys are refused.
//  For the API document only, so never built: the handler passes the JSON through and
//  `roster.update_organization` applies it.
#[allow(dead_code)]
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = OrganizationChanges)]
pub struct OrganizationChangesSchema {
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
    #[schema(schema_with = constraints::seat_limit)]
    seat_limit: Option<i32>,
}

/// A resource of an organization: its type (the resource part of permission names, `model`)
/// and its id in the service that owns it, as the database accepts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Resource<'a> {
    pub kind: &'a str,
    pub id: &'a str,
}

impl<'a> Resource<'a> {
    pub const TYPE_PATTERN: &'static str = "^[a-z][a-z0-9_-]*$";
    pub const TYPE_MAX: usize = 100;
    pub const ID_MAX: usize = 255;

    /// Both or neither: `fields` names the pair in errors (`checks[0].resource_type`, ...).
    pub fn parse_pair(
        kind: Option<&'a str>,
        id: Option<&'a str>,
        fields: (&str, &str),
    ) -> Result<Option<Resource<'a>>, ApiError> {
        match (kind, id) {
            (None, None) => Ok(None),
            (Some(kind), Some(id)) => Resource::parse(kind, id, fields).map(Some),
            _ => Err(ApiError::Invalid(format!(
                "{} and {}: give both, or neither",
                fields.0, fields.1
            ))),
        }
    }

    pub fn parse(
        kind: &'a str,
        id: &'a str,
        fields: (&str, &str),
    ) -> Result<Resource<'a>, ApiError> {
        let mut chars = kind.chars();
        let well_formed = chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !well_formed || kind.len() > Self::TYPE_MAX {
            return Err(ApiError::Invalid(format!(
                "{}: a resource type is 1 to {} characters of a-z, 0-9, _ and -, starting with a letter, got {kind:?}",
                fields.0,
                Self::TYPE_MAX
            )));
        }
        let length = id.chars().count();
        if length == 0 || length > Self::ID_MAX || id.contains('\0') {
            return Err(ApiError::Invalid(format!(
                "{}: a resource id is 1 to {} characters, none of them NUL, got {length}",
                fields.1,
                Self::ID_MAX
            )));
        }
        Ok(Resource { kind, id })
    }
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

/// `?limit=&offset=&after=` of a list that also pages by cursor (keyset): `after` is the
/// `next_after` of the previous page.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CursorPageParams {
    /// Items per page, 1 to 200 (default 50).
    #[param(schema_with = constraints::limit)]
    pub limit: Option<String>,
    /// Items to skip (default 0; at most 10000, and not with `after`).
    #[param(schema_with = constraints::cursor_offset)]
    pub offset: Option<String>,
    /// The previous page's `next_after`: continue after it, at the same cost at any depth.
    #[param(value_type = Option<Uuid>, format = Uuid)]
    pub after: Option<String>,
}

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: i32,
    pub offset: i32,
    /// The last item of the previous page, for lists paged by cursor.
    pub after: Option<Uuid>,
}

impl Page {
    pub const DEFAULT_LIMIT: i64 = 50;
    pub const MAX_LIMIT: i64 = 200;
    /// Lists paged by cursor page by offset no deeper than this (`roster.list_members`).
    pub const MAX_CURSOR_OFFSET: i32 = 10_000;

    pub fn parse(params: &PageParams) -> Result<Page, ApiError> {
        Page::parse_parts(params.limit.as_deref(), params.offset.as_deref())
    }

    pub fn parse_with_cursor(params: &CursorPageParams) -> Result<Page, ApiError> {
        let page = Page::parse_parts(params.limit.as_deref(), params.offset.as_deref())?;
        if page.offset > Self::MAX_CURSOR_OFFSET {
            return Err(ApiError::Invalid(format!(
                "offset must be at most {}, got {}: page with after (the previous page's next_after) instead",
                Self::MAX_CURSOR_OFFSET,
                page.offset
            )));
        }
        let after = params
            .after
            .as_deref()
            .map(|text| {
                text.trim().parse::<Uuid>().map_err(|_| {
                    ApiError::BadRequest(format!(
                        "query parameter after must be a next_after value (a uuid), got {text:?}"
                    ))
                })
            })
            .transpose()?;
        Ok(Page { after, ..page })
    }

    /// `?limit=` alone, for lists paged by a cursor only.
    pub fn parse_limit(limit: Option<&str>) -> Result<i32, ApiError> {
        let limit = integer("limit", limit)?.unwrap_or(Self::DEFAULT_LIMIT);
        if !(1..=Self::MAX_LIMIT).contains(&limit) {
            return Err(ApiError::Invalid(format!(
                "limit must be between 1 and {}, got {limit}",
                Self::MAX_LIMIT
            )));
        }
        Ok(limit as i32)
    }

    fn parse_parts(limit: Option<&str>, offset: Option<&str>) -> Result<Page, ApiError> {
        let limit = Page::parse_limit(limit)?;
        let offset = integer("offset", offset)?.unwrap_or(0);
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
            limit,
            offset,
            after: None,
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
    /// Lists paged by cursor: the `after` of the next page, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<Uuid>,
}

impl<T> Paginated<T> {
    /// Builds a page from rows fetched with [`Page::fetch_limit`].
    pub fn from_rows(mut rows: Vec<T>, page: Page) -> Paginated<T> {
        let has_more = rows.len() > page.limit as usize;
        rows.truncate(page.limit as usize);
        Paginated {
            data: rows,
            has_more,
            next_after: None,
        }
    }

    /// The same, for a list paged by cursor: `cursor` names an item.
    pub fn from_rows_with_cursor(
        rows: Vec<T>,
        page: Page,
        cursor: impl Fn(&T) -> Uuid,
    ) -> Paginated<T> {
        let mut paginated = Paginated::from_rows(rows, page);
        if paginated.has_more {
            paginated.next_after = paginated.data.last().map(cursor);
        }
        paginated
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
                offset: 0,
                after: None,
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
            after: None,
        };
        let full = Paginated::from_rows(vec![1, 2, 3], page);
        assert_eq!(full.data, vec![1, 2]);
        assert!(full.has_more);
        let last = Paginated::from_rows(vec![1, 2], page);
        assert!(!last.has_more);
    }

    #[test]
    fn client_json_numbers_keep_their_digits_and_bounded_exponents() {
        let body = r#"{"name": "A", "slug": "a", "metadata": {"n": 12345678901234567890123, "d": 0.1000000000000000055511151231257827, "e": 1E+308, "f": -2.5e-308}}"#;
        let new: NewOrganization = serde_json::from_str(body).expect("within bounds");
        let metadata = new.metadata.expect("metadata").to_string();
        for digits in [
            "12345678901234567890123",
            "0.1000000000000000055511151231257827",
        ] {
            assert!(metadata.contains(digits), "{digits} kept in {metadata}");
        }
        let decimals = |n: usize| {
            format!(
                r#"{{"name": "A", "slug": "a", "metadata": {{"n": 0.{}1}}}}"#,
                "0".repeat(n - 1)
            )
        };
        serde_json::from_str::<NewOrganization>(&decimals(16_383)).expect("16383 decimals fit");
        let too_many_decimals = decimals(16_384);
        for (body, named) in [
            (
                r#"{"name": "A", "slug": "a", "metadata": {"n": 1e309}}"#,
                "at n: number exponent 309 is",
            ),
            (
                too_many_decimals.as_str(),
                "at n: number with more than 16383 decimals",
            ),
            (
                r#"{"name": "A", "slug": "a", "billing_address": {"l": [0, {"x": 1E-400}]}}"#,
                "at l[1].x: number exponent -400",
            ),
            (
                r#"{"name": "A", "slug": "a", "metadata": {"n": 1e99999999999999999999999}}"#,
                "... is outside -324..308",
            ),
        ] {
            let error = serde_json::from_str::<NewOrganization>(body)
                .expect_err(body)
                .to_string();
            assert!(
                error.contains(named),
                "{body}: {error} should say {named:?}"
            );
        }
        let error = serde_json::from_str::<OrganizationChanges>(r#"{"metadata": {"a": [1e400]}}"#)
            .expect_err("a PATCH body is checked too")
            .to_string();
        assert!(error.contains("at metadata.a[0]: "), "{error}");
    }

    #[test]
    fn json_names_are_the_database_texts() {
        for status in [
            MembershipStatus::Invited,
            MembershipStatus::Active,
            MembershipStatus::Suspended,
        ] {
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
    }

    #[test]
    fn role_keys_are_an_open_set_of_well_formed_keys() {
        let accepted = ["owner", "admin", "member", "billing-admin", "qa_lead", "r2"];
        for key in accepted {
            let parsed: RoleKey = serde_json::from_str(&format!("{key:?}")).unwrap();
            assert_eq!(parsed.as_str(), key, "{key} should be a role key");
        }
        let refused = [
            "",
            "a",
            "Admin",
            "2fa",
            "-x",
            "has space",
            "dot.ted",
            "\u{e9}t\u{e9}",
        ];
        for key in refused {
            assert!(RoleKey::parse(key).is_err(), "{key:?} should be refused");
        }
        assert!(
            RoleKey::parse(&"a".repeat(50)).is_ok(),
            "50 characters are allowed"
        );
        assert!(RoleKey::parse(&"a".repeat(51)).is_err(), "51 are not");
    }

    #[test]
    fn statuses_parse_from_snake_case_only() {
        assert_eq!(
            serde_json::from_str::<MembershipStatus>("\"suspended\"").unwrap(),
            MembershipStatus::Suspended
        );
    }
}
