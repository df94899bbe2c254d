//! The category catalogue (GB/T 30428.2 管理部件和事件): major and minor classes of the
//! component and event namespaces, with the names people read and the detection classes
//! that raise them. Cities extend it; it is data, never an enum.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::RowError;

/// One class of the catalogue.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    /// `component:01` (a major class, 大类) or `component:0114` (a minor class, 小类).
    pub code: String,
    /// 名称: `无主井盖`.
    pub name: String,
    /// The English name, for mixed-language screens.
    #[serde(default)]
    pub name_en: Option<String>,
    /// The detection classes the gateways' models map onto this class, separated by spaces:
    /// `manhole_broken manhole_missing`. For the reader; the mapping itself is in the
    /// models' manifests.
    #[serde(default)]
    pub classes: Option<String>,
}

impl Category {
    /// The major class a minor class belongs to: `component:0114` → `component:01`.
    pub fn major(&self) -> Option<&str> {
        let (ns, code) = self.code.split_once(':')?;
        (code.len() == 4).then(|| &self.code[..ns.len() + 3])
    }
}

/// Whether `code` is `component:` or `event:` followed by 2 or 4 digits.
fn well_formed(code: &str) -> bool {
    code.split_once(':').is_some_and(|(ns, digits)| {
        matches!(ns, "component" | "event")
            && matches!(digits.len(), 2 | 4)
            && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Checks each class and the catalogue as a whole: unique codes, every minor class under a
/// listed major class.
pub fn check(rows: &[(usize, Category)]) -> Vec<RowError> {
    let mut errors = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (line, c) in rows {
        let mut fail = |message: String| errors.push(RowError::at(*line, message));
        if !well_formed(&c.code) {
            fail(format!(
                "code {:?} must be `component:` or `event:` and 2 digits (major class) or 4 (minor class)",
                c.code
            ));
        }
        if c.name.trim().is_empty() {
            fail(format!("class {:?} has no name", c.code));
        }
        if let Some(classes) = &c.classes
            && let Some(bad) = classes.split_whitespace().find(|w| {
                !w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            })
        {
            fail(format!(
                "detection class {bad:?} must be lower-case letters, digits and `_`"
            ));
        }
        if let Some(first) = seen.insert(&c.code, *line) {
            fail(format!(
                "code {:?} is listed twice (also on line {first})",
                c.code
            ));
        }
    }
    for (line, c) in rows {
        if let Some(major) = c.major()
            && well_formed(&c.code)
            && !seen.contains_key(major)
        {
            errors.push(RowError::at(
                *line,
                format!(
                    "minor class {:?} has no major class {major:?} in the list",
                    c.code
                ),
            ));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(code: &str) -> Category {
        Category {
            code: code.into(),
            name: "名称".into(),
            name_en: None,
            classes: None,
        }
    }

    #[test]
    fn a_good_catalogue_passes() {
        let mut cover = class("component:0114");
        cover.classes = Some("manhole_broken manhole_missing".into());
        let rows = vec![
            (2, class("component:01")),
            (3, cover),
            (4, class("event:04")),
        ];
        assert!(check(&rows).is_empty());
        assert_eq!(rows[1].1.major(), Some("component:01"));
        assert_eq!(rows[0].1.major(), None);
    }

    #[test]
    fn malformed_duplicate_and_orphaned_codes_are_each_reported() {
        let mut shouting = class("event:05");
        shouting.classes = Some("Crowd".into());
        let rows = vec![
            (2, class("component:01")),
            (3, class("component:01")),
            (4, class("component:011")),
            (5, class("incident:0101")),
            (6, class("event:0407")),
            (7, shouting),
        ];
        let errors = check(&rows);
        let lines: Vec<usize> = errors.iter().filter_map(|e| e.line).collect();
        assert_eq!(lines, [3, 4, 5, 7, 6], "{errors:?}");
        assert!(errors[4].message.contains("event:04"), "{errors:?}");
        assert!(errors[3].message.contains("Crowd"), "{errors:?}");
    }
}
