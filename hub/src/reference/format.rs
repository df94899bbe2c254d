//! Reading rows from a CSV or TOML document, each with the line it starts on, so that every
//! complaint can say where to look.

use serde::de::DeserializeOwned;

use super::RowError;

/// How a reference document is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A header line naming the columns, then one row per line (spreadsheets export this).
    Csv,
    /// An array of tables, `[[item]]`, `[[department]]` or `[[category]]`.
    Toml,
    /// A GeoJSON FeatureCollection: the area map.
    GeoJson,
}

impl Format {
    /// From a file name's extension: `.csv`, `.toml`, `.geojson` or `.json`.
    pub fn from_path(path: &std::path::Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            "toml" => Some(Format::Toml),
            "geojson" | "json" => Some(Format::GeoJson),
            _ => None,
        }
    }

    /// The media type a request carries it as.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv",
            Format::Toml => "application/toml",
            Format::GeoJson => "application/geo+json",
        }
    }

    /// The formats of row documents (lists, registries).
    pub const ROWS: &[Format] = &[Format::Csv, Format::Toml];

    /// From a request's `Content-Type`: `text/csv`, `application/toml` or
    /// `application/geo+json` (or `application/json`).
    pub fn from_media_type(media_type: &str) -> Option<Self> {
        match media_type
            .split(';')
            .next()?
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "text/csv" => Some(Format::Csv),
            "application/toml" | "text/toml" => Some(Format::Toml),
            "application/geo+json" | "application/json" => Some(Format::GeoJson),
            _ => None,
        }
    }
}

/// The text of an uploaded document: UTF-8, without the byte-order mark spreadsheets write.
pub fn text(bytes: &[u8]) -> Result<&str, RowError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        let line = 1 + bytes[..e.valid_up_to()].iter().filter(|b| **b == b'\n').count();
        RowError::at(
            line,
            "the document is not UTF-8; save it as \"CSV UTF-8\" (a spreadsheet's default CSV may be GBK)",
        )
    })
}

/// The rows of `text` that read, each with its line number, and an error for each that did
/// not (all of them, not just the first). A document that cannot be read at all is one
/// error. `table` names the TOML array (`item`); CSV columns are the fields' names.
pub fn rows<T: DeserializeOwned>(
    text: &str,
    format: Format,
    table: &str,
) -> Result<Rows<T>, Vec<RowError>> {
    match format {
        Format::Csv => csv_rows(text),
        Format::Toml => toml_rows(text, table),
        Format::GeoJson => Err(vec![RowError::at(0, "rows are CSV or TOML, not GeoJSON")]),
    }
}

/// `rows` as CSV with a header line: what [`rows`] reads back.
pub fn to_csv<T: serde::Serialize>(rows: &[T]) -> Result<String, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer.serialize(row)?;
    }
    let bytes = writer.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8(bytes).expect("CSV of UTF-8 strings"))
}

/// Rows that read, with their lines, and errors for those that did not.
pub type Rows<T> = (Vec<(usize, T)>, Vec<RowError>);

fn csv_rows<T: DeserializeOwned>(text: &str) -> Result<Rows<T>, Vec<RowError>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| vec![RowError::at(1, format!("the header line: {e}"))])?
        .clone();
    if headers.iter().all(str::is_empty) {
        return Err(vec![RowError::at(
            1,
            "the first line must name the columns",
        )]);
    }
    // From the byte offset, past the blank lines a record's position includes (the
    // reader's own line count skips them).
    let line_of = |byte: u64| {
        let bytes = text.as_bytes();
        let mut at = (byte as usize).min(bytes.len());
        while at < bytes.len() && matches!(bytes[at], b'\r' | b'\n') {
            at += 1;
        }
        1 + bytes[..at].iter().filter(|b| **b == b'\n').count()
    };
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| line_of(p.byte()));
                errors.push(RowError::at(line, csv_message(&e)));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| line_of(p.byte()));
        if record.iter().all(str::is_empty) {
            continue;
        }
        match record.deserialize::<T>(Some(&headers)) {
            Ok(row) => rows.push((line, row)),
            Err(e) => errors.push(RowError::at(line, csv_message(&e))),
        }
    }
    Ok((rows, errors))
}

/// The csv crate's message without the position it also carries (the line is reported
/// beside it).
fn csv_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Deserialize { err, .. } => match err.field() {
            Some(_) => err.kind().to_string(),
            None => err.to_string(),
        },
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("{len} cells where the header names {expected_len} columns"),
        _ => e.to_string(),
    }
}

fn toml_rows<T: DeserializeOwned>(text: &str, table: &str) -> Result<Rows<T>, Vec<RowError>> {
    let line_of = |offset: usize| 1 + text[..offset.min(text.len())].matches('\n').count();
    let mut doc: std::collections::BTreeMap<String, Vec<toml::Spanned<toml::Table>>> =
        toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(0, |s| line_of(s.start));
            vec![RowError::at(line, e.message().to_owned())]
        })?;
    if let Some(other) = doc.keys().find(|k| *k != table) {
        return Err(vec![RowError::at(
            0,
            format!("unknown table [[{other}]]: this document holds [[{table}]] tables"),
        )]);
    }
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for spanned in doc.remove(table).unwrap_or_default() {
        let line = line_of(spanned.span().start);
        match toml::Value::Table(spanned.into_inner()).try_into::<T>() {
            Ok(row) => rows.push((line, row)),
            Err(e) => errors.push(RowError::at(line, e.message().to_owned())),
        }
    }
    Ok((rows, errors))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Row {
        id: String,
        #[serde(default)]
        note: Option<String>,
        #[serde(default)]
        rank: Option<i32>,
    }

    #[test]
    fn csv_rows_carry_their_lines_and_empty_cells_are_absent() {
        let (rows, _): Rows<Row> =
            rows("id,note,rank\na,,\n\nb, first ,3\n", Format::Csv, "row").unwrap();
        assert_eq!(rows[0].0, 2);
        assert_eq!(
            rows[0].1,
            Row {
                id: "a".into(),
                note: None,
                rank: None
            }
        );
        assert_eq!(rows[1].0, 4);
        assert_eq!(rows[1].1.note.as_deref(), Some("first"));
        assert_eq!(rows[1].1.rank, Some(3));
    }

    #[test]
    fn every_bad_csv_row_is_reported_with_its_line() {
        let (good, errors) = rows::<Row>(
            "id,rank\na,1\nb,high\nc,2\nd,x\ne,1,extra\n",
            Format::Csv,
            "row",
        )
        .unwrap();
        assert_eq!(good.len(), 2);
        let lines: Vec<usize> = errors.iter().map(|e| e.line.unwrap()).collect();
        assert_eq!(lines, [3, 5, 6], "{errors:?}");
        assert!(errors[0].message.contains("invalid digit"), "{errors:?}");
        assert!(errors[2].message.contains("3 cells"), "{errors:?}");
    }

    #[test]
    fn unknown_csv_columns_are_named() {
        let (_, errors) = rows::<Row>("id,colour\na,red\n", Format::Csv, "row").unwrap();
        assert!(errors[0].message.contains("colour"), "{errors:?}");
    }

    #[test]
    fn toml_rows_carry_the_line_of_their_table() {
        let text = "# a list\n\n[[row]]\nid = \"a\"\n\n[[row]]\nid = \"b\"\nrank = 2\n";
        let (rows, _): Rows<Row> = rows(text, Format::Toml, "row").unwrap();
        let lines: Vec<usize> = rows.iter().map(|r| r.0).collect();
        // The span of a table in an array starts at its first key or at its header; either
        // points the reader at the right row.
        assert!(matches!(lines[0], 3 | 4), "{lines:?}");
        assert!(matches!(lines[1], 6 | 7), "{lines:?}");
        assert_eq!(rows[1].1.rank, Some(2));
    }

    #[test]
    fn every_bad_toml_row_is_reported() {
        let text = "[[row]]\nid = 1\n\n[[row]]\nid = \"ok\"\n\n[[row]]\nid = \"c\"\nshade = 2\n";
        let (good, errors) = rows::<Row>(text, Format::Toml, "row").unwrap();
        assert_eq!(good.len(), 1);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(matches!(errors[0].line, Some(1 | 2)), "{errors:?}");
        assert!(matches!(errors[1].line, Some(7 | 8)), "{errors:?}");
        assert!(errors[1].message.contains("shade"), "{errors:?}");
    }

    #[test]
    fn toml_syntax_errors_and_foreign_tables_are_refused() {
        let errors = rows::<Row>("[[row]]\nid = \"a\n", Format::Toml, "row").unwrap_err();
        assert_eq!(errors[0].line, Some(2), "{errors:?}");
        let errors = rows::<Row>("[[rows]]\nid = \"a\"\n", Format::Toml, "row").unwrap_err();
        assert!(errors[0].message.contains("[[rows]]"), "{errors:?}");
    }

    #[test]
    fn non_utf8_text_names_the_fix() {
        let gbk = b"id\n\xd6\xd0\xce\xc4\n";
        let e = text(gbk).unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("UTF-8"));
        assert_eq!(text(b"\xEF\xBB\xBFid\n").unwrap(), "id\n");
    }
}
