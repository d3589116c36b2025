//! The emulated execution context of the current host thread.
//!
//! Every host thread that runs kernel code of a machine (a system thread, a processor's DPC
//! runner, the thread serving an I/O request) carries one [`Ctx`]: its IRQL, its two APC-disable
//! counters (ddi.md 0.3), the processor it is on, and the locks it holds. DDIs reach it through
//! [`enter`], which also stops the calling thread if its machine has bugchecked.

use std::{
    cell::{Cell, RefCell},
    rc::Rc,
    sync::Arc,
};

use crate::{bugcheck::BugCheck, machine::MachineInner, pool};

/// IRQL values (ddi.md 0.2).
pub mod irql {
    /// `PASSIVE_LEVEL`.
    pub const PASSIVE: u8 = 0;
    /// `APC_LEVEL`.
    pub const APC: u8 = 1;
    /// `DISPATCH_LEVEL`.
    pub const DISPATCH: u8 = 2;
    /// `HIGH_LEVEL` on x64.
    pub const HIGH: u8 = 15;
}

/// What kind of context a host thread emulates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContextKind {
    /// A thread created by `PsCreateSystemThread` (or [`crate::Machine::run`]).
    SystemThread,
    /// A processor's DPC runner; `in_dpc` tells whether a DPC routine is executing.
    DpcRunner,
    /// The caller's thread while the I/O manager and the driver serve its request.
    Syscall,
    /// A system worker thread running a driver's work item (`IoQueueWorkItem[Ex]`).
    WorkItem,
}

/// Which acquire/release pairing a hold belongs to. A release must name the family its
/// acquire used (ddi.md 1.2 rule 2, 13.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockFamily {
    /// `KeAcquireSpinLockRaiseToDpc` / `KeReleaseSpinLock`.
    SpinRaise,
    /// `KeAcquireSpinLockAtDpcLevel`, `KeTryToAcquireSpinLockAtDpcLevel` /
    /// `KeReleaseSpinLockFromDpcLevel`.
    SpinAtDpc,
    /// `ExAcquireFastMutex`, `ExTryToAcquireFastMutex` / `ExReleaseFastMutex`.
    FastMutex,
    /// `ExAcquireFastMutexUnsafe` / `ExReleaseFastMutexUnsafe`.
    FastMutexUnsafe,
    /// `KeAcquireGuardedMutex`, `KeTryToAcquireGuardedMutex` / `KeReleaseGuardedMutex`.
    GuardedMutex,
    /// `KeAcquireGuardedMutexUnsafe` / `KeReleaseGuardedMutexUnsafe`.
    GuardedMutexUnsafe,
    /// `ExAcquirePushLockExclusiveEx` / `ExReleasePushLockExclusiveEx`.
    PushLockExclusive,
    /// `ExAcquirePushLockSharedEx` / `ExReleasePushLockSharedEx`.
    PushLockShared,
    /// A spin lock taken and dropped inside one `ExInterlocked…` call.
    Interlocked,
    /// `KeAcquireSpinLockForDpc` / `KeReleaseSpinLockForDpc`.
    SpinForDpc,
    /// `KeAcquireInStackQueuedSpinLock` / `KeReleaseInStackQueuedSpinLock`.
    QueuedRaise,
    /// `KeAcquireInStackQueuedSpinLockAtDpcLevel` / `KeReleaseInStackQueuedSpinLockFromDpcLevel`.
    QueuedAtDpc,
    /// `KeAcquireInStackQueuedSpinLockForDpc` / `KeReleaseInStackQueuedSpinLockForDpc`.
    QueuedForDpc,
    /// `ExAcquireSpinLockExclusive` / `ExReleaseSpinLockExclusive` (also a raising shared
    /// acquire converted by `ExTryConvertSharedSpinLockExclusive`).
    ExSpinExclusive,
    /// `ExAcquireSpinLockShared` / `ExReleaseSpinLockShared`.
    ExSpinShared,
    /// `ExAcquireSpinLockExclusiveAtDpcLevel`, `ExTryAcquireSpinLockExclusiveAtDpcLevel` /
    /// `ExReleaseSpinLockExclusiveFromDpcLevel` (also a converted `…SharedAtDpcLevel` hold).
    ExSpinExclusiveAtDpc,
    /// `ExAcquireSpinLockSharedAtDpcLevel`, `ExTryAcquireSpinLockSharedAtDpcLevel` /
    /// `ExReleaseSpinLockSharedFromDpcLevel`.
    ExSpinSharedAtDpc,
    /// `WdfSpinLockAcquire` / `WdfSpinLockRelease` (the hold's address is the `WDFSPINLOCK`).
    WdfSpinLock,
}

impl LockFamily {
    /// Whether the acquire raised IRQL and the release restores it (releases must be LIFO).
    #[must_use]
    pub const fn restores_irql(self) -> bool {
        matches!(
            self,
            Self::SpinRaise
                | Self::SpinForDpc
                | Self::QueuedRaise
                | Self::QueuedForDpc
                | Self::ExSpinExclusive
                | Self::ExSpinShared
                | Self::WdfSpinLock
                | Self::FastMutex
                | Self::GuardedMutex
        )
    }
}

/// One lock held by a context.
#[derive(Clone, Debug)]
pub struct Hold {
    /// Address of the lock object.
    pub addr: usize,
    /// The acquire family.
    pub family: LockFamily,
    /// IRQL saved by a raising acquire.
    pub saved_irql: Option<u8>,
    /// The DDI that acquired it.
    pub acquired_by: &'static str,
}

/// A `Wait = TRUE` set/release call whose follow-up wait has not happened yet (errata 2): the
/// thread is at `DISPATCH_LEVEL` and the next DDI it calls must be a `KeWait…`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingWait {
    /// The IRQL the call saved; the wait judges and restores it.
    pub saved_irql: u8,
    /// The object the call signaled or released.
    pub object: usize,
    /// The DDI that was called with `Wait = TRUE`.
    pub by: &'static str,
}

/// The emulated state of one host thread.
pub struct Ctx {
    /// The machine this context belongs to.
    pub machine: Arc<MachineInner>,
    /// Nonzero identifier, unique within the machine; used as the owner value of locks.
    pub uid: u64,
    /// Human-readable name used in bug check messages.
    pub name: String,
    /// What this context emulates.
    pub kind: ContextKind,
    /// Address of the thread object (`PETHREAD`) for system threads, 0 otherwise.
    pub thread_object: usize,
    /// Current IRQL.
    pub irql: Cell<u8>,
    /// `KernelApcDisable` (<= 0 in correct code).
    pub kernel_apc_disable: Cell<i16>,
    /// `SpecialApcDisable` (<= 0 in correct code).
    pub special_apc_disable: Cell<i16>,
    /// The processor the context is on (or last ran on, below `DISPATCH_LEVEL`).
    pub processor: Cell<u32>,
    /// Whether this context owns its processor (it is at `DISPATCH_LEVEL` or above).
    pub holds_cpu: Cell<bool>,
    /// Hard affinity: the processors (bit per index, group 0) this context may run on, as set
    /// by `KeSetSystemGroupAffinityThread`. Raising to `DISPATCH_LEVEL` takes one of these only.
    pub affinity: Cell<u64>,
    /// Locks held, in acquisition order.
    pub held: RefCell<Vec<Hold>>,
    /// Nesting depth of DDI calls on this thread.
    kernel_depth: Cell<u32>,
    /// True while driver code runs (a callback or start routine, outside any DDI): only then
    /// are allocations charged to the driver's pool.
    in_driver: Cell<bool>,
    /// True while a DPC routine runs on this (DPC runner) context.
    pub in_dpc: Cell<bool>,
    /// Set by a `Wait = TRUE` set/release call until the wait that must follow it.
    pub wait_next: Cell<Option<PendingWait>>,
    /// True while a KMDF queue callback runs that KMDF may call at `DISPATCH_LEVEL` (the
    /// queue's execution level is not `WdfExecutionLevelPassive`), although ntsim runs it at
    /// the caller's IRQL (see `MachineConfig::dispatch_level_callback_checks`).
    pub may_run_at_dispatch: Cell<bool>,
}

impl Ctx {
    /// A context at `PASSIVE_LEVEL` with no APCs disabled.
    pub(crate) fn new(
        machine: Arc<MachineInner>,
        kind: ContextKind,
        name: String,
        processor: u32,
        thread_object: usize,
    ) -> Self {
        let uid = machine.next_uid();
        machine.register_context(uid, &name);
        let all_processors = crate::processor::mask_of(machine.processor_count());
        Self {
            machine,
            uid,
            name,
            kind,
            thread_object,
            irql: Cell::new(irql::PASSIVE),
            kernel_apc_disable: Cell::new(0),
            special_apc_disable: Cell::new(0),
            processor: Cell::new(processor),
            holds_cpu: Cell::new(false),
            affinity: Cell::new(all_processors),
            held: RefCell::new(Vec::new()),
            kernel_depth: Cell::new(0),
            in_driver: Cell::new(false),
            in_dpc: Cell::new(false),
            wait_next: Cell::new(None),
            may_run_at_dispatch: Cell::new(false),
        }
    }

    /// `CombinedApcDisable` = `(SpecialApcDisable << 16) | (USHORT)KernelApcDisable`.
    #[must_use]
    pub fn combined_apc_disable(&self) -> u32 {
        let special = u32::from(self.special_apc_disable.get().cast_unsigned());
        let kernel = u32::from(self.kernel_apc_disable.get().cast_unsigned());
        (special << 16) | kernel
    }

    /// Moves the context to `new` IRQL, taking its processor when it reaches `DISPATCH_LEVEL` and
    /// giving it back (so queued DPCs can run there) when it drops below. No checks: callers
    /// validate first.
    pub fn set_irql(&self, new: u8) {
        let old = self.irql.get();
        if old < irql::DISPATCH && new >= irql::DISPATCH && !self.holds_cpu.get() {
            self.machine.processors.take(self);
        } else if old >= irql::DISPATCH && new < irql::DISPATCH && self.holds_cpu.get() {
            self.machine.processors.give_back(self);
        }
        self.irql.set(new);
    }

    /// Describes the context for bug check messages.
    #[must_use]
    pub fn describe(&self) -> String {
        format!(
            "{} on CPU {} at IRQL {}",
            self.name,
            self.processor.get(),
            self.irql.get()
        )
    }

    /// Runs driver code (a callback or start routine): its allocations are charged to the
    /// driver's pool. Callers are kernel code, so tracking is off again afterwards.
    pub fn call_driver<R>(&self, f: impl FnOnce() -> R) -> R {
        let saved_depth = self.kernel_depth.replace(0);
        let saved_in_driver = self.in_driver.replace(true);
        pool::set_tracking(Some(self.machine.pool));
        let result = f();
        pool::set_tracking(None);
        self.kernel_depth.set(saved_depth);
        self.in_driver.set(saved_in_driver);
        result
    }

    /// Index of the most recent hold of `addr`, if held.
    #[must_use]
    pub fn find_hold(&self, addr: usize) -> Option<usize> {
        self.held.borrow().iter().rposition(|h| h.addr == addr)
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<Ctx>>> = const { RefCell::new(None) };
}

/// Makes `ctx` the context of this host thread, for the rest of its life.
pub(crate) fn install(ctx: Ctx) -> Rc<Ctx> {
    let ctx = Rc::new(ctx);
    CURRENT.with(|c| *c.borrow_mut() = Some(Rc::clone(&ctx)));
    pool::set_tracking(None);
    ctx
}

/// The context of this host thread, if it is an emulated one.
#[must_use]
pub fn try_current() -> Option<Rc<Ctx>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// A DDI call in progress: kernel depth raised (allocations are the kernel's), and the calling
/// thread parked if its machine is dead. Dereferences to the [`Ctx`].
pub struct Entry {
    ctx: Rc<Ctx>,
    /// The DDI being served, for bug check messages.
    pub ddi: &'static str,
}

impl std::ops::Deref for Entry {
    type Target = Ctx;
    fn deref(&self) -> &Ctx {
        &self.ctx
    }
}

impl Entry {
    /// Stops the machine: records the bug check (the first one wins) and halts this thread.
    pub fn bugcheck(&self, code: u32, params: [u64; 4], message: impl Into<String>) -> ! {
        raise(&self.ctx, code, params, self.ddi, message.into())
    }

    /// Halts this thread if the machine has bugchecked meanwhile.
    pub fn check_alive(&self) {
        if self.machine.is_dead() {
            halt();
        }
    }

    /// A clone of the context handle.
    #[must_use]
    pub fn rc(&self) -> Rc<Ctx> {
        Rc::clone(&self.ctx)
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        let depth = self.ctx.kernel_depth.get().saturating_sub(1);
        self.ctx.kernel_depth.set(depth);
        if depth == 0 && self.ctx.in_driver.get() {
            pool::set_tracking(Some(self.ctx.machine.pool));
        }
    }
}

/// Enters a DDI.
///
/// # Panics
/// When the calling host thread is not an emulated context (a host-side programming error,
/// not an emulated one): use [`crate::Machine::run`] to run kernel code.
#[must_use]
pub fn enter(ddi: &'static str) -> Entry {
    let Some(ctx) = try_current() else {
        panic!(
            "{ddi} called on a host thread that is not an ntsim context; \
             run kernel code through Machine::run or a driver callback"
        )
    };
    if ctx.machine.is_dead() {
        halt();
    }
    if let Some(pending) = ctx.wait_next.get() {
        if !crate::ddi::wait::is_follow_up_wait(ddi) {
            ctx.wait_next.set(None);
            crate::ddi::wait::missing_follow_up_wait(&ctx, pending, ddi);
        }
    }
    ctx.kernel_depth.set(ctx.kernel_depth.get() + 1);
    pool::set_tracking(None);
    Entry { ctx, ddi }
}

/// Records a bug check for `ctx`'s machine and halts this thread.
pub(crate) fn raise(
    ctx: &Ctx,
    code: u32,
    params: [u64; 4],
    detected_in: &'static str,
    message: String,
) -> ! {
    pool::set_tracking(None);
    ctx.machine.die(BugCheck {
        code,
        params,
        detected_in,
        context: ctx.describe(),
        message,
    });
    halt()
}

/// Stops this host thread for good, as a processor stops at a bug check.
pub(crate) fn halt() -> ! {
    pool::set_tracking(None);
    loop {
        std::thread::park();
    }
}
