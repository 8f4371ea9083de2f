//! Makes sure a QEMU the oracle can use is installed: runs `qemu-images/install-qemu.sh`
//! (bookworm-backports, idempotent) once per process when `qemu-system-aarch64` is missing
//! or older than 10, so `cargo test` works on a fresh machine. `PTFUZZ_QEMU_NO_INSTALL=1`
//! turns the install off; the tests then fail, naming the script.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The major version of `qemu-system-aarch64` on PATH, if it runs.
pub fn installed_major() -> Option<u32> {
    let out = Command::new("qemu-system-aarch64")
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v = text.split("version ").nth(1)?;
    v.split('.').next()?.trim().parse().ok()
}

/// The install script of this workspace.
pub fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../qemu-images/install-qemu.sh")
}

/// Installs QEMU if needed (once per process); the error says what to run by hand.
pub fn ensure_installed() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        if installed_major().is_some_and(|m| m >= 10) {
            return Ok(());
        }
        let script = script();
        if std::env::var_os("PTFUZZ_QEMU_NO_INSTALL").is_some() {
            return Err(format!(
                "qemu-system-aarch64 >= 10 is missing and PTFUZZ_QEMU_NO_INSTALL is set; run {}",
                script.display()
            ));
        }
        eprintln!(
            "ptfuzz: qemu-system-aarch64 >= 10 missing; running {}",
            script.display()
        );
        let status = Command::new("bash")
            .arg(&script)
            .status()
            .map_err(|e| format!("{}: {e}", script.display()))?;
        match (status.success(), installed_major()) {
            (true, Some(m)) if m >= 10 => Ok(()),
            _ => Err(format!(
                "{} failed ({status}); QEMU >= 10 is still missing",
                script.display()
            )),
        }
    })
    .clone()
}
