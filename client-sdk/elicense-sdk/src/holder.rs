//! The holder's side, no network needed: the holder key, the code secret, the credential handed
//! over at issuance, holder-signed grants, withdrawals and usage-trail requests, the 8-digit code
//! and presentations of chosen fields.
//!
//! Every byte string signed here is `elicense-model`'s canonical encoding, the one the contract
//! verifies, so a grant built here is accepted by the chaincode unchanged.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use elicense_model::grant::{GrantError, DEFAULT_USES};
use elicense_model::signature::SignatureError;
use elicense_model::{
    Code, CodeCheck, CodeSalt, FieldOpening, Grant, GrantDraft, GrantId, HolderKey, HolderSecret,
    LicenceId, LicencePrivate, LicenceRecord, Nonce, Presentation, SignedGrant, SignedTrailRequest,
    SignedWithdrawal, TrailRequest, Withdrawal,
};
use fabric_common::crypto::{CryptoError, Signer, SigningKey};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};

/// Why a holder-side operation failed (nothing was sent anywhere).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HolderError {
    /// A key file or credential file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file to be written already exists (holder keys and credentials are never overwritten).
    #[error("{0} already exists")]
    Exists(PathBuf),
    /// The private key is not a P-256 PEM key.
    #[error("holder key: {0}")]
    Key(#[from] CryptoError),
    /// A holder signature could not be made or does not verify.
    #[error("holder signature: {0}")]
    Signature(#[from] SignatureError),
    /// The grant or request is malformed (window, uses, matter, fields…).
    #[error("grant: {0}")]
    Grant(#[from] GrantError),
    /// The holder secret or a code is malformed.
    #[error("code: {0}")]
    Code(#[from] elicense_model::code::CodeError),
    /// A field named by the caller is not on the credential.
    #[error("the credential has no field(s) {}", .0.join(", "))]
    UnknownField(Vec<String>),
    /// A field chosen for a presentation is not allowed by the grant.
    #[error("the grant does not allow field(s) {}", .0.join(", "))]
    FieldNotGranted(Vec<String>),
    /// Openings do not match the licence record's commitments (or the field sets differ).
    #[error("credential does not match the licence record for field(s) {}", .0.join(", "))]
    CommitmentMismatch(Vec<String>),
    /// The credential belongs to another licence or holder than the record.
    #[error("credential does not belong to this licence record: {0}")]
    WrongRecord(&'static str),
    /// A credential file is not valid JSON of the expected shape.
    #[error("credential JSON: {0}")]
    Json(#[from] serde_json::Error),
}

fn io_err(path: &Path, source: std::io::Error) -> HolderError {
    HolderError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes `data` to a new file readable by its owner only; refuses to overwrite.
fn write_private_file(path: &Path, data: &[u8]) -> Result<(), HolderError> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            HolderError::Exists(path.to_owned())
        } else {
            io_err(path, e)
        }
    })?;
    file.write_all(data).map_err(|e| io_err(path, e))?;
    file.sync_all().map_err(|e| io_err(path, e))
}

/// Current Unix time in seconds.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn random_nonce() -> Nonce {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    Nonce::new(bytes.to_vec()).unwrap_or_else(|_| unreachable!("16 bytes is a valid nonce"))
}

/// A holder's P-256 key pair: the private half signs grants, the public half is the holder's
/// pseudonym in licence records.
#[derive(Clone, Debug)]
pub struct HolderKeyPair {
    key: SigningKey,
}

impl HolderKeyPair {
    /// Generates a fresh key from the operating system's random source.
    pub fn generate() -> Self {
        Self {
            key: SigningKey::generate(),
        }
    }

    /// Wraps a key already loaded (e.g. from the holder's MSP directory).
    pub fn from_signing_key(key: SigningKey) -> Self {
        Self { key }
    }

    /// Parses a PEM private key (`PRIVATE KEY` PKCS#8 or `EC PRIVATE KEY`).
    pub fn from_pem(pem: &[u8]) -> Result<Self, HolderError> {
        Ok(Self {
            key: SigningKey::from_pem(pem)?,
        })
    }

    /// Reads a PEM private key file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, HolderError> {
        let path = path.as_ref();
        let pem = std::fs::read(path).map_err(|e| io_err(path, e))?;
        Self::from_pem(&pem)
    }

    /// Writes the private key as PKCS#8 PEM to a new owner-only file; never overwrites.
    pub fn store(&self, path: impl AsRef<Path>) -> Result<(), HolderError> {
        write_private_file(path.as_ref(), self.to_pem().as_bytes())
    }

    /// The private key as PKCS#8 PEM.
    pub fn to_pem(&self) -> String {
        self.key.to_pkcs8_pem()
    }

    /// The public key, as licence records hold it.
    pub fn public_key(&self) -> HolderKey {
        HolderKey::from_public_key(self.key.public_key().clone())
    }

    /// The public key in the canonical PEM form an [`elicense_model::IssueRequest`] carries.
    pub fn public_pem(&self) -> String {
        self.public_key().to_pem()
    }

    /// The underlying signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }
}

impl Signer for HolderKeyPair {
    fn sign_digest(&self, digest: &[u8; 32]) -> Result<Vec<u8>, CryptoError> {
        self.key.sign_digest(digest)
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.key.sign(message)
    }
}

/// A fresh random holder secret (32 bytes as 64 hex characters) for the holder to keep.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The code secret from text the holder keeps (its UTF-8 bytes; at least 16 bytes).
pub fn secret(text: &str) -> Result<HolderSecret, HolderError> {
    Ok(HolderSecret::new(text.as_bytes().to_vec())?)
}

/// What the holder receives at issuance: the licence identifier and every field's value and salt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    /// The channel the licence was issued on.
    pub channel: String,
    /// The licence identifier.
    pub licence_id: LicenceId,
    /// The catalogue type code.
    pub licence_type: String,
    /// The issuing organisation's MSP ID.
    pub issuer_msp: String,
    /// The holder's public key (PEM) recorded in the licence.
    pub holder_key: String,
    /// Start of validity (Unix seconds).
    pub not_before: i64,
    /// End of validity (Unix seconds, inclusive).
    pub not_after: i64,
    /// Every field's value and salt, by field name.
    pub fields: BTreeMap<String, FieldOpening>,
}

impl Credential {
    /// Builds a credential from a licence record and its openings, checking that every opening
    /// matches its commitment and that the field sets are equal.
    pub fn new(
        channel: impl Into<String>,
        record: &LicenceRecord,
        private: LicencePrivate,
    ) -> Result<Self, HolderError> {
        let credential = Credential {
            channel: channel.into(),
            licence_id: record.id.clone(),
            licence_type: record.licence_type.clone(),
            issuer_msp: record.issuer_msp.clone(),
            holder_key: record.holder_key.clone(),
            not_before: record.not_before,
            not_after: record.not_after,
            fields: private.fields,
        };
        credential.check(record)?;
        Ok(credential)
    }

    /// Checks the credential against a (freshly read) licence record: same licence, same holder
    /// key, and every opening matches its commitment.
    pub fn check(&self, record: &LicenceRecord) -> Result<(), HolderError> {
        if record.id != self.licence_id {
            return Err(HolderError::WrongRecord("licence identifiers differ"));
        }
        // The same PEM text is the same key; other text may still encode it (line breaks).
        if self.holder_key != record.holder_key {
            let ours = HolderKey::from_pem(&self.holder_key)?;
            let theirs = HolderKey::from_pem(&record.holder_key)?;
            if ours != theirs {
                return Err(HolderError::WrongRecord("holder keys differ"));
            }
        }
        let mut bad: Vec<String> = self
            .fields
            .iter()
            .filter(|(name, opening)| {
                record
                    .commitments
                    .get(*name)
                    .is_none_or(|c| *c != opening.commitment(name))
            })
            .map(|(name, _)| name.clone())
            .collect();
        bad.extend(
            record
                .commitments
                .keys()
                .filter(|name| !self.fields.contains_key(*name))
                .cloned(),
        );
        if bad.is_empty() {
            Ok(())
        } else {
            bad.sort();
            Err(HolderError::CommitmentMismatch(bad))
        }
    }

    /// The value of field `name`.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(|o| o.value.as_str())
    }

    /// The openings of the fields `names`, or the names the credential lacks.
    pub fn openings<S: AsRef<str>>(
        &self,
        names: &[S],
    ) -> Result<BTreeMap<String, FieldOpening>, HolderError> {
        let missing: Vec<String> = names
            .iter()
            .map(AsRef::as_ref)
            .filter(|n| !self.fields.contains_key(*n))
            .map(str::to_owned)
            .collect();
        if !missing.is_empty() {
            return Err(HolderError::UnknownField(missing));
        }
        Ok(names
            .iter()
            .map(|n| (n.as_ref().to_owned(), self.fields[n.as_ref()].clone()))
            .collect())
    }

    /// The credential as pretty JSON (it contains personal data: store it privately).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|_| unreachable!("a credential always serialises"))
    }

    /// Parses credential JSON.
    pub fn from_json(text: &str) -> Result<Self, HolderError> {
        Ok(serde_json::from_str(text)?)
    }

    /// Writes the credential to a new owner-only file; never overwrites.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), HolderError> {
        write_private_file(path.as_ref(), self.to_json().as_bytes())
    }

    /// Reads a credential file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, HolderError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| io_err(path, e))?;
        Self::from_json(&text)
    }

    /// Starts a grant of this licence to `grantee_msp` for `matter`.
    pub fn grant(&self, grantee_msp: impl Into<String>, matter: impl Into<String>) -> GrantBuilder {
        GrantBuilder::new(
            self.channel.clone(),
            self.licence_id.clone(),
            grantee_msp,
            matter,
        )
        .known_fields(self.fields.keys().cloned().collect())
    }

    /// A presentation for `grant` of the chosen fields (may be empty: code only).
    pub fn present<S: AsRef<str>>(
        &self,
        grant: &Grant,
        code: &Code,
        names: &[S],
    ) -> Result<Presentation, HolderError> {
        presentation(grant, code, self.openings(names)?)
    }
}

/// Default grant validity when neither end is set: one hour from now.
pub const DEFAULT_GRANT_SECS: i64 = 3600;

/// Builds a holder-signed grant: one grantee, one licence, one matter, named fields, a window.
#[derive(Debug, Clone)]
pub struct GrantBuilder {
    channel: String,
    licence_id: LicenceId,
    grantee_msp: String,
    matter: String,
    fields: Vec<String>,
    known_fields: Option<Vec<String>>,
    not_before: Option<i64>,
    not_after: Option<i64>,
    valid_for: i64,
    uses: u32,
    nonce: Option<Nonce>,
}

impl GrantBuilder {
    /// A grant of `licence_id` on `channel` to `grantee_msp` for `matter`; single use, valid
    /// for [`DEFAULT_GRANT_SECS`] from now unless told otherwise.
    pub fn new(
        channel: impl Into<String>,
        licence_id: LicenceId,
        grantee_msp: impl Into<String>,
        matter: impl Into<String>,
    ) -> Self {
        GrantBuilder {
            channel: channel.into(),
            licence_id,
            grantee_msp: grantee_msp.into(),
            matter: matter.into(),
            fields: Vec::new(),
            known_fields: None,
            not_before: None,
            not_after: None,
            valid_for: DEFAULT_GRANT_SECS,
            uses: DEFAULT_USES,
            nonce: None,
        }
    }

    fn known_fields(mut self, fields: Vec<String>) -> Self {
        self.known_fields = Some(fields);
        self
    }

    /// Allows field `name`.
    pub fn field(mut self, name: impl Into<String>) -> Self {
        self.fields.push(name.into());
        self
    }

    /// Allows every field in `names`.
    pub fn fields<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.fields.extend(names.into_iter().map(Into::into));
        self
    }

    /// First second of validity (Unix seconds); default now.
    pub fn not_before(mut self, at: i64) -> Self {
        self.not_before = Some(at);
        self
    }

    /// Last second of validity (Unix seconds, inclusive); default `not_before` + the duration.
    pub fn not_after(mut self, at: i64) -> Self {
        self.not_after = Some(at);
        self
    }

    /// Validity length from `not_before` when `not_after` is not set.
    pub fn valid_for(mut self, duration: std::time::Duration) -> Self {
        self.valid_for = i64::try_from(duration.as_secs()).unwrap_or(i64::MAX);
        self
    }

    /// How many verifies the grant allows (default 1).
    pub fn uses(mut self, uses: u32) -> Self {
        self.uses = uses;
        self
    }

    /// A fixed nonce instead of a random one (for reproducible vectors).
    pub fn nonce(mut self, nonce: Nonce) -> Self {
        self.nonce = Some(nonce);
        self
    }

    /// The draft grant, before the code check is attached.
    pub fn draft(self) -> Result<GrantDraft, HolderError> {
        if let Some(known) = &self.known_fields {
            let unknown: Vec<String> = self
                .fields
                .iter()
                .filter(|f| !known.contains(f))
                .cloned()
                .collect();
            if !unknown.is_empty() {
                return Err(HolderError::UnknownField(unknown));
            }
        }
        let not_before = self.not_before.unwrap_or_else(unix_now);
        let not_after = self
            .not_after
            .unwrap_or_else(|| not_before.saturating_add(self.valid_for));
        Ok(GrantDraft {
            channel: self.channel,
            licence_id: self.licence_id,
            grantee_msp: self.grantee_msp,
            matter: self.matter,
            fields: self.fields,
            not_before,
            not_after,
            uses: self.uses,
            nonce: self.nonce.unwrap_or_else(random_nonce),
        })
    }

    /// Derives the code from `secret`, attaches the code check and signs with the holder's key
    /// (any [`Signer`]: a software key, an HSM, a remote signer).
    pub fn sign(
        self,
        secret: &HolderSecret,
        holder: &dyn Signer,
    ) -> Result<HolderGrant, HolderError> {
        let sealed = self.draft()?.seal(secret)?;
        let signed = SignedGrant::sign(sealed.grant, holder)?;
        Ok(HolderGrant {
            signed,
            code: sealed.code,
            code_salt: sealed.code_salt,
        })
    }
}

/// A signed grant with what stays with the holder: the code told to the clerk and the code salt
/// sent (as transient data) with `Authorize`.
#[derive(Debug, Clone)]
pub struct HolderGrant {
    /// The grant and the holder's signature, as relayed to `Authorize`.
    pub signed: SignedGrant,
    /// The 8-digit code the holder tells the clerk.
    pub code: Code,
    /// The secret salt of the code check.
    pub code_salt: CodeSalt,
}

impl HolderGrant {
    /// The grant id.
    pub fn id(&self) -> GrantId {
        self.signed.grant.id()
    }

    /// The grant.
    pub fn grant(&self) -> &Grant {
        &self.signed.grant
    }
}

/// The holder's 8-digit code for `grant`, re-derived from the secret (the holder stores no code).
pub fn code_for(secret: &HolderSecret, grant: &Grant) -> Code {
    secret.code(&grant.body_digest())
}

/// The code salt for `grant`, re-derived from the secret.
pub fn code_salt_for(secret: &HolderSecret, grant: &Grant) -> CodeSalt {
    secret.code_salt(&grant.body_digest())
}

/// Whether `code` opens `grant`'s code check under `secret` (what the contract checks).
pub fn code_matches(secret: &HolderSecret, grant: &Grant, code: &Code) -> bool {
    grant.code_check == CodeCheck::compute(&code_salt_for(secret, grant), code)
}

/// A holder-signed withdrawal of grant `grant_id` on `channel`, requested now.
pub fn withdrawal(
    channel: impl Into<String>,
    grant_id: GrantId,
    holder: &dyn Signer,
) -> Result<SignedWithdrawal, HolderError> {
    let w = Withdrawal {
        channel: channel.into(),
        grant_id,
        requested_at: unix_now(),
        nonce: random_nonce(),
    };
    Ok(SignedWithdrawal::sign(w, holder)?)
}

/// A holder-signed request for the usage trail of `licence_id` on `channel`, requested now
/// (the contract accepts it for a few minutes only).
pub fn trail_request(
    channel: impl Into<String>,
    licence_id: LicenceId,
    holder: &dyn Signer,
) -> Result<SignedTrailRequest, HolderError> {
    let r = TrailRequest {
        channel: channel.into(),
        licence_id,
        requested_at: unix_now(),
        nonce: random_nonce(),
    };
    Ok(SignedTrailRequest::sign(r, holder)?)
}

/// A verify's secret input: `code` and the chosen openings, each of which `grant` must allow.
pub fn presentation(
    grant: &Grant,
    code: &Code,
    openings: BTreeMap<String, FieldOpening>,
) -> Result<Presentation, HolderError> {
    let not_granted: Vec<String> = openings
        .keys()
        .filter(|f| !grant.allows_field(f))
        .cloned()
        .collect();
    if !not_granted.is_empty() {
        return Err(HolderError::FieldNotGranted(not_granted));
    }
    Ok(Presentation {
        code: code.clone(),
        fields: openings,
    })
}

/// Which presented fields do not open the record's commitments (empty when all match): the
/// check the contract makes, run locally.
pub fn mismatched_fields(record: &LicenceRecord, presentation: &Presentation) -> Vec<String> {
    presentation
        .fields
        .iter()
        .filter(|(name, opening)| {
            record
                .commitments
                .get(*name)
                .is_none_or(|c| *c != opening.commitment(name))
        })
        .map(|(name, _)| name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_store_load_round_trip_and_no_overwrite() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("holder.pem");
        let key = HolderKeyPair::generate();
        key.store(&path).unwrap();
        let back = HolderKeyPair::load(&path).unwrap();
        assert_eq!(back.public_key(), key.public_key());
        assert!(matches!(key.store(&path), Err(HolderError::Exists(_))));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(
            HolderKeyPair::from_pem(b"not a key"),
            Err(HolderError::Key(_))
        ));
    }

    #[test]
    fn secrets_are_random_and_short_ones_refused() {
        let a = new_secret();
        assert_eq!(a.len(), 64);
        assert_ne!(a, new_secret());
        assert!(secret(&a).is_ok());
        assert!(matches!(secret("too short"), Err(HolderError::Code(_))));
    }

    #[test]
    fn builder_defaults_and_unknown_fields() {
        let id = LicenceId::build("IDC", "PSB", "1").unwrap();
        let d = GrantBuilder::new("police-service", id.clone(), "ServiceCentreMSP", "SC-1")
            .fields(["name", "sex", "name"])
            .not_before(1000)
            .draft()
            .unwrap();
        assert_eq!((d.not_before, d.not_after, d.uses), (1000, 1000 + 3600, 1));
        let c = Credential {
            channel: "police-service".into(),
            licence_id: id,
            licence_type: "ID_CARD".into(),
            issuer_msp: "PublicSecurityMSP".into(),
            holder_key: String::new(),
            not_before: 0,
            not_after: 1,
            fields: BTreeMap::new(),
        };
        assert!(matches!(
            c.grant("ServiceCentreMSP", "SC-1").field("name").draft(),
            Err(HolderError::UnknownField(f)) if f == ["name"]
        ));
    }
}
