//! The reads that the cache serves: each asks the cache once for the access (or identity) it
//! needs and the response, and when either is missing makes one database round trip that
//! returns both, then stores them. Without a cache the same single round trip answers.
//!
//! Keys name the tenant of the user they are about, which this process learns from the
//! database's first answer for that user (or from a service's token). Decisions taken from a
//! cached entry are the database's (`Access::require` reports what `roster.member_access`
//! said). Only what the data bounds goes to Redis: refusals for ids that exist nowhere stay in
//! this process (`Place::Local`), and only the first pages of lists are cached.

use std::collections::HashMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::Principal;
use crate::cache::{keys, AccessVersion, Cache, Deps, Fill, Key, Lookup, Place, NO_TENANT};
use crate::consistency;
use crate::db::authz::{self, Access, Catalogue, Explanation, Identity};
use crate::db::resources::ResourceAccess;
use crate::db::{self, members, organizations};
use crate::domain::{Page, Paginated, Resource};
use crate::error::ApiError;
use crate::state::AppState;
use crate::tokens::{authorization_version, AccessClaims};

/// Pages of a list that are cached: the first few, aligned on their size. Later ones, odd
/// offsets and cursor pages always read the database (so that a client cannot fill the cache
/// with every limit × offset).
const CACHED_PAGES: i32 = 5;

fn cached_page(page: Page) -> bool {
    page.after.is_none() && page.offset % page.limit == 0 && page.offset / page.limit < CACHED_PAGES
}

/// Where and under which dependencies an identity is stored: in Redis for a user that exists,
/// in this process (under `NO_TENANT`) for an id that does not.
fn identity_fill(identity: &Identity, user: Uuid) -> (Uuid, Deps, Place) {
    match identity.tenant_id {
        Some(tenant) => (
            tenant,
            Deps::new(tenant, identity.tenant_version).user(user, identity.user_version),
            Place::Shared,
        ),
        None => (
            NO_TENANT,
            Deps::new(NO_TENANT, 0).user(user, 0),
            Place::Local,
        ),
    }
}

/// The same for an answer about a user in an organization (at `org_version`, 0 when the user's
/// tenant has no such organization): a refusal for an organization the user's tenant does not
/// have stays in this process.
fn org_fill(identity: &Identity, user: Uuid, org: Uuid, org_version: i64) -> (Uuid, Deps, Place) {
    let (tenant, deps, place) = identity_fill(identity, user);
    let place = match org_version {
        0 => Place::Local,
        _ => place,
    };
    (tenant, deps.organization(org, org_version), place)
}

fn access_fill(access: &Access, user: Uuid, org: Uuid) -> Result<Fill, ApiError> {
    let (tenant, deps, place) = org_fill(&access.identity, user, org, access.org_version);
    let fill = Fill::new(
        keys::access(tenant, org, user),
        deps,
        encode(access)?,
        place,
    );
    // A membership that expires stops being served when it does.
    Ok(fill.until(access.valid_until.map(SystemTime::from)))
}

/// The cache, unless the request sent a `Roster-Consistency` token of a write that the cache
/// has not caught up with (within `consistency::WAIT`): then the database answers.
async fn usable_cache(state: &AppState) -> Option<&Cache> {
    let cache = state.cache.as_deref()?;
    if consistency::cache_is_current(cache.position()).await {
        return Some(cache);
    }
    state.metrics.consistency_fallbacks.inc();
    None
}

/// The tenant this process knows a user to be in, or `NO_TENANT`.
fn tenant_of(cache: Option<&Cache>, user: Uuid) -> Uuid {
    cache
        .and_then(|cache| cache.tenant_of(user))
        .unwrap_or(NO_TENANT)
}

/// `GET /organizations/{org}`: the organization as JSON.
pub async fn organization(state: &AppState, caller: Uuid, org: Uuid) -> Result<Vec<u8>, ApiError> {
    org_scoped_read(
        state,
        caller,
        org,
        "organization:read",
        |tenant| Some(keys::organization(tenant, org)),
        |client| async move {
            organizations::get_organization_with_access(&client, caller, org).await
        },
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
    org_scoped_read(
        state,
        caller,
        org,
        "members:read",
        |tenant| cached_page(page).then(|| keys::members(tenant, org, page.limit, page.offset)),
        |client| async move {
            let (access, rows) =
                members::list_members_with_access(&client, caller, org, page).await?;
            let page = Paginated::from_rows_with_cursor(rows, page, |m| m.membership_id);
            Ok((access, Some(page)))
        },
    )
    .await
}

/// `GET /organizations`: the caller's organizations as JSON. A cached page depends on the
/// caller (its memberships) and on every organization listed (names, member counts).
pub async fn user_organizations(
    state: &AppState,
    caller: Uuid,
    page: Page,
) -> Result<Vec<u8>, ApiError> {
    let cache = usable_cache(state).await;
    let body_key = |tenant| {
        cached_page(page).then(|| keys::user_organizations(tenant, caller, page.limit, page.offset))
    };
    let known = tenant_of(cache, caller);
    let mut wanted = vec![keys::identity(known, caller)];
    wanted.extend(body_key(known));
    let lookup = lookup(cache, &wanted).await;
    if let Some(identity) = decode::<Identity>(&lookup.values[0]) {
        identity.require_live()?;
        if let Some(Some(body)) = lookup.values.get(1) {
            return Ok(body.clone());
        }
    }
    let client = state.db.client().await?;
    let (identity, rows) =
        organizations::list_organizations_with_identity(&client, caller, page).await?;
    drop(client);
    let (tenant, deps, place) = identity_fill(&identity, caller);
    learn_tenant(cache, caller, identity.tenant_id);
    let mut fills = vec![Fill::new(
        keys::identity(tenant, caller),
        deps.clone(),
        encode(&identity)?,
        place,
    )];
    let result = identity.require_live().and_then(|()| {
        let body_deps = rows.iter().fold(deps, |deps, (row, version)| {
            deps.organization(row.organization.id, *version)
        });
        let rows = rows.into_iter().map(|(row, _)| row).collect();
        let body = encode(&Paginated::from_rows(rows, page))?;
        if let Some(key) = body_key(tenant) {
            fills.push(Fill::new(key, body_deps, body.clone(), Place::Shared));
        }
        Ok(body)
    });
    store(cache, &lookup, fills).await;
    result
}

/// The caller's access to an organization, for `/me`.
pub async fn access(state: &AppState, caller: Uuid, org: Uuid) -> Result<Access, ApiError> {
    let (mut access, _) = accesses(state, &[(caller, org)], None).await?;
    let access = access.remove(0);
    access.identity.require_live()?;
    Ok(access)
}

/// The current authorization version of `caller` in `org` (or of `caller` alone for the nil
/// organization), for the check of an access token on every request: from this process when
/// it holds it (no Redis round trip), else from `access`, keeping it here. RNACT's 401 for a
/// user that may not act.
pub async fn access_version(
    state: &AppState,
    caller: Uuid,
    org: Uuid,
) -> Result<AccessVersion, ApiError> {
    let cache = usable_cache(state).await;
    if let Some(known) = cache.and_then(|cache| cache.version(caller, org)) {
        return match known.live {
            true => Ok(known),
            false => Err(ApiError::inactive_user(
                "the token's user does not exist or has been deleted".into(),
            )),
        };
    }
    let kept = cache.map(Cache::local_lookup);
    let access = access(state, caller, org).await?;
    let version = AccessVersion {
        tenant: access.identity.tenant_id,
        live: access.identity.user_live,
        version: authorization_version(&access),
    };
    if let (Some(cache), Some(kept)) = (cache, kept) {
        let fill = access_fill(&access, caller, org)?;
        cache.keep_version(&kept, (caller, org), fill.deps, fill.until, version);
    }
    Ok(version)
}

/// Whether an access token is current: its `av` is at least the authorization version of its
/// user in its organization now (of its user alone for an unscoped one), in its tenant. The
/// one rule behind `token_stale` and introspection's `active`. RNACT's 401 for a user that
/// may not act.
pub async fn token_is_current(state: &AppState, claims: &AccessClaims) -> Result<bool, ApiError> {
    let org = claims.org_id.unwrap_or(Uuid::nil());
    let current = access_version(state, claims.sub, org).await?;
    Ok(current.tenant == Some(claims.tid) && current.version <= claims.av)
}

/// One check of `POST /authz/check`: may `user` (the caller itself when None) do `permission`
/// in `organization`, on `resource` when given?
#[derive(Debug, Clone, Copy)]
pub struct Check<'a> {
    pub organization: Uuid,
    pub permission: &'a str,
    pub user: Option<Uuid>,
    pub resource: Option<Resource<'a>>,
}

/// Where a check's answer is among the lookups: a (user, organization) access, or a user's
/// access to a resource (which holds its organization-wide permissions too).
#[derive(Debug, Clone, Copy)]
enum Answer {
    Organization(usize),
    Resource(usize),
}

/// `POST /authz/check`: the answers, in order. A user asks about itself, or about another user
/// with members:read in that organization (404/403 otherwise, as for any read there); a
/// service asks about users of its tenant (one of another tenant holds nothing). A refused
/// name that is in no catalogue of the tenant is an error (`unknown_permission`, naming
/// `checks[i].permission`), as in `roster.has_permission`.
pub async fn check(
    state: &AppState,
    principal: &Principal,
    checks: &[Check<'_>],
) -> Result<Vec<bool>, ApiError> {
    let (asker, tenant) = match principal {
        Principal::User(id) => (Some(*id), None),
        Principal::Service { tenant, .. } => (None, Some(*tenant)),
    };
    let mut subjects = Vec::with_capacity(checks.len());
    for (i, check) in checks.iter().enumerate() {
        match check.user.or(asker) {
            Some(subject) => subjects.push(subject),
            None => {
                return Err(ApiError::Invalid(format!(
                    "checks[{i}].user_id: required with a service token"
                )))
            }
        }
    }
    let mut pairs: Vec<(Uuid, Uuid)> = Vec::with_capacity(checks.len());
    let mut on_resources: Vec<(Uuid, Uuid, Resource)> = Vec::new();
    let mut answers = Vec::with_capacity(checks.len());
    for (check, subject) in checks.iter().zip(&subjects) {
        match check.resource {
            None => {
                answers.push(Answer::Organization(pairs.len()));
                pairs.push((*subject, check.organization));
            }
            Some(resource) => {
                answers.push(Answer::Resource(on_resources.len()));
                on_resources.push((*subject, check.organization, resource));
            }
        }
    }
    // The asker's own access, where it asks about someone else: members:read is needed there.
    let mut vouching: Vec<usize> = Vec::new();
    if let Some(asker) = asker {
        for (check, subject) in checks.iter().zip(&subjects) {
            if *subject != asker {
                vouching.push(pairs.len());
                pairs.push((asker, check.organization));
            }
        }
    }
    let found = lookups(state, &pairs, &on_resources, tenant).await?;
    let identity = |answer: Answer| match answer {
        Answer::Organization(i) => &found.access[i].identity,
        Answer::Resource(i) => &found.resources[i].identity,
    };
    if let Some(asker) = asker {
        // The asker's identity: its own answer, or any pair it vouches through.
        let own = pairs
            .iter()
            .position(|(user, _)| *user == asker)
            .map(Answer::Organization)
            .or_else(|| {
                on_resources
                    .iter()
                    .position(|(user, ..)| *user == asker)
                    .map(Answer::Resource)
            });
        if let Some(own) = own {
            identity(own).require_live()?;
        }
    }
    for index in &vouching {
        found.access[*index].require(pairs[*index].1, "members:read")?;
    }
    let allowed: Vec<bool> = checks
        .iter()
        .zip(&answers)
        .map(|(check, answer)| {
            let in_tenant = tenant.is_none_or(|tenant| identity(*answer).tenant_id == Some(tenant));
            in_tenant
                && match *answer {
                    Answer::Organization(i) => found.access[i].allows(check.permission),
                    Answer::Resource(i) => found.resources[i].allows(check.permission),
                }
        })
        .collect();
    let Some(denied) = allowed.iter().position(|allowed| !allowed) else {
        return Ok(allowed);
    };
    let catalogue_tenant = tenant.or(identity(answers[denied]).tenant_id);
    let catalogue = match (found.catalogue, catalogue_tenant) {
        (Some(catalogue), _) => catalogue,
        (None, Some(tenant)) => self::catalogue(state, tenant).await?,
        // An unknown user, asked about by a user of... no tenant: nothing is known to check.
        (None, None) => Catalogue {
            names: Vec::new(),
            tenant_version: 0,
        },
    };
    for (i, (check, allowed)) in checks.iter().zip(&allowed).enumerate() {
        if !allowed && !catalogue.contains(check.permission) {
            return Err(ApiError::unknown_permission(
                &format!("checks[{i}].permission"),
                check.permission,
            ));
        }
    }
    Ok(allowed)
}

/// A cached explanation: the subject's identity (whether it may act, and its tenant, which a
/// service's question must match) with the explanation.
#[derive(Serialize, Deserialize)]
struct CachedExplanation {
    identity: Identity,
    explanation: Explanation,
}

/// Who asks about whom in `POST /authz/explain`: `subject`'s access, asked by `asker` (itself,
/// or a user that needs members:read there) or by a service of `service_tenant`.
#[derive(Debug, Clone, Copy)]
pub struct Question<'a> {
    pub subject: Uuid,
    pub asker: Uuid,
    pub service_tenant: Option<Uuid>,
    pub organization: Uuid,
    pub permission: &'a str,
    pub resource: Option<Resource<'a>>,
}

/// `POST /authz/explain`: `roster.explain_access`'s answer, from the cache when the
/// explanation (and, for a user asking about another, the asker's access) is there; otherwise
/// one statement that also returns the versions it was read at. An explanation depends on what
/// the subject's access depends on (on a resource: its resource access), so it is stored under
/// the same versions and not served past the same expiry.
pub async fn explain(state: &AppState, question: Question<'_>) -> Result<Explanation, ApiError> {
    let Question {
        subject,
        asker,
        service_tenant,
        organization: org,
        permission,
        resource,
    } = question;
    let cache = usable_cache(state).await;
    let known = |user: Uuid| service_tenant.unwrap_or_else(|| tenant_of(cache, user));
    let vouching = service_tenant.is_none() && asker != subject;
    let key = |tenant| keys::explanation(tenant, org, subject, permission, resource.as_ref());
    let mut wanted = vec![key(known(subject))];
    if vouching {
        wanted.push(keys::access(known(asker), org, asker));
    }
    let lookup = lookup(cache, &wanted).await;
    if let Some(cached) = decode::<CachedExplanation>(&lookup.values[0]) {
        let asker_access = vouching
            .then(|| decode::<Access>(&lookup.values[1]))
            .flatten();
        if !vouching || asker_access.is_some() {
            may_ask(question, &cached.identity, asker_access.as_ref())?;
            return Ok(cached.explanation);
        }
    }
    let client = state.db.client().await?;
    let explained = authz::explain_access(
        &client,
        asker,
        subject,
        org,
        permission,
        resource.as_ref(),
        service_tenant,
    )
    .await?;
    drop(client);
    let authz::Explained {
        asker: asker_access,
        subject: read,
        explanation,
    } = explained;
    learn_tenant(cache, subject, read.identity.tenant_id);
    learn_tenant(cache, asker, asker_access.identity.tenant_id);
    let mut fills = Vec::with_capacity(2);
    if vouching {
        fills.push(access_fill(&asker_access, asker, org)?);
    }
    let result = may_ask(question, &read.identity, vouching.then_some(&asker_access));
    if let Some(explanation) = &explanation {
        let (tenant, mut deps, place) = org_fill(&read.identity, subject, org, read.org_version);
        if let Some(version) = read.resources_version {
            deps = deps.resources(org, version);
        }
        let entry = CachedExplanation {
            identity: read.identity.clone(),
            explanation: explanation.clone(),
        };
        let fill = Fill::new(key(tenant), deps, encode(&entry)?, place);
        fills.push(fill.until(read.valid_until.map(SystemTime::from)));
    }
    store(cache, &lookup, fills).await;
    result?;
    explanation.ok_or_else(|| ApiError::Internal("explain_access returned no explanation".into()))
}

/// Whether the asker of `question` may have its answer: a service, about a user of its tenant
/// (one of another tenant is as unknown as one that does not exist); a user, while it may act,
/// about itself, or about another with members:read there (`asker`: its access).
fn may_ask(
    question: Question<'_>,
    subject: &Identity,
    asker: Option<&Access>,
) -> Result<(), ApiError> {
    if let Some(tenant) = question.service_tenant {
        return match subject.tenant_id == Some(tenant) {
            true => Ok(()),
            false => Err(ApiError::user_not_found(question.subject)),
        };
    }
    match asker {
        Some(access) => access.require(question.organization, "members:read"),
        None => subject.require_live(),
    }
}

/// Each (user, organization)'s access, in order, and the permission catalogue of `tenant` (or
/// of the first user's tenant) when this process holds it or the database was asked anyway:
/// from the cache, with one database round trip for all the misses.
pub async fn accesses(
    state: &AppState,
    pairs: &[(Uuid, Uuid)],
    tenant: Option<Uuid>,
) -> Result<(Vec<Access>, Option<Catalogue>), ApiError> {
    let found = lookups(state, pairs, &[], tenant).await?;
    Ok((found.access, found.catalogue))
}

/// What [`lookups`] found, in the order asked.
struct Found {
    access: Vec<Access>,
    resources: Vec<ResourceAccess>,
    catalogue: Option<Catalogue>,
}

/// Accesses to organizations and to resources, and the catalogue as [`accesses`] says: one
/// cache lookup for all, and for the misses one connection whose statements go out together
/// (tokio-postgres pipelines them), so one round trip.
async fn lookups(
    state: &AppState,
    pairs: &[(Uuid, Uuid)],
    on_resources: &[(Uuid, Uuid, Resource<'_>)],
    tenant: Option<Uuid>,
) -> Result<Found, ApiError> {
    let cache = usable_cache(state).await;
    let known = |user: Uuid| tenant.unwrap_or_else(|| tenant_of(cache, user));
    let mut wanted: Vec<Key> = pairs
        .iter()
        .map(|(user, org)| keys::access(known(*user), *org, *user))
        .collect();
    wanted.extend(on_resources.iter().map(|(user, org, resource)| {
        keys::resource_access(known(*user), *org, *user, resource.kind, resource.id)
    }));
    let first_user = pairs
        .first()
        .map(|(user, _)| *user)
        .or_else(|| on_resources.first().map(|(user, ..)| *user));
    let catalogue_tenant = tenant
        .or_else(|| first_user.map(|user| tenant_of(cache, user)))
        .unwrap_or(NO_TENANT);
    wanted.push(keys::catalogue(catalogue_tenant));
    let lookup = lookup(cache, &wanted).await;
    let (pair_values, rest) = lookup.values.split_at(pairs.len());
    let (resource_values, catalogue_value) = rest.split_at(on_resources.len());
    let mut access: Vec<Option<Access>> = pair_values.iter().map(decode).collect();
    let mut resources: Vec<Option<ResourceAccess>> = resource_values.iter().map(decode).collect();
    let mut catalogue: Option<Catalogue> = decode(&catalogue_value[0]);
    let missing_pairs: Vec<(Uuid, Uuid)> = pairs
        .iter()
        .zip(&access)
        .filter(|(_, answer)| answer.is_none())
        .map(|(pair, _)| *pair)
        .collect();
    let missing_resources: Vec<(Uuid, Uuid, Resource)> = on_resources
        .iter()
        .zip(&resources)
        .filter(|(_, answer)| answer.is_none())
        .map(|(check, _)| *check)
        .collect();
    if !missing_pairs.is_empty() || !missing_resources.is_empty() {
        let client = state.db.client().await?;
        let catalogue_of = catalogue.is_none().then_some(tenant);
        // member_access reads the catalogue with the pairs; checks on resources alone read it
        // beside them (the same round trip), or its key would miss on every such request.
        let catalogue_alone = tenant.filter(|_| catalogue.is_none() && missing_pairs.is_empty());
        let (fetched_pairs, fetched_resources, fetched_alone) = tokio::try_join!(
            async {
                match missing_pairs.is_empty() {
                    true => Ok((Vec::new(), None)),
                    false => authz::member_access(&client, &missing_pairs, catalogue_of).await,
                }
            },
            async {
                match missing_resources.is_empty() {
                    true => Ok(Vec::new()),
                    false => db::resources::resource_access(&client, &missing_resources).await,
                }
            },
            async {
                match catalogue_alone {
                    Some(tenant) => Ok(Some((
                        tenant,
                        authz::permission_catalogue(&client, tenant).await?,
                    ))),
                    None => Ok(None),
                }
            },
        )?;
        drop(client);
        let (fetched_access, fetched_catalogue) = fetched_pairs;
        let fetched_catalogue = fetched_catalogue.or(fetched_alone);
        let mut fills = Vec::with_capacity(fetched_access.len() + fetched_resources.len() + 1);
        let mut by_pair: HashMap<(Uuid, Uuid), Access> =
            HashMap::with_capacity(fetched_access.len());
        for ((user, org), answer) in missing_pairs.iter().zip(fetched_access) {
            learn_tenant(cache, *user, answer.identity.tenant_id);
            fills.push(access_fill(&answer, *user, *org)?);
            by_pair.insert((*user, *org), answer);
        }
        for (slot, pair) in access.iter_mut().zip(pairs) {
            if slot.is_none() {
                *slot = by_pair.get(pair).cloned();
            }
        }
        let mut by_check: HashMap<(Uuid, Uuid, Resource), ResourceAccess> =
            HashMap::with_capacity(fetched_resources.len());
        for ((user, org, resource), answer) in missing_resources.iter().zip(fetched_resources) {
            learn_tenant(cache, *user, answer.identity.tenant_id);
            fills.push(resource_fill(&answer, *user, *org, resource)?);
            by_check.insert((*user, *org, *resource), answer);
        }
        for (slot, check) in resources.iter_mut().zip(on_resources) {
            if slot.is_none() {
                *slot = by_check.get(check).cloned();
            }
        }
        if let Some((tenant, fetched)) = fetched_catalogue {
            fills.push(catalogue_fill(tenant, &fetched)?);
            catalogue = Some(fetched);
        }
        store(cache, &lookup, fills).await;
    }
    let skipped = || ApiError::Internal("a lookup skipped a check".into());
    Ok(Found {
        access: access
            .into_iter()
            .map(|a| a.ok_or_else(skipped))
            .collect::<Result<_, _>>()?,
        resources: resources
            .into_iter()
            .map(|a| a.ok_or_else(skipped))
            .collect::<Result<_, _>>()?,
        catalogue,
    })
}

/// A resource access is stored like an access, and also depends on the organization's
/// resource grants and hierarchy.
fn resource_fill(
    answer: &ResourceAccess,
    user: Uuid,
    org: Uuid,
    resource: &Resource<'_>,
) -> Result<Fill, ApiError> {
    let (tenant, deps, place) = org_fill(&answer.identity, user, org, answer.org_version);
    let deps = deps.resources(org, answer.resources_version);
    let key = keys::resource_access(tenant, org, user, resource.kind, resource.id);
    let fill = Fill::new(key, deps, encode(answer)?, place);
    Ok(fill.until(answer.valid_until.map(SystemTime::from)))
}

/// The permission names a check may use in the tenant.
pub async fn catalogue(state: &AppState, tenant: Uuid) -> Result<Catalogue, ApiError> {
    let cache = usable_cache(state).await;
    let key = keys::catalogue(tenant);
    let lookup = lookup(cache, std::slice::from_ref(&key)).await;
    if let Some(catalogue) = decode::<Catalogue>(&lookup.values[0]) {
        return Ok(catalogue);
    }
    let client = state.db.client().await?;
    let catalogue = authz::permission_catalogue(&client, tenant).await?;
    drop(client);
    store(cache, &lookup, vec![catalogue_fill(tenant, &catalogue)?]).await;
    Ok(catalogue)
}

/// Catalogues stay in this process: read on every refused check, they would be the largest
/// values a check fetches from Redis.
fn catalogue_fill(tenant: Uuid, catalogue: &Catalogue) -> Result<Fill, ApiError> {
    Ok(Fill::new(
        keys::catalogue(tenant),
        Deps::new(tenant, catalogue.tenant_version),
        encode(catalogue)?,
        Place::Local,
    ))
}

/// The shared shape of organization-scoped reads: access and body from the cache when both are
/// fresh (or a refusal from the cached access alone); otherwise one statement for both.
/// `body_key` names the body's entry in a tenant, None when this response is not cached.
async fn org_scoped_read<T, K, F, Fut>(
    state: &AppState,
    caller: Uuid,
    org: Uuid,
    permission: &str,
    body_key: K,
    fetch: F,
) -> Result<Vec<u8>, ApiError>
where
    T: Serialize,
    K: Fn(Uuid) -> Option<Key>,
    F: FnOnce(db::Client) -> Fut,
    Fut: std::future::Future<Output = Result<(Access, Option<T>), ApiError>>,
{
    let cache = usable_cache(state).await;
    // With the tenant unknown, the keys name NO_TENANT: only refusals of strangers are there
    // (in this process), but the lookup still counts what this read needs.
    let known = tenant_of(cache, caller);
    let mut wanted = vec![keys::access(known, org, caller)];
    wanted.extend(body_key(known));
    let lookup = lookup(cache, &wanted).await;
    if let Some(access) = decode::<Access>(&lookup.values[0]) {
        access.require(org, permission)?;
        if let Some(Some(body)) = lookup.values.get(1) {
            return Ok(body.clone());
        }
    }
    let (access, data) = fetch(state.db.client().await?).await?;
    learn_tenant(cache, caller, access.identity.tenant_id);
    let mut fills = vec![access_fill(&access, caller, org)?];
    let result = access.require(org, permission).and_then(|()| {
        let data =
            data.ok_or_else(|| ApiError::Internal("access granted but no data returned".into()))?;
        let body = encode(&data)?;
        // Shared by every reader: it depends on the tenant and the organization alone.
        if let Some(tenant) = access.identity.tenant_id {
            if let Some(key) = body_key(tenant) {
                let deps = Deps::new(tenant, access.identity.tenant_version)
                    .organization(org, access.org_version);
                fills.push(Fill::new(key, deps, body.clone(), Place::Shared));
            }
        }
        Ok(body)
    });
    store(cache, &lookup, fills).await;
    result
}

async fn lookup(cache: Option<&Cache>, keys: &[Key]) -> Lookup {
    match cache {
        Some(cache) => cache.lookup(keys).await,
        None => Lookup::misses(keys.len()),
    }
}

async fn store(cache: Option<&Cache>, lookup: &Lookup, fills: Vec<Fill>) {
    if let Some(cache) = cache {
        cache.store(lookup, fills).await;
    }
}

fn learn_tenant(cache: Option<&Cache>, user: Uuid, tenant: Option<Uuid>) {
    if let (Some(cache), Some(tenant)) = (cache, tenant) {
        cache.learn_tenant(user, tenant);
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
