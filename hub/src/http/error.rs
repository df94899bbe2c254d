//! The API's error type: a status, a stable code, a message for people and, for bad input,
//! the JSON path of the offending field. Internal causes are logged once, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::reference::RowError;
use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
    /// For 409 on a case: the actions possible now.
    allowed: Option<Box<[&'static str]>>,
    /// For 429: seconds to wait, sent as `Retry-After`.
    retry_after: Option<u64>,
    /// For a refused reference document: every bad row.
    rows: Option<Box<[RowError]>>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    allowed: Option<&'a [&'static str]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rows: Option<&'a [RowError]>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            allowed: None,
            retry_after: None,
            rows: None,
        }
    }

    /// 422: a reference document with bad rows; each is listed with its line.
    pub fn invalid_rows(rows: Vec<RowError>) -> Self {
        let message = format!("{} problem(s) found; nothing was imported", rows.len());
        Self {
            rows: Some(rows.into_boxed_slice()),
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_rows", message)
        }
    }

    /// 422: the body parsed but `field` holds a value the hub cannot accept.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message)
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "sign in, or send a valid bearer token",
        )
    }

    /// 429 with `Retry-After`.
    pub fn too_many_requests(message: impl Into<String>, retry_after_s: u64) -> Self {
        Self {
            retry_after: Some(retry_after_s),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message)
        }
    }

    /// 500 for a failure that is the hub's own; `cause` is logged, never sent.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the hub's log",
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// 409: the case is not in a state where this can happen.
    pub fn conflict(message: impl Into<String>, allowed: Vec<&'static str>) -> Self {
        Self {
            allowed: Some(allowed.into_boxed_slice()),
            ..Self::new(StatusCode::CONFLICT, "conflict", message)
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "request failed in the store");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the hub's log",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Inner {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
                allowed: self.allowed.as_deref(),
                rows: self.rows.as_deref(),
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(wait) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// A field the checks refused: 422 naming it.
impl From<protocol::FieldError> for ApiError {
    fn from(e: protocol::FieldError) -> Self {
        Self::invalid_field(e.path, e.message)
    }
}
