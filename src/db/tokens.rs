//! `roster.exchange_token`: the organization an access token is for, and its claims.

use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use super::authz::Access;
use super::{query_one, Client};
use crate::error::ApiError;

/// What an exchange decided: the organization (None: the user chose none and has several,
/// listed in `choices`) and the user's access there, with the versions it was read at.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub tenant: Uuid,
    pub organization: Option<Uuid>,
    pub organization_name: Option<String>,
    /// `[{id, slug, name, role}]` when no organization was chosen.
    pub choices: Option<Value>,
    pub access: Access,
}

impl Exchange {
    fn from_row(row: &Row) -> Result<Exchange, tokio_postgres::Error> {
        let tenant: Option<Uuid> = row.try_get("exchange_tenant_id")?;
        Ok(Exchange {
            tenant: tenant.unwrap_or_default(),
            organization: row.try_get("exchange_organization_id")?,
            organization_name: row.try_get("exchange_organization_name")?,
            choices: row.try_get("exchange_choices")?,
            access: Access::from_row(row, "access_")?,
        })
    }
}

/// `roster.exchange_token`, and `roster.member_access` of its choice in the same statement
/// (of no organization for an unscoped token: the identity's versions alone).
pub async fn exchange_token(
    client: &Client,
    user: Uuid,
    organization: Option<Uuid>,
) -> Result<Exchange, ApiError> {
    let row = query_one(
        client,
        concat!(
            "select x.tenant_id as exchange_tenant_id, x.organization_id as exchange_organization_id, \
                    x.organization_name as exchange_organization_name, x.choices as exchange_choices, ",
            access_columns!(),
            " from roster.exchange_token($1, $2) x \
             cross join lateral roster.member_access($1, coalesce(x.organization_id, \
                                                             '00000000-0000-0000-0000-000000000000'::uuid)) a"
        ),
        &[&user, &organization],
    )
    .await?;
    Ok(Exchange::from_row(&row)?)
}
