//! Evidence clips from a real H.264 stream: the units a camera would send go through the
//! clip ring, and the MP4 made of them is read back by FFmpeg with every picture and
//! the stream's pace.

use std::time::Duration;

use chrono::{DateTime, Utc};
use edge_gateway::pipeline::clip::{ClipRing, mp4};
use edge_gateway::pipeline::decode::Codec;
use ffmpeg_next as ffmpeg;
use system_tests::{make_camera_clip, shared};

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
        ring.push(at(i), *key, data.clone());
    }
    // An event on the frame at 11 s: the clip starts at the key frame at 6 s (the last one
    // at least 5 s before the newest frame pushed, at 11.96 s).
    let recording = ring.recording(at(275)).unwrap();
    assert_eq!(recording.units.len(), 276 - 150);
    let file = mp4(&recording).unwrap();
    assert_eq!(&file[4..8], b"ftyp", "an MP4 file");

    let path = dir.path().join("clip.mp4");
    std::fs::write(&path, &file).unwrap();
    let mut input = ffmpeg::format::input(&path).unwrap();
    let seconds = input.duration() as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE);
    assert!((5.0..=5.1).contains(&seconds), "lasts {seconds} s");
    let video = input.streams().best(ffmpeg::media::Type::Video).unwrap();
    let (index, params) = (video.index(), video.parameters());
    let ctx = ffmpeg::codec::Context::from_parameters(params).unwrap();
    let mut decoder = ctx.decoder().video().unwrap();
    assert_eq!((decoder.width(), decoder.height()), (640, 360));
    let mut picture = ffmpeg::frame::Video::empty();
    let mut pictures = 0;
    for (s, packet) in input.packets() {
        if s.index() == index {
            decoder.send_packet(&packet).unwrap();
            while decoder.receive_frame(&mut picture).is_ok() {
                pictures += 1;
            }
        }
    }
    decoder.send_eof().unwrap();
    while decoder.receive_frame(&mut picture).is_ok() {
        pictures += 1;
    }
    assert_eq!(pictures, recording.units.len(), "every unit a picture");
}
