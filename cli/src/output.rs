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
        // Through YAML's ordered mapping, so columns keep the declared field order too.
        Format::Table => table(&Node::from_yaml(
            serde_yaml::to_value(value).or_fail(Class::Internal, "encoding output")?,
        )),
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
        Format::Table => return Ok(table(&Node::from_json(value))),
    }
    .or_fail(Class::Internal, "encoding JSON")?;
    text.push('\n');
    Ok(text)
}

/// A value as the table renderer sees it: maps keep their order.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Null,
    /// A string, number or boolean, as text; `quoted` when it was a string.
    Scalar {
        text: String,
        quoted: bool,
    },
    List(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl Node {
    fn from_json(v: &Value) -> Node {
        match v {
            Value::Null => Node::Null,
            Value::String(s) => Node::Scalar {
                text: s.clone(),
                quoted: true,
            },
            Value::Array(a) => Node::List(a.iter().map(Node::from_json).collect()),
            Value::Object(o) => Node::Map(
                o.iter()
                    .map(|(k, v)| (k.clone(), Node::from_json(v)))
                    .collect(),
            ),
            other => Node::Scalar {
                text: other.to_string(),
                quoted: false,
            },
        }
    }

    fn from_yaml(v: serde_yaml::Value) -> Node {
        use serde_yaml::Value as Y;
        match v {
            Y::Null => Node::Null,
            Y::String(s) => Node::Scalar {
                text: s,
                quoted: true,
            },
            Y::Bool(b) => Node::Scalar {
                text: b.to_string(),
                quoted: false,
            },
            Y::Number(n) => Node::Scalar {
                text: n.to_string(),
                quoted: false,
            },
            Y::Sequence(items) => Node::List(items.into_iter().map(Node::from_yaml).collect()),
            Y::Mapping(m) => Node::Map(
                m.into_iter()
                    .map(|(k, v)| {
                        let key = match k {
                            Y::String(s) => s,
                            other => serde_yaml::to_string(&other)
                                .unwrap_or_default()
                                .trim()
                                .to_string(),
                        };
                        (key, Node::from_yaml(v))
                    })
                    .collect(),
            ),
            Y::Tagged(t) => Node::from_yaml(t.value),
        }
    }

    fn is_map(&self) -> bool {
        matches!(self, Node::Map(_))
    }

    fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Compact JSON text of a nested value.
    fn json(&self) -> String {
        match self {
            Node::Null => "null".into(),
            Node::Scalar { text, quoted: true } => Value::String(text.clone()).to_string(),
            Node::Scalar { text, .. } => text.clone(),
            Node::List(items) => format!(
                "[{}]",
                items.iter().map(Node::json).collect::<Vec<_>>().join(",")
            ),
            Node::Map(m) => format!(
                "{{{}}}",
                m.iter()
                    .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), v.json()))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        }
    }
}

/// A list of objects becomes columns; an object becomes key/value rows; anything else a line.
fn table(value: &Node) -> String {
    match value {
        Node::List(rows) if rows.iter().all(Node::is_map) && !rows.is_empty() => {
            let mut columns: Vec<&str> = Vec::new();
            for row in rows {
                if let Node::Map(m) = row {
                    for (key, _) in m {
                        if !columns.contains(&key.as_str()) {
                            columns.push(key);
                        }
                    }
                }
            }
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|row| columns.iter().map(|c| cell(row.get(c))).collect())
                .collect();
            let header: Vec<String> = columns.iter().map(|c| c.to_uppercase()).collect();
            grid(&header, &cells)
        }
        Node::Map(map) => {
            let cells: Vec<Vec<String>> = map
                .iter()
                .map(|(k, v)| vec![k.clone(), cell(Some(v))])
                .collect();
            grid(&["FIELD".to_string(), "VALUE".to_string()], &cells)
        }
        Node::List(rows) if rows.is_empty() => "(none)\n".to_string(),
        other => format!("{}\n", cell(Some(other))),
    }
}

fn cell(value: Option<&Node>) -> String {
    match value {
        None | Some(Node::Null) => "-".to_string(),
        Some(Node::Scalar { text, .. }) => text.clone(),
        Some(Node::List(items))
            if items
                .iter()
                .all(|i| matches!(i, Node::Scalar { .. } | Node::Null)) =>
        {
            items
                .iter()
                .map(|i| cell(Some(i)))
                .collect::<Vec<_>>()
                .join(",")
        }
        Some(other) => other.json(),
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
            table(&Node::from_json(&v)),
            "ID   STATUS   REASON\nA1   active   -\nB22  revoked  lost\n"
        );
    }

    #[test]
    fn object_renders_as_field_rows_and_json_is_compact_off_terminal() {
        let v = json!({"fields": ["name", "sex"], "uses": 1});
        assert_eq!(
            table(&Node::from_json(&v)),
            "FIELD   VALUE\nfields  name,sex\nuses    1\n"
        );
        assert_eq!(
            render(Format::Json, &v, false).unwrap(),
            "{\"fields\":[\"name\",\"sex\"],\"uses\":1}\n"
        );
        assert!(render(Format::Yaml, &v, false).unwrap().contains("uses: 1"));
    }
}

#[cfg(test)]
mod order_tests {
    use super::*;

    #[derive(Serialize)]
    struct Row {
        zeta: u32,
        alpha: &'static str,
        nested: std::collections::BTreeMap<&'static str, u32>,
    }

    #[test]
    fn tables_keep_the_declared_field_order_and_show_nested_values_as_json() {
        let rows = vec![Row {
            zeta: 1,
            alpha: "x",
            nested: [("k", 2)].into(),
        }];
        let node = Node::from_yaml(serde_yaml::to_value(&rows).unwrap());
        assert_eq!(
            table(&node),
            "ZETA  ALPHA  NESTED\n1     x      {\"k\":2}\n"
        );
    }
}
