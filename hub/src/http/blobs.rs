//! Evidence blobs by content hash: gateways upload (`PUT`, idempotent), users download
//! (`GET`) what their role lets them see.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::{AppState, error::ApiError};
use crate::store::{Principal, Role};

/// A file type accepted: its content type, and the bytes its files have at an offset.
type Kind = (&'static str, usize, &'static [u8]);

/// The image types accepted as photos.
const IMAGES: [Kind; 2] = [
    ("image/jpeg", 0, &[0xFF, 0xD8, 0xFF]),
    ("image/png", 0, b"\x89PNG\r\n\x1a\n"),
];

/// The types accepted as evidence from gateways: images, and clips (an MP4 file starts
/// with its `ftyp` box).
const EVIDENCE: [Kind; 3] = [IMAGES[0], IMAGES[1], ("video/mp4", 4, b"ftyp")];

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
    check_kind(headers, body, &IMAGES)
}

/// The body's type, if it is one of `accepted` and its bytes match its content type.
fn check_kind(
    headers: &HeaderMap,
    body: &[u8],
    accepted: &[Kind],
) -> Result<&'static str, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some((content_type, offset, magic)) = accepted.iter().find(|(t, ..)| *t == content_type)
    else {
        let names: Vec<&str> = accepted.iter().map(|(t, ..)| *t).collect();
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("must be {}, not {content_type:?}", names.join(" or ")),
        ));
    };
    if body
        .get(*offset..)
        .is_none_or(|rest| !rest.starts_with(magic))
    {
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
    let content_type = check_kind(&headers, &body, &EVIDENCE)?;
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
