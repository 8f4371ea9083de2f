//! Errors of the QEMU driver. `Died`, `Timeout` and `Protocol` leave the instance unusable:
//! the caller keeps its input, drops the `Qemu` and starts a new one.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    #[error(
        "`{binary}` not found: run qemu-images/install-qemu.sh to install QEMU >= 11.1 \
         (qemu-system-aarch64 with SMMUv3 stage 2 and iommu-testdev)"
    )]
    NotInstalled { binary: String },
    #[error("cannot start QEMU: {0}")]
    Spawn(String),
    #[error("QEMU died during {during}: {status}")]
    Died { during: String, status: String },
    #[error("QEMU did not answer within {after:?} while waiting for {what}")]
    Timeout { what: String, after: Duration },
    #[error("qtest protocol: {0}")]
    Protocol(String),
    /// A request QEMU cannot take (it would abort QEMU or be refused as a bad STE/CD).
    #[error("configuration QEMU cannot take: {0}")]
    Config(String),
    /// The SMMU refused a command (CONS.ERR); the driver has cleared the error.
    #[error("SMMU refused command {index} ({command}): CONS.ERR {code}")]
    Refused {
        index: usize,
        command: String,
        code: u32,
    },
    #[error("profile {path}: {msg}")]
    Profile { path: String, msg: String },
}

impl QemuError {
    /// True when the QEMU instance is gone or out of step and must be restarted.
    pub fn needs_restart(&self) -> bool {
        matches!(
            self,
            QemuError::Died { .. } | QemuError::Timeout { .. } | QemuError::Protocol(_)
        )
    }
}
