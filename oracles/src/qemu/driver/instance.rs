//! [`Qemu`]: one QEMU process with the SMMU enabled and K edus ready, and the operations
//! the oracle needs (memory access, stream configuration, commands, DMA probes, events).

use std::io::ErrorKind;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::{Duration, Instant};

use super::cd::encode_cd;
use super::command::SmmuCommand;
use super::dma::{Dma, DmaDir, DmaResult};
use super::edu;
use super::error::QemuError;
use super::event::Event;
use super::firmware;
use super::pci;
use super::process::{InstanceDir, QemuProcess};
use super::profile::Profile;
use super::qtest::{Batch, QtestClient};
use super::smmu::{stage_event_poll, Layout, Smmu, CR0, CR0_BYPASS, CR0_ON};
use super::ste::{encode_ste, StreamConfig};
use super::testdev::{self, Outcome};

/// One QEMU instance. Dropping it kills QEMU and removes its files. After an error for
/// which [`QemuError::needs_restart`] holds, every call fails: start a new instance.
pub struct Qemu {
    profile: Profile,
    proc: QemuProcess,
    dir: InstanceDir,
    qt: QtestClient,
    smmu: Smmu,
    /// The 8 bytes each edu holds at its write-source buffer offset, if known.
    staged: Vec<Option<u64>>,
    /// Events drained during DMA rounds that no request of the round could claim.
    unclaimed: Vec<Event>,
    broken: Option<String>,
    stats: Stats,
    /// SMMUEN is clear (GBPA bypass) after moving data in or out of the edus.
    bypassed: bool,
    /// BAR0 of each device (edus, then iommu-testdevs).
    bars: Vec<u64>,
    /// A DMA was started whose events were not all collected (an error cut it short).
    evtq_dirty: bool,
    /// A DMA ran since the last CFGI_ALL + TLBI_NSNH_ALL: QEMU may cache something.
    cached_since_invalidate: bool,
}

/// Counters for tuning and reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// qtest socket round trips (a batch is one, or more when its replies are long).
    pub round_trips: u64,
    /// Bytes of qtest commands sent.
    pub bytes_sent: u64,
    /// DMA rounds (one DMA per device in flight).
    pub dma_rounds: u64,
    /// Polls of the edus' command registers.
    pub dma_polls: u64,
}

impl Qemu {
    /// Spawns QEMU, connects qtest, brings up PCI and the SMMU (every STE abort).
    pub fn start(profile: &Profile) -> Result<Qemu, QemuError> {
        let spawn_err = |what: &str, e: std::io::Error| QemuError::Spawn(format!("{what}: {e}"));
        let dir = InstanceDir::create().map_err(|e| spawn_err("temp dir", e))?;
        let fw = firmware::write_idle_firmware(dir.path()).map_err(|e| spawn_err("firmware", e))?;
        let sock = dir.path().join("qt.sock");
        let listener = UnixListener::bind(&sock).map_err(|e| spawn_err("qtest socket", e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| spawn_err("qtest socket", e))?;
        let args = profile.command_args(&fw, &sock);
        let (program, mut full) = profile.program();
        if let Some(prefix) = &profile.prefix {
            let bin = prefix.join("usr/bin").join(&profile.binary);
            if !bin.exists() || !Path::new(&program).exists() {
                return Err(QemuError::NotInstalled {
                    binary: bin.display().to_string(),
                });
            }
        }
        full.extend(args);
        let mut proc = QemuProcess::spawn(&program, &full, dir.path()).map_err(|e| {
            if e.kind() == ErrorKind::NotFound {
                QemuError::NotInstalled {
                    binary: program.clone(),
                }
            } else {
                spawn_err(&program, e)
            }
        })?;
        let deadline = Instant::now() + profile.start_timeout;
        let stream = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if proc.exit_status().is_some() {
                        return Err(QemuError::Died {
                            during: "startup".into(),
                            status: proc.describe_death(),
                        });
                    }
                    if Instant::now() > deadline {
                        return Err(QemuError::Timeout {
                            what: "QEMU to connect to the qtest socket".into(),
                            after: profile.start_timeout,
                        });
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return Err(spawn_err("qtest accept", e)),
            }
        };
        let qt = QtestClient::new(stream, profile.reply_timeout)
            .map_err(|e| spawn_err("qtest socket", e))?;
        let smmu = Smmu::new(profile)?;
        let mut q = Qemu {
            profile: profile.clone(),
            proc,
            dir,
            qt,
            smmu,
            staged: vec![None; profile.edu_count],
            unclaimed: Vec::new(),
            broken: None,
            stats: Stats::default(),
            bypassed: false,
            bars: (0..profile.devices())
                .map(|d| pci::bar(profile, d))
                .collect(),
            evtq_dirty: false,
            // Bring-up ends with CFGI_ALL + TLBI_NSNH_ALL.
            cached_since_invalidate: false,
        };
        let r =
            pci::bring_up(&mut q.qt, profile).and_then(|()| q.smmu.bring_up(&mut q.qt, profile));
        q.check(r)?;
        // QEMU has the firmware loaded and the socket connected: nothing on disk is needed.
        q.dir.remove();
        Ok(q)
    }

    /// Replaces this instance with a fresh one of the same profile (the old QEMU is killed).
    pub fn restart(&mut self) -> Result<(), QemuError> {
        let profile = self.profile.clone();
        self.proc.kill();
        *self = Qemu::start(&profile)?;
        Ok(())
    }

    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// Where the SMMU structures, CD slots and scratch pages are.
    pub fn layout(&self) -> &Layout {
        &self.smmu.layout
    }

    pub fn stats(&self) -> Stats {
        Stats {
            round_trips: self.qt.round_trips(),
            bytes_sent: self.qt.bytes_sent(),
            ..self.stats
        }
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// K: the number of edu devices.
    pub fn devices(&self) -> usize {
        self.profile.edu_count
    }

    /// The number of iommu-testdevs (device indices `devices()..all_devices()`).
    pub fn testdevs(&self) -> usize {
        self.profile.testdev_count
    }

    /// Every DMA master: edus and iommu-testdevs.
    pub fn all_devices(&self) -> usize {
        self.profile.devices()
    }

    /// StreamID of device `dev` (its PCI requester ID, `(slot) << 3`).
    pub fn sid(&self, dev: usize) -> u32 {
        self.profile.sid(dev)
    }

    /// Marks the instance unusable on errors that need a restart, and describes deaths.
    fn check<T>(&mut self, r: Result<T, QemuError>) -> Result<T, QemuError> {
        match r {
            Err(QemuError::Died { during, .. }) => {
                let status = self.proc.describe_death();
                self.broken = Some(format!("QEMU died during {during}"));
                Err(QemuError::Died { during, status })
            }
            Err(e) if e.needs_restart() => {
                self.broken = Some(e.to_string());
                Err(e)
            }
            r => r,
        }
    }

    fn usable(&self) -> Result<(), QemuError> {
        match &self.broken {
            Some(why) => Err(QemuError::Protocol(format!(
                "instance unusable after an earlier error ({why}); restart it"
            ))),
            None => Ok(()),
        }
    }

    /// Sends `b` (after whatever was deferred). Commands staged without a check get it in
    /// the same round trip: a refused one fails this call.
    fn run(&mut self, b: &Batch, what: &str) -> Result<super::qtest::Replies, QemuError> {
        self.usable()?;
        if self.smmu.unchecked() == 0 {
            let r = self.qt.run(b, what);
            return self.check(r);
        }
        let mut tail = Batch::new();
        let idx = self.smmu.stage_check(&mut tail);
        let r = self.qt.run_with_tail(b, &tail, what);
        let (r, t) = self.check(r)?;
        let c = self.smmu.finish_check(&mut self.qt, &t, idx);
        self.check(c)?;
        Ok(r)
    }

    fn check_ram(&self, pa: u64, len: u64) -> Result<(), QemuError> {
        let (base, size) = (self.profile.ram_base, self.profile.ram_size);
        if pa < base || pa.checked_add(len).is_none_or(|e| e > base + size) {
            return Err(QemuError::Config(format!(
                "{pa:#x}+{len:#x} is outside guest RAM"
            )));
        }
        Ok(())
    }

    pub fn write_mem(&mut self, pa: u64, bytes: &[u8]) -> Result<(), QemuError> {
        self.write_mem_batch(&[(pa, bytes)])
    }

    /// Writes every chunk in one socket write (split only to bound reply buffering).
    pub fn write_mem_batch(&mut self, chunks: &[(u64, &[u8])]) -> Result<(), QemuError> {
        let b = self.write_batch(chunks)?;
        self.run(&b, "memory write").map(|_| ())
    }

    /// Like [`Qemu::write_mem_batch`], but the writes travel in front of the next qtest
    /// batch, whatever it is (they land before anything it does): one round trip fewer.
    /// A failure shows on that next operation.
    pub fn write_mem_deferred(&mut self, chunks: &[(u64, &[u8])]) -> Result<(), QemuError> {
        self.usable()?;
        let b = self.write_batch(chunks)?;
        let r = self.qt.defer(&b);
        self.check(r)
    }

    fn write_batch(&self, chunks: &[(u64, &[u8])]) -> Result<Batch, QemuError> {
        let mut b = Batch::new();
        for (pa, bytes) in chunks {
            self.check_ram(*pa, bytes.len() as u64)?;
            b.write(*pa, bytes);
        }
        Ok(b)
    }

    pub fn read_mem(&mut self, pa: u64, len: usize) -> Result<Vec<u8>, QemuError> {
        Ok(self.read_mem_batch(&[(pa, len)])?.remove(0))
    }

    /// Reads every range in one batch.
    pub fn read_mem_batch(&mut self, ranges: &[(u64, usize)]) -> Result<Vec<Vec<u8>>, QemuError> {
        let mut b = Batch::new();
        let mut idx = Vec::with_capacity(ranges.len());
        for &(pa, len) in ranges {
            self.check_ram(pa, len as u64)?;
            let parts: Vec<usize> = (0..len)
                .step_by(1 << 16)
                .map(|o| b.read(pa + o as u64, (len - o).min(1 << 16)))
                .collect();
            idx.push(parts);
        }
        let r = self.run(&b, "memory read")?;
        let mut out = Vec::with_capacity(ranges.len());
        for (parts, &(_, len)) in idx.into_iter().zip(ranges) {
            let mut bytes = Vec::with_capacity(len);
            for i in parts {
                bytes.extend(r.bytes(i)?);
            }
            if bytes.len() != len {
                return Err(QemuError::Protocol(format!(
                    "read of {len} bytes returned {}",
                    bytes.len()
                )));
            }
            out.push(bytes);
        }
        Ok(out)
    }

    pub fn memset(&mut self, pa: u64, len: u64, byte: u8) -> Result<(), QemuError> {
        self.check_ram(pa, len)?;
        let mut b = Batch::new();
        b.memset(pa, len, byte);
        self.run(&b, "memset").map(|_| ())
    }

    /// Writes the STE of `dev` (and its CD), then CFGI_STE + CMD_SYNC.
    pub fn configure(&mut self, dev: usize, cfg: &StreamConfig) -> Result<(), QemuError> {
        self.configure_many(&[(dev, *cfg)])
    }

    /// [`Qemu::configure`] for several devices: one batch of STE/CD writes, then one
    /// submission of their CFGI_STEs + CMD_SYNC. Nothing is written if one is refused.
    pub fn configure_many(&mut self, cfgs: &[(usize, StreamConfig)]) -> Result<(), QemuError> {
        let (b, cmds) = self.stage_configs(cfgs)?;
        self.run(&b, "STE write")?;
        self.submit(&cmds)
    }

    /// [`Qemu::configure_many`] without a round trip of its own: the STE/CD writes and the
    /// CFGI_STEs + CMD_SYNC travel in front of the next batch, which also checks that the
    /// commands were taken (a refusal fails that call).
    pub fn configure_many_deferred(
        &mut self,
        cfgs: &[(usize, StreamConfig)],
    ) -> Result<(), QemuError> {
        self.usable()?;
        let (b, cmds) = self.stage_configs(cfgs)?;
        let r = self.qt.defer(&b);
        self.check(r)?;
        self.submit_deferred(&cmds)
    }

    /// The STE (and CD) writes of `cfgs` and their CFGI_STE commands.
    fn stage_configs(
        &self,
        cfgs: &[(usize, StreamConfig)],
    ) -> Result<(Batch, Vec<SmmuCommand>), QemuError> {
        let oas = self.profile.oas_bits;
        let mut b = Batch::new();
        let mut cmds = Vec::with_capacity(cfgs.len());
        for (dev, cfg) in cfgs {
            let dev = *dev;
            self.check_dev(dev)?;
            let (s1, cd_addr) = match cfg {
                StreamConfig::S1(c) | StreamConfig::Nested(c, _) => {
                    (Some(c), c.cd_addr.unwrap_or(self.layout().cd(dev)))
                }
                _ => (None, self.layout().cd(dev)),
            };
            let ste = encode_ste(cfg, cd_addr, oas)?;
            let cd = match s1 {
                Some(c) => {
                    self.check_ram(cd_addr, 64)?;
                    Some((cd_addr, encode_cd(c, oas)?))
                }
                None => None,
            };
            self.smmu.stage_ste(&mut b, self.sid(dev), &ste, cd);
            cmds.push(SmmuCommand::CfgiSte { sid: self.sid(dev) });
        }
        Ok((b, cmds))
    }

    /// Submits the commands followed by CMD_SYNC. A refused command (CONS.ERR) is
    /// `QemuError::Refused`; the error is cleared and later commands are skipped.
    pub fn submit(&mut self, cmds: &[SmmuCommand]) -> Result<(), QemuError> {
        self.usable()?;
        let r = self.smmu.submit(&mut self.qt, cmds);
        self.note_full_invalidation(cmds);
        self.check(r)
    }

    /// Like [`Qemu::submit`] without a round trip of its own: the commands and CMD_SYNC are
    /// written, and PROD moved, in front of the next batch (QEMU consumes them inside that
    /// PROD write, before anything the batch does), which also checks CMDQ_CONS: a refused
    /// command fails that next call. Too many for the queue: submitted now.
    pub fn submit_deferred(&mut self, cmds: &[SmmuCommand]) -> Result<(), QemuError> {
        self.usable()?;
        if self.smmu.unchecked() + cmds.len() + 1 > self.smmu.cmdq_capacity() {
            return self.submit(cmds);
        }
        let mut all = Vec::with_capacity(cmds.len() + 1);
        all.extend_from_slice(cmds);
        all.push(SmmuCommand::Sync);
        let mut b = Batch::new();
        self.smmu.stage_entries(&mut b, &all);
        let r = self.qt.defer(&b);
        self.check(r)?;
        self.note_full_invalidation(cmds);
        Ok(())
    }

    /// CFGI_ALL with TLBI_NSNH_ALL empties every cache QEMU keeps.
    fn note_full_invalidation(&mut self, cmds: &[SmmuCommand]) {
        if cmds.contains(&SmmuCommand::CfgiAll) && cmds.contains(&SmmuCommand::TlbiNsnhAll) {
            self.cached_since_invalidate = false;
        }
    }

    pub fn drain_events(&mut self) -> Result<Vec<Event>, QemuError> {
        self.usable()?;
        let r = self.smmu.drain_events(&mut self.qt);
        let mut events = std::mem::take(&mut self.unclaimed);
        events.extend(self.check(r)?);
        Ok(events)
    }

    /// CFGI_ALL + TLBI_NSNH_ALL + SYNC and an emptied event queue: the state between inputs.
    pub fn invalidate_all(&mut self) -> Result<(), QemuError> {
        self.submit(&[SmmuCommand::CfgiAll, SmmuCommand::TlbiNsnhAll])?;
        self.drain_events()?;
        self.evtq_dirty = false;
        Ok(())
    }

    /// The same state as [`Qemu::invalidate_all`], without round trips where none are
    /// needed: CFGI_ALL + TLBI_NSNH_ALL + SYNC travel in front of the next batch, and are
    /// left out when no DMA ran since the last ones (QEMU caches only what a DMA's
    /// translation fetched, so its caches are still empty); the event queue is read only
    /// when a DMA's events were left uncollected (every probe batch collects its own).
    /// Events kept unclaimed are dropped.
    pub fn invalidate_all_deferred(&mut self) -> Result<(), QemuError> {
        self.usable()?;
        if self.evtq_dirty {
            self.drain_events()?;
            self.evtq_dirty = false;
        }
        self.unclaimed.clear();
        if self.cached_since_invalidate {
            self.submit_deferred(&[SmmuCommand::CfgiAll, SmmuCommand::TlbiNsnhAll])?;
        }
        Ok(())
    }

    /// Pings QEMU (one register read) unless it has exited or an error broke the instance.
    pub fn is_alive(&mut self) -> bool {
        if self.broken.is_some() || self.proc.exit_status().is_some() {
            return false;
        }
        let mut b = Batch::new();
        b.readl(self.smmu.reg(super::smmu::IDR0));
        self.run(&b, "liveness ping").is_ok()
    }

    fn check_dev(&self, dev: usize) -> Result<(), QemuError> {
        if dev >= self.all_devices() {
            return Err(QemuError::Config(format!(
                "device {dev} >= K = {}",
                self.devices()
            )));
        }
        Ok(())
    }

    /// Runs the DMAs, one per device at a time (a device's later requests go in later
    /// rounds, in order). Events recorded during a round are given to the request of the
    /// same StreamID; others are kept for [`Qemu::drain_events`].
    pub fn dma(&mut self, reqs: &[Dma]) -> Result<Vec<DmaResult>, QemuError> {
        for r in reqs {
            if r.dev >= self.devices() {
                return Err(QemuError::Config(format!(
                    "device {} is no edu (K = {})",
                    r.dev,
                    self.devices()
                )));
            }
            if !(1..=8).contains(&r.len) {
                return Err(QemuError::Config(format!(
                    "DMA length {} outside 1..=8",
                    r.len
                )));
            }
        }
        let mut results: Vec<Option<DmaResult>> = vec![None; reqs.len()];
        let mut round_of = vec![0usize; self.devices()];
        let mut rounds: Vec<Vec<usize>> = Vec::new();
        for (i, r) in reqs.iter().enumerate() {
            let k = round_of[r.dev];
            round_of[r.dev] += 1;
            if rounds.len() <= k {
                rounds.push(Vec::new());
            }
            rounds[k].push(i);
        }
        for round in rounds {
            let round_reqs: Vec<&Dma> = round.iter().map(|&i| &reqs[i]).collect();
            let out = self.dma_round(&round_reqs)?;
            for (i, res) in round.into_iter().zip(out) {
                results[i] = Some(res);
            }
        }
        Ok(results
            .into_iter()
            .map(|r| r.expect("every request ran in a round"))
            .collect())
    }

    /// One round: distinct devices, all DMAs in flight together. SMMUEN is cleared to move
    /// data in and out of the edus (GBPA bypass) and set again lazily, by the next probe
    /// kick: nothing else depends on it.
    fn dma_round(&mut self, reqs: &[&Dma]) -> Result<Vec<DmaResult>, QemuError> {
        self.stats.dma_rounds += 1;
        self.evtq_dirty = true;
        self.cached_since_invalidate = true;
        let layout = self.layout().clone();
        let bars = self.bars.clone();
        let bar = |d: usize| bars[d];
        // 1. Stage write data into the edus' buffers: bypass, device reads its scratch page.
        let stage: Vec<(usize, u64)> = reqs
            .iter()
            .filter_map(|r| match r.dir {
                DmaDir::Write(v) if self.staged[r.dev] != Some(v) => Some((r.dev, v)),
                _ => None,
            })
            .collect();
        if !stage.is_empty() {
            let mut b = Batch::new();
            for &(d, v) in &stage {
                b.write(layout.scratch(d), &v.to_le_bytes());
            }
            b.writel(self.smmu.reg(CR0), CR0_BYPASS);
            self.bypassed = true;
            for &(d, _) in &stage {
                edu::kick_read(&mut b, bar(d), layout.scratch(d), edu::BUF_WRITE_SRC, 8);
            }
            let devs: Vec<usize> = stage.iter().map(|s| s.0).collect();
            self.kick_and_wait(b, &devs, "edu data staging", |_| ())?;
            for &(d, v) in &stage {
                // Known only once the staging DMA has completed.
                self.staged[d] = Some(v);
            }
        }
        // 2. The probes, translated by the SMMU.
        let mut b = Batch::new();
        if self.bypassed {
            b.writel(self.smmu.reg(CR0), CR0_ON);
            self.bypassed = false;
        }
        for r in reqs {
            match r.dir {
                DmaDir::Read => {
                    edu::kick_read(&mut b, bar(r.dev), r.iova, edu::BUF_READ_DST, r.len)
                }
                DmaDir::Write(_) => {
                    edu::kick_write(&mut b, bar(r.dev), edu::BUF_WRITE_SRC, r.iova, r.len)
                }
            }
        }
        let readers: Vec<&Dma> = reqs
            .iter()
            .copied()
            .filter(|r| r.dir == DmaDir::Read)
            .collect();
        let devs: Vec<usize> = reqs.iter().map(|r| r.dev).collect();
        let base = self.smmu.base;
        let (mut rep, mut ev) = self.kick_and_wait(b, &devs, "edu DMA", |b| {
            readers.is_empty().then(|| stage_event_poll(base, b))
        })?;
        // 3. Read back what read probes fetched: bypass, device writes its scratch page.
        let back = |d: usize| layout.scratch(d) + 0x800;
        let mut reads = Vec::new();
        if !readers.is_empty() {
            let mut b = Batch::new();
            b.writel(self.smmu.reg(CR0), CR0_BYPASS);
            self.bypassed = true;
            for r in &readers {
                edu::kick_write(&mut b, bar(r.dev), edu::BUF_READ_DST, back(r.dev), r.len);
            }
            let devs: Vec<usize> = readers.iter().map(|r| r.dev).collect();
            let (rep2, (idx, ev2)) = self.kick_and_wait(b, &devs, "edu read-back", |b| {
                let idx: Vec<usize> = readers.iter().map(|r| b.read(back(r.dev), r.len)).collect();
                (idx, Some(stage_event_poll(base, b)))
            })?;
            rep = rep2;
            reads = idx;
            ev = ev2;
        }
        let (prod_i, gerror_i) = ev.expect("the last batch polled the event queue");
        let (prod, gerror) = (rep.value(prod_i)? as u32, rep.value(gerror_i)? as u32);
        let r = self.smmu.collect_events(&mut self.qt, prod, gerror);
        let events = self.check(r)?;
        self.evtq_dirty = false;
        // 4. Results and event attribution by StreamID.
        let mut data = readers
            .iter()
            .zip(reads)
            .map(|(r, i)| Ok((r.dev, rep.bytes(i)?)))
            .collect::<Result<Vec<_>, QemuError>>()?;
        let mut out: Vec<DmaResult> = reqs
            .iter()
            .map(|r| DmaResult {
                data: match r.dir {
                    DmaDir::Read => {
                        let pos = data
                            .iter()
                            .position(|(d, _)| *d == r.dev)
                            .expect("reader has data");
                        Some(data.swap_remove(pos).1)
                    }
                    DmaDir::Write(_) => None,
                },
                events: Vec::new(),
            })
            .collect();
        for e in events {
            match reqs.iter().position(|r| self.sid(r.dev) == e.sid) {
                Some(i) => out[i].events.push(e),
                None => self.unclaimed.push(e),
            }
        }
        Ok(out)
    }

    /// Sends `b` (the kicks) with polls of the edus' command registers appended, and polls
    /// again until every DMA of `devs` has finished. `extra` appends reads after the polls
    /// of each batch; the replies returned are those of the batch in which the last DMA was
    /// seen finished. They are valid: commands of a batch run in order, so a DMA that a
    /// poll saw finished finished before the reads that follow it. This saves a round trip.
    fn kick_and_wait<X>(
        &mut self,
        mut b: Batch,
        devs: &[usize],
        what: &str,
        extra: impl Fn(&mut Batch) -> X,
    ) -> Result<(super::qtest::Replies, X), QemuError> {
        let start = Instant::now();
        let mut pending = devs.to_vec();
        let mut polls = 0u64;
        loop {
            let idx: Vec<usize> = pending
                .iter()
                .map(|&d| b.readl(self.bars[d] + edu::REG_DMA_CMD))
                .collect();
            let x = extra(&mut b);
            self.stats.dma_polls += 1;
            let r = self.run(&b, what)?;
            let mut still = Vec::with_capacity(pending.len());
            for (d, i) in pending.iter().zip(idx) {
                if r.value(i)? & edu::CMD_RUN != 0 {
                    still.push(*d);
                }
            }
            if still.is_empty() {
                return Ok((r, x));
            }
            pending = still;
            if start.elapsed() > self.profile.dma_timeout {
                let e = QemuError::Timeout {
                    what: format!("{what}: completion of devices {pending:?}"),
                    after: self.profile.dma_timeout,
                };
                return self.check(Err(e));
            }
            b = Batch::new();
            // Leave the CPU to QEMU's main loop and vCPU thread, which fire the edu timer:
            // yield for two polls, then back off (60 us steps, at most 400 us). On the
            // loaded 2-core host this beat pure busy polling (stalls of tens of polls)
            // and pure sleeping; see docs/QEMU-DRIVER.md.
            polls += 1;
            if polls <= 2 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros((60 * (polls - 2)).min(400)));
            }
        }
    }

    /// Write probes through iommu-testdev `t` (0-based among the testdevs): for each
    /// `(iova, pa)`, the device writes 8 bytes of its pattern at `iova` and checks `pa`.
    /// Everything runs in one qtest batch (the DMA is synchronous), with EVENTQ_PROD read
    /// after each trigger so every probe gets exactly the events it caused; `then` (memory
    /// writes, e.g. restoring what the probes overwrote) ends the same batch. The batch
    /// also reads the next 2 event records per probe (a refused 8-byte write records
    /// about two); only when there are more, or the queue wraps, does reading them take
    /// another round trip. Moving EVENTQ_CONS travels with the next batch.
    pub fn testdev_writes(
        &mut self,
        t: usize,
        probes: &[(u64, u64)],
        then: &[(u64, &[u8])],
    ) -> Result<Vec<(Outcome, Vec<Event>)>, QemuError> {
        if t >= self.testdevs() {
            return Err(QemuError::Config(format!(
                "iommu-testdev {t} of {}",
                self.testdevs()
            )));
        }
        for &(pa, bytes) in then {
            self.check_ram(pa, bytes.len() as u64)?;
        }
        // At most 2 events per refused 8-byte write: stay well inside the event queue.
        let per_batch = (self.smmu.evtq_entries() / 4).max(1);
        let mut out = Vec::with_capacity(probes.len());
        let chunks: Vec<&[(u64, u64)]> = probes.chunks(per_batch).collect();
        for (ci, chunk) in chunks.iter().enumerate() {
            let bar = self.bars[self.devices() + t];
            let mut b = Batch::new();
            if self.bypassed {
                b.writel(self.smmu.reg(CR0), CR0_ON);
                self.bypassed = false;
            }
            let idx: Vec<(usize, usize)> = chunk
                .iter()
                .map(|&(iova, pa)| {
                    let res = testdev::probe(&mut b, bar, iova, pa);
                    (res, b.readl(self.smmu.reg(super::smmu::EVENTQ_PROD)))
                })
                .collect();
            let gerror = b.readl(self.smmu.reg(super::smmu::GERROR));
            // The records a refused probe leaves (about two each), read in the same batch.
            let (records, _) = self.smmu.prefetch_events(&mut b, 2 * chunk.len());
            if ci + 1 == chunks.len() {
                for &(pa, bytes) in then {
                    b.write(pa, bytes);
                }
            }
            self.evtq_dirty = true;
            self.cached_since_invalidate = true;
            let r = self.run(&b, "iommu-testdev probes")?;
            let cons = self.smmu.evtq_cons();
            let mut prev = cons;
            let mut counts = Vec::with_capacity(chunk.len());
            let mut outcomes = Vec::with_capacity(chunk.len());
            for &(res, prod) in &idx {
                let bytes = r.bytes(res)?;
                let outcome = testdev::result_of(&bytes)
                    .and_then(Outcome::from_result)
                    .ok_or_else(|| {
                        QemuError::Protocol(format!("iommu-testdev registers {bytes:02x?}"))
                    });
                outcomes.push(self.check(outcome)?);
                let prod = r.value(prod)? as u32;
                counts.push(self.smmu.events_between(prev, prod));
                prev = prod;
            }
            let gerror = r.value(gerror)? as u32;
            let events = if prev == cons && gerror & super::smmu::GERROR_EVENTQ_ABT == 0 {
                Vec::new()
            } else if let Some((events, cons_write)) =
                self.smmu.take_prefetched(&r.bytes(records)?, prev, gerror)
            {
                let r = self.qt.defer(&cons_write);
                self.check(r)?;
                events
            } else {
                let got = self.smmu.collect_events(&mut self.qt, prev, gerror);
                self.check(got)?
            };
            self.evtq_dirty = false;
            let mut events = events.into_iter();
            for (outcome, n) in outcomes.into_iter().zip(counts) {
                out.push((outcome, events.by_ref().take(n).collect()));
            }
            self.unclaimed.extend(events);
        }
        Ok(out)
    }
}
