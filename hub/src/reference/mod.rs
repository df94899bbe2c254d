//! Reference data (基础数据): the department list, the category catalogue, the ownership
//! list and the area map. Imported as CSV or TOML (the area map as GeoJSON), by the API, the
//! `hub import` command or the settings' first-start files, and kept in the database as
//! data. Pure: parsing and checking here;
//! `store::reference` keeps the sets and `http::reference` serves them.
//!
//! A document replaces its whole set, and only when every row is good and the set agrees
//! with the other sets in force; otherwise every bad row is reported with its line and
//! nothing changes.

pub mod categories;
pub mod departments;
pub mod format;
mod ownership;
pub mod users;

use std::fmt;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

pub use categories::Category;
pub use departments::{Department, Level};
pub use format::{Format, text};

use crate::engine::{AreaMap, OwnershipItem, OwnershipList};

/// Which set a document replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Departments,
    Categories,
    Ownership,
    /// The area map: divisions and grids with their polygons, a GeoJSON FeatureCollection.
    Areas,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Departments,
        Kind::Categories,
        Kind::Ownership,
        Kind::Areas,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Departments => "departments",
            Kind::Categories => "categories",
            Kind::Ownership => "ownership",
            Kind::Areas => "areas",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The name of the TOML array of tables that holds the rows.
    pub fn toml_table(self) -> &'static str {
        match self {
            Kind::Departments => "department",
            Kind::Categories => "category",
            Kind::Ownership => "item",
            Kind::Areas => "area",
        }
    }

    /// How a document of this kind is written: rows (CSV, TOML) or a map (GeoJSON).
    pub fn takes(self, format: Format) -> bool {
        (self == Kind::Areas) == (format == Format::GeoJson)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is wrong with one row of a document (`line`), or with the document or the set as a
/// whole (no line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub line: Option<usize>,
    pub message: String,
}

impl RowError {
    /// An error on `line`; 0 means the document as a whole.
    pub fn at(line: usize, message: impl Into<String>) -> Self {
        Self {
            line: (line > 0).then_some(line),
            message: message.into(),
        }
    }
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// The errors as lines of text, for a terminal or a log: the first [`REPORTED`], then a
/// count of the rest.
pub fn report(errors: &[RowError]) -> String {
    let mut text: Vec<String> = errors
        .iter()
        .take(REPORTED)
        .map(ToString::to_string)
        .collect();
    if errors.len() > REPORTED {
        text.push(format!("… and {} more", errors.len() - REPORTED));
    }
    text.join("\n")
}

/// How many errors a report lists.
pub const REPORTED: usize = 100;

/// A parsed and checked document: rows of one kind, with the lines they came from.
#[derive(Debug, Clone)]
pub enum Set {
    Departments(Vec<(usize, Department)>),
    Categories(Vec<(usize, Category)>),
    Ownership(Vec<(usize, OwnershipItem)>),
    Areas(Arc<AreaMap>),
}

impl Set {
    pub fn kind(&self) -> Kind {
        match self {
            Set::Departments(_) => Kind::Departments,
            Set::Categories(_) => Kind::Categories,
            Set::Ownership(_) => Kind::Ownership,
            Set::Areas(_) => Kind::Areas,
        }
    }

    /// Rows, or areas of a map.
    pub fn len(&self) -> usize {
        match self {
            Set::Departments(r) => r.len(),
            Set::Categories(r) => r.len(),
            Set::Ownership(r) => r.len(),
            Set::Areas(map) => map.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Parses `text` as a set of `kind` and checks every row and the set on its own; the
    /// errors of all rows come back together, by line.
    pub fn parse(kind: Kind, format: Format, text: &str) -> Result<Self, Vec<RowError>> {
        if !kind.takes(format) {
            return Err(vec![RowError::at(
                0,
                match kind {
                    Kind::Areas => {
                        "the area map is a GeoJSON FeatureCollection (.geojson, application/geo+json)"
                    }
                    _ => "this set is a CSV or TOML document",
                },
            )]);
        }
        fn checked<T>(
            (rows, mut errors): format::Rows<T>,
            check: fn(&[(usize, T)]) -> Vec<RowError>,
            wrap: fn(Vec<(usize, T)>) -> Set,
        ) -> Result<Set, Vec<RowError>> {
            errors.extend(check(&rows));
            if errors.is_empty() {
                Ok(wrap(rows))
            } else {
                errors.sort_by_key(|e| e.line);
                Err(errors)
            }
        }
        let table = kind.toml_table();
        match kind {
            Kind::Departments => checked(
                format::rows(text, format, table)?,
                departments::check,
                Set::Departments,
            ),
            Kind::Categories => checked(
                format::rows(text, format, table)?,
                categories::check,
                Set::Categories,
            ),
            Kind::Ownership => checked(
                format::rows(text, format, table)?,
                ownership::check,
                Set::Ownership,
            ),
            Kind::Areas => AreaMap::parse(text)
                .map(|map| Set::Areas(Arc::new(map)))
                .map_err(|message| vec![RowError::at(0, message)]),
        }
    }
}

/// The reference data in force.
#[derive(Debug, Clone, Default)]
pub struct Reference {
    pub departments: Vec<Department>,
    pub categories: Vec<Category>,
    pub ownership: OwnershipList,
    pub areas: Arc<AreaMap>,
    /// Counts the imports; each import names the revision it replaces, so two admins
    /// importing at once cannot silently undo each other.
    pub revision: i64,
}

impl Reference {
    /// This reference with `set` in place of its kind, when the set agrees with the others:
    /// the ownership list's departments and categories must be listed (where those lists
    /// are loaded), and a new department list or catalogue must keep what the ownership
    /// list in force names.
    pub fn with(&self, set: Set) -> Result<Reference, Vec<RowError>> {
        let mut next = self.clone();
        let errors = match set {
            Set::Ownership(rows) => {
                let lined: Vec<_> = rows.iter().map(|(l, i)| (*l, i)).collect();
                let errors = ownership::check_names(&lined, self);
                next.ownership = OwnershipList {
                    items: rows.into_iter().map(|(_, i)| i).collect(),
                };
                errors
            }
            Set::Departments(rows) => {
                next.departments = rows.into_iter().map(|(_, d)| d).collect();
                next.still_named_by_ownership()
            }
            Set::Categories(rows) => {
                next.categories = rows.into_iter().map(|(_, c)| c).collect();
                next.still_named_by_ownership()
            }
            Set::Areas(map) => {
                next.areas = map;
                Vec::new()
            }
        };
        if errors.is_empty() {
            Ok(next)
        } else {
            Err(errors)
        }
    }

    /// The ownership list in force, checked against this reference's other lists.
    fn still_named_by_ownership(&self) -> Vec<RowError> {
        let items: Vec<_> = self.ownership.items.iter().map(|i| (0, i)).collect();
        ownership::check_names(&items, self)
            .into_iter()
            .map(|e| RowError {
                line: None,
                message: format!(
                    "the ownership list in force needs it: {} (import a changed ownership list first)",
                    e.message
                ),
            })
            .collect()
    }

    /// The rows of the set of `kind`, as JSON.
    pub fn rows_json(&self, kind: Kind) -> serde_json::Value {
        match kind {
            Kind::Departments => serde_json::json!(self.departments),
            Kind::Categories => serde_json::json!(self.categories),
            Kind::Ownership => serde_json::json!(self.ownership.items),
            Kind::Areas => self.areas.geojson.clone(),
        }
    }

    /// The rows of the set of `kind` as a CSV document that imports back unchanged; `None`
    /// for the area map (GeoJSON, [`Self::rows_json`]).
    pub fn to_csv(&self, kind: Kind) -> Option<Result<String, csv::Error>> {
        Some(match kind {
            Kind::Departments => format::to_csv(&self.departments),
            Kind::Categories => format::to_csv(&self.categories),
            Kind::Ownership => format::to_csv(&self.ownership.items),
            Kind::Areas => return None,
        })
    }

    pub fn department(&self, id: &str) -> Option<&Department> {
        self.departments.iter().find(|d| d.id == id)
    }

    pub fn category(&self, code: &str) -> Option<&Category> {
        self.categories.iter().find(|c| c.code == code)
    }
}

/// The reference data in force in this process, swapped whole when an import lands.
#[derive(Debug, Clone, Default)]
pub struct Shared(Arc<RwLock<Arc<Reference>>>);

impl Shared {
    pub fn new(reference: Reference) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(reference))))
    }

    pub fn current(&self) -> Arc<Reference> {
        self.0.read().expect("reference lock").clone()
    }

    /// Puts `reference` in force unless a newer revision already is (another task may
    /// have loaded a later import meanwhile).
    pub fn install(&self, reference: Reference) {
        let mut guard = self.0.write().expect("reference lock");
        if reference.revision >= guard.revision {
            *guard = Arc::new(reference);
        }
    }
}

/// Whether `s` is a prefix of a 12-digit division code at a level: county (6 digits),
/// township (9) or village (12).
pub fn is_area_prefix(s: &str) -> bool {
    matches!(s.len(), 6 | 9 | 12) && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPARTMENTS: &str = "id,name,level,parent\n\
        centre,县指挥中心,county,\n\
        police,县公安局,county,centre\n\
        housing,县住建局,county,centre\n";

    const CATEGORIES: &str = r#"
        [[category]]
        code = "event:04"
        name = "突发事件"

        [[category]]
        code = "event:0407"
        name = "集体性事件"
        name_en = "mass gathering"
        classes = "person"

        [[category]]
        code = "component:01"
        name = "公用设施"
    "#;

    const OWNERSHIP: &str = "category,area,department,supervisor,time_limit,priority\n\
        event:0407,,police,centre,2 urgent_hours,\n\
        event:0407,330106001,police,,4 working_hours,1\n\
        component:01,,housing,,2 working_days,\n";

    fn loaded() -> Reference {
        let mut r = Reference::default();
        for (kind, format, text) in [
            (Kind::Departments, Format::Csv, DEPARTMENTS),
            (Kind::Categories, Format::Toml, CATEGORIES),
            (Kind::Ownership, Format::Csv, OWNERSHIP),
        ] {
            r = r.with(Set::parse(kind, format, text).unwrap()).unwrap();
        }
        r
    }

    #[test]
    fn the_three_sets_load_and_route() {
        let r = loaded();
        assert_eq!(r.departments.len(), 3);
        assert_eq!(r.category("event:0407").unwrap().name, "集体性事件");
        let item = r
            .ownership
            .route(&"event:0407".parse().unwrap(), Some("330106001002"))
            .unwrap();
        assert_eq!(item.time_limit.to_string(), "4 working_hours");
    }

    #[test]
    fn an_ownership_list_naming_unknown_departments_or_classes_is_refused_by_line() {
        let bad = "category,department,supervisor,time_limit\n\
            event:0407,police,,2 urgent_hours\n\
            event:0408,police,,2 urgent_hours\n\
            event:,fire,,1 calendar_days\n\
            component:01,housing,mayor,2 working_days\n";
        let errors = loaded()
            .with(Set::parse(Kind::Ownership, Format::Csv, bad).unwrap())
            .unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "line 3: category \"event:0408\" is not in the category catalogue",
                "line 4: department \"fire\" is not in the department list",
                "line 5: supervisor \"mayor\" is not in the department list",
            ]
        );
    }

    #[test]
    fn a_department_list_that_drops_a_routed_department_is_refused() {
        let fewer = "id,name,level\ncentre,县指挥中心,county\npolice,县公安局,county\n";
        let errors = loaded()
            .with(Set::parse(Kind::Departments, Format::Csv, fewer).unwrap())
            .unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].message.contains("\"housing\""), "{errors:?}");
        assert_eq!(errors[0].line, None);
    }

    #[test]
    fn without_department_or_category_lists_the_ownership_list_is_not_cross_checked() {
        let r = Reference::default()
            .with(Set::parse(Kind::Ownership, Format::Csv, OWNERSHIP).unwrap())
            .unwrap();
        assert_eq!(r.ownership.items.len(), 3);
    }

    #[test]
    fn bad_rows_of_every_kind_carry_their_lines() {
        let errors = Set::parse(
            Kind::Ownership,
            Format::Csv,
            "category,department,time_limit\nevent:0407,police,2 fortnights\nroad:01,police,1 working_days\n",
        )
        .unwrap_err();
        let lines: Vec<_> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [Some(2), Some(3)], "{errors:?}");
        assert!(errors[0].message.contains("fortnights"), "{errors:?}");
    }

    #[test]
    fn a_newer_revision_is_never_replaced_by_an_older_one() {
        let shared = Shared::new(Reference {
            revision: 5,
            ..Reference::default()
        });
        shared.install(Reference {
            revision: 4,
            ..loaded()
        });
        assert_eq!(shared.current().revision, 5);
        shared.install(Reference {
            revision: 6,
            ..loaded()
        });
        assert_eq!(shared.current().departments.len(), 3);
    }
}
