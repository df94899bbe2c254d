//! Evidence clips from a real H.264 stream: the units a camera would send go through the
//! clip ring, and the MP4 made of them is read back by FFmpeg with every picture and
//! the stream's pace.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use edge_gateway::pipeline::clip::{ClipRing, mp4};
use edge_gateway::pipeline::decode::{AccessUnit, Codec};
use edge_gateway::rtsp;
use ffmpeg_next as ffmpeg;
use futures::StreamExt;
use retina::codec::CodecItem;
use system_tests::{make_camera_clip, make_camera_clip_with_b_frames, rtsp_server, shared};

/// The access units of a raw H.264 file, each with whether it is a key frame.
fn units(path: &std::path::Path) -> Vec<(bool, Vec<u8>)> {
    let mut input = ffmpeg::format::input(path).unwrap();
    input
        .packets()
        .map(|(_, p)| (p.is_key(), p.data().unwrap_or_default().to_vec()))
        .collect()
}

#[test]
fn a_clip_holds_the_seconds_before_an_event_and_plays() {
    ffmpeg::init().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let stream = dir.path().join("camera.h264");
    // 12 s at 25 fps, a key frame every 2 s (50 frames).
    make_camera_clip(
        &shared().join("testdata/crowd_office_ibm_stc.jpg"),
        &stream,
        12,
        true,
    )
    .unwrap();
    let units = units(&stream);
    assert_eq!(units.len(), 300);
    let start = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
    let at = |i: usize| start + Duration::from_millis(40 * i as u64);
    let mut ring = ClipRing::new(Duration::from_secs(5));
    ring.start(Codec::H264);
    for (i, (key, data)) in units.iter().enumerate() {
        ring.push(AccessUnit {
            data: data.clone(),
            at: at(i),
            pts_ms: 40 * i as i64,
            key: *key,
        });
    }
    // An event on the frame at 11 s: the clip starts at the key frame at 6 s (the last one
    // at least 5 s before the newest frame pushed, at 11.96 s).
    let recording = ring.recording(at(275)).unwrap();
    assert_eq!(recording.units.len(), 276 - 150);
    let file = mp4(&recording).unwrap();
    assert_eq!(&file[4..8], b"ftyp", "an MP4 file");

    let path = dir.path().join("clip.mp4");
    std::fs::write(&path, &file).unwrap();
    let (seconds, shown) = play(&path);
    assert!((5.0..=5.1).contains(&seconds), "lasts {seconds} s");
    assert_eq!(shown.len(), recording.units.len(), "every unit a picture");
}

/// Some cameras send B-frames: pictures arrive in decoding order, and their RTP times say
/// when each is shown. A clip of such a stream, received from a real RTSP server, shows
/// every picture in order at the stream's pace.
#[tokio::test]
async fn a_clip_of_a_stream_with_b_frames_shows_its_pictures_in_order() {
    ffmpeg::init().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("camera.mp4");
    let image = shared().join("testdata/crowd_office_ibm_stc.jpg");
    make_camera_clip_with_b_frames(&image, &file, 6).unwrap();
    let (_server, url) = rtsp_server(&file).unwrap();
    let url = url.parse().unwrap();
    let mut opened = rtsp::open(&url, None, true, Duration::from_secs(10))
        .await
        .unwrap();
    let mut ring = ClipRing::new(Duration::from_secs(60));
    ring.start(opened.codec);
    let mut shown_out_of_order = false;
    let mut last_shown = None;
    let mut received = 0;
    // Four seconds of stream.
    while received < 100 {
        let item = tokio::time::timeout(Duration::from_secs(10), opened.stream.next())
            .await
            .expect("the stream goes on");
        if let Some(Ok(CodecItem::VideoFrame(frame))) = item {
            let unit = rtsp::access_unit(frame, Utc::now());
            shown_out_of_order |= last_shown.is_some_and(|last| unit.pts_ms < last);
            last_shown = Some(unit.pts_ms);
            ring.push(unit);
            received += 1;
        } else {
            assert!(matches!(item, Some(Ok(_))), "{item:?}");
        }
    }
    assert!(shown_out_of_order, "the stream has B-frames");
    let recording = ring.recording(Utc::now()).unwrap();
    let path = dir.path().join("clip.mp4");
    std::fs::write(&path, mp4(&recording).unwrap()).unwrap();
    let (_, shown) = play(&path);
    assert_eq!(shown.len(), recording.units.len(), "every unit a picture");
    let steps: Vec<i64> = shown.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        steps.iter().all(|ms| (39..=41).contains(ms)),
        "pictures shown at {shown:?}"
    );
}

/// Decodes the MP4 at `path`: its duration in seconds and when each picture is shown, in
/// milliseconds, in the order the decoder gives them.
fn play(path: &Path) -> (f64, Vec<i64>) {
    let mut input = ffmpeg::format::input(path).unwrap();
    let seconds = input.duration() as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE);
    let video = input.streams().best(ffmpeg::media::Type::Video).unwrap();
    let (index, params, base) = (video.index(), video.parameters(), video.time_base());
    let ctx = ffmpeg::codec::Context::from_parameters(params).unwrap();
    let mut decoder = ctx.decoder().video().unwrap();
    assert_eq!((decoder.width(), decoder.height()), (640, 360));
    let mut picture = ffmpeg::frame::Video::empty();
    let mut shown = Vec::new();
    let ms = |pts: i64| pts * 1000 * i64::from(base.numerator()) / i64::from(base.denominator());
    let mut take = |decoder: &mut ffmpeg::decoder::Video, shown: &mut Vec<i64>| {
        while decoder.receive_frame(&mut picture).is_ok() {
            shown.push(ms(picture.timestamp().expect("a picture with a time")));
        }
    };
    for (s, packet) in input.packets() {
        if s.index() == index {
            decoder.send_packet(&packet).unwrap();
            take(&mut decoder, &mut shown);
        }
    }
    decoder.send_eof().unwrap();
    take(&mut decoder, &mut shown);
    (seconds, shown)
}
