//! The fuzz input's domain choice reaches both stage-2 start-level policies: bit 6 of the
//! format byte asks a stage-2 domain for `concat=max`; stage 1 ignores it.

use ptfuzz_engine::{Concat, FormatKind};
use ptfuzz_harness::input::{resolve_config, ConfigChoice, CONCAT_MAX_BIT};

fn choice(format: u8) -> ConfigChoice {
    // granule 4K, IAS and OAS 32 (IAS_POOL[0]): the two policies differ there (L1 or L2).
    ConfigChoice {
        format,
        granule: 0,
        ias: 0,
        oas: 0,
        coherent: true,
        custom_alloc: false,
        window: 0,
        host_page: 0,
    }
}

#[test]
fn format_bit_6_selects_concat_max_at_stage_2_only() {
    let cases = [
        (0, FormatKind::Arm64S1, Concat::Required),
        (CONCAT_MAX_BIT, FormatKind::Arm64S1, Concat::Required),
        (1, FormatKind::Arm64S2, Concat::Required),
        (1 | CONCAT_MAX_BIT, FormatKind::Arm64S2, Concat::Max),
        (3, FormatKind::Arm32LpaeS2, Concat::Required),
        (3 | CONCAT_MAX_BIT, FormatKind::Arm32LpaeS2, Concat::Max),
        (4, FormatKind::Armv7s, Concat::Required),
        (4 | CONCAT_MAX_BIT, FormatKind::Armv7s, Concat::Required),
    ];
    for (byte, format, concat) in cases {
        let (cfg, _) = resolve_config(&choice(byte));
        assert_eq!(
            (cfg.format, cfg.ias, cfg.concat),
            (format, 32, concat),
            "byte {byte:#x}"
        );
        let g = ptfuzz_engine::Geometry::new(&cfg).unwrap();
        let start = if concat == Concat::Max { 2 } else { 1 };
        assert_eq!(g.start_level, start, "byte {byte:#x}");
    }
}
