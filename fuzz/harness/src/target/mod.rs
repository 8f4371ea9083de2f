//! The fuzz targets behind one trait. A target is one file implementing [`Target`]: its
//! name, the input `arbitrary` decodes from raw bytes, how an input executes (its trace, or
//! the finding), how a trace of it replays, and, where its op language can say a trace,
//! how that trace encodes back into raw bytes. [`registry`] lists them; the fuzzing
//! engines' wrappers, a campaign, corpus work and every CLI verb go through it, so they
//! treat every target alike.

mod encode;
pub mod ioasid;
pub mod pagetable;
pub mod prealloc;
pub mod qemu_diff;

use std::fmt;
use std::marker::PhantomData;

use arbitrary::{Arbitrary, Unstructured};
use serde::{Deserialize, Serialize};

use crate::campaign::signature::{finding_kind, panic_signature, quietly, signature};
use crate::run::Crash;
use crate::trace::Trace;

pub use encode::EncodeError;
pub use ioasid::Ioasid;
pub use pagetable::Pagetable;
pub use prealloc::Prealloc;
pub use qemu_diff::QemuDiff;

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

    /// The target this name registers.
    pub fn target(self) -> &'static dyn AnyTarget {
        registry()
            .iter()
            .copied()
            .find(|t| t.name() == self)
            .expect("every name is registered")
    }
}

impl fmt::Display for TargetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an input did not pass.
#[derive(Debug)]
pub enum Stop {
    /// An oracle disagreed: a finding, with the trace up to the failing line.
    Crash(Box<Crash>),
    /// The input could not be judged (QEMU died or hung twice): not a finding about the
    /// engine; says why.
    Unjudged(String),
}

/// One fuzz target. Implement it in one file under `target/`, add the name to
/// [`TargetName`] and the target to [`registry`]; the wrappers in `fuzz/libfuzzer` and
/// `fuzz/afl` are then three lines each.
pub trait Target: 'static {
    const NAME: TargetName;
    /// What the bytes decode into.
    type Input: for<'a> Arbitrary<'a> + fmt::Debug;

    /// Decodes bytes as libFuzzer's `fuzz_target!(|input: Input|)` does
    /// (`arbitrary_take_rest`), so files move between libFuzzer, AFL and bolero.
    fn decode(data: &[u8]) -> Option<Self::Input> {
        Self::Input::arbitrary_take_rest(Unstructured::new(data)).ok()
    }

    /// How many ops of the input run.
    fn ops(input: &Self::Input) -> usize;

    /// Runs the input through engine, model and oracles: its readable trace (expectations =
    /// outcomes), or why it stopped.
    fn execute(input: &Self::Input) -> Result<Trace, Stop>;

    /// The fuzz-target body on a decoded input: panics on a finding (with the op, the
    /// oracle, both values and the trace), so every engine records a crash.
    fn fuzz_input(input: &Self::Input) {
        match Self::execute(input) {
            Ok(_) => {}
            Err(Stop::Crash(c)) => crate::crash_frames::panic_with(&c),
            Err(Stop::Unjudged(why)) => eprintln!("ptfuzz: {} input not judged: {why}", Self::NAME),
        }
    }

    /// The fuzz-target body on raw bytes (libFuzzer, AFL); bytes that do not decode are not
    /// an input.
    fn fuzz(data: &[u8]) {
        if let Some(input) = Self::decode(data) {
            Self::fuzz_input(&input);
        }
    }

    /// Keeps an input the target could not judge: its raw bytes, or none when a generator
    /// built it (then `why` carries its trace). Default: says so on stderr.
    fn keep_unjudged(data: Option<&[u8]>, why: &str) {
        eprintln!(
            "ptfuzz: {} input of {} bytes not judged: {why}",
            Self::NAME,
            data.map_or(0, <[u8]>::len)
        );
    }

    /// Inputs drawn straight from an RNG seeded with `seed` (swarm testing, for campaigns
    /// without a fuzzing engine): the i-th input of a seed is always the same. `None`: the
    /// campaign mutates the seeds' bytes instead.
    fn swarm(seed: u64) -> Option<Box<dyn FnMut() -> Self::Input>> {
        let _ = seed;
        None
    }

    /// The trace of an input whose run panicked, where the target can rebuild one (the
    /// panic took the trace with it).
    fn panic_trace(input: &Self::Input) -> Option<Trace> {
        let _ = input;
        None
    }

    /// Replays a trace the way this target's oracles judge it, stated expectations
    /// included; the error names the first line that differs.
    fn replay(trace: &Trace) -> Result<(), String> {
        crate::replay("trace", trace)
            .map(|_| ())
            .map_err(|f| f.to_string())
    }

    /// Raw bytes that decode into an input whose trace has the same commands, where the op
    /// language can say them; else the error names the first line it cannot.
    fn encode(trace: &Trace) -> Result<Vec<u8>, EncodeError> {
        let _ = trace;
        Err(EncodeError::Unsupported(Self::NAME))
    }
}

/// How an input ran: its trace or why it stopped; `Err` holds a panic's message.
pub type Ran = Result<Result<Trace, Stop>, String>;

/// A target without its types: what generic code (campaign, corpus, CLI) holds.
pub trait AnyTarget: Sync {
    fn name(&self) -> TargetName;
    /// Decodes and runs `data`, catching a panic (see [`run_bytes`]).
    fn run_bytes(&self, data: &[u8]) -> Verdict;
    /// Decodes and runs `data` for its trace: `None` if it does not decode, else the ops it
    /// holds and how it ran (`Err` carries a panic's message).
    fn trace_bytes(&self, data: &[u8]) -> Option<(usize, Ran)>;
    /// The fuzz-target body on raw bytes.
    fn fuzz(&self, data: &[u8]);
    fn replay(&self, trace: &Trace) -> Result<(), String>;
    fn encode(&self, trace: &Trace) -> Result<Vec<u8>, EncodeError>;
    /// The target's generator as a stream of runs: each call draws one input and runs it.
    fn swarm(&self, seed: u64) -> Option<Box<dyn FnMut() -> Verdict>>;
}

struct Registered<T>(PhantomData<fn() -> T>);

impl<T: Target> AnyTarget for Registered<T> {
    fn name(&self) -> TargetName {
        T::NAME
    }

    fn run_bytes(&self, data: &[u8]) -> Verdict {
        run::<T>(data)
    }

    fn trace_bytes(&self, data: &[u8]) -> Option<(usize, Ran)> {
        let input = T::decode(data)?;
        Some((T::ops(&input), quietly(|| T::execute(&input))))
    }

    fn fuzz(&self, data: &[u8]) {
        T::fuzz(data)
    }

    fn replay(&self, trace: &Trace) -> Result<(), String> {
        T::replay(trace)
    }

    fn encode(&self, trace: &Trace) -> Result<Vec<u8>, EncodeError> {
        T::encode(trace)
    }

    fn swarm(&self, seed: u64) -> Option<Box<dyn FnMut() -> Verdict>> {
        let mut next = T::swarm(seed)?;
        Some(Box::new(move || run_input::<T>(&next(), None)))
    }
}

/// Every target, in [`TargetName::ALL`]'s order.
pub fn registry() -> &'static [&'static dyn AnyTarget] {
    static ALL: [&dyn AnyTarget; 4] = [
        &Registered::<Pagetable>(PhantomData),
        &Registered::<Ioasid>(PhantomData),
        &Registered::<Prealloc>(PhantomData),
        &Registered::<QemuDiff>(PhantomData),
    ];
    &ALL
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
    pub fn from_crash(c: Crash) -> Finding {
        let word = c.trace.lines.last().map_or("domain", |l| l.command.word());
        Finding {
            signature: signature(&c.kind, word),
            kind: finding_kind(&c.kind),
            message: c.kind.to_string(),
            trace: Some(c.trace),
        }
    }

    pub fn from_panic(msg: String) -> Finding {
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
    t.target().run_bytes(data)
}

/// [`run_bytes`] for a target known by type.
pub fn run<T: Target>(data: &[u8]) -> Verdict {
    match T::decode(data) {
        None => Verdict::Undecodable,
        Some(input) => run_input::<T>(&input, Some(data)),
    }
}

/// Runs a decoded or generated input (`data`: its raw bytes, if it has any), catching a
/// panic.
fn run_input<T: Target>(input: &T::Input, data: Option<&[u8]>) -> Verdict {
    let r = quietly(|| match T::execute(input) {
        Ok(trace) => Verdict::Pass(Some(trace)),
        Err(Stop::Crash(c)) => Verdict::Crash(Finding::from_crash(*c)),
        Err(Stop::Unjudged(why)) => {
            T::keep_unjudged(data, &why);
            Verdict::Pass(None)
        }
    });
    r.unwrap_or_else(|msg| {
        let trace = T::panic_trace(input);
        Verdict::Crash(Finding {
            trace,
            ..Finding::from_panic(msg)
        })
    })
}

/// Wraps a target's `execute` that returns a bare crash.
fn crashed<T>(r: Result<T, Box<Crash>>) -> Result<T, Stop> {
    r.map_err(Stop::Crash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_holds_every_name_once_in_order() {
        let names: Vec<TargetName> = registry().iter().map(|t| t.name()).collect();
        assert_eq!(names, TargetName::ALL);
        for n in TargetName::ALL {
            assert_eq!(n.target().name(), n);
        }
    }
}
