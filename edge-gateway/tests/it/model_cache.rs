//! Finding a model in the cache folders, fetching it from its URL (a real HTTP server on
//! port 0 stands in for the public host), and refusing a file whose SHA-256 is wrong.

use std::path::PathBuf;

use edge_gateway::detect::{ModelError, ModelManifest};
use sha2::{Digest, Sha256};

use crate::support::repo;

/// Serves `body` at every path on a loopback port; returns the base URL.
async fn serve(body: &'static [u8]) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(move || async move { body });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn manifest(url: String, body: &[u8]) -> ModelManifest {
    let mut m = ModelManifest::load(&repo().join("models/yolox-nano.toml")).unwrap();
    m.url = Some(url);
    m.file = "tiny.onnx".into();
    m.sha256 = hex::encode(Sha256::digest(body));
    m
}

#[tokio::test]
async fn fetches_into_the_cache_once_and_verifies() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    const BODY: &[u8] = b"pretend these are ONNX weights";
    let url = serve(BODY).await;
    let cache = tempfile::tempdir().unwrap();
    let m = manifest(format!("{url}/model.onnx"), BODY);
    let path = m
        .resolve(&[cache.path().to_owned()], cache.path())
        .await
        .unwrap();
    assert_eq!(path, cache.path().join("tiny.onnx"));
    assert_eq!(std::fs::read(&path).unwrap(), BODY);
    // Found in the cache the second time, even with the server unreachable.
    let offline = ModelManifest {
        url: Some("http://127.0.0.1:9/gone".into()),
        ..m
    };
    assert_eq!(
        offline
            .resolve(&[cache.path().to_owned()], cache.path())
            .await
            .unwrap(),
        path
    );
}

#[tokio::test]
async fn refuses_a_download_with_the_wrong_hash() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = serve(b"tampered weights").await;
    let cache = tempfile::tempdir().unwrap();
    let m = manifest(format!("{url}/model.onnx"), b"the real weights");
    let err = m.resolve(&[], cache.path()).await.unwrap_err();
    assert!(matches!(err, ModelError::Checksum { .. }), "{err}");
    assert!(
        !cache.path().join("tiny.onnx").exists(),
        "a refused download must not enter the cache"
    );
}

#[tokio::test]
async fn refuses_a_cached_file_with_the_wrong_hash() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tiny.onnx"), b"corrupted").unwrap();
    let m = manifest("http://127.0.0.1:9/unused".into(), b"the real weights");
    let err = m
        .resolve(&[dir.path().to_owned()], dir.path())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("refusing model file") && err.contains("tiny.onnx"),
        "{err}"
    );
}

#[tokio::test]
async fn the_shared_model_matches_its_manifest() {
    let m = ModelManifest::load(&repo().join("models/yolox-nano.toml")).unwrap();
    let shared: PathBuf = crate::support::shared().join("models");
    let path = m
        .resolve(std::slice::from_ref(&shared), &shared)
        .await
        .unwrap();
    assert!(path.starts_with(&shared));
}

#[test]
fn bad_manifests_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(repo().join("models/yolox-nano.toml")).unwrap();
    for (broken, reason) in [
        (
            good.replace("kind = \"yolox\"", "kind = \"ssd\""),
            "decoder.kind",
        ),
        (
            good.replace("file = \"yolox_nano.onnx\"", "file = \"../evil.onnx\""),
            "plain file name",
        ),
        (good.replace("sha256 = \"695e", "sha256 = \"zz5e"), "sha256"),
        (good.replace("license =", "licence ="), "licence"),
        (
            good.replace("[events.person]", "[events.pedestrian]"),
            "events.pedestrian",
        ),
        (
            good.replace("rule = \"crowd\"", "rule = \"queue\""),
            "events.person.rule",
        ),
    ] {
        let path = dir.path().join("m.toml");
        std::fs::write(&path, broken).unwrap();
        let err = ModelManifest::load(&path).unwrap_err().to_string();
        assert!(err.contains(reason), "{err:?} should mention {reason:?}");
    }
}

#[tokio::test]
async fn the_project_model_is_found_beside_its_manifest() {
    let m = ModelManifest::load(&repo().join("models/manhole-v1.toml")).unwrap();
    let empty = tempfile::tempdir().unwrap();
    let path = m
        .resolve(&[empty.path().to_owned()], empty.path())
        .await
        .unwrap();
    assert_eq!(path, repo().join("models/manhole-v1.onnx"));
    // Elsewhere, with no URL to fetch from, the error says where it looked.
    let moved = ModelManifest {
        dir: empty.path().to_owned(),
        ..m
    };
    let err = moved
        .resolve(&[], empty.path())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("manhole-v1.onnx") && err.contains("names no url"),
        "{err}"
    );
}

#[test]
fn ultralytics_layouts_need_no_strides_but_grids_do() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(repo().join("models/yolox-nano.toml")).unwrap();
    let path = dir.path().join("m.toml");
    let v8 = good
        .replace("kind = \"yolox\"", "kind = \"yolov8\"")
        .replace("strides = [8, 16, 32]\n", "");
    std::fs::write(&path, &v8).unwrap();
    assert_eq!(ModelManifest::load(&path).unwrap().decoder.kind, "yolov8");
    std::fs::write(&path, v8.replace("yolov8", "yolox")).unwrap();
    let err = ModelManifest::load(&path).unwrap_err().to_string();
    assert!(err.contains("decoder.strides"), "{err}");
}
