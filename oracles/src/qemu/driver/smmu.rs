//! The SMMUv3 itself: where its structures live in guest RAM, register access, bring-up,
//! command submission and event-queue draining. QEMU consumes the command queue inside the
//! PROD write, so one batch (entries + PROD + CONS read) completes a submission.

use super::command::SmmuCommand;
use super::error::QemuError;
use super::event::Event;
use super::profile::Profile;
use super::qtest::{Batch, QtestClient, Replies};

pub const IDR0: u64 = 0x00;
pub const IDR5: u64 = 0x14;
pub const CR0: u64 = 0x20;
pub const CR0ACK: u64 = 0x24;
pub const CR1: u64 = 0x28;
pub const CR2: u64 = 0x2c;
pub const GERROR: u64 = 0x60;
pub const GERRORN: u64 = 0x64;
pub const STRTAB_BASE: u64 = 0x80;
pub const STRTAB_BASE_CFG: u64 = 0x88;
pub const CMDQ_BASE: u64 = 0x90;
pub const CMDQ_PROD: u64 = 0x98;
pub const CMDQ_CONS: u64 = 0x9c;
pub const EVENTQ_BASE: u64 = 0xa0;
/// Page-1 offsets (QEMU also aliases them on page 0).
pub const EVENTQ_PROD: u64 = 0x100a8;
pub const EVENTQ_CONS: u64 = 0x100ac;

pub const CR0_SMMUEN: u32 = 1;
pub const CR0_EVENTQEN: u32 = 1 << 2;
pub const CR0_CMDQEN: u32 = 1 << 3;
/// Queues on, translation off: GBPA bypass, used to move data in and out of the edus.
pub const CR0_BYPASS: u32 = CR0_EVENTQEN | CR0_CMDQEN;
pub const CR0_ON: u32 = CR0_BYPASS | CR0_SMMUEN;
pub const GERROR_CMDQ_ERR: u32 = 1;
pub const GERROR_EVENTQ_ABT: u32 = 1 << 2;
const CONS_ERR_SHIFT: u32 = 24;
const CONS_ERR_MASK: u32 = 0x7f << CONS_ERR_SHIFT;
const Q_OVFLG: u32 = 1 << 31;
pub const STE_BYTES: u64 = 64;
pub const CD_BYTES: u64 = 64;
pub const SCRATCH_BYTES: u64 = 4096;

/// Addresses of the driver's structures inside the profile's `smmu_structures` window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub stream_table: u64,
    pub cmdq: u64,
    pub evtq: u64,
    /// One 64-byte CD slot per device.
    pub cd_slots: u64,
    /// One 4 KiB scratch page per device (edu data staging and read-back).
    pub scratch: u64,
    /// End of the used part of the window.
    pub end: u64,
}

fn align_up(a: u64, to: u64) -> u64 {
    a.div_ceil(to) * to
}

impl Layout {
    pub fn new(p: &Profile) -> Result<Layout, QemuError> {
        let st_size = STE_BYTES << p.stream_table_log2;
        let stream_table = align_up(p.smmu_structures.start, st_size.max(0x1000));
        let cmdq = align_up(stream_table + st_size, 0x1_0000);
        let evtq = align_up(cmdq + (16 << p.cmdq_log2), 0x1_0000);
        let cd_slots = align_up(evtq + ((Event::BYTES as u64) << p.evtq_log2), 0x1000);
        let scratch = align_up(cd_slots + CD_BYTES * p.devices() as u64, 0x1000);
        let end = scratch + SCRATCH_BYTES * p.devices() as u64;
        if end > p.smmu_structures.end {
            return Err(QemuError::Config(format!(
                "SMMU structures need {:#x}..{end:#x}, beyond smmu_structures end {:#x}",
                p.smmu_structures.start, p.smmu_structures.end
            )));
        }
        Ok(Layout {
            stream_table,
            cmdq,
            evtq,
            cd_slots,
            scratch,
            end,
        })
    }

    pub fn ste(&self, sid: u32) -> u64 {
        self.stream_table + STE_BYTES * sid as u64
    }

    pub fn cd(&self, dev: usize) -> u64 {
        self.cd_slots + CD_BYTES * dev as u64
    }

    pub fn scratch(&self, dev: usize) -> u64 {
        self.scratch + SCRATCH_BYTES * dev as u64
    }
}

/// Adds reads of EVENTQ_PROD and GERROR of the SMMU at `base` to `b`.
pub fn stage_event_poll(base: u64, b: &mut Batch) -> (usize, usize) {
    (b.readl(base + EVENTQ_PROD), b.readl(base + GERROR))
}

/// Driver-side state of the SMMU: register base, layout and queue indices.
pub struct Smmu {
    pub base: u64,
    pub layout: Layout,
    cmdq_log2: u32,
    evtq_log2: u32,
    cmdq_prod: u32,
    /// CMDQ_PROD when CONS was last checked.
    checked_prod: u32,
    /// Commands written since that check, in order (their consumption not yet checked).
    unchecked: Vec<SmmuCommand>,
    evtq_cons: u32,
}

fn dwords_to_bytes(d: &[u64]) -> Vec<u8> {
    d.iter().flat_map(|v| v.to_le_bytes()).collect()
}

impl Smmu {
    pub fn new(p: &Profile) -> Result<Smmu, QemuError> {
        Ok(Smmu {
            base: p.smmu_base,
            layout: Layout::new(p)?,
            cmdq_log2: p.cmdq_log2,
            evtq_log2: p.evtq_log2,
            cmdq_prod: 0,
            checked_prod: 0,
            unchecked: Vec::new(),
            evtq_cons: 0,
        })
    }

    pub fn reg(&self, off: u64) -> u64 {
        self.base + off
    }

    /// How many events lie between two EVENTQ_PROD (or CONS) values.
    pub fn events_between(&self, from: u32, to: u32) -> usize {
        let wrap_mask = (2u32 << self.evtq_log2) - 1;
        ((to & wrap_mask).wrapping_sub(from & wrap_mask) & wrap_mask) as usize
    }

    /// The driver's EVENTQ_CONS: every event before it has been collected.
    pub fn evtq_cons(&self) -> u32 {
        self.evtq_cons
    }

    /// The number of event queue entries.
    pub fn evtq_entries(&self) -> usize {
        1 << self.evtq_log2
    }

    /// Resets and enables the SMMU with every device's STE set to abort (§5 of the fact
    /// sheet), then invalidates all config and TLB entries.
    pub fn bring_up(&mut self, q: &mut QtestClient, p: &Profile) -> Result<(), QemuError> {
        let l = self.layout.clone();
        let mut b = Batch::new();
        b.writel(self.reg(CR0), 0);
        let ack0 = b.readl(self.reg(CR0ACK));
        let idr0 = b.readl(self.reg(IDR0));
        b.memset(p.smmu_structures.start, l.end - p.smmu_structures.start, 0);
        b.writeq(self.reg(STRTAB_BASE), l.stream_table);
        b.writel(self.reg(STRTAB_BASE_CFG), p.stream_table_log2); // FMT linear
        b.writeq(self.reg(CMDQ_BASE), l.cmdq | self.cmdq_log2 as u64);
        b.writel(self.reg(CMDQ_PROD), 0);
        b.writel(self.reg(CMDQ_CONS), 0);
        b.writeq(self.reg(EVENTQ_BASE), l.evtq | self.evtq_log2 as u64);
        b.writel(self.reg(EVENTQ_PROD), 0);
        b.writel(self.reg(EVENTQ_CONS), 0);
        b.writel(self.reg(CR1), 0);
        b.writel(self.reg(CR2), 0);
        let abort = [1u64, 0, 0, 0, 0, 0, 0, 0];
        for dev in 0..p.devices() {
            b.write(l.ste(p.sid(dev)), &dwords_to_bytes(&abort));
        }
        b.writel(self.reg(CR0), CR0_BYPASS);
        let ack1 = b.readl(self.reg(CR0ACK));
        b.writel(self.reg(CR0), CR0_ON);
        let ack2 = b.readl(self.reg(CR0ACK));
        let r = q.run(&b, "SMMU bring-up")?;
        let acks = [
            (r.value(ack0)?, 0),
            (r.value(ack1)?, CR0_BYPASS),
            (r.value(ack2)?, CR0_ON),
        ];
        for (got, want) in acks {
            if got as u32 != want {
                return Err(QemuError::Protocol(format!(
                    "CR0ACK {got:#x}, expected {want:#x}"
                )));
            }
        }
        let idr0 = r.value(idr0)? as u32;
        if idr0 & 3 != 3 {
            return Err(QemuError::Protocol(format!(
                "SMMU IDR0 {idr0:#x} lacks stage 1 + stage 2: need QEMU >= 11.1 with machine virt \
                 (run qemu-images/install-qemu.sh)"
            )));
        }
        self.cmdq_prod = 0;
        self.checked_prod = 0;
        self.unchecked.clear();
        self.evtq_cons = 0;
        self.submit(q, &[SmmuCommand::CfgiAll, SmmuCommand::TlbiNsnhAll])
    }

    /// Adds the STE write (and the CD write) to `b`.
    pub fn stage_ste(&self, b: &mut Batch, sid: u32, ste: &[u64; 8], cd: Option<(u64, [u64; 8])>) {
        if let Some((addr, cd)) = cd {
            b.write(addr, &dwords_to_bytes(&cd));
        }
        b.write(self.layout.ste(sid), &dwords_to_bytes(ste));
    }

    /// Submits `cmds` followed by CMD_SYNC; on CONS.ERR clears the error and skips the rest.
    /// Commands staged earlier and not yet checked are checked with them.
    pub fn submit(&mut self, q: &mut QtestClient, cmds: &[SmmuCommand]) -> Result<(), QemuError> {
        let cap = self.cmdq_capacity();
        let mut all: Vec<SmmuCommand> = cmds.to_vec();
        all.push(SmmuCommand::Sync);
        let mut done = 0;
        for chunk in all.chunks(cap) {
            if self.unchecked.len() + chunk.len() > cap {
                // Keep what one check covers inside the queue, so CONS names one command.
                let mut b = Batch::new();
                let idx = self.stage_check(&mut b);
                let r = q.run(&b, "command submission")?;
                self.finish_check(q, &r, idx)?;
            }
            let mut b = Batch::new();
            let before = self.unchecked.len();
            self.stage_entries(&mut b, chunk);
            let idx = self.stage_check(&mut b);
            let r = q.run(&b, "command submission")?;
            match self.finish_check(q, &r, idx) {
                // Counted among `cmds` when it is one of them.
                Err(QemuError::Refused {
                    index,
                    command,
                    code,
                }) if index >= before => {
                    return Err(QemuError::Refused {
                        index: done + index - before,
                        command,
                        code,
                    })
                }
                r => r?,
            }
            done += chunk.len();
        }
        Ok(())
    }

    /// Commands one submission (or one check) may cover: the queue's entries less one.
    pub fn cmdq_capacity(&self) -> usize {
        (1usize << self.cmdq_log2) - 1
    }

    /// Commands written to the queue whose consumption has not been checked yet.
    pub fn unchecked(&self) -> usize {
        self.unchecked.len()
    }

    /// Adds to `b` the queue entries of `cmds` (at most [`Smmu::cmdq_capacity`] minus
    /// [`Smmu::unchecked`]) and the PROD write that makes QEMU consume them, inside that
    /// write. Nothing in `b` needs an answer: the check ([`Smmu::stage_check`]) may travel
    /// in any later batch, since QEMU's CMDQ_CONS and GERROR keep what happened.
    pub fn stage_entries(&mut self, b: &mut Batch, cmds: &[SmmuCommand]) {
        let size = 1u32 << self.cmdq_log2;
        let wrap_mask = (size << 1) - 1;
        let mut prod = self.cmdq_prod;
        let mut run: Vec<u8> = Vec::new();
        let mut run_start = prod & (size - 1);
        for c in cmds {
            let slot = prod & (size - 1);
            if slot == 0 && !run.is_empty() {
                b.write(self.layout.cmdq + 16 * run_start as u64, &run);
                run.clear();
                run_start = 0;
            }
            run.extend_from_slice(&c.to_bytes());
            prod = (prod + 1) & wrap_mask;
        }
        if !run.is_empty() {
            b.write(self.layout.cmdq + 16 * run_start as u64, &run);
        }
        b.writel(self.reg(CMDQ_PROD), prod);
        self.cmdq_prod = prod;
        self.unchecked.extend_from_slice(cmds);
    }

    /// Adds reads of CMDQ_CONS, GERROR and GERRORN to `b`, for [`Smmu::finish_check`].
    pub fn stage_check(&self, b: &mut Batch) -> [usize; 3] {
        [
            b.readl(self.reg(CMDQ_CONS)),
            b.readl(self.reg(GERROR)),
            b.readl(self.reg(GERRORN)),
        ]
    }

    /// Checks that QEMU consumed every staged command. On CONS.ERR the rest are skipped
    /// (CONS = PROD) and the error acknowledged, and the refused command is reported by its
    /// index among the unchecked ones.
    pub fn finish_check(
        &mut self,
        q: &mut QtestClient,
        r: &Replies,
        [cons_i, gerror_i, gerrorn_i]: [usize; 3],
    ) -> Result<(), QemuError> {
        let size = 1u32 << self.cmdq_log2;
        let wrap_mask = (size << 1) - 1;
        let prod = self.cmdq_prod;
        let old = self.checked_prod;
        let cmds = std::mem::take(&mut self.unchecked);
        self.checked_prod = prod;
        let cons = r.value(cons_i)? as u32;
        let err = (cons & CONS_ERR_MASK) >> CONS_ERR_SHIFT;
        if err != 0 || (r.value(gerror_i)? ^ r.value(gerrorn_i)?) as u32 & GERROR_CMDQ_ERR != 0 {
            // Skip what is left (CONS = PROD clears CONS.ERR), then acknowledge the error.
            // In this order: QEMU resumes consuming as soon as GERRORN is written.
            let gerror = r.value(gerror_i)? as u32;
            let mut b = Batch::new();
            b.writel(self.reg(CMDQ_CONS), prod);
            b.writel(self.reg(GERRORN), gerror);
            let cons2 = b.readl(self.reg(CMDQ_CONS));
            let gerror2 = b.readl(self.reg(GERROR));
            let gerrorn2 = b.readl(self.reg(GERRORN));
            let r2 = q.run(&b, "command error recovery")?;
            let pending = (r2.value(gerror2)? ^ r2.value(gerrorn2)?) as u32 & GERROR_CMDQ_ERR;
            if r2.value(cons2)? as u32 != prod || pending != 0 {
                return Err(QemuError::Protocol(
                    "the command queue did not recover from CONS.ERR".into(),
                ));
            }
            let index = ((cons & wrap_mask).wrapping_sub(old) & wrap_mask) as usize;
            let cmd = cmds
                .get(index)
                .map(|c| format!("{c:?}"))
                .unwrap_or_else(|| "?".into());
            return Err(QemuError::Refused {
                index,
                command: cmd,
                code: err,
            });
        }
        if cons & wrap_mask != prod {
            return Err(QemuError::Protocol(format!(
                "CMDQ_CONS {cons:#x} != PROD {prod:#x} after submission"
            )));
        }
        Ok(())
    }

    /// Adds reads of EVENTQ_PROD and GERROR to `b`; pass the replies to [`Smmu::collect_events`].
    pub fn stage_event_poll(&self, b: &mut Batch) -> (usize, usize) {
        stage_event_poll(self.base, b)
    }

    /// Adds to `b` a read of the next `n` event records after CONS (up to the end of the
    /// queue), for [`Smmu::take_prefetched`]; returns the read's index and record count.
    pub fn prefetch_events(&self, b: &mut Batch, n: usize) -> (usize, usize) {
        let size = self.evtq_entries();
        let start = (self.evtq_cons as usize) & (size - 1);
        let n = n.min(size - start).max(1);
        let rec = Event::BYTES;
        (b.read(self.layout.evtq + (start * rec) as u64, n * rec), n)
    }

    /// Consumes the events up to `prod` from prefetched records (read after the last of
    /// them was produced), when they hold all of them and the queue did not overflow; the
    /// returned batch moves EVENTQ_CONS and may travel with a later batch. `None`: read them
    /// with [`Smmu::collect_events`].
    pub fn take_prefetched(
        &mut self,
        records: &[u8],
        prod: u32,
        gerror: u32,
    ) -> Option<(Vec<Event>, Batch)> {
        let wrap_mask = (2u32 << self.evtq_log2) - 1;
        let overflow = (prod ^ self.evtq_cons) & Q_OVFLG != 0 || gerror & GERROR_EVENTQ_ABT != 0;
        let n = self.events_between(self.evtq_cons, prod);
        if overflow || n * Event::BYTES > records.len() {
            return None;
        }
        let events = records[..n * Event::BYTES]
            .chunks(Event::BYTES)
            .map(Event::decode)
            .collect();
        let new_cons = (prod & wrap_mask) | (prod & Q_OVFLG);
        let mut b = Batch::new();
        b.writel(self.reg(EVENTQ_CONS), new_cons);
        self.evtq_cons = new_cons;
        Some((events, b))
    }

    /// Reads the events between our CONS and `prod` and consumes them.
    pub fn collect_events(
        &mut self,
        q: &mut QtestClient,
        prod: u32,
        gerror: u32,
    ) -> Result<Vec<Event>, QemuError> {
        let size = 1u32 << self.evtq_log2;
        let wrap_mask = (size << 1) - 1;
        let overflow = (prod ^ self.evtq_cons) & Q_OVFLG != 0 || gerror & GERROR_EVENTQ_ABT != 0;
        let n = ((prod & wrap_mask).wrapping_sub(self.evtq_cons & wrap_mask) & wrap_mask) as u64;
        if n == 0 && !overflow {
            return Ok(Vec::new());
        }
        let start = (self.evtq_cons & (size - 1)) as u64;
        let first = n.min(size as u64 - start);
        let rec = Event::BYTES as u64;
        let mut b = Batch::new();
        let mut reads = Vec::new();
        if first > 0 {
            reads.push(b.read(self.layout.evtq + start * rec, (first * rec) as usize));
        }
        if n > first {
            reads.push(b.read(self.layout.evtq, ((n - first) * rec) as usize));
        }
        let new_cons = (prod & wrap_mask) | (prod & Q_OVFLG);
        b.writel(self.reg(EVENTQ_CONS), new_cons);
        if gerror & GERROR_EVENTQ_ABT != 0 {
            b.writel(self.reg(GERRORN), gerror);
        }
        let r = q.run(&b, "event queue read")?;
        self.evtq_cons = new_cons;
        if overflow {
            return Err(QemuError::Protocol(
                "event queue overflowed; events were lost".into(),
            ));
        }
        let mut events = Vec::with_capacity(n as usize);
        for i in reads {
            for rec in r.bytes(i)?.chunks(Event::BYTES) {
                events.push(Event::decode(rec));
            }
        }
        Ok(events)
    }

    /// Drains the event queue.
    pub fn drain_events(&mut self, q: &mut QtestClient) -> Result<Vec<Event>, QemuError> {
        let mut b = Batch::new();
        let (p, g) = self.stage_event_poll(&mut b);
        let r = q.run(&b, "event queue poll")?;
        self.collect_events(q, r.value(p)? as u32, r.value(g)? as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_layout_fits_and_is_aligned() {
        let p = Profile::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../qemu-images/virt-smmuv3.toml"),
        )
        .unwrap();
        let l = Layout::new(&p).unwrap();
        assert_eq!(l.stream_table, 0x7f00_0000);
        assert_eq!(l.stream_table % (64 << 8), 0);
        assert_eq!(l.cmdq % (16 << 10), 0);
        assert_eq!(l.evtq % (32 << 11), 0);
        assert!(l.cmdq >= l.stream_table + (64 << 8) && l.evtq >= l.cmdq + (16 << 10));
        assert!(l.cd_slots >= l.evtq + (32 << 11) && l.scratch >= l.cd(16));
        assert!(l.end <= p.smmu_structures.end);
        assert_eq!(l.ste(0x10), 0x7f00_0400);
    }
}
