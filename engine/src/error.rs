//! Error kinds of the normative semantics (DESIGN.md), shared by engine, model and traces.

use std::fmt;

/// The error kinds a trace can name: `inval range exists nomem busy budget`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    Inval,
    Range,
    Exists,
    Nomem,
    Busy,
    Budget,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 6] = [
        ErrorKind::Inval,
        ErrorKind::Range,
        ErrorKind::Exists,
        ErrorKind::Nomem,
        ErrorKind::Busy,
        ErrorKind::Budget,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Inval => "inval",
            ErrorKind::Range => "range",
            ErrorKind::Exists => "exists",
            ErrorKind::Nomem => "nomem",
            ErrorKind::Busy => "busy",
            ErrorKind::Budget => "budget",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::error::Error for ErrorKind {}

/// A map that stopped: the kind, and the bytes mapped before the stop (they stay mapped).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind} after mapping {mapped:#x} bytes")]
pub struct MapError {
    pub kind: ErrorKind,
    pub mapped: u64,
}

impl MapError {
    pub fn new(kind: ErrorKind, mapped: u64) -> Self {
        MapError { kind, mapped }
    }
}
