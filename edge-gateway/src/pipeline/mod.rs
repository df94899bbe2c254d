//! The video path, in flow order: `camera` (RTSP) → `decode` (FFmpeg, in software or on a
//! `hwaccel` device; sampled, gated by `motion`) → `frames` (latest wins; still frames as
//! notices) → `analyse` (detect, then per camera `watch`: `track`, `rules`, `hazard`, their
//! episodes in `episode`; and `reinspect`) → `events` (+ `snapshot`) → the outbox.
//! Beside it, `liveness` judges from a camera's state whether it is down long enough to tell.

pub mod analyse;
pub mod camera;
pub mod clip;
pub mod decode;
pub mod episode;
pub mod events;
pub mod frames;
pub mod hazard;
pub mod hwaccel;
pub mod liveness;
pub mod motion;
pub mod reinspect;
pub mod rules;
pub mod snapshot;
pub mod track;
pub mod watch;
