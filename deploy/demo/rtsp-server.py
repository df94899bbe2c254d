#!/usr/bin/python3
"""A small RTSP server for demos and tests, built on GStreamer's RTSP server (Debian packages
gir1.2-gst-rtsp-server-1.0 and the GStreamer plugins; see scripts/install-deps.sh).

Serves at rtsp://HOST:PORT/MOUNT, in H.264, an MP4 clip (each client gets its own pipeline
from the start of the clip; the stream ends with the clip), a still image as a live stream
that never ends (--image, for demos), or a live test pattern forever (--mjpeg-pattern: the
same in Motion JPEG, a codec the gateway refuses). Prints one line "READY <url>" to stdout
once it accepts clients.
Optional digest authentication with --user/--password.
"""
import argparse
import os
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
gi.require_version("GstPbutils", "1.0")
from gi.repository import GLib, Gst, GstPbutils, GstRtsp, GstRtspServer  # noqa: E402


def even_size(image: str) -> tuple[int, int]:
    """The image's width and height, each rounded down to an even number (H.264 in 4:2:0
    needs them even)."""
    try:
        info = GstPbutils.Discoverer.new(10 * Gst.SECOND).discover_uri(
            Gst.filename_to_uri(os.path.abspath(image))
        )
    except GLib.Error as e:
        raise SystemExit(f"{image}: not an image GStreamer can decode ({e.message})")
    streams = info.get_video_streams()
    if not streams:
        raise SystemExit(f"{image}: not an image GStreamer can decode (no picture in it)")
    return streams[0].get_width() // 2 * 2, streams[0].get_height() // 2 * 2


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=8554)
    p.add_argument("--mount", default="/cam")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--clip", help="an MP4 file with H.264 video")
    src.add_argument(
        "--image", help="a still image (JPEG, PNG), streamed live at 10 frames a second"
    )
    src.add_argument("--test-pattern", action="store_true")
    src.add_argument(
        "--mjpeg-pattern",
        action="store_true",
        help="a test pattern in Motion JPEG, which the gateway does not decode (for tests)",
    )
    p.add_argument("--user")
    p.add_argument("--password")
    args = p.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    if args.clip:
        launch = (
            f'( filesrc location="{args.clip}" ! qtdemux ! h264parse '
            "! rtph264pay name=pay0 pt=96 config-interval=1 )"
        )
    elif args.image:
        width, height = even_size(args.image)
        launch = (
            f'( filesrc location="{args.image}" ! decodebin ! videoconvert ! videoscale '
            f"! video/x-raw,width={width},height={height} "
            "! imagefreeze is-live=true ! video/x-raw,format=I420,framerate=10/1 "
            "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 "
            "! rtph264pay name=pay0 pt=96 config-interval=1 )"
        )
    elif args.mjpeg_pattern:
        launch = (
            "( videotestsrc is-live=true ! video/x-raw,format=I420,width=320,height=240,framerate=5/1 "
            "! jpegenc ! rtpjpegpay name=pay0 pt=26 )"
        )
    else:
        launch = (
            "( videotestsrc is-live=true ! video/x-raw,width=640,height=360,framerate=10/1 "
            "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 "
            "! rtph264pay name=pay0 pt=96 config-interval=1 )"
        )
    factory.set_launch(launch)
    factory.set_shared(False)
    if args.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
        auth.add_digest(args.user, args.password or "", token)
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        server.set_auth(auth)
        perms = GstRtspServer.RTSPPermissions()
        perms.add_role_from_structure(Gst.Structure.new_from_string("user,media.factory.access=true,media.factory.construct=true"))
        factory.set_permissions(perms)
    server.get_mount_points().add_factory(args.mount, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
        return 1
    print(f"READY rtsp://127.0.0.1:{args.port}{args.mount}", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
