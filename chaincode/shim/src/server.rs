//! The chaincode-as-a-service gRPC server (`protos.Chaincode/Connect`): the peer dials it, and
//! each connection is one chaincode stream. After a stream ends (peer restart) the server keeps
//! listening and serves the next connection.
//!
//! Configuration follows Fabric's CCaaS samples, each setting also as a flag:
//!
//! | setting | flag | environment (first set wins) |
//! |---|---|---|
//! | listen address | `--address` | `CHAINCODE_SERVER_ADDRESS`, `CORE_CHAINCODE_ADDRESS` |
//! | package ID | `--chaincode-id` | `CHAINCODE_ID`, `CORE_CHAINCODE_ID_NAME`, `CORE_CHAINCODE_ID` |
//! | TLS off | `--tls-disabled <bool>` | `CHAINCODE_TLS_DISABLED` (default: true unless key and cert are given) |
//! | TLS key (PEM file) | `--tls-key` | `CHAINCODE_TLS_KEY` |
//! | TLS cert (PEM file) | `--tls-cert` | `CHAINCODE_TLS_CERT` |
//! | client CA (PEM file, mutual TLS) | `--client-ca-cert` | `CHAINCODE_CLIENT_CA_CERT` |

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use fabric_protos::protos::chaincode_server::{
    Chaincode as ChaincodeService, ChaincodeServer as GrpcChaincodeServer,
};
use fabric_protos::protos::ChaincodeMessage;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::Stream;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response as GrpcResponse, Status, Streaming};

use crate::chaincode::Chaincode;
use crate::error::{Error, Result};
use crate::handler::run_connection;
use crate::peer::PeerStub;

/// The largest message either side accepts: Fabric's peer allows 100 MiB each way, well above
/// tonic's 4 MiB default.
pub const MAX_MESSAGE_SIZE: usize = 100 * 1024 * 1024;
/// HTTP/2 keepalive the server sends, as the Go shim's server (gRPC's default of two hours: the
/// peer is the side that pings, every minute). The server answers the peer's pings however often
/// they come.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2 * 60 * 60);
/// How long a keepalive ping may go unanswered.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Flags of the chaincode server; each may also come from the environment (see the module
/// docs). Embed it in a binary's own `clap` parser with `#[command(flatten)]`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServerArgs {
    /// Address to listen on, e.g. 0.0.0.0:9999.
    #[arg(long)]
    pub address: Option<String>,
    /// The chaincode package ID the peer knows this chaincode by (label:hash).
    #[arg(long = "chaincode-id")]
    pub chaincode_id: Option<String>,
    /// Serve without TLS.
    #[arg(long = "tls-disabled")]
    pub tls_disabled: Option<bool>,
    /// PEM file with the server's TLS private key.
    #[arg(long = "tls-key")]
    pub tls_key: Option<PathBuf>,
    /// PEM file with the server's TLS certificate.
    #[arg(long = "tls-cert")]
    pub tls_cert: Option<PathBuf>,
    /// PEM file with the CA certificates that sign the peer's client certificates; requires
    /// mutual TLS.
    #[arg(long = "client-ca-cert")]
    pub client_ca_cert: Option<PathBuf>,
}

/// TLS files of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Private key (PEM).
    pub key: PathBuf,
    /// Certificate (PEM).
    pub cert: PathBuf,
    /// Client CA certificates (PEM); when set, clients must present a certificate it signs.
    pub client_ca_cert: Option<PathBuf>,
}

/// The resolved server configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Listen address.
    pub address: String,
    /// The chaincode package ID sent in REGISTER.
    pub chaincode_id: String,
    /// TLS, if enabled.
    pub tls: Option<TlsFiles>,
}

fn first_env(env: &dyn Fn(&str) -> Option<String>, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| env(n).filter(|v| !v.trim().is_empty()))
}

fn parse_bool(name: &str, v: &str) -> Result<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "yes" => Ok(true),
        "0" | "f" | "false" | "no" => Ok(false),
        other => Err(Error::Config(format!(
            "{name} must be true or false, not {other:?}"
        ))),
    }
}

impl ServerConfig {
    /// Resolves flags over environment variables read with `env`.
    pub fn resolve(args: ServerArgs, env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let env: &dyn Fn(&str) -> Option<String> = &env;
        let address = args
            .address
            .or_else(|| first_env(env, &["CHAINCODE_SERVER_ADDRESS", "CORE_CHAINCODE_ADDRESS"]))
            .ok_or_else(|| {
                Error::Config("no listen address: set CHAINCODE_SERVER_ADDRESS or --address".into())
            })?;
        let chaincode_id = args
            .chaincode_id
            .or_else(|| {
                first_env(
                    env,
                    &[
                        "CHAINCODE_ID",
                        "CORE_CHAINCODE_ID_NAME",
                        "CORE_CHAINCODE_ID",
                    ],
                )
            })
            .ok_or_else(|| {
                Error::Config("no chaincode package ID: set CHAINCODE_ID or --chaincode-id".into())
            })?;
        let key = args
            .tls_key
            .or_else(|| first_env(env, &["CHAINCODE_TLS_KEY"]).map(PathBuf::from));
        let cert = args
            .tls_cert
            .or_else(|| first_env(env, &["CHAINCODE_TLS_CERT"]).map(PathBuf::from));
        let client_ca_cert = args
            .client_ca_cert
            .or_else(|| first_env(env, &["CHAINCODE_CLIENT_CA_CERT"]).map(PathBuf::from));
        let disabled = match args.tls_disabled {
            Some(d) => Some(d),
            None => first_env(env, &["CHAINCODE_TLS_DISABLED"])
                .map(|v| parse_bool("CHAINCODE_TLS_DISABLED", &v))
                .transpose()?,
        };
        let disabled = disabled.unwrap_or(key.is_none() || cert.is_none());
        let tls = if disabled {
            None
        } else {
            match (key, cert) {
                (Some(key), Some(cert)) => Some(TlsFiles {
                    key,
                    cert,
                    client_ca_cert,
                }),
                _ => return Err(Error::Config(
                    "TLS is enabled but CHAINCODE_TLS_KEY and CHAINCODE_TLS_CERT are not both set"
                        .into(),
                )),
            }
        };
        Ok(ServerConfig {
            address,
            chaincode_id,
            tls,
        })
    }

    /// Resolves flags over the process environment.
    pub fn from_env(args: ServerArgs) -> Result<Self> {
        Self::resolve(args, |n| std::env::var(n).ok())
    }

    fn tls_config(&self) -> Result<Option<ServerTlsConfig>> {
        let Some(tls) = &self.tls else {
            return Ok(None);
        };
        let read = |p: &PathBuf| {
            std::fs::read(p).map_err(|e| Error::Config(format!("reading {}: {e}", p.display())))
        };
        let mut cfg =
            ServerTlsConfig::new().identity(Identity::from_pem(read(&tls.cert)?, read(&tls.key)?));
        if let Some(ca) = &tls.client_ca_cert {
            cfg = cfg.client_ca_root(Certificate::from_pem(read(ca)?));
        }
        Ok(Some(cfg))
    }
}

/// Resolves once the server is stopping.
type StopSignal = watch::Receiver<bool>;

async fn stopped(mut stop: StopSignal) {
    // An error means the server (and its sender) is gone: stop as well.
    let _ = stop.wait_for(|s| *s).await;
}

/// The chaincode's side of one stream; ends when the server stops, so that a graceful shutdown
/// does not wait for the peer to hang up (a peer keeps its chaincode stream open for ever).
struct Outbound {
    messages: mpsc::Receiver<ChaincodeMessage>,
    stop: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Stream for Outbound {
    type Item = std::result::Result<ChaincodeMessage, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.stop.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        self.messages.poll_recv(cx).map(|m| m.map(Ok))
    }
}

/// The gRPC service: one chaincode stream per `Connect` call.
struct Service<C> {
    chaincode: Arc<C>,
    package_id: Arc<str>,
    stop: StopSignal,
}

#[tonic::async_trait]
impl<C: Chaincode<PeerStub>> ChaincodeService for Service<C> {
    type ConnectStream = Outbound;

    async fn connect(
        &self,
        request: Request<Streaming<ChaincodeMessage>>,
    ) -> std::result::Result<GrpcResponse<Self::ConnectStream>, Status> {
        let remote = request.remote_addr();
        let inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(1024);
        let chaincode = self.chaincode.clone();
        let package_id = self.package_id.clone();
        let stop = self.stop.clone();
        tokio::spawn(async move {
            tracing::info!(?remote, "peer connected");
            tokio::select! {
                r = run_connection(chaincode, &package_id, inbound, tx) => match r {
                    Ok(()) => tracing::info!(?remote, "peer closed the chaincode stream"),
                    Err(e) => tracing::warn!(?remote, %e, "chaincode stream ended"),
                },
                () = stopped(stop) => tracing::info!(?remote, "server stopping; chaincode stream closed"),
            }
        });
        Ok(GrpcResponse::new(Outbound {
            messages: rx,
            stop: Box::pin(stopped(self.stop.clone())),
        }))
    }
}

/// Resolves on SIGINT, or SIGTERM on Unix.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            tracing::info!("stop signal received");
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// A chaincode served over gRPC for peers to dial.
pub struct ChaincodeServer<C> {
    config: ServerConfig,
    chaincode: Arc<C>,
}

/// A server started with [`ChaincodeServer::start`]: its address and a way to stop it.
pub struct RunningServer {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<()>>,
}

impl RunningServer {
    /// The address the server listens on (with the real port when it bound port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections and waits for the server to end.
    pub async fn shutdown(mut self) -> Result<()> {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        (&mut self.task)
            .await
            .map_err(|e| Error::Config(format!("server task: {e}")))?
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
    }
}

impl<C: Chaincode<PeerStub>> ChaincodeServer<C> {
    /// A server for `chaincode` with `config`.
    pub fn new(config: ServerConfig, chaincode: C) -> Self {
        ChaincodeServer {
            config,
            chaincode: Arc::new(chaincode),
        }
    }

    fn router(&self, stop: StopSignal) -> Result<tonic::transport::server::Router> {
        let service = GrpcChaincodeServer::new(Service {
            chaincode: self.chaincode.clone(),
            package_id: Arc::from(self.config.chaincode_id.as_str()),
            stop,
        })
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE);
        let mut builder = Server::builder()
            .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
            .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
            .tcp_nodelay(true)
            // Large windows so multi-MiB values stream without stalling on flow control.
            .initial_connection_window_size(Some(16 * 1024 * 1024))
            .initial_stream_window_size(Some(8 * 1024 * 1024));
        if let Some(tls) = self.config.tls_config()? {
            builder = builder
                .tls_config(tls)
                .map_err(|e| Error::Config(format!("TLS: {e}")))?;
        }
        Ok(builder.add_service(service))
    }

    async fn bind(&self) -> Result<TcpListener> {
        TcpListener::bind(&self.config.address)
            .await
            .map_err(|e| Error::Config(format!("listening on {}: {e}", self.config.address)))
    }

    /// Serves until `shutdown` resolves; then open chaincode streams are closed and the call
    /// returns once their connections are gone.
    pub async fn serve_with_shutdown(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<()> {
        let listener = self.bind().await?;
        tracing::info!(address = %self.config.address, package_id = %self.config.chaincode_id, tls = self.config.tls.is_some(), "chaincode server listening");
        self.serve_on(listener, shutdown).await
    }

    async fn serve_on(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let router = self.router(stop_rx)?;
        router
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async move {
                shutdown.await;
                let _ = stop_tx.send(true);
            })
            .await
            .map_err(|e| Error::Config(format!("server: {e}")))
    }

    /// Serves until SIGINT (Ctrl-C) or, on Unix, SIGTERM (what `docker stop` and process
    /// managers send), then shuts down gracefully.
    pub async fn serve(self) -> Result<()> {
        self.serve_with_shutdown(stop_signal()).await
    }

    /// Binds and serves in the background (for tests and embedding): bind `127.0.0.1:0` to get
    /// a free port.
    pub async fn start(self) -> Result<RunningServer> {
        let listener = self.bind().await?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Config(format!("local address: {e}")))?;
        // Fail here, not in the background task, on bad TLS files.
        self.config.tls_config()?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(self.serve_on(listener, async {
            let _ = rx.await;
        }));
        Ok(RunningServer {
            addr,
            shutdown: Some(tx),
            task,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn ccaas_environment() {
        let c = ServerConfig::resolve(
            ServerArgs::default(),
            env(&[
                ("CHAINCODE_SERVER_ADDRESS", "0.0.0.0:9999"),
                ("CHAINCODE_ID", "elicense_1.0:abc"),
            ]),
        )
        .unwrap();
        assert_eq!(c.address, "0.0.0.0:9999");
        assert_eq!(c.chaincode_id, "elicense_1.0:abc");
        assert_eq!(c.tls, None, "TLS defaults to off without key and cert");

        let c = ServerConfig::resolve(
            ServerArgs::default(),
            env(&[
                ("CORE_CHAINCODE_ADDRESS", "127.0.0.1:1"),
                ("CORE_CHAINCODE_ID_NAME", "cc:1"),
                ("CHAINCODE_TLS_KEY", "/k.pem"),
                ("CHAINCODE_TLS_CERT", "/c.pem"),
                ("CHAINCODE_CLIENT_CA_CERT", "/ca.pem"),
            ]),
        )
        .unwrap();
        assert_eq!(c.chaincode_id, "cc:1");
        let tls = c.tls.unwrap();
        assert_eq!(tls.client_ca_cert, Some(PathBuf::from("/ca.pem")));

        let c = ServerConfig::resolve(
            ServerArgs::default(),
            env(&[
                ("CORE_CHAINCODE_ADDRESS", "127.0.0.1:1"),
                ("CORE_CHAINCODE_ID", "cc:2"),
                ("CHAINCODE_TLS_DISABLED", "true"),
                ("CHAINCODE_TLS_KEY", "/k.pem"),
                ("CHAINCODE_TLS_CERT", "/c.pem"),
            ]),
        )
        .unwrap();
        assert_eq!(c.chaincode_id, "cc:2");
        assert_eq!(c.tls, None);
    }

    #[test]
    fn flags_win_and_errors_are_clear() {
        let args = ServerArgs {
            address: Some("127.0.0.1:7052".into()),
            chaincode_id: Some("flag:1".into()),
            ..Default::default()
        };
        let c = ServerConfig::resolve(args, env(&[("CHAINCODE_ID", "env:1")])).unwrap();
        assert_eq!(c.chaincode_id, "flag:1");

        let err = ServerConfig::resolve(ServerArgs::default(), env(&[("CHAINCODE_ID", "x")]))
            .unwrap_err();
        assert!(err.to_string().contains("CHAINCODE_SERVER_ADDRESS"));
        let err = ServerConfig::resolve(
            ServerArgs::default(),
            env(&[
                ("CHAINCODE_SERVER_ADDRESS", "a:1"),
                ("CHAINCODE_ID", "x"),
                ("CHAINCODE_TLS_DISABLED", "false"),
            ]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("CHAINCODE_TLS_KEY"));
        let err = ServerConfig::resolve(
            ServerArgs::default(),
            env(&[
                ("CHAINCODE_SERVER_ADDRESS", "a:1"),
                ("CHAINCODE_ID", "x"),
                ("CHAINCODE_TLS_DISABLED", "maybe"),
            ]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("true or false"));
    }

    #[test]
    fn flags_parse_with_clap() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            server: ServerArgs,
        }
        let cli = Cli::parse_from([
            "cc",
            "--address",
            "0.0.0.0:9999",
            "--chaincode-id",
            "a:b",
            "--tls-disabled",
            "true",
        ]);
        assert_eq!(cli.server.address.as_deref(), Some("0.0.0.0:9999"));
        assert_eq!(cli.server.tls_disabled, Some(true));
    }
}
