//! Errors in the command line itself (a missing party name, an unknown `--format`) that clap
//! cannot see: `tessera` exits 2 for them, as for clap's own (docs/cli.md, "Exit status").

use std::fmt;

/// A command line that is wrong; the message names the flag and what it takes.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A usage error as an `anyhow::Error`.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// Whether `e` (or one of its causes) is a usage error.
pub fn is_usage(e: &anyhow::Error) -> bool {
    e.chain()
        .any(|cause| cause.downcast_ref::<UsageError>().is_some())
}
