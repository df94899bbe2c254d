//! Gateway integration tests: the real model through ONNX Runtime on licensed test images,
//! the model cache and fetch, the outbox, patrol terminals against real MQTT brokers, and
//! the settings file.

mod config;
mod detector;
mod model_cache;
mod outbox;
mod patrol;
mod support;
