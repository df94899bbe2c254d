//! Model manifests (`models/*.toml`): what a model file is, where it comes from, how to
//! feed it and how to read its output. The gateway trusts a model file only if its SHA-256
//! matches the manifest.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelManifest {
    pub name: String,
    pub version: String,
    /// File name in the cache.
    pub file: String,
    /// Public URL the file is fetched from when no cache has it.
    pub url: String,
    pub sha256: String,
    pub license: String,
    #[serde(default)]
    pub attribution: Option<String>,
    pub input: InputSpec,
    pub decoder: DecoderSpec,
    /// Class names by output index.
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    pub width: u32,
    pub height: u32,
    /// Only `bgr` is implemented so far.
    pub color: String,
    /// Multiplier applied to 0–255 pixel values (1.0 keeps them, 1/255 scales to 0–1).
    pub scale: f32,
    /// `letterbox_top_left`: keep aspect ratio, pad right/bottom with `pad_value`.
    pub resize: String,
    #[serde(default)]
    pub pad_value: u8,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecoderSpec {
    /// `yolox`: raw grid regressions with sigmoided objectness and class scores.
    pub kind: String,
    #[serde(default)]
    pub strides: Vec<u32>,
    /// Minimum score a candidate box needs before NMS.
    pub score_threshold: f32,
    pub nms_iou: f32,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model manifest {path}: {message}")]
    Manifest { path: PathBuf, message: String },
    #[error("refusing model file {path}: its SHA-256 is {actual}, the manifest says {expected}")]
    Checksum {
        path: PathBuf,
        actual: String,
        expected: String,
    },
    #[error("fetching model {name} from {url}: {message}")]
    Fetch {
        name: String,
        url: String,
        message: String,
    },
    #[error("model cache {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ModelManifest {
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let fail = |message: String| ModelError::Manifest {
            path: path.to_owned(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let m: ModelManifest = toml::from_str(&text).map_err(|e| fail(e.to_string()))?;
        if m.sha256.len() != 64 || !m.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(fail("sha256 must be 64 hex digits".into()));
        }
        if m.file.contains('/') || m.file.contains('\\') || m.file.starts_with('.') {
            return Err(fail("file must be a plain file name".into()));
        }
        if m.decoder.kind != "yolox" {
            return Err(fail(format!(
                "decoder.kind {:?} is not supported (yolox is)",
                m.decoder.kind
            )));
        }
        if m.input.color != "bgr" || m.input.resize != "letterbox_top_left" {
            return Err(fail(
                "only input.color = \"bgr\" with resize = \"letterbox_top_left\" is supported"
                    .into(),
            ));
        }
        if m.input.width == 0
            || m.input.height == 0
            || m.labels.is_empty()
            || m.decoder.strides.is_empty()
        {
            return Err(fail(
                "input size, labels and decoder.strides must not be empty".into(),
            ));
        }
        Ok(m)
    }

    /// `name@version`, as events name the model.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// Finds the model file in `search` (first folder that has it), or fetches it into
    /// `cache`. A file whose hash does not match is refused, never used.
    pub async fn resolve(&self, search: &[PathBuf], cache: &Path) -> Result<PathBuf, ModelError> {
        for dir in search {
            let path = dir.join(&self.file);
            if path.is_file() {
                self.verify(&path)?;
                return Ok(path);
            }
        }
        self.fetch(cache).await
    }

    fn verify(&self, path: &Path) -> Result<(), ModelError> {
        let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
            path: path.to_owned(),
            source,
        })?;
        let actual = hex::encode(Sha256::digest(&bytes));
        if actual.eq_ignore_ascii_case(&self.sha256) {
            Ok(())
        } else {
            Err(ModelError::Checksum {
                path: path.to_owned(),
                actual,
                expected: self.sha256.clone(),
            })
        }
    }

    async fn fetch(&self, cache: &Path) -> Result<PathBuf, ModelError> {
        let fail = |message: String| ModelError::Fetch {
            name: self.name.clone(),
            url: self.url.clone(),
            message,
        };
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| ModelError::Io { path, source }
        };
        tokio::fs::create_dir_all(cache).await.map_err(io(cache))?;
        tracing::info!(model = %self.id(), url = %self.url, cache = %cache.display(), "fetching model");
        let client = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(20))
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let mut resp = client
            .get(&self.url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| fail(e.to_string()))?;
        let partial = cache.join(format!("{}.partial", self.file));
        let mut hasher = Sha256::new();
        let mut data = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| fail(e.to_string()))? {
            hasher.update(&chunk);
            data.extend_from_slice(&chunk);
            if data.len() > 1 << 30 {
                return Err(fail("the download is larger than 1 GiB".into()));
            }
        }
        let actual = hex::encode(hasher.finalize());
        if !actual.eq_ignore_ascii_case(&self.sha256) {
            return Err(ModelError::Checksum {
                path: PathBuf::from(&self.url),
                actual,
                expected: self.sha256.clone(),
            });
        }
        tokio::fs::write(&partial, &data)
            .await
            .map_err(io(&partial))?;
        let path = cache.join(&self.file);
        tokio::fs::rename(&partial, &path)
            .await
            .map_err(io(&path))?;
        Ok(path)
    }
}
