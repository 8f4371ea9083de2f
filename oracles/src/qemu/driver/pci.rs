//! PCI bring-up of the edu and iommu-testdev devices through the high ECAM: check the IDs, assign each
//! BAR0 a slot of the BAR window, enable memory decoding and bus mastering.

use super::edu;
use super::error::QemuError;
use super::profile::Profile;
use super::qtest::{Batch, QtestClient};
use super::testdev;

/// PCI vendor/device ID of QEMU's edu (0x1234:0x11e8).
pub const EDU_VENDOR_DEVICE: u32 = 0x11e8_1234;
const REG_ID: u64 = 0x00;
const REG_COMMAND: u64 = 0x04;
const REG_BAR0: u64 = 0x10;
/// Command register: Memory Space + Bus Master.
const CMD_MEM_MASTER: u32 = 0x6;

/// ECAM address of a config register of bus 0, `slot`, function 0.
pub fn ecam_addr(ecam: u64, slot: u32, reg: u64) -> u64 {
    ecam + ((slot as u64) << 15) + reg
}

/// BAR0 address given to edu `dev`.
pub fn bar(profile: &Profile, dev: usize) -> u64 {
    profile.bar_window.start + profile.bar_size * dev as u64
}

/// Brings up the K edus and the iommu-testdevs after them; fails if one is missing or its
/// BAR does not answer. Each testdev gets its DMA length once.
pub fn bring_up(q: &mut QtestClient, p: &Profile) -> Result<(), QemuError> {
    let mut b = Batch::new();
    let is_edu = |d: usize| d < p.edu_count;
    let ids: Vec<usize> = (0..p.devices())
        .map(|d| b.readl(ecam_addr(p.ecam, p.edu_first_slot + d as u32, REG_ID)))
        .collect();
    for d in 0..p.devices() {
        let slot = p.edu_first_slot + d as u32;
        b.writel(ecam_addr(p.ecam, slot, REG_BAR0), bar(p, d) as u32);
        b.writel(ecam_addr(p.ecam, slot, REG_COMMAND), CMD_MEM_MASTER);
        if !is_edu(d) {
            b.writel(bar(p, d) + testdev::REG_LEN, testdev::LEN);
        }
    }
    let answers: Vec<usize> = (0..p.devices())
        .map(|d| match is_edu(d) {
            true => b.readl(bar(p, d) + edu::REG_ID),
            false => b.readl(bar(p, d) + testdev::REG_LEN),
        })
        .collect();
    let r = q.run(&b, "PCI bring-up")?;
    for d in 0..p.devices() {
        let (name, want_id, want_answer) = match is_edu(d) {
            true => ("edu", EDU_VENDOR_DEVICE, edu::ID_VALUE),
            false => ("iommu-testdev", testdev::VENDOR_DEVICE, testdev::LEN),
        };
        let id = r.value(ids[d])? as u32;
        if id != want_id {
            return Err(QemuError::Protocol(format!(
                "PCI 00:{:02x}.0 has ID {id:#010x}, expected {name} {want_id:#010x} (ECAM {:#x})",
                p.edu_first_slot + d as u32,
                p.ecam
            )));
        }
        let got = r.value(answers[d])? as u32;
        if got != want_answer {
            return Err(QemuError::Protocol(format!(
                "{name} {d} BAR0 {:#x} reads {got:#x}, expected {want_answer:#x}",
                bar(p, d)
            )));
        }
    }
    Ok(())
}
