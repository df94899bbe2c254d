//! The department list: who cases can be routed to, at which level, and how to reach them.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::RowError;

/// One department (部门 / 责任单位).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Department {
    /// The id cases and users refer to: `housing-bureau`.
    pub id: String,
    /// 名称, as people say it: `县住建局 county housing bureau`.
    pub name: String,
    pub level: Level,
    /// The department it reports to, where overdue cases escalate.
    #[serde(default)]
    pub parent: Option<String>,
    /// The division code (prefix) it serves: 6 digits county, 9 township, 12 village.
    #[serde(default)]
    pub area: Option<String>,
    /// Contact person and phone for the duty desk.
    #[serde(default)]
    pub contact: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
}

/// The administrative level a department works at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// 县级 (the county centre and county bureaus).
    County,
    /// 乡镇 (街道).
    Township,
    /// 村 / 社区.
    Village,
}

/// The longest department id.
const MAX_ID: usize = 64;

/// Checks each department and the list as a whole: unique ids, known parents, no cycles.
pub fn check(rows: &[(usize, Department)]) -> Vec<RowError> {
    let mut errors = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (line, d) in rows {
        let mut fail = |message: String| errors.push(RowError::at(*line, message));
        if d.id.is_empty()
            || d.id.chars().count() > MAX_ID
            || d.id.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            fail(format!(
                "id {:?} must be 1 to {MAX_ID} characters without spaces",
                d.id
            ));
        }
        if d.name.trim().is_empty() {
            fail(format!("department {:?} has no name", d.id));
        }
        if let Some(area) = &d.area
            && !super::is_area_prefix(area)
        {
            fail(format!(
                "area {area:?} must be a prefix of a 12-digit division code (6, 9 or 12 digits)"
            ));
        }
        if let Some(first) = seen.insert(&d.id, *line) {
            fail(format!(
                "department {:?} is listed twice (also on line {first})",
                d.id
            ));
        }
    }
    for (line, d) in rows {
        if let Some(parent) = &d.parent {
            if !seen.contains_key(parent.as_str()) {
                errors.push(RowError::at(
                    *line,
                    format!("parent {parent:?} is not in the list"),
                ));
            } else if reaches_itself(rows, &d.id) {
                errors.push(RowError::at(
                    *line,
                    format!("department {:?} is its own ancestor", d.id),
                ));
            }
        }
    }
    errors
}

fn reaches_itself(rows: &[(usize, Department)], id: &str) -> bool {
    let parent_of: HashMap<&str, &str> = rows
        .iter()
        .filter_map(|(_, d)| Some((d.id.as_str(), d.parent.as_deref()?)))
        .collect();
    let mut at = id;
    for _ in 0..=rows.len() {
        match parent_of.get(at) {
            Some(&p) if p == id => return true,
            Some(&p) => at = p,
            None => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dept(id: &str, parent: Option<&str>) -> Department {
        Department {
            id: id.into(),
            name: format!("{id} name"),
            level: Level::County,
            parent: parent.map(Into::into),
            area: None,
            contact: None,
            phone: None,
        }
    }

    fn lines(errors: &[RowError]) -> Vec<usize> {
        errors.iter().filter_map(|e| e.line).collect()
    }

    #[test]
    fn a_good_list_passes() {
        let rows = vec![
            (2, dept("centre", None)),
            (3, dept("police", Some("centre"))),
        ];
        assert!(check(&rows).is_empty());
    }

    #[test]
    fn duplicates_unknown_parents_cycles_and_bad_fields_are_each_reported() {
        let mut nameless = dept("nameless", None);
        nameless.name = " ".into();
        let mut bad_area = dept("roads", None);
        bad_area.area = Some("33010".into());
        let rows = vec![
            (2, dept("police", None)),
            (3, dept("police", None)),
            (4, dept("fire", Some("nobody"))),
            (5, dept("a", Some("b"))),
            (6, dept("b", Some("a"))),
            (7, nameless),
            (8, dept("two words", None)),
            (9, bad_area),
        ];
        let errors = check(&rows);
        assert_eq!(lines(&errors), [3, 7, 8, 9, 4, 5, 6], "{errors:?}");
        assert!(errors[0].message.contains("line 2"), "{errors:?}");
        assert!(errors[4].message.contains("nobody"), "{errors:?}");
        assert!(errors[5].message.contains("ancestor"), "{errors:?}");
    }
}
