//! IRQL values, queries, and raising scoped to a guard.

use core::marker::PhantomData;

use wdk_sys::KIRQL;

/// `APC_LEVEL`.
#[allow(clippy::cast_possible_truncation, reason = "IRQL constants are < 16")]
pub const APC_LEVEL: KIRQL = wdk_sys::APC_LEVEL as KIRQL;
/// `DISPATCH_LEVEL`.
#[allow(clippy::cast_possible_truncation, reason = "IRQL constants are < 16")]
pub const DISPATCH_LEVEL: KIRQL = wdk_sys::DISPATCH_LEVEL as KIRQL;

/// The current IRQL. Any IRQL.
#[must_use]
pub fn current() -> KIRQL {
    // SAFETY: KeGetCurrentIrql has no preconditions and is callable at any IRQL.
    unsafe { wdk_sys::ntddk::KeGetCurrentIrql() }
}

/// Proof that the code holding it runs at `DISPATCH_LEVEL`: in a DPC routine, or under a
/// [`Raised`] guard at `DISPATCH_LEVEL`. The only way to reach the `…AtDpcLevel` acquires of
/// [`crate::sync`].
pub struct AtDispatch<'a> {
    _not_send: PhantomData<*mut &'a ()>,
}

impl AtDispatch<'_> {
    /// The token for the DPC routine being executed.
    ///
    /// # Safety
    /// Only a (non-threaded) DPC routine (`KDEFERRED_ROUTINE`) may create it, for the duration
    /// of its call: the kernel runs those at `DISPATCH_LEVEL`.
    #[must_use]
    pub const unsafe fn in_dpc_routine() -> Self {
        Self {
            _not_send: PhantomData,
        }
    }
}

/// IRQL raised by [`raise`]; dropping it lowers back to the IRQL it was raised from. `!Send`:
/// IRQL belongs to the processor and thread that raised it.
#[must_use = "the IRQL is lowered again when the guard is dropped"]
pub struct Raised {
    previous: KIRQL,
    to: KIRQL,
    _not_send: PhantomData<*mut ()>,
}

/// Raises the IRQL to `to`, which must be at least the current IRQL (a lower value is a bug
/// check, 0xC4/0x30 under Driver Verifier). Any IRQL <= `to`.
pub fn raise(to: KIRQL) -> Raised {
    // SAFETY: raising is valid from any IRQL at or below `to` (this function's contract); the
    // guard lowers back in LIFO order because it is dropped before anything raised after it.
    let previous = unsafe { wdk_sys::ntddk::KfRaiseIrql(to) };
    Raised {
        previous,
        to,
        _not_send: PhantomData,
    }
}

impl Raised {
    /// The `DISPATCH_LEVEL` token, when this guard raised to `DISPATCH_LEVEL`.
    #[must_use]
    pub fn at_dispatch(&self) -> Option<AtDispatch<'_>> {
        (self.to == DISPATCH_LEVEL).then_some(AtDispatch {
            _not_send: PhantomData,
        })
    }
}

impl Drop for Raised {
    fn drop(&mut self) {
        // SAFETY: lowers to the value KfRaiseIrql returned for this guard; guards are dropped in
        // reverse order of creation, so this is the immediately preceding raise (ddi.md 10.1).
        unsafe { wdk_sys::ntddk::KeLowerIrql(self.previous) };
    }
}
