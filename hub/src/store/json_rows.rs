//! Many rows in one statement: the rows travel as one JSON text parameter, an array of
//! arrays with a column at each position, and the database unpacks them (`json_each` on
//! SQLite, `jsonb_array_elements` on PostgreSQL, parsed once). One bind instead of one per value keeps
//! a batch's statements few and small, and their plans cached whatever the batch's size.

use serde::Serialize;

use super::Backend;

/// A column of rows passed as JSON: its name and its PostgreSQL type (`text`, `bigint`,
/// `double precision`); SQLite takes each value as JSON gives it.
pub(super) type Column = (&'static str, &'static str);

/// `SELECT <columns> FROM <the rows of parameter $param>`, the columns named as given.
pub(super) fn select(backend: Backend, param: usize, columns: &[Column]) -> String {
    let fields = columns
        .iter()
        .enumerate()
        .map(|(i, (name, ty))| match backend {
            Backend::Postgres => format!("(r ->> {i})::{ty} AS {name}"),
            Backend::Sqlite => format!("value ->> {i} AS {name}"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    match backend {
        Backend::Postgres => {
            format!("SELECT {fields} FROM jsonb_array_elements(${param}::jsonb) AS t(r)")
        }
        Backend::Sqlite => format!("SELECT {fields} FROM json_each(${param})"),
    }
}

/// The names of `columns`, comma-separated, for an `INSERT INTO t (…)`.
pub(super) fn names(columns: &[Column]) -> String {
    columns
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The parameter that carries `rows`, each a JSON array (or a tuple, which serialises as
/// one) in the columns' order. Serialised straight into the text: no JSON tree is built.
pub(super) fn param<R: Serialize>(rows: &[R]) -> String {
    serde_json::to_string(rows).expect("rows of plain values always serialise")
}
