//! The QEMU SMMUv3 oracle: the device view of the engine's tables is copied into guest RAM
//! at the physical addresses it names, the engine's flushes become SMMU commands, and DMA
//! probes through the emulated SMMU are compared with the model's prediction.
//!
//! Nothing else invalidates between ops, so a translation QEMU still caches after the engine
//! failed to invalidate it shows up: a mismatch that a full invalidation cures is reported as
//! "stale translation: missing invalidation after op n".

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::ops::Range;

use ptfuzz_engine::{DomainConfig, FlushEvent, PhysMem};

use super::deviation::{explain, Deviation, ProbeFacts};
use super::driver::testdev::Outcome;
use super::driver::{Dma, DmaDir, ProbeMode, Qemu, QemuError, SmmuCommand, StreamConfig};
use super::guest_ram::GuestRam;
use super::observed::{decode, tag_of, Observed, WRITE_TAG};
use super::predict::{predict, predict_ignoring_ap1, Access, Expected, Stage};
use super::probe::{Probe, PROBE_BYTES};
use super::stream::{self, concatenated_table, Unsupported};
use super::tlbi::{commands, Role};
use crate::model::{DomainRules, Model};

/// One attached domain: its place in the stream.
struct Half {
    role: Role,
    granule: u64,
    base: u64,
    rules: DomainRules,
}

/// How a probe compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Match,
    /// QEMU differs in a way the table of known deviations explains.
    Deviation(Deviation),
    /// QEMU hit a translation the model says is gone or changed, and a full invalidation
    /// cured it: the engine missed an invalidation.
    Stale,
    /// A difference nothing explains: the engine's tables or QEMU are wrong.
    Mismatch,
}

/// One probe's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeReport {
    pub op: usize,
    pub probe: Probe,
    pub expected: Expected,
    pub observed: Observed,
    pub verdict: Verdict,
}

impl fmt::Display for ProbeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.probe;
        write!(
            f,
            "op {} probe iova={:#x} access={}: ",
            self.op,
            p.iova,
            p.access.name()
        )?;
        match self.verdict {
            Verdict::Match => write!(f, "{} (as predicted)", self.observed),
            Verdict::Deviation(d) => write!(
                f,
                "QEMU {} where the model predicts {} (known QEMU deviation `{}`)",
                self.observed,
                self.expected,
                d.id()
            ),
            Verdict::Stale => write!(
                f,
                "stale translation: missing invalidation after op {}: QEMU {} where the model predicts {}",
                self.op, self.observed, self.expected
            ),
            Verdict::Mismatch => write!(
                f,
                "QEMU {} where the model predicts {}",
                self.observed, self.expected
            ),
        }
    }
}

/// Counts over a run.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub probes: u64,
    /// Probes not issued: their address is outside the data window.
    pub skipped: u64,
    pub matched: u64,
    pub stale: u64,
    pub mismatches: u64,
    pub deviations: BTreeMap<Deviation, u64>,
    /// DMAs issued through the edus (reads the model predicts unlike a write, or every
    /// probe without iommu-testdevs), retries included.
    pub edu_dmas: u64,
    /// DMAs issued through iommu-testdev, retries included.
    pub testdev_dmas: u64,
}

/// Which attached domain an upload or flush belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// The stream's first (or only) stage.
    First,
    /// The stage-2 domain of a nested stream.
    Second,
}

/// A QEMU instance used as an oracle, with the domains currently attached to its streams.
pub struct QemuOracle {
    qemu: Qemu,
    data: Range<u64>,
    tables: Range<u64>,
    first: Option<Half>,
    second: Option<Half>,
    /// The stream configuration every device has now (rewritten only when it changes).
    configured: Option<StreamConfig>,
    /// Granule pages of the first stage that probes reached since the last full
    /// invalidation, with the physical page they reached: QEMU may hold these translations
    /// (capacity permitting), and a stale hit then reads that page's tags.
    cached: BTreeMap<u64, u64>,
    /// What guest RAM holds in the table window (uploads write only what differs).
    ram: GuestRam,
    /// Data-window addresses (8-byte aligned) known to hold their tag: probes re-tag only
    /// the others. Forgotten with `ram`.
    tagged: HashSet<u64>,
    /// The QEMU process `ram` and `tagged` describe (a restarted one starts unknown).
    ram_pid: u32,
    pub stats: Stats,
}

/// A domain to attach: its configuration, the model's rules for it, and its root.
pub struct Attach<'a> {
    pub cfg: &'a DomainConfig,
    pub rules: &'a DomainRules,
    pub root: u64,
}

/// Why the oracle could not go on.
#[derive(Debug, thiserror::Error)]
pub enum OracleError {
    #[error("not translatable by QEMU: {0}")]
    Unsupported(String),
    #[error(transparent)]
    Qemu(#[from] QemuError),
}

impl From<Unsupported> for OracleError {
    fn from(u: Unsupported) -> Self {
        OracleError::Unsupported(u.0)
    }
}

impl QemuOracle {
    /// `data` is where mapped pages may point to be probed; `tables` where table frames
    /// may live (both inside guest RAM, disjoint from the SMMU's own structures).
    pub fn new(qemu: Qemu, data: Range<u64>, tables: Range<u64>) -> QemuOracle {
        QemuOracle {
            qemu,
            data,
            ram: GuestRam::new(tables.clone()),
            tables,
            first: None,
            second: None,
            configured: None,
            cached: BTreeMap::new(),
            tagged: HashSet::new(),
            ram_pid: 0,
            stats: Stats::default(),
        }
    }

    pub fn qemu(&mut self) -> &mut Qemu {
        &mut self.qemu
    }

    pub fn data_window(&self) -> Range<u64> {
        self.data.clone()
    }

    /// Forgets the attached domains and invalidates everything (configurations, TLB; sent
    /// with the next batch, see [`Qemu::invalidate_all_deferred`]): the state between
    /// inputs. The next attach uploads its tables whole (the words guest RAM does not
    /// already hold).
    pub fn reset(&mut self) -> Result<(), OracleError> {
        self.first = None;
        self.second = None;
        self.cached.clear();
        self.invalidate_all()
    }

    /// Invalidates everything QEMU caches (configurations, TLB), with the next batch.
    /// Which pages count as cached for probing is left as it was.
    pub fn invalidate_all(&mut self) -> Result<(), OracleError> {
        self.qemu.invalidate_all_deferred()?;
        Ok(())
    }

    /// Points every device's stream at `first` alone, or at `first` nested over `second`
    /// (stage 1 then stage 2). Tables are uploaded by [`QemuOracle::upload`].
    pub fn attach(
        &mut self,
        first: Attach<'_>,
        second: Option<(Attach<'_>, u64)>,
    ) -> Result<(), OracleError> {
        let half = |a: &Attach<'_>, role| Half {
            role,
            granule: a.cfg.granule.size(),
            base: a.cfg.phys_base,
            rules: *a.rules,
        };
        let config = match &second {
            None if first.cfg.format.is_stage2() => {
                StreamConfig::S2(stream::stage2(first.cfg, first.rules, first.root)?)
            }
            None => StreamConfig::S1(stream::stage1(first.cfg, first.root)?),
            Some((s2, cd_ipa)) => {
                let mut s1 = stream::stage1(first.cfg, first.root)?;
                s1.cd_addr = Some(*cd_ipa);
                StreamConfig::Nested(s1, stream::stage2(s2.cfg, s2.rules, s2.root)?)
            }
        };
        let (r1, r2) = match (&second, first.cfg.format.is_stage2()) {
            (None, true) => (Role::Stage2, None),
            (None, false) => (Role::Stage1, None),
            (Some(_), _) => (Role::NestedStage1, Some(Role::NestedStage2)),
        };
        self.first = Some(half(&first, r1));
        self.second = second.as_ref().zip(r2).map(|((a, _), r)| half(a, r));
        if self.configured != Some(config) {
            let all: Vec<(usize, StreamConfig)> =
                (0..self.qemu.all_devices()).map(|d| (d, config)).collect();
            self.configured = None;
            self.qemu.configure_many_deferred(&all)?;
            self.configured = Some(config);
            // A context descriptor placed in the table window (nested) overwrote RAM there.
            if let StreamConfig::S1(c) | StreamConfig::Nested(c, _) = config {
                if let Some(cd) = c.cd_addr {
                    self.ram.forget(cd, 64);
                }
            }
        }
        Ok(())
    }

    fn half_mut(&mut self, which: Which) -> Option<&mut Half> {
        match which {
            Which::First => self.first.as_mut(),
            Which::Second => self.second.as_mut(),
        }
    }

    /// Makes guest RAM hold `mem`'s device view (never the CPU view) at the addresses it
    /// names: the 8-byte words that differ from what guest RAM holds are written.
    pub fn upload(&mut self, which: Which, mem: &PhysMem) -> Result<(), OracleError> {
        let tables = self.tables.clone();
        let Some(half) = self.half_mut(which) else {
            return Ok(());
        };
        let base = half.base;
        let view = mem.device_view();
        let end = base + view.len() as u64 * 8;
        if base < tables.start || end > tables.end {
            return Err(OracleError::Unsupported(format!(
                "tables at {base:#x}..{end:#x} outside the guest's table window {tables:x?}"
            )));
        }
        self.same_instance();
        let chunks = self.ram.update(base, view);
        if !chunks.is_empty() {
            let refs: Vec<(u64, &[u8])> = chunks.iter().map(|(a, b)| (*a, b.as_slice())).collect();
            // Sent with the op's next batch (its flush commands or its probes).
            self.qemu.write_mem_deferred(&refs)?;
        }
        Ok(())
    }

    /// Forgets what guest RAM holds when QEMU was restarted behind the oracle's back.
    fn same_instance(&mut self) {
        if self.ram_pid != self.qemu.pid() {
            self.forget_guest_ram();
            self.ram_pid = self.qemu.pid();
        }
    }

    /// Forgets what guest RAM holds (tables and tags): everything is written again.
    fn forget_guest_ram(&mut self) {
        self.ram.forget_all();
        self.tagged.clear();
    }

    /// Forwards one op's flush requests for the domain `which` as SMMU commands (+ SYNC).
    pub fn forward(&mut self, which: Which, flushes: &[FlushEvent]) -> Result<(), OracleError> {
        let Some(half) = self.half_mut(which) else {
            return Ok(());
        };
        let (role, granule) = (half.role, half.granule);
        let cmds: Vec<SmmuCommand> = flushes
            .iter()
            .flat_map(|f| commands(role, granule, f))
            .collect();
        if !cmds.is_empty() {
            // Consumed in front of the op's probes (and checked in the same round trip).
            self.qemu.submit_deferred(&cmds)?;
        }
        Ok(())
    }

    /// Pages in `[lo, hi)` whose translations QEMU may have cached (at most `n`, spread
    /// over the range).
    pub fn cached_in(&self, lo: u64, hi: u64, n: usize) -> Vec<u64> {
        let pages: Vec<u64> = self.cached.range(lo..hi).map(|(&p, _)| p).collect();
        let step = pages.len().div_ceil(n.max(1)).max(1);
        pages.into_iter().step_by(step).take(n).collect()
    }

    fn in_data(&self, pa: u64) -> bool {
        pa >= self.data.start && pa.saturating_add(PROBE_BYTES) <= self.data.end
    }

    /// Runs `probes` after op `op`, predicting each from the models of the attached domains
    /// (`first`, and `second` for a nested stream), and returns one report per probe issued.
    pub fn probe(
        &mut self,
        op: usize,
        probes: &[Probe],
        first: &Model,
        second: Option<&Model>,
    ) -> Result<Vec<ProbeReport>, OracleError> {
        let (Some(h1), h2) = (&self.first, &self.second) else {
            return Ok(Vec::new());
        };
        let s1 = Stage {
            model: first,
            stage2: h1.role == Role::Stage2,
        };
        let s2 = second.map(|m| Stage {
            model: m,
            stage2: true,
        });
        let s2_rules = match (h1.role, h2) {
            (Role::Stage2, _) => Some(h1.rules),
            (_, Some(h)) => Some(h.rules),
            _ => None,
        };
        let s2_only = h1.role == Role::Stage2;
        let granule = h1.granule;
        let mut planned = Vec::new();
        let writes_only = self.qemu.profile().probe == ProbeMode::Writes;
        for &p in probes {
            // iommu-testdev only writes: in that mode every probe is the write it becomes.
            let p = match writes_only {
                true => Probe {
                    access: Access::Write,
                    ..p
                },
                false => p,
            };
            let expected = predict(s1, s2, p.iova, p.access);
            // Where it would go with every permission granted, and the stage-2 input.
            let s1_leaf = first.leaf_at(p.iova);
            let ipa = s1_leaf.map(|(a, pa, _, _)| pa + (p.iova - a));
            let unchecked = match (ipa, second) {
                (Some(ipa), Some(m)) => m.lookup(ipa),
                (ipa, None) => ipa,
                _ => None,
            };
            let s2_input = if s2_only {
                Some(p.iova)
            } else if second.is_some() {
                ipa
            } else {
                None
            };
            let facts = ProbeFacts {
                s1_privileged: !s2_only
                    && s1_leaf
                        .is_some_and(|(_, _, _, prot)| prot.contains(ptfuzz_engine::Prot::PRIV)),
                s2_only,
                s2_concatenated_beyond_first: s2_rules
                    .zip(s2_input)
                    .is_some_and(|(r, a)| concatenated_table(&r, a) > 0),
                unchecked_pa: unchecked,
                if_ap1_ignored: Some(predict_ignoring_ap1(s1, s2, p.iova, p.access)),
            };
            // Tag where the access should go; for a fault, where it would go without
            // permission checks, or where QEMU last reached for this page (a stale hit).
            let page = p.iova & !(granule - 1);
            let target = match expected {
                Expected::Pa(pa) => Some(pa),
                Expected::Fault(_) => {
                    unchecked.or_else(|| self.cached.get(&page).map(|pa| pa + (p.iova - page)))
                }
            };
            if target.is_some_and(|pa| !self.in_data(pa)) {
                self.stats.skipped += 1;
                continue;
            }
            // A read the model predicts exactly like a write (same address or same fault,
            // also with AP[1] ignored) may be issued as a write: iommu-testdev only writes.
            let as_write = p.access == Access::Write
                || (predict(s1, s2, p.iova, Access::Write) == expected
                    && predict_ignoring_ap1(s1, s2, p.iova, Access::Write)
                        == predict_ignoring_ap1(s1, s2, p.iova, Access::Read));
            planned.push((p, expected, facts, target, as_write));
        }
        let observed = self.run(&planned)?;
        let mut reports = Vec::with_capacity(planned.len());
        let mut retry = Vec::new();
        for (i, ((p, expected, facts, _, _), obs)) in planned.iter().zip(observed).enumerate() {
            let verdict = if matches(expected, &obs) {
                Verdict::Match
            } else if let Some(d) = explain(expected, &obs, facts) {
                Verdict::Deviation(d)
            } else {
                retry.push(i);
                Verdict::Mismatch
            };
            reports.push(ProbeReport {
                op,
                probe: *p,
                expected: *expected,
                observed: obs,
                verdict,
            });
        }
        for r in &reports {
            if let Observed::Reached(pa) = r.observed {
                let page = r.probe.iova & !(granule - 1);
                self.cached.insert(page, pa - (r.probe.iova - page));
            }
        }
        if planned
            .iter()
            .zip(&reports)
            .any(|(pl, r)| self.may_have_strayed(pl, &r.observed))
        {
            self.forget_guest_ram();
        }
        if !retry.is_empty() {
            // Walk afresh: what a full invalidation cures was a stale cached translation.
            self.qemu.submit_deferred(&[SmmuCommand::TlbiNsnhAll])?;
            self.cached.clear();
            let again: Vec<_> = retry.iter().map(|&i| planned[i]).collect();
            let observed = self.run(&again)?;
            if again
                .iter()
                .zip(&observed)
                .any(|(pl, obs)| self.may_have_strayed(pl, obs))
            {
                self.forget_guest_ram();
            }
            for (&i, obs) in retry.iter().zip(observed) {
                if matches(&planned[i].1, &obs) {
                    reports[i].verdict = Verdict::Stale;
                }
            }
        }
        for r in &reports {
            self.stats.probes += 1;
            match r.verdict {
                Verdict::Match => self.stats.matched += 1,
                Verdict::Deviation(d) => *self.stats.deviations.entry(d).or_default() += 1,
                Verdict::Stale => self.stats.stale += 1,
                Verdict::Mismatch => self.stats.mismatches += 1,
            }
        }
        Ok(reports)
    }

    /// Whether a probe may have written guest RAM outside the data window (the table
    /// window included): a DMA write that neither landed in the data window nor faulted,
    /// unless iommu-testdev said it wrote nothing (an edu cannot tell).
    fn may_have_strayed(&self, planned: &Planned, observed: &Observed) -> bool {
        let by_testdev = self.qemu.testdevs() > 0 && planned.4;
        if planned.0.access != Access::Write && !by_testdev {
            return false;
        }
        match *observed {
            Observed::Reached(pa) => !self.in_data(pa),
            Observed::Fault(_) => false,
            Observed::Blocked => !by_testdev,
            Observed::Untagged(_) | Observed::OtherEvent(_) | Observed::Elsewhere => true,
        }
    }

    /// Issues the planned probes, reads first (after tagging every address they may reach),
    /// then writes (checking where they landed, then restoring the tags). With
    /// iommu-testdevs, the reads that cannot be writes go through the edus first, then
    /// every other probe goes through an iommu-testdev in one batch.
    fn run(&mut self, planned: &[Planned]) -> Result<Vec<Observed>, OracleError> {
        let mut tags: Vec<(u64, [u8; 8])> = planned
            .iter()
            .filter_map(|(_, _, _, t, _)| *t)
            .map(|pa| (pa, tag_of(pa).to_le_bytes()))
            .collect();
        tags.sort_unstable();
        tags.dedup();
        self.same_instance();
        if self.tagged.len() > MAX_TAGGED {
            self.tagged.clear();
        }
        tags.retain(|(pa, _)| !self.tagged.contains(pa));
        for (pa, _) in &tags {
            if pa % PROBE_BYTES == 0 {
                self.tagged.insert(*pa);
            } else {
                // Tags that overlap others: nothing is known for sure.
                self.tagged.clear();
            }
        }
        let refs: Vec<(u64, &[u8])> = tags.iter().map(|(a, b)| (*a, &b[..])).collect();
        if !refs.is_empty() {
            // Sent in front of the first probe batch.
            self.qemu.write_mem_deferred(&refs)?;
        }
        let mut out = vec![Observed::Blocked; planned.len()];
        let by_testdev = self.qemu.testdevs() > 0;
        let devices = self.qemu.devices();
        for access in [Access::Read, Access::Write] {
            // The order stays reads, then writes: a write may hit what a read cached.
            if by_testdev && access == Access::Write {
                self.run_testdev(planned, &mut out)?;
            }
            let idx: Vec<usize> = (0..planned.len())
                .filter(|&i| planned[i].0.access == access && !(by_testdev && planned[i].4))
                .collect();
            for round in idx.chunks(devices) {
                let mut values = Vec::with_capacity(round.len());
                let reqs: Vec<Dma> = round
                    .iter()
                    .enumerate()
                    .map(|(dev, &i)| {
                        let dir = match access {
                            Access::Read => DmaDir::Read,
                            // One value per device, so the driver stages it into the device's
                            // buffer once; the target's tag is restored after every round.
                            Access::Write => DmaDir::Write(WRITE_TAG | dev as u64),
                        };
                        values.push(match dir {
                            DmaDir::Write(v) => v,
                            DmaDir::Read => 0,
                        });
                        Dma {
                            dev,
                            iova: planned[i].0.iova,
                            len: PROBE_BYTES as usize,
                            dir,
                        }
                    })
                    .collect();
                let results = self.qemu.dma(&reqs)?;
                self.stats.edu_dmas += reqs.len() as u64;
                // Where each write was meant to land, read back in one batch, then the tags
                // restored in another.
                let targets: Vec<Option<u64>> = round
                    .iter()
                    .map(|&i| (access == Access::Write).then_some(planned[i].3).flatten())
                    .collect();
                let ranges: Vec<(u64, usize)> =
                    targets.iter().flatten().map(|&pa| (pa, 8)).collect();
                let mut landed_bytes = if ranges.is_empty() {
                    Vec::new()
                } else {
                    let got = self.qemu.read_mem_batch(&ranges)?;
                    let restore: Vec<(u64, [u8; 8])> = ranges
                        .iter()
                        .map(|&(pa, _)| (pa, tag_of(pa).to_le_bytes()))
                        .collect();
                    let refs: Vec<(u64, &[u8])> =
                        restore.iter().map(|(a, b)| (*a, &b[..])).collect();
                    self.qemu.write_mem_batch(&refs)?;
                    got
                }
                .into_iter();
                for (k, (&i, r)) in round.iter().zip(results).enumerate() {
                    let events: Vec<(u8, bool)> = r.events.iter().map(|e| (e.ty, e.s2)).collect();
                    let value = r.data.as_deref().map_or(0, le_u64);
                    let landed = targets[k].and_then(|pa| {
                        let got = landed_bytes.next().map_or(0, |b| le_u64(&b));
                        (got == values[k]).then_some(pa)
                    });
                    out[i] = decode(access, &events, value, landed);
                }
            }
        }
        Ok(out)
    }

    /// The probes that may be writes, through iommu-testdev 0 in one batch; the tags of
    /// their targets are restored at the end of the same batch.
    fn run_testdev(
        &mut self,
        planned: &[Planned],
        out: &mut [Observed],
    ) -> Result<(), OracleError> {
        let idx: Vec<usize> = (0..planned.len()).filter(|&i| planned[i].4).collect();
        if idx.is_empty() {
            return Ok(());
        }
        // A target no translation can reach (the driver's own structures) when there is none.
        let nowhere = self.qemu.layout().scratch(0);
        let probes: Vec<(u64, u64)> = idx
            .iter()
            .map(|&i| (planned[i].0.iova, planned[i].3.unwrap_or(nowhere)))
            .collect();
        let mut restore: Vec<(u64, [u8; 8])> = idx
            .iter()
            .filter_map(|&i| planned[i].3)
            .map(|pa| (pa, tag_of(pa).to_le_bytes()))
            .collect();
        restore.sort_unstable();
        restore.dedup();
        let refs: Vec<(u64, &[u8])> = restore.iter().map(|(a, b)| (*a, &b[..])).collect();
        let results = self.qemu.testdev_writes(0, &probes, &refs)?;
        self.stats.testdev_dmas += probes.len() as u64;
        for (&i, (outcome, events)) in idx.iter().zip(results) {
            let events: Vec<(u8, bool)> = events.iter().map(|e| (e.ty, e.s2)).collect();
            let landed = (outcome == Outcome::Landed)
                .then_some(planned[i].3)
                .flatten();
            out[i] = match decode(Access::Write, &events, 0, landed) {
                // Not blocked: the device says the write went through.
                Observed::Blocked if outcome == Outcome::Elsewhere => Observed::Elsewhere,
                o => o,
            };
        }
        Ok(())
    }
}

/// At most this many tagged addresses are remembered (then they are forgotten and written
/// again as probes need them).
const MAX_TAGGED: usize = 1 << 16;

/// One probe to issue: what it is, the prediction, the facts that explain deviations, the
/// address it should (or, stale, may) reach, and whether it may be issued as a write.
type Planned = (Probe, Expected, ProbeFacts, Option<u64>, bool);

/// The first (up to) 8 bytes, little-endian.
fn le_u64(d: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = d.len().min(8);
    b[..n].copy_from_slice(&d[..n]);
    u64::from_le_bytes(b)
}

fn matches(expected: &Expected, observed: &Observed) -> bool {
    match (expected, observed) {
        (Expected::Pa(a), Observed::Reached(b)) => a == b,
        (Expected::Fault(a), Observed::Fault(b)) => a == b,
        _ => false,
    }
}
