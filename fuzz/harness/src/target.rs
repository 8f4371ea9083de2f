//! The fuzz targets behind one trait, so a campaign, a report and the CLI treat them alike:
//! each takes the raw bytes its cargo-fuzz target takes and says whether they passed,
//! crashed (with a signature and, where it can, the readable trace), or did not decode.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::campaign::signature::{finding_kind, panic_signature, quietly, signature};
use crate::run::Crash;
use crate::trace::Trace;

/// The four targets, named as their cargo-fuzz binaries are.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum TargetName {
    Pagetable,
    Ioasid,
    Prealloc,
    QemuDiff,
}

impl TargetName {
    pub const ALL: [TargetName; 4] = [
        Self::Pagetable,
        Self::Ioasid,
        Self::Prealloc,
        Self::QemuDiff,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pagetable => "pagetable",
            Self::Ioasid => "ioasid",
            Self::Prealloc => "prealloc",
            Self::QemuDiff => "qemu_diff",
        }
    }

    /// Whether the target needs QEMU's SMMUv3 to run.
    pub fn needs_qemu(self) -> bool {
        self == Self::QemuDiff
    }

    /// The seed corpus folder under `corpus/` (qemu_diff takes the page-table op language).
    pub fn seeds(self) -> &'static str {
        match self {
            Self::QemuDiff => "pagetable",
            t => t.as_str(),
        }
    }
}

impl fmt::Display for TargetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one input did.
#[derive(Debug)]
pub enum Verdict {
    /// Not an input of this target (too few bytes to decode).
    Undecodable,
    /// Every oracle agreed; the trace the input produced, where the target returns one.
    Pass(Option<Trace>),
    Crash(Finding),
}

/// A crash: what deduplicates it, what it said, and how to reproduce it.
#[derive(Debug)]
pub struct Finding {
    /// One string per bug (crate::campaign::signature).
    pub signature: String,
    /// The oracle finding's kind, when an oracle found it.
    pub kind: Option<&'static str>,
    pub message: String,
    /// The trace up to the failing line, when the target could produce one.
    pub trace: Option<Trace>,
}

impl Finding {
    fn from_crash(c: Crash) -> Finding {
        let word = c.trace.lines.last().map_or("domain", |l| l.command.word());
        Finding {
            signature: signature(&c.kind, word),
            kind: finding_kind(&c.kind),
            message: c.kind.to_string(),
            trace: Some(c.trace),
        }
    }

    fn from_panic(msg: String) -> Finding {
        Finding {
            signature: panic_signature(&msg),
            kind: None,
            message: msg,
            trace: None,
        }
    }
}

/// Runs `data` as target `t`'s fuzz_target! body would, catching its panic.
pub fn run_bytes(t: TargetName, data: &[u8]) -> Verdict {
    let r = quietly(|| match t {
        TargetName::Pagetable => match crate::run::decode(data) {
            None => Verdict::Undecodable,
            Some(i) => from_result(crate::run::execute(&i)),
        },
        TargetName::Ioasid => match crate::ioasid::decode(data) {
            None => Verdict::Undecodable,
            Some(i) => from_result(crate::ioasid::execute(&i)),
        },
        TargetName::Prealloc => match crate::prealloc_run::decode_prealloc(data) {
            None => Verdict::Undecodable,
            Some(i) => from_result(crate::prealloc_run::execute_prealloc(&i).map(|(t, _)| t)),
        },
        // QEMU's executor reports through panics (it restarts a dead QEMU itself).
        TargetName::QemuDiff => match crate::run::decode(data) {
            None => Verdict::Undecodable,
            Some(_) => {
                crate::qemu::run_qemu_bytes(data);
                Verdict::Pass(None)
            }
        },
    });
    r.unwrap_or_else(|msg| Verdict::Crash(Finding::from_panic(msg)))
}

fn from_result(r: Result<Trace, Box<Crash>>) -> Verdict {
    match r {
        Ok(t) => Verdict::Pass(Some(t)),
        Err(c) => Verdict::Crash(Finding::from_crash(*c)),
    }
}
