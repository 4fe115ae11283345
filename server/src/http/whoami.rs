//! `GET /v1/whoami`: who the gateway takes the caller to be (WhoAmI through
//! [`call`]), and whether it checks anyone at all: what a client such as the web
//! console asks before it decides to show a login form.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use protocol::ops::Empty;
use protocol::{Request, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Caller;
use super::call::{call, unexpected};
use super::error::{ApiError, ErrorBody};
use super::state::HttpState;

/// The caller, as the broker sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct WhoAmI {
    /// The principal ACLs are checked for (`ANONYMOUS` if none).
    pub principal: String,
    /// How it was established: `PLAIN` (HTTP Basic), `TLS` (a client certificate)
    /// or `NONE`.
    pub authenticated_by: String,
    /// Whether the broker authenticates and authorizes anyone: false means every
    /// request is `ANONYMOUS` and allowed everything.
    pub security_enabled: bool,
}

/// Who the caller is.
#[utoipa::path(get, path = "/v1/whoami", tag = "security",
    responses(
        (status = 200, description = "The caller's principal.", body = WhoAmI),
        (status = 401, description = "Credentials are needed or were refused.", body = ErrorBody),
    ))]
pub async fn whoami(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
) -> Result<Json<WhoAmI>, ApiError> {
    match call(&state.broker, &caller, Request::WhoAmI(Empty)).await? {
        Response::WhoAmI(me) => Ok(Json(WhoAmI {
            principal: me.principal,
            authenticated_by: me.authenticated_by,
            security_enabled: state.broker.security.enabled(),
        })),
        other => Err(unexpected(&other)),
    }
}
