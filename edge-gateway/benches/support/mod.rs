//! What the detector benches share: the model's arguments and loading it.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use edge_gateway::detect::{Detector, ModelManifest, init_runtime};
use ort::environment::Environment;

#[derive(Args)]
pub struct ModelArgs {
    /// Model manifest.
    #[arg(long, default_value = "../models/yolox-nano.toml")]
    pub manifest: PathBuf,
    /// Folder holding the model file, when it is not beside its manifest (else MODEL_CACHE,
    /// else ../shared/models beside the repository).
    #[arg(long)]
    pub models: Option<PathBuf>,
    /// Intra-op threads of one inference.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
}

/// ONNX Runtime, loaded, and the model's manifest and file (its SHA-256 checked).
pub struct Model {
    pub env: Environment,
    pub manifest: ModelManifest,
    pub file: PathBuf,
    pub threads: usize,
}

impl ModelArgs {
    pub fn load(&self) -> anyhow::Result<Model> {
        let (manifest, file) = self.find(&self.manifest)?;
        let dylib = std::env::var_os("ORT_DYLIB_PATH")
            .map(PathBuf::from)
            .context("set ORT_DYLIB_PATH (source .cache/env.sh)")?;
        let env = init_runtime(Some(&dylib), self.threads)?;
        Ok(Model {
            env,
            manifest,
            file,
            threads: self.threads,
        })
    }

    /// The manifest at `path` and its model file (its SHA-256 checked), from the models'
    /// folder.
    pub fn find(&self, path: &Path) -> anyhow::Result<(ModelManifest, PathBuf)> {
        let manifest = ModelManifest::load(path)?;
        let search = self
            .models
            .clone()
            .or_else(|| std::env::var_os("MODEL_CACHE").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("../../shared/models"));
        let file = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(manifest.resolve(std::slice::from_ref(&search), &search))?;
        Ok((manifest, std::fs::canonicalize(file)?))
    }
}

impl Model {
    /// A detector on the model, on the environment's threads (as many as asked for).
    pub fn detector(&self) -> anyhow::Result<Detector> {
        Ok(Detector::new(&self.env, &self.file, self.manifest.clone())?)
    }
}
