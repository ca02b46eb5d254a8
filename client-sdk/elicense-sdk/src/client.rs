//! [`LicenceClient`]: one call per licence flow, over a Fabric Gateway [`Contract`].
//!
//! Every method is one contract transaction (DESIGN.md §3.3): submits wait for the commit and
//! report its block; evaluates never reach the orderer. Secrets (field values, salts, codes, code
//! salts) travel only as transient data, so they never enter a block.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use elicense_model::{
    AuditUsageRequest, Catalogue, CodeSalt, FieldOpening, GrantId, GrantQuery, GrantRecord,
    HistoryEntry, HolderUsageRequest, IssuePrivate, IssueRequest, LicenceEvent, LicenceId,
    LicencePrivate, LicenceQuery, LicenceRecord, LicenceType, Presentation, RetrieveResult, Salt,
    SignedGrant, SignedTrailRequest, SignedWithdrawal, StatusRequest, TypeQuery, UsagePage,
    UsageRecord, VerifyOutcome, VerifyRequest, VerifyResult, SALT_LEN, TRANSIENT_CODE_SALT,
    TRANSIENT_LICENCE, TRANSIENT_PRESENTATION,
};
use fabric_client::gateway::{
    BlockEventsKind, ChaincodeEvent, ChaincodeEventStream, CommitError, CommitWatcher, Connection,
    ConnectionOptions, Endpoint, EventsOptions, GatewayOptions,
};
use fabric_client::profile::ConnectionProfile;
use fabric_client::{Contract, Gateway, GatewayError, SigningIdentity};
use rand::RngCore as _;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Failure, LicenceError};
use crate::holder::{Credential, HolderGrant};

/// The chaincode name the licence contract is deployed under on every channel.
pub const CHAINCODE_NAME: &str = "elicense";

/// A committed transaction's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed<T> {
    /// What the contract returned.
    pub value: T,
    /// The transaction.
    pub transaction_id: String,
    /// The block that holds it.
    pub block_number: u64,
}

/// A licence to issue: its public part and every field's value (salts are added by the SDK).
/// `Debug` names the fields but never prints their values.
#[derive(Clone, PartialEq, Eq)]
pub struct NewLicence {
    /// Identifier, type, holder key and validity.
    pub request: IssueRequest,
    /// Field values by field name (UTF-8, exactly as the holder will present them).
    pub values: BTreeMap<String, String>,
}

impl std::fmt::Debug for NewLicence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewLicence")
            .field("request", &self.request)
            .field("fields", &self.values.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A licence issued: the record as committed and the holder's credential.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The public licence record.
    pub record: LicenceRecord,
    /// The credential to hand to the holder (values and salts; keep it private).
    pub credential: Credential,
    /// The issuing transaction.
    pub transaction_id: String,
    /// The block that holds it.
    pub block_number: u64,
}

/// A successful verify: the grant was used, every presented field matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// The grant used.
    pub grant_id: GrantId,
    /// The licence.
    pub licence_id: LicenceId,
    /// The matter handled.
    pub matter: String,
    /// Presented fields, all matched (names only).
    pub matched: Vec<String>,
    /// Granted fields not presented; their values can be retrieved until `retrieve_until`.
    pub not_presented: Vec<String>,
    /// Uses left on the grant.
    pub uses_left: u32,
    /// Until when [`LicenceClient::retrieve`] is open (Unix seconds, inclusive).
    pub retrieve_until: i64,
    /// The verify transaction.
    pub transaction_id: String,
    /// The block that holds it.
    pub block_number: u64,
}

/// How [`LicenceClient::issue_bulk`] pipelines and retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkOptions {
    /// Transactions in flight at once (default 16).
    pub concurrency: usize,
    /// Attempts per licence, the first included (default 5); only conflicts are retried.
    pub max_attempts: u32,
    /// Back-off before the first retry (default 50 ms); doubles per retry, with jitter.
    pub initial_backoff: Duration,
    /// Longest back-off (default 2 s).
    pub max_backoff: Duration,
}

impl Default for BulkOptions {
    fn default() -> Self {
        BulkOptions {
            concurrency: 16,
            max_attempts: 5,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
        }
    }
}

/// One licence's outcome in a bulk issuance.
#[derive(Debug)]
pub struct BulkItem {
    /// Position in the input.
    pub index: usize,
    /// The licence identifier.
    pub licence_id: LicenceId,
    /// Attempts made (more than one after conflicts).
    pub attempts: u32,
    /// The issued licence or why it failed.
    pub outcome: Result<Issued, LicenceError>,
    /// From the first endorsement to the outcome, retries included.
    pub elapsed: Duration,
}

/// One contract event: its name (see [`elicense_model::events`]) and its identifiers-only payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenceEventRecord {
    /// The event name, e.g. `LicenceIssued`, `GrantVerified`.
    pub name: String,
    /// What it concerns (identifiers only, never personal data).
    pub event: LicenceEvent,
    /// The block that holds the transaction.
    pub block_number: u64,
    /// The transaction that emitted it.
    pub transaction_id: String,
}

impl LicenceEventRecord {
    /// Decodes a chaincode event of the licence contract.
    pub fn from_chaincode_event(e: ChaincodeEvent) -> Result<Self, LicenceError> {
        let event = serde_json::from_slice(&e.payload).map_err(|err| {
            LicenceError::InvalidResponse(format!("event {}: {err}", e.event_name))
        })?;
        Ok(LicenceEventRecord {
            name: e.event_name,
            event,
            block_number: e.block_number,
            transaction_id: e.transaction_id,
        })
    }
}

/// A stream of the licence contract's events (resumable with a checkpoint, see
/// [`fabric_client::gateway::Checkpointer`]).
#[derive(Debug)]
pub struct LicenceEventStream {
    inner: ChaincodeEventStream,
}

impl LicenceEventStream {
    /// The next event, `None` when the stream ends.
    pub async fn next(&mut self) -> Option<Result<LicenceEventRecord, LicenceError>> {
        Some(match self.inner.next().await? {
            Ok(e) => LicenceEventRecord::from_chaincode_event(e),
            Err(e) => Err(e.into()),
        })
    }
}

/// Salts every field with 32 bytes (256 bits) from the operating system's CSPRNG.
pub fn salt_values(values: &BTreeMap<String, String>) -> LicencePrivate {
    let fields = values
        .iter()
        .map(|(name, value)| {
            let mut bytes = [0u8; SALT_LEN];
            // A CSPRNG seeded from the OS, without a system call per salt.
            rand::thread_rng().fill_bytes(&mut bytes);
            (
                name.clone(),
                FieldOpening {
                    value: value.clone(),
                    salt: Salt::new(bytes),
                },
            )
        })
        .collect();
    LicencePrivate { fields }
}

/// The typed licence API over a Gateway contract (cheap to clone; clones share the connection).
#[derive(Clone, Debug)]
pub struct LicenceClient {
    contract: Contract,
    extra_endorsers: Arc<[String]>,
    commits: Option<CommitWatcher>,
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Every request type serialises (strings, integers, maps with string keys).
    serde_json::to_vec(value).unwrap_or_else(|_| unreachable!("request types always serialise"))
}

fn parse<R: DeserializeOwned>(function: &str, bytes: &[u8]) -> Result<R, LicenceError> {
    serde_json::from_slice(bytes)
        .map_err(|e| LicenceError::InvalidResponse(format!("{function}: {e}")))
}

impl LicenceClient {
    /// A client for the licence contract behind `contract` (usually
    /// `network.contract(CHAINCODE_NAME)`).
    pub fn new(contract: Contract) -> Self {
        LicenceClient {
            contract,
            extra_endorsers: Arc::from(Vec::new()),
            commits: None,
        }
    }

    /// Connects as `signing` to the peers of its organisation listed in a common connection
    /// profile (in the profile's order, for fail-over) and opens the licence contract
    /// ([`CHAINCODE_NAME`]) on `channel`.
    pub fn connect(
        profile: &ConnectionProfile,
        signing: &SigningIdentity,
        channel: &str,
    ) -> Result<Self, LicenceError> {
        let msp_id = signing.identity().msp_id();
        let organization = profile
            .organizations
            .iter()
            .find(|(_, org)| org.mspid == msp_id)
            .map(|(name, _)| name.clone())
            .ok_or_else(|| {
                LicenceError::Setup(format!(
                    "the profile has no organisation with MSP ID {msp_id}"
                ))
            })?;
        let endpoints: Vec<Endpoint> = profile
            .organization_peers(&organization)
            .map_err(|e| LicenceError::Setup(e.to_string()))?
            .into_iter()
            .map(Endpoint::from)
            .collect();
        let connection = Connection::new(endpoints, &ConnectionOptions::default())?;
        let gateway = Gateway::for_signing_identity(connection, signing, GatewayOptions::default());
        Ok(Self::new(gateway.network(channel).contract(CHAINCODE_NAME)))
    }

    /// Adds organisations to every verify's endorsers, when the chaincode's endorsement policy
    /// needs more than the issuer's peer (by default a verify is endorsed by the issuer alone,
    /// the only organisation holding the code salt).
    pub fn with_verify_endorsers<I, S>(mut self, msp_ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.extra_endorsers = msp_ids.into_iter().map(Into::into).collect();
        self
    }

    /// A clone whose submits learn their commit status from one filtered block stream of the
    /// channel, opened here, instead of a signed `CommitStatus` call each: cheaper when many
    /// transactions are in flight (see [`fabric_client::gateway::CommitWatcher`]).
    pub async fn with_commit_watcher(&self) -> Result<Self, LicenceError> {
        let watcher = self.contract.network().commit_watcher().await?;
        Ok(LicenceClient {
            commits: Some(watcher),
            ..self.clone()
        })
    }

    /// The Gateway contract.
    pub fn contract(&self) -> &Contract {
        &self.contract
    }

    /// The channel.
    pub fn channel(&self) -> &str {
        self.contract.network().name()
    }

    async fn evaluate<R: DeserializeOwned>(
        &self,
        function: &str,
        arg: Option<Vec<u8>>,
        targets: &[String],
    ) -> Result<R, LicenceError> {
        let mut builder = self.contract.new_proposal(function);
        if let Some(arg) = arg {
            builder = builder.arg(arg);
        }
        if !targets.is_empty() {
            builder = builder.endorsing_organizations(targets.iter().cloned());
        }
        let bytes = builder.evaluate().await?;
        parse(function, &bytes)
    }

    async fn submit<R: DeserializeOwned>(
        &self,
        function: &str,
        arg: Vec<u8>,
        transient: Vec<(&str, Vec<u8>)>,
        endorsers: &[String],
    ) -> Result<Committed<R>, LicenceError> {
        let mut builder = self.contract.new_proposal(function).arg(arg);
        for (key, value) in transient {
            builder = builder.transient(key, value);
        }
        if !endorsers.is_empty() {
            builder = builder.endorsing_organizations(endorsers.iter().cloned());
        }
        let transaction = builder.build()?.endorse().await?;
        let value = parse(function, transaction.result())?;
        let status = match &self.commits {
            Some(watcher) => transaction.submit_watched(watcher).await?,
            None => transaction.submit().await?.status().await?,
        };
        if !status.successful {
            return Err(GatewayError::Commit(CommitError {
                transaction_id: status.transaction_id,
                code: status.code,
                block_number: status.block_number,
            })
            .into());
        }
        Ok(Committed {
            value,
            transaction_id: status.transaction_id,
            block_number: status.block_number,
        })
    }

    // ---- catalogue ------------------------------------------------------------------------

    /// Every licence type of the channel's catalogue.
    pub async fn catalogue(&self) -> Result<Vec<LicenceType>, LicenceError> {
        self.evaluate("ListLicenceTypes", None, &[]).await
    }

    /// One licence type.
    pub async fn licence_type(&self, code: &str) -> Result<LicenceType, LicenceError> {
        let q = TypeQuery { code: code.into() };
        self.evaluate("GetLicenceType", Some(to_json(&q)), &[])
            .await
    }

    /// Adds or replaces a licence type (regulator admins only).
    pub async fn put_licence_type(
        &self,
        licence_type: &LicenceType,
    ) -> Result<Committed<LicenceType>, LicenceError> {
        self.submit("PutLicenceType", to_json(licence_type), vec![], &[])
            .await
    }

    /// Seeds the catalogue (regulator admins only).
    pub async fn init_catalogue(
        &self,
        catalogue: &Catalogue,
    ) -> Result<Committed<Vec<LicenceType>>, LicenceError> {
        self.submit("InitCatalogue", to_json(catalogue), vec![], &[])
            .await
    }

    // ---- issuance -------------------------------------------------------------------------

    /// Issues a licence: salts every value here, sends values and salts as transient data, and
    /// returns the committed record with the holder's credential (checked against the record's
    /// commitments).
    pub async fn issue(&self, licence: NewLicence) -> Result<Issued, LicenceError> {
        let private = salt_values(&licence.values);
        self.issue_salted(&licence.request, &private).await
    }

    /// Issues a licence whose openings (values and salts) are already chosen.
    pub async fn issue_salted(
        &self,
        request: &IssueRequest,
        private: &IssuePrivate,
    ) -> Result<Issued, LicenceError> {
        let committed: Committed<LicenceRecord> = self
            .submit(
                "Issue",
                to_json(request),
                vec![(TRANSIENT_LICENCE, to_json(private))],
                &[],
            )
            .await?;
        let credential = Credential::new(self.channel(), &committed.value, private.clone())
            .map_err(|e| {
                LicenceError::InvalidResponse(format!(
                    "issued record disagrees with the openings: {e}"
                ))
            })?;
        Ok(Issued {
            record: committed.value,
            credential,
            transaction_id: committed.transaction_id,
            block_number: committed.block_number,
        })
    }

    /// Issues many licences with up to `options.concurrency` transactions in flight, retrying
    /// each on MVCC or phantom read conflicts with exponential back-off; one result per input,
    /// in input order. Commit statuses come from one filtered block stream
    /// ([`LicenceClient::with_commit_watcher`]); where the peer will not open one, from a
    /// `CommitStatus` call per transaction.
    pub async fn issue_bulk(
        &self,
        licences: Vec<NewLicence>,
        options: &BulkOptions,
    ) -> Vec<BulkItem> {
        let watching = match &self.commits {
            Some(_) => None,
            None => self.with_commit_watcher().await.ok(),
        };
        let client = watching.as_ref().unwrap_or(self);
        let semaphore = Arc::new(tokio::sync::Semaphore::new(options.concurrency.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        for (index, licence) in licences.into_iter().enumerate() {
            let permit = Arc::clone(&semaphore)
                .acquire_owned()
                .await
                .unwrap_or_else(|_| unreachable!("the semaphore is never closed"));
            let client = client.clone();
            let options = options.clone();
            tasks.spawn(async move {
                let _permit = permit;
                client.issue_with_retries(index, licence, &options).await
            });
        }
        let mut items = Vec::with_capacity(tasks.len());
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(item) => items.push(item),
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => unreachable!("bulk tasks are never cancelled: {e}"),
            }
        }
        items.sort_by_key(|i| i.index);
        items
    }

    async fn issue_with_retries(
        &self,
        index: usize,
        licence: NewLicence,
        options: &BulkOptions,
    ) -> BulkItem {
        // The same salts on every attempt: a retry is the same licence, not a new one.
        let private = salt_values(&licence.values);
        let started = Instant::now();
        let mut attempts = 0;
        let mut backoff = options.initial_backoff;
        loop {
            attempts += 1;
            let outcome = self.issue_salted(&licence.request, &private).await;
            let retry = matches!(&outcome, Err(e) if e.failure() == Failure::Conflict)
                && attempts < options.max_attempts.max(1);
            if !retry {
                return BulkItem {
                    index,
                    licence_id: licence.request.licence_id.clone(),
                    attempts,
                    outcome,
                    elapsed: started.elapsed(),
                };
            }
            // Full jitter in [backoff/2, backoff] keeps conflicting writers from re-colliding.
            let half = backoff / 2;
            let jitter =
                half.mul_f64(f64::from(rand::rngs::OsRng.next_u32()) / f64::from(u32::MAX));
            tokio::time::sleep(half + jitter).await;
            backoff = (backoff * 2).min(options.max_backoff);
        }
    }

    // ---- status ---------------------------------------------------------------------------

    async fn change_status(
        &self,
        function: &str,
        licence_id: &LicenceId,
        reason: &str,
    ) -> Result<Committed<LicenceRecord>, LicenceError> {
        let req = StatusRequest {
            licence_id: licence_id.clone(),
            reason: reason.into(),
        };
        self.submit(function, to_json(&req), vec![], &[]).await
    }

    /// Suspends an active licence (its issuer only); `reason` is public.
    pub async fn suspend(
        &self,
        licence_id: &LicenceId,
        reason: &str,
    ) -> Result<Committed<LicenceRecord>, LicenceError> {
        self.change_status("Suspend", licence_id, reason).await
    }

    /// Reinstates a suspended licence (its issuer only).
    pub async fn reinstate(
        &self,
        licence_id: &LicenceId,
        reason: &str,
    ) -> Result<Committed<LicenceRecord>, LicenceError> {
        self.change_status("Reinstate", licence_id, reason).await
    }

    /// Revokes a licence for good (its issuer only).
    pub async fn revoke(
        &self,
        licence_id: &LicenceId,
        reason: &str,
    ) -> Result<Committed<LicenceRecord>, LicenceError> {
        self.change_status("Revoke", licence_id, reason).await
    }

    // ---- grants ---------------------------------------------------------------------------

    /// Relays a holder's grant to the ledger, with its code salt as transient data. Submit it
    /// from the holder's side: whoever submits it sees the code salt.
    pub async fn authorize(
        &self,
        grant: &HolderGrant,
    ) -> Result<Committed<GrantRecord>, LicenceError> {
        self.authorize_signed(&grant.signed, &grant.code_salt).await
    }

    /// Relays a signed grant and its code salt.
    pub async fn authorize_signed(
        &self,
        signed: &SignedGrant,
        code_salt: &CodeSalt,
    ) -> Result<Committed<GrantRecord>, LicenceError> {
        self.submit(
            "Authorize",
            to_json(signed),
            vec![(TRANSIENT_CODE_SALT, code_salt.as_bytes().to_vec())],
            &[],
        )
        .await
    }

    /// Relays a holder's signed withdrawal: the grant is unusable from now on.
    pub async fn withdraw(
        &self,
        withdrawal: &SignedWithdrawal,
    ) -> Result<Committed<GrantRecord>, LicenceError> {
        self.submit("Withdraw", to_json(withdrawal), vec![], &[])
            .await
    }

    /// Uses a grant at the window: checks the code and the presented fields and spends one use.
    /// Endorsed by the issuer's peers (found by reading the grant), which hold the code salt.
    ///
    /// A wrong code commits (so it counts) and is reported as [`LicenceError::WrongCode`], or
    /// [`LicenceError::Locked`] when it locked the grant.
    pub async fn verify(
        &self,
        grant_id: &GrantId,
        matter: &str,
        presentation: &Presentation,
    ) -> Result<Verification, LicenceError> {
        let issuer = self.grant(grant_id).await?.issuer_msp;
        self.verify_with_issuer(&issuer, grant_id, matter, presentation)
            .await
    }

    /// [`Self::verify`] when the grant's issuer MSP is already known (saves one evaluate).
    pub async fn verify_with_issuer(
        &self,
        issuer_msp: &str,
        grant_id: &GrantId,
        matter: &str,
        presentation: &Presentation,
    ) -> Result<Verification, LicenceError> {
        let req = VerifyRequest {
            grant_id: grant_id.clone(),
            matter: matter.into(),
        };
        let mut endorsers = vec![issuer_msp.to_owned()];
        endorsers.extend(
            self.extra_endorsers
                .iter()
                .filter(|m| *m != issuer_msp)
                .cloned(),
        );
        let committed: Committed<VerifyResult> = self
            .submit(
                "Verify",
                to_json(&req),
                vec![(TRANSIENT_PRESENTATION, to_json(presentation))],
                &endorsers,
            )
            .await?;
        let r = committed.value;
        match r.outcome {
            VerifyOutcome::Verified {
                matched,
                not_presented,
                uses_left,
                retrieve_until,
            } => Ok(Verification {
                grant_id: r.grant_id,
                licence_id: r.licence_id,
                matter: r.matter,
                matched,
                not_presented,
                uses_left,
                retrieve_until,
                transaction_id: committed.transaction_id,
                block_number: committed.block_number,
            }),
            VerifyOutcome::WrongCode { attempts_left } => Err(LicenceError::WrongCode {
                attempts_left,
                transaction_id: committed.transaction_id,
            }),
            VerifyOutcome::Locked => Err(LicenceError::Locked {
                transaction_id: committed.transaction_id,
            }),
        }
    }

    /// After a verify, the granted field values from the issuer's peer (an evaluate: values
    /// never enter a block).
    pub async fn retrieve(&self, grant_id: &GrantId) -> Result<RetrieveResult, LicenceError> {
        let issuer = self.grant(grant_id).await?.issuer_msp;
        self.retrieve_with_issuer(&issuer, grant_id).await
    }

    /// [`Self::retrieve`] right after `verification` committed: the issuer's peer, which
    /// answers, may commit the verify's block a moment after the clerk's peer reported it, so a
    /// closed retrieval window is retried for up to about two seconds before it is reported.
    pub async fn retrieve_verified(
        &self,
        verification: &Verification,
    ) -> Result<RetrieveResult, LicenceError> {
        let issuer = self.grant(&verification.grant_id).await?.issuer_msp;
        let mut delay = Duration::from_millis(25);
        let mut waited = Duration::ZERO;
        loop {
            match self
                .retrieve_with_issuer(&issuer, &verification.grant_id)
                .await
            {
                Err(e)
                    if e.failure() == Failure::RetrieveWindowClosed
                        && waited < Duration::from_secs(2) =>
                {
                    tokio::time::sleep(delay).await;
                    waited += delay;
                    delay = (delay * 2).min(Duration::from_millis(400));
                }
                other => return other,
            }
        }
    }

    /// [`Self::retrieve`] when the grant's issuer MSP is already known.
    pub async fn retrieve_with_issuer(
        &self,
        issuer_msp: &str,
        grant_id: &GrantId,
    ) -> Result<RetrieveResult, LicenceError> {
        let q = GrantQuery {
            grant_id: grant_id.clone(),
        };
        self.evaluate("Retrieve", Some(to_json(&q)), &[issuer_msp.to_owned()])
            .await
    }

    /// Waits until this client's peer has committed block `block_number`.
    ///
    /// A commit status comes from the submitting client's peer; another organisation's peer
    /// may commit the same block a moment later. A window system that acts on a transaction
    /// another organisation just committed (e.g. a grant the holder's backend relayed) calls
    /// this with that transaction's block before reading, so it reads its own peer's state at
    /// that block or later.
    pub async fn wait_for_block(&self, block_number: u64) -> Result<(), LicenceError> {
        let mut blocks = self
            .contract
            .network()
            .block_events(
                BlockEventsKind::Filtered,
                &EventsOptions::start_block(block_number),
            )
            .await?;
        match blocks.next().await {
            Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(e.into()),
            None => Err(LicenceError::InvalidResponse(format!(
                "the block stream ended before block {block_number}"
            ))),
        }
    }

    /// Streams the contract's events from a block or a checkpoint.
    pub async fn events(
        &self,
        options: &EventsOptions<'_>,
    ) -> Result<LicenceEventStream, LicenceError> {
        let inner = self
            .contract
            .network()
            .chaincode_events(self.contract.chaincode_name(), options)
            .await?;
        Ok(LicenceEventStream { inner })
    }

    // ---- reads ----------------------------------------------------------------------------

    /// The public licence record.
    pub async fn licence(&self, licence_id: &LicenceId) -> Result<LicenceRecord, LicenceError> {
        let q = LicenceQuery {
            licence_id: licence_id.clone(),
        };
        self.evaluate("ReadLicence", Some(to_json(&q)), &[]).await
    }

    /// The public grant record.
    pub async fn grant(&self, grant_id: &GrantId) -> Result<GrantRecord, LicenceError> {
        let q = GrantQuery {
            grant_id: grant_id.clone(),
        };
        self.evaluate("ReadGrant", Some(to_json(&q)), &[]).await
    }

    /// Every version of a licence record, oldest first.
    pub async fn history(&self, licence_id: &LicenceId) -> Result<Vec<HistoryEntry>, LicenceError> {
        let q = LicenceQuery {
            licence_id: licence_id.clone(),
        };
        self.evaluate("LicenceHistory", Some(to_json(&q)), &[])
            .await
    }

    /// A page of the usage trail of the holder's own licence (holder-signed request).
    pub async fn holder_usage(
        &self,
        request: &SignedTrailRequest,
        page_size: Option<u32>,
        bookmark: &str,
    ) -> Result<UsagePage, LicenceError> {
        let req = HolderUsageRequest {
            signed: request.clone(),
            page_size,
            bookmark: bookmark.into(),
        };
        self.evaluate("HolderUsage", Some(to_json(&req)), &[]).await
    }

    /// The holder's whole usage trail, following bookmarks page by page (the signed request
    /// must stay fresh while the pages are read).
    pub async fn holder_usage_all(
        &self,
        request: &SignedTrailRequest,
        page_size: Option<u32>,
    ) -> Result<Vec<UsageRecord>, LicenceError> {
        let mut records = Vec::new();
        let mut bookmark = String::new();
        loop {
            let page = self.holder_usage(request, page_size, &bookmark).await?;
            records.extend(page.records);
            if page.bookmark.is_empty() || page.bookmark == bookmark {
                return Ok(records);
            }
            bookmark = page.bookmark;
        }
    }

    /// All usage, or one licence's, following bookmarks page by page (regulator auditors only).
    pub async fn audit_usage_all(
        &self,
        licence_id: Option<&LicenceId>,
        page_size: Option<u32>,
    ) -> Result<Vec<UsageRecord>, LicenceError> {
        let mut request = AuditUsageRequest {
            licence_id: licence_id.cloned(),
            page_size,
            bookmark: String::new(),
        };
        let mut records = Vec::new();
        loop {
            let page = self.audit_usage(&request).await?;
            records.extend(page.records);
            if page.bookmark.is_empty() || page.bookmark == request.bookmark {
                return Ok(records);
            }
            request.bookmark = page.bookmark;
        }
    }

    /// A page of all usage, or of one licence's (regulator auditors only).
    pub async fn audit_usage(
        &self,
        request: &AuditUsageRequest,
    ) -> Result<UsagePage, LicenceError> {
        self.evaluate("AuditUsage", Some(to_json(request)), &[])
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salts_are_full_width_random_and_open_their_values() {
        let values: BTreeMap<String, String> = [("name", "张三"), ("sex", "男")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let a = salt_values(&values);
        let b = salt_values(&values);
        assert_eq!(a.fields["name"].value, "张三");
        assert_ne!(a.fields["name"].salt, b.fields["name"].salt);
        assert_ne!(a.fields["name"].salt, a.fields["sex"].salt);
        assert_eq!(a.fields["sex"].salt.as_bytes().len(), 32);
        assert!(a.commitments()["name"].opens(&a.fields["name"].salt, "name", "张三"));
    }

    #[test]
    fn debug_output_never_carries_values() {
        let licence = NewLicence {
            request: IssueRequest {
                licence_id: LicenceId::build("IDC", "PSB", "1").unwrap(),
                licence_type: "ID_CARD".into(),
                holder_key: String::new(),
                not_before: 0,
                not_after: 1,
            },
            values: [("name".to_owned(), "张三".to_owned())]
                .into_iter()
                .collect(),
        };
        let text = format!("{licence:?}");
        assert!(text.contains("name") && !text.contains("张三"), "{text}");
        let private = salt_values(&licence.values);
        assert!(!format!("{private:?}").contains("张三"));
    }
}
