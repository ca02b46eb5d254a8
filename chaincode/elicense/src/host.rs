//! Hosting the licence chaincode inside another process: the CLI and the SDK's tests start it
//! next to an embedded network, which then dials it as a peer dials a CCaaS chaincode.
//!
//! ```no_run
//! # async fn demo() -> Result<(), elicense_chaincode::host::HostError> {
//! use elicense_chaincode::host::{HostOptions, HostedChaincode};
//! // Port 0: a free port on 127.0.0.1.
//! let cc = HostedChaincode::start(HostOptions::new("elicense_1.0:3f1c…")).await?;
//! println!("connection.json address: {}", cc.address());
//! cc.stop().await?;
//! # Ok(()) }
//! ```
//!
//! The server is the same as the `elicense-chaincode` binary's: REGISTER with the package ID, the
//! whole contract, a peer that reconnects is served again. It must be started inside a Tokio
//! runtime and runs on that runtime's workers.

use std::net::{Ipv4Addr, SocketAddr};

use fabric_chaincode::server::{ChaincodeServer, RunningServer, ServerConfig, TlsFiles};

use crate::{router, Settings};

/// Why the chaincode could not be hosted or stopped.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The package ID is empty (peers route to a CCaaS chaincode by it).
    #[error("a chaincode package ID is required")]
    NoPackageId,
    /// Binding the port or reading TLS files failed, or the server ended with an error.
    #[error("chaincode server: {0}")]
    Server(#[from] fabric_chaincode::Error),
}

/// How to host the chaincode.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// The package ID (`label:hash`) the peer knows the chaincode by.
    pub package_id: String,
    /// The port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Deployment settings (the regulator's MSP ID).
    pub settings: Settings,
    /// TLS (and mutual TLS) files, when the peer dials with TLS.
    pub tls: Option<TlsFiles>,
}

impl HostOptions {
    /// Options for `package_id` on a free port, default settings, no TLS.
    pub fn new(package_id: impl Into<String>) -> Self {
        HostOptions {
            package_id: package_id.into(),
            port: 0,
            settings: Settings::default(),
            tls: None,
        }
    }

    /// Listens on this port of 127.0.0.1.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Uses these deployment settings.
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// Serves TLS with these files.
    pub fn tls(mut self, tls: TlsFiles) -> Self {
        self.tls = Some(tls);
        self
    }
}

/// The licence chaincode served in this process; dropping it stops the server too (without
/// waiting for it to end).
pub struct HostedChaincode {
    server: RunningServer,
    package_id: String,
}

impl HostedChaincode {
    /// Binds 127.0.0.1 and starts serving in the background.
    pub async fn start(options: HostOptions) -> Result<Self, HostError> {
        if options.package_id.trim().is_empty() {
            return Err(HostError::NoPackageId);
        }
        let config = ServerConfig {
            address: SocketAddr::from((Ipv4Addr::LOCALHOST, options.port)).to_string(),
            chaincode_id: options.package_id.clone(),
            tls: options.tls,
        };
        let server = ChaincodeServer::new(config, router(options.settings))
            .start()
            .await?;
        tracing::info!(address = %server.local_addr(), package_id = %options.package_id, "licence chaincode hosted in-process");
        Ok(HostedChaincode {
            server,
            package_id: options.package_id,
        })
    }

    /// The bound address (`127.0.0.1:<port>`), for the package's `connection.json`.
    pub fn address(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The package ID the chaincode registers with.
    pub fn package_id(&self) -> &str {
        &self.package_id
    }

    /// Stops the server: closes the peers' streams and waits until it has ended.
    pub async fn stop(self) -> Result<(), HostError> {
        Ok(self.server.shutdown().await?)
    }
}
