//! The user roster as a document (CSV `name,role,department`, or TOML `[[user]]` tables):
//! who signs in to the dashboard with which role, and a department user's department.
//! Unlike the reference sets it adds and changes users, never removes them. Pure: parsing
//! and checking; `http::users` imports it.

use std::collections::BTreeSet;

use serde::Deserialize;

use super::{Reference, RowError, format};
use crate::store::Role;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    name: String,
    role: String,
    #[serde(default)]
    department: Option<String>,
}

/// One user as the roster names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEntry {
    pub name: String,
    pub role: Role,
    /// For department users: the department whose cases they see.
    pub department: Option<String>,
}

/// The users of `text`, every row checked (and the departments against `reference`'s
/// department list, once one is loaded); the errors of all rows come back together, by
/// line.
pub fn parse(
    text: &str,
    format: format::Format,
    reference: &Reference,
) -> Result<Vec<UserEntry>, Vec<RowError>> {
    let (rows, mut errors) = format::rows::<Row>(text, format, "user")?;
    let mut seen = BTreeSet::new();
    let mut users = Vec::with_capacity(rows.len());
    for (line, row) in rows {
        match entry(row, reference) {
            Ok(user) if !seen.insert(user.name.clone()) => errors.push(RowError::at(
                line,
                format!("user {:?} is listed twice", user.name),
            )),
            Ok(user) => users.push(user),
            Err(message) => errors.push(RowError::at(line, message)),
        }
    }
    if errors.is_empty() {
        Ok(users)
    } else {
        errors.sort_by_key(|e| e.line);
        Err(errors)
    }
}

fn entry(row: Row, reference: &Reference) -> Result<UserEntry, String> {
    let name = row.name.trim().to_owned();
    protocol::check_identifier(&name).map_err(|m| format!("name {m}"))?;
    let role = Role::parse(row.role.trim())
        .ok_or("role must be admin, operator, department or technician")?;
    let department = row
        .department
        .map(|d| d.trim().to_owned())
        .filter(|d| !d.is_empty());
    match (role, &department) {
        (Role::Department, None) => {
            return Err("a department user needs its department".into());
        }
        (Role::Department, Some(d))
            if !reference.departments.is_empty() && reference.department(d).is_none() =>
        {
            return Err(format!("department {d:?} is not in the department list"));
        }
        (Role::Department, Some(_)) | (_, None) => {}
        (_, Some(_)) => {
            return Err(format!(
                "only department users have a department, not a {} user",
                role.as_str()
            ));
        }
    }
    Ok(UserEntry {
        name,
        role,
        department,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::{Format, Kind, Set};

    fn with_departments() -> Reference {
        let list = "id,name,level\ncentre,县指挥中心,county\npolice,县公安局,county\n";
        Reference::default()
            .with(Set::parse(Kind::Departments, Format::Csv, list).unwrap())
            .unwrap()
    }

    #[test]
    fn a_roster_reads_from_csv_and_toml() {
        let csv = "name,role,department\nwang.li,operator,\nzhao-1,department,police\n";
        let users = parse(csv, Format::Csv, &with_departments()).unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(users[1].department.as_deref(), Some("police"));
        let toml = "[[user]]\nname = \"tech-1\"\nrole = \"technician\"\n";
        let users = parse(toml, Format::Toml, &Reference::default()).unwrap();
        assert_eq!(users[0].role, Role::Technician);
    }

    #[test]
    fn the_example_roster_fits_the_example_departments() {
        let departments = include_str!("../../../deploy/departments.example.csv");
        let reference = Reference::default()
            .with(Set::parse(Kind::Departments, Format::Csv, departments).unwrap())
            .unwrap();
        let roster = include_str!("../../../deploy/users.example.csv");
        assert_eq!(parse(roster, Format::Csv, &reference).unwrap().len(), 3);
    }

    #[test]
    fn every_bad_row_is_named_by_its_line() {
        let csv = "name,role,department\n\
            ok-1,operator,\n\
            bad name,operator,\n\
            x-2,mayor,\n\
            x-3,department,\n\
            x-4,department,fire\n\
            x-5,operator,police\n\
            ok-1,admin,\n";
        let errors = parse(csv, Format::Csv, &with_departments()).unwrap_err();
        let lines: Vec<_> = errors.iter().map(|e| e.line.unwrap()).collect();
        assert_eq!(lines, [3, 4, 5, 6, 7, 8], "{errors:?}");
        assert!(errors[3].message.contains("\"fire\""), "{errors:?}");
        assert!(errors[5].message.contains("twice"), "{errors:?}");
    }
}
