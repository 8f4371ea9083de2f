//! The one list of named configurations per format that the generic suites run over
//! (`engine/tests/suite.rs`, and `oracles/tests/suite.rs` through `#[path]`).
//!
//! As Linux generic_pt runs its kunit tests once per format, every generic test body runs
//! once per format, as a named test group (`arm64_s1::`, `armv7s::`, ...), over every
//! configuration listed here for that format. A new format needs one arm in [`configs`]
//! (and one `suite!` line in each suite); every generic test then runs over it.
//!
//! The lists are chosen from docs/SEMANTICS.md "Domains": every granule a format has, the
//! smallest and largest IAS/OAS, a concatenated stage-2 root under each policy
//! (`concat=required` and `concat=max`), and host pages larger than the granule.
#![allow(dead_code)]

use ptfuzz_engine::{Concat, DomainConfig, FormatKind, Granule};

/// One configuration of a format, with the name a failing assertion prints.
#[derive(Clone, Copy, Debug)]
pub struct Named {
    pub name: &'static str,
    pub cfg: DomainConfig,
}

fn named(
    name: &'static str,
    format: FormatKind,
    granule: Granule,
    ias: u32,
    oas: u32,
    concat: Concat,
    host_page: Option<Granule>,
) -> Named {
    let mut cfg = DomainConfig::new(format, granule, ias, oas);
    cfg.concat = concat;
    cfg.host_page = host_page;
    Named { name, cfg }
}

/// Instantiates generic test bodies once per format, each format a test module named for
/// it: `per_format!(all: [body, ...]);` for every format, `per_format!(lpae: [...]);` for
/// the LPAE ones (an oracle that decodes LPAE only). Each `body` is a
/// `fn body(FormatKind)` in the invoking file. A new format adds one line to `all:`.
#[allow(unused_macro_rules, unused_macros)]
macro_rules! per_format {
    (all: $bodies:tt) => {
        per_format!(@groups $bodies arm64_s1 Arm64S1, arm64_s2 Arm64S2,
            arm32_lpae_s1 Arm32LpaeS1, arm32_lpae_s2 Arm32LpaeS2, armv7s Armv7s);
    };
    (lpae: $bodies:tt) => {
        per_format!(@groups $bodies arm64_s1 Arm64S1, arm64_s2 Arm64S2,
            arm32_lpae_s1 Arm32LpaeS1, arm32_lpae_s2 Arm32LpaeS2);
    };
    (@groups $bodies:tt $($group:ident $kind:ident),*) => {
        $(per_format!(@group $group $kind $bodies);)*
    };
    (@group $group:ident $kind:ident [$($body:ident),* $(,)?]) => {
        mod $group {
            const F: ptfuzz_engine::FormatKind = ptfuzz_engine::FormatKind::$kind;
            $(
                #[test]
                fn $body() {
                    super::$body(F)
                }
            )*
        }
    };
}

/// Every format the suites instantiate, with its test-group name (as `per_format!`).
pub const FORMATS: [(FormatKind, &str); 5] = [
    (FormatKind::Arm64S1, "arm64_s1"),
    (FormatKind::Arm64S2, "arm64_s2"),
    (FormatKind::Arm32LpaeS1, "arm32_lpae_s1"),
    (FormatKind::Arm32LpaeS2, "arm32_lpae_s2"),
    (FormatKind::Armv7s, "armv7s"),
];

/// The coherent configurations of `format`.
fn base_configs(format: FormatKind) -> Vec<Named> {
    use Concat::{Max, Required as Req};
    use FormatKind::*;
    use Granule::*;
    let f = format;
    match format {
        Arm64S1 => vec![
            named("4k ias48 oas48", f, G4K, 48, 48, Req, None),
            named("4k ias39 oas40", f, G4K, 39, 40, Req, None),
            named("4k ias39 oas48", f, G4K, 39, 48, Req, None),
            named("4k ias32 oas32", f, G4K, 32, 32, Req, None),
            named("16k ias48 oas48", f, G16K, 48, 48, Req, None),
            named("16k ias36 oas40", f, G16K, 36, 40, Req, None),
            named("64k ias48 oas48", f, G64K, 48, 48, Req, None),
            named("64k ias42 oas44", f, G64K, 42, 44, Req, None),
            named("64k ias32 oas36", f, G64K, 32, 36, Req, None),
            named(
                "4k ias39 oas48 hostpage16k",
                f,
                G4K,
                39,
                48,
                Req,
                Some(G16K),
            ),
            named(
                "4k ias48 oas48 hostpage64k",
                f,
                G4K,
                48,
                48,
                Req,
                Some(G64K),
            ),
            named(
                "16k ias47 oas48 hostpage64k",
                f,
                G16K,
                47,
                48,
                Req,
                Some(G64K),
            ),
        ],
        Arm64S2 => vec![
            // Linux's policy: L1 with 2 concatenated tables (no L0 without PA >= 44).
            named("4k ias40 oas40", f, G4K, 40, 40, Req, None),
            named("4k ias48 oas48", f, G4K, 48, 48, Req, None),
            named("4k ias32 oas48", f, G4K, 32, 48, Req, None),
            // concat=max: L2, 4 concatenated tables, no 1G leaf.
            named("4k ias32 oas48 concat=max", f, G4K, 32, 48, Max, None),
            named("16k ias40 oas40", f, G16K, 40, 40, Req, None),
            named("16k ias48 oas48", f, G16K, 48, 48, Req, None),
            // concat=max: L2, 16 concatenated tables.
            named("16k ias40 oas48 concat=max", f, G16K, 40, 48, Max, None),
            named("64k ias46 oas46", f, G64K, 46, 46, Req, None),
            named("64k ias48 oas48", f, G64K, 48, 48, Req, None),
            named("64k ias46 oas46 concat=max", f, G64K, 46, 46, Max, None),
            named("64k ias32 oas48", f, G64K, 32, 48, Req, None),
            // concat=max: L3, 8 concatenated tables, 64K leaves only.
            named("64k ias32 oas48 concat=max", f, G64K, 32, 48, Max, None),
            named(
                "4k ias40 oas40 hostpage16k",
                f,
                G4K,
                40,
                40,
                Req,
                Some(G16K),
            ),
            named(
                "4k ias39 oas44 hostpage64k",
                f,
                G4K,
                39,
                44,
                Req,
                Some(G64K),
            ),
        ],
        Arm32LpaeS1 => vec![
            named("4k ias32 oas32", f, G4K, 32, 32, Req, None),
            named("4k ias32 oas40", f, G4K, 32, 40, Req, None),
            named(
                "4k ias32 oas40 hostpage64k",
                f,
                G4K,
                32,
                40,
                Req,
                Some(G64K),
            ),
        ],
        Arm32LpaeS2 => vec![
            named("4k ias40 oas40", f, G4K, 40, 40, Req, None),
            named("4k ias32 oas40", f, G4K, 32, 40, Req, None),
            named("4k ias40 oas40 concat=max", f, G4K, 40, 40, Max, None),
            named("4k ias33 oas40", f, G4K, 33, 40, Req, None),
            named("4k ias33 oas40 concat=max", f, G4K, 33, 40, Max, None),
            named(
                "4k ias33 oas40 hostpage16k",
                f,
                G4K,
                33,
                40,
                Req,
                Some(G16K),
            ),
        ],
        Armv7s => vec![
            named("4k ias32 oas32", f, G4K, 32, 32, Req, None),
            named(
                "4k ias32 oas32 hostpage16k",
                f,
                G4K,
                32,
                32,
                Req,
                Some(G16K),
            ),
        ],
    }
}

/// The configurations of `format` the generic suites run over: [`base_configs`], and
/// for each granule the first of them again with a non-coherent walker (which sees CPU
/// writes only after the engine's syncs: the walker and the TLB oracle read that view).
pub fn configs(format: FormatKind) -> Vec<Named> {
    let mut v = base_configs(format);
    let mut seen = Vec::new();
    for i in 0..v.len() {
        let n = v[i];
        if n.cfg.host_page.is_none() && !seen.contains(&n.cfg.granule) {
            seen.push(n.cfg.granule);
            let mut cfg = n.cfg;
            cfg.coherent = false;
            // Leaked once per test: names are `&'static str` so a failure prints them.
            let name: &'static str = Box::leak(format!("{} noncoherent", n.name).into());
            v.push(Named { name, cfg });
        }
    }
    v
}

/// Every configuration of every format (for the test that the list itself is sound).
pub fn all_configs() -> Vec<Named> {
    FORMATS.iter().flat_map(|&(f, _)| configs(f)).collect()
}

/// xorshift64 (13, 7, 17): deterministic op sequences without a dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}
