//! `elicense licence issue --batch FILE|-`: bulk issuance from CSV or JSON Lines.
//!
//! * One result per input line (JSON Lines with `-o json`), printed as each licence commits; a
//!   progress bar on standard error when it is a terminal.
//! * A bad line is reported with its line number and the rest are still issued.
//! * Resumable: each line first reads the ledger, so a re-run skips licences already issued. The
//!   holder's credential is written as `<id>.json.pending` *before* the issuing transaction and
//!   renamed to `<id>.json` once it commits; a re-run reuses a pending file's salts, so a
//!   transaction that committed after an interruption still matches its credential, which the
//!   re-run then completes.
//!
//! CSV: a header row; the columns `type` (or `licence_type`), `serial` or `licence_id`,
//! `holder_key` (PEM, or base64 of the DER public key), optional `not_before`/`not_after`; every
//! other column is a field value (empty cells are left out). JSON Lines: one object per line with
//! the same keys and the values under `fields`.

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use elicense_model::{IssueRequest, LicenceId, LicencePrivate, LicenceType};
use elicense_sdk::{Credential, Failure, LicenceClient, LicenceError};
use serde::Serialize;
use serde_json::Value;

use crate::commands::licence::{issuer_code, validity, IssueArgs};
use crate::connect::Client;
use crate::error::CliError;
use crate::exit::Class;
use crate::input;
use crate::output::Format;
use crate::Ctx;

/// Input formats of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BatchFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

/// Batch options of `licence issue`.
#[derive(Debug, Clone, clap::Args)]
pub struct BatchArgs {
    /// Issue every licence of a CSV or JSON Lines file (- for standard input).
    #[arg(long, value_name = "FILE", requires = "credentials_dir")]
    pub batch: Option<PathBuf>,
    /// Input format (default: from the file extension, else sniffed from the first line).
    #[arg(long, value_enum, requires = "batch")]
    pub batch_format: Option<BatchFormat>,
    /// Directory for the holders' credentials, one `<licence id>.json` each.
    #[arg(long, value_name = "DIR", requires = "batch")]
    pub credentials_dir: Option<PathBuf>,
    /// Transactions in flight at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
}

/// One input line, parsed.
#[derive(Debug, Clone)]
struct Row {
    line: u64,
    licence_type: Option<String>,
    serial: Option<String>,
    licence_id: Option<String>,
    holder_key: Option<String>,
    not_before: Option<String>,
    not_after: Option<String>,
    fields: BTreeMap<String, String>,
}

/// What happened to one line.
#[derive(Debug, Serialize)]
struct LineResult {
    line: u64,
    licence_id: Option<String>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tx_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    block: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    credential: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Value>,
    #[serde(skip)]
    class: Option<Class>,
}

impl LineResult {
    fn failed(line: u64, licence_id: Option<String>, e: &CliError) -> Self {
        LineResult {
            line,
            licence_id,
            status: "failed",
            tx_id: None,
            block: None,
            credential: None,
            note: None,
            error: Some(e.to_json()["error"].clone()),
            class: Some(e.class),
        }
    }
}

fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The 1-based line number of byte offset `byte` in `text`.
fn line_at(text: &str, byte: u64) -> u64 {
    let bytes = text.as_bytes();
    let mut end = (byte as usize).min(bytes.len());
    // A record's position may point at blank lines the reader skipped before it.
    while end < bytes.len() && matches!(bytes[end], b'\n' | b'\r') {
        end += 1;
    }
    bytes[..end].iter().filter(|b| **b == b'\n').count() as u64 + 1
}

/// A parsed line, or its line number and why it could not be read.
type Parsed = Result<Row, (u64, CliError)>;

fn parse_csv(text: &str) -> Result<Vec<Parsed>, CliError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| CliError::usage(format!("CSV header: {e}")))?
        .clone();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| line_at(text, p.byte()));
                rows.push(Err((line, CliError::usage(format!("CSV: {e}")))));
                continue;
            }
        };
        // The file's own line number (the reader's count skips blank lines).
        let line = record.position().map_or(0, |p| line_at(text, p.byte()));
        let mut row = Row {
            line,
            licence_type: None,
            serial: None,
            licence_id: None,
            holder_key: None,
            not_before: None,
            not_after: None,
            fields: BTreeMap::new(),
        };
        for (name, value) in headers.iter().zip(record.iter()) {
            let v = (!value.is_empty()).then(|| value.to_string());
            match name {
                "type" | "licence_type" => row.licence_type = v,
                "serial" => row.serial = v,
                "licence_id" => row.licence_id = v,
                "holder_key" => row.holder_key = v,
                "not_before" => row.not_before = v,
                "not_after" => row.not_after = v,
                field => {
                    if let Some(v) = v {
                        row.fields.insert(field.to_string(), v);
                    }
                }
            }
        }
        rows.push(Ok(row));
    }
    Ok(rows)
}

fn parse_jsonl(text: &str) -> Vec<Parsed> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let obj: serde_json::Map<String, Value> = match serde_json::from_str(line) {
            Ok(Value::Object(o)) => o,
            Ok(_) => {
                rows.push(Err((n, CliError::usage("not a JSON object"))));
                continue;
            }
            Err(e) => {
                rows.push(Err((n, CliError::usage(format!("JSON: {e}")))));
                continue;
            }
        };
        let get = |k: &str| obj.get(k).and_then(value_text);
        let mut fields = BTreeMap::new();
        match obj.get("fields") {
            Some(Value::Object(f)) => {
                for (k, v) in f {
                    if let Some(v) = value_text(v) {
                        fields.insert(k.clone(), v);
                    }
                }
            }
            Some(_) => {
                rows.push(Err((
                    n,
                    CliError::usage("`fields` must be an object of values"),
                )));
                continue;
            }
            None => {}
        }
        rows.push(Ok(Row {
            line: n,
            licence_type: get("type").or_else(|| get("licence_type")),
            serial: get("serial"),
            licence_id: get("licence_id"),
            holder_key: get("holder_key"),
            not_before: get("not_before"),
            not_after: get("not_after"),
            fields,
        }));
    }
    rows
}

/// A line ready to issue.
struct Planned {
    line: u64,
    request: IssueRequest,
    values: BTreeMap<String, String>,
}

fn plan(
    row: Row,
    default_type: Option<&str>,
    catalogue: &BTreeMap<String, LicenceType>,
    msp_id: &str,
    defaults: &IssueArgs,
) -> Result<Planned, (Option<String>, CliError)> {
    let fail = |id: Option<String>, e: CliError| Err((id, e));
    let code = match row.licence_type.as_deref().or(default_type) {
        Some(c) => c.to_string(),
        None => {
            return fail(
                None,
                CliError::usage("no licence type (column `type`, or --type)"),
            )
        }
    };
    let Some(t) = catalogue.get(&code) else {
        return fail(
            None,
            CliError::new(
                Class::NotFound,
                format!("licence type {code} is not in the catalogue"),
            )
            .code("NOT_FOUND"),
        );
    };
    let licence_id = match (&row.licence_id, &row.serial) {
        (Some(id), _) => LicenceId::parse(id).map_err(|e| {
            CliError::usage(format!("licence_id {id:?}: {e}")).code("INVALID_ARGUMENT")
        }),
        (None, Some(serial)) => match issuer_code(t, msp_id) {
            Ok(issuer) => LicenceId::build(&t.id_tag, issuer, serial).map_err(|e| {
                CliError::usage(format!("serial {serial:?}: {e}")).code("INVALID_ARGUMENT")
            }),
            Err(e) => Err(e),
        },
        (None, None) => Err(CliError::usage("no `serial` or `licence_id`")),
    };
    let licence_id = match licence_id {
        Ok(id) => id,
        Err(e) => return fail(row.serial.clone(), e),
    };
    let shown = Some(licence_id.as_str().to_string());
    let holder_key = match row.holder_key.as_deref().map(input::holder_key_pem) {
        Some(Ok(k)) => k,
        Some(Err(e)) => {
            return fail(
                shown,
                CliError::usage(format!("holder_key: {e}")).code("INVALID_ARGUMENT"),
            )
        }
        None => return fail(shown, CliError::usage("no `holder_key`")),
    };
    let time = |v: &Option<String>| v.as_deref().map(input::parse_time).transpose();
    let (nb, na) = match (time(&row.not_before), time(&row.not_after)) {
        (Ok(nb), Ok(na)) => (nb.or(defaults.not_before), na.or(defaults.not_after)),
        (Err(e), _) | (_, Err(e)) => return fail(shown, CliError::usage(e)),
    };
    let (not_before, not_after) = match validity(nb, na, defaults.valid_years) {
        Ok(v) => v,
        Err(e) => return fail(shown, CliError::usage(e)),
    };
    if row.fields.is_empty() {
        return fail(shown, CliError::usage("no field values"));
    }
    Ok(Planned {
        line: row.line,
        request: IssueRequest {
            licence_id,
            licence_type: code,
            holder_key,
            not_before,
            not_after,
        },
        values: row.fields,
    })
}

/// Where a line's credential lives.
struct CredentialFiles {
    done: PathBuf,
    pending: PathBuf,
}

impl CredentialFiles {
    fn new(dir: &Path, id: &LicenceId) -> Self {
        CredentialFiles {
            done: dir.join(format!("{}.json", id.as_str())),
            pending: dir.join(format!("{}.json.pending", id.as_str())),
        }
    }

    fn read_pending(&self) -> Option<Credential> {
        let text = std::fs::read_to_string(&self.pending).ok()?;
        Credential::from_json(&text).ok()
    }

    fn write_pending(&self, c: &Credential) -> Result<(), CliError> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let tmp = self.pending.with_extension("pending.tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| {
                CliError::new(Class::Internal, format!("writing {}: {e}", tmp.display()))
            })?;
        f.write_all(c.to_json().as_bytes())
            .and_then(|_| f.sync_all())
            .and_then(|_| std::fs::rename(&tmp, &self.pending))
            .map_err(|e| {
                CliError::new(
                    Class::Internal,
                    format!("writing {}: {e}", self.pending.display()),
                )
            })
    }

    fn complete(&self) -> Result<(), CliError> {
        std::fs::rename(&self.pending, &self.done).map_err(|e| {
            CliError::new(
                Class::Internal,
                format!("writing {}: {e}", self.done.display()),
            )
        })
    }
}

/// Issues one planned line (see the module docs for the resumability protocol).
async fn issue_line(
    licences: LicenceClient,
    issuer_msp: String,
    dir: PathBuf,
    p: Planned,
) -> LineResult {
    let id = p.request.licence_id.clone();
    let files = CredentialFiles::new(&dir, &id);
    let mut result = LineResult {
        line: p.line,
        licence_id: Some(id.as_str().to_string()),
        status: "issued",
        tx_id: None,
        block: None,
        credential: None,
        note: None,
        error: None,
        class: None,
    };
    let fail = |mut r: LineResult, e: CliError| {
        r.status = "failed";
        r.class = Some(e.class);
        r.error = Some(e.to_json()["error"].clone());
        r
    };
    // Already issued (by an earlier, interrupted run)? Then only the credential may need finishing.
    match licences.licence(&id).await {
        Ok(record) => return skipped(result, &files, &record),
        Err(e) if e.failure() == Failure::NotFound => {}
        Err(e) => return fail(result, CliError::from(e)),
    }
    // Reuse a pending credential's salts: its transaction may yet commit.
    let credential = match files.read_pending().filter(|c| {
        c.licence_id == id
            && c.holder_key == p.request.holder_key
            && c.fields.len() == p.values.len()
            && c.fields
                .iter()
                .all(|(k, o)| p.values.get(k) == Some(&o.value))
    }) {
        Some(c) => c,
        None => {
            let private = elicense_sdk::client::salt_values(&p.values);
            Credential {
                channel: licences.channel().to_string(),
                licence_id: id.clone(),
                licence_type: p.request.licence_type.clone(),
                issuer_msp,
                holder_key: p.request.holder_key.clone(),
                not_before: p.request.not_before,
                not_after: p.request.not_after,
                fields: private.fields,
            }
        }
    };
    if let Err(e) = files.write_pending(&credential) {
        return fail(result, e);
    }
    let private = LicencePrivate {
        fields: credential.fields.clone(),
    };
    let mut attempts = 0;
    loop {
        attempts += 1;
        match licences.issue_salted(&p.request, &private).await {
            Ok(issued) => {
                if let Err(e) = files.complete() {
                    return fail(result, e);
                }
                result.tx_id = Some(issued.transaction_id);
                result.block = Some(issued.block_number);
                result.credential = Some(files.done.display().to_string());
                return result;
            }
            Err(e) if e.failure() == Failure::Conflict && attempts < 5 => {
                tokio::time::sleep(std::time::Duration::from_millis(50 * attempts)).await;
            }
            Err(e) if matches!(e.failure(), Failure::AlreadyExists | Failure::Conflict) => {
                // Someone (an earlier run's transaction, most likely) issued it meanwhile.
                return match licences.licence(&id).await {
                    Ok(record) => skipped(result, &files, &record),
                    Err(_) => fail(result, CliError::from(e)),
                };
            }
            Err(e) => return fail(result, licence_error(e)),
        }
    }
}

fn licence_error(e: LicenceError) -> CliError {
    CliError::from(e)
}

fn skipped(
    mut result: LineResult,
    files: &CredentialFiles,
    record: &elicense_model::LicenceRecord,
) -> LineResult {
    result.status = "skipped";
    if files.done.is_file() {
        result.note = Some("already issued".into());
        result.credential = Some(files.done.display().to_string());
    } else if files
        .read_pending()
        .is_some_and(|c| c.check(record).is_ok())
        && files.complete().is_ok()
    {
        result.note = Some("already issued; credential completed".into());
        result.credential = Some(files.done.display().to_string());
    } else {
        result.note = Some("already issued; no credential for it in this directory".into());
    }
    result.tx_id = Some(record.issued.tx_id.clone());
    result
}

fn print_result(format: Format, r: &LineResult) -> Result<(), CliError> {
    let text = match format {
        Format::Json => format!("{}\n", serde_json::to_string(r).unwrap_or_default()),
        Format::Yaml => format!("---\n{}", serde_yaml::to_string(r).unwrap_or_default()),
        Format::Table => {
            let detail = match (&r.error, &r.note) {
                (Some(e), _) => e["message"].as_str().unwrap_or_default().to_string(),
                (None, Some(n)) => n.clone(),
                (None, None) => r.tx_id.clone().unwrap_or_default(),
            };
            format!(
                "line {:<6} {:<8} {:<28} {}\n",
                r.line,
                r.status,
                r.licence_id.as_deref().unwrap_or("-"),
                detail
            )
        }
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| CliError::new(Class::Internal, format!("writing output: {e}")))
}

fn detect_format(path: &Path, text: &str) -> BatchFormat {
    match path.extension().and_then(|e| e.to_str()) {
        Some("csv") => BatchFormat::Csv,
        Some("jsonl" | "ndjson") => BatchFormat::Jsonl,
        _ if text.trim_start().starts_with('{') => BatchFormat::Jsonl,
        _ => BatchFormat::Csv,
    }
}

/// Runs `licence issue --batch`.
pub async fn run(
    ctx: &Ctx,
    client: &Client,
    licences: &LicenceClient,
    args: IssueArgs,
) -> Result<(), CliError> {
    let batch = args.batch.batch.clone().unwrap_or_default();
    let dir = args.batch.credentials_dir.clone().unwrap_or_default();
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::new(Class::Internal, format!("creating {}: {e}", dir.display())))?;
    let text = input::read_text(&batch)?;
    let rows = match args
        .batch
        .batch_format
        .unwrap_or_else(|| detect_format(&batch, &text))
    {
        BatchFormat::Csv => parse_csv(&text)?,
        BatchFormat::Jsonl => parse_jsonl(&text),
    };
    let catalogue: BTreeMap<String, LicenceType> = licences
        .catalogue()
        .await
        .map_err(|e| CliError::from(e).context("reading the catalogue"))?
        .into_iter()
        .map(|t| (t.code.clone(), t))
        .collect();
    let msp_id = client.identity.identity().msp_id().to_string();
    // Every line's commit status from one filtered block stream rather than a call per line;
    // a peer that will not open one still answers each line's own status call.
    let watching = licences.with_commit_watcher().await;
    let licences = watching.as_ref().unwrap_or(licences);

    let total = rows.len() as u64;
    let bar = (std::io::stderr().is_terminal() && !ctx.quiet).then(|| {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} licences  {per_sec}  eta {eta}  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let emit = |r: &LineResult| -> Result<(), CliError> {
        match &bar {
            Some(b) => {
                let printed = b.suspend(|| print_result(ctx.format(), r));
                b.inc(1);
                printed
            }
            None => print_result(ctx.format(), r),
        }
    };

    let mut results: Vec<(u64, &'static str, Option<Class>, String)> = Vec::new();
    let mut record = |r: &LineResult| {
        results.push((
            r.line,
            r.status,
            r.class,
            r.error
                .as_ref()
                .and_then(|e| e["message"].as_str())
                .unwrap_or_default()
                .to_string(),
        ));
    };
    let semaphore = Arc::new(tokio::sync::Semaphore::new(args.batch.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for row in rows {
        let planned = match row {
            Err((line, e)) => Err((line, None, e)),
            Ok(row) => {
                let line = row.line;
                plan(
                    row,
                    args.licence_type.as_deref(),
                    &catalogue,
                    &msp_id,
                    &args,
                )
                .map_err(|(id, e)| (line, id, e))
            }
        };
        match planned {
            Err((line, id, e)) => {
                let r = LineResult::failed(line, id, &e);
                emit(&r)?;
                record(&r);
            }
            Ok(p) => {
                let sem = Arc::clone(&semaphore);
                let (licences, msp, dir) = (licences.clone(), msp_id.clone(), dir.clone());
                tasks.spawn(async move {
                    let _permit = sem.acquire_owned().await;
                    issue_line(licences, msp, dir, p).await
                });
            }
        }
    }
    while let Some(joined) = tasks.join_next().await {
        let r = joined.map_err(|e| CliError::new(Class::Internal, format!("batch task: {e}")))?;
        emit(&r)?;
        record(&r);
    }
    if let Some(b) = &bar {
        b.finish_and_clear();
    }

    results.sort_by_key(|r| r.0);
    let count = |s: &str| results.iter().filter(|r| r.1 == s).count();
    let (issued, skipped, failed) = (count("issued"), count("skipped"), count("failed"));
    if !ctx.quiet {
        eprintln!("{issued} issued, {skipped} already issued (skipped), {failed} failed, of {total} lines");
    }
    match results.iter().find(|r| r.1 == "failed") {
        None => Ok(()),
        Some((line, _, class, message)) => Err(CliError::new(
            class.unwrap_or(Class::Internal),
            format!("{failed} of {total} lines failed; first: line {line}: {message}"),
        )
        .hint("fix the lines reported as failed and run the same command again: issued licences are skipped")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_keep_their_file_line_numbers_and_split_fields_from_settings() {
        let text =
            "type,serial,holder_key,name,sex\nID_CARD,1,KEY,Zhang San,M\n\nID_CARD,2,KEY,Li Si,\n";
        let rows = parse_csv(text).unwrap();
        let rows: Vec<Row> = rows.into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(rows[0].line, 2);
        assert_eq!(
            rows[0].fields.get("name").map(String::as_str),
            Some("Zhang San")
        );
        assert_eq!(rows[1].line, 4);
        assert!(
            !rows[1].fields.contains_key("sex"),
            "empty cells are left out"
        );
        assert_eq!(rows[1].serial.as_deref(), Some("2"));
    }

    #[test]
    fn jsonl_bad_lines_are_reported_by_number() {
        let text = "{\"type\":\"ID_CARD\",\"serial\":\"1\",\"fields\":{\"name\":\"A\"}}\nnot json\n\n{\"serial\":2,\"fields\":[1]}\n";
        let rows = parse_jsonl(text);
        assert_eq!(rows.len(), 3);
        assert!(rows[0].is_ok());
        assert_eq!(rows[1].as_ref().unwrap_err().0, 2);
        assert_eq!(rows[2].as_ref().unwrap_err().0, 4);
    }
}
