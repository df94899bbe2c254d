//! Model manifests (`models/*.toml`): what a model file is, where it comes from, how to
//! feed it and how to read its output. The gateway trusts a model file only if its SHA-256
//! matches the manifest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use protocol::{CategoryCode, Severity};
use serde::Deserialize;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelManifest {
    pub name: String,
    pub version: String,
    /// File name in the cache.
    pub file: String,
    /// Public URL the file is fetched from when no folder has it; absent for a model kept
    /// in this repository beside its manifest.
    #[serde(default)]
    pub url: Option<String>,
    pub sha256: String,
    pub license: String,
    #[serde(default)]
    pub attribution: Option<String>,
    pub input: InputSpec,
    pub decoder: DecoderSpec,
    /// Class names by output index.
    pub labels: Vec<String>,
    /// What a detected class means, by label: the rule that uses it and the event category
    /// it raises.
    #[serde(default)]
    pub events: BTreeMap<String, ClassEvent>,
    /// The quality the model was measured at (see the model card); `model-eval --check`
    /// holds a new measurement to it.
    #[serde(default)]
    pub evaluation: Option<EvaluationSpec>,
    /// The folder the manifest was read from: the first place its model file is looked for.
    #[serde(skip)]
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassEvent {
    /// `crowd` (persons counted in a zone) or `hazard` (an object that is itself a problem).
    pub rule: String,
    pub category: CategoryCode,
    /// The event's severity for a hazard; a crowd's comes from its count.
    #[serde(default)]
    pub severity: Option<Severity>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationSpec {
    /// The operating score: precision, recall and confusion are measured at it.
    pub score_threshold: f32,
    /// Overlap a detection needs with a labelled box to count as finding it.
    pub iou: f32,
    /// How far below the recorded numbers a new measurement may fall.
    pub margin: f64,
    #[serde(default)]
    pub expect: Vec<ExpectedClass>,
    #[serde(default)]
    pub confusion: Vec<ExpectedConfusion>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedClass {
    pub class: String,
    pub precision: f64,
    pub recall: f64,
    pub ap50: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedConfusion {
    /// Two labels whose mix-ups are counted together.
    pub between: [String; 2],
    /// The largest share of their found boxes given the other label.
    pub max: f64,
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
    /// `letterbox_top_left`: keep aspect ratio, pad right/bottom with `pad_value`;
    /// `stretch`: resize to the input size, aspect ratio not kept.
    pub resize: String,
    #[serde(default)]
    pub pad_value: u8,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecoderSpec {
    /// `yolox`: `[1, cells, 5 + classes]`, raw grid regressions with sigmoided objectness
    /// and class scores; `fastestdet`: `[1, 5 + classes, H, W]`, one grid (see
    /// `detect/fastestdet.rs`); `yolov5` / `yolov8`: boxes in input pixels (see
    /// `detect/yolo_pixels.rs`).
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
        let mut m: ModelManifest = toml::from_str(&text).map_err(|e| fail(e.to_string()))?;
        m.dir = path.parent().unwrap_or(Path::new(".")).to_owned();
        if m.sha256.len() != 64 || !m.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(fail("sha256 must be 64 hex digits".into()));
        }
        if m.file.contains('/') || m.file.contains('\\') || m.file.starts_with('.') {
            return Err(fail("file must be a plain file name".into()));
        }
        if !matches!(
            m.decoder.kind.as_str(),
            "yolox" | "fastestdet" | "yolov5" | "yolov8"
        ) {
            return Err(fail(format!(
                "decoder.kind {:?} is not supported (yolox, fastestdet, yolov5 and yolov8 are)",
                m.decoder.kind
            )));
        }
        let grid = matches!(m.decoder.kind.as_str(), "yolox" | "fastestdet");
        if m.decoder.kind == "fastestdet" && m.decoder.strides.len() != 1 {
            return Err(fail("decoder.strides: fastestdet has one grid".into()));
        }
        if m.input.color != "bgr"
            || !matches!(m.input.resize.as_str(), "letterbox_top_left" | "stretch")
        {
            return Err(fail(
                "only input.color = \"bgr\" with resize = \"letterbox_top_left\" or \"stretch\" is supported"
                    .into(),
            ));
        }
        if m.input.width == 0
            || m.input.height == 0
            || m.labels.is_empty()
            || (grid && m.decoder.strides.is_empty())
        {
            return Err(fail(
                "input size, labels and (for grid decoders) decoder.strides must not be empty"
                    .into(),
            ));
        }
        m.check_labels().map_err(fail)?;
        Ok(m)
    }

    /// Every label named in `events` and `evaluation` must be one of the model's.
    fn check_labels(&self) -> Result<(), String> {
        let known = |l: &String| self.labels.contains(l);
        for (label, e) in &self.events {
            if !known(label) {
                return Err(format!("events.{label}: not one of the model's labels"));
            }
            if !matches!(e.rule.as_str(), "crowd" | "hazard") {
                return Err(format!(
                    "events.{label}.rule: {:?} is not a rule (crowd or hazard)",
                    e.rule
                ));
            }
        }
        if let Some(ev) = &self.evaluation {
            let named = ev
                .expect
                .iter()
                .map(|x| &x.class)
                .chain(ev.confusion.iter().flat_map(|c| c.between.iter()));
            for label in named {
                if !known(label) {
                    return Err(format!(
                        "evaluation: {label:?} is not one of the model's labels"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The output index of `label`.
    pub fn class_index(&self, label: &str) -> Option<usize> {
        self.labels.iter().position(|l| l == label)
    }

    /// `name@version`, as events name the model.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// Finds the model file in `search` (first folder that has it), or fetches it into
    /// `cache`. A file whose hash does not match is refused, never used.
    pub async fn resolve(&self, search: &[PathBuf], cache: &Path) -> Result<PathBuf, ModelError> {
        for dir in std::iter::once(&self.dir).chain(search) {
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
        let Some(url) = &self.url else {
            return Err(ModelError::Fetch {
                name: self.name.clone(),
                url: "(none)".into(),
                message: format!(
                    "{} is not beside its manifest in {} and the manifest names no url to fetch it from",
                    self.file,
                    self.dir.display()
                ),
            });
        };
        let fail = |message: String| ModelError::Fetch {
            name: self.name.clone(),
            url: url.clone(),
            message,
        };
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| ModelError::Io { path, source }
        };
        tokio::fs::create_dir_all(cache).await.map_err(io(cache))?;
        tracing::info!(model = %self.id(), %url, cache = %cache.display(), "fetching model");
        let client = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(20))
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let mut resp = client
            .get(url)
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
                path: PathBuf::from(url),
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
