//! The settings file: a valid file loads; a bad key or value is an error naming the key.

use std::path::Path;

use edge_gateway::{Config, RawConfig};

const VALID: &str = r#"
[gateway]
id = "gw-01"
data_dir = "data"

[hub]
url = "http://127.0.0.1:8080"
token = "gw_secret"

[model]
manifest = "yolox-nano.toml"

[[camera]]
id = "cam-1"
url = "rtsp://127.0.0.1:8554/cam"
detect_fps = 2

[camera.location]
lat = 30.27
lon = 120.15
area_code = "330106001001"

[camera.crowd]
min_persons = 5
zone = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]
"#;

fn load(text: &str) -> Result<Config, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, text).unwrap();
    let raw = RawConfig::load(&path).map_err(|e| e.to_string())?;
    Config::from_raw(raw, &path).map_err(|e| e.to_string())
}

#[test]
fn a_valid_file_loads_with_defaults_and_resolved_paths() {
    let config = load(VALID).unwrap();
    assert_eq!(config.gateway_id, "gw-01");
    assert_eq!(config.cameras.len(), 1);
    let cam = &config.cameras[0];
    assert!(cam.tcp);
    assert_eq!(cam.detect_interval, std::time::Duration::from_millis(500));
    let crowd = cam.crowd.as_ref().unwrap();
    assert_eq!(
        (crowd.min_persons, crowd.medium_at, crowd.high_at),
        (5, 10, 20)
    );
    assert_eq!(crowd.category.as_str(), "event:0407");
    assert_eq!(
        config.decode.clip,
        Some(std::time::Duration::from_secs(5)),
        "evidence clips are on by default"
    );
    let off = load(&format!("{VALID}\n[evidence]\nclip_s = 0\n")).unwrap();
    assert_eq!(off.decode.clip, None);
    assert!(
        config
            .model_manifest
            .ends_with(Path::new("yolox-nano.toml"))
    );
    assert!(
        config.model_manifest.is_absolute()
            || config.model_manifest.starts_with(std::env::temp_dir())
    );
    // The token never shows in debug output.
    assert!(!format!("{config:?}").contains("gw_secret"));
}

#[test]
fn errors_name_the_key() {
    let cases = [
        (
            VALID.replace("detect_fps = 2", "detect_fps = 2\ncolour = 1"),
            "colour",
        ),
        (
            VALID.replace("detect_fps = 2", "detect_fps = 0"),
            "camera[0].detect_fps",
        ),
        (
            VALID.replace("lat = 30.27", "lat = 95.0"),
            "camera[0].location.lat",
        ),
        (
            VALID.replace("\"330106001001\"", "\"33010\""),
            "camera[0].location.area_code",
        ),
        (
            VALID.replace("rtsp://127.0.0.1:8554/cam", "http://cam"),
            "camera[0].url",
        ),
        (
            VALID.replace("rtsp://127.0.0.1", "rtsp://admin:pw@127.0.0.1"),
            "camera[0].url",
        ),
        (
            VALID.replace("min_persons = 5", "min_persons = 0"),
            "camera[0].crowd.min_persons",
        ),
        (
            VALID.replace("[1.0, 1.0]]", "[1.0, 1.0], [2.0, 0.5]]"),
            "camera[0].crowd.zone",
        ),
        (
            VALID.replace("id = \"gw-01\"", "id = \"gw 01\""),
            "gateway.id",
        ),
        (
            VALID.replace("url = \"http://127.0.0.1:8080\"", "url = \"ftp://hub\""),
            "hub.url",
        ),
        (
            VALID.replace("token = \"gw_secret\"", "token = \"\""),
            "hub.token",
        ),
        (
            VALID.replace("detect_fps = 2", "detect_fps = \"fast\""),
            "detect_fps",
        ),
        (
            format!(
                "{VALID}\n[[camera]]\nid = \"cam-1\"\nurl = \"rtsp://x/y\"\n[camera.location]\nlat = 1.0\nlon = 1.0\n"
            ),
            "camera[1].id",
        ),
        (
            VALID.replace(
                "token = \"gw_secret\"",
                "token = \"gw_secret\"\nreport_interval_s = 0",
            ),
            "hub.report_interval_s",
        ),
        (format!("{VALID}\n[patrol]\n"), "patrol.terminals_file"),
        (
            format!("{VALID}\n[motion]\nmin_changed = 0\n"),
            "motion.min_changed",
        ),
        (
            format!("{VALID}\n[motion]\nforce_every_s = 0.5\n"),
            "motion.force_every_s",
        ),
        (
            format!("{VALID}\n[decode]\nhardware = \"nvdec\"\n"),
            "decode.hardware",
        ),
        (
            format!("{VALID}\n[evidence]\nclip_s = 31\n"),
            "evidence.clip_s",
        ),
        (format!("{VALID}\n[evidence]\nclip = 5\n"), "clip"),
        (
            format!("{VALID}\n[decode]\ndevice = \"/dev/dri/renderD128\"\n"),
            "decode.device",
        ),
        (
            format!("{VALID}\n[decode]\nhardware = \"vaapi\"\ndevice = \" \"\n"),
            "decode.device",
        ),
        (
            format!("{VALID}\n[api]\nlisten = \"127.0.0.1:9090\"\ntoken = \"short\"\n"),
            "api.token",
        ),
        (
            format!("{VALID}\n[patrol]\nterminals_file = \"missing.toml\"\n"),
            "patrol.terminals_file",
        ),
        (
            format!("{VALID}\n[patrol]\nbroker = \"http://broker\"\n"),
            "patrol.broker",
        ),
        (
            format!(
                "{VALID}\n[patrol]\nbroker = \"mqtt://broker:1883\"\nterminals_file = \"t.toml\"\n"
            ),
            "patrol.terminals_file",
        ),
        (
            format!("{VALID}\n[patrol]\nbroker = \"mqtt://broker\"\nmax_photos = 0\n"),
            "patrol.max_photos",
        ),
        (
            format!("{VALID}\n[patrol]\nbroker = \"mqtt://broker\"\nsos_category = \"help\"\n"),
            "patrol.sos_category",
        ),
    ];
    let hazard = |extra: &str| format!("{VALID}\n[camera.hazard]\n{extra}\n");
    let cases = cases.into_iter().chain([
        (hazard("frames = 6"), "camera[0].hazard.frames"),
        (hazard("window = 0"), "camera[0].hazard.window"),
        (hazard("min_score = 1.5"), "camera[0].hazard.min_score"),
        (hazard("refresh_s = 0"), "camera[0].hazard.refresh_s"),
        (
            format!("{VALID}\n[camera.tiling]\ncols = 5\nrows = 1\n"),
            "camera[0].tiling.cols",
        ),
        (
            VALID.replace("detect_fps = 2", "detect_fps = 2\nmodel = \"manhole\""),
            "camera[0].model",
        ),
        (
            format!("{VALID}\n[models.\"man hole\"]\nmanifest = \"m.toml\"\n"),
            "models.man hole",
        ),
    ]);
    for (text, key) in cases {
        let err = load(&text).unwrap_err();
        assert!(err.contains(key), "error {err:?} should name {key:?}");
        assert!(
            err.contains("gateway.toml"),
            "error {err:?} should name the file"
        );
    }
}

#[test]
fn a_camera_can_name_a_further_model_and_watch_for_hazards() {
    let text = VALID.replace("detect_fps = 2", "detect_fps = 2\nmodel = \"manhole\"")
        + "\n[camera.hazard]\nframes = 2\n\n[models.manhole]\nmanifest = \"manhole-v1.toml\"\n";
    let config = load(&text).unwrap();
    let cam = &config.cameras[0];
    assert_eq!(cam.model.as_deref(), Some("manhole"));
    assert!(config.models["manhole"].ends_with("manhole-v1.toml"));
    let h = cam.hazard.as_ref().unwrap();
    assert_eq!((h.frames, h.window, h.min_score), (2, 5, None));
    let secs = std::time::Duration::from_secs;
    assert_eq!(
        (
            h.timing.clear,
            h.timing.update_every,
            h.timing.refresh,
            h.timing.cooldown
        ),
        (secs(300), secs(60), secs(3600), secs(3600))
    );
}

#[test]
fn the_example_settings_load() {
    let file = crate::support::repo().join("deploy/gateway.example.toml");
    let raw = RawConfig::load(&file).unwrap();
    let config = Config::from_raw(raw, &file).unwrap();
    assert_eq!(config.cameras.len(), 2);
    assert!(config.cameras[0].crowd.as_ref().unwrap().zone.is_some());
    let tiling = config.cameras[0].tiling.unwrap();
    assert_eq!((tiling.cols, tiling.rows, tiling.overlap), (2, 1, 0.2));
    assert!(config.cameras[1].hazard.is_some());
    assert_eq!(config.cameras[1].model.as_deref(), Some("manhole"));
    assert!(
        config.patrol.is_some(),
        "the example serves patrol terminals"
    );
}

#[test]
fn the_hazard_rule_takes_its_classes_and_score_from_the_model() {
    use edge_gateway::detect::ModelManifest;
    use edge_gateway::pipeline::hazard::HazardRule;
    use protocol::Severity;

    let text = format!("{VALID}\n[camera.hazard]\nframes = 2\n");
    let settings = load(&text).unwrap().cameras[0].hazard.clone().unwrap();
    let models = crate::support::repo().join("models");
    let manhole = ModelManifest::load(&models.join("manhole-v1.toml")).unwrap();
    let rule = HazardRule::new(&settings, &manhole).unwrap();
    let watched: Vec<_> = rule
        .classes
        .iter()
        .map(|c| (c.class, c.label.as_str(), c.category.as_str(), c.severity))
        .collect();
    assert_eq!(
        watched,
        [
            (1, "manhole_broken", "component:0114", Severity::Medium),
            (2, "manhole_missing", "component:0114", Severity::High),
        ]
    );
    let recorded = manhole.evaluation.as_ref().unwrap().score_threshold;
    assert_eq!(rule.min_score, recorded, "the model's operating score");
    // A model without hazard classes cannot serve a hazard rule.
    let yolox = ModelManifest::load(&models.join("yolox-nano.toml")).unwrap();
    let err = HazardRule::new(&settings, &yolox).unwrap_err();
    assert!(err.contains("names no hazard classes"), "{err}");
}
