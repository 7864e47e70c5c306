//! Verified domains and joining: rows and wrappers of `roster.add_domain` and friends.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::Row;
use utoipa::ToSchema;
use uuid::Uuid;

use super::members::Membership;
use super::{map_rows, query, write_one, Client};
use crate::domain::{DomainPolicy, DomainStatus, RoleKey};
use crate::error::ApiError;

/// An email domain an organization claims.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Domain {
    pub id: Uuid,
    pub organization_id: Uuid,
    /// A lowercase hostname, e.g. `acme.com`.
    pub domain: String,
    pub status: DomainStatus,
    /// What to publish in a DNS TXT record of the domain for the product to check before the
    /// verification is recorded.
    pub verification_token: String,
    pub policy: DomainPolicy,
    /// The role people joining through this domain get.
    pub join_role: RoleKey,
    pub verified_at: Option<DateTime<Utc>>,
    /// The tenant admin who recorded the verification; null when the provisioning role did.
    pub verified_by_user_id: Option<Uuid>,
    pub created_by_user_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Domain {
    fn from_row(row: &Row) -> Result<Domain, tokio_postgres::Error> {
        Ok(Domain {
            id: row.try_get("id")?,
            organization_id: row.try_get("organization_id")?,
            domain: row.try_get("domain")?,
            status: row.try_get("status")?,
            verification_token: row.try_get("verification_token")?,
            policy: row.try_get("policy")?,
            join_role: row.try_get("join_role")?,
            verified_at: row.try_get("verified_at")?,
            verified_by_user_id: row.try_get("verified_by_user_id")?,
            created_by_user_id: row.try_get("created_by_user_id")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

/// An organization the caller's email domain lets it join (`auto_join`) or suggests to it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SuggestedOrganization {
    pub organization_id: Uuid,
    pub name: String,
    pub slug: String,
    pub domain: String,
    /// `auto_join`: `POST /organizations/{org_id}/join`; `suggest`: ask for an invitation.
    pub policy: DomainPolicy,
    pub join_role: RoleKey,
}

impl SuggestedOrganization {
    fn from_row(row: &Row) -> Result<SuggestedOrganization, tokio_postgres::Error> {
        Ok(SuggestedOrganization {
            organization_id: row.try_get("organization_id")?,
            name: row.try_get("name")?,
            slug: row.try_get("slug")?,
            domain: row.try_get("domain")?,
            policy: row.try_get("policy")?,
            join_role: row.try_get("join_role")?,
        })
    }
}

pub async fn add_domain(
    client: &Client,
    actor: Uuid,
    org: Uuid,
    domain: &str,
    policy: DomainPolicy,
    join_role: &RoleKey,
) -> Result<Domain, ApiError> {
    let row = write_one(
        client,
        "select *, pg_current_xact_id()::text as written_xid from roster.add_domain($1, $2, $3, $4, $5)",
        &[&actor, &org, &domain, &policy.as_str(), &join_role.as_str()],
    )
    .await?;
    Ok(Domain::from_row(&row)?)
}

pub async fn verify_domain(
    client: &Client,
    actor: Uuid,
    org: Uuid,
    domain: &str,
) -> Result<Domain, ApiError> {
    let row = write_one(
        client,
        "select *, pg_current_xact_id()::text as written_xid from roster.verify_domain($1, $2, $3)",
        &[&actor, &org, &domain],
    )
    .await?;
    Ok(Domain::from_row(&row)?)
}

/// `changes` is passed through as JSON: the SQL function owns the partial update.
pub async fn update_domain(
    client: &Client,
    actor: Uuid,
    org: Uuid,
    domain: &str,
    changes: &Value,
) -> Result<Domain, ApiError> {
    let row = write_one(
        client,
        "select *, pg_current_xact_id()::text as written_xid from roster.update_domain($1, $2, $3, $4)",
        &[&actor, &org, &domain, changes],
    )
    .await?;
    Ok(Domain::from_row(&row)?)
}

pub async fn remove_domain(
    client: &Client,
    actor: Uuid,
    org: Uuid,
    domain: &str,
) -> Result<(), ApiError> {
    write_one(
        client,
        "select roster.remove_domain($1, $2, $3), pg_current_xact_id()::text as written_xid",
        &[&actor, &org, &domain],
    )
    .await?;
    Ok(())
}

pub async fn list_domains(
    client: &Client,
    actor: Uuid,
    org: Uuid,
) -> Result<Vec<Domain>, ApiError> {
    let rows = query(
        client,
        "select * from roster.list_domains($1, $2)",
        &[&actor, &org],
    )
    .await?;
    map_rows(&rows, Domain::from_row)
}

pub async fn list_suggested_organizations(
    client: &Client,
    actor: Uuid,
) -> Result<Vec<SuggestedOrganization>, ApiError> {
    let rows = query(
        client,
        "select * from roster.list_suggested_organizations($1)",
        &[&actor],
    )
    .await?;
    map_rows(&rows, SuggestedOrganization::from_row)
}

pub async fn join_organization(
    client: &Client,
    actor: Uuid,
    org: Uuid,
) -> Result<Membership, ApiError> {
    let row = write_one(
        client,
        "select *, pg_current_xact_id()::text as written_xid from roster.join_organization($1, $2)",
        &[&actor, &org],
    )
    .await?;
    Ok(Membership::from_row(&row)?)
}
