//! IRQL values and queries.

use core::marker::PhantomData;

use wdk_sys::KIRQL;

/// `DISPATCH_LEVEL`.
#[allow(clippy::cast_possible_truncation, reason = "IRQL constants are < 16")]
pub const DISPATCH_LEVEL: KIRQL = wdk_sys::DISPATCH_LEVEL as KIRQL;

/// The current IRQL. Any IRQL.
#[must_use]
pub fn current() -> KIRQL {
    // SAFETY: KeGetCurrentIrql has no preconditions and is callable at any IRQL.
    unsafe { wdk_sys::ntddk::KeGetCurrentIrql() }
}

/// Proof that the code holding it runs at `DISPATCH_LEVEL` in a DPC routine: the only way to
/// reach the `…AtDpcLevel` acquires of [`crate::sync`].
pub struct AtDispatch<'a> {
    _not_send: PhantomData<*mut &'a ()>,
}

impl AtDispatch<'_> {
    /// The token for the DPC routine being executed.
    ///
    /// # Safety
    /// Only a DPC routine (`KDEFERRED_ROUTINE`) may create it, for the duration of its call:
    /// the kernel runs those at `DISPATCH_LEVEL`.
    #[must_use]
    pub const unsafe fn in_dpc_routine() -> Self {
        Self {
            _not_send: PhantomData,
        }
    }
}
