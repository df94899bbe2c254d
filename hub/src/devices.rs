//! Camera entries for the device registry, checked without I/O: one camera as the API's
//! JSON body (`CameraEntry`) or as a row of an import (`CameraRow`, one flat line of a CSV
//! a technician fills in a spreadsheet), into what the store writes (`NewCamera`), the
//! password sealed.

use protocol::FieldError;
use protocol::Location;
use protocol::device::{CameraSpec, CrowdSpec, HazardSpec, Secret, Transport};
use serde::Deserialize;
use serde_json::json;

use crate::sealing::SealKey;
use crate::store::{NewCamera, PasswordChange};

/// `PUT /api/v1/registry/cameras/{id}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraEntry {
    pub gateway_id: String,
    pub camera: CameraSpec,
    /// The asset the camera watches (a manhole cover's component code).
    #[serde(default)]
    pub asset_code: Option<String>,
    /// Forget the stored password (the camera needs none now).
    #[serde(default)]
    pub clear_password: bool,
}

/// One camera as a line of an import (CSV header names, or keys of a TOML `[[camera]]`).
/// An empty `password` keeps the stored one. `rule` is `hazard` (the model's hazard classes,
/// default settings), `crowd` (with `min_persons`) or empty.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraRow {
    pub id: String,
    pub gateway_id: String,
    pub name: Option<String>,
    pub url: String,
    pub sub_url: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub transport: Option<Transport>,
    pub detect_fps: Option<f64>,
    pub lat: f64,
    pub lon: f64,
    pub area_code: Option<String>,
    pub grid: Option<String>,
    pub asset_code: Option<String>,
    pub model: Option<String>,
    pub rule: Option<String>,
    pub min_persons: Option<u32>,
}

impl CameraRow {
    /// The row as the entry the API takes.
    pub fn into_entry(self) -> Result<CameraEntry, FieldError> {
        let err = |path: &str, message: String| FieldError {
            path: path.to_owned(),
            message,
        };
        let (crowd, hazard) = match (self.rule.as_deref().unwrap_or(""), self.min_persons) {
            ("", None) => (None, None),
            ("hazard", None) => (None, Some(HazardSpec::default())),
            ("crowd", Some(min_persons)) => (Some(CrowdSpec::new(min_persons)), None),
            ("crowd", None) => return Err(err("min_persons", "a crowd rule needs it".into())),
            (_, Some(_)) => {
                return Err(err("min_persons", "only with rule = crowd".into()));
            }
            (other, None) => {
                return Err(err(
                    "rule",
                    format!("{other:?} must be hazard, crowd or empty"),
                ));
            }
        };
        Ok(CameraEntry {
            gateway_id: self.gateway_id,
            camera: CameraSpec {
                id: self.id,
                name: self.name,
                url: self.url,
                sub_url: self.sub_url,
                username: self.username,
                password: self.password.filter(|p| !p.is_empty()).map(Secret::new),
                transport: self.transport.unwrap_or_default(),
                detect_fps: self.detect_fps.unwrap_or(2.0),
                location: Location {
                    lat: self.lat,
                    lon: self.lon,
                    area_code: self.area_code,
                    grid: self.grid,
                },
                model: self.model,
                tiling: None,
                crowd,
                hazard,
            },
            asset_code: self.asset_code,
            clear_password: false,
        })
    }
}

/// Checks `entry` for camera `id` into what the store writes. `stored_password`: the
/// registry holds a password for this camera now. A new password is sealed with `key`
/// (none: passwords are refused).
pub fn check_entry(
    id: &str,
    entry: CameraEntry,
    key: Option<&SealKey>,
    stored_password: bool,
) -> Result<NewCamera, FieldError> {
    let err = |path: &str, message: String| FieldError {
        path: path.to_owned(),
        message,
    };
    let CameraEntry {
        gateway_id,
        mut camera,
        asset_code,
        clear_password,
    } = entry;
    if camera.id != id {
        return Err(err(
            "camera.id",
            format!("{:?} differs from the camera's id ({id:?})", camera.id),
        ));
    }
    let change = match (camera.password.take(), clear_password) {
        (Some(_), true) => {
            return Err(err(
                "clear_password",
                "give a password or clear it, not both".into(),
            ));
        }
        (Some(p), false) => {
            let key = key.ok_or_else(|| {
                err(
                    "camera.password",
                    "this hub has no registry_key (HUB_REGISTRY_KEY), so it cannot store passwords"
                        .into(),
                )
            })?;
            PasswordChange::Set(key.seal(id, p.expose()))
        }
        (None, true) => PasswordChange::Clear,
        (None, false) => PasswordChange::Keep,
    };
    // The username/password pairing is checked against the password the camera will have.
    let will_have_password = match &change {
        PasswordChange::Set(_) => true,
        PasswordChange::Clear => false,
        PasswordChange::Keep => stored_password,
    };
    let mut checked = camera.clone();
    checked.password = will_have_password.then(|| Secret::new(""));
    checked.validate("camera")?;
    if let Some(code) = &asset_code {
        check_asset_code(code).map_err(|m| err("asset_code", m))?;
    }
    let detail = json!({
        "gateway_id": gateway_id,
        "url": camera.url,
        "password": match change {
            PasswordChange::Keep => "unchanged",
            PasswordChange::Set(_) => "set",
            PasswordChange::Clear => "cleared",
        },
    });
    Ok(NewCamera {
        gateway_id,
        spec: camera,
        password: change,
        asset_code,
        detail,
    })
}

/// An asset code: 1 to 64 letters, digits and dashes (a manhole cover's 16-digit code).
fn check_asset_code(code: &str) -> Result<(), String> {
    if code.is_empty()
        || code.len() > 64
        || !code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(format!(
            "{code:?} must be 1 to 64 letters, digits and dashes"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn row(extra: &[(&str, &str)]) -> CameraRow {
        let mut fields = serde_json::Map::new();
        for (k, v) in [
            ("id", "cam-01"),
            ("gateway_id", "gw-1"),
            ("url", "rtsp://10.0.0.5/Streaming/Channels/101"),
        ]
        .iter()
        .chain(extra)
        {
            fields.insert((*k).into(), json!(v));
        }
        fields.insert("lat".into(), json!(30.1));
        fields.insert("lon".into(), json!(120.2));
        serde_json::from_value(serde_json::Value::Object(fields)).unwrap()
    }

    #[test]
    fn a_row_becomes_an_entry_with_its_rule() {
        let entry = row(&[("rule", "hazard")]).into_entry().unwrap();
        let hazard = entry.camera.hazard.unwrap();
        assert_eq!((hazard.frames, hazard.window), (3, 5));
        assert_eq!(entry.camera.detect_fps, 2.0);
        let crowd = row(&[("rule", "crowd")]);
        let crowd = CameraRow {
            min_persons: Some(8),
            ..crowd
        }
        .into_entry()
        .unwrap()
        .camera
        .crowd
        .unwrap();
        assert_eq!(crowd, CrowdSpec::new(8));
        assert_eq!(
            row(&[("rule", "crowd")]).into_entry().unwrap_err().path,
            "min_persons"
        );
        assert_eq!(
            row(&[("rule", "smoke")]).into_entry().unwrap_err().path,
            "rule"
        );
        let plain = row(&[("password", "")]).into_entry().unwrap();
        assert!(
            plain.camera.password.is_none(),
            "an empty password keeps the stored one"
        );
    }

    #[test]
    fn entries_are_checked_and_passwords_sealed() {
        let key = SealKey::from_hex(KEY).unwrap();
        let entry = |extra: &[(&str, &str)]| row(extra).into_entry().unwrap();
        let new = check_entry(
            "cam-01",
            entry(&[("username", "admin"), ("password", "pw-123")]),
            Some(&key),
            false,
        )
        .unwrap();
        let PasswordChange::Set(sealed) = &new.password else {
            panic!("{:?}", new.password)
        };
        assert_eq!(key.open("cam-01", sealed).unwrap(), "pw-123");
        assert!(new.spec.password.is_none());
        assert_eq!(new.detail["password"], "set");

        // A user name alone is fine only while a password is stored.
        let keep = || entry(&[("username", "admin")]);
        assert!(check_entry("cam-01", keep(), Some(&key), true).is_ok());
        let e = check_entry("cam-01", keep(), Some(&key), false).unwrap_err();
        assert_eq!(e.path, "camera.username");

        let e = check_entry("cam-02", entry(&[]), Some(&key), false).unwrap_err();
        assert_eq!(e.path, "camera.id");
        let e = check_entry(
            "cam-01",
            entry(&[("username", "a"), ("password", "b")]),
            None,
            false,
        )
        .unwrap_err();
        assert_eq!(e.path, "camera.password");
        let e = check_entry("cam-01", entry(&[("asset_code", "a b")]), None, false).unwrap_err();
        assert_eq!(e.path, "asset_code");
        let e = check_entry("cam-01", entry(&[("sub_url", "ftp://x/y")]), None, false).unwrap_err();
        assert_eq!(e.path, "camera.sub_url");
    }

    #[test]
    fn the_example_spreadsheet_reads_and_checks() {
        use crate::reference::format::{self, Format};
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/cameras.example.csv");
        let text = std::fs::read_to_string(path).unwrap();
        let (rows, errors) = format::rows::<CameraRow>(&text, Format::Csv, "camera").unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(rows.len(), 2);
        for (line, row) in rows {
            let id = row.id.clone();
            let entry = row.into_entry().unwrap();
            // As a first import: the registry holds no password for these cameras yet.
            check_entry(&id, entry, None, false).unwrap_or_else(|e| panic!("line {line}: {e:?}"));
        }
    }

    #[test]
    fn asset_codes_are_plain_codes() {
        check_asset_code("3301020010000123").unwrap();
        check_asset_code("MH-0001").unwrap();
        assert!(check_asset_code("").is_err());
        assert!(check_asset_code("has space").is_err());
        assert!(check_asset_code(&"9".repeat(65)).is_err());
    }
}
