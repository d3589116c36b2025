//! A deliberately broken spin lock, after locktorture's `lock_busted_ops`.
//!
//! It raises and lowers IRQL exactly like a spin lock but excludes nobody. Its only use is to prove that the stress
//! harness detects missing exclusion and reports FAILURE.

use wdk_sys::KIRQL;

use super::{Backend, DpcBackend};
use crate::kernel::irql::DISPATCH_LEVEL;

/// The busted backend.
pub struct BustedBackend;

/// A "lock" that does not exclude.
pub type BustedLock<T> = super::Lock<T, BustedBackend>;

// SAFETY: this implementation knowingly breaks Backend's exclusion guarantee; Backend's contract
// names this backend as the one exception, used only by the stress harness's busted variant,
// whose protected data is atomics only.
unsafe impl Backend for BustedBackend {
    type State = u64;
    type GuardState = Option<KIRQL>;

    unsafe fn init(_state: *mut u64) {}

    unsafe fn lock(_state: *mut u64) -> Option<KIRQL> {
        // SAFETY: raising to DISPATCH_LEVEL from IRQL <= DISPATCH_LEVEL (Backend::lock's
        // contract) is a valid raise.
        Some(unsafe { wdk_sys::ntddk::KfRaiseIrql(DISPATCH_LEVEL) })
    }

    unsafe fn unlock(_state: *mut u64, guard: &Option<KIRQL>) {
        if let Some(irql) = *guard {
            // SAFETY: lowers back to the IRQL this acquisition raised from, in reverse order.
            unsafe { wdk_sys::ntddk::KeLowerIrql(irql) };
        }
    }
}

// SAFETY: as for Backend.
unsafe impl DpcBackend for BustedBackend {
    unsafe fn lock_at_dpc(_state: *mut u64) -> Option<KIRQL> {
        None
    }
}
