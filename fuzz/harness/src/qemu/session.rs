//! One QEMU per fuzzing worker (thread), started on first use and reused across inputs;
//! reset between inputs by rewriting tables and invalidating everything, restarted only
//! when it died or hung.

use std::cell::RefCell;
use std::path::PathBuf;

use ptfuzz_oracles::qemu::driver::{Profile, Qemu};
use ptfuzz_oracles::qemu::oracle::{OracleError, QemuOracle};

thread_local! {
    static ORACLE: RefCell<Option<QemuOracle>> = const { RefCell::new(None) };
}

/// Starts QEMU with the default profile (qemu-images/virt-smmuv3.toml).
pub fn start() -> Result<QemuOracle, OracleError> {
    let profile = Profile::load_default().map_err(OracleError::Qemu)?;
    let qemu = Qemu::start(&profile)?;
    Ok(QemuOracle::new(
        qemu,
        profile.data_window.clone(),
        profile.table_window.clone(),
    ))
}

/// Runs `f` on this thread's QEMU oracle (starting it if needed). After a QEMU failure
/// (death, hang, protocol error) the instance is dropped, which kills it; the next call
/// starts a fresh one.
pub fn with_oracle<T>(
    f: impl FnOnce(&mut QemuOracle) -> Result<T, OracleError>,
) -> Result<T, OracleError> {
    ORACLE.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(start()?);
        }
        let r = f(slot.as_mut().expect("started above"));
        if let Err(OracleError::Qemu(_)) = &r {
            *slot = None;
        }
        r
    })
}

/// Starts this thread's QEMU if it is not running; an error means QEMU cannot start at all
/// (missing, too old, broken profile), which callers report loudly.
pub fn ensure_started() -> Result<(), OracleError> {
    ORACLE.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(start()?);
        }
        Ok(())
    })
}

/// Drops (and so kills) this thread's QEMU; the next use starts a fresh one.
pub fn discard() {
    ORACLE.with(|cell| cell.borrow_mut().take());
}

/// Where inputs that killed or hung QEMU are kept: `$PTFUZZ_QEMU_FAILURES`, else
/// `target/qemu-failures/` under the current directory.
pub fn failures_dir() -> PathBuf {
    std::env::var_os("PTFUZZ_QEMU_FAILURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/qemu-failures"))
}

/// Saves the input that made QEMU fail: its raw bytes and why (`.bin` and `.txt`), or, for
/// a generated input without bytes, why alone, which holds the trace up to the failure
/// (`.txt`). Returns where.
pub fn save_failure(data: Option<&[u8]>, why: &str) -> std::io::Result<PathBuf> {
    let dir = failures_dir();
    std::fs::create_dir_all(&dir)?;
    // FNV-1a: a stable name for the same input.
    let h = data
        .unwrap_or(why.as_bytes())
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
    let path = dir.join(format!("qemu-{h:016x}.bin"));
    if let Some(data) = data {
        std::fs::write(&path, data)?;
    }
    let text = path.with_extension("txt");
    std::fs::write(&text, why)?;
    Ok(if data.is_some() { path } else { text })
}
