//! The area map: county, townships, villages/communities and grids as polygons (GeoJSON),
//! so a latitude/longitude resolves to its division code and grid, and the dashboard's
//! map can draw the outlines. Pure: parsed once from text, then only asked.

use geojson::{GeoJson, Geometry, GeometryValue, Position};
use serde::Serialize;

/// How specific an area is; a division code's length follows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AreaLevel {
    /// 6-digit division code.
    County,
    /// 9 digits.
    Township,
    /// Village or community (村/社区), 12 digits.
    Village,
    /// A grid (网格): the smallest unit a grid worker patrols; any identifier.
    Grid,
}

impl AreaLevel {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "county" => Some(Self::County),
            "township" => Some(Self::Township),
            "village" => Some(Self::Village),
            "grid" => Some(Self::Grid),
            _ => None,
        }
    }

    fn code_digits(self) -> Option<usize> {
        match self {
            Self::County => Some(6),
            Self::Township => Some(9),
            Self::Village => Some(12),
            Self::Grid => None,
        }
    }
}

/// A ring of `[lon, lat]` points; the first ring of a polygon is its outline, the rest
/// its holes.
type Ring = Vec<[f64; 2]>;

#[derive(Debug, Clone)]
struct Area {
    code: String,
    level: AreaLevel,
    polygons: Vec<Vec<Ring>>,
    /// `[min_lon, min_lat, max_lon, max_lat]`, to skip most areas at once.
    bbox: [f64; 4],
}

/// Where a point lies: the most specific division and the grid, when any contain it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Located {
    pub division: Option<String>,
    pub grid: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct AreaMap {
    areas: Vec<Area>,
    /// The map as loaded, for the dashboard.
    pub geojson: serde_json::Value,
}

impl AreaMap {
    /// Reads a GeoJSON FeatureCollection whose features carry `code`, `name` and `level`
    /// (`county`, `township`, `village` or `grid`) with a Polygon or MultiPolygon. An error
    /// names the feature and the field.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parsed: GeoJson = text.parse().map_err(|e| format!("not GeoJSON: {e}"))?;
        let GeoJson::FeatureCollection(collection) = parsed else {
            return Err("must be a GeoJSON FeatureCollection".into());
        };
        let mut areas = Vec::with_capacity(collection.features.len());
        for (i, feature) in collection.features.iter().enumerate() {
            let at = |field: &str| format!("features[{i}].{field}");
            let prop = |name: &str| {
                feature
                    .property(name)
                    .and_then(|v| v.as_str())
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| {
                        format!(
                            "{}: a non-empty string is required",
                            at(&format!("properties.{name}"))
                        )
                    })
            };
            let code = prop("code")?;
            prop("name")?;
            let level = AreaLevel::parse(prop("level")?).ok_or_else(|| {
                format!(
                    "{}: must be county, township, village or grid",
                    at("properties.level")
                )
            })?;
            match level.code_digits() {
                Some(n) if !(code.len() == n && code.bytes().all(|b| b.is_ascii_digit())) => {
                    return Err(format!(
                        "{}: a {level:?} code has {n} digits, not {code:?}",
                        at("properties.code")
                    ));
                }
                None => protocol::check_identifier(code)
                    .map_err(|m| format!("{}: {m}", at("properties.code")))?,
                _ => {}
            }
            let geometry = feature.geometry.as_ref().ok_or_else(|| {
                format!("{}: a Polygon or MultiPolygon is required", at("geometry"))
            })?;
            let polygons = polygons(geometry).map_err(|m| format!("{}: {m}", at("geometry")))?;
            areas.push(Area::new(code.to_owned(), level, polygons));
        }
        let geojson = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        Ok(Self { areas, geojson })
    }

    pub fn is_empty(&self) -> bool {
        self.areas.is_empty()
    }

    pub fn len(&self) -> usize {
        self.areas.len()
    }

    /// The most specific division (village, else township, else county) and the grid that
    /// contain the point. Where areas of one level overlap, the first in the file wins.
    pub fn locate(&self, lat: f64, lon: f64) -> Located {
        let mut division: Option<&Area> = None;
        let mut grid = None;
        for area in self.areas.iter().filter(|a| a.contains(lon, lat)) {
            match area.level {
                AreaLevel::Grid => {
                    grid.get_or_insert(area.code.clone());
                }
                level => {
                    if division.is_none_or(|d| d.level < level) {
                        division = Some(area);
                    }
                }
            }
        }
        Located {
            division: division.map(|a| a.code.clone()),
            grid,
        }
    }
}

impl Area {
    fn new(code: String, level: AreaLevel, polygons: Vec<Vec<Ring>>) -> Self {
        let mut bbox = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
        for [x, y] in polygons.iter().flat_map(|p| p.first()).flatten() {
            bbox = [
                bbox[0].min(*x),
                bbox[1].min(*y),
                bbox[2].max(*x),
                bbox[3].max(*y),
            ];
        }
        Self {
            code,
            level,
            polygons,
            bbox,
        }
    }

    fn contains(&self, x: f64, y: f64) -> bool {
        let [x0, y0, x1, y1] = self.bbox;
        if x < x0 || x > x1 || y < y0 || y > y1 {
            return false;
        }
        self.polygons.iter().any(|rings| {
            let mut rings = rings.iter();
            rings.next().is_some_and(|outline| inside(outline, x, y))
                && !rings.any(|hole| inside(hole, x, y))
        })
    }
}

/// Even-odd ray casting: whether `(x, y)` lies inside the closed ring.
fn inside(ring: &[[f64; 2]], x: f64, y: f64) -> bool {
    let mut result = false;
    let mut j = ring.len().wrapping_sub(1);
    for i in 0..ring.len() {
        let ([xi, yi], [xj, yj]) = (ring[i], ring[j]);
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            result = !result;
        }
        j = i;
    }
    result
}

fn polygons(geometry: &Geometry) -> Result<Vec<Vec<Ring>>, String> {
    let ring = |points: &Vec<Position>| -> Result<Ring, String> {
        if points.len() < 4 {
            return Err("a ring needs at least 4 positions (closed)".into());
        }
        points
            .iter()
            .map(|p| match p.as_slice() {
                [lon, lat, ..]
                    if (-180.0..=180.0).contains(lon) && (-90.0..=90.0).contains(lat) =>
                {
                    Ok([*lon, *lat])
                }
                other => Err(format!("position {other:?} is not [lon, lat] in range")),
            })
            .collect()
    };
    let polygon =
        |rings: &Vec<Vec<Position>>| rings.iter().map(ring).collect::<Result<Vec<_>, _>>();
    match &geometry.value {
        GeometryValue::Polygon { coordinates } => Ok(vec![polygon(coordinates)?]),
        GeometryValue::MultiPolygon { coordinates } => coordinates.iter().map(polygon).collect(),
        _ => Err("must be a Polygon or MultiPolygon".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(code: &str, level: &str, x0: f64, y0: f64, size: f64) -> serde_json::Value {
        serde_json::json!({
            "type": "Feature",
            "properties": {"code": code, "name": code, "level": level},
            "geometry": {"type": "Polygon", "coordinates": [[
                [x0, y0], [x0 + size, y0], [x0 + size, y0 + size], [x0, y0 + size], [x0, y0]
            ]]}
        })
    }

    fn map(features: Vec<serde_json::Value>) -> Result<AreaMap, String> {
        AreaMap::parse(
            &serde_json::json!({"type": "FeatureCollection", "features": features}).to_string(),
        )
    }

    #[test]
    fn a_point_resolves_to_its_most_specific_division_and_grid() {
        let m = map(vec![
            square("330106", "county", 120.0, 30.0, 1.0),
            square("330106001", "township", 120.0, 30.0, 0.5),
            square("330106001001", "village", 120.0, 30.0, 0.25),
            square("G-01", "grid", 120.0, 30.0, 0.1),
        ])
        .unwrap();
        assert_eq!(
            m.locate(30.05, 120.05),
            Located {
                division: Some("330106001001".into()),
                grid: Some("G-01".into())
            }
        );
        assert_eq!(m.locate(30.4, 120.4).division.as_deref(), Some("330106001"));
        assert_eq!(m.locate(30.9, 120.9).division.as_deref(), Some("330106"));
        assert_eq!(m.locate(30.9, 120.9).grid, None);
        assert_eq!(m.locate(10.0, 10.0), Located::default());
    }

    #[test]
    fn holes_and_multipolygons_count() {
        let text = serde_json::json!({"type": "FeatureCollection", "features": [{
            "type": "Feature",
            "properties": {"code": "G-ring", "name": "ring", "level": "grid"},
            "geometry": {"type": "MultiPolygon", "coordinates": [
                [
                    [[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [0.0, 4.0], [0.0, 0.0]],
                    [[1.0, 1.0], [3.0, 1.0], [3.0, 3.0], [1.0, 3.0], [1.0, 1.0]]
                ],
                [[[10.0, 10.0], [11.0, 10.0], [11.0, 11.0], [10.0, 10.0]]]
            ]}
        }]});
        let m = AreaMap::parse(&text.to_string()).unwrap();
        assert_eq!(m.locate(0.5, 0.5).grid.as_deref(), Some("G-ring"));
        assert_eq!(m.locate(2.0, 2.0).grid, None, "inside the hole");
        assert_eq!(
            m.locate(10.2, 10.8).grid.as_deref(),
            Some("G-ring"),
            "the triangle"
        );
        assert_eq!(m.locate(10.8, 10.2).grid, None, "outside the triangle");
    }

    #[test]
    fn bad_features_are_named() {
        for (feature, expect) in [
            (
                square("3301", "county", 0.0, 0.0, 1.0),
                "features[0].properties.code",
            ),
            (
                square("G 1", "grid", 0.0, 0.0, 1.0),
                "features[0].properties.code",
            ),
            (
                square("330106", "city", 0.0, 0.0, 1.0),
                "features[0].properties.level",
            ),
            (
                serde_json::json!({"type": "Feature", "properties": {"code": "G-1", "level": "grid"},
                    "geometry": {"type": "Point", "coordinates": [0.0, 0.0]}}),
                "features[0].properties.name",
            ),
            (
                serde_json::json!({"type": "Feature", "properties": {"code": "G-1", "name": "g", "level": "grid"},
                    "geometry": {"type": "Point", "coordinates": [0.0, 0.0]}}),
                "features[0].geometry",
            ),
            (
                square("G-1", "grid", 0.0, 95.0, 1.0),
                "features[0].geometry",
            ),
        ] {
            let err = map(vec![feature]).unwrap_err();
            assert!(err.contains(expect), "{err:?} should name {expect}");
        }
        assert!(AreaMap::parse("{}").is_err());
        assert!(
            AreaMap::parse(r#"{"type": "Point", "coordinates": [0, 0]}"#)
                .unwrap_err()
                .contains("FeatureCollection")
        );
    }
}
