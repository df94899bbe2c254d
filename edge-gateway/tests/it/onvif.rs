//! ONVIF discovery against oxvif's mock device — a real SOAP server on loopback that
//! enforces WS-Security — and its WS-Discovery responder: what a technician's `discover`
//! reports, why a device would not answer, and that the camera entry the command prints
//! reads back as a valid row of the hub's registry import.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::time::Duration;

use edge_gateway::onvif::{self, EntryDefaults, OnvifProblem, Target};
use hub::devices::CameraRow;
use hub::reference::format::{self, Format};
use oxvif::discovery::DiscoveredDevice;
use oxvif::mock::{DiscoveryResponder, MockServer};
use secrecy::SecretString;

const WAIT: Duration = Duration::from_secs(2);

async fn mock_device() -> MockServer {
    MockServer::builder()
        .enforce_auth(true)
        .start()
        .await
        .expect("starting the mock ONVIF device")
}

/// The mock device's administrator.
fn admin(password: &str) -> Option<(String, SecretString)> {
    Some(("admin".to_owned(), SecretString::from(password.to_owned())))
}

fn device(server: &MockServer) -> Target {
    Target::Device(server.device_url().parse().unwrap())
}

/// The rows of an import document, each checked as the hub checks it once the technician
/// has typed in the password (the one column `discover` leaves for them where it knows the
/// user name).
fn import_rows(csv: &str) -> Vec<protocol::device::CameraSpec> {
    let (rows, errors) = format::rows::<CameraRow>(csv, Format::Csv, "camera")
        .unwrap_or_else(|e| panic!("the hub cannot read the CSV: {e:?}\n{csv}"));
    assert!(errors.is_empty(), "{errors:?}\n{csv}");
    rows.into_iter()
        .map(|(line, mut row)| {
            assert_eq!(row.password, None, "line {line}: {csv}");
            if row.username.is_some() {
                row.password = Some("typed-in-later".to_owned());
            }
            let entry = row
                .into_entry()
                .unwrap_or_else(|e| panic!("line {line}: {e:?}\n{csv}"));
            entry
                .camera
                .validate("camera")
                .unwrap_or_else(|e| panic!("line {line}: {e:?}\n{csv}"));
            entry.camera
        })
        .collect()
}

#[tokio::test]
async fn a_device_reports_its_maker_and_streams_and_becomes_a_registry_entry() {
    let server = mock_device().await;
    let outcome = onvif::discover(&device(&server), WAIT, admin("admin").as_ref())
        .await
        .unwrap();
    assert!(outcome.failed.is_empty(), "{:?}", outcome.failed);
    let [report] = outcome.devices.as_slice() else {
        panic!("one device: {outcome:?}");
    };
    assert_eq!(
        (report.manufacturer.as_str(), report.model.as_str()),
        ("oxvif-mock", "MockCam-1080p")
    );
    assert_eq!(
        report.found.name.as_deref(),
        Some("MockCamera"),
        "from GetScopes"
    );
    let h264: Vec<_> = report
        .profiles
        .iter()
        .filter(|p| p.encoding.as_deref() == Some("H264"))
        .collect();
    assert!(!h264.is_empty(), "{:#?}", report.profiles);
    for p in &h264 {
        assert!(
            p.width.unwrap_or(0) > 0 && p.height.unwrap_or(0) > 0,
            "{p:?}"
        );
        assert_eq!(
            p.stream_uri.as_deref(),
            Some("rtsp://127.0.0.1:554/mock/stream")
        );
    }
    let text = onvif::describe(report);
    assert!(text.contains("oxvif-mock MockCam-1080p") && text.contains("/mock/stream"));

    let entry = report
        .entry(&EntryDefaults {
            gateway_id: "gw-township-001".to_owned(),
            username: Some("admin".to_owned()),
            lat: Some(30.2741),
            lon: Some(120.1551),
        })
        .unwrap();
    let cameras = import_rows(&onvif::entries_csv(&[entry]).unwrap());
    let [camera] = cameras.as_slice() else {
        panic!("{cameras:?}")
    };
    assert_eq!(camera.id, "cam-mock-0001");
    assert_eq!(camera.url, "rtsp://127.0.0.1:554/mock/stream");
    assert_eq!(camera.username.as_deref(), Some("admin"));
    assert_eq!(
        (camera.location.lat, camera.location.lon),
        (30.2741, 120.1551)
    );
}

#[tokio::test]
async fn refused_or_missing_credentials_and_a_closed_port_are_explained() {
    let server = mock_device().await;
    let refused = onvif::discover(&device(&server), WAIT, admin("wrong").as_ref())
        .await
        .unwrap();
    assert!(refused.devices.is_empty());
    assert_eq!(
        refused.failed[0].error,
        OnvifProblem::CredentialsRefused.to_string()
    );

    let missing = onvif::discover(&device(&server), WAIT, None).await.unwrap();
    assert_eq!(
        missing.failed[0].error,
        OnvifProblem::CredentialsMissing.to_string()
    );

    let closed = format!(
        "http://127.0.0.1:{}/onvif/device_service",
        system_tests::free_port()
    );
    let target = Target::Device(closed.parse().unwrap());
    let unreachable = onvif::discover(&target, WAIT, None).await.unwrap();
    let error = &unreachable.failed[0].error;
    assert!(
        error.starts_with("cannot reach the device service") && error.contains("refused"),
        "{error}"
    );
}

#[tokio::test]
async fn ws_discovery_finds_the_device_answering_at_an_address() {
    let server = mock_device().await;
    // The WS-Discovery port on loopback: the probe goes to <address>:3702.
    let responder = DiscoveryResponder::spawn(
        "127.0.0.1:3702",
        false,
        DiscoveredDevice {
            endpoint: "urn:uuid:5f0c2a8e-1d3b-4c5e-9a7f-00112233aabb".to_owned(),
            types: vec!["dn:NetworkVideoTransmitter".to_owned()],
            scopes: vec![
                "onvif://www.onvif.org/name/%E9%9B%86%E5%B8%82%E4%B8%9C%E5%8F%A3".to_owned(),
                "onvif://www.onvif.org/location/city/hangzhou".to_owned(),
            ],
            xaddrs: vec![server.device_url().to_owned()],
        },
    )
    .await
    .expect("binding 127.0.0.1:3702 for the discovery responder");
    let target = Target::Host(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let outcome = onvif::discover(&target, WAIT, admin("admin").as_ref())
        .await
        .unwrap();
    responder.shutdown().await;
    let [report] = outcome.devices.as_slice() else {
        panic!("one device: {outcome:?}");
    };
    assert_eq!(report.found.device_url, server.device_url());
    assert_eq!(report.found.name.as_deref(), Some("集市东口"));
    assert_eq!(report.found.location.as_deref(), Some("city/hangzhou"));
    assert_eq!(
        report.found.endpoint.as_deref(),
        Some("urn:uuid:5f0c2a8e-1d3b-4c5e-9a7f-00112233aabb")
    );
}

/// The command a technician runs prints an import document in one step, and never the
/// password; a refused password is a clear message and exit status 2.
#[tokio::test(flavor = "multi_thread")]
async fn the_discover_command_prints_an_import_document() {
    let server = mock_device().await;
    let run = |password: &'static str| {
        let url = server.device_url().to_owned();
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_edge-gateway"))
                .args(["discover", "--device", &url, "--user", "admin", "--csv"])
                .args(["--gateway", "gw-township-001", "--lat", "30.27", "--lon"])
                .arg("120.15")
                .env("EDGE_CAMERA_PASSWORD", password)
                .output()
                .expect("running edge-gateway discover")
        })
    };
    let out = run("admin").await.unwrap();
    let (stdout, stderr) = (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    );
    assert!(out.status.success(), "{stderr}");
    let cameras = import_rows(&stdout);
    assert_eq!(cameras.len(), 1, "{stdout}");
    assert!(stderr.contains("fill in the password"), "{stderr}");

    let refused = run("not-the-password").await.unwrap();
    let stderr = String::from_utf8(refused.stderr).unwrap();
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("refused the user name or password"),
        "{stderr}"
    );
    for output in [&stdout, &stderr] {
        assert!(!output.contains("not-the-password"), "{output}");
    }
}
