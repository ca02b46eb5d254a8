//! The grant lifecycle as explicit states.
//!
//! ```text
//!                 ┌──────────── withdraw ───────────┐
//!   NotYetValid ──(time)──> Active ──spend (last use)──> Spent
//!        │                   │  └─ wrong code ×5 ──> Locked
//!        └─ withdraw ─> Withdrawn <─ withdraw ─┘
//!                        Active ──(time)──> Expired
//! ```
//!
//! The stored [`GrantRecord`] keeps the persistent status (active, spent, withdrawn, locked);
//! time-dependent states (not yet valid, expired) are derived from the transaction timestamp by
//! [`GrantRecord::state_at`], because a transaction that fails is never committed, so "expired"
//! cannot be written at the moment it happens. Each state is its own type and only the states
//! that allow a move have a method for it: spending a withdrawn grant does not compile.

use crate::code::MAX_CODE_ATTEMPTS;
use crate::error::{ContractError, ErrorCode};
use crate::grant::{Grant, GrantId};
use serde::{Deserialize, Serialize};

/// The persistent status of a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantStatus {
    /// Usable (subject to its time window).
    Active,
    /// All uses consumed.
    Spent,
    /// Withdrawn by the holder.
    Withdrawn,
    /// Locked after too many wrong codes.
    Locked,
}

/// A transaction that changed a grant: its id and timestamp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxMark {
    /// Fabric transaction id.
    pub tx_id: String,
    /// Transaction timestamp (Unix seconds).
    pub at: i64,
}

/// The public grant record stored under the grant's own key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRecord {
    /// The grant id.
    pub id: GrantId,
    /// The signed grant.
    pub grant: Grant,
    /// The holder's signature (hex DER).
    pub signature: String,
    /// The licence's issuer, whose peers hold the code salt and must endorse verifies.
    pub issuer_msp: String,
    /// Persistent status.
    pub status: GrantStatus,
    /// Uses left.
    pub uses_left: u32,
    /// Wrong codes so far.
    pub failed_attempts: u32,
    /// The authorising transaction.
    pub authorized: TxMark,
    /// The last successful verify (opens the retrieval window).
    pub last_verified: Option<TxMark>,
    /// The transaction that made the grant spent, withdrawn or locked.
    pub closed: Option<TxMark>,
}

impl GrantRecord {
    /// A fresh record for a grant just authorised.
    pub fn new(
        id: GrantId,
        grant: Grant,
        signature: String,
        issuer_msp: String,
        authorized: TxMark,
    ) -> Self {
        let uses_left = grant.uses;
        Self {
            id,
            grant,
            signature,
            issuer_msp,
            status: GrantStatus::Active,
            uses_left,
            failed_attempts: 0,
            authorized,
            last_verified: None,
            closed: None,
        }
    }

    /// The grant's state at time `now` (Unix seconds).
    pub fn state_at(self, now: i64) -> GrantState {
        match self.status {
            GrantStatus::Spent => GrantState::Spent(SpentGrant(self)),
            GrantStatus::Withdrawn => GrantState::Withdrawn(WithdrawnGrant(self)),
            GrantStatus::Locked => GrantState::Locked(LockedGrant(self)),
            GrantStatus::Active if now > self.grant.not_after => {
                GrantState::Expired(ExpiredGrant(self))
            }
            GrantStatus::Active if now < self.grant.not_before => {
                GrantState::NotYetValid(PendingGrant(self))
            }
            GrantStatus::Active => GrantState::Active(ActiveGrant(self)),
        }
    }
}

/// A grant's state at a given time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantState {
    /// Before `not_before`.
    NotYetValid(PendingGrant),
    /// Usable now.
    Active(ActiveGrant),
    /// No uses left.
    Spent(SpentGrant),
    /// Withdrawn by the holder.
    Withdrawn(WithdrawnGrant),
    /// After `not_after`.
    Expired(ExpiredGrant),
    /// Locked after wrong codes.
    Locked(LockedGrant),
}

impl GrantState {
    /// The state's name as reported to callers.
    pub fn name(&self) -> &'static str {
        match self {
            Self::NotYetValid(_) => "not_yet_valid",
            Self::Active(_) => "active",
            Self::Spent(_) => "spent",
            Self::Withdrawn(_) => "withdrawn",
            Self::Expired(_) => "expired",
            Self::Locked(_) => "locked",
        }
    }

    /// The record, whatever the state.
    pub fn record(&self) -> &GrantRecord {
        match self {
            Self::NotYetValid(g) => &g.0,
            Self::Active(g) => &g.0,
            Self::Spent(g) => &g.0,
            Self::Withdrawn(g) => &g.0,
            Self::Expired(g) => &g.0,
            Self::Locked(g) => &g.0,
        }
    }

    /// The usable grant, or the typed error saying why it is not usable.
    pub fn require_active(self) -> Result<ActiveGrant, ContractError> {
        let id = self.record().id.clone();
        let (code, why) = match self {
            Self::Active(g) => return Ok(g),
            Self::NotYetValid(_) => (ErrorCode::GrantNotYetValid, "is not valid yet"),
            Self::Spent(_) => (ErrorCode::GrantSpent, "has no uses left"),
            Self::Withdrawn(_) => (ErrorCode::GrantWithdrawn, "was withdrawn by the holder"),
            Self::Expired(_) => (ErrorCode::GrantExpired, "has expired"),
            Self::Locked(_) => (
                ErrorCode::GrantLocked,
                "is locked after too many wrong codes",
            ),
        };
        Err(ContractError::new(code, format!("grant {id} {why}")))
    }

    /// Withdraws the grant if its state allows it (not yet valid or active).
    pub fn withdraw(self, mark: TxMark) -> Result<GrantRecord, ContractError> {
        match self {
            Self::NotYetValid(g) => Ok(g.withdraw(mark)),
            other => Ok(other.require_active()?.withdraw(mark)),
        }
    }
}

/// A grant before its window opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingGrant(GrantRecord);

impl PendingGrant {
    /// The holder withdraws it.
    pub fn withdraw(self, mark: TxMark) -> GrantRecord {
        close(self.0, GrantStatus::Withdrawn, mark)
    }
}

/// A usable grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveGrant(GrantRecord);

/// What a wrong code did to an active grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrongCodeOutcome {
    /// The updated record (still active, or locked).
    pub record: GrantRecord,
    /// Wrong codes still tolerated before the grant locks (0 when it just locked).
    pub attempts_left: u32,
}

impl ActiveGrant {
    /// The record.
    pub fn record(&self) -> &GrantRecord {
        &self.0
    }

    /// Consumes one use; the grant becomes spent when none are left.
    pub fn spend(self, mark: TxMark) -> GrantRecord {
        let mut r = self.0;
        r.uses_left = r.uses_left.saturating_sub(1);
        r.last_verified = Some(mark.clone());
        if r.uses_left == 0 {
            r.status = GrantStatus::Spent;
            r.closed = Some(mark);
        }
        r
    }

    /// Counts a wrong code; the [`MAX_CODE_ATTEMPTS`]-th locks the grant.
    pub fn wrong_code(self, mark: TxMark) -> WrongCodeOutcome {
        let mut r = self.0;
        r.failed_attempts = r.failed_attempts.saturating_add(1);
        let attempts_left = MAX_CODE_ATTEMPTS.saturating_sub(r.failed_attempts);
        if attempts_left == 0 {
            r.status = GrantStatus::Locked;
            r.closed = Some(mark);
        }
        WrongCodeOutcome {
            record: r,
            attempts_left,
        }
    }

    /// The holder withdraws it.
    pub fn withdraw(self, mark: TxMark) -> GrantRecord {
        close(self.0, GrantStatus::Withdrawn, mark)
    }
}

fn close(mut r: GrantRecord, status: GrantStatus, mark: TxMark) -> GrantRecord {
    r.status = status;
    r.closed = Some(mark);
    r
}

/// A grant with no uses left (terminal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpentGrant(GrantRecord);
/// A withdrawn grant (terminal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithdrawnGrant(GrantRecord);
/// An expired grant (terminal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredGrant(GrantRecord);
/// A grant locked after wrong codes (terminal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedGrant(GrantRecord);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::code::HolderSecret;
    use crate::grant::{GrantDraft, Nonce};
    use crate::licence_id::LicenceId;

    fn record(uses: u32) -> GrantRecord {
        let g = GrantDraft {
            channel: "c".into(),
            licence_id: LicenceId::build("IDC", "PSB", "1").unwrap(),
            grantee_msp: "ServiceCentreMSP".into(),
            matter: "M1".into(),
            fields: vec!["name".into()],
            not_before: 100,
            not_after: 200,
            uses,
            nonce: Nonce::new(vec![1; 16]).unwrap(),
        }
        .seal(&HolderSecret::new(vec![9; 16]).unwrap())
        .unwrap()
        .grant;
        GrantRecord::new(g.id(), g, "00".into(), "PublicSecurityMSP".into(), mark(1))
    }

    fn mark(at: i64) -> TxMark {
        TxMark {
            tx_id: format!("tx{at}"),
            at,
        }
    }

    fn code(state: GrantState) -> ErrorCode {
        state.require_active().unwrap_err().code
    }

    #[test]
    fn time_window() {
        assert_eq!(code(record(1).state_at(99)), ErrorCode::GrantNotYetValid);
        assert!(record(1).state_at(100).require_active().is_ok());
        assert!(record(1).state_at(200).require_active().is_ok());
        assert_eq!(code(record(1).state_at(201)), ErrorCode::GrantExpired);
    }

    #[test]
    fn uses_are_spent() {
        let r = record(2)
            .state_at(150)
            .require_active()
            .unwrap()
            .spend(mark(150));
        assert_eq!((r.status, r.uses_left), (GrantStatus::Active, 1));
        let r = r.state_at(151).require_active().unwrap().spend(mark(151));
        assert_eq!(r.status, GrantStatus::Spent);
        assert_eq!(r.closed, Some(mark(151)));
        assert_eq!(code(r.state_at(152)), ErrorCode::GrantSpent);
    }

    #[test]
    fn lockout_after_five_wrong_codes() {
        let mut r = record(1);
        for expected_left in (0..MAX_CODE_ATTEMPTS).rev() {
            let out = r
                .state_at(150)
                .require_active()
                .unwrap()
                .wrong_code(mark(150));
            assert_eq!(out.attempts_left, expected_left);
            r = out.record;
        }
        assert_eq!(r.status, GrantStatus::Locked);
        assert_eq!(code(r.state_at(150)), ErrorCode::GrantLocked);
    }

    #[test]
    fn withdrawal() {
        let r = record(1).state_at(50).withdraw(mark(50)).unwrap();
        assert_eq!(r.status, GrantStatus::Withdrawn);
        assert_eq!(code(r.clone().state_at(150)), ErrorCode::GrantWithdrawn);
        assert_eq!(
            r.state_at(150).withdraw(mark(150)).unwrap_err().code,
            ErrorCode::GrantWithdrawn
        );
        let spent = record(1)
            .state_at(150)
            .require_active()
            .unwrap()
            .spend(mark(150));
        assert_eq!(
            spent.state_at(150).withdraw(mark(151)).unwrap_err().code,
            ErrorCode::GrantSpent
        );
    }
}
