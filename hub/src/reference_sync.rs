//! Keeps the reference data in force in step with the database: imports (from the API, the
//! `hub import` command and the settings' first-start files) check a set against the
//! others and store it; a follower task picks up imports made by another process (the
//! command, or another hub on the same PostgreSQL).

use std::time::Duration;

use sha2::Digest;
use tokio_util::sync::CancellationToken;

use crate::config::ReferenceFile;
use crate::reference::{Reference, RowError, Set, Shared};
use crate::store::{ReferenceImport, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The set disagrees with the others in force; nothing was stored.
    #[error("{}", crate::reference::report(.0))]
    Rejected(Vec<RowError>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who is importing, from where, and the document's SHA-256 ([`digest`]) for the log.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub actor: &'a str,
    pub source: &'a str,
    pub sha256: &'a str,
}

/// A document's SHA-256, hex.
pub fn digest(document: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(document))
}

/// Checks `set` against `current` and stores it; returns the reference now in force.
pub async fn import(
    store: &Store,
    current: &Reference,
    set: Set,
    origin: Origin<'_>,
) -> Result<Reference, ImportError> {
    let kind = set.kind();
    let mut next = current.with(set).map_err(ImportError::Rejected)?;
    next.revision = store
        .replace_reference_set(
            &next,
            &ReferenceImport {
                kind,
                based_on: current.revision,
                sha256: origin.sha256,
                source: origin.source,
                actor: origin.actor,
            },
        )
        .await?;
    tracing::info!(
        %kind,
        revision = next.revision,
        actor = origin.actor,
        source = origin.source,
        "imported reference data"
    );
    Ok(next)
}

/// The reference data in the database, after importing each first-start file whose kind
/// the database holds none of yet.
pub async fn load_with_seed(
    store: &Store,
    seed: &[ReferenceFile],
) -> Result<Reference, ImportError> {
    let mut reference = store.load_reference().await?;
    for file in seed {
        let kind = file.set.kind();
        let source = format!("settings {}", file.path.display());
        if store.reference_set_info(kind).await?.is_some() {
            tracing::info!(
                %kind,
                file = %file.path.display(),
                "the database holds this reference set; the settings' file is used only on the first start"
            );
            continue;
        }
        reference = import(
            store,
            &reference,
            file.set.clone(),
            Origin {
                actor: "settings",
                source: &source,
                sha256: &file.sha256,
            },
        )
        .await
        .map_err(|e| match e {
            ImportError::Rejected(errors) => ImportError::Rejected(
                errors
                    .into_iter()
                    .map(|e| RowError {
                        message: format!("{}: {}", file.path.display(), e.message),
                        ..e
                    })
                    .collect(),
            ),
            other => other,
        })?;
    }
    Ok(reference)
}

/// How often a hub looks for imports made by another process.
pub const FOLLOW_INTERVAL: Duration = Duration::from_secs(5);

/// Puts imports made elsewhere in force here, until `shutdown`.
pub async fn follow(store: Store, shared: Shared, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(FOLLOW_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let newer = match store.reference_revision().await {
            Ok(revision) => revision > shared.current().revision,
            Err(e) => {
                tracing::warn!(error = %e, "could not look for new reference data");
                continue;
            }
        };
        if newer {
            match store.load_reference().await {
                Ok(reference) => {
                    tracing::info!(
                        revision = reference.revision,
                        "reference data imported elsewhere is now in force"
                    );
                    shared.install(reference);
                }
                Err(e) => tracing::warn!(error = %e, "could not load new reference data"),
            }
        }
    }
}
