//! Request extractors: the caller's identity from its bearer token or session cookie, and
//! JSON bodies whose errors name the field that was wrong.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, StatusCode, header, request::Parts};
use serde::de::DeserializeOwned;

use super::session::COOKIE;
use super::{AppState, error::ApiError};
use crate::reference::format::{self, Format};
use crate::store::{CaseVisibility, Principal, Role};

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    /// A bearer token (API clients, gateways), else the dashboard's session cookie. A user
    /// signed in with a temporary password may only choose their own (or sign out).
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let principal = authenticate(parts, state).await?;
        if let Principal::User {
            password_temporary: true,
            ..
        } = &principal
            && !WHILE_PASSWORD_TEMPORARY.contains(&parts.uri.path())
        {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "password_change_required",
                "your password was set by someone else: choose your own first (PUT /api/v1/session/password)",
            ));
        }
        Ok(principal)
    }
}

/// What a user signed in with a temporary password may reach: who they are, and the
/// password change.
const WHILE_PASSWORD_TEMPORARY: [&str; 2] = ["/api/v1/session", "/api/v1/session/password"];

/// The principal a request's credentials name.
async fn authenticate(parts: &Parts, state: &AppState) -> Result<Principal, ApiError> {
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    if let Some(token) = bearer {
        return state
            .store
            .authenticate(token)
            .await?
            .ok_or_else(ApiError::unauthorized);
    }
    let token = session_cookie(&parts.headers).ok_or_else(ApiError::unauthorized)?;
    // A browser sends the cookie with any request to the hub, even one a hostile page
    // started; such pages cannot add headers without CORS, which the hub never allows.
    if !parts.method.is_safe() && !parts.headers.contains_key(CSRF_HEADER) {
        return Err(ApiError::forbidden(format!(
            "a signed-in browser must send the {CSRF_HEADER} header with writes"
        )));
    }
    state
        .store
        .authenticate_session(token)
        .await?
        .ok_or_else(ApiError::unauthorized)
}

/// The header the dashboard sends with every write made on its session cookie.
pub const CSRF_HEADER: &str = "x-requested-with";

/// The session token from the `Cookie` header, if there is one.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

impl Principal {
    /// The gateway id, or 403 for anyone else.
    pub fn gateway(&self) -> Result<&str, ApiError> {
        match self {
            Principal::Gateway { id } => Ok(id),
            Principal::User { .. } => Err(ApiError::forbidden("only gateways may do this")),
        }
    }

    /// Any signed-in person; 403 for gateways.
    pub fn user(&self) -> Result<(), ApiError> {
        match self {
            Principal::User { .. } => Ok(()),
            Principal::Gateway { .. } => Err(ApiError::forbidden("gateways may not do this")),
        }
    }

    /// Admins only.
    pub fn admin(&self) -> Result<(), ApiError> {
        match self {
            Principal::User {
                role: Role::Admin, ..
            } => Ok(()),
            _ => Err(ApiError::forbidden("only admins may do this")),
        }
    }

    /// Gateways, cameras and terminals are for admins, operators and technicians.
    pub fn device_viewer(&self) -> Result<(), ApiError> {
        match self {
            Principal::User {
                role: Role::Admin | Role::Operator | Role::Technician,
                ..
            } => Ok(()),
            _ => Err(ApiError::forbidden(
                "only admins, operators and technicians may list devices",
            )),
        }
    }

    /// Admins and technicians change devices; returns the actor for the audit.
    pub fn device_manager(&self) -> Result<String, ApiError> {
        match self {
            Principal::User {
                role: Role::Admin | Role::Technician,
                ..
            } => Ok(self.actor()),
            _ => Err(ApiError::forbidden(
                "only admins and technicians may change devices",
            )),
        }
    }

    /// Which cases this caller may read, or 403 when it may read none.
    pub fn case_visibility(&self) -> Result<CaseVisibility, ApiError> {
        match self {
            Principal::User {
                role: Role::Admin | Role::Operator,
                ..
            } => Ok(CaseVisibility::All),
            Principal::User {
                role: Role::Department,
                department: Some(d),
                ..
            } => Ok(CaseVisibility::Department(d.clone())),
            _ => Err(ApiError::forbidden("this role may not read cases")),
        }
    }
}

/// `?dry_run=true`: check an uploaded document and report, changing nothing.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DryRun {
    #[serde(default)]
    pub dry_run: bool,
}

/// An uploaded document's format (from its `Content-Type`, one of `accepted`, else 415) and text
/// (UTF-8, else 422 with the line where it stops being UTF-8).
pub fn document<'a>(
    headers: &HeaderMap,
    body: &'a [u8],
    accepted: &[Format],
) -> Result<(Format, &'a str), ApiError> {
    let format = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(Format::from_media_type)
        .filter(|f| accepted.contains(f))
        .ok_or_else(|| {
            let types: Vec<&str> = accepted.iter().map(|f| f.media_type()).collect();
            ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("send the document as {}", types.join(" or ")),
            )
        })?;
    let text = format::text(body).map_err(|e| ApiError::invalid_rows(vec![e]))?;
    Ok((format, text))
}

/// The longest free text (a reason, a reply, a note) a request may carry, in characters.
pub const MAX_TEXT: usize = 2000;

/// `value` trimmed, or 422 naming `field` when it is empty or longer than [`MAX_TEXT`].
pub fn required_text(field: &str, value: &str) -> Result<String, ApiError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ApiError::invalid_field(field, "must not be empty"));
    }
    if value.chars().count() > MAX_TEXT {
        return Err(ApiError::invalid_field(
            field,
            format!("is longer than {MAX_TEXT} characters"),
        ));
    }
    Ok(value.to_owned())
}

/// A JSON body. Malformed JSON is 400; JSON of the wrong shape is 422 naming the field;
/// a body over the route's limit is 413; a missing or wrong content type is 415.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|m| m.trim() == "application/json")
            });
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            let status = e.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    status,
                    "payload_too_large",
                    "the body is larger than this endpoint accepts",
                )
            } else {
                ApiError::new(status, "bad_body", e.body_text())
            }
        })?;
        parse_json(&bytes).map(JsonBody)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Tracking the path costs as much as the parse itself: a body that fails is parsed
    // again with it, to say where.
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let mut path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                // serde reports a missing or unknown field at its parent; name the field itself.
                let message = inner.to_string();
                if let Some(name) = ["missing field `", "unknown field `"]
                    .iter()
                    .find_map(|p| message.strip_prefix(p)?.split('`').next())
                {
                    path = if path == "." {
                        name.to_owned()
                    } else {
                        format!("{path}.{name}")
                    };
                }
                ApiError::invalid_field(path, message)
            }
            _ => ApiError::bad_request(format!("the body is not valid JSON: {inner}")),
        }
    })
}

/// Query parameters whose errors come back as the API's JSON error.
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| QueryParams(v))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}
