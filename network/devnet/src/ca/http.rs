//! The HTTPS front end of a CA service: fabric-ca-server's REST endpoints, served under both `/`
//! (where fabric-ca-client sends them) and `/api/v1/` (the documented prefix), with Fabric CA's
//! JSON envelope `{"result":…,"errors":[{"code","message"}],"messages":[],"success":…}`, its HTTP
//! status codes, and its order of checks (which decides which error a bad request gets).

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;
use fabric_common::crypto::SigningKey;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::error::{codes, CaError};
use super::service::CaService;
use super::token;
use super::types::*;

/// Largest request body accepted; enrollment requests are a few KiB.
const MAX_BODY: usize = 1 << 20;

/// A running CA endpoint. Dropping it does not stop the server; call [`CaServer::stop`].
#[derive(Debug)]
pub struct CaServer {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl CaServer {
    /// Serves `service` over TLS with `cert_pem`/`key` on `addr` (port 0 picks a free port).
    pub async fn start(
        service: CaService,
        cert_pem: &str,
        key: &SigningKey,
        addr: SocketAddr,
    ) -> Result<Self, CaError> {
        let tls = tls_config(cert_pem, key)?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| CaError::internal(format!("binding {addr}: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| CaError::internal(e.to_string()))?;
        let (shutdown, mut stop) = watch::channel(false);
        let acceptor = TlsAcceptor::from(Arc::new(tls));
        let task = tokio::spawn(async move {
            loop {
                let (tcp, _) = tokio::select! {
                    r = listener.accept() => match r {
                        Ok(c) => c,
                        Err(_) => continue,
                    },
                    _ = stop.changed() => break,
                };
                let acceptor = acceptor.clone();
                let service = service.clone();
                let mut conn_stop = stop.clone();
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc = hyper::service::service_fn(move |req| {
                        let service = service.clone();
                        async move { Ok::<_, std::convert::Infallible>(handle(&service, req).await) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc);
                    tokio::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        _ = conn_stop.changed() => {
                            conn.as_mut().graceful_shutdown();
                            let _ = conn.await;
                        }
                    }
                });
            }
        });
        Ok(CaServer {
            addr,
            shutdown,
            task,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Stops accepting, closes connections after their current request, and waits.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

fn tls_config(cert_pem: &str, key: &SigningKey) -> Result<rustls::ServerConfig, CaError> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let certs: Vec<CertificateDer<'static>> =
        crate::material::x509::certs_from_pem(cert_pem.as_bytes())?
            .into_iter()
            .map(CertificateDer::from)
            .collect();
    let (_, key_der) = crate::material::x509::from_pem(key.to_pkcs8_pem().as_bytes())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| CaError::internal(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(
            certs,
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der)),
        )
        .map_err(|e| CaError::internal(format!("TLS: {e}")))
}

/// A response in Fabric CA's envelope.
fn envelope(status: u16, result: Result<String, CaError>) -> Response<Full<Bytes>> {
    let (status, body) = match result {
        Ok(json) => (
            status,
            format!("{{\"result\":{json},\"errors\":[],\"messages\":[],\"success\":true}}"),
        ),
        Err(e) => {
            let err = serde_json::json!({ "code": e.code(), "message": e.message() });
            (
                e.status(),
                format!("{{\"result\":\"\",\"errors\":[{err}],\"messages\":[],\"success\":false}}"),
            )
        }
    };
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid")
}

fn not_found() -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::NOT_FOUND)
        .header("Content-Type", "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from_static(b"404 page not found\n")))
        .expect("static response parts are valid")
}

/// What one request carries, read once.
struct Ctx {
    method: String,
    /// Go's `URL.RequestURI()`: the signed part of a token.
    request_uri: String,
    query_ca: String,
    authorization: Option<String>,
    body: Bytes,
}

impl Ctx {
    /// Fabric CA's `TryReadBody`: an empty body is fine, a malformed one is a 400.
    fn try_body<T: DeserializeOwned + Default>(&self) -> Result<(T, bool), CaError> {
        if self.body.is_empty() {
            return Ok((T::default(), true));
        }
        serde_json::from_slice(&self.body)
            .map(|b| (b, false))
            .map_err(|e| {
                CaError::http(
                    400,
                    codes::BAD_REQUEST_BODY,
                    format!(
                        "Invalid request body: {e}; body={}",
                        String::from_utf8_lossy(&self.body)
                    ),
                )
            })
    }

    /// Fabric CA's `ReadBody`: the body must be there and well-formed.
    fn body<T: DeserializeOwned + Default>(&self) -> Result<T, CaError> {
        let (b, empty) = self.try_body()?;
        if empty {
            return Err(CaError::http(
                400,
                codes::EMPTY_REQUEST_BODY,
                "Empty request body",
            ));
        }
        Ok(b)
    }

    /// The target CA: the `ca` query parameter, else the body's `caname`, else the default.
    fn ca_name(&self, service: &CaService) -> Result<String, CaError> {
        let name = if !self.query_ca.is_empty() {
            self.query_ca.clone()
        } else {
            self.try_body::<CaNameBody>()?.0.ca_name
        };
        service.check_ca(&name)?;
        Ok(name)
    }

    fn auth_header(&self) -> Result<&str, CaError> {
        match self.authorization.as_deref() {
            Some(h) if !h.is_empty() => Ok(h),
            _ => Err(CaError::http(
                401,
                codes::NO_AUTH_HEADER,
                "No authorization header",
            )),
        }
    }

    /// Token authentication; returns the caller's enrollment ID and its certificate's
    /// (serial, AKI).
    fn token_auth(&self, service: &CaService) -> Result<(String, (String, String)), CaError> {
        let header = self.auth_header()?.to_owned();
        let ca_name = self.ca_name(service)?;
        let der = token::verify_token(&header, &self.method, &self.request_uri, &self.body)?;
        let id = service.authenticate_certificate(&ca_name, &der)?;
        let info = crate::material::x509::cert_info(&der)?;
        Ok((id, (info.serial, info.aki)))
    }
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, CaError> {
    serde_json::to_string(value).map_err(|e| CaError::internal(e.to_string()))
}

async fn handle(service: &CaService, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let endpoint = path
        .strip_prefix("/api/v1/")
        .or_else(|| path.strip_prefix('/'))
        .unwrap_or("")
        .to_owned();
    let allowed: &[&str] = match endpoint.as_str() {
        "cainfo" => &["GET", "POST"],
        "enroll" | "reenroll" | "register" | "revoke" => &["POST"],
        "identities" => &["GET"],
        e if e.starts_with("identities/") && e.len() > "identities/".len() => &["GET"],
        _ => return not_found(),
    };
    let method = req.method().as_str().to_owned();
    if !allowed.contains(&method.as_str()) {
        return envelope(
            405,
            Err(CaError::http(
                405,
                codes::METHOD_NOT_ALLOWED,
                format!("Method {method} is not allowed"),
            )),
        );
    }
    let request_uri = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| path.clone());
    let query_ca = req
        .uri()
        .query()
        .and_then(|q| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == "ca")
                .map(|(_, v)| percent_decode(v))
        })
        .unwrap_or_default();
    let authorization = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return envelope(
                400,
                Err(CaError::http(
                    400,
                    3,
                    format!("Failed reading request body: {e}"),
                )),
            )
        }
    };
    let ctx = Ctx {
        method,
        request_uri,
        query_ca,
        authorization,
        body,
    };
    let service = service.clone();
    // Signing and the registry's file writes block; keep them off the reactor threads.
    let outcome = tokio::task::spawn_blocking(move || dispatch(&service, &endpoint, &ctx))
        .await
        .unwrap_or_else(|e| Err(CaError::internal(format!("handler failed: {e}"))));
    match outcome {
        Ok((status, body, location)) => {
            let mut resp = envelope(status, Ok(body));
            if let Some(loc) = location {
                if let Ok(v) = hyper::header::HeaderValue::from_str(&loc) {
                    resp.headers_mut().insert("Location", v);
                }
            }
            resp
        }
        Err(e) => envelope(e.status(), Err(e)),
    }
}

type Outcome = Result<(u16, String, Option<String>), CaError>;

fn dispatch(service: &CaService, endpoint: &str, ctx: &Ctx) -> Outcome {
    match endpoint {
        "cainfo" => {
            let name = ctx.ca_name(service)?;
            Ok((200, json(&service.ca_info(&name)?)?, None))
        }
        "enroll" => {
            let header = ctx.auth_header()?;
            let (id, secret) = basic_credentials(header).ok_or_else(|| {
                CaError::authentication(codes::NO_USER_PASS, "No user/pass in authorization header")
            })?;
            ctx.ca_name(service)?;
            service.login(&id, &secret)?;
            let req: EnrollmentRequest = ctx.body()?;
            let resp = service.complete_enroll(&id, &req)?;
            Ok((201, json(&resp)?, None))
        }
        "reenroll" => {
            let (id, _) = ctx.token_auth(service)?;
            let req: EnrollmentRequest = ctx.body()?;
            Ok((201, json(&service.reenroll(&id, &req)?)?, None))
        }
        "register" => {
            let req: RegistrationRequest = ctx.body()?;
            let (id, _) = ctx.token_auth(service)?;
            let secret = service.register(&id, &req)?;
            let location = format!("/api/v1/identities/{}", req.name);
            Ok((201, json(&RegistrationResponse { secret })?, Some(location)))
        }
        "revoke" => {
            let req: RevocationRequest = ctx.body()?;
            let (id, (serial, aki)) = ctx.token_auth(service)?;
            let resp = service.revoke(&id, Some((&serial, &aki)), &req)?;
            Ok((200, json(&resp)?, None))
        }
        "identities" => {
            let (id, _) = ctx.token_auth(service)?;
            let name = ctx.ca_name(service)?;
            Ok((200, json(&service.identities(&id, &name)?)?, None))
        }
        other => {
            let target = percent_decode(other.trim_start_matches("identities/"));
            let (id, _) = ctx.token_auth(service)?;
            let name = ctx.ca_name(service)?;
            Ok((200, json(&service.identity(&id, &target, &name)?)?, None))
        }
    }
}

/// Go's `Request.BasicAuth`: `Basic base64(user:pass)`, scheme case-insensitive.
fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, rest) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                Err(_) => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
