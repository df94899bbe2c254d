//! Gateway integration tests: the real models through ONNX Runtime on licensed test images
//! and generated road scenes, the model cache and fetch, the outbox, patrol terminals
//! against real MQTT brokers, and the settings file.

mod clip;
mod config;
mod detector;
mod local_api;
mod model_cache;
mod model_quality;
mod onvif;
mod outbox;
mod patrol;
mod probe;
mod support;
mod tools;
mod uplink;
