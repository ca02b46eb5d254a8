//! The shim's error type: one enum whose variants say who failed (the caller's arguments, the
//! peer, the connection, the wire format) so a contract can act on them.

/// Everything the chaincode API can fail with.
///
/// `Display` gives the message the official shims give for the same failure, so text that ends
/// up in a `Response.message` (and hence in the client's "chaincode response 500, …") reads the
/// same as under the Go shim.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// An argument the chaincode passed is invalid (empty key, bad composite key part, …).
    #[error("{0}")]
    InvalidArgument(String),
    /// The peer answered a request with an ERROR message; the text is the peer's payload.
    #[error("{0}")]
    Peer(String),
    /// The peer answered with a message type that the request does not allow.
    #[error("[{txid}] incorrect chaincode message {got} received. Expecting RESPONSE or ERROR")]
    UnexpectedMessage {
        /// The first characters of the transaction ID, as the Go shim logs it.
        txid: String,
        /// The message type received.
        got: String,
    },
    /// The stream to the peer closed before the answer arrived.
    #[error("connection to the peer closed")]
    ConnectionClosed,
    /// Bytes from the peer (or a proposal) could not be decoded.
    #[error("failed to decode {what}: {detail}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// The decoder's message.
        detail: String,
    },
    /// The operation is not possible in this transaction (for example a private data query
    /// after a write, or a feature the state database does not offer).
    #[error("{0}")]
    Unsupported(String),
    /// The iterator was used after it had been exhausted or closed.
    #[error("no such key")]
    IteratorExhausted,
    /// The creator identity could not be parsed.
    #[error("client identity: {0}")]
    Identity(String),
    /// Server configuration (address, TLS files, package ID) is missing or invalid.
    #[error("configuration: {0}")]
    Config(String),
}

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }

    #[allow(dead_code)] // used by the peer-backed stub
    pub(crate) fn decode(what: &'static str, err: impl std::fmt::Display) -> Self {
        Error::Decode {
            what,
            detail: err.to_string(),
        }
    }
}

/// The shim's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
