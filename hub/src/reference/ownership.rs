//! Checks on the ownership list's rows, alone and against the departments and the category
//! catalogue.

use crate::engine::OwnershipItem;

use super::{Reference, RowError, is_area_prefix};

/// Checks each item on its own.
pub fn check(rows: &[(usize, OwnershipItem)]) -> Vec<RowError> {
    let mut errors = Vec::new();
    for (line, item) in rows {
        let mut fail = |message: String| errors.push(RowError::at(*line, message));
        let well_formed = item.category.split_once(':').is_some_and(|(ns, code)| {
            matches!(ns, "component" | "event")
                && code.len() <= 4
                && code.bytes().all(|b| b.is_ascii_digit())
        });
        if !well_formed {
            fail(format!(
                "category {:?} must be `component:` or `event:` followed by up to 4 digits",
                item.category
            ));
        }
        if let Some(area) = &item.area
            && !is_area_prefix(area)
        {
            fail(format!(
                "area {area:?} must be a prefix of a 12-digit division code (6, 9 or 12 digits)"
            ));
        }
        if item.department.trim().is_empty() {
            fail("department must not be empty".into());
        }
    }
    errors
}

/// Checks the items against the other lists, where those lists are loaded: every
/// department and supervisor must be a listed department, and every category a namespace
/// (`event:`) or a class in the catalogue.
pub fn check_names(rows: &[(usize, &OwnershipItem)], reference: &Reference) -> Vec<RowError> {
    let mut errors = Vec::new();
    let known_department = |id: &str| {
        reference.departments.is_empty() || reference.departments.iter().any(|d| d.id == id)
    };
    let known_category = |code: &str| {
        reference.categories.is_empty()
            || code.ends_with(':')
            || reference.categories.iter().any(|c| c.code == code)
    };
    for (line, item) in rows {
        let mut fail = |message: String| errors.push(RowError::at(*line, message));
        for (role, id) in [
            ("department", Some(&item.department)),
            ("supervisor", item.supervisor.as_ref()),
        ] {
            if let Some(id) = id
                && !known_department(id)
            {
                fail(format!("{role} {id:?} is not in the department list"));
            }
        }
        if !known_category(&item.category) {
            fail(format!(
                "category {:?} is not in the category catalogue",
                item.category
            ));
        }
    }
    errors
}
