//! The reads that the cache serves: each asks Redis once for the caller's access (or identity)
//! and the response, and when either is missing makes one database round trip that returns
//! both, then stores them. Without a cache the same single round trip answers.
//!
//! Decisions taken from a cached entry follow the database's order of checks (live actor, then
//! visibility, then permission) and use the permission set the database computed: no rule is
//! decided here that the database did not.

use serde::Serialize;
use uuid::Uuid;

use crate::cache::{keys, Cache, Deps, Lookup};
use crate::db::authz::{self, Access, Identity};
use crate::db::{self, members, organizations};
use crate::domain::{Page, Paginated};
use crate::error::ApiError;
use crate::state::AppState;

impl Identity {
    /// RNACT's answer, from a cached or fresh identity.
    pub fn require_live(&self) -> Result<(), ApiError> {
        match self.user_live {
            true => Ok(()),
            false => Err(ApiError::inactive_user(
                "the token's user does not exist or has been deleted".into(),
            )),
        }
    }

    fn deps(&self, user: Uuid) -> Deps {
        Deps::new().user(user, self.user_version)
    }
}

impl Access {
    /// The answer of `roster._require_permission` for this access: 401, then 404 (the caller
    /// must not learn that an organization it may not see exists), then 403.
    pub fn require(&self, org: Uuid, permission: &str) -> Result<(), ApiError> {
        self.identity.require_live()?;
        if self.permissions.is_empty() {
            return Err(ApiError::organization_not_found(org));
        }
        if !self.allows(permission) {
            let role = self.role.map_or("(none)", |r| r.as_str());
            return Err(ApiError::forbidden(format!(
                "role {role} lacks permission {permission} in organization {org}"
            )));
        }
        Ok(())
    }

    pub fn allows(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
    }

    fn deps(&self, user: Uuid, org: Uuid) -> Deps {
        Deps::new()
            .user(user, self.identity.user_version)
            .organization(org, self.org_version)
    }
}

/// `GET /organizations/{org}`: the organization as JSON.
pub async fn organization(state: &AppState, caller: Uuid, org: Uuid) -> Result<Vec<u8>, ApiError> {
    org_scoped_read(
        state,
        caller,
        org,
        "organization:read",
        keys::organization(org),
        |client| async move { organizations::get_organization_with_access(&client, caller, org).await },
    )
    .await
}

/// `GET /organizations/{org}/members`: a page of members as JSON.
pub async fn members(
    state: &AppState,
    caller: Uuid,
    org: Uuid,
    page: Page,
) -> Result<Vec<u8>, ApiError> {
    let key = keys::members(org, page.limit, page.offset);
    org_scoped_read(
        state,
        caller,
        org,
        "members:read",
        key,
        |client| async move {
            let (access, rows) =
                members::list_members_with_access(&client, caller, org, page).await?;
            Ok((access, Some(Paginated::from_rows(rows, page))))
        },
    )
    .await
}

/// `GET /organizations`: the caller's organizations as JSON. The cached page depends on the
/// caller (its memberships) and on every organization listed (names, member counts).
pub async fn user_organizations(
    state: &AppState,
    caller: Uuid,
    page: Page,
) -> Result<Vec<u8>, ApiError> {
    let identity_key = keys::identity(caller);
    let body_key = keys::user_organizations(caller, page.limit, page.offset);
    let lookup = lookup(
        state.cache.as_deref(),
        &[identity_key.clone(), body_key.clone()],
    )
    .await;
    if let Some(identity) = decode::<Identity>(&lookup.values[0]) {
        identity.require_live()?;
    }
    if let Some(body) = &lookup.values[1] {
        return Ok(body.clone());
    }
    let client = state.db.client().await?;
    let (identity, rows) =
        organizations::list_organizations_with_identity(&client, caller, page).await?;
    drop(client);
    let mut entries = vec![(identity_key, identity.deps(caller), encode(&identity)?)];
    let result = identity.require_live().and_then(|()| {
        let deps = rows
            .iter()
            .fold(identity.deps(caller), |deps, (row, version)| {
                deps.organization(row.organization.id, *version)
            });
        let rows = rows.into_iter().map(|(row, _)| row).collect();
        let body = encode(&Paginated::from_rows(rows, page))?;
        entries.push((body_key, deps, body.clone()));
        Ok(body)
    });
    store(state.cache.as_deref(), &lookup, entries).await;
    result
}

/// The caller's access to each organization, in order, for `/me` and `/authz/check`: from the
/// cache, with one database round trip for all the misses.
pub async fn access(
    state: &AppState,
    caller: Uuid,
    orgs: &[Uuid],
) -> Result<Vec<Access>, ApiError> {
    let keys: Vec<String> = orgs.iter().map(|org| keys::access(*org, caller)).collect();
    let lookup = lookup(state.cache.as_deref(), &keys).await;
    let mut answers: Vec<Option<Access>> = lookup.values.iter().map(decode).collect();
    let missing: Vec<Uuid> = orgs
        .iter()
        .zip(&answers)
        .filter(|(_, answer)| answer.is_none())
        .map(|(org, _)| *org)
        .collect();
    if !missing.is_empty() {
        let client = state.db.client().await?;
        let fetched = authz::member_access(&client, caller, &missing).await?;
        drop(client);
        let mut entries = Vec::with_capacity(fetched.len());
        for (org, access) in fetched {
            entries.push((
                keys::access(org, caller),
                access.deps(caller, org),
                encode(&access)?,
            ));
            for (slot, _) in answers
                .iter_mut()
                .zip(orgs)
                .filter(|(a, o)| a.is_none() && **o == org)
            {
                *slot = Some(access.clone());
            }
        }
        store(state.cache.as_deref(), &lookup, entries).await;
    }
    let answers: Vec<Access> = answers
        .into_iter()
        .map(|a| {
            a.ok_or_else(|| ApiError::Internal("member_access skipped an organization".into()))
        })
        .collect::<Result<_, _>>()?;
    if let Some(first) = answers.first() {
        first.identity.require_live()?;
    }
    Ok(answers)
}

/// The shared shape of organization-scoped reads: access and body from the cache when both are
/// fresh (or a refusal from the cached access alone); otherwise one statement for both.
async fn org_scoped_read<T, F, Fut>(
    state: &AppState,
    caller: Uuid,
    org: Uuid,
    permission: &str,
    body_key: String,
    fetch: F,
) -> Result<Vec<u8>, ApiError>
where
    T: Serialize,
    F: FnOnce(db::Client) -> Fut,
    Fut: std::future::Future<Output = Result<(Access, Option<T>), ApiError>>,
{
    let access_key = keys::access(org, caller);
    let lookup = lookup(
        state.cache.as_deref(),
        &[access_key.clone(), body_key.clone()],
    )
    .await;
    if let Some(access) = decode::<Access>(&lookup.values[0]) {
        access.require(org, permission)?;
        if let Some(body) = &lookup.values[1] {
            return Ok(body.clone());
        }
    }
    let (access, data) = fetch(state.db.client().await?).await?;
    let mut entries = vec![(access_key, access.deps(caller, org), encode(&access)?)];
    let result = access.require(org, permission).and_then(|()| {
        let data =
            data.ok_or_else(|| ApiError::Internal("access granted but no data returned".into()))?;
        let body = encode(&data)?;
        // Shared by every reader: it depends on the organization alone.
        entries.push((
            body_key,
            Deps::new().organization(org, access.org_version),
            body.clone(),
        ));
        Ok(body)
    });
    store(state.cache.as_deref(), &lookup, entries).await;
    result
}

async fn lookup(cache: Option<&Cache>, keys: &[String]) -> Lookup {
    match cache {
        Some(cache) => cache.lookup(keys).await,
        None => Lookup::misses(keys.len()),
    }
}

async fn store(cache: Option<&Cache>, lookup: &Lookup, entries: Vec<(String, Deps, Vec<u8>)>) {
    if let Some(cache) = cache {
        cache.store(lookup, entries).await;
    }
}

/// An entry this version cannot read is a miss, not an error.
fn decode<T: serde::de::DeserializeOwned>(value: &Option<Vec<u8>>) -> Option<T> {
    value
        .as_deref()
        .and_then(|bytes| serde_json::from_slice(bytes).ok())
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(value).map_err(|e| ApiError::Internal(Box::new(e)))
}
