//! One thread per camera decodes H.264/H.265 with FFmpeg. Every frame is decoded (later
//! frames depend on earlier ones) but only frames due for analysis, at the camera's
//! detection rate, are converted to BGR and offered to the detector; with motion gating,
//! only those of them that moved (or the periodic forced check), the others as still
//! notices.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ffmpeg::format::Pixel;
use ffmpeg::software::scaling;
use ffmpeg_next as ffmpeg;
use tokio::sync::mpsc;

use super::clip::ClipRing;
use super::frames::{Frame, FrameSlots};
use super::hwaccel::{self, HwDevice, HwSettings};
use super::motion::{MotionGate, MotionSettings, Thumb};
use crate::health::CameraHealth;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    H264,
    H265,
}

/// What the camera task sends its decoder.
pub enum DecoderInput {
    /// A (re)connected stream: start a fresh decoder.
    Start(Codec),
    /// The stream's next access unit.
    Frame(AccessUnit),
}

/// One access unit as it arrived: Annex B, parameter sets before each key frame.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessUnit {
    pub data: Vec<u8>,
    /// When it arrived.
    pub at: DateTime<Utc>,
    /// When it is shown, on the stream's clock (its RTP timestamp), in milliseconds from the
    /// stream's start: a stream with B-frames sends units out of this order.
    pub pts_ms: i64,
    /// A key frame (decoding can start here).
    pub key: bool,
}

/// B-frames move a picture's presentation a few frames from its place in decoding order;
/// a unit's RTP time further off than this is taken for a broken clock.
pub const MAX_REORDER_MS: i64 = 2_000;

/// Decides which frames are analysed: at most one per `interval`.
#[derive(Debug)]
pub struct Sampler {
    interval: Duration,
    last: Option<Instant>,
}

impl Sampler {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: None,
        }
    }

    pub fn due(&mut self, now: Instant) -> bool {
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < self.interval)
        {
            return false;
        }
        self.last = Some(now);
        true
    }
}

/// An FFmpeg decoder for one stream, with its colour converter.
pub struct Decoder {
    video: ffmpeg::decoder::Video,
    scaler: Option<(scaling::Context, (Pixel, u32, u32))>,
}

impl Decoder {
    /// A software decoder.
    pub fn open(codec: Codec) -> Result<Self, ffmpeg::Error> {
        Self::open_on(codec, None)
    }

    /// A decoder on `device` (hardware), or in software without one. Pictures a device
    /// decodes are copied back to memory by [`Self::download`].
    pub fn open_on(codec: Codec, device: Option<&HwDevice>) -> Result<Self, ffmpeg::Error> {
        let id = match codec {
            Codec::H264 => ffmpeg::codec::Id::H264,
            Codec::H265 => ffmpeg::codec::Id::HEVC,
        };
        let found = ffmpeg::decoder::find(id).ok_or(ffmpeg::Error::DecoderNotFound)?;
        let mut ctx = ffmpeg::codec::Context::new_with_codec(found);
        if let Some(device) = device {
            device.attach(&mut ctx);
        }
        Ok(Self {
            video: ctx.decoder().video()?,
            scaler: None,
        })
    }

    /// Brings a picture decoded on a device into memory, in place; a picture already in
    /// memory stays as it is.
    pub fn download(picture: &mut ffmpeg::frame::Video) -> Result<(), ffmpeg::Error> {
        if hwaccel::on_device(picture) {
            *picture = hwaccel::download(picture)?;
        }
        Ok(())
    }

    /// Feeds one access unit (Annex B, parameter sets before key frames) with its
    /// presentation time, which comes back as the pts of the picture it decodes to.
    pub fn send(&mut self, data: &[u8], pts: Option<i64>) -> Result<(), ffmpeg::Error> {
        let mut packet = ffmpeg::Packet::copy(data);
        packet.set_pts(pts);
        self.video.send_packet(&packet)
    }

    /// The next picture the units sent so far complete, into `picture`; false when none.
    pub fn receive(&mut self, picture: &mut ffmpeg::frame::Video) -> bool {
        self.video.receive_frame(picture).is_ok()
    }

    /// Converts a decoded picture to tightly packed BGR.
    pub fn convert_to_bgr(
        &mut self,
        picture: &ffmpeg::frame::Video,
    ) -> Result<(u32, u32, Vec<u8>), ffmpeg::Error> {
        let key = (picture.format(), picture.width(), picture.height());
        if self.scaler.as_ref().is_none_or(|(_, k)| *k != key) {
            let ctx = scaling::Context::get(
                key.0,
                key.1,
                key.2,
                Pixel::BGR24,
                key.1,
                key.2,
                scaling::Flags::BILINEAR,
            )?;
            self.scaler = Some((ctx, key));
        }
        let (scaler, _) = self.scaler.as_mut().expect("set above");
        let mut bgr = ffmpeg::frame::Video::empty();
        scaler.run(picture, &mut bgr)?;
        let (w, h) = (key.1 as usize, key.2 as usize);
        let stride = bgr.stride(0);
        let data = bgr.data(0);
        let mut packed = Vec::with_capacity(w * h * 3);
        for row in 0..h {
            packed.extend_from_slice(&data[row * stride..row * stride + w * 3]);
        }
        Ok((key.1, key.2, packed))
    }
}

/// The first picture `frames` (access units in Annex B form, from a key frame on) decode
/// to, as tightly packed BGR: for snapshots outside the camera pipeline (the probe).
pub fn first_picture(
    codec: Codec,
    frames: &[Vec<u8>],
) -> Result<Option<(u32, u32, Vec<u8>)>, ffmpeg::Error> {
    let mut decoder = Decoder::open(codec)?;
    let mut picture = ffmpeg::frame::Video::empty();
    for data in frames {
        decoder.send(data, None)?;
        if decoder.receive(&mut picture) {
            return decoder.convert_to_bgr(&picture).map(Some);
        }
    }
    decoder.video.send_eof()?;
    if decoder.video.receive_frame(&mut picture).is_ok() {
        return decoder.convert_to_bgr(&picture).map(Some);
    }
    Ok(None)
}

/// The decoded picture's luma as a motion thumbnail, for the 8-bit YUV formats decoders
/// give (the Y plane first); `None` for others (their frames are always analysed).
pub fn luma_thumb(picture: &ffmpeg::frame::Video) -> Option<Thumb> {
    match picture.format() {
        Pixel::YUV420P
        | Pixel::YUVJ420P
        | Pixel::YUV422P
        | Pixel::YUVJ422P
        | Pixel::YUV444P
        | Pixel::YUVJ444P
        | Pixel::NV12 => Thumb::from_luma(
            picture.data(0),
            picture.stride(0),
            picture.width() as usize,
            picture.height() as usize,
        ),
        _ => None,
    }
}

/// How a camera's decoder thread decodes: motion gating, the hardware to use, and how much
/// stream to keep for evidence clips.
#[derive(Debug, Clone, Default)]
pub struct DecodeSettings {
    pub motion: Option<MotionSettings>,
    pub hardware: Option<HwSettings>,
    pub clip: Option<Duration>,
}

/// Where a camera's decoder thread hands its work: the detector's slots, the camera's
/// health, and its evidence clip ring, if it keeps one.
pub struct Outlets<'a> {
    pub slots: &'a FrameSlots,
    pub health: &'a CameraHealth,
    pub clip: Option<&'a Mutex<ClipRing>>,
}

/// Opens the hardware device `settings` name, if any; one that cannot be opened is logged
/// and reported on the camera's health, and the camera decodes in software.
fn open_device(
    camera_id: &str,
    settings: Option<&HwSettings>,
    health: &CameraHealth,
) -> Option<HwDevice> {
    let settings = settings?;
    match HwDevice::open(settings) {
        Ok(device) => {
            health.update(|h| h.decoder = device.kind().as_str().to_owned());
            Some(device)
        }
        Err(e) => {
            tracing::warn!(camera = camera_id, error = %e, "hardware decoding unavailable; decoding in software");
            health.update(|h| {
                h.decoder = "software".into();
                h.last_error = Some(format!("{e}; decoding in software"));
            });
            None
        }
    }
}

/// Runs until the camera task drops its sender.
pub fn run(
    camera: usize,
    camera_id: &str,
    interval: Duration,
    settings: DecodeSettings,
    mut input: mpsc::Receiver<DecoderInput>,
    outlets: Outlets,
) {
    let Outlets {
        slots,
        health,
        clip,
    } = outlets;
    let device = open_device(camera_id, settings.hardware.as_ref(), health);
    let mut decoder: Option<Decoder> = None;
    let mut sampler = Sampler::new(interval);
    let mut gate = settings.motion.map(MotionGate::new);
    let mut picture = ffmpeg::frame::Video::empty();
    while let Some(msg) = input.blocking_recv() {
        match msg {
            DecoderInput::Start(codec) => {
                if let Some(ring) = clip {
                    ring.lock().unwrap_or_else(|e| e.into_inner()).start(codec);
                }
                match Decoder::open_on(codec, device.as_ref()) {
                    Ok(d) => {
                        decoder = Some(d);
                        if let Some(g) = gate.as_mut() {
                            g.reset();
                        }
                    }
                    Err(e) => {
                        tracing::error!(camera = camera_id, error = %e, "cannot open a decoder");
                        health.update(|h| {
                            h.last_error = Some(format!("cannot open a {codec:?} decoder: {e}"))
                        });
                        decoder = None;
                    }
                }
            }
            DecoderInput::Frame(unit) => {
                let Some(d) = decoder.as_mut() else { continue };
                if let Err(e) = d.send(&unit.data, Some(unit.pts_ms)) {
                    health.update(|h| {
                        h.decode_errors += 1;
                        h.last_error = Some(format!("decode error: {e}"));
                    });
                    continue;
                }
                let (at, pts_ms) = (unit.at, unit.pts_ms);
                if let Some(ring) = clip {
                    let mut ring = ring.lock().unwrap_or_else(|e| e.into_inner());
                    ring.push(unit);
                }
                while d.receive(&mut picture) {
                    let at = capture_time(at, pts_ms, picture.pts());
                    health.update(|h| {
                        h.frames_decoded += 1;
                        h.width = Some(picture.width());
                        h.height = Some(picture.height());
                    });
                    let now = Instant::now();
                    if !sampler.due(now) {
                        continue;
                    }
                    if let Err(e) = Decoder::download(&mut picture) {
                        health.update(|h| {
                            h.decode_errors += 1;
                            h.last_error = Some(format!("copying a picture from the device: {e}"));
                        });
                        continue;
                    }
                    if let Some(g) = gate.as_mut()
                        && !g.admit(luma_thumb(&picture), now)
                    {
                        health.update(|h| h.frames_still += 1);
                        slots.still(camera, at);
                        continue;
                    }
                    match d.convert_to_bgr(&picture) {
                        Ok((width, height, bgr)) => {
                            let dropped = slots.put(Frame {
                                camera,
                                width,
                                height,
                                bgr,
                                captured_at: at,
                            });
                            if dropped {
                                health.update(|h| h.frames_dropped += 1);
                            }
                        }
                        Err(e) => health.update(|h| {
                            h.last_error = Some(format!("colour conversion failed: {e}"))
                        }),
                    }
                }
            }
        }
    }
}

/// When a picture was taken: the arrival of the unit just sent, moved by how much earlier
/// the picture is shown (a decoder gives pictures of a stream with B-frames some units
/// later than their own), by at most [`MAX_REORDER_MS`].
fn capture_time(
    arrived: DateTime<Utc>,
    sent_pts_ms: i64,
    picture_pts: Option<i64>,
) -> DateTime<Utc> {
    let earlier = picture_pts.map_or(0, |pts| (sent_pts_ms - pts).clamp(0, MAX_REORDER_MS));
    arrived - chrono::Duration::milliseconds(earlier)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampler_lets_one_frame_through_per_interval() {
        let mut s = Sampler::new(Duration::from_millis(500));
        let t0 = Instant::now();
        let due: Vec<bool> = (0..10)
            .map(|i| s.due(t0 + Duration::from_millis(100 * i)))
            .collect();
        assert_eq!(
            due,
            vec![
                true, false, false, false, false, true, false, false, false, false
            ]
        );
    }

    #[test]
    fn a_picture_shown_before_the_unit_just_sent_was_taken_that_much_earlier() {
        let t = DateTime::from_timestamp_millis(1_800_000_000_000).unwrap();
        let ms = chrono::Duration::milliseconds;
        assert_eq!(capture_time(t, 120, Some(40)), t - ms(80));
        assert_eq!(capture_time(t, 120, Some(120)), t);
        assert_eq!(capture_time(t, 120, None), t, "a picture without a time");
        assert_eq!(
            capture_time(t, 120, Some(160)),
            t,
            "never after its arrival"
        );
        assert_eq!(
            capture_time(t, 90_000, Some(0)),
            t - ms(2_000),
            "a broken clock"
        );
    }
}
