//! The machine profile: QEMU binary and arguments, the guest memory plan, SMMU and PCI
//! addresses, edu count and timeouts, read from `qemu-images/virt-smmuv3.toml` so the
//! oracle and the driver agree on one set of facts.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml_edit::{Document, Item};

use super::error::QemuError;

/// Env var naming a profile file that replaces the default.
pub const PROFILE_ENV: &str = "PTFUZZ_QEMU_PROFILE";
/// Env var overriding the profile's `[pci] probe` (see [`ProbeMode`]).
pub const PROBE_ENV: &str = "PTFUZZ_QEMU_PROBE";

/// Which devices probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeMode {
    /// Every probe through the edus (DMA on a virtual timer, polled); no iommu-testdev.
    Edu,
    /// Writes, and reads the model predicts exactly like writes, through iommu-testdev
    /// (synchronous); the other reads (read-only or write-only pages) through the edus.
    Hybrid,
    /// Every probe through iommu-testdev, as a write: a read of a read-only page is
    /// checked as the write it becomes (a permission fault), so its PA goes unchecked.
    Writes,
}

impl ProbeMode {
    pub fn parse(s: &str) -> Result<ProbeMode, String> {
        match s {
            "edu" => Ok(ProbeMode::Edu),
            "hybrid" => Ok(ProbeMode::Hybrid),
            "writes" => Ok(ProbeMode::Writes),
            _ => Err(format!(
                "probe mode {s:?}: expected `edu`, `hybrid` or `writes`"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ProbeMode::Edu => "edu",
            ProbeMode::Hybrid => "hybrid",
            ProbeMode::Writes => "writes",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Profile {
    /// Where the profile was read from (for messages).
    pub source: PathBuf,
    pub binary: String,
    /// A private root holding QEMU and its libraries (install-qemu.sh): when set, QEMU is
    /// `<prefix>/usr/bin/<binary>` started through the prefix's own dynamic loader.
    pub prefix: Option<PathBuf>,
    pub machine: String,
    pub cpu: String,
    pub memory_mib: u64,
    /// Extra arguments (icount, display, qtest log).
    pub args: Vec<String>,
    /// The `-device` value of one edu.
    pub edu_device: String,
    pub ram_base: u64,
    pub ram_size: u64,
    /// Where the engine's page tables live.
    pub table_window: Range<u64>,
    /// Where the data pages that probes touch live.
    pub data_window: Range<u64>,
    /// The driver's own structures (stream table, queues, CD slots, scratch pages).
    pub smmu_structures: Range<u64>,
    pub smmu_base: u64,
    pub oas_bits: u32,
    pub stream_table_log2: u32,
    pub cmdq_log2: u32,
    pub evtq_log2: u32,
    pub ecam: u64,
    pub bar_window: Range<u64>,
    pub bar_size: u64,
    pub edu_first_slot: u32,
    /// K: the number of edu devices (DMA masters).
    pub edu_count: usize,
    /// Which devices probe (`[pci] probe`, or env `PTFUZZ_QEMU_PROBE`).
    pub probe: ProbeMode,
    /// The number of iommu-testdev devices (synchronous write DMA), on the slots after the
    /// edus; 0 probes with the edus alone.
    pub testdev_count: usize,
    pub reply_timeout: Duration,
    pub start_timeout: Duration,
    pub dma_timeout: Duration,
}

impl Profile {
    /// `$PTFUZZ_QEMU_PROFILE`, else `qemu-images/virt-smmuv3.toml` of this workspace.
    pub fn load_default() -> Result<Profile, QemuError> {
        Profile::load(&Profile::default_path())
    }

    pub fn default_path() -> PathBuf {
        match std::env::var_os(PROFILE_ENV) {
            Some(p) => PathBuf::from(p),
            None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../qemu-images/virt-smmuv3.toml"),
        }
    }

    pub fn load(path: &Path) -> Result<Profile, QemuError> {
        let text = std::fs::read_to_string(path).map_err(|e| QemuError::Profile {
            path: path.display().to_string(),
            msg: e.to_string(),
        })?;
        Profile::parse(&text, path)
    }

    /// Parses profile text; `source` only names it in errors.
    pub fn parse(text: &str, source: &Path) -> Result<Profile, QemuError> {
        let err = |msg: String| QemuError::Profile {
            path: source.display().to_string(),
            msg,
        };
        let doc: Document = text.parse().map_err(|e| err(format!("{e}")))?;
        let r = Reader { doc: &doc };
        let p = Profile {
            source: source.to_path_buf(),
            binary: r.string("qemu", "binary").map_err(err)?,
            prefix: r
                .opt_string("qemu", "prefix")
                .map_err(err)?
                .map(|p| source.parent().unwrap_or(Path::new(".")).join(p)),
            machine: r.string("qemu", "machine").map_err(err)?,
            cpu: r.string("qemu", "cpu").map_err(err)?,
            memory_mib: r.int("qemu", "memory_mib").map_err(err)?,
            args: r.strings("qemu", "args").map_err(err)?,
            edu_device: r.string("qemu", "edu_device").map_err(err)?,
            ram_base: r.int("memory", "ram_base").map_err(err)?,
            ram_size: r.int("memory", "ram_size").map_err(err)?,
            table_window: r.range("memory", "table_window").map_err(err)?,
            data_window: r.range("memory", "data_window").map_err(err)?,
            smmu_structures: r.range("memory", "smmu_structures").map_err(err)?,
            smmu_base: r.int("smmu", "base").map_err(err)?,
            oas_bits: r.int("smmu", "oas_bits").map_err(err)? as u32,
            stream_table_log2: r.int("smmu", "stream_table_log2").map_err(err)? as u32,
            cmdq_log2: r.int("smmu", "cmdq_log2").map_err(err)? as u32,
            evtq_log2: r.int("smmu", "evtq_log2").map_err(err)? as u32,
            ecam: r.int("pci", "ecam").map_err(err)?,
            bar_window: r.range("pci", "bar_window").map_err(err)?,
            bar_size: r.int("pci", "bar_size").map_err(err)?,
            edu_first_slot: r.int("pci", "edu_first_slot").map_err(err)? as u32,
            edu_count: r.int("pci", "edu_count").map_err(err)? as usize,
            probe: ProbeMode::parse(
                &std::env::var(PROBE_ENV)
                    .ok()
                    .or(r.opt_string("pci", "probe").map_err(err)?)
                    .unwrap_or_else(|| "edu".into()),
            )
            .map_err(err)?,
            testdev_count: r.opt_int("pci", "testdev_count").map_err(err)?.unwrap_or(0) as usize,
            reply_timeout: Duration::from_millis(r.int("timeouts", "reply_ms").map_err(err)?),
            start_timeout: Duration::from_millis(r.int("timeouts", "start_ms").map_err(err)?),
            dma_timeout: Duration::from_millis(r.int("timeouts", "dma_ms").map_err(err)?),
        };
        let mut p = p;
        if p.probe == ProbeMode::Edu {
            p.testdev_count = 0;
        } else if p.testdev_count == 0 {
            return Err(err(format!(
                "probe {:?} needs testdev_count >= 1",
                p.probe.name()
            )));
        }
        p.validate().map_err(err)?;
        Ok(p)
    }

    /// Checks that the plan is self-consistent (windows inside RAM and disjoint, K fits
    /// the bus, the BARs fit their window, SIDs fit the stream table).
    pub fn validate(&self) -> Result<(), String> {
        let ram = self.ram_base..self.ram_base + self.ram_size;
        if self.memory_mib << 20 != self.ram_size {
            return Err(format!(
                "memory_mib {} disagrees with ram_size {:#x}",
                self.memory_mib, self.ram_size
            ));
        }
        let windows = [
            ("table_window", &self.table_window),
            ("data_window", &self.data_window),
            ("smmu_structures", &self.smmu_structures),
        ];
        for (name, w) in windows {
            if w.start >= w.end || w.start < ram.start || w.end > ram.end {
                return Err(format!(
                    "{name} {:#x}..{:#x} is empty or outside RAM",
                    w.start, w.end
                ));
            }
        }
        for (i, (a, wa)) in windows.iter().enumerate() {
            for (b, wb) in &windows[i + 1..] {
                if wa.start < wb.end && wb.start < wa.end {
                    return Err(format!("{a} overlaps {b}"));
                }
            }
        }
        if self.edu_count == 0 || self.edu_first_slot as usize + self.devices() > 32 {
            return Err(format!(
                "edu_count {} + testdev_count {} does not fit PCI bus 0 from slot {}",
                self.edu_count, self.testdev_count, self.edu_first_slot
            ));
        }
        if self.bar_window.start + self.bar_size * self.devices() as u64 > self.bar_window.end {
            return Err("the device BARs do not fit bar_window".into());
        }
        let max_sid = (self.edu_first_slot as u64 + self.devices() as u64 - 1) << 3;
        if max_sid >> self.stream_table_log2 != 0 {
            return Err(format!(
                "StreamID {max_sid:#x} does not fit stream_table_log2 {}",
                self.stream_table_log2
            ));
        }
        if !(1..=19).contains(&self.cmdq_log2) || !(1..=19).contains(&self.evtq_log2) {
            return Err("queue sizes must be 2^1..=2^19".into());
        }
        Ok(())
    }

    /// Every DMA master: the edus (indices `0..edu_count`), then the iommu-testdevs.
    pub fn devices(&self) -> usize {
        self.edu_count + self.testdev_count
    }

    /// The program to run and the arguments that come before QEMU's own: the prefix's
    /// loader with its library path and the prefix's binary, or the binary from PATH.
    pub fn program(&self) -> (String, Vec<String>) {
        match &self.prefix {
            None => (self.binary.clone(), Vec::new()),
            Some(p) => {
                let lib = p.join("usr/lib/x86_64-linux-gnu");
                (
                    lib.join("ld-linux-x86-64.so.2").display().to_string(),
                    vec![
                        "--library-path".into(),
                        lib.display().to_string(),
                        p.join("usr/bin").join(&self.binary).display().to_string(),
                    ],
                )
            }
        }
    }

    /// StreamID of device `dev` (edu or iommu-testdev): its PCI requester ID on bus 0.
    pub fn sid(&self, dev: usize) -> u32 {
        (self.edu_first_slot + dev as u32) << 3
    }

    /// The full QEMU argument list, given the firmware path and qtest socket path.
    pub fn command_args(&self, firmware: &Path, socket: &Path) -> Vec<String> {
        let mut a = vec![
            "-M".to_string(),
            self.machine.clone(),
            "-cpu".into(),
            self.cpu.clone(),
            "-m".into(),
            format!("{}M", self.memory_mib),
            "-bios".into(),
            firmware.display().to_string(),
            "-qtest".into(),
            format!("unix:{}", socket.display()),
        ];
        a.extend(self.args.iter().cloned());
        for _ in 0..self.edu_count {
            a.push("-device".into());
            a.push(self.edu_device.clone());
        }
        for _ in 0..self.testdev_count {
            a.push("-device".into());
            a.push("iommu-testdev".into());
        }
        a
    }
}

struct Reader<'a> {
    doc: &'a Document,
}

impl Reader<'_> {
    fn item(&self, table: &str, key: &str) -> Result<&Item, String> {
        self.doc
            .get(table)
            .and_then(|t| t.get(key))
            .ok_or_else(|| format!("missing [{table}] {key}"))
    }

    fn string(&self, table: &str, key: &str) -> Result<String, String> {
        self.item(table, key)?
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("[{table}] {key} must be a string"))
    }

    fn opt_string(&self, table: &str, key: &str) -> Result<Option<String>, String> {
        match self.doc.get(table).and_then(|t| t.get(key)) {
            None => Ok(None),
            Some(_) => self.string(table, key).map(Some),
        }
    }

    fn opt_int(&self, table: &str, key: &str) -> Result<Option<u64>, String> {
        match self.doc.get(table).and_then(|t| t.get(key)) {
            None => Ok(None),
            Some(_) => self.int(table, key).map(Some),
        }
    }

    fn int(&self, table: &str, key: &str) -> Result<u64, String> {
        self.item(table, key)?
            .as_integer()
            .filter(|v| *v >= 0)
            .map(|v| v as u64)
            .ok_or_else(|| format!("[{table}] {key} must be a non-negative integer"))
    }

    fn strings(&self, table: &str, key: &str) -> Result<Vec<String>, String> {
        let arr = self
            .item(table, key)?
            .as_array()
            .ok_or_else(|| format!("[{table}] {key} must be an array"))?;
        arr.iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("[{table}] {key} must hold strings"))
            })
            .collect()
    }

    fn range(&self, table: &str, key: &str) -> Result<Range<u64>, String> {
        let bad = || format!("[{table}] {key} must be [start, end]");
        let arr = self.item(table, key)?.as_array().ok_or_else(bad)?;
        let v: Vec<u64> = arr
            .iter()
            .filter_map(|v| v.as_integer())
            .filter(|v| *v >= 0)
            .map(|v| v as u64)
            .collect();
        match v[..] {
            [s, e] if arr.len() == 2 => Ok(s..e),
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_profile_loads_and_matches_the_fact_sheet() {
        let p = Profile::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../qemu-images/virt-smmuv3.toml"),
        )
        .unwrap();
        assert_eq!(p.smmu_base, 0x0905_0000);
        assert_eq!(p.ecam, 0x40_1000_0000);
        assert_eq!(p.ram_base, 0x4000_0000);
        assert_eq!(p.edu_count, 16);
        assert_eq!(p.sid(0), 0x8);
        assert_eq!(p.sid(15), 0x80);
        let args = p.command_args(Path::new("/x/wfi.bin"), Path::new("/x/qt.sock"));
        assert_eq!(args.iter().filter(|a| a.starts_with("edu,")).count(), 16);
        assert!(args.contains(&"unix:/x/qt.sock".to_string()));
    }

    #[test]
    fn probe_modes_and_the_private_prefix() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../qemu-images/virt-smmuv3.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let p = Profile::parse(
            &text.replace("probe = \"hybrid\"", "probe = \"writes\""),
            &path,
        )
        .unwrap();
        if std::env::var_os(PROBE_ENV).is_none() {
            assert_eq!(p.probe, ProbeMode::Writes);
            assert_eq!(p.testdev_count, 1);
            let args = p.command_args(Path::new("/x/wfi.bin"), Path::new("/x/qt.sock"));
            assert_eq!(args.iter().filter(|a| *a == "iommu-testdev").count(), 1);
            assert_eq!(p.sid(16), 17 << 3, "the testdev follows the 16 edus");
            let edu = Profile::parse(
                &text.replace("probe = \"hybrid\"", "probe = \"edu\""),
                &path,
            )
            .unwrap();
            assert_eq!(edu.testdev_count, 0, "edu mode starts no iommu-testdev");
            let e = Profile::parse(
                &text.replace("probe = \"hybrid\"", "probe = \"dma\""),
                &path,
            )
            .unwrap_err()
            .to_string();
            assert!(e.contains("expected `edu`, `hybrid` or `writes`"), "{e}");
        }
        let (program, pre) = p.program();
        assert!(
            program.ends_with("qemu-images/root/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
            "{program}"
        );
        assert_eq!(pre[0], "--library-path");
        assert!(
            pre[2].ends_with("qemu-images/root/usr/bin/qemu-system-aarch64"),
            "{pre:?}"
        );
    }

    #[test]
    fn bad_profiles_name_the_problem() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../qemu-images/virt-smmuv3.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let missing = text.replace("cmdq_log2 = 10", "");
        let e = Profile::parse(&missing, &path).unwrap_err().to_string();
        assert!(e.contains("missing [smmu] cmdq_log2"), "{e}");
        let overlap = text.replace("data_window = [0x5000_0000", "data_window = [0x4800_0000");
        let e = Profile::parse(&overlap, &path).unwrap_err().to_string();
        assert!(e.contains("table_window overlaps data_window"), "{e}");
        let too_many = text.replace("edu_count = 16", "edu_count = 40");
        assert!(Profile::parse(&too_many, &path).is_err());
    }
}
