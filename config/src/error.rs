//! Errors of the control plane: what is wrong, and where when it came from a
//! file (`SOURCE:LINE: problem`).

use std::fmt;

/// A refused command or rules change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// File name (or `-` for stdin) and 1-based line, when the input had lines.
    pub at: Option<(String, usize)>,
    /// What is wrong, in the operator's words.
    pub problem: String,
}

impl Error {
    /// Make an error with no location.
    pub fn new(problem: impl Into<String>) -> Self {
        Self {
            at: None,
            problem: problem.into(),
        }
    }

    /// Attach the source and line the error came from.
    pub fn at(mut self, source: &str, line: usize) -> Self {
        self.at = Some((source.to_string(), line));
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.at {
            Some((src, line)) => write!(f, "{src}:{line}: {}", self.problem),
            None => f.write_str(&self.problem),
        }
    }
}

impl std::error::Error for Error {}
