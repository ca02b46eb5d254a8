//! Exit codes: one per failure class, stable so scripts can branch on them.
//!
//! | code | class        | meaning                                                              |
//! |------|--------------|----------------------------------------------------------------------|
//! | 0    | success      | the command did what it was asked                                    |
//! | 1    | internal     | an unexpected failure (a bug, or an I/O error on local files)        |
//! | 2    | usage        | bad arguments, options, configuration or input files                 |
//! | 3    | not found    | the licence, grant, block, identity or file named does not exist,    |
//! |      |              | or no peer serves the chaincode on the channel named                 |
//! | 4    | denied       | the caller's role or organisation may not do this, or a signature    |
//! |      |              | does not verify                                                      |
//! | 5    | conflict     | already exists, or a concurrent change won (MVCC); retrying may help  |
//! | 6    | rule failed  | a licence rule refused the request: wrong code, grant spent, locked, |
//! |      |              | expired or withdrawn, licence suspended or revoked, field mismatch,  |
//! |      |              | or the transaction was committed invalid                             |
//! | 7    | network      | a peer, orderer or CA could not be reached or timed out              |

use std::process::ExitCode;

/// The class of a failure, which decides the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// An unexpected failure.
    Internal,
    /// Bad arguments, configuration or input.
    Usage,
    /// Something named does not exist.
    NotFound,
    /// Not allowed, or a signature does not verify.
    Denied,
    /// Already exists or lost a concurrent race.
    Conflict,
    /// A licence rule refused the request.
    RuleFailed,
    /// A remote endpoint was unreachable or timed out.
    Network,
}

impl Class {
    /// The process exit code for this class.
    pub fn code(self) -> u8 {
        match self {
            Class::Internal => 1,
            Class::Usage => 2,
            Class::NotFound => 3,
            Class::Denied => 4,
            Class::Conflict => 5,
            Class::RuleFailed => 6,
            Class::Network => 7,
        }
    }

    /// A stable lowercase name, used in JSON error output.
    pub fn name(self) -> &'static str {
        match self {
            Class::Internal => "internal",
            Class::Usage => "usage",
            Class::NotFound => "not_found",
            Class::Denied => "denied",
            Class::Conflict => "conflict",
            Class::RuleFailed => "rule_failed",
            Class::Network => "network",
        }
    }
}

impl From<Class> for ExitCode {
    fn from(class: Class) -> Self {
        ExitCode::from(class.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_documented() {
        let all = [
            Class::Internal,
            Class::Usage,
            Class::NotFound,
            Class::Denied,
            Class::Conflict,
            Class::RuleFailed,
            Class::Network,
        ];
        let mut codes: Vec<u8> = all.iter().map(|c| c.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes, vec![1, 2, 3, 4, 5, 6, 7]);
        let doc = include_str!("exit.rs");
        for c in all {
            assert!(
                doc.contains(&format!("| {}    |", c.code())),
                "exit code {} is not in the table",
                c.code()
            );
        }
    }
}
