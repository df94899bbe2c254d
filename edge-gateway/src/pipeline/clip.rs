//! Evidence clips: the last seconds of a camera's stream, kept as it arrived (encoded, never
//! decoded again), turned into an MP4 when a rule's episode starts, so the event shows how
//! it came about. The decoder thread feeds the [`ClipRing`]; the detection thread takes a
//! [`Recording`] from it and [`mp4`] remuxes that with FFmpeg (no re-encoding).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ffmpeg_next as ffmpeg;

use super::decode::Codec;

/// A clip never holds more than this, whatever the stream's bitrate (the hub takes blobs
/// of up to 8 MiB by default).
pub const MAX_CLIP_BYTES: usize = 4 << 20;

/// One access unit as it arrived: Annex B, parameter sets before each key frame.
#[derive(Debug, Clone)]
struct Unit {
    at: DateTime<Utc>,
    key: bool,
    data: Vec<u8>,
}

/// The stream's recent access units, from a key frame on, covering at least `keep` where
/// the stream's key frames and `MAX_CLIP_BYTES` allow.
#[derive(Debug)]
pub struct ClipRing {
    keep: Duration,
    codec: Option<Codec>,
    units: VecDeque<Unit>,
    bytes: usize,
}

/// A camera's ring, shared by its decoder thread (writing) and the detection thread.
pub type SharedRing = Arc<Mutex<ClipRing>>;

/// Access units from a key frame on, ready to be remuxed.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    pub codec: Codec,
    pub units: Vec<(DateTime<Utc>, Vec<u8>)>,
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
    pub fn push(&mut self, at: DateTime<Utc>, key: bool, data: Vec<u8>) {
        if self.codec.is_none() || (self.units.is_empty() && !key) {
            return;
        }
        self.bytes += data.len();
        self.units.push_back(Unit { at, key, data });
        let since = at - self.keep;
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
            .map(|u| (u.at, u.data.clone()))
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

/// The recording as an MP4 file (moov first, so it plays while it loads). Timestamps are the
/// arrival times of the units, as the stream is assumed to have no B-frames (cameras send
/// none in their usual profiles).
pub fn mp4(recording: &Recording) -> Result<Vec<u8>, ClipError> {
    let dir = tempfile::tempdir()?;
    let raw = dir.path().join(match recording.codec {
        Codec::H264 => "clip.h264",
        Codec::H265 => "clip.hevc",
    });
    let mut stream = Vec::new();
    for (_, data) in &recording.units {
        stream.extend_from_slice(data);
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
    let times = millis_from_start(recording);
    // The demuxer may split the stream a little differently: past the units' times, go on
    // at their mean interval.
    let last = times.len() - 1;
    let step = if last > 0 {
        times[last] / last as i64
    } else {
        40
    };
    let packets = input.packets().filter(|(s, _)| s.index() == index);
    let time = |n: usize| match times.get(n) {
        Some(ms) => *ms,
        None => times[last] + (n - last) as i64 * step,
    };
    for (n, (_, mut packet)) in packets.enumerate() {
        let ms = time(n);
        packet.set_pts(Some(ms));
        packet.set_dts(Some(ms));
        // Each picture lasts until the next (the last one too, or players drop it).
        packet.set_duration(time(n + 1) - ms);
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

/// Each unit's arrival in milliseconds from the first, kept strictly increasing.
fn millis_from_start(recording: &Recording) -> Vec<i64> {
    let first = recording.units[0].0;
    let mut times: Vec<i64> = Vec::with_capacity(recording.units.len());
    for (at, _) in &recording.units {
        let ms = (*at - first).num_milliseconds();
        let floor = times.last().map_or(0, |t| t + 1);
        times.push(ms.max(floor));
    }
    times
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_800_000_000_000 + ms).unwrap()
    }

    /// 25 frames a second, a key frame every `gop` frames, for `frames` frames.
    fn fill(ring: &mut ClipRing, frames: i64, gop: i64, bytes: usize) {
        for i in 0..frames {
            ring.push(t(i * 40), i % gop == 0, vec![i as u8; bytes]);
        }
    }

    fn starts(recording: &Recording) -> (DateTime<Utc>, usize) {
        (recording.units[0].0, recording.units.len())
    }

    #[test]
    fn the_ring_starts_at_a_key_frame_and_covers_what_it_keeps() {
        let mut ring = ClipRing::new(Duration::from_secs(5));
        ring.push(t(0), true, vec![1]);
        assert!(ring.recording(t(0)).is_none(), "no stream started yet");
        ring.start(Codec::H264);
        ring.push(t(0), false, vec![1]);
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
        let bytes: usize = r.units.iter().map(|(_, d)| d.len()).sum();
        assert!(bytes <= MAX_CLIP_BYTES, "{bytes} bytes");
        assert_eq!(starts(&r), (t(160 * 40), 40));
        // A single group of pictures over the cap keeps nothing until the next key frame.
        let mut ring = ClipRing::new(Duration::from_secs(5));
        ring.start(Codec::H264);
        fill(&mut ring, 60, 100, 100_000);
        assert!(ring.recording(t(10_000)).is_none());
        ring.push(t(2_400), true, vec![0; 10]);
        assert_eq!(starts(&ring.recording(t(10_000)).unwrap()), (t(2_400), 1));
    }

    #[test]
    fn arrival_times_become_increasing_milliseconds() {
        let recording = Recording {
            codec: Codec::H264,
            units: [0, 40, 40, 120, 100]
                .iter()
                .map(|ms| (t(*ms), Vec::new()))
                .collect(),
        };
        assert_eq!(millis_from_start(&recording), vec![0, 40, 41, 120, 121]);
    }
}
