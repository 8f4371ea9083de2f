//! What one command actually returned, printed in the trace's `->` tail syntax so a failure
//! reads like the line that would have passed.

use std::fmt;

use ptfuzz_engine::ioasid::IoasidError;
use ptfuzz_engine::{ErrorKind, MapError};

use crate::trace::{Expect, IoValue};

/// The result of one command, from the engine or from the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Domain creation: accepted, or refused with a kind (always `inval` today).
    Domain(Result<(), ErrorKind>),
    Map(Result<u64, MapError>),
    Unmap(Result<u64, ErrorKind>),
    Lookup(Option<u64>),
    /// An op with nothing to return (grace, fail_nth, clear, sync).
    Done,
    /// `ioasid.alloc`: the ID. IOASID errors keep their `Reason`, so engine and model must
    /// agree on why, not only on the kind the trace tail shows.
    IoAlloc(Result<u32, IoasidError>),
    /// `ioasid.find`: the data.
    IoFind(Result<u64, IoasidError>),
    /// `ioasid.translate`: the output address, or none.
    IoTranslate(Result<Option<u64>, IoasidError>),
    /// The other `ioasid.*` commands.
    IoDone(Result<(), IoasidError>),
    /// `job.prepare`: pages reserved into the pool.
    Prepare(Result<u64, ErrorKind>),
    /// `job.cleanup`: leftover pages returned.
    Cleanup(Result<u64, ErrorKind>),
    /// `reserve`: tables allocated.
    Reserve(Result<u64, ErrorKind>),
    /// `unreserve`: tables freed.
    Unreserve(Result<u64, ErrorKind>),
}

impl Outcome {
    /// Every expectation field this outcome determines. A lookup always succeeds, so it
    /// also meets `ok`.
    pub fn facts(&self) -> Expect {
        let mut e = Expect::default();
        match *self {
            Outcome::Domain(r) => (e.ok, e.err) = (r.is_ok(), r.err()),
            Outcome::Map(Ok(n)) => (e.ok, e.mapped) = (true, Some(n)),
            Outcome::Map(Err(m)) => (e.err, e.mapped) = (Some(m.kind), Some(m.mapped)),
            Outcome::Unmap(Ok(n)) => (e.ok, e.unmapped) = (true, Some(n)),
            Outcome::Unmap(Err(k)) => (e.err, e.unmapped) = (Some(k), Some(0)),
            Outcome::Lookup(pa) => (e.ok, e.pa, e.none) = (true, pa, pa.is_none()),
            Outcome::Done => e.ok = true,
            Outcome::IoAlloc(Ok(id)) => (e.ok, e.io) = (true, Some(IoValue::Id(id))),
            Outcome::IoFind(Ok(d)) => (e.ok, e.io) = (true, Some(IoValue::Data(d))),
            Outcome::IoTranslate(Ok(pa)) => (e.ok, e.pa, e.none) = (true, pa, pa.is_none()),
            Outcome::IoDone(Ok(())) => e.ok = true,
            Outcome::IoAlloc(Err(x))
            | Outcome::IoFind(Err(x))
            | Outcome::IoTranslate(Err(x))
            | Outcome::IoDone(Err(x)) => e.err = Some(x.kind),
            Outcome::Prepare(r) | Outcome::Reserve(r) => {
                (e.ok, e.err, e.pages) = (r.is_ok(), r.err(), Some(r.unwrap_or(0)))
            }
            Outcome::Cleanup(r) => {
                (e.ok, e.err, e.returned) = (r.is_ok(), r.err(), Some(r.unwrap_or(0)))
            }
            Outcome::Unreserve(r) => {
                (e.ok, e.err, e.freed) = (r.is_ok(), r.err(), Some(r.unwrap_or(0)))
            }
        }
        e
    }
}

impl Outcome {
    /// Why an `ioasid.*` command was refused (the tail shows only the kind).
    pub fn ioasid_reason(&self) -> Option<ptfuzz_engine::ioasid::Reason> {
        match self {
            Outcome::IoAlloc(Err(x))
            | Outcome::IoFind(Err(x))
            | Outcome::IoTranslate(Err(x))
            | Outcome::IoDone(Err(x)) => Some(x.reason),
            _ => None,
        }
    }
}

/// `ok mapped=0x200000`, `err=exists mapped=0`, `ok unmapped=0x1000`, `pa=0x40201234`,
/// `none`, `err=inval`: parseable as an expectation that this outcome meets.
impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut e = self.facts();
        if let Outcome::Lookup(_) = self {
            e.ok = false; // implied; `pa=`/`none` is the whole answer
        }
        e.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_as_tail() {
        let cases = [
            (Outcome::Map(Ok(0x200000)), "ok mapped=0x200000"),
            (
                Outcome::Map(Err(MapError::new(ErrorKind::Exists, 0))),
                "err=exists mapped=0",
            ),
            (Outcome::Unmap(Ok(0x1000)), "ok unmapped=0x1000"),
            (
                Outcome::Unmap(Err(ErrorKind::Range)),
                "err=range unmapped=0",
            ),
            (Outcome::Lookup(Some(0x40201234)), "pa=0x40201234"),
            (Outcome::Lookup(None), "none"),
            (Outcome::Domain(Err(ErrorKind::Inval)), "err=inval"),
            (Outcome::Domain(Ok(())), "ok"),
        ];
        for (o, s) in cases {
            assert_eq!(o.to_string(), s);
            assert!(o.facts().is_met_by(&o.facts()));
        }
    }
}
