//! The on-site probe against the GStreamer RTSP server (a live H.264 test pattern, 640x360
//! at 10 fps with a key frame every 10 frames), with and without digest authentication,
//! and against a wrong password, a wrong path and a closed port.

use std::ffi::OsStr;
use std::process::Command;
use std::time::Duration;

use edge_gateway::probe::{ProbeError, ProbeRequest, probe, split_credentials};
use secrecy::SecretString;
use system_tests::{free_port, rtsp_server_with};
use url::Url;

fn request(url: &str, credentials: Option<(&str, &str)>) -> ProbeRequest {
    let _ = ffmpeg_next::init();
    ProbeRequest {
        url: Url::parse(url).unwrap(),
        credentials: credentials.map(|(u, p)| (u.to_owned(), SecretString::from(p))),
        tcp: true,
        watch: Duration::from_secs(3),
        timeout: Duration::from_secs(10),
    }
}

pub(crate) fn test_pattern(auth: Option<(&str, &str)>) -> (system_tests::Process, String) {
    let mut args = vec![OsStr::new("--test-pattern")];
    if let Some((user, password)) = auth {
        args.extend([
            OsStr::new("--user"),
            OsStr::new(user),
            OsStr::new("--password"),
            OsStr::new(password),
        ]);
    }
    rtsp_server_with(&args).unwrap()
}

#[tokio::test]
async fn the_probe_reports_the_stream_and_takes_a_snapshot() {
    let (_server, url) = test_pattern(None);
    for tcp in [true, false] {
        let report = probe(&ProbeRequest {
            tcp,
            ..request(&url, None)
        })
        .await
        .unwrap_or_else(|e| panic!("probe over tcp={tcp}: {e}"));
        assert_eq!(report.transport, if tcp { "tcp" } else { "udp" });
        assert_eq!(report.codec, "H.264");
        assert_eq!((report.width, report.height), (640, 360));
        let fps = report.frame_rate.expect("a frame rate");
        assert!((8.0..=12.0).contains(&fps), "frame rate {fps}");
        let keyframes = report.keyframe_interval.expect("key frames seen twice");
        assert!(
            (9.0..=11.0).contains(&keyframes.frames),
            "key frame interval {keyframes:?}"
        );
        assert!(report.frames >= 20, "{} frames in 3 s", report.frames);
        let jpeg = report.snapshot.expect("a snapshot");
        let picture = image::load_from_memory(&jpeg).expect("the snapshot is a JPEG");
        assert_eq!((picture.width(), picture.height()), (640, 360));
    }
}

#[tokio::test]
async fn the_probe_explains_what_went_wrong() {
    let (_server, url) = test_pattern(Some(("installer", "right-password")));
    let report = probe(&request(&url, Some(("installer", "right-password")))).await;
    assert!(
        report.is_ok(),
        "digest auth with the right password: {report:?}"
    );

    let refused = probe(&request(&url, Some(("installer", "wrong-password")))).await;
    assert!(
        matches!(refused, Err(ProbeError::CredentialsRefused)),
        "{refused:?}"
    );
    let missing = probe(&request(&url, None)).await;
    assert!(
        matches!(missing, Err(ProbeError::CredentialsMissing)),
        "{missing:?}"
    );

    let (_open, open_url) = test_pattern(None);
    let wrong_path = open_url.replace("/cam", "/Streaming/Channels/101");
    let not_found = probe(&request(&wrong_path, None)).await;
    assert!(
        matches!(not_found, Err(ProbeError::NotFound)),
        "{not_found:?}"
    );

    let closed = format!("rtsp://127.0.0.1:{}/cam", free_port());
    let unreachable = probe(&request(&closed, None)).await;
    match unreachable {
        Err(e @ ProbeError::Unreachable { .. }) => {
            let message = e.to_string();
            assert!(message.contains("refused"), "{message}");
        }
        other => panic!("a closed port: {other:?}"),
    }
}

#[test]
fn credentials_in_the_url_reach_the_camera_and_never_the_output() {
    let (_server, url) = test_pattern(Some(("installer", "s3cret-pw")));
    let with_creds = url.replace("rtsp://", "rtsp://installer:s3cret-pw@");
    let (plain, creds) = split_credentials(Url::parse(&with_creds).unwrap(), None, None).unwrap();
    assert_eq!(plain.as_str(), url);
    assert!(creds.is_some());

    let dir = tempfile::tempdir().unwrap();
    let snapshot = dir.path().join("cam.jpg");
    let ok = Command::new(env!("CARGO_BIN_EXE_edge-gateway"))
        .args(["probe", "--tcp", "--seconds", "2", "--json", "--snapshot"])
        .arg(&snapshot)
        .arg(&with_creds)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&ok.stdout);
    let stderr = String::from_utf8_lossy(&ok.stderr);
    assert!(ok.status.success(), "{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["codec"], "H.264");
    assert_eq!(report["width"], 640);
    assert_eq!(report["url"], url.as_str(), "the URL without credentials");
    assert_eq!(report["user"], "installer");
    assert!(std::fs::metadata(&snapshot).unwrap().len() > 1000);

    // The password from the environment, wrong: refused, said plainly, never echoed.
    let refused = Command::new(env!("CARGO_BIN_EXE_edge-gateway"))
        .args(["probe", "--tcp", "--user", "installer"])
        .arg(&url)
        .env("EDGE_CAMERA_PASSWORD", "not-the-pw-123")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("refused the user name or password"),
        "{stderr}"
    );
    for output in [&ok.stdout, &ok.stderr, &refused.stdout, &refused.stderr] {
        let text = String::from_utf8_lossy(output);
        assert!(
            !text.contains("s3cret-pw") && !text.contains("not-the-pw-123"),
            "{text}"
        );
    }
}
