//! The QEMU oracle's pure parts, without QEMU: stream encodings from domain configurations,
//! the model's DMA predictions, tags, and the deviation table.

use ptfuzz_engine::{Concat, DomainConfig, FormatKind, Granule, Prot};
use ptfuzz_oracles::model::DomainRules;
use ptfuzz_oracles::qemu::deviation::{explain, Deviation, ProbeFacts, TABLE};
use ptfuzz_oracles::qemu::observed::{decode, pa_of_tag, tag_of, Observed};
use ptfuzz_oracles::qemu::predict::{predict, Access, Expected, Fault, FaultKind, Stage};
use ptfuzz_oracles::qemu::stream::{concatenated_table, stage1, stage2};
use ptfuzz_oracles::Model;

/// Stage-2 domains take `concat=max` here, as the QEMU traces do: the deepest start level
/// is what reaches QEMU's concatenated-root handling.
fn cfg(f: FormatKind, g: Granule, ias: u32, oas: u32) -> DomainConfig {
    let mut c = DomainConfig::new(f, g, ias, oas);
    if f.is_stage2() {
        c.concat = Concat::Max;
    }
    c
}

#[test]
fn stage2_sl0_and_sizes_follow_the_start_level() {
    // (granule, ias, start level from the model, SL0)
    for (g, ias, sl0) in [
        (Granule::G4K, 39, 1),
        (Granule::G4K, 32, 0),
        (Granule::G16K, 36, 1),
        (Granule::G64K, 42, 1),
        (Granule::G64K, 32, 0),
    ] {
        let c = cfg(FormatKind::Arm64S2, g, ias, 44);
        let r = DomainRules::new(&c).unwrap();
        let s = stage2(&c, &r, 0x4000_0000).unwrap();
        assert_eq!(
            (s.sl0, s.t0sz, s.ps),
            (sl0, (64 - ias) as u8, 4),
            "{g:?} ias {ias} start L{}",
            r.start_level
        );
    }
    // The default (Linux) policy: 4K and 64K IAS 32 start one level higher (SL0 1 = L1 / L2).
    for (g, sl0) in [(Granule::G4K, 1), (Granule::G64K, 1)] {
        let c = DomainConfig::new(FormatKind::Arm64S2, g, 32, 44);
        let r = DomainRules::new(&c).unwrap();
        assert_eq!(
            stage2(&c, &r, 0x4000_0000).unwrap().sl0,
            sl0,
            "{g:?} default"
        );
    }
    let c = cfg(FormatKind::Arm64S2, Granule::G4K, 48, 48);
    let r = DomainRules::new(&c).unwrap();
    assert!(
        stage2(&c, &r, 0).unwrap_err().0.contains("44"),
        "IPA above QEMU's 44 bits is refused"
    );
}

#[test]
fn stage1_refuses_what_qemu_cannot_take() {
    let s = stage1(
        &cfg(FormatKind::Arm64S1, Granule::G16K, 48, 40),
        0x4000_0000,
    )
    .unwrap();
    assert_eq!((s.t0sz, s.ips, s.granule), (16, 2, 0x4000));
    assert!(stage1(&cfg(FormatKind::Arm32LpaeS1, Granule::G4K, 32, 40), 0).is_err());
    assert!(stage1(&cfg(FormatKind::Arm64S2, Granule::G4K, 40, 40), 0).is_err());
}

#[test]
fn concatenated_root_index() {
    let c = cfg(FormatKind::Arm64S2, Granule::G4K, 40, 44);
    let r = DomainRules::new(&c).unwrap();
    assert_eq!(r.root_tables(), 2);
    assert_eq!(concatenated_table(&r, 0x7f_ffff_f000), 0);
    assert_eq!(concatenated_table(&r, 0x80_0000_0000), 1);
}

#[test]
fn predictions_follow_prot_per_stage() {
    let c1 = cfg(FormatKind::Arm64S1, Granule::G4K, 48, 48);
    let mut s1 = Model::new(&c1).unwrap();
    let p = |s: &str| Prot::parse(s).unwrap();
    s1.map(0x1000, 0x5000_0000, 0x1000, 1, p("r")).unwrap();
    s1.map(0x2000, 0x5000_1000, 0x1000, 1, p("w")).unwrap();
    s1.map(0x3000, 0x5000_2000, 0x1000, 1, p("rwp")).unwrap();
    let st1 = Stage {
        model: &s1,
        stage2: false,
    };
    let perm1 = Expected::Fault(Fault {
        kind: FaultKind::Permission,
        stage2: false,
    });
    assert_eq!(
        predict(st1, None, 0x1008, Access::Read),
        Expected::Pa(0x5000_0008)
    );
    assert_eq!(predict(st1, None, 0x1008, Access::Write), perm1);
    // io-pgtable maps write-only as read-write at stage 1.
    assert_eq!(
        predict(st1, None, 0x2010, Access::Read),
        Expected::Pa(0x5000_1010)
    );
    assert_eq!(predict(st1, None, 0x3000, Access::Read), perm1);
    assert_eq!(
        predict(st1, None, 0x9000, Access::Read),
        Expected::Fault(Fault {
            kind: FaultKind::Translation,
            stage2: false
        })
    );
    // Nested: stage 2 decides the output, its own faults are stage 2.
    let c2 = cfg(FormatKind::Arm64S2, Granule::G4K, 39, 44);
    let mut s2 = Model::new(&c2).unwrap();
    s2.map(0x5000_0000, 0x6000_0000, 0x1000, 1, p("r")).unwrap();
    let st2 = Stage {
        model: &s2,
        stage2: true,
    };
    assert_eq!(
        predict(st1, Some(st2), 0x1010, Access::Read),
        Expected::Pa(0x6000_0010)
    );
    assert_eq!(
        predict(st1, Some(st2), 0x2010, Access::Read),
        Expected::Fault(Fault {
            kind: FaultKind::Translation,
            stage2: true
        })
    );
    assert_eq!(
        predict(st2, None, 0x5000_0000, Access::Write),
        Expected::Fault(Fault {
            kind: FaultKind::Permission,
            stage2: true
        })
    );
}

#[test]
fn tags_and_decoding() {
    assert_eq!(pa_of_tag(tag_of(0x5123_4568)), Some(0x5123_4568));
    assert_eq!(pa_of_tag(0), None);
    assert_eq!(
        decode(Access::Read, &[], tag_of(0x5000_0010), None),
        Observed::Reached(0x5000_0010)
    );
    assert_eq!(
        decode(Access::Read, &[], 0x1234, None),
        Observed::Untagged(0x1234)
    );
    assert_eq!(decode(Access::Write, &[], 0, None), Observed::Blocked);
    assert_eq!(
        decode(Access::Read, &[(0x13, true), (0x13, true)], 0, None),
        Observed::Fault(Fault {
            kind: FaultKind::Permission,
            stage2: true
        })
    );
    assert_eq!(
        decode(Access::Read, &[(0x04, false)], 0, None),
        Observed::OtherEvent(0x04)
    );
}

#[test]
fn deviations_explain_only_their_own_shape() {
    let perm = |stage2| {
        Expected::Fault(Fault {
            kind: FaultKind::Permission,
            stage2,
        })
    };
    let priv_page = ProbeFacts {
        s1_privileged: true,
        unchecked_pa: Some(0x5000_0000),
        if_ap1_ignored: Some(Expected::Pa(0x5000_0000)),
        ..Default::default()
    };
    assert_eq!(
        explain(&perm(false), &Observed::Reached(0x5000_0000), &priv_page),
        Some(Deviation::Ap1Ignored)
    );
    // Reaching some other address is not AP[1] being ignored.
    assert_eq!(
        explain(&perm(false), &Observed::Reached(0x5000_1000), &priv_page),
        None
    );
    let s2 = ProbeFacts {
        s2_only: true,
        ..Default::default()
    };
    assert_eq!(
        explain(&perm(true), &Observed::Blocked, &s2),
        Some(Deviation::CachedS2PermissionNoEvent)
    );
    assert_eq!(
        explain(&perm(true), &Observed::Blocked, &ProbeFacts::default()),
        None
    );
    // A write iommu-testdev saw go through (elsewhere) is no blocked permission fault.
    assert_eq!(explain(&perm(true), &Observed::Elsewhere, &s2), None);
    let concat = ProbeFacts {
        s2_concatenated_beyond_first: true,
        ..Default::default()
    };
    assert_eq!(
        explain(&Expected::Pa(0x5000_0000), &Observed::Untagged(0), &concat),
        Some(Deviation::ConcatenatedS2Root)
    );
    assert_eq!(
        explain(
            &Expected::Pa(0x5000_0000),
            &Observed::Untagged(0),
            &ProbeFacts::default()
        ),
        None
    );
    // Every reachable deviation has a trace; every id is unique.
    for r in TABLE {
        assert_eq!(r.deviation.is_some(), r.trace.is_some(), "{}", r.id);
        assert_eq!(TABLE.iter().filter(|x| x.id == r.id).count(), 1);
    }
}
