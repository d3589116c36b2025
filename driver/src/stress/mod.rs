//! The stress harness, after Linux's locktorture.
//!
//! One [`TortureOps`] table per lock type (here: the spin lock, and the busted lock that proves
//! the harness can fail). Workers contend on one lock that guards a non-atomic counter and an
//! owner flag: N system threads at `PASSIVE_LEVEL` that raise to take it, and optionally one DPC
//! per processor at `DISPATCH_LEVEL` working in bounded batches. Each worker records its
//! acquisitions, its violations (owner flag already set; IRQL inside not the lock's; IRQL after
//! release not the IRQL before) and its longest wait. The run ends with a one-line verdict in
//! the debug log, `synclab: <lock>: End of test: SUCCESS|FAILURE`, and the figures in the
//! response.

use core::{pin::Pin, sync::atomic::AtomicU64};

use synclab_protocol::{
    wire::{check_output, StressRequest, StressResponse, FLAG_BUSTED},
    Primitive, RequestError,
};
use wdk_sys::{KIRQL, NTSTATUS, WDFREQUEST};

use crate::{
    kernel::{irql::AtDispatch, request},
    sync::{busted::BustedLock, spin_lock::SpinLock, DpcBackend, Lock},
};

mod engine;

/// The data every lock under test protects.
#[derive(Default)]
pub struct Protected {
    /// Incremented non-atomically (a separate load and store) inside the lock: with real
    /// exclusion it ends equal to the acquisitions, without it updates are lost.
    pub counter: AtomicU64,
    /// The id of the worker inside, 0 when none: found non-zero on entry means two were inside.
    pub owner: AtomicU64,
}

/// One lock type under test (locktorture's `lock_torture_ops`).
pub trait TortureOps: Sync + Sized {
    /// Name in logs, as the client names it.
    const NAME: &'static str;
    /// IRQL a holder must observe.
    const HELD_IRQL: KIRQL;

    /// A new, uninitialised instance.
    fn create() -> Self;
    /// Initialises it in its pinned place.
    fn init(self: Pin<&Self>);
    /// Acquires from a thread at IRQL <= `DISPATCH_LEVEL`, runs `critical`, releases.
    fn with_lock(self: Pin<&Self>, critical: impl FnOnce(&Protected));
    /// Acquires from a DPC routine, runs `critical`, releases.
    fn with_lock_at_dpc(self: Pin<&Self>, at: &AtDispatch<'_>, critical: impl FnOnce(&Protected));
}

impl<B: DpcBackend + SpinLockName> TortureOps for Lock<Protected, B>
where
    B::State: Default,
{
    const NAME: &'static str = B::NAME;
    const HELD_IRQL: KIRQL = crate::kernel::irql::DISPATCH_LEVEL;

    fn create() -> Self {
        Self::new(Protected::default())
    }

    fn init(self: Pin<&Self>) {
        Self::init(self);
    }

    fn with_lock(self: Pin<&Self>, critical: impl FnOnce(&Protected)) {
        let guard = self.lock();
        critical(&guard);
    }

    fn with_lock_at_dpc(self: Pin<&Self>, at: &AtDispatch<'_>, critical: impl FnOnce(&Protected)) {
        let guard = self.lock_at_dpc(at);
        critical(&guard);
    }
}

/// The name a spin-lock-like backend is logged under.
pub trait SpinLockName {
    /// The name.
    const NAME: &'static str;
}

impl SpinLockName for crate::sync::spin_lock::SpinLockBackend {
    const NAME: &'static str = "spinlock";
}

impl SpinLockName for crate::sync::busted::BustedBackend {
    const NAME: &'static str = "spinlock (busted)";
}

/// `IOCTL_SYNCLAB_RUN_STRESS`: validates the request, runs it, writes the response.
/// IRQL: `PASSIVE_LEVEL` (it creates threads and waits for them).
///
/// # Errors
/// The NTSTATUS of the first [`RequestError`], or of a kernel call that failed.
pub fn handle(request: WDFREQUEST, output_length: usize) -> Result<usize, NTSTATUS> {
    check_output::<StressResponse>(output_length).map_err(RequestError::ntstatus)?;
    let parsed = request::read_input(request, |bytes| {
        StressRequest::parse(bytes).map_err(RequestError::ntstatus)
    })?;
    let primitive = parsed.validate().map_err(RequestError::ntstatus)?;
    let response = match primitive {
        Primitive::SpinLock if parsed.flags & FLAG_BUSTED != 0 => {
            engine::run::<BustedLock<Protected>>(&parsed)?
        }
        Primitive::SpinLock => engine::run::<SpinLock<Protected>>(&parsed)?,
    };
    request::write_output(request, &*response)
}
