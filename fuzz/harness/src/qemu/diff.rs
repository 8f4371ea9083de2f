//! Commands run on engine and model as everywhere else, through the same checked domain and
//! the same oracle stack as the page-table target (budget, TLB and break-before-make, frame
//! accounting, counters, walker; the whole structure at the end), and after each one the
//! attached stream is re-checked in QEMU: the changed table bytes uploaded, the op's flushes
//! forwarded as SMMU commands, and DMA probes compared with the model's prediction.

use std::collections::BTreeMap;

use ptfuzz_engine::{DomainConfig, FlushEvent};
use ptfuzz_oracles::finding::QemuFinding;
use ptfuzz_oracles::qemu::oracle::{Attach, OracleError, ProbeReport, QemuOracle, Verdict, Which};
use ptfuzz_oracles::qemu::probe;
use ptfuzz_oracles::{Divergence, Model};

use crate::exec::{CheckedDomain, Created, Oracle};
use crate::outcome::Outcome;
use crate::replay::FailureKind;
use crate::trace::Command;

/// Probes after each op: at most this many (one DMA round on 16 devices), of which this
/// many are live mappings away from the op's range.
pub const MAX_PROBES: usize = 12;
pub const LIVE_PROBES: usize = 4;

struct Pair {
    cfg: DomainConfig,
    checked: Box<CheckedDomain>,
}

/// Why a command could not be judged.
#[derive(Debug)]
pub enum Stop {
    /// Engine and model, or QEMU and the model, disagree (the message names the op).
    Failure(FailureKind),
    /// QEMU could not be used (died, hung, or cannot translate this configuration).
    Oracle(OracleError),
}

impl From<OracleError> for Stop {
    fn from(e: OracleError) -> Self {
        Stop::Oracle(e)
    }
}

/// The domains of one input or trace, and the stream they are attached to in QEMU.
pub struct QemuDiff<'q> {
    oracle: &'q mut QemuOracle,
    domains: BTreeMap<String, Pair>,
    /// Attached: the first stage's domain, and the stage-2 domain of a nested stream.
    attached: Option<(String, Option<String>)>,
    ops: usize,
    /// Every probe so far, in order.
    pub reports: Vec<ProbeReport>,
    /// Drop the engine's flush requests instead of forwarding them: what an engine that
    /// forgets to invalidate looks like to QEMU (tests of the oracle itself).
    pub drop_flushes: bool,
    /// Throw the engine's flush requests away before any oracle sees them (the TLB oracle
    /// included): an engine that forgets to invalidate (tests of the oracles).
    pub engine_drops_flushes: bool,
    /// Run the page-table oracles of the page-table target on every domain created from now
    /// on (default); off with `PTFUZZ_QEMU_ONLY=1`: engine and model are still compared,
    /// but only QEMU checks the tables, so what QEMU alone catches can be timed.
    pub page_table_oracles: bool,
}

/// `PTFUZZ_QEMU_ONLY=1` (read once per process): QEMU is the only check besides the
/// engine-model comparison.
pub fn qemu_only_from_env() -> bool {
    static ONLY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ONLY.get_or_init(|| std::env::var("PTFUZZ_QEMU_ONLY").is_ok_and(|v| v == "1"))
}

/// Where a nested stream's context descriptor lives: the first granule of RAM, below the
/// stage-1 tables (which then start one granule-aligned 64 KiB later), mapped IPA = PA.
pub const NESTED_CD_IPA: u64 = 0x4000_0000;

impl<'q> QemuDiff<'q> {
    /// Starts from a clean QEMU state (nothing attached, everything invalidated).
    pub fn new(oracle: &'q mut QemuOracle) -> Result<Self, OracleError> {
        oracle.reset()?;
        Ok(QemuDiff {
            oracle,
            domains: BTreeMap::new(),
            attached: None,
            ops: 0,
            reports: Vec::new(),
            drop_flushes: false,
            engine_drops_flushes: false,
            page_table_oracles: !qemu_only_from_env(),
        })
    }

    /// Creates a domain; the first one created is attached alone.
    pub fn create(
        &mut self,
        name: &str,
        cfg: &DomainConfig,
        custom_alloc: bool,
    ) -> Result<Outcome, Stop> {
        let checked = match CheckedDomain::create(cfg, custom_alloc) {
            Created::Both(mut c) => {
                if !self.page_table_oracles {
                    c.without_page_table_oracles();
                }
                c
            }
            Created::Refused(_) => {
                return Ok(Outcome::Domain(Err(ptfuzz_engine::ErrorKind::Inval)))
            }
            Created::Disagree { engine, model } => {
                return Err(Stop::Failure(FailureKind::Divergence {
                    engine,
                    model,
                    expected: None,
                }))
            }
        };
        self.domains
            .insert(name.to_string(), Pair { cfg: *cfg, checked });
        if self.attached.is_none() {
            self.attach(name, None)?;
        }
        Ok(Outcome::Domain(Ok(())))
    }

    /// Points the stream at `first` (nested over `second`), uploads their tables and starts
    /// from an empty IOTLB.
    pub fn attach(&mut self, first: &str, second: Option<&str>) -> Result<(), Stop> {
        let get = |n: &str| {
            self.domains.get(n).ok_or_else(|| {
                Stop::Oracle(OracleError::Unsupported(format!("domain {n} was refused")))
            })
        };
        let p1 = get(first)?;
        let a1 = Attach {
            cfg: &p1.cfg,
            rules: p1.checked.model().rules(),
            root: p1.checked.engine().root(),
        };
        let a2 = match second {
            Some(n) => {
                let p2 = get(n)?;
                Some((
                    Attach {
                        cfg: &p2.cfg,
                        rules: p2.checked.model().rules(),
                        root: p2.checked.engine().root(),
                    },
                    NESTED_CD_IPA,
                ))
            }
            None => None,
        };
        self.oracle.attach(a1, a2)?;
        self.attached = Some((first.to_string(), second.map(str::to_string)));
        self.oracle
            .upload(Which::First, self.domains[first].checked.engine().mem())?;
        if let Some(n) = second {
            self.oracle
                .upload(Which::Second, self.domains[n].checked.engine().mem())?;
        }
        self.oracle.invalidate_all()?;
        Ok(())
    }

    pub fn model(&self, name: &str) -> Option<&Model> {
        self.domains.get(name).map(|p| p.checked.model())
    }

    /// The end of an input: every domain's end-of-input checks (the whole structure walk,
    /// custom hooks), as the page-table target makes them.
    pub fn finish(&mut self) -> Result<(), Stop> {
        for p in self.domains.values_mut() {
            p.checked
                .at_end()
                .map_err(|d| Stop::Failure(FailureKind::Oracle(d)))?;
        }
        Ok(())
    }

    /// Runs one op command on engine and model, compares, runs the engine-side oracles, then
    /// checks QEMU.
    pub fn apply(&mut self, cmd: &Command) -> Result<Outcome, Stop> {
        let op = self.ops;
        self.ops += 1;
        let name = cmd.domain().to_string();
        let Some(p) = self.domains.get_mut(&name) else {
            return Err(Stop::Failure(FailureKind::Undeclared(name)));
        };
        let eo = match cmd {
            Command::Attach { nest, .. } => {
                self.attach(&name, nest.as_deref())?;
                return Ok(Outcome::Done);
            }
            Command::Ioasid(_) => {
                return Err(Stop::Oracle(OracleError::Unsupported(
                    "ioasid.* commands are not run against QEMU (edu DMA carries no PASID)".into(),
                )))
            }
            cmd => {
                p.checked.drop_engine_flushes = self.engine_drops_flushes;
                p.checked.apply(cmd).map_err(Stop::Failure)?
            }
        };
        let flushes: Vec<FlushEvent> = p.checked.last_flushes().copied().collect();
        let which = match &self.attached {
            Some((f, _)) if *f == name => Which::First,
            Some((_, Some(s))) if *s == name => Which::Second,
            _ => return Ok(eo),
        };
        self.oracle
            .upload(which, self.domains[&name].checked.engine().mem())?;
        if !self.drop_flushes {
            self.oracle.forward(which, &flushes)?;
        }
        self.probe(op, cmd, which)?;
        Ok(eo)
    }

    /// Probes the op's range (for the first stage) and live mappings of the stream.
    fn probe(&mut self, op: usize, cmd: &Command, which: Which) -> Result<(), Stop> {
        let Some((first, second)) = self.attached.clone() else {
            return Ok(());
        };
        let p1 = &self.domains[&first];
        let g = p1.cfg.granule.size();
        let ias_end = 1u64 << p1.cfg.ias;
        let (lo, hi) = match (cmd, which) {
            (
                &Command::Map {
                    iova,
                    pgsize,
                    count,
                    ..
                }
                | &Command::Unmap {
                    iova,
                    pgsize,
                    count,
                    ..
                }
                | &Command::JobRun {
                    iova,
                    pgsize,
                    count,
                    ..
                },
                Which::First,
            ) => {
                let end = pgsize
                    .checked_mul(count.min(1 << 20))
                    .and_then(|s| iova.checked_add(s));
                (iova.min(ias_end), end.map_or(ias_end, |e| e.min(ias_end)))
            }
            (&Command::Lookup { iova, .. }, Which::First) => {
                (iova.min(ias_end), iova.saturating_add(1).min(ias_end))
            }
            _ => (0, 0),
        };
        // Ops that change no mapping and no table byte the device sees get fewer probes: a
        // lookup its own address, fail_nth none.
        let live = match cmd {
            Command::FailNth { .. } => return Ok(()),
            Command::Lookup { .. } => 0,
            _ => LIVE_PROBES,
        };
        let cached = self.oracle.cached_in(lo, hi, MAX_PROBES / 2);
        let m1 = p1.checked.model();
        let probes = probe::select(m1, g, ias_end, op, (lo, hi), &cached, live, MAX_PROBES);
        let m2 = second.as_ref().map(|s| self.domains[s].checked.model());
        let reports = self.oracle.probe(op, &probes, m1, m2)?;
        let bad = reports.iter().find_map(|&report| match report.verdict {
            Verdict::Stale => Some(QemuFinding::Stale { report }),
            Verdict::Mismatch => Some(QemuFinding::Mismatch { report }),
            _ => None,
        });
        self.reports.extend(reports);
        match bad {
            Some(f) => Err(Stop::Failure(FailureKind::Oracle(Divergence::new(f)))),
            None => Ok(()),
        }
    }
}
