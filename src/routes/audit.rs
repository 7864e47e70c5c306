use actix_web::{web, HttpResponse};
use uuid::Uuid;

use crate::auth::Caller;
use crate::db::audit::{self as db, AuditEvent};
use crate::domain::{Page, PageParams, Paginated};
use crate::error::{ApiError, ErrorBody};
use crate::routes::{FORBIDDEN, NOT_VISIBLE};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    use super::resource;
    use web::get;
    cfg.service(
        resource("/organizations/{org_id}/audit-events").route(get().to(list_audit_events)),
    )
    .service(resource("/tenant/audit-events").route(get().to(list_tenant_audit_events)));
}

/// The organization's audit trail, newest first (owners, admins, tenant admins).
#[utoipa::path(get, path = "/organizations/{org_id}/audit-events", tag = "audit",
    params(("org_id" = Uuid, Path), PageParams),
    responses(
        (status = 200, description = "A page of audit events, newest first.", body = Paginated<AuditEvent>),
        (status = 403, description = FORBIDDEN, body = ErrorBody),
        (status = 404, description = NOT_VISIBLE, body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_audit_events(
    caller: Caller,
    state: web::Data<AppState>,
    org_id: web::Path<Uuid>,
    params: web::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    let page = Page::parse(&params)?;
    let client = state.db.client().await?;
    let rows = db::list_audit_events(&client, caller.user_id, *org_id, page).await?;
    Ok(HttpResponse::Ok().json(Paginated::from_rows(rows, page)))
}

/// Every audit event of the caller's tenant (users, the tenant, organizations, memberships),
/// newest first (tenant admins).
#[utoipa::path(get, path = "/tenant/audit-events", tag = "audit",
    params(PageParams),
    responses(
        (status = 200, description = "A page of the tenant's audit events, newest first.", body = Paginated<AuditEvent>),
        (status = 403, description = "`forbidden`: the caller is no tenant admin.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_tenant_audit_events(
    caller: Caller,
    state: web::Data<AppState>,
    params: web::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    let page = Page::parse(&params)?;
    let client = state.db.client().await?;
    let rows = db::list_tenant_audit_events(&client, caller.user_id, page).await?;
    Ok(HttpResponse::Ok().json(Paginated::from_rows(rows, page)))
}
