//! The stress harness, after Linux's locktorture.
//!
//! One [`TortureOps`] table per lock family (in the family's `sync/` file), with an optional
//! read side and optional `…AtDpcLevel` forms, each built for one variant of the protocol's
//! registry. Workers contend on one lock that guards a [`Protected`]: writer and reader system
//! threads at `PASSIVE_LEVEL` (or raised to `APC_LEVEL`), bound round-robin to the processors,
//! and optionally one DPC worker per processor at `DISPATCH_LEVEL` working in bounded batches.
//! Every hold checks exclusion (owner flag, reader count), the non-atomic counter, the IRQL
//! before, inside and after, the APC state where the DDIs may be asked (ddi.md errata 1) and
//! the recursion depth where the family has one. The run ends with locktorture's line,
//! `synclab: <primitive>: End of test: SUCCESS|FAILURE|INCONCLUSIVE: <parameters>`, and the
//! figures in the response. See [`engine`] for the schedule and the bounds at `DISPATCH_LEVEL`.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};

use synclab_protocol::{
    wire::{check_output, Plan, StressRequest, StressResponse, FLAG_BUSTED},
    RequestError,
};
use wdk_sys::{NTSTATUS, WDFQUEUE, WDFREQUEST};

use crate::kernel::{irql::AtDispatch, processor, request};

mod busted;
mod engine;

/// What every lock under test guards, as locktorture's `lock_is_write_held` and counters.
///
/// Only holders touch it. Atomics only, so that even the busted controls, which let several holders
/// in at once on purpose, never race in the Rust sense; the counter is still updated with a
/// separate load and store, so missing exclusion loses updates.
#[derive(Default)]
pub struct Protected {
    /// Incremented non-atomically (a separate load and store) by each exclusive hold: with real
    /// exclusion it ends equal to the writes, without it updates are lost.
    pub counter: AtomicU64,
    /// The id of the exclusive holder inside, 0 when none: found non-zero on entry means two
    /// were inside.
    pub owner: AtomicU64,
    /// The processor the exclusive holder took it on.
    pub owner_processor: AtomicU32,
    /// Shared holders inside now.
    pub readers: AtomicU64,
    /// The processor the last shared holder took it on.
    pub reader_processor: AtomicU32,
    /// Holders inside now, of either kind (the busted controls wait for a second one).
    pub inside: AtomicU64,
    /// Exclusive holds ended so far.
    pub writes_ended: AtomicU64,
    /// The processor the last exclusive hold ended on.
    pub write_end_processor: AtomicU32,
    /// Shared holds ended so far.
    pub reads_ended: AtomicU64,
    /// The processor the last shared hold ended on.
    pub read_end_processor: AtomicU32,
}

/// The mode of one hold, as the family made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Exclusive: the holder writes.
    Exclusive,
    /// Shared: the holder reads.
    Shared,
}

/// One hold, handed to the harness's checks while the lock is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hold {
    /// How it is held.
    pub mode: Mode,
    /// The recursion depth the kernel reports for this hold, where the family has a DDI that
    /// tells (`ExIsResourceAcquiredSharedLite`, `KeReadStateMutex`).
    pub depth: Option<u32>,
}

/// How one acquisition went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attempt {
    /// Try-acquires that failed before it succeeded (contention the family itself saw).
    pub failed_tries: u32,
    /// Holds converted from one mode to the other (`ExTryConvertSharedSpinLockExclusive`,
    /// `ExConvertExclusiveToSharedLite`).
    pub conversions: u32,
    /// The family has no such path (the registry and the driver disagree): counted as a
    /// violation, never silently skipped.
    pub unsupported: bool,
}

impl Hold {
    /// An exclusive hold with no depth to report.
    pub const EXCLUSIVE: Self = Self {
        mode: Mode::Exclusive,
        depth: None,
    };
    /// A shared hold with no depth to report.
    pub const SHARED: Self = Self {
        mode: Mode::Shared,
        depth: None,
    };
}

impl Attempt {
    /// An acquisition that succeeded on its first try.
    pub const DONE: Self = Self {
        failed_tries: 0,
        conversions: 0,
        unsupported: false,
    };
    /// No such path.
    pub const UNSUPPORTED: Self = Self {
        failed_tries: 0,
        conversions: 0,
        unsupported: true,
    };
}

/// What `inside` is: the harness's checks, called once per hold phase while the lock is held.
pub type Inside<'a> = &'a mut dyn FnMut(Hold);

/// One lock type under test (locktorture's `lock_torture_ops`).
///
/// A lock created for one variant and the ways the harness can take it. Paths a family does not have keep the default, which
/// reports [`Attempt::UNSUPPORTED`]; validation never lets a run reach them.
pub trait TortureOps: Sync + Sized {
    /// Creates the lock for `setup`'s variant: initialised, pinned, nonpaged.
    /// IRQL: `PASSIVE_LEVEL`.
    ///
    /// # Errors
    /// Pool or the kernel object's creation failed.
    fn try_new(setup: &Setup) -> Result<Self, NTSTATUS>;

    /// One exclusive acquisition from a thread at `PASSIVE_LEVEL` or `APC_LEVEL`, or from a
    /// threaded DPC (the variant decides the DDIs).
    fn write(&self, inside: Inside<'_>) -> Attempt;

    /// One shared acquisition from a thread (shared families).
    fn read(&self, _inside: Inside<'_>) -> Attempt {
        Attempt::UNSUPPORTED
    }

    /// One exclusive acquisition from a DPC routine at `DISPATCH_LEVEL`.
    fn write_at_dpc(&self, _at: &AtDispatch<'_>, _inside: Inside<'_>) -> Attempt {
        Attempt::UNSUPPORTED
    }

    /// One shared acquisition from a DPC routine at `DISPATCH_LEVEL`.
    fn read_at_dpc(&self, _at: &AtDispatch<'_>, _inside: Inside<'_>) -> Attempt {
        Attempt::UNSUPPORTED
    }
}

/// The family's way of taking its lock for `setup`'s variant, looked up by the registry's
/// variant name in the family's table `ways`.
///
/// # Errors
/// `STATUS_NOT_SUPPORTED` when the family has no way of that name (the registry and the driver
/// disagree).
pub fn variant<W: Copy>(setup: &Setup, ways: &[(&str, W)]) -> Result<W, NTSTATUS> {
    ways.iter()
        .find(|(name, _)| *name == setup.plan.variant.name)
        .map(|&(_, way)| way)
        .ok_or(wdk_sys::STATUS_NOT_SUPPORTED)
}

/// Retries `try_acquire` until it succeeds, then runs `inside` with `hold` under its guard.
///
/// The failures are the contention the family itself saw. Any IRQL the try DDI allows (it never
/// waits; the retry spins).
pub fn until_acquired<G>(
    mut try_acquire: impl FnMut() -> Option<G>,
    inside: Inside<'_>,
    hold: Hold,
) -> Attempt {
    let mut failed_tries = 0_u32;
    loop {
        if let Some(_guard) = try_acquire() {
            inside(hold);
            return Attempt {
                failed_tries,
                ..Attempt::DONE
            };
        }
        failed_tries = failed_tries.saturating_add(1);
        core::hint::spin_loop();
    }
}

/// A validated request and the machine it runs on.
pub struct Setup {
    /// The request, as the client sent it.
    pub request: StressRequest,
    /// What validation resolved it to.
    pub plan: Plan,
    /// Processors the kernel reports.
    pub processors: u32,
}

impl Setup {
    /// Whether this run is the busted control.
    #[must_use]
    pub const fn busted(&self) -> bool {
        self.request.flags & FLAG_BUSTED != 0
    }
}

/// Runs `L` for `setup` (the families' `run` functions call this with their ops type), until it
/// ends or `stop` is set. IRQL: `PASSIVE_LEVEL`.
///
/// # Errors
/// The lock, a thread or a DPC could not be set up.
pub fn run<L: TortureOps>(
    setup: &Setup,
    stop: &AtomicBool,
) -> Result<alloc::boxed::Box<StressResponse>, NTSTATUS> {
    engine::run::<L>(setup, stop)
}

/// Runs a validated request to its end (or until `stop` is set): the busted control or the
/// primitive's family. A run's control thread calls this. IRQL: `PASSIVE_LEVEL`.
///
/// # Errors
/// The lock, a thread or a DPC could not be set up.
pub fn run_to_completion(
    setup: &Setup,
    stop: &AtomicBool,
) -> Result<alloc::boxed::Box<StressResponse>, NTSTATUS> {
    if setup.busted() && !setup.plan.primitive.info().shared {
        engine::run::<busted::Exclusive>(setup, stop)
    } else {
        crate::sync::runner(setup.plan.primitive)(setup, stop)
    }
}

/// `IOCTL_SYNCLAB_RUN_STRESS`: validates the request and hands it to a control thread.
///
/// The control thread ([`crate::runs`]) completes it when the run ends; the queue callback never
/// waits for the run. IRQL: `PASSIVE_LEVEL` (the queue's execution level).
///
/// # Errors
/// The NTSTATUS of the first [`RequestError`], `STATUS_DEVICE_BUSY`, or a kernel call that
/// failed; the request is then the caller's to complete. `Ok` means the request is pending.
pub fn start(queue: WDFQUEUE, request: WDFREQUEST, output_length: usize) -> Result<(), NTSTATUS> {
    check_output::<StressResponse>(output_length).map_err(RequestError::ntstatus)?;
    let refuse = |e: RequestError| {
        wdk::println!("synclab: request refused: {e}");
        e.ntstatus()
    };
    let parsed = request::read_input(request, |bytes| StressRequest::parse(bytes).map_err(refuse))?;
    let processors = processor::count();
    let plan = parsed.validate_for(processors).map_err(refuse)?;
    let setup = Setup {
        request: parsed,
        plan,
        processors,
    };
    crate::runs::with_runs(queue, |runs| runs.start(request, setup))?
}
