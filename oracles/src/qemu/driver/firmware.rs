//! The idle firmware: two A64 instructions at the reset vector, `WFI` and a branch back to
//! it. With an idle vCPU and `-icount sleep=off`, QEMU's virtual clock jumps to the next
//! timer, so edu DMAs complete within a main-loop iteration.

use std::io;
use std::path::{Path, PathBuf};

/// A64 `WFI` (hint #3).
pub const WFI: u32 = 0xd503_207f;

/// A64 unconditional branch `B <pc + offset>`; `offset` is in bytes, a multiple of 4.
pub fn branch(offset: i32) -> u32 {
    assert!(offset % 4 == 0, "A64 branch offsets are word multiples");
    0x1400_0000 | ((offset >> 2) as u32 & 0x03ff_ffff)
}

/// The 8 bytes of `wfi.bin`: `loop: wfi; b loop`, little-endian.
pub fn idle_firmware() -> [u8; 8] {
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&WFI.to_le_bytes());
    out[4..].copy_from_slice(&branch(-4).to_le_bytes());
    out
}

/// Writes `wfi.bin` into `dir` and returns its path.
pub fn write_idle_firmware(dir: &Path) -> io::Result<PathBuf> {
    let path = dir.join("wfi.bin");
    std::fs::write(&path, idle_firmware())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_loop_encodes_wfi_then_branch_back() {
        assert_eq!(branch(-4), 0x17ff_ffff);
        assert_eq!(branch(8), 0x1400_0002);
        assert_eq!(
            idle_firmware(),
            [0x7f, 0x20, 0x03, 0xd5, 0xff, 0xff, 0xff, 0x17]
        );
    }
}
