//! Correlation: does a new event belong to a case already open? The same broken cover seen
//! by a camera and reported by a grid worker, or a crowd that stays for an hour, should be
//! one case, not many. Pure: the store supplies the candidates.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// How near in space and time an event must be to join a case.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CorrelationConfig {
    /// Metres between the event and the case.
    pub radius_m: f64,
    /// Hours since the case's latest event.
    pub window_hours: f64,
}

impl Default for CorrelationConfig {
    fn default() -> Self {
        Self {
            radius_m: 50.0,
            window_hours: 24.0,
        }
    }
}

/// An open case of the event's category, as the store found it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: String,
    pub lat: f64,
    pub lon: f64,
    pub last_event_at: DateTime<Utc>,
}

impl CorrelationConfig {
    pub fn window(&self) -> Duration {
        Duration::milliseconds((self.window_hours * 3_600_000.0) as i64)
    }

    /// A latitude/longitude box that contains every point within the radius, for the store's
    /// index lookup: `(min_lat, max_lat, min_lon, max_lon)`.
    pub fn bounding_box(&self, lat: f64, lon: f64) -> (f64, f64, f64, f64) {
        let dlat = self.radius_m / METRES_PER_DEGREE;
        let dlon = self.radius_m / (METRES_PER_DEGREE * lat.to_radians().cos().max(0.01));
        (lat - dlat, lat + dlat, lon - dlon, lon + dlon)
    }

    /// The grid cells a search around (lat, lon) touches, sorted: an advisory-lock scope.
    /// Cells are at least twice the radius across, so the search box spans at most 2×2
    /// cells, and two events close enough to correlate always share a cell.
    pub fn lock_cells(&self, lat: f64, lon: f64) -> Vec<(i64, i64)> {
        let size = (2.0 * self.radius_m / METRES_PER_DEGREE).max(0.01);
        let (min_lat, max_lat, min_lon, max_lon) = self.bounding_box(lat, lon);
        let lon_size = size / lat.to_radians().cos().max(0.01);
        let cell = |v: f64, size: f64| (v / size).floor() as i64;
        let mut cells = Vec::with_capacity(4);
        for y in [cell(min_lat, size), cell(max_lat, size)] {
            for x in [cell(min_lon, lon_size), cell(max_lon, lon_size)] {
                cells.push((y, x));
            }
        }
        cells.sort_unstable();
        cells.dedup();
        cells
    }

    /// The nearest candidate within the radius whose latest event is within the window of
    /// `at`; `None` opens a new case. A zero radius or window turns correlation off.
    pub fn pick<'a>(
        &self,
        lat: f64,
        lon: f64,
        at: DateTime<Utc>,
        candidates: &'a [Candidate],
    ) -> Option<&'a Candidate> {
        if self.radius_m <= 0.0 || self.window_hours <= 0.0 {
            return None;
        }
        candidates
            .iter()
            .filter(|c| (at - c.last_event_at).abs() <= self.window())
            .map(|c| (c, distance_m(lat, lon, c.lat, c.lon)))
            .filter(|(_, d)| *d <= self.radius_m)
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(c, _)| c)
    }
}

const EARTH_RADIUS_M: f64 = 6_371_008.8;
const METRES_PER_DEGREE: f64 = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;

/// Great-circle distance (haversine).
pub fn distance_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * a.sqrt().asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + h * 3600, 0).unwrap()
    }

    fn case(id: &str, lat: f64, lon: f64, last: DateTime<Utc>) -> Candidate {
        Candidate {
            id: id.into(),
            lat,
            lon,
            last_event_at: last,
        }
    }

    #[test]
    fn distance_of_known_points() {
        // One thousandth of a degree of latitude is about 111 m anywhere.
        assert!((distance_m(30.0, 120.0, 30.001, 120.0) - 111.2).abs() < 0.5);
        assert_eq!(distance_m(30.0, 120.0, 30.0, 120.0), 0.0);
    }

    #[test]
    fn joins_the_nearest_case_in_radius_and_window() {
        let cfg = CorrelationConfig::default();
        // ~22 m and ~44 m north of the event, and one ~111 m away.
        let cands = vec![
            case("far", 30.001, 120.0, at(0)),
            case("44m", 30.0004, 120.0, at(0)),
            case("22m", 30.0002, 120.0, at(0)),
        ];
        assert_eq!(cfg.pick(30.0, 120.0, at(1), &cands).unwrap().id, "22m");
        // Outside the window, nothing joins.
        assert!(cfg.pick(30.0, 120.0, at(25), &cands).is_none());
        // A late event (occurred before the case's last event) still joins within the window.
        assert_eq!(cfg.pick(30.0, 120.0, at(-2), &cands).unwrap().id, "22m");
        assert!(
            cfg.pick(30.0, 120.0, at(1), &[case("far", 30.001, 120.0, at(0))])
                .is_none()
        );
    }

    #[test]
    fn events_that_can_correlate_share_a_lock_cell() {
        let cfg = CorrelationConfig::default();
        // Walk pairs 40 m apart across cell boundaries: they must always share a cell.
        for i in 0..2000 {
            let lat = 30.0 + i as f64 * 0.00013;
            let lon = 120.0 + i as f64 * 0.00017;
            let other = (
                lat + 0.00036 * 0.6,
                lon + 0.00036 * 0.8 / lat.to_radians().cos(),
            );
            assert!(distance_m(lat, lon, other.0, other.1) <= cfg.radius_m);
            let (a, b) = (cfg.lock_cells(lat, lon), cfg.lock_cells(other.0, other.1));
            assert!(
                a.iter().any(|c| b.contains(c)),
                "{lat},{lon}: {a:?} vs {b:?}"
            );
            assert!(a.len() <= 4 && a.windows(2).all(|w| w[0] < w[1]));
        }
        // Far apart: different cells.
        assert!(
            cfg.lock_cells(30.0, 120.0)
                .iter()
                .all(|c| !cfg.lock_cells(30.1, 120.0).contains(c))
        );
    }

    #[test]
    fn zero_turns_correlation_off() {
        let here = [case("same", 30.0, 120.0, at(0))];
        assert!(
            CorrelationConfig {
                radius_m: 0.0,
                window_hours: 24.0
            }
            .pick(30.0, 120.0, at(0), &here)
            .is_none()
        );
        assert!(
            CorrelationConfig {
                radius_m: 50.0,
                window_hours: 0.0
            }
            .pick(30.0, 120.0, at(0), &here)
            .is_none()
        );
    }

    #[test]
    fn the_bounding_box_contains_the_radius() {
        let cfg = CorrelationConfig {
            radius_m: 500.0,
            window_hours: 1.0,
        };
        for lat in [0.0, 30.0, 60.0, -45.0] {
            let (min_lat, max_lat, min_lon, max_lon) = cfg.bounding_box(lat, 100.0);
            assert!(distance_m(lat, 100.0, max_lat, 100.0) >= 499.0);
            assert!(distance_m(lat, 100.0, lat, max_lon) >= 499.0);
            assert!(min_lat < lat && min_lon < 100.0);
        }
    }
}
