//! Replay of `ioasid.*` traces: malformed lines name their line, wrong expectations and
//! binds to refused domains fail at their line, and a divergence names the rule.

use ptfuzz_harness::trace::parse;
use ptfuzz_harness::{replay, FailureKind};

fn replay_text(text: &str) -> Result<usize, ptfuzz_harness::Failure> {
    replay("t.trace", &parse("t.trace", text).unwrap()).map(|s| s.ops)
}

#[test]
fn malformed_ioasid_lines_name_the_line() {
    let cases: &[(&str, &str)] = &[
        ("ioasid.alloc set=1 min=0 max=9\n", "bad.trace:1: ioasid.alloc: missing key data"),
        (
            "\n# c\nioasid.register ops=1 private=0 script=fresh,sometimes\n",
            "bad.trace:3: ioasid.register: unknown allocator behaviour 'sometimes' (fresh dup oor invalid fail)",
        ),
        ("ioasid.bind id=1 dom=d0\n", "bad.trace:1: ioasid.bind: domain d0 not declared"),
        ("ioasid.free id=-1\n", "bad.trace:1: ioasid.free: bad number '-1'"),
        ("ioasid.find id=1 -> pa=0\n", "bad.trace:1: ioasid.find: expectation field pa does not apply to this command"),
        ("ioasid.translate id=1 iova=0 -> pa=0 none\n", "bad.trace:1: ioasid.translate: contradictory expectation: pa and none"),
        ("ioasid.alloc set=1 min=0 max=9 data=0 -> ok id=1 err=nomem\n", "bad.trace:1: ioasid.alloc: contradictory expectation: ok and err"),
    ];
    for (text, msg) in cases {
        let e = parse("bad.trace", text).unwrap_err();
        assert_eq!(e.to_string(), *msg, "{text}");
    }
}

#[test]
fn wrong_expectations_fail_at_their_line() {
    let text = "ioasid.alloc set=1 min=3 max=9 data=0x5 -> ok id=3\n\
                ioasid.find id=3 -> data=0x6\n";
    let f = replay_text(text).unwrap_err();
    assert_eq!(f.line, 2);
    assert_eq!(
        f.to_string(),
        "t.trace:2: ioasid.find id=3: expected `data=0x6`, got `ok data=0x5`"
    );
    assert_eq!(replay_text(&text.replace("0x6", "0x5")).unwrap(), 2);
    let f = replay_text("ioasid.alloc set=1 min=3 max=9 data=0 -> id=4\n").unwrap_err();
    assert_eq!(
        f.to_string(),
        "t.trace:1: ioasid.alloc set=1 min=0x3 max=0x9 data=0: expected `id=4`, got `ok id=3`"
    );
}

#[test]
fn bind_to_a_refused_domain_fails_there() {
    let text = "domain d0 fmt=arm64-s1 granule=4k ias=49 oas=48 -> err=inval\n\
                ioasid.alloc set=1 min=0 max=9 data=0\n\
                ioasid.bind id=0 dom=d0\n";
    let f = replay_text(text).unwrap_err();
    assert_eq!(
        (f.line, *f.kind),
        (
            3,
            FailureKind::RefusedDomain {
                name: "d0".into(),
                line: 1
            }
        )
    );
}

/// A translation checks the engine's tables against the page-table model through the
/// binding: a bound PASID sees a later map at once.
#[test]
fn translate_follows_the_bound_domain() {
    let text = "domain d0 fmt=arm64-s1 granule=4k ias=48 oas=48\n\
                domain d1 fmt=arm64-s1 granule=4k ias=48 oas=48\n\
                ioasid.alloc set=1 min=0 max=9 data=0\n\
                ioasid.bind id=0 dom=d1\n\
                map d0 iova=0 pa=0x40000000 pgsize=4k count=1 prot=r\n\
                ioasid.translate id=0 iova=0x10 -> none\n\
                map d1 iova=0 pa=0x50000000 pgsize=4k count=1 prot=r\n\
                ioasid.translate id=0 iova=0x10 -> pa=0x50000010\n";
    assert_eq!(replay_text(text).unwrap(), 6);
    let f = replay_text(&text.replace("-> none", "-> pa=0x40000010")).unwrap_err();
    assert_eq!(f.line, 6);
}

/// A divergence shows both reasons (the tail alone would show the same kind) and the rule.
#[test]
fn ioasid_divergence_names_reasons_and_rule() {
    use ptfuzz_engine::ioasid::Reason;
    use ptfuzz_harness::replay::IoasidDivergence;
    use ptfuzz_harness::Outcome;
    use ptfuzz_oracles::ioasid::Rule;
    let k = FailureKind::IoasidDivergence(Box::new(IoasidDivergence {
        engine: Outcome::IoDone(Err(Reason::NotRegistered.into())),
        model: Outcome::IoDone(Err(Reason::UnknownId.into())),
        rule: Rule::Lookup,
        expected: None,
    }));
    assert_eq!(
        k.to_string(),
        "divergence: engine `err=inval` (NotRegistered), model `err=inval` (UnknownId) by lookup of an outstanding ID"
    );
}
