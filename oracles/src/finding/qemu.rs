//! The QEMU SMMUv3 oracle's findings: a DMA probe whose result the model does not predict.

use crate::qemu::oracle::ProbeReport;

finding_enum! {
    /// One probe, with the model's prediction and what QEMU did.
    pub enum QemuFinding: "qemu" {
        /// QEMU still translates as before an op whose invalidation it never received.
        Stale { report: ProbeReport } = "stale-translation" ("{report}"),
        /// QEMU translates otherwise than the model predicts.
        Mismatch { report: ProbeReport } = "translation-mismatch" ("{report}"),
    }
}

impl QemuFinding {
    pub fn op(&self) -> usize {
        match self {
            QemuFinding::Stale { report } | QemuFinding::Mismatch { report } => report.op,
        }
    }
}
