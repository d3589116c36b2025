//! The exclusive busted control, after locktorture's `lock_busted_ops`: a "lock" that excludes
//! nobody. It keeps the variant's IRQL and APC contract (it raises to the held IRQL and enters
//! the variant's region), so the only thing it breaks is exclusion, and the run must end in
//! FAILURE. What its holders touch is the harness's [`super::Protected`], atomics only, so the
//! overlap it allows is not a data race in the Rust sense; it is private to the harness and no
//! lock type of [`crate::sync`].
//!
//! The shared control needs no type of its own: writers take the family's real lock shared
//! (see the engine).

use synclab_protocol::primitive::{ApcHeld, HeldIrql, Variant};
use wdk_sys::NTSTATUS;

use super::{Attempt, Hold, Inside, Setup, TortureOps};
use crate::kernel::{
    apc::{CriticalRegion, GuardedRegion},
    irql::{self, AtDispatch},
};

/// The control: the contract it imitates, and no lock at all.
pub struct Exclusive {
    variant: &'static Variant,
}

impl Exclusive {
    #[allow(clippy::unused_self, reason = "shaped like a real family's hold")]
    fn hold(&self, inside: Inside<'_>) {
        inside(Hold::EXCLUSIVE);
    }
}

impl TortureOps for Exclusive {
    fn try_new(setup: &Setup) -> Result<Self, NTSTATUS> {
        Ok(Self {
            variant: setup.plan.variant,
        })
    }

    fn write(&self, inside: Inside<'_>) -> Attempt {
        let target = self.variant.held_irql.inside(irql::current());
        let _raised = (target > irql::current()).then(|| irql::raise(target));
        match self.variant.apc {
            ApcHeld::CriticalRegion => {
                let _region = CriticalRegion::enter();
                self.hold(inside);
            }
            ApcHeld::GuardedRegion => {
                let _region = GuardedRegion::enter();
                self.hold(inside);
            }
            ApcHeld::BlockedByIrql | ApcHeld::RaisedToApc => self.hold(inside),
        }
        Attempt::DONE
    }

    fn write_at_dpc(&self, _at: &AtDispatch<'_>, inside: Inside<'_>) -> Attempt {
        debug_assert!(matches!(self.variant.held_irql, HeldIrql::Dispatch));
        self.hold(inside);
        Attempt::DONE
    }
}
