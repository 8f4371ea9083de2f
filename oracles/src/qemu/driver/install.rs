//! Makes sure the QEMU the profile names is installed: runs `qemu-images/install-qemu.sh`
//! (QEMU 11.1 from Debian's binary packages into the profile's private prefix; idempotent)
//! once per process when the prefix holds no verified QEMU, so `cargo test` works on a
//! fresh machine. `PTFUZZ_QEMU_NO_INSTALL=1` turns the install off; the tests then fail,
//! naming the script.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::profile::Profile;

/// The file install-qemu.sh writes into a prefix once its QEMU verified (version >= 11.1,
/// iommu-testdev listed); it holds QEMU's version line.
pub const STAMP: &str = ".ptfuzz-verified";

/// The version line recorded in `prefix`'s stamp, if the prefix is installed and verified.
pub fn installed_version(prefix: &Path) -> Option<String> {
    let stamp = std::fs::read_to_string(prefix.join(STAMP)).ok()?;
    let loader = prefix.join("usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2");
    (loader.exists() && prefix.join("usr/bin").exists()).then(|| stamp.trim().to_string())
}

/// The install script of this workspace.
pub fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../qemu-images/install-qemu.sh")
}

/// Installs the default profile's QEMU if needed (once per process); the error says what
/// to run by hand.
pub fn ensure_installed() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let profile = Profile::load_default().map_err(|e| e.to_string())?;
        let Some(prefix) = profile.prefix.clone() else {
            // A profile without a prefix names a system QEMU: it has to run.
            return Command::new(&profile.binary)
                .arg("--version")
                .output()
                .map_err(|e| {
                    format!(
                        "{}: {e} (profile {})",
                        profile.binary,
                        profile.source.display()
                    )
                })
                .map(|_| ());
        };
        if installed_version(&prefix).is_some() {
            return Ok(());
        }
        let script = script();
        if std::env::var_os("PTFUZZ_QEMU_NO_INSTALL").is_some() {
            return Err(format!(
                "no verified QEMU in {} and PTFUZZ_QEMU_NO_INSTALL is set; run {}",
                prefix.display(),
                script.display()
            ));
        }
        eprintln!(
            "ptfuzz: no verified QEMU in {}; running {}",
            prefix.display(),
            script.display()
        );
        let status = Command::new("bash")
            .arg(&script)
            .arg(&prefix)
            .status()
            .map_err(|e| format!("{}: {e}", script.display()))?;
        match (status.success(), installed_version(&prefix)) {
            (true, Some(_)) => Ok(()),
            _ => Err(format!(
                "{} {} failed ({status}); QEMU 11.1 is still missing",
                script.display(),
                prefix.display()
            )),
        }
    })
    .clone()
}
