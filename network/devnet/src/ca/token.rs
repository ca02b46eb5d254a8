//! Fabric CA's token authentication (`util.CreateToken` / `util.VerifyToken`, v1.4 and later):
//!
//! ```text
//! Authorization: <b64(cert PEM)>.<b64(signature)>
//! signature = ECDSA-P256(SHA-256("<METHOD>.<b64(request URI)>.<b64(body)>.<b64(cert PEM)>"))
//! ```
//!
//! The request URI is Go's `URL.RequestURI()`: the path as sent plus `?query` when there is one.
//! Base64 is standard with padding. Signatures must be low-S, as BCCSP verifies them.

use base64::Engine as _;
use fabric_common::crypto::{PublicKey, Signer};

use super::error::{codes, CaError};
use crate::material::x509;

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn signed_payload(method: &str, uri: &str, body: &[u8], b64_cert: &str) -> String {
    format!("{method}.{}.{}.{b64_cert}", b64(uri.as_bytes()), b64(body))
}

/// Builds the `Authorization` header value for a request, as fabric-ca-client does.
pub fn create_token(
    cert_pem: &str,
    signer: &dyn Signer,
    method: &str,
    uri: &str,
    body: &[u8],
) -> Result<String, CaError> {
    let b64_cert = b64(cert_pem.as_bytes());
    let payload = signed_payload(method, uri, body, &b64_cert);
    let sig = signer
        .sign(payload.as_bytes())
        .map_err(|e| CaError::internal(format!("token signing failed: {e}")))?;
    Ok(format!("{b64_cert}.{}", b64(&sig)))
}

/// Checks a token's form and signature; returns the DER certificate it carries. Every failure is
/// an authentication failure with Fabric CA's local code 25.
pub fn verify_token(token: &str, method: &str, uri: &str, body: &[u8]) -> Result<Vec<u8>, CaError> {
    let invalid = |m: String| {
        CaError::authentication(
            codes::INVALID_TOKEN,
            format!("Invalid token in authorization header: {m}"),
        )
    };
    let parts: Vec<&str> = token.split('.').collect();
    let [b64_cert, b64_sig] = parts.as_slice() else {
        return Err(invalid(
            "Invalid token format; expecting 2 parts separated by '.'".into(),
        ));
    };
    let engine = base64::engine::general_purpose::STANDARD;
    let cert_pem = engine
        .decode(b64_cert)
        .map_err(|e| invalid(format!("Failed to decode base64 encoded x509 cert: {e}")))?;
    let der = x509::certs_from_pem(&cert_pem)
        .ok()
        .and_then(|c| c.into_iter().next())
        .ok_or_else(|| invalid("Failed to PEM decode certificate".into()))?;
    let info = x509::cert_info(&der)
        .map_err(|e| invalid(format!("Error in parsing x509 certificate: {e}")))?;
    let sig = engine
        .decode(b64_sig)
        .map_err(|e| invalid(format!("Invalid base64 encoded signature in token: {e}")))?;
    let key = PublicKey::from_spki_der(&info.public_key_spki)
        .map_err(|e| invalid(format!("Public Key import failed: {e}")))?;
    let payload = signed_payload(method, uri, body, b64_cert);
    key.verify(payload.as_bytes(), &sig)
        .map_err(|e| invalid(format!("Token signature validation failure: {e}")))?;
    Ok(der)
}
