//! Reading a recorded clip (raw H.264, Annex B) through the gateway's decoder, for the
//! benches that run the video stages on a file rather than a camera.

use std::path::Path;

use anyhow::Context;
use edge_gateway::pipeline::decode::{Codec, Decoder};
use ffmpeg_next as ffmpeg;

/// Decodes every access unit of `clip` in order, calling `each` with the decoder and every
/// picture until it returns false. Returns how many pictures were handed to `each`.
pub fn for_each_picture(
    clip: &Path,
    mut each: impl FnMut(&mut Decoder, &ffmpeg::frame::Video) -> anyhow::Result<bool>,
) -> anyhow::Result<usize> {
    let mut input = ffmpeg::format::input(clip).context("opening the clip")?;
    let stream = input
        .streams()
        .best(ffmpeg::media::Type::Video)
        .context("no video in the clip")?
        .index();
    let mut decoder = Decoder::open(Codec::H264)?;
    let mut picture = ffmpeg::frame::Video::empty();
    let mut n = 0;
    for (s, packet) in input.packets() {
        if s.index() != stream {
            continue;
        }
        decoder.send(packet.data().unwrap_or_default(), packet.pts())?;
        while decoder.receive(&mut picture) {
            n += 1;
            if !each(&mut decoder, &picture)? {
                return Ok(n);
            }
        }
    }
    Ok(n)
}
