//! The IOASID framework under differential test: engine and model side by side, every
//! `ioasid.*` command compared (result and refusal reason), then the whole observable state
//! (active allocator, outstanding IDs with set and data, groups and members, every call the
//! custom allocators received, bindings) and the engine's own consistency check.

use ptfuzz_engine::ioasid::{Active, DomainId, Ioasid, IoasidSet, OpsId, ScriptedOps};
use ptfuzz_oracles::finding::{IoasidConsistencyFinding, IoasidStateFinding};
use ptfuzz_oracles::ioasid::{IoasidModel, ModelActive, Refusal, Rule};
use ptfuzz_oracles::Divergence;

use super::checked::guarded;
use super::CheckedDomain;
use crate::outcome::Outcome;
use crate::replay::{FailureKind, IoasidDivergence};
use crate::trace::IoasidCommand;

/// Engine framework and model, checked after every command.
#[derive(Default)]
pub struct CheckedIoasid {
    engine: Ioasid,
    model: IoasidModel,
    /// Commands applied so far.
    ops: usize,
}

fn even(d: u64) -> bool {
    d.is_multiple_of(2)
}

/// The rule the model applied to a command it accepted (a refusal names its own), judged
/// from the model's state after the command.
fn success_rule(cmd: &IoasidCommand, model: &IoasidModel) -> Rule {
    match cmd {
        IoasidCommand::Alloc { .. } => match model.active() {
            ModelActive::Default => Rule::R1DefaultAlwaysAvailable,
            ModelActive::Custom(_) => Rule::R2CustomTakesPrecedence,
        },
        IoasidCommand::Register { ops, .. } => {
            match model.groups().iter().find(|(o, _)| o.0 == *ops) {
                Some((_, members)) if members.len() > 1 => Rule::R4SwitchWithinGroupKeepsIds,
                _ => Rule::R2CustomTakesPrecedence,
            }
        }
        // (Judged after the op ran: a group still there lost a member; else it left.)
        IoasidCommand::Unregister { ops, .. } => {
            if model.groups().iter().any(|(o, _)| o.0 == *ops) {
                Rule::R4SwitchWithinGroupKeepsIds
            } else {
                Rule::R5SwitchCustomDefaultNeedsEmptySpace
            }
        }
        IoasidCommand::Free { .. } | IoasidCommand::Find { .. } | IoasidCommand::SetData { .. } => {
            Rule::Lookup
        }
        IoasidCommand::Bind { .. } | IoasidCommand::Unbind { .. } => Rule::B2OneDomainPerPasid,
        IoasidCommand::Translate { .. } => Rule::B3TranslateThroughBinding,
    }
}

fn refused(r: Refusal) -> ptfuzz_engine::ioasid::IoasidError {
    ptfuzz_engine::ioasid::IoasidError {
        kind: r.kind,
        reason: r.reason,
    }
}

impl CheckedIoasid {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn engine(&self) -> &Ioasid {
        &self.engine
    }
    pub fn model(&self) -> &IoasidModel {
        &self.model
    }

    /// Runs `cmd` on both sides. `bind_to` is the domain a `bind` names (resolved by the
    /// caller); `domains[i]` is domain `DomainId(i)`, `None` if its creation was refused.
    pub fn apply(
        &mut self,
        cmd: &IoasidCommand,
        bind_to: Option<DomainId>,
        domains: &[Option<&CheckedDomain>],
    ) -> Result<Outcome, FailureKind> {
        self.ops += 1;
        let rule: Option<Rule>;
        let (e, m) = (&mut self.engine, &mut self.model);
        let (engine, model) = match cmd {
            IoasidCommand::Register {
                ops,
                private,
                script,
            } => {
                let boxed = Box::new(ScriptedOps::new(OpsId(*ops), script.clone()));
                let a = guarded("engine", || e.register_allocator(boxed, *private))?;
                let b = guarded("model", || m.register(OpsId(*ops), *private, script))?;
                rule = b.as_ref().err().map(|x| x.rule);
                (Outcome::IoDone(a), Outcome::IoDone(b.map_err(refused)))
            }
            IoasidCommand::Unregister { ops, private } => {
                let a = guarded("engine", || e.unregister_allocator(OpsId(*ops), *private))?;
                let b = guarded("model", || m.unregister(OpsId(*ops), *private))?;
                rule = b.as_ref().err().map(|x| x.rule);
                (Outcome::IoDone(a), Outcome::IoDone(b.map_err(refused)))
            }
            IoasidCommand::Alloc {
                set,
                min,
                max,
                data,
            } => {
                let a = guarded("engine", || e.alloc(IoasidSet(*set), *min, *max, *data))?;
                let b = guarded("model", || m.alloc(IoasidSet(*set), *min, *max, *data))?;
                rule = b.as_ref().err().map(|x| x.rule);
                (Outcome::IoAlloc(a), Outcome::IoAlloc(b.map_err(refused)))
            }
            IoasidCommand::Free { id } => {
                let a = guarded("engine", || e.free(*id))?;
                let b = guarded("model", || m.free(*id))?;
                rule = b.as_ref().err().map(|x| x.rule);
                (Outcome::IoDone(a), Outcome::IoDone(b.map_err(refused)))
            }
            IoasidCommand::Find { id, set, getter } => {
                let set = set.map(IoasidSet);
                let g: Option<&dyn Fn(u64) -> bool> = getter.then_some(&even);
                let a = guarded("engine", || e.find(set, *id, g))?;
                let b = guarded("model", || m.find(set, *id, g))?;
                rule = b.as_ref().err().map(|x| x.rule);
                (Outcome::IoFind(a), Outcome::IoFind(b.map_err(refused)))
            }
            IoasidCommand::SetData { id, data } => {
                let a = guarded("engine", || e.set_data(*id, *data))?;
                let b = guarded("model", || m.set_data(*id, *data))?;
                rule = b.as_ref().err().map(|x| x.rule);
                (Outcome::IoDone(a), Outcome::IoDone(b.map_err(refused)))
            }
            IoasidCommand::Bind { id, .. } => {
                let dom = bind_to.expect("the caller resolves the domain of a bind");
                let a = guarded("engine", || e.bind(*id, dom))?;
                let b = guarded("model", || m.bind(*id, dom))?;
                rule = b.as_ref().err().map(|x| x.rule);
                (
                    Outcome::IoDone(a.map(|_| ())),
                    Outcome::IoDone(b.map(|_| ()).map_err(refused)),
                )
            }
            IoasidCommand::Unbind { id } => {
                let a = guarded("engine", || e.unbind(*id))?;
                let b = guarded("model", || m.unbind(*id))?;
                rule = b.as_ref().err().map(|x| x.rule);
                (
                    Outcome::IoDone(a.map(|_| ())),
                    Outcome::IoDone(b.map(|_| ()).map_err(refused)),
                )
            }
            IoasidCommand::Translate { id, iova } => {
                let dom = |d: DomainId| domains.get(d.0 as usize).copied().flatten();
                let a = guarded("engine", || {
                    e.translate(*id, *iova, |d, va| {
                        dom(d).and_then(|c| c.engine().lookup(va))
                    })
                })?;
                let b = guarded("model", || {
                    m.translate(*id, *iova, |d, va| {
                        dom(d).and_then(|c| c.model().lookup(va))
                    })
                })?;
                rule = b.as_ref().err().map(|x| x.rule);
                (
                    Outcome::IoTranslate(a),
                    Outcome::IoTranslate(b.map_err(refused)),
                )
            }
        };
        if engine != model {
            let rule = rule.unwrap_or_else(|| success_rule(cmd, &self.model));
            return Err(FailureKind::IoasidDivergence(Box::new(IoasidDivergence {
                engine,
                model,
                rule,
                expected: None,
            })));
        }
        self.check_state().map_err(FailureKind::Oracle)?;
        Ok(engine)
    }

    /// Engine state against the model's, then the engine's own invariants.
    pub fn check_state(&self) -> Result<(), Divergence> {
        let (e, m) = (&self.engine, &self.model);
        let at = self.ops.saturating_sub(1);
        let fail = |f: IoasidStateFinding| Err(Divergence::new(f).at(at));
        let active = match e.active() {
            Active::Default => ModelActive::Default,
            Active::Custom(o) => ModelActive::Custom(o),
        };
        if active != m.active() {
            return fail(IoasidStateFinding::ActiveAllocator {
                engine: format!("{active:?}"),
                model: format!("{:?}", m.active()),
            });
        }
        let eo: Vec<(u32, u32, u64)> = e
            .outstanding()
            .iter()
            .map(|(i, d)| (*i, d.set.0, d.data))
            .collect();
        let mo: Vec<(u32, u32, u64)> = m
            .outstanding()
            .iter()
            .map(|(i, d)| (*i, d.set.0, d.data))
            .collect();
        if eo != mo {
            return fail(IoasidStateFinding::Outstanding {
                engine: format!("{eo:?}"),
                model: format!("{mo:?}"),
            });
        }
        let (eg, mg) = (e.groups(), m.groups());
        if eg != mg {
            return fail(IoasidStateFinding::Groups {
                engine: format!("{eg:?}"),
                model: format!("{mg:?}"),
            });
        }
        for (ops, _) in &mg {
            let ec = e.ops(*ops).map(|o| o.calls().to_vec());
            let mc = m.calls(*ops).map(|c| c.to_vec());
            if ec != mc {
                return fail(IoasidStateFinding::Calls {
                    ops: format!("{ops:?}"),
                    engine: format!("{ec:?}"),
                    model: format!("{mc:?}"),
                });
            }
        }
        let (eb, mb) = (e.bindings(), m.bindings());
        if eb != mb {
            return fail(IoasidStateFinding::Bindings {
                engine: format!("{eb:?}"),
                model: format!("{mb:?}"),
            });
        }
        e.check_consistency()
            .map_err(|why| Divergence::new(IoasidConsistencyFinding::Broken { why }).at(at))
    }
}
