//! Reading user input: files or standard input (`-`), times, holder public keys.

use std::io::Read as _;
use std::path::Path;

use base64::Engine as _;
use elicense_model::HolderKey;
use fabric_common::crypto::{PublicKey, SigningKey};

use crate::error::CliError;
use crate::exit::Class;

/// Reads a whole file, or standard input for `-`.
pub fn read_text(path: &Path) -> Result<String, CliError> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| CliError::usage(format!("reading standard input: {e}")))?;
        return Ok(s);
    }
    std::fs::read_to_string(path).map_err(|e| {
        let class = if e.kind() == std::io::ErrorKind::NotFound {
            Class::NotFound
        } else {
            Class::Usage
        };
        CliError::new(class, format!("reading {}: {e}", path.display()))
    })
}

/// Parses a JSON file (or `-`) into `T`.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<T, CliError> {
    let text = read_text(path)?;
    serde_json::from_str(&text)
        .map_err(|e| CliError::usage(format!("{what} {}: {e}", path.display())))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A time as Unix seconds: an integer, `YYYY-MM-DD` (00:00:00 UTC) or `YYYY-MM-DDTHH:MM:SSZ`.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    let bad = || format!("{s:?} is not Unix seconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ");
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z').ok_or_else(bad)?)),
        None => (s, None),
    };
    let parts: Vec<i64> = date
        .split('-')
        .map(|p| p.parse::<i64>().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let [y, m, d] = parts[..] else {
        return Err(bad());
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    let mut secs = days_from_civil(y, m, d) * 86_400;
    if let Some(t) = time {
        let hms: Vec<i64> = t
            .split(':')
            .map(|p| p.parse::<i64>().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        let [h, mi, se] = hms[..] else {
            return Err(bad());
        };
        if !(0..24).contains(&h) || !(0..60).contains(&mi) || !(0..61).contains(&se) {
            return Err(bad());
        }
        secs += h * 3600 + mi * 60 + se;
    }
    Ok(secs)
}

/// The current time in Unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A holder's public key in the canonical PEM form licence records hold, from any of: a PEM
/// `PUBLIC KEY`, a PEM certificate (the holder's enrollment certificate), a PEM private key (its
/// public half), or base64 of the DER SubjectPublicKeyInfo (handy in CSV files).
pub fn holder_key_pem(text: &str) -> Result<String, String> {
    let t = text.trim();
    let key = if t.contains("BEGIN PUBLIC KEY") {
        PublicKey::from_pem(t.as_bytes()).map_err(|e| e.to_string())?
    } else if t.contains("BEGIN CERTIFICATE") {
        fabric_common::identity::Certificate::from_pem(t.as_bytes())
            .map_err(|e| e.to_string())?
            .public_key()
            .clone()
    } else if t.contains("PRIVATE KEY") {
        SigningKey::from_pem(t.as_bytes())
            .map_err(|e| e.to_string())?
            .public_key()
            .clone()
    } else {
        let der = base64::engine::general_purpose::STANDARD
            .decode(t)
            .map_err(|_| {
                "not a PEM key or certificate, nor base64 of a DER public key".to_string()
            })?;
        PublicKey::from_spki_der(&der).map_err(|e| e.to_string())?
    };
    Ok(HolderKey::from_public_key(key).to_pem())
}

/// Reads a holder public key from a file (see [`holder_key_pem`]).
pub fn holder_key_file(path: &Path) -> Result<String, CliError> {
    let text = read_text(path)?;
    holder_key_pem(&text).map_err(|e| {
        CliError::usage(format!("holder key {}: {e}", path.display()))
            .hint("give the holder's P-256 public key, certificate or key as PEM")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_unix_seconds_dates_and_utc_timestamps() {
        assert_eq!(parse_time("1700000000").unwrap(), 1_700_000_000);
        assert_eq!(parse_time("1970-01-01").unwrap(), 0);
        assert_eq!(parse_time("2024-02-29").unwrap(), 1_709_164_800);
        assert_eq!(
            parse_time("2024-02-29T01:02:03Z").unwrap(),
            1_709_164_800 + 3723
        );
        assert!(parse_time("2024-13-01").is_err());
        assert!(parse_time("tomorrow").is_err());
    }

    #[test]
    fn holder_keys_are_taken_from_public_private_or_base64_forms_alike() {
        let key = SigningKey::generate();
        let canonical = HolderKey::from_public_key(key.public_key().clone()).to_pem();
        assert_eq!(holder_key_pem(&key.to_pkcs8_pem()).unwrap(), canonical);
        assert_eq!(holder_key_pem(&canonical).unwrap(), canonical);
        let b64 = base64::engine::general_purpose::STANDARD.encode(key.public_key().to_spki_der());
        assert_eq!(holder_key_pem(&b64).unwrap(), canonical);
        assert!(holder_key_pem("not a key").is_err());
    }
}
