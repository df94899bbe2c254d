//! Paths to the shared test data and the ONNX Runtime library.

use std::path::PathBuf;

pub use system_tests::{repo, shared};

/// The ONNX Runtime library, from `ORT_DYLIB_PATH` (the test command sets it).
pub fn onnxruntime() -> PathBuf {
    PathBuf::from(std::env::var_os("ORT_DYLIB_PATH").expect(
        "ORT_DYLIB_PATH must point at libonnxruntime.so; run the tests with scripts/test.sh",
    ))
}

/// Decodes a JPEG into tightly packed BGR.
pub fn load_bgr(name: &str) -> (Vec<u8>, u32, u32) {
    edge_gateway::detect::load_bgr(&shared().join("testdata").join(name)).unwrap()
}
