//! A gateway's cameras fail on their own: a server sending garbage or a codec the gateway
//! does not decode (Motion JPEG) leaves that camera faulty with a reason, a hung server (SIGSTOP) is noticed within seconds, and a server
//! that goes away and comes back has its camera streaming again within seconds of its
//! return, reported offline and online once each. The other cameras stream on and the
//! gateway never falls over. Also the demo cameras' server (`deploy/demo/rtsp-server.py`).

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;

use super::{gateway_status, port_of};
use system_tests::{
    Hub, Process, binary, free_port, log_tail, make_camera_clip_with_b_frames, make_clip, repo,
    rtsp_server, rtsp_server_on, rtsp_server_with, shared, wait_for,
};

/// A TCP server on loopback that answers every connection with bytes no RTSP client reads.
fn garbage_server() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let _ = conn.write_all(b"\x00\xffHELLO not rtsp at all\r\n\r\n\x13\x37garbage");
        }
    });
    Ok(port)
}

/// (state, frames received, last error) of `camera` on the gateway.
async fn camera(
    client: &reqwest::Client,
    api: &str,
    id: &str,
) -> anyhow::Result<(String, u64, Value)> {
    let status = gateway_status(client, api).await?;
    let c = status["cameras"]
        .as_array()
        .and_then(|cams| cams.iter().find(|c| c["id"] == id))
        .with_context(|| format!("camera {id} on the gateway"))?;
    Ok((
        c["state"].as_str().unwrap_or_default().to_owned(),
        c["frames_received"].as_u64().unwrap_or(0),
        c["last_error"].clone(),
    ))
}

/// The hub, and gateway `id` on it with `cameras` (its `[[camera]]` entries, and any other
/// sections) after the common settings; returns them with the gateway's API URL and log.
async fn hub_and_gateway(
    dir: &Path,
    id: &str,
    cameras: &str,
) -> anyhow::Result<(Hub, Process, String, PathBuf)> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = format!("sqlite:{}", dir.join("hub.db").display());
    let mut hub = Hub::prepare(dir, db, None)?;
    let token = hub.add_gateway(id)?;
    hub.start().await?;
    let api_port = free_port();
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "[gateway]\nid = \"{id}\"\ndata_dir = \"data\"\ncamera_offline_after_s = 2\n\n\
             [hub]\nurl = \"{}\"\ntoken = \"in the environment\"\nreport_interval_s = 1\n\n\
             [api]\nlisten = \"127.0.0.1:{api_port}\"\n\n[model]\nmanifest = \"{}\"\n\n{cameras}",
            hub.url,
            repo().join("models/yolox-nano.toml").display(),
        ),
    )?;
    let log = dir.join("gateway.log");
    let mut gw = std::process::Command::new(binary("edge-gateway"));
    gw.arg("--config")
        .arg(&config)
        .env("EDGE_HUB__TOKEN", token)
        .env("MODEL_CACHE", shared().join("models"));
    let gateway = Process::spawn("edge-gateway", &mut gw, &log)?;
    Ok((hub, gateway, format!("http://127.0.0.1:{api_port}"), log))
}

#[tokio::test]
async fn cameras_fail_and_recover_on_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let pattern = [OsStr::new("--test-pattern")];
    let (live, live_url) = rtsp_server_with(&pattern).unwrap();
    let (hang, hang_url) = rtsp_server_with(&pattern).unwrap();
    let garbage = garbage_server().unwrap();
    let (_mjpeg, mjpeg_url) = rtsp_server_with(&[OsStr::new("--mjpeg-pattern")]).unwrap();
    let camera_toml = |id: &str, url: &str| {
        format!(
            "[[camera]]\nid = \"{id}\"\nurl = \"{url}\"\ndetect_fps = 0.5\n\n[camera.location]\nlat = 30.27\nlon = 120.15\n\n"
        )
    };
    let cameras = [
        camera_toml("cam-live", &live_url),
        camera_toml("cam-hang", &hang_url),
        camera_toml("cam-garbage", &format!("rtsp://127.0.0.1:{garbage}/cam")),
        camera_toml("cam-mjpeg", &mjpeg_url),
    ]
    .concat();
    let (hub, mut gateway, api, log) = hub_and_gateway(dir.path(), "gw-cams", &cameras)
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let mut live = Some(live);

    let result = async {
        for id in ["cam-live", "cam-hang"] {
            wait_for(
                &format!("{id} streaming"),
                Duration::from_secs(60),
                || async {
                    let (state, frames, _) = camera(&client, &api, id).await?;
                    Ok((state == "streaming" && frames > 0).then_some(()))
                },
            )
            .await?;
        }
        // Garbage: that camera is faulty, with a reason.
        let (_, _, error) = wait_for("cam-garbage faulty", Duration::from_secs(30), || async {
            let c = camera(&client, &api, "cam-garbage").await?;
            Ok((c.0 == "retrying" && c.2.is_string()).then_some(c))
        })
        .await?;
        println!("cam-garbage: {error}");
        // A codec the gateway does not decode: faulty, saying which codec was offered.
        let (_, _, error) = wait_for("cam-mjpeg faulty", Duration::from_secs(30), || async {
            let c = camera(&client, &api, "cam-mjpeg").await?;
            Ok((c.0 == "retrying" && c.2.is_string()).then_some(c))
        })
        .await?;
        anyhow::ensure!(
            error.as_str().is_some_and(|e| e.contains("video/jpeg")),
            "{error}"
        );

        // A hung server is noticed within seconds, while the others stream on.
        hang.signal("STOP")?;
        let stopped = Instant::now();
        let (_, _, error) = wait_for("cam-hang noticed", Duration::from_secs(30), || async {
            let c = camera(&client, &api, "cam-hang").await?;
            Ok((c.0 != "streaming").then_some(c))
        })
        .await?;
        let noticed = stopped.elapsed();
        println!(
            "hung server noticed after {} ms: {error}",
            noticed.as_millis()
        );
        anyhow::ensure!(
            noticed <= Duration::from_secs(10),
            "noticed after {noticed:?}"
        );
        let before = camera(&client, &api, "cam-live").await?.1;
        tokio::time::sleep(Duration::from_secs(1)).await;
        anyhow::ensure!(
            camera(&client, &api, "cam-live").await?.1 > before,
            "cam-live stalled"
        );
        hang.signal("CONT")?;

        // A server that goes away and comes back.
        let port = port_of(&live_url)?;
        live.take();
        wait_for("cam-live down", Duration::from_secs(30), || async {
            Ok((camera(&client, &api, "cam-live").await?.0 != "streaming").then_some(()))
        })
        .await?;
        tokio::time::sleep(Duration::from_secs(4)).await;
        live = Some(rtsp_server_on(port, &pattern)?.0);
        let back = Instant::now();
        wait_for("cam-live back", Duration::from_secs(30), || async {
            let (state, ..) = camera(&client, &api, "cam-live").await?;
            Ok((state == "streaming").then_some(()))
        })
        .await?;
        let after = back.elapsed();
        println!(
            "cam-live streaming again {} ms after its server returned",
            after.as_millis()
        );
        anyhow::ensure!(after <= Duration::from_secs(8), "back after {after:?}");

        // Offline and online once each at the hub; the gateway never fell over.
        let rules = wait_for(
            "cam-live's events at the hub",
            Duration::from_secs(30),
            || async {
                let events = hub.get("/api/v1/events?limit=100").await?;
                let rules: Vec<String> = events["items"]
                    .as_array()
                    .context("events")?
                    .iter()
                    .filter(|e| e["source_id"] == "cam-live")
                    .filter_map(|e| e["rule"].as_str().map(str::to_owned))
                    .collect();
                Ok((rules.first().is_some_and(|r| r == "camera_online")).then_some(rules))
            },
        )
        .await?;
        // Newest first: the outage's two events, and every outage reported once each way.
        let count = |rule: &str| rules.iter().filter(|r| *r == rule).count();
        anyhow::ensure!(
            rules[..2] == ["camera_online", "camera_offline"]
                && count("camera_online") == count("camera_offline"),
            "{rules:?}"
        );
        anyhow::ensure!(gateway.is_running(), "the gateway exited");
        Ok::<_, anyhow::Error>(())
    }
    .await;
    if let Err(e) = result {
        panic!(
            "{e:#}\n{}\n{}",
            log_tail("gateway", &log, 40),
            log_tail("hub", &hub.log, 20)
        );
    }
}

/// Motion gating on a still scene (a photo as a 30 s stream; the test pattern will not do:
/// its corner of snow moves): the first frame and the forced checks are analysed, the
/// frames between are skipped and counted. The gateway is asked to decode on a VAAPI device
/// that is not there: the camera decodes in software and its health says why.
/// The demo cameras' server streams a still picture live (`--image`), in H.264 at 10 frames a
/// second, its odd size rounded down to even (4:2:0 needs it even).
#[test]
fn the_demo_server_streams_a_still_picture_live() {
    let dir = tempfile::tempdir().unwrap();
    let picture = dir.path().join("odd.jpg");
    let made = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(shared().join("testdata/person1_astronaut_skimage.jpg"))
        .args(["-vf", "scale=301:201"])
        .arg(&picture)
        .status()
        .unwrap();
    assert!(made.success());
    let (_server, url) = rtsp_server_with(&[OsStr::new("--image"), picture.as_os_str()]).unwrap();
    // Three seconds of the stream, as an RTSP client reads it.
    let probe = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-rtsp_transport",
            "tcp",
            "-read_intervals",
            "%+3",
        ])
        .args(["-count_packets", "-select_streams", "v:0", "-of", "json"])
        .args([
            "-show_entries",
            "stream=codec_name,width,height,nb_read_packets",
        ])
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        probe.status.success(),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let info: Value = serde_json::from_slice(&probe.stdout).unwrap();
    let stream = &info["streams"][0];
    assert_eq!(stream["codec_name"], "h264", "{info}");
    assert_eq!(
        (&stream["width"], &stream["height"]),
        (&300.into(), &200.into())
    );
    let packets: u32 = stream["nb_read_packets"].as_str().unwrap().parse().unwrap();
    assert!(packets >= 25, "{packets} frames in 3 s at 10 a second");
}

/// A camera sending B-frames (pictures out of presentation order, as some cameras' main
/// profiles do) is decoded and analysed like any other: the pictures come out of the
/// decoder (a few frames late), none fails, and frames are analysed with a plausible lag.
#[tokio::test]
async fn a_camera_sending_b_frames_is_decoded_and_analysed() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("office.mp4");
    make_camera_clip_with_b_frames(
        &shared().join("testdata/crowd_office_ibm_stc.jpg"),
        &clip,
        30,
    )
    .unwrap();
    let (_server, url) = rtsp_server(&clip).unwrap();
    let settings = format!(
        "[[camera]]\nid = \"cam-b\"\nurl = \"{url}\"\ndetect_fps = 5\n\n\
         [camera.location]\nlat = 30.27\nlon = 120.15\n"
    );
    let (_hub, _gateway, api, log) = hub_and_gateway(dir.path(), "gw-bframes", &settings)
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let result = async {
        let camera = wait_for("10 frames analysed", Duration::from_secs(60), || async {
            let status = gateway_status(&client, &api).await?;
            let c = status["cameras"][0].clone();
            Ok((c["frames_analysed"].as_u64() >= Some(10)).then_some(c))
        })
        .await?;
        let count = |key: &str| camera[key].as_u64().unwrap_or(u64::MAX);
        let (received, decoded) = (count("frames_received"), count("frames_decoded"));
        anyhow::ensure!(
            // The decoder holds a few units back, and a busy machine may queue a few more.
            count("decode_errors") == 0 && decoded <= received && received - decoded <= 25,
            "{received} received, {decoded} decoded: {camera}"
        );
        anyhow::ensure!(count("analysis_lag_ms") < 1_000, "{camera}");
        Ok(())
    }
    .await;
    if let Err(e) = result {
        panic!("{e:#}\n{}", log_tail("gateway", &log, 30));
    }
}

#[tokio::test]
async fn a_still_scene_skips_the_detector_but_for_forced_checks() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("terrace.mp4");
    make_clip(
        &shared().join("testdata/nopeople_terrace_pixabay.jpg"),
        &clip,
        30,
    )
    .unwrap();
    let (_server, url) = rtsp_server(&clip).unwrap();
    let settings = format!(
        "[motion]\nforce_every_s = 2\n\n\
         [decode]\nhardware = \"vaapi\"\ndevice = \"/nonexistent/renderD128\"\n\n\
         [[camera]]\nid = \"cam-still\"\nurl = \"{url}\"\ndetect_fps = 5\n\n\
         [camera.location]\nlat = 30.27\nlon = 120.15\n"
    );
    let (_hub, _gateway, api, log) = hub_and_gateway(dir.path(), "gw-still", &settings)
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let result = async {
        let counts = wait_for("20 frames due", Duration::from_secs(60), || async {
            let status = gateway_status(&client, &api).await?;
            let c = &status["cameras"][0];
            let (analysed, still) = (
                c["frames_analysed"].as_u64().unwrap_or(0),
                c["frames_still"].as_u64().unwrap_or(0),
            );
            Ok((analysed + still >= 20).then_some((analysed, still)))
        })
        .await?;
        println!("still scene: {} analysed, {} skipped", counts.0, counts.1);
        let status = gateway_status(&client, &api).await?;
        let c = &status["cameras"][0];
        anyhow::ensure!(c["decoder"] == "software", "decoder: {}", c["decoder"]);
        let why = c["last_error"].as_str().unwrap_or_default();
        anyhow::ensure!(
            why.contains("vaapi")
                && why.contains("/nonexistent/renderD128")
                && why.contains("software"),
            "the fallback is not explained: {why:?}"
        );
        let (analysed, still) = counts;
        anyhow::ensure!(analysed >= 1, "not even the first frame was analysed");
        anyhow::ensure!(
            still >= 3 * analysed,
            "{analysed} analysed and {still} skipped: the gate let a still scene through"
        );
        // The forced check: more frames are analysed as time passes.
        wait_for("a forced check", Duration::from_secs(10), || async {
            let status = gateway_status(&client, &api).await?;
            let now = status["cameras"][0]["frames_analysed"]
                .as_u64()
                .unwrap_or(0);
            Ok((now > analysed).then_some(()))
        })
        .await
    }
    .await;
    if let Err(e) = result {
        panic!("{e:#}\n{}", log_tail("gateway", &log, 30));
    }
}

/// A crowd standing still in view is raised without waiting for the forced check: the
/// frames the gate skips as still step the crowd rule with what the last analysed frame
/// held, so its persons are tracked over two frames and counted, though the detector ran on
/// one frame only (the gate here lets nothing but the first frame through).
#[tokio::test]
async fn a_crowd_in_a_still_scene_is_raised_between_forced_checks() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("seminar.mp4");
    make_clip(
        &shared().join("testdata/crowd_seminar_ibm_stc-brownbag.jpg"),
        &clip,
        30,
    )
    .unwrap();
    let (_server, url) = rtsp_server(&clip).unwrap();
    let settings = format!(
        "[motion]\nforce_every_s = 600\nmin_changed = 0.5\n\n\
         [[camera]]\nid = \"cam-crowd\"\nurl = \"{url}\"\ndetect_fps = 5\n\n\
         [camera.location]\nlat = 30.27\nlon = 120.15\n\n\
         [camera.crowd]\nmin_persons = 3\n"
    );
    let (_hub, _gateway, api, log) = hub_and_gateway(dir.path(), "gw-crowd", &settings)
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let result = async {
        let (analysed, still) = wait_for("the crowd raised", Duration::from_secs(30), || async {
            let status = gateway_status(&client, &api).await?;
            let c = &status["cameras"][0];
            let raised = c["events_raised"].as_u64().unwrap_or(0);
            let (analysed, still) = (
                c["frames_analysed"].as_u64().unwrap_or(0),
                c["frames_still"].as_u64().unwrap_or(0),
            );
            Ok((raised >= 1).then_some((analysed, still)))
        })
        .await?;
        println!("crowd raised after {analysed} analysed and {still} still frames");
        anyhow::ensure!(
            still >= 1 && analysed == 1,
            "{analysed} analysed, {still} still: the crowd was not raised on a still frame"
        );
        Ok(())
    }
    .await;
    if let Err(e) = result {
        panic!("{e:#}\n{}", log_tail("gateway", &log, 30));
    }
}
