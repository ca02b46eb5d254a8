//! Output formats: every command prints JSON, YAML or a table of the same data.

use std::io::{IsTerminal, Write};

use serde::Serialize;
use serde_json::Value;

use crate::error::{CliError, Context};
use crate::exit::Class;

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON document (pretty-printed on a terminal, compact otherwise).
    Json,
    /// YAML.
    Yaml,
    /// A human-readable table.
    Table,
}

/// Prints `value` to standard output in `format`.
pub fn print<T: Serialize>(format: Format, value: &T) -> Result<(), CliError> {
    let pretty = std::io::stdout().is_terminal();
    // JSON and YAML keep the fields in the order the command declares them.
    let text = match format {
        Format::Json => {
            let mut t = if pretty {
                serde_json::to_string_pretty(value)
            } else {
                serde_json::to_string(value)
            }
            .or_fail(Class::Internal, "encoding JSON")?;
            t.push('\n');
            t
        }
        Format::Yaml => serde_yaml::to_string(value).or_fail(Class::Internal, "encoding YAML")?,
        Format::Table => {
            let value = serde_json::to_value(value).or_fail(Class::Internal, "encoding output")?;
            render(format, &value, pretty)?
        }
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .or_fail(Class::Internal, "writing output")
}

/// Renders `value` as text in `format`; `pretty` picks indented JSON.
pub fn render(format: Format, value: &Value, pretty: bool) -> Result<String, CliError> {
    let mut text = match format {
        Format::Json if pretty => serde_json::to_string_pretty(value),
        Format::Json => serde_json::to_string(value),
        Format::Yaml => {
            return serde_yaml::to_string(value).or_fail(Class::Internal, "encoding YAML")
        }
        Format::Table => return Ok(table(value)),
    }
    .or_fail(Class::Internal, "encoding JSON")?;
    text.push('\n');
    Ok(text)
}

/// A list of objects becomes columns; an object becomes key/value rows; anything else a line.
fn table(value: &Value) -> String {
    match value {
        Value::Array(rows) if rows.iter().all(Value::is_object) && !rows.is_empty() => {
            let mut columns: Vec<&str> = Vec::new();
            for row in rows {
                for key in row.as_object().into_iter().flat_map(|o| o.keys()) {
                    if !columns.contains(&key.as_str()) {
                        columns.push(key);
                    }
                }
            }
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|row| columns.iter().map(|c| cell(row.get(*c))).collect())
                .collect();
            let header: Vec<String> = columns.iter().map(|c| c.to_uppercase()).collect();
            grid(&header, &cells)
        }
        Value::Object(map) => {
            let cells: Vec<Vec<String>> = map
                .iter()
                .map(|(k, v)| vec![k.clone(), cell(Some(v))])
                .collect();
            grid(&["FIELD".to_string(), "VALUE".to_string()], &cells)
        }
        Value::Array(rows) if rows.is_empty() => "(none)\n".to_string(),
        other => format!("{}\n", cell(Some(other))),
    }
}

fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "-".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) if items.iter().all(|i| !i.is_object() && !i.is_array()) => items
            .iter()
            .map(|i| cell(Some(i)))
            .collect::<Vec<_>>()
            .join(","),
        Some(other) => other.to_string(),
    }
}

fn grid(header: &[String], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = *w));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header);
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn list_of_objects_renders_as_aligned_columns() {
        let v = json!([{"id": "A1", "status": "active"}, {"id": "B22", "status": "revoked", "reason": "lost"}]);
        assert_eq!(
            table(&v),
            "ID   STATUS   REASON\nA1   active   -\nB22  revoked  lost\n"
        );
    }

    #[test]
    fn object_renders_as_field_rows_and_json_is_compact_off_terminal() {
        let v = json!({"fields": ["name", "sex"], "uses": 1});
        assert_eq!(table(&v), "FIELD   VALUE\nfields  name,sex\nuses    1\n");
        assert_eq!(
            render(Format::Json, &v, false).unwrap(),
            "{\"fields\":[\"name\",\"sex\"],\"uses\":1}\n"
        );
        assert!(render(Format::Yaml, &v, false).unwrap().contains("uses: 1"));
    }
}
