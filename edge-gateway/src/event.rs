//! What the gateway's sources (camera rules, patrol terminals) hand to the outbox: an event
//! and the evidence blobs it references.

use protocol::{EventEnvelope, EvidenceKind, EvidenceRef};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone)]
pub struct NewEvent {
    pub envelope: EventEnvelope,
    pub blobs: Vec<Blob>,
}

/// An evidence file (snapshot or photo) and its content hash, which names it in the outbox
/// and at the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub sha256: String,
    pub content_type: &'static str,
    pub data: Vec<u8>,
}

impl Blob {
    pub fn jpeg(data: Vec<u8>) -> Self {
        Self::of("image/jpeg", data)
    }

    pub fn mp4(data: Vec<u8>) -> Self {
        Self::of("video/mp4", data)
    }

    fn of(content_type: &'static str, data: Vec<u8>) -> Self {
        Self {
            sha256: hex::encode(Sha256::digest(&data)),
            content_type,
            data,
        }
    }

    /// The reference an event carries to this blob.
    pub fn evidence(&self, kind: EvidenceKind) -> EvidenceRef {
        EvidenceRef {
            kind,
            sha256: self.sha256.clone(),
            content_type: self.content_type.to_owned(),
            bytes: self.data.len() as u64,
        }
    }
}
