//! Evidence clips: the last seconds of a camera's stream, kept as it arrived (encoded, never
//! decoded again), turned into an MP4 when a rule's episode starts, so the event shows how
//! it came about. The decoder thread feeds the [`ClipRing`]; the detection thread takes a
//! [`Recording`] from it and [`mp4`] remuxes that with FFmpeg (no re-encoding).
//!
//! Units arrive in decoding order, which differs from presentation order in streams with
//! B-frames; each carries its presentation time from the stream's RTP timestamps, and the
//! MP4 gets both times (see [`timing`]).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ffmpeg_next as ffmpeg;

use super::decode::{AccessUnit, Codec, MAX_REORDER_MS};

/// A clip never holds more than this, whatever the stream's bitrate (the hub takes blobs
/// of up to 8 MiB by default).
pub const MAX_CLIP_BYTES: usize = 4 << 20;

/// The stream's recent access units, from a key frame on, covering at least `keep` where
/// the stream's key frames and `MAX_CLIP_BYTES` allow.
#[derive(Debug)]
pub struct ClipRing {
    keep: Duration,
    codec: Option<Codec>,
    units: VecDeque<AccessUnit>,
    bytes: usize,
}

/// A camera's ring, shared by its decoder thread (writing) and the detection thread.
pub type SharedRing = Arc<Mutex<ClipRing>>;

/// Access units from a key frame on, ready to be remuxed.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    pub codec: Codec,
    pub units: Vec<AccessUnit>,
}

impl ClipRing {
    pub fn new(keep: Duration) -> Self {
        Self {
            keep,
            codec: None,
            units: VecDeque::new(),
            bytes: 0,
        }
    }

    pub fn shared(keep: Duration) -> SharedRing {
        Arc::new(Mutex::new(Self::new(keep)))
    }

    /// A new stream (a reconnect, maybe another codec): what came before is dropped.
    pub fn start(&mut self, codec: Codec) {
        self.codec = Some(codec);
        self.units.clear();
        self.bytes = 0;
    }

    /// Keeps an access unit; a ring starts at a key frame, and whole groups of pictures
    /// leave its front once the rest still covers `keep` (or to stay under the byte cap).
    pub fn push(&mut self, unit: AccessUnit) {
        if self.codec.is_none() || (self.units.is_empty() && !unit.key) {
            return;
        }
        self.bytes += unit.data.len();
        let since = unit.at - self.keep;
        self.units.push_back(unit);
        while let Some(next_key) = self.units.iter().skip(1).position(|u| u.key).map(|i| i + 1) {
            let covered = self.units[next_key].at <= since;
            if !covered && self.bytes <= MAX_CLIP_BYTES {
                break;
            }
            for unit in self.units.drain(..next_key) {
                self.bytes -= unit.data.len();
            }
        }
        if self.bytes > MAX_CLIP_BYTES {
            // One group of pictures larger than the cap: nothing worth keeping until the next
            // key frame.
            self.units.clear();
            self.bytes = 0;
        }
    }

    /// The units up to `until` (the frame an event is raised on), from the ring's first key
    /// frame; `None` when there are none.
    pub fn recording(&self, until: DateTime<Utc>) -> Option<Recording> {
        let codec = self.codec?;
        let units: Vec<_> = self
            .units
            .iter()
            .take_while(|u| u.at <= until)
            .cloned()
            .collect();
        (!units.is_empty()).then_some(Recording { codec, units })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    #[error("writing the clip's files: {0}")]
    Io(#[from] std::io::Error),
    #[error("FFmpeg: {0}")]
    Ffmpeg(#[from] ffmpeg::Error),
    #[error("the recording has no video stream")]
    NoVideo,
}

/// The recording as an MP4 file (moov first, so it plays while it loads).
pub fn mp4(recording: &Recording) -> Result<Vec<u8>, ClipError> {
    let dir = tempfile::tempdir()?;
    let raw = dir.path().join(match recording.codec {
        Codec::H264 => "clip.h264",
        Codec::H265 => "clip.hevc",
    });
    let mut stream = Vec::new();
    for unit in &recording.units {
        stream.extend_from_slice(&unit.data);
    }
    std::fs::write(&raw, &stream)?;
    let out_path = dir.path().join("clip.mp4");
    let mut input = ffmpeg::format::input(&raw)?;
    let video = input
        .streams()
        .best(ffmpeg::media::Type::Video)
        .ok_or(ClipError::NoVideo)?;
    let index = video.index();
    let mut output = ffmpeg::format::output_as(&out_path, "mp4")?;
    {
        let mut out_stream = output.add_stream(ffmpeg::encoder::find(ffmpeg::codec::Id::None))?;
        out_stream.set_parameters(video.parameters());
        out_stream.set_time_base(MILLIS);
    }
    let mut options = ffmpeg::Dictionary::new();
    options.set("movflags", "+faststart");
    output.write_header_with(options)?;
    let time_base = output.stream(0).ok_or(ClipError::NoVideo)?.time_base();
    let times = timing(&recording.units);
    let packets = input.packets().filter(|(s, _)| s.index() == index);
    for ((_, mut packet), time) in packets.zip(times) {
        packet.set_pts(Some(time.pts));
        packet.set_dts(Some(time.dts));
        packet.set_duration(time.duration);
        packet.rescale_ts(MILLIS, time_base);
        packet.set_position(-1);
        packet.set_stream(0);
        packet.write_interleaved(&mut output)?;
    }
    output.write_trailer()?;
    drop(output);
    Ok(std::fs::read(&out_path)?)
}

const MILLIS: ffmpeg::Rational = ffmpeg::Rational(1, 1000);

/// A packet's times in the MP4, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Timing {
    /// Presentation.
    pts: i64,
    /// Decoding: strictly increasing, never after `pts`.
    dts: i64,
    /// Until the next picture shown (the last one too, or players drop it).
    duration: i64,
}

/// Each unit's times, in decoding order, then on at the stream's mean pace (the demuxer
/// may split the stream a little differently from the units).
///
/// Presentation times are the units' RTP times where those are usable (distinct, a little
/// reordered at most, without jumps), else their arrival times (kept increasing). Decoding times are the presentation
/// times in sorted order, and presentation is delayed by the largest reordering so that no
/// picture is shown before it is decoded: a stream without B-frames gets equal times.
fn timing(units: &[AccessUnit]) -> impl Iterator<Item = Timing> + use<> {
    let mut shown = presentation_millis(units);
    let base = shown.iter().copied().min().unwrap_or(0);
    shown.iter_mut().for_each(|t| *t -= base);
    let mut sorted = shown.clone();
    sorted.sort_unstable();
    let delay = sorted
        .iter()
        .zip(&shown)
        .map(|(dts, pts)| dts - pts)
        .max()
        .unwrap_or(0);
    let span = sorted.last().copied().unwrap_or(0);
    let step = match sorted.len() {
        0 | 1 => 40,
        n => span / (n as i64 - 1),
    };
    let known: Vec<Timing> = shown
        .iter()
        .zip(&sorted)
        .map(|(&pts, &dts)| {
            let next = sorted.partition_point(|t| *t <= pts);
            Timing {
                pts: pts + delay,
                dts,
                duration: sorted.get(next).map_or(step, |t| t - pts),
            }
        })
        .collect();
    let after = span + delay;
    known.into_iter().chain((1..).map(move |k| {
        let t = after + k * step;
        Timing {
            pts: t,
            dts: t,
            duration: step,
        }
    }))
}

/// The units' presentation times in milliseconds: from RTP where usable, else arrival.
fn presentation_millis(units: &[AccessUnit]) -> Vec<i64> {
    let rtp: Vec<i64> = units.iter().map(|u| u.pts_ms).collect();
    let mut sorted = rtp.clone();
    sorted.sort_unstable();
    let distinct = sorted.windows(2).all(|w| w[0] < w[1]);
    let reordered_a_little = sorted
        .iter()
        .zip(&rtp)
        .all(|(s, r)| (s - r).abs() <= MAX_REORDER_MS);
    let steady = rtp
        .windows(2)
        .all(|w| (w[1] - w[0]).abs() <= MAX_RTP_STEP_MS);
    if distinct && reordered_a_little && steady {
        return rtp;
    }
    let Some(first) = units.first().map(|u| u.at) else {
        return Vec::new();
    };
    let mut times: Vec<i64> = Vec::with_capacity(units.len());
    for unit in units {
        let ms = (unit.at - first).num_milliseconds();
        let floor = times.last().map_or(0, |t| t + 1);
        times.push(ms.max(floor));
    }
    times
}

/// RTP times are taken for a broken clock (and arrival times used instead) when a unit's
/// is further than `MAX_REORDER_MS` from its place in presentation order, or consecutive
/// units' are further apart than this.
const MAX_RTP_STEP_MS: i64 = 10_000;

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_800_000_000_000 + ms).unwrap()
    }

    /// A unit arriving at `ms`, shown at the same time.
    fn unit(ms: i64, key: bool, data: Vec<u8>) -> AccessUnit {
        AccessUnit {
            data,
            at: t(ms),
            pts_ms: ms,
            key,
        }
    }

    /// 25 frames a second, a key frame every `gop` frames, for `frames` frames.
    fn fill(ring: &mut ClipRing, frames: i64, gop: i64, bytes: usize) {
        for i in 0..frames {
            ring.push(unit(i * 40, i % gop == 0, vec![i as u8; bytes]));
        }
    }

    fn starts(recording: &Recording) -> (DateTime<Utc>, usize) {
        (recording.units[0].at, recording.units.len())
    }

    #[test]
    fn the_ring_starts_at_a_key_frame_and_covers_what_it_keeps() {
        let mut ring = ClipRing::new(Duration::from_secs(5));
        ring.push(unit(0, true, vec![1]));
        assert!(ring.recording(t(0)).is_none(), "no stream started yet");
        ring.start(Codec::H264);
        ring.push(unit(0, false, vec![1]));
        assert!(
            ring.recording(t(0)).is_none(),
            "a ring starts at a key frame"
        );
        // 20 s at 25 fps with a key frame every 2 s: the clip starts at the last key frame
        // at least 5 s before the newest frame (14 s, for a newest at 19.96 s).
        fill(&mut ring, 500, 50, 10);
        let all = ring.recording(t(20_000)).unwrap();
        assert_eq!(starts(&all), (t(14_000), 150));
        assert_eq!(all.codec, Codec::H264);
        // Up to an earlier frame only.
        assert_eq!(starts(&ring.recording(t(15_000)).unwrap()), (t(14_000), 26));
        ring.start(Codec::H265);
        assert!(
            ring.recording(t(20_000)).is_none(),
            "a new stream drops the old"
        );
    }

    #[test]
    fn the_ring_stays_under_its_byte_cap() {
        let mut ring = ClipRing::new(Duration::from_secs(60));
        ring.start(Codec::H264);
        // 100 KB a frame, a key frame every 10 frames: the cap holds about 41 frames.
        fill(&mut ring, 200, 10, 100_000);
        let r = ring.recording(t(10_000)).unwrap();
        let bytes: usize = r.units.iter().map(|u| u.data.len()).sum();
        assert!(bytes <= MAX_CLIP_BYTES, "{bytes} bytes");
        assert_eq!(starts(&r), (t(160 * 40), 40));
        // A single group of pictures over the cap keeps nothing until the next key frame.
        let mut ring = ClipRing::new(Duration::from_secs(5));
        ring.start(Codec::H264);
        fill(&mut ring, 60, 100, 100_000);
        assert!(ring.recording(t(10_000)).is_none());
        ring.push(unit(2_400, true, vec![0; 10]));
        assert_eq!(starts(&ring.recording(t(10_000)).unwrap()), (t(2_400), 1));
    }

    /// Units arriving 40 ms apart (the `n`th at `n` × 40 ms), shown at `shown` ms.
    fn arriving(shown: &[i64]) -> Vec<AccessUnit> {
        shown
            .iter()
            .enumerate()
            .map(|(n, &pts_ms)| AccessUnit {
                pts_ms,
                ..unit(n as i64 * 40, n == 0, Vec::new())
            })
            .collect()
    }

    fn times(units: &[AccessUnit], extra: usize) -> Vec<(i64, i64, i64)> {
        timing(units)
            .take(units.len() + extra)
            .map(|t| (t.pts, t.dts, t.duration))
            .collect()
    }

    #[test]
    fn without_b_frames_decoding_and_presentation_times_are_equal() {
        // RTP times from an arbitrary start; then two packets more than units.
        let units = arriving(&[1_000, 1_040, 1_080, 1_120]);
        assert_eq!(
            times(&units, 2),
            vec![
                (0, 0, 40),
                (40, 40, 40),
                (80, 80, 40),
                (120, 120, 40),
                (160, 160, 40),
                (200, 200, 40)
            ]
        );
    }

    #[test]
    fn b_frames_are_shown_in_their_order_and_decoded_first() {
        // I0 P3 B1 B2 P6 B4 B5 in decoding order (40 ms a picture).
        let units = arriving(&[0, 120, 40, 80, 240, 160, 200]);
        let t = times(&units, 1);
        assert_eq!(
            t,
            vec![
                (40, 0, 40),
                (160, 40, 40),
                (80, 80, 40),
                (120, 120, 40),
                (280, 160, 40),
                (200, 200, 40),
                (240, 240, 40),
                (320, 320, 40),
            ]
        );
        for (pts, dts, _) in &t {
            assert!(dts <= pts, "{t:?}");
        }
    }

    #[test]
    fn a_broken_rtp_clock_gives_way_to_arrival_times() {
        let arrival = vec![(0, 0, 40), (40, 40, 40), (80, 80, 40)];
        // The same time on every unit.
        assert_eq!(times(&arriving(&[500, 500, 500]), 0), arrival);
        // A jump of an hour.
        assert_eq!(times(&arriving(&[0, 3_600_000, 3_600_040]), 0), arrival);
        // A unit far from its place.
        assert_eq!(times(&arriving(&[0, 5_000, 40]), 0), arrival);
    }

    #[test]
    fn arrival_times_become_increasing_milliseconds() {
        let units: Vec<AccessUnit> = [0, 40, 40, 120, 100]
            .iter()
            .map(|ms| AccessUnit {
                pts_ms: 0,
                ..unit(*ms, false, Vec::new())
            })
            .collect();
        assert_eq!(presentation_millis(&units), vec![0, 40, 41, 120, 121]);
    }
}
