//! The operator dashboard in a real browser: the real hub process serving the built page,
//! users with passwords, and `hub/web/e2e/dashboard.test.mjs` driving Debian's Chromium
//! through Playwright. Screenshots land in `tests/artifacts/dashboard/`.

use std::process::Command;

use system_tests::{Hub, hub_command, hub_command_with_input, log_tail, repo, shared};

const PASSWORD: &str = "correct horse battery staple";
/// The password of the camera entered in the device registry, which no page may show.
const CAMERA_PASSWORD: &str = "Gate-Cam-Pw-42";

#[tokio::test]
async fn the_dashboard_runs_a_case_in_chromium() -> anyhow::Result<()> {
    let web = repo().join("hub/web");
    let dist = web.join("dist");
    anyhow::ensure!(
        dist.join("index.html").is_file() && web.join("node_modules/playwright-core").is_dir(),
        "the dashboard is not built: run `npm ci && npm run build` in hub/web (scripts/test.sh does)"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    anyhow::ensure!(
        std::path::Path::new(&chromium).is_file(),
        "{chromium} is missing: install Debian's chromium (scripts/install-deps.sh does)"
    );

    let dir = tempfile::tempdir()?;
    let database = format!("sqlite:{}", dir.path().join("hub.db").display());
    let mut hub = Hub::prepare(dir.path(), database, None)?;
    hub.env.push(("HUB_WEB_ROOT", dist.display().to_string()));
    hub.env.push((
        "HUB_AREAS",
        repo()
            .join("deploy/areas.example.geojson")
            .display()
            .to_string(),
    ));
    // The category catalogue, so screens show names beside codes.
    hub.env.push((
        "HUB_CATEGORIES",
        repo()
            .join("deploy/categories.example.csv")
            .display()
            .to_string(),
    ));
    let gateway_token = hub.add_gateway("gw-web")?;
    for (name, role, department, temporary) in [
        ("op-web", "operator", None, false),
        ("police-web", "department", Some("police"), false),
        ("fire-web", "department", Some("fire"), false),
        // Given a first password to replace at the first sign-in.
        ("new-web", "department", Some("police"), true),
    ] {
        let mut args = vec!["user", "add", name, "--role", role, "--password-stdin"];
        if let Some(d) = department {
            args.extend(["--department", d]);
        }
        if temporary {
            args.push("--temporary");
        }
        hub_command_with_input(&hub.env, &args, &format!("{PASSWORD}\n"))?;
    }
    hub.env.push(("HUB_REGISTRY_KEY", "5a".repeat(32)));
    let technician = hub_command(
        &hub.env,
        &["user", "add", "tech-web", "--role", "technician"],
    )?;
    hub.start().await?;
    // A camera in the device registry, with a password the page must never show.
    let registered = reqwest::Client::new()
        .put(format!("{}/api/v1/registry/cameras/cam-east-gate", hub.url))
        .bearer_auth(technician.trim())
        .json(&serde_json::json!({
            "gateway_id": "gw-web",
            "camera": {
                "id": "cam-east-gate",
                "name": "东门摄像头 east gate",
                "url": "rtsp://192.0.2.10:554/Streaming/Channels/101",
                "username": "viewer",
                "password": CAMERA_PASSWORD,
                "location": { "lat": 30.2741, "lon": 120.1551 },
                "hazard": {}
            },
            "asset_code": "3301060010000123"
        }))
        .send()
        .await?;
    anyhow::ensure!(
        registered.status().is_success(),
        "{}",
        registered.text().await?
    );
    // A patrol terminal issued in the registry, never connected.
    let issued = reqwest::Client::new()
        .put(format!("{}/api/v1/registry/terminals/pt-zhang", hub.url))
        .bearer_auth(technician.trim())
        .json(&serde_json::json!({
            "gateway_id": "gw-web", "holder": "张三 Zhang San", "grid": "G-001"
        }))
        .send()
        .await?;
    anyhow::ensure!(issued.status().is_success(), "{}", issued.text().await?);

    let artifacts = repo().join("tests/artifacts/dashboard");
    let out = Command::new("node")
        .args(["--test", "--test-reporter=spec", "e2e/"])
        .current_dir(&web)
        .env("HUB_URL", &hub.url)
        .env("GATEWAY_ID", "gw-web")
        .env("GATEWAY_TOKEN", &gateway_token)
        .env("USER_PASSWORD", PASSWORD)
        .env("CAMERA_PASSWORD", CAMERA_PASSWORD)
        .env(
            "TEST_IMAGE",
            shared().join("testdata/crowd_seminar_ibm_stc-brownbag.jpg"),
        )
        .env("ARTIFACTS", &artifacts)
        .env("CHROMIUM", &chromium)
        .output()?;
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{report}");
    anyhow::ensure!(
        out.status.success(),
        "the browser test failed (its report is above)\n{}",
        log_tail("hub", &hub.log, 40)
    );
    Ok(())
}
