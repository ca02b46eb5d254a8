//! The CLI's error: a class (which decides the exit code), what failed, and a hint.

use crate::exit::Class;

/// A failure reported to the user.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    /// The failure class.
    pub class: Class,
    /// What failed, naming the rule where a rule refused.
    pub message: String,
    /// What the user can do about it.
    pub hint: Option<String>,
    /// A machine-readable code from the layer below (e.g. a contract error code).
    pub code: Option<String>,
}

impl CliError {
    /// A failure of the given class.
    pub fn new(class: Class, message: impl Into<String>) -> Self {
        CliError {
            class,
            message: message.into(),
            hint: None,
            code: None,
        }
    }

    /// A usage failure (exit code 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Class::Usage, message)
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds a machine-readable code.
    pub fn code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Prefixes the message with what was being done.
    pub fn context(mut self, doing: impl std::fmt::Display) -> Self {
        self.message = format!("{doing}: {}", self.message);
        self
    }

    /// The JSON form printed on standard error with `-o json`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "error": {
                "class": self.class.name(),
                "exit_code": self.class.code(),
                "code": self.code,
                "message": self.message,
                "hint": self.hint,
            }
        })
    }
}

/// Adds context to fallible operations on local files and the like.
pub trait Context<T> {
    /// Turns an error into a [`CliError`] of `class`, prefixed by `doing`.
    fn or_fail(self, class: Class, doing: impl std::fmt::Display) -> Result<T, CliError>;
}

impl<T, E: std::fmt::Display> Context<T> for Result<T, E> {
    fn or_fail(self, class: Class, doing: impl std::fmt::Display) -> Result<T, CliError> {
        self.map_err(|e| CliError::new(class, format!("{doing}: {e}")))
    }
}
