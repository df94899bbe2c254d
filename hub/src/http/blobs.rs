//! Evidence blobs by content hash: gateways upload (`PUT`, idempotent), users download
//! (`GET`) what their role lets them see.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::{AppState, error::ApiError};
use crate::store::{Principal, Role};

/// The image types accepted as evidence, with the bytes their files start with.
const ACCEPTED: [(&str, &[u8]); 2] = [
    ("image/jpeg", &[0xFF, 0xD8, 0xFF]),
    ("image/png", b"\x89PNG\r\n\x1a\n"),
];

fn check_name(sha256: &str) -> Result<(), ApiError> {
    if sha256.len() == 64
        && sha256
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        Ok(())
    } else {
        Err(ApiError::invalid_field(
            "sha256",
            "a blob is named by 64 lower-case hex digits of its SHA-256",
        ))
    }
}

/// The body's image type, if it is an accepted image whose bytes match its content type.
pub fn check_image(headers: &HeaderMap, body: &[u8]) -> Result<&'static str, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some((content_type, magic)) = ACCEPTED.iter().find(|(t, _)| *t == content_type) else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("evidence must be image/jpeg or image/png, not {content_type:?}"),
        ));
    };
    if !body.starts_with(magic) {
        return Err(ApiError::invalid_field(
            "body",
            format!("the body is not a {content_type} file"),
        ));
    }
    Ok(content_type)
}

pub async fn put(
    State(app): State<AppState>,
    principal: Principal,
    Path(sha256): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let gateway = principal.gateway()?;
    check_name(&sha256)?;
    let content_type = check_image(&headers, &body)?;
    let actual = hex::encode(Sha256::digest(&body));
    if actual != sha256 {
        return Err(ApiError::invalid_field(
            "body",
            format!("the body's SHA-256 is {actual}, not {sha256}"),
        ));
    }
    let created = app.store.put_blob(&sha256, content_type, &body).await?;
    tracing::debug!(
        gateway,
        sha256,
        bytes = body.len(),
        created,
        "evidence blob uploaded"
    );
    Ok(if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    })
}

pub async fn get(
    State(app): State<AppState>,
    principal: Principal,
    Path(sha256): Path<String>,
) -> Result<Response, ApiError> {
    check_name(&sha256)?;
    match &principal {
        Principal::User {
            role: Role::Admin | Role::Operator,
            ..
        } => {}
        Principal::User {
            role: Role::Department,
            department: Some(d),
            ..
        } => {
            if !app.store.blob_belongs_to_department(&sha256, d).await? {
                return Err(ApiError::not_found("blob"));
            }
        }
        _ => return Err(ApiError::forbidden("this role may not read evidence")),
    }
    let blob = app
        .store
        .get_blob(&sha256)
        .await?
        .ok_or_else(|| ApiError::not_found("blob"))?;
    Ok((
        [
            (header::CONTENT_TYPE, blob.content_type),
            (
                header::CACHE_CONTROL,
                "private, max-age=31536000, immutable".to_owned(),
            ),
        ],
        blob.data,
    )
        .into_response())
}
