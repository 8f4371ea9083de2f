//! Unit tests: one per rule, one per untrusted behaviour.

use super::*;
use crate::error::ErrorKind;

const S: IoasidSet = IoasidSet(1);

fn scripted(id: u32, script: &[Behaviour]) -> Box<dyn AllocatorOps> {
    Box::new(ScriptedOps::new(OpsId(id), script.to_vec()))
}

fn err(r: Reason) -> IoasidError {
    r.into()
}

#[test]
fn rule1_default_always_available() {
    let mut io = Ioasid::new();
    assert_eq!(io.active(), Active::Default);
    assert_eq!(io.alloc(S, 5, 7, 10), Ok(5));
    assert_eq!(io.alloc(S, 5, 7, 11), Ok(6));
    assert_eq!(io.free(5), Ok(()));
    assert_eq!(io.alloc(S, 5, 7, 12), Ok(5));
    assert_eq!(io.alloc(S, 5, 7, 0), Ok(7));
    assert_eq!(io.alloc(S, 5, 7, 0), Err(err(Reason::Exhausted)));
    assert_eq!(io.alloc(S, 8, 7, 0).unwrap_err().kind, ErrorKind::Inval);
    assert_eq!(
        io.alloc(S, 0, INVALID_IOASID, 0),
        Err(err(Reason::BadRange))
    );
    // After a custom allocator comes and goes, the default serves again.
    for id in [5, 6, 7] {
        io.free(id).unwrap();
    }
    io.register_allocator(scripted(1, &[]), 0).unwrap();
    io.unregister_allocator(OpsId(1), 0).unwrap();
    assert_eq!(io.active(), Active::Default);
    assert_eq!(io.alloc(S, 0, 3, 0), Ok(0));
    io.check_consistency().unwrap();
}

#[test]
fn rule2_custom_takes_precedence_and_queues() {
    let mut io = Ioasid::new();
    io.register_allocator(scripted(1, &[]), 0xa).unwrap();
    assert_eq!(io.active(), Active::Custom(OpsId(1)));
    io.register_allocator(scripted(2, &[]), 0xb).unwrap();
    assert_eq!(
        io.active(),
        Active::Custom(OpsId(1)),
        "a second group is queued"
    );
    assert_eq!(io.alloc(S, 3, 9, 0), Ok(3));
    let calls = io.ops(OpsId(1)).unwrap().calls();
    assert_eq!(
        calls,
        &[OpsCall::Alloc {
            min: 3,
            max: 9,
            private: 0xa,
            answer: 3
        }]
    );
    assert!(io.ops(OpsId(2)).unwrap().calls().is_empty());
    assert_eq!(
        io.register_allocator(scripted(1, &[]), 0xa),
        Err(err(Reason::AlreadyRegistered))
    );
    io.free(3).unwrap();
    io.unregister_allocator(OpsId(1), 0xa).unwrap();
    assert_eq!(
        io.active(),
        Active::Custom(OpsId(2)),
        "next group in registration order"
    );
    io.check_consistency().unwrap();
}

#[test]
fn rule3_last_member_needs_empty_space() {
    let mut io = Ioasid::new();
    io.register_allocator(scripted(1, &[]), 0).unwrap();
    io.register_allocator(scripted(1, &[]), 1).unwrap();
    let id = io.alloc(S, 0, 9, 42).unwrap();
    io.unregister_allocator(OpsId(1), 0).unwrap();
    assert_eq!(
        io.unregister_allocator(OpsId(1), 1),
        Err(err(Reason::GroupBusy))
    );
    assert_eq!(
        io.unregister_allocator(OpsId(1), 1).unwrap_err().kind,
        ErrorKind::Busy
    );
    assert_eq!(io.find(Some(S), id, None), Ok(42), "nothing orphaned");
    io.free(id).unwrap();
    io.unregister_allocator(OpsId(1), 1).unwrap();
    assert_eq!(io.active(), Active::Default);
    assert_eq!(
        io.unregister_allocator(OpsId(1), 1),
        Err(err(Reason::NotRegistered))
    );
    io.check_consistency().unwrap();
}

#[test]
fn rule4_switching_within_group_keeps_ids() {
    let mut io = Ioasid::new();
    io.register_allocator(scripted(1, &[]), 0xa).unwrap();
    io.register_allocator(scripted(1, &[Behaviour::Fail]), 0xb)
        .unwrap(); // same helpers: box dropped
    let a = io.alloc(S, 0, 9, 1).unwrap();
    io.unregister_allocator(OpsId(1), 0xa).unwrap();
    assert_eq!(io.find(None, a, None), Ok(1));
    let b = io.alloc(S, 0, 9, 2).unwrap();
    assert_ne!(a, b);
    io.free(a).unwrap();
    let calls = io.ops(OpsId(1)).unwrap().calls();
    assert_eq!(
        calls[1],
        OpsCall::Alloc {
            min: 0,
            max: 9,
            private: 0xb,
            answer: b
        },
        "new lead's private"
    );
    assert_eq!(
        calls[2],
        OpsCall::Free {
            id: a,
            private: 0xb
        }
    );
    io.check_consistency().unwrap();
}

#[test]
fn rule5_default_to_custom_requires_empty_space() {
    let mut io = Ioasid::new();
    let id = io.alloc(S, 0, 9, 7).unwrap();
    assert_eq!(
        io.register_allocator(scripted(1, &[]), 0),
        Err(err(Reason::DefaultBusy))
    );
    assert_eq!(io.active(), Active::Default);
    assert_eq!(io.find(Some(S), id, None), Ok(7));
    io.free(id).unwrap();
    io.register_allocator(scripted(1, &[]), 0).unwrap();
    assert_eq!(io.active(), Active::Custom(OpsId(1)));
    io.check_consistency().unwrap();
}

#[test]
fn untrusted_fresh_is_accepted() {
    let mut io = Ioasid::new();
    io.register_allocator(scripted(1, &[Behaviour::Fresh]), 0)
        .unwrap();
    assert_eq!(io.alloc(S, 4, 5, 0), Ok(4));
    assert_eq!(io.alloc(S, 4, 5, 0), Ok(5));
    assert_eq!(
        io.alloc(S, 4, 5, 0),
        Err(err(Reason::CustomFailed)),
        "allocator exhausted"
    );
    io.check_consistency().unwrap();
}

#[test]
fn untrusted_duplicate_is_refused_and_not_freed() {
    let mut io = Ioasid::new();
    io.register_allocator(scripted(1, &[Behaviour::Fresh, Behaviour::Duplicate]), 0)
        .unwrap();
    assert_eq!(io.alloc(S, 0, 9, 5), Ok(0));
    assert_eq!(io.alloc(S, 0, 9, 6), Err(err(Reason::CustomDuplicate(0))));
    assert_eq!(io.find(None, 0, None), Ok(5), "first holder keeps its data");
    assert_eq!(io.ops(OpsId(1)).unwrap().calls().len(), 2, "no free call");
    io.check_consistency().unwrap();
}

#[test]
fn untrusted_out_of_range_is_freed_back() {
    let mut io = Ioasid::new();
    io.register_allocator(scripted(1, &[Behaviour::OutOfRange]), 3)
        .unwrap();
    assert_eq!(io.alloc(S, 0, 9, 0), Err(err(Reason::CustomOutOfRange(10))));
    assert_eq!(
        io.ops(OpsId(1)).unwrap().calls()[1],
        OpsCall::Free { id: 10, private: 3 }
    );
    assert_eq!(io.free(10), Err(err(Reason::UnknownId)));
    io.check_consistency().unwrap();
    // At the top of the space the answer falls below min instead.
    assert_eq!(
        io.alloc(S, 7, INVALID_IOASID - 1, 0),
        Err(err(Reason::CustomOutOfRange(6)))
    );
    io.check_consistency().unwrap();
}

#[test]
fn untrusted_invalid_and_fail_are_nomem() {
    for b in [Behaviour::Invalid, Behaviour::Fail] {
        let mut io = Ioasid::new();
        io.register_allocator(scripted(1, &[b]), 0).unwrap();
        let e = io.alloc(S, 0, 9, 0).unwrap_err();
        assert_eq!((e.kind, e.reason), (ErrorKind::Nomem, Reason::CustomFailed));
        assert!(io.outstanding().is_empty());
        io.check_consistency().unwrap();
    }
}

#[test]
fn find_set_and_getter_and_set_data() {
    let mut io = Ioasid::new();
    let id = io.alloc(S, 0, 9, 4).unwrap();
    assert_eq!(
        io.find(Some(IoasidSet(2)), id, None),
        Err(err(Reason::WrongSet))
    );
    let even = |d: u64| d.is_multiple_of(2);
    assert_eq!(io.find(None, id, Some(&even)), Ok(4));
    io.set_data(id, 5).unwrap();
    assert_eq!(
        io.find(None, id, Some(&even)),
        Err(err(Reason::GetterRejected))
    );
    assert_eq!(io.set_data(id + 1, 0), Err(err(Reason::UnknownId)));
    assert_eq!(io.find(None, id + 1, None), Err(err(Reason::UnknownId)));
}
