//! Trace format v1 (DESIGN.md, "Trace format v1"): the readable form of every fuzz input and
//! every saved crash. One command a line, with an optional `-> …` expectation tail.
//!
//! [`parse`](parse::parse) and the `Display` impls in [`print`] are inverses, so a trace
//! printed from an input replays exactly as that input ran.

pub mod ioasid;
pub mod parse;
pub mod print;

use ptfuzz_engine::{DomainConfig, ErrorKind, Prot};

pub use ioasid::IoasidCommand;
pub use parse::{parse, parse_number, ParseError, ParseErrorKind};

/// A parsed trace: commands only; comments and blank lines are not kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace {
    pub lines: Vec<TraceLine>,
}

/// One command, the 1-based line it came from (0 if built in memory), and its expectation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceLine {
    pub line: usize,
    pub command: Command,
    pub expect: Option<Expect>,
}

/// A domain's name in a trace. Generated inputs name theirs with a constant (borrowed, so a
/// command costs no allocation for it); parsed traces own theirs.
pub type Name = std::borrow::Cow<'static, str>;

/// One operation of the op language. Domains are named so a trace can drive several.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `alloc=custom` installs custom table-allocator hooks (io-pgtable style).
    Domain {
        name: Name,
        cfg: DomainConfig,
        custom_alloc: bool,
    },
    Map {
        dom: Name,
        iova: u64,
        pa: u64,
        pgsize: u64,
        count: u64,
        prot: Prot,
    },
    Unmap {
        dom: Name,
        iova: u64,
        pgsize: u64,
        count: u64,
    },
    Lookup {
        dom: Name,
        iova: u64,
    },
    /// End the grace period: deferred tables are released (poisoned, reusable).
    Grace {
        dom: Name,
    },
    /// Make the n-th table allocation from now fail (`n=0` disarms).
    FailNth {
        dom: Name,
        n: u64,
    },
    /// Free everything: all mappings and all tables but the root.
    Clear {
        dom: Name,
    },
    /// Clean every live table to the device view.
    Sync {
        dom: Name,
    },
    /// Point the QEMU oracle's SMMU stream at this domain, nested over `nest` (stage 1 then
    /// stage 2); engine and model do nothing. See docs/QEMU.md.
    Attach {
        dom: Name,
        nest: Option<Name>,
    },
    /// An `ioasid.*` command (IOASID allocation and PASID binding).
    Ioasid(IoasidCommand),
    /// Prepare job `job` for `[iova, iova + size)`: count and reserve its pool.
    JobPrepare {
        dom: Name,
        job: u32,
        iova: u64,
        size: u64,
    },
    /// Run job `job`: a map whose tables all come from the job's pool.
    JobRun {
        dom: Name,
        job: u32,
        iova: u64,
        pa: u64,
        pgsize: u64,
        count: u64,
        prot: Prot,
    },
    /// Clean job `job` up: its leftover pages go back.
    JobCleanup {
        dom: Name,
        job: u32,
    },
    /// Reserve `[iova, iova + size)`: install and pin every table level it needs.
    Reserve {
        dom: Name,
        iova: u64,
        size: u64,
    },
    /// Drop one reservation of exactly that range, freeing what is then unused.
    Unreserve {
        dom: Name,
        iova: u64,
        size: u64,
    },
}

impl Command {
    /// The command word as written in a trace.
    pub fn word(&self) -> &'static str {
        match self {
            Command::Domain { .. } => "domain",
            Command::Map { .. } => "map",
            Command::Unmap { .. } => "unmap",
            Command::Lookup { .. } => "lookup",
            Command::Grace { .. } => "grace",
            Command::FailNth { .. } => "fail_nth",
            Command::Clear { .. } => "clear",
            Command::Sync { .. } => "sync",
            Command::Attach { .. } => "attach",
            Command::Ioasid(c) => c.word(),
            Command::JobPrepare { .. } => "job.prepare",
            Command::JobRun { .. } => "job.run",
            Command::JobCleanup { .. } => "job.cleanup",
            Command::Reserve { .. } => "reserve",
            Command::Unreserve { .. } => "unreserve",
        }
    }

    /// The domain the command declares or acts on.
    pub fn domain(&self) -> &str {
        match self {
            Command::Domain { name: d, .. }
            | Command::Map { dom: d, .. }
            | Command::Unmap { dom: d, .. }
            | Command::Lookup { dom: d, .. }
            | Command::Grace { dom: d }
            | Command::FailNth { dom: d, .. }
            | Command::Clear { dom: d }
            | Command::Sync { dom: d }
            | Command::Attach { dom: d, .. }
            | Command::JobPrepare { dom: d, .. }
            | Command::JobRun { dom: d, .. }
            | Command::JobCleanup { dom: d, .. }
            | Command::Reserve { dom: d, .. }
            | Command::Unreserve { dom: d, .. } => d,
            Command::Ioasid(c) => c.domain(),
        }
    }
}

/// A stated expectation: every field that is set is checked, every field left out is not.
///
/// The same type describes an actual result with all its fields set (see
/// `crate::outcome::Outcome::facts`), so checking is field-by-field comparison.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Expect {
    pub ok: bool,
    pub err: Option<ErrorKind>,
    pub mapped: Option<u64>,
    pub unmapped: Option<u64>,
    pub pa: Option<u64>,
    pub none: bool,
    /// What an `ioasid.*` command returned besides ok/err (`id=` or `data=`).
    pub io: Option<IoValue>,
    /// Pages a job's pool got, or tables a reservation allocated.
    pub pages: Option<u64>,
    /// Leftover pages a job cleanup returned.
    pub returned: Option<u64>,
    /// Tables an unreserve freed.
    pub freed: Option<u64>,
}

/// The value an `ioasid.*` command returns: one field, since no command returns both (and
/// it keeps `Expect`, carried in every failure, small).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoValue {
    /// `id=`: the ID `ioasid.alloc` handed out.
    Id(u32),
    /// `data=`: the data `ioasid.find` returned.
    Data(u64),
}

impl Expect {
    /// True if no field is set (a tail that checks nothing).
    pub fn is_empty(&self) -> bool {
        *self == Expect::default()
    }

    /// Whether `actual` (an outcome's full facts) has every field this expectation sets.
    pub fn is_met_by(&self, actual: &Expect) -> bool {
        fn eq<T: PartialEq>(want: Option<T>, got: Option<T>) -> bool {
            want.is_none() || want == got
        }
        (!self.ok || actual.ok)
            && (!self.none || actual.none)
            && eq(self.err, actual.err)
            && eq(self.mapped, actual.mapped)
            && eq(self.unmapped, actual.unmapped)
            && eq(self.pa, actual.pa)
            && eq(self.io, actual.io)
            && eq(self.pages, actual.pages)
            && eq(self.returned, actual.returned)
            && eq(self.freed, actual.freed)
    }
}
