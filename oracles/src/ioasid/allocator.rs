//! The model's own prediction of a scripted custom allocator (written from the behaviour
//! contract in the engine's docs, not from its code).

use std::collections::BTreeSet;

use ptfuzz_engine::ioasid::{Behaviour, OpsCall, INVALID_IOASID};

#[derive(Clone, Debug)]
pub(crate) struct AllocatorModel {
    script: Vec<Behaviour>,
    calls_made: usize,
    pub(crate) handed: BTreeSet<u32>,
    pub(crate) calls: Vec<OpsCall>,
}

impl AllocatorModel {
    pub(crate) fn new(script: Vec<Behaviour>) -> Self {
        AllocatorModel {
            script,
            calls_made: 0,
            handed: BTreeSet::new(),
            calls: Vec::new(),
        }
    }

    pub(crate) fn alloc(&mut self, min: u32, max: u32, private: u64) -> u32 {
        let behaviour = if self.script.is_empty() {
            Behaviour::Fresh
        } else {
            let b = self.script[self.calls_made % self.script.len()];
            self.calls_made += 1;
            b
        };
        let answer = match behaviour {
            Behaviour::Fresh => {
                let pick = (min..=max).find(|x| *x != INVALID_IOASID && !self.handed.contains(x));
                match pick {
                    Some(x) => {
                        self.handed.insert(x);
                        x
                    }
                    None => INVALID_IOASID,
                }
            }
            Behaviour::Duplicate => match self.handed.iter().next() {
                Some(&x) => x,
                None => INVALID_IOASID,
            },
            Behaviour::OutOfRange => {
                let above = max.checked_add(1).filter(|&x| x != INVALID_IOASID);
                let below = min.checked_sub(1);
                match above.or(below) {
                    Some(x) => {
                        self.handed.insert(x);
                        x
                    }
                    None => INVALID_IOASID,
                }
            }
            Behaviour::Invalid | Behaviour::Fail => INVALID_IOASID,
        };
        self.calls.push(OpsCall::Alloc {
            min,
            max,
            private,
            answer,
        });
        answer
    }

    pub(crate) fn free(&mut self, id: u32, private: u64) {
        self.handed.remove(&id);
        self.calls.push(OpsCall::Free { id, private });
    }
}
