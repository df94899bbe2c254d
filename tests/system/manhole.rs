//! A generated road scene with a broken manhole cover, streamed over RTSP to a gateway that
//! runs the project's manhole model with the hazard rule: the hub opens a case in the
//! component catalogue, routed to the department the ownership list names. When the
//! department reports it handled, the hub asks the camera to look again; the clip still
//! shows the broken cover, and the case learns so.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use super::{Scenario, System};
use system_tests::{hub_command, repo, wait_for};

/// Renders the road still with the project's scene generator (`SYNTH_PYTHON`, set by
/// `.cache/env.sh` after scripts/install-deps.sh).
fn road_scene(out: &Path) -> anyhow::Result<()> {
    let python = std::env::var_os("SYNTH_PYTHON")
        .context("SYNTH_PYTHON is not set: run scripts/install-deps.sh and source .cache/env.sh")?;
    let status = std::process::Command::new(python)
        .arg(repo().join("models/manhole/synth.py"))
        .args(["--seed", "2026", "--scene", "manhole_broken", "--out"])
        .arg(out)
        .status()?;
    anyhow::ensure!(status.success(), "synth.py failed");
    Ok(())
}

fn scenario(image: &Path) -> Scenario {
    Scenario {
        image: image.to_owned(),
        ownership: "[[item]]\ncategory = \"component:01\"\ndepartment = \"housing\"\ntime_limit = \"4 working_hours\"\n",
        gateway: format!(
            r#"
[model]
manifest = "{yolox}"

[models.manhole]
manifest = "{manhole}"

[[camera]]
id = "road-1"
name = "road camera"
url = "{{rtsp_url}}"
detect_fps = 2
model = "manhole"

[camera.location]
lat = 30.27
lon = 120.15
area_code = "330106001001"

[camera.hazard]
frames = 2
window = 3
"#,
            yolox = repo().join("models/yolox-nano.toml").display(),
            manhole = repo().join("models/manhole-v1.toml").display(),
        ),
    }
}

#[tokio::test]
async fn broken_cover_case_reaches_the_hub() {
    let scene = tempfile::tempdir().unwrap();
    let image = scene.path().join("road.jpg");
    road_scene(&image).unwrap();
    let db = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", db.path().join("hub.db").display());
    let system = System::start(url, scenario(&image)).await.unwrap();
    let result = async {
        let cases = wait_for(
            "a manhole case at the hub",
            Duration::from_secs(120),
            || async {
                let cases = system
                    .hub
                    .get("/api/v1/cases?category=component:0114")
                    .await?;
                Ok((cases["total"].as_i64() > Some(0)).then_some(cases))
            },
        )
        .await?;
        let case = &cases["items"][0];
        anyhow::ensure!(
            case["department"] == "housing",
            "routed to {}",
            case["department"]
        );
        anyhow::ensure!(case["state"] == "dispatched", "{case}");
        let id = case["id"].as_str().context("case id")?;
        let detail = system.hub.get(&format!("/api/v1/cases/{id}")).await?;
        let event = &detail["events"][0]["event"];
        anyhow::ensure!(event["rule"] == "hazard", "{event}");
        anyhow::ensure!(event["severity"] == "medium", "{event}");
        anyhow::ensure!(event["source"]["camera_id"] == "road-1", "{event}");
        anyhow::ensure!(
            event["detection"]["counts"]["manhole_broken"] == 1
                && event["detection"]["model"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("manhole-v1@")),
            "{event}"
        );
        anyhow::ensure!(
            detail["evidence_urls"][0].is_string(),
            "no snapshot: {detail}"
        );
        // The broken cover is not a crowd, and the intact-looking road raises nothing else.
        let all = system.hub.get("/api/v1/cases").await?;
        anyhow::ensure!(all["total"] == 1, "one case expected: {all}");

        // The housing bureau says it is fixed; the camera still sees it broken.
        let housing = hub_command(
            &system.hub.env,
            &[
                "user",
                "add",
                "housing-1",
                "--role",
                "department",
                "--department",
                "housing",
            ],
        )?;
        for body in [
            serde_json::json!({"action": "accept"}),
            serde_json::json!({"action": "handle", "reason": "cover replaced"}),
        ] {
            let resp = system
                .client
                .post(format!("{}/api/v1/cases/{id}/actions", system.hub.url))
                .bearer_auth(housing.trim())
                .json(&body)
                .send()
                .await?;
            anyhow::ensure!(resp.status().is_success(), "{body}: {}", resp.text().await?);
        }
        let answered = wait_for(
            "the camera's re-inspection at the hub",
            Duration::from_secs(60),
            || async {
                let detail = system.hub.get(&format!("/api/v1/cases/{id}")).await?;
                let r = detail["reinspections"][0].clone();
                Ok(r["outcome"].is_string().then_some(r))
            },
        )
        .await?;
        anyhow::ensure!(answered["camera_id"] == "road-1", "{answered}");
        anyhow::ensure!(answered["outcome"] == "still_present", "{answered}");
        anyhow::ensure!(
            answered["frames"] == 3 && answered["score"].as_f64() > Some(0.3),
            "{answered}"
        );
        anyhow::ensure!(answered["snapshot_url"].is_string(), "{answered}");
        Ok::<_, anyhow::Error>(())
    }
    .await;
    if let Err(e) = result {
        panic!("{e:#}\n{}", system.logs());
    }
}
