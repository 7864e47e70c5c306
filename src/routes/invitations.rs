//! Invitations by email: who invites (make one or many, list, resend, revoke) and the invitee
//! (its invitations, accept, decline). Roster sends no email: the token goes back to the
//! caller for the product's mailer, once.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::constraints::{self, INVITATION_LIFETIME_MAX, INVITATION_LIFETIME_MIN};
use crate::db::invitations::{self as db, BulkInviteItem, Invitation, IssuedInvitation};
use crate::db::members::Membership;
use crate::domain::{InvitationStatus, Page, PageParams, Paginated, RoleKey};
use crate::error::{ApiError, ErrorBody};
use crate::extract::Json;
use crate::routes::NOT_VISIBLE;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    use super::resource;
    use web::{delete, get, post};
    cfg.service(
        resource("/organizations/{org_id}/invitations")
            .route(get().to(list_invitations))
            .route(post().to(invite)),
    )
    .service(
        resource("/organizations/{org_id}/invitations/{invitation_id}")
            .route(delete().to(revoke_invitation)),
    )
    .service(
        resource("/organizations/{org_id}/invitations/{invitation_id}/resend")
            .route(post().to(resend_invitation)),
    )
    .service(resource("/me/invitations").route(get().to(list_my_invitations)))
    .service(resource("/invitations/accept").route(post().to(accept_invitation_token)))
    .service(resource("/invitations/decline").route(post().to(decline_invitation_token)));
}

/// At most this many invitations in one bulk request.
pub const MAX_BULK: usize = 100;

const FORBIDDEN_TO_INVITE: &str = "`forbidden`: the caller lacks invitations:manage (or \
    members:manage_owners to give the owner role); `privilege_escalation`: the role grants \
    permissions the caller does not hold.";

/// One invitation: the body of `POST /organizations/{org_id}/invitations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInvitation {
    #[schema(schema_with = constraints::invitation_email)]
    pub email: String,
    /// Defaults to `member` (also when null).
    pub role: Option<RoleKey>,
    #[schema(schema_with = constraints::expires_in_seconds)]
    #[serde(default, deserialize_with = "whole_seconds")]
    pub expires_in_seconds: Option<i64>,
}

/// A JSON number with no fraction, as JSON Schema's `integer` means it: `3600` and `3600.0`
/// alike. Beyond i64, the largest i64 (refused by the range check, naming the field).
fn whole_seconds<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    use serde::de::Error;
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    if let Some(whole) = number.as_i64() {
        return Ok(Some(whole));
    }
    match number.as_f64() {
        Some(seconds) if seconds.is_finite() && seconds.fract() == 0.0 => Ok(Some(seconds as i64)),
        _ => Err(D::Error::custom(format!(
            "must be a whole number of seconds, got {number}"
        ))),
    }
}

/// One item of a bulk invitation. Its values are checked one by one: a bad address or role
/// refuses that item only.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkInvitationItem {
    pub email: String,
    /// Defaults to `member` (also when null).
    pub role: Option<String>,
}

/// Many invitations at once.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkInvitations {
    #[schema(schema_with = constraints::bulk_invitations)]
    pub invitations: Vec<BulkInvitationItem>,
}

/// The body of `POST /organizations/{org_id}/invitations`: one invitation, or
/// `{"invitations": [...]}`. (Read by its keys: `invitations` means many.)
#[derive(Debug, ToSchema)]
#[serde(untagged)]
#[schema(as = InvitationRequest)]
pub enum InvitationRequest {
    One(NewInvitation),
    Many(BulkInvitations),
}

impl<'de> Deserialize<'de> for InvitationRequest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = Value::deserialize(deserializer)?;
        let many = value
            .as_object()
            .is_some_and(|o| o.contains_key("invitations"));
        let parsed = match many {
            true => serde_path_to_error::deserialize(&value).map(InvitationRequest::Many),
            false => serde_path_to_error::deserialize(&value).map(InvitationRequest::One),
        };
        parsed.map_err(|error| {
            let path = error.path().to_string();
            match path.as_str() {
                "." => D::Error::custom(error.into_inner()),
                _ => D::Error::custom(format!("{path}: {}", error.into_inner())),
            }
        })
    }
}

/// The answer to a bulk invitation: one item per invitation sent, in order.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkInvitationResults {
    pub results: Vec<BulkInviteItem>,
}

/// `?status=&limit=&offset=` of an organization's invitations.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InvitationListParams {
    /// `pending` (the default), `accepted`, `declined`, `revoked`, `expired`, or `all`.
    #[param(schema_with = constraints::invitation_status_filter)]
    pub status: Option<String>,
    /// Items per page, 1 to 200 (default 50).
    #[param(schema_with = constraints::limit)]
    pub limit: Option<String>,
    /// Items to skip (default 0).
    #[param(schema_with = constraints::offset)]
    pub offset: Option<String>,
}

impl InvitationListParams {
    /// The status to list (None: all) and the page.
    fn parse(&self) -> Result<(Option<InvitationStatus>, Page), ApiError> {
        let page = Page::parse(&PageParams {
            limit: self.limit.clone(),
            offset: self.offset.clone(),
        })?;
        let status = match self.status.as_deref().map(str::trim) {
            None => Some(InvitationStatus::Pending),
            Some("all") => None,
            Some(text) => Some(
                InvitationStatus::ALL
                    .into_iter()
                    .find(|s| s.as_str() == text)
                    .ok_or_else(|| {
                        ApiError::Invalid(format!(
                            "status must be pending, accepted, declined, revoked, expired or all, got {text:?}"
                        ))
                    })?,
            ),
        };
        Ok((status, page))
    }
}

/// The body of `POST /invitations/accept` and `/invitations/decline`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationToken {
    /// The token of the invitation, as the invitee received it.
    pub token: String,
}

/// Invite people by email: one (`{email, role?, expires_in_seconds?}`, 201) or up to 100
/// (`{"invitations": [{email, role?}]}`, 200, each made or refused on its own). The answer
/// holds each invitation's token, once: send it to the invitee.
#[utoipa::path(post, path = "/organizations/{org_id}/invitations", tag = "invitations",
    params(("org_id" = Uuid, Path)), request_body = InvitationRequest,
    responses(
        (status = 201, description = "Invited: the invitation with its token.", body = IssuedInvitation),
        (status = 200, description = "A bulk invitation: per item `invited` (with the invitation \
            and its token), `already_member`, `already_invited` or `invalid` (with the error).", body = BulkInvitationResults),
        (status = 403, description = FORBIDDEN_TO_INVITE, body = ErrorBody),
        (status = 404, description = NOT_VISIBLE, body = ErrorBody),
        (status = 409, description = "`already_invited`: an invitation to that address is \
            pending; `already_member`: a live member has that address; `seat_limit`: the \
            organization has no seat left.", body = ErrorBody),
        (status = 422, description = "`invalid_input`: not an email address, an unknown role, \
            a lifetime outside 1 hour to 90 days, 0 or more than 100 invitations, an unknown field.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn invite(
    caller: Caller,
    state: web::Data<AppState>,
    org_id: web::Path<Uuid>,
    body: Json<InvitationRequest>,
) -> Result<HttpResponse, ApiError> {
    match body.into_inner() {
        InvitationRequest::One(new) => {
            let lifetime = INVITATION_LIFETIME_MIN..=INVITATION_LIFETIME_MAX;
            if let Some(seconds) = new.expires_in_seconds.filter(|s| !lifetime.contains(s)) {
                return Err(ApiError::Invalid(format!(
                    "expires_in_seconds must be {INVITATION_LIFETIME_MIN} to {INVITATION_LIFETIME_MAX} (1 hour to 90 days), got {seconds}"
                )));
            }
            let role = new.role.unwrap_or_else(RoleKey::member);
            let client = state.db.client().await?;
            let issued = db::invite(
                &client,
                caller.user_id,
                *org_id,
                &new.email,
                &role,
                new.expires_in_seconds,
            )
            .await?;
            Ok(HttpResponse::Created().json(issued))
        }
        InvitationRequest::Many(many) => {
            if !(1..=MAX_BULK).contains(&many.invitations.len()) {
                return Err(ApiError::Invalid(format!(
                    "invitations must hold 1 to {MAX_BULK} items, got {}",
                    many.invitations.len()
                )));
            }
            let items = serde_json::to_value(&many.invitations)
                .map_err(|e| ApiError::Internal(Box::new(e)))?;
            let client = state.db.client().await?;
            let results = db::invite_many(&client, caller.user_id, *org_id, &items).await?;
            Ok(HttpResponse::Ok().json(BulkInvitationResults { results }))
        }
    }
}

/// The organization's invitations, newest first (invited members among them): pending ones
/// unless `status` says otherwise. Never the tokens.
#[utoipa::path(get, path = "/organizations/{org_id}/invitations", tag = "invitations",
    params(("org_id" = Uuid, Path), InvitationListParams),
    responses(
        (status = 200, description = "A page of invitations, newest first.", body = Paginated<Invitation>),
        (status = 403, description = "`forbidden`: the caller lacks invitations:manage.", body = ErrorBody),
        (status = 404, description = NOT_VISIBLE, body = ErrorBody),
        (status = 422, description = "`invalid_input`: an unknown status; `limit` or `offset` \
            outside its bounds.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_invitations(
    caller: Caller,
    state: web::Data<AppState>,
    org_id: web::Path<Uuid>,
    params: web::Query<InvitationListParams>,
) -> Result<HttpResponse, ApiError> {
    let (status, page) = params.parse()?;
    let client = state.db.client().await?;
    let rows = db::list_invitations(&client, caller.user_id, *org_id, status, page).await?;
    Ok(HttpResponse::Ok().json(Paginated::from_rows(rows, page)))
}

const INVITATION_NOT_FOUND: &str = "`not_found`: no such organization visible to the caller; \
    `invitation_not_found`: no invitation of that id there.";

/// Issue a new token for a pending or expired invitation (the old one stops working) and renew
/// its expiry by the tenant's invitation lifetime.
#[utoipa::path(post, path = "/organizations/{org_id}/invitations/{invitation_id}/resend", tag = "invitations",
    params(("org_id" = Uuid, Path), ("invitation_id" = Uuid, Path)),
    responses(
        (status = 200, description = "The invitation with its new token.", body = IssuedInvitation),
        (status = 403, description = FORBIDDEN_TO_INVITE, body = ErrorBody),
        (status = 404, description = INVITATION_NOT_FOUND, body = ErrorBody),
        (status = 409, description = "`invitation_not_pending`: accepted, declined or revoked; \
            `already_invited`: a newer invitation to that address is pending; `already_member`; \
            `seat_limit`.", body = ErrorBody),
        (status = 422, description = "`invalid_input`: the invitation's role no longer exists.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn resend_invitation(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (org_id, invitation_id) = path.into_inner();
    let client = state.db.client().await?;
    let issued = db::resend_invitation(&client, caller.user_id, org_id, invitation_id).await?;
    Ok(HttpResponse::Ok().json(issued))
}

/// Revoke a pending or expired invitation: its token stops working (an invited member it
/// belongs to is removed).
#[utoipa::path(delete, path = "/organizations/{org_id}/invitations/{invitation_id}", tag = "invitations",
    params(("org_id" = Uuid, Path), ("invitation_id" = Uuid, Path)),
    responses(
        (status = 204, description = "Revoked."),
        (status = 403, description = "`forbidden`: the caller lacks invitations:manage (or \
            members:manage_owners for an owner's invitation).", body = ErrorBody),
        (status = 404, description = INVITATION_NOT_FOUND, body = ErrorBody),
        (status = 409, description = "`invitation_not_pending`: accepted, declined or revoked already.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn revoke_invitation(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (org_id, invitation_id) = path.into_inner();
    let client = state.db.client().await?;
    db::revoke_invitation(&client, caller.user_id, org_id, invitation_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The caller's pending invitations, newest first: sent to its address, or as an invited member.
#[utoipa::path(get, path = "/me/invitations", tag = "invitations", params(PageParams),
    responses((status = 200, description = "A page of the caller's pending invitations.", body = Paginated<Invitation>)),
    security(("bearer" = [])))]
pub async fn list_my_invitations(
    caller: Caller,
    state: web::Data<AppState>,
    params: web::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    let page = Page::parse(&params)?;
    let client = state.db.client().await?;
    let rows = db::list_my_invitations(&client, caller.user_id, page).await?;
    Ok(HttpResponse::Ok().json(Paginated::from_rows(rows, page)))
}

const TOKEN_REFUSED_403: &str =
    "`invitation_email_mismatch`: the invitation was sent to another address than the caller's.";
const TOKEN_REFUSED_404: &str = "`invitation_not_found`: no pending invitation has this token \
    (unknown, used, declined or revoked: indistinguishable).";

/// Accept an invitation by its token: the caller, whose email must be the one invited
/// (case-insensitively), becomes an active member with its role at once.
#[utoipa::path(post, path = "/invitations/accept", tag = "invitations",
    request_body = InvitationToken,
    responses(
        (status = 200, description = "The membership, active.", body = Membership),
        (status = 403, description = TOKEN_REFUSED_403, body = ErrorBody),
        (status = 404, description = TOKEN_REFUSED_404, body = ErrorBody),
        (status = 409, description = "`invitation_expired`: ask for it to be resent; \
            `already_member`; `seat_limit`: the organization has no seat left.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn accept_invitation_token(
    caller: Caller,
    state: web::Data<AppState>,
    body: Json<InvitationToken>,
) -> Result<HttpResponse, ApiError> {
    let client = state.db.client().await?;
    let membership = db::accept_invitation_token(&client, caller.user_id, &body.token).await?;
    Ok(HttpResponse::Ok().json(membership))
}

/// Decline an invitation by its token (sent to the caller's address).
#[utoipa::path(post, path = "/invitations/decline", tag = "invitations",
    request_body = InvitationToken,
    responses(
        (status = 200, description = "The invitation, declined.", body = Invitation),
        (status = 403, description = TOKEN_REFUSED_403, body = ErrorBody),
        (status = 404, description = TOKEN_REFUSED_404, body = ErrorBody),
        (status = 409, description = "`invitation_expired`.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn decline_invitation_token(
    caller: Caller,
    state: web::Data<AppState>,
    body: Json<InvitationToken>,
) -> Result<HttpResponse, ApiError> {
    let client = state.db.client().await?;
    let invitation = db::decline_invitation_token(&client, caller.user_id, &body.token).await?;
    Ok(HttpResponse::Ok().json(invitation))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_with_invitations_is_a_bulk_invitation_and_errors_name_the_field() {
        let one: InvitationRequest =
            serde_json::from_str(r#"{"email": "a@b.co", "role": "admin"}"#).unwrap();
        assert!(matches!(one, InvitationRequest::One(ref n) if n.email == "a@b.co"));
        let many: InvitationRequest = serde_json::from_str(
            r#"{"invitations": [{"email": "a@b.co"}, {"email": "x", "role": null}]}"#,
        )
        .unwrap();
        assert!(matches!(many, InvitationRequest::Many(ref m) if m.invitations.len() == 2));
        for (body, seconds) in [
            (
                r#"{"email": "a@b.co", "expires_in_seconds": 3600}"#,
                Some(3600),
            ),
            (
                r#"{"email": "a@b.co", "expires_in_seconds": 5169273.0}"#,
                Some(5169273),
            ),
            (
                r#"{"email": "a@b.co", "expires_in_seconds": 36e2}"#,
                Some(3600),
            ),
            (r#"{"email": "a@b.co", "expires_in_seconds": null}"#, None),
            (r#"{"email": "a@b.co"}"#, None),
        ] {
            let parsed: InvitationRequest = serde_json::from_str(body).expect(body);
            assert!(
                matches!(parsed, InvitationRequest::One(ref n) if n.expires_in_seconds == seconds),
                "{body}: a whole number of seconds, as JSON Schema's integer"
            );
        }
        for (body, named) in [
            (r#"{"email": 5}"#, "email"),
            (r#"{"email": "a@b.co", "colour": "red"}"#, "colour"),
            (
                r#"{"invitations": [{"email": "a@b.co", "x": 1}]}"#,
                "invitations[0]",
            ),
            (r#"{"invitations": "all"}"#, "invitations"),
            (
                r#"{"email": "a@b.co", "expires_in_seconds": 1.5}"#,
                "expires_in_seconds",
            ),
            (
                r#"{"email": "a@b.co", "expires_in_seconds": "3600"}"#,
                "expires_in_seconds",
            ),
        ] {
            let error = serde_json::from_str::<InvitationRequest>(body)
                .expect_err(body)
                .to_string();
            assert!(error.contains(named), "{body}: {error} should name {named}");
        }
    }

    #[test]
    fn the_status_filter_defaults_to_pending_and_all_means_none() {
        let parse = |status: Option<&str>| {
            InvitationListParams {
                status: status.map(str::to_owned),
                ..Default::default()
            }
            .parse()
            .map(|(status, _)| status)
        };
        assert_eq!(Some(InvitationStatus::Pending), parse(None).unwrap());
        assert_eq!(None, parse(Some("all")).unwrap());
        assert_eq!(
            Some(InvitationStatus::Expired),
            parse(Some("expired")).unwrap()
        );
        assert!(matches!(parse(Some("gone")), Err(ApiError::Invalid(_))));
    }
}
