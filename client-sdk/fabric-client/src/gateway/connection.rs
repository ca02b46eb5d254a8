//! gRPC connections to Gateway peers: TLS (roots, mutual TLS, server name override), keepalive,
//! message size limits, and fail-over across several endpoints.
//!
//! One HTTP/2 channel per endpoint is created once and shared by every call and clone, so
//! concurrent transactions multiplex over it instead of opening connections.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use super::error::GatewayError;

/// Fabric's default maximum gRPC message size (100 MiB).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 100 * 1024 * 1024;

/// One Gateway peer endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoint {
    /// `https://host:port` (TLS) or `http://host:port`; `grpcs://` and `grpc://` are accepted.
    pub url: String,
    /// PEM root certificates trusted for the peer's TLS certificate.
    pub tls_root_pems: Vec<Vec<u8>>,
    /// Client certificate and key (PEM) for mutual TLS.
    pub client_tls: Option<(Vec<u8>, Vec<u8>)>,
    /// Name to verify in the peer's certificate instead of the URL's host
    /// (`ssl-target-name-override`).
    pub server_name_override: Option<String>,
}

impl Endpoint {
    /// An endpoint at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Endpoint {
            url: url.into(),
            ..Default::default()
        }
    }

    /// Trusts a PEM root certificate for TLS.
    pub fn tls_root(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_root_pems.push(pem.into());
        self
    }

    /// Presents a client certificate (mutual TLS).
    pub fn client_tls(mut self, cert_pem: impl Into<Vec<u8>>, key_pem: impl Into<Vec<u8>>) -> Self {
        self.client_tls = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// Verifies this name in the server certificate.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name_override = Some(name.into());
        self
    }

    fn normalized_url(&self) -> String {
        if let Some(rest) = self.url.strip_prefix("grpcs://") {
            format!("https://{rest}")
        } else if let Some(rest) = self.url.strip_prefix("grpc://") {
            format!("http://{rest}")
        } else if self.url.contains("://") {
            self.url.clone()
        } else if self.tls_root_pems.is_empty() {
            format!("http://{}", self.url)
        } else {
            format!("https://{}", self.url)
        }
    }
}

impl From<crate::profile::PeerEndpoint> for Endpoint {
    fn from(p: crate::profile::PeerEndpoint) -> Self {
        Endpoint {
            url: p.url,
            tls_root_pems: p.tls_ca_pems,
            client_tls: p.client_tls,
            server_name_override: p.server_name_override,
        }
    }
}

/// Transport settings shared by a connection's endpoints.
#[derive(Debug, Clone)]
pub struct ConnectionOptions {
    /// Time allowed to establish a connection (default 10 s).
    pub connect_timeout: Duration,
    /// HTTP/2 keepalive ping interval (default none).
    pub keepalive_interval: Option<Duration>,
    /// Time to wait for a keepalive acknowledgement (default 20 s).
    pub keepalive_timeout: Duration,
    /// Whether to ping while no call is in flight.
    pub keepalive_while_idle: bool,
    /// Largest message accepted (default 100 MiB, as Fabric).
    pub max_decoding_message_size: usize,
    /// Largest message sent (default 100 MiB, as Fabric).
    pub max_encoding_message_size: usize,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions {
            connect_timeout: Duration::from_secs(10),
            keepalive_interval: None,
            keepalive_timeout: Duration::from_secs(20),
            keepalive_while_idle: false,
            max_decoding_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_encoding_message_size: DEFAULT_MAX_MESSAGE_SIZE,
        }
    }
}

/// gRPC channels to one or more Gateway endpoints; calls go to the current endpoint and move on to
/// the next when it is `UNAVAILABLE`.
#[derive(Clone)]
pub struct Connection {
    channels: Arc<[Channel]>,
    addresses: Arc<[String]>,
    current: Arc<AtomicUsize>,
    pub(crate) max_decoding: usize,
    pub(crate) max_encoding: usize,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("endpoints", &self.addresses)
            .field("current", &self.current.load(Ordering::Relaxed))
            .finish()
    }
}

fn build_channel(
    endpoint: &Endpoint,
    options: &ConnectionOptions,
) -> Result<Channel, GatewayError> {
    let url = endpoint.normalized_url();
    let mut ep = Channel::from_shared(url.clone())
        .map_err(|e| GatewayError::Connection(format!("{url}: {e}")))?
        .connect_timeout(options.connect_timeout)
        // Small request/response pairs: never let Nagle's algorithm hold a message back.
        .tcp_nodelay(true)
        .keep_alive_timeout(options.keepalive_timeout)
        .keep_alive_while_idle(options.keepalive_while_idle);
    if let Some(interval) = options.keepalive_interval {
        ep = ep.http2_keep_alive_interval(interval);
    }
    if url.starts_with("https://") {
        if endpoint.tls_root_pems.is_empty() {
            return Err(GatewayError::Connection(format!(
                "{url}: TLS needs the peer's TLS root certificate"
            )));
        }
        let mut tls = ClientTlsConfig::new();
        for pem in &endpoint.tls_root_pems {
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        if let Some(name) = &endpoint.server_name_override {
            tls = tls.domain_name(name.clone());
        }
        if let Some((cert, key)) = &endpoint.client_tls {
            tls = tls.identity(tonic::transport::Identity::from_pem(cert, key));
        }
        ep = ep
            .tls_config(tls)
            .map_err(|e| GatewayError::Connection(format!("{url}: {e}")))?;
    }
    // Lazy: the first call connects, and a peer that is down now may be up by then.
    Ok(ep.connect_lazy())
}

impl Connection {
    /// Channels to `endpoints` (tried in order on fail-over); nothing is dialled until first use.
    /// Must be called within a Tokio runtime.
    pub fn new(
        endpoints: Vec<Endpoint>,
        options: &ConnectionOptions,
    ) -> Result<Self, GatewayError> {
        if endpoints.is_empty() {
            return Err(GatewayError::Connection("no endpoint given".into()));
        }
        let channels = endpoints
            .iter()
            .map(|e| build_channel(e, options))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Connection {
            channels: channels.into(),
            addresses: endpoints.iter().map(|e| e.url.clone()).collect(),
            current: Arc::new(AtomicUsize::new(0)),
            max_decoding: options.max_decoding_message_size,
            max_encoding: options.max_encoding_message_size,
        })
    }

    /// Wraps an existing tonic channel (one endpoint, no fail-over).
    pub fn from_channel(channel: Channel) -> Self {
        Connection {
            channels: vec![channel].into(),
            addresses: vec!["<channel>".to_string()].into(),
            current: Arc::new(AtomicUsize::new(0)),
            max_decoding: DEFAULT_MAX_MESSAGE_SIZE,
            max_encoding: DEFAULT_MAX_MESSAGE_SIZE,
        }
    }

    /// The endpoint URLs, in fail-over order.
    pub fn endpoints(&self) -> &[String] {
        &self.addresses
    }

    /// Runs `call` on the current endpoint, moving to the next one while the answer is
    /// `UNAVAILABLE` (the endpoint is down or cannot reach the network); other errors return as is.
    pub(crate) async fn call<T, F, Fut>(&self, mut call: F) -> Result<T, tonic::Status>
    where
        F: FnMut(Channel) -> Fut,
        Fut: std::future::Future<Output = Result<T, tonic::Status>>,
    {
        let n = self.channels.len();
        let start = self.current.load(Ordering::Relaxed) % n;
        let mut last = None;
        for i in 0..n {
            let idx = (start + i) % n;
            match call(self.channels[idx].clone())
                .await
                .map_err(transport_status)
            {
                Err(status) if status.code() == tonic::Code::Unavailable && i + 1 < n => {
                    last = Some(status);
                }
                other => {
                    if i > 0 {
                        self.current.store(idx, Ordering::Relaxed);
                    }
                    return other;
                }
            }
        }
        Err(last.unwrap_or_else(|| tonic::Status::unavailable("no endpoint")))
    }
}

/// A failure of the transport itself (a TLS handshake the peer refused, a connection closed
/// before the answer) as gRPC's UNAVAILABLE with its causes spelled out, as grpc-go reports it.
/// tonic reports these as UNKNOWN "transport error" or CANCELLED "operation was canceled", which
/// hides why and would keep fail-over from trying the next endpoint. Statuses a server sent
/// carry no source error, and the expiry of the call's own deadline is left as tonic reports it.
fn transport_status(status: tonic::Status) -> tonic::Status {
    if !matches!(status.code(), tonic::Code::Unknown | tonic::Code::Cancelled) {
        return status;
    }
    let Some(source) = std::error::Error::source(&status) else {
        return status;
    };
    let mut chain = Some(source);
    while let Some(e) = chain {
        if e.downcast_ref::<tonic::TimeoutExpired>().is_some() {
            return status;
        }
        chain = e.source();
    }
    let mut causes: Vec<String> = vec![status.message().to_string()];
    let mut next = Some(source);
    while let Some(e) = next {
        let text = e.to_string();
        if !causes.iter().any(|c| c.contains(&text)) {
            causes.push(text);
        }
        next = e.source();
    }
    tonic::Status::unavailable(causes.join(": "))
}

/// Refuses a request larger than the connection's `max_encoding_message_size` before it is
/// sent, naming both sizes: sent anyway, tonic aborts the HTTP/2 stream and the caller sees only
/// an opaque protocol error.
pub(crate) fn check_request_size(connection: &Connection, len: usize) -> Result<(), tonic::Status> {
    if len > connection.max_encoding {
        return Err(tonic::Status::out_of_range(format!(
            "Error, encoded message length too large: found {len} bytes, the limit is: {} bytes \
             (max_encoding_message_size)",
            connection.max_encoding
        )));
    }
    Ok(())
}
