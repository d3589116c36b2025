//! Test support for the spin-lock families: safe wrappers over the in-stack queued, reader/writer
//! and WDF spin-lock DDIs and the `…ForDpc`/`KeTestSpinLock` extras, and a stress harness that
//! runs critical sections from system threads and DPCs on one machine.
//!
//! The wrappers are safe for the reason given in `support/mod.rs`: every lock and handle they
//! pass lives in leaked (live, resident, aligned) storage or in the caller's frame for the whole
//! hold, and misuse is what ntsim turns into a bug check.

use std::{
    sync::atomic::{AtomicU64, AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use ntsim::{
    wdk_sys::{
        call_unsafe_wdf_function_binding, ntddk, EX_SPIN_LOCK, KDPC, KLOCK_QUEUE_HANDLE, PVOID,
        WDFSPINLOCK, WDF_NO_OBJECT_ATTRIBUTES,
    },
    Machine, MachineConfig,
};

use super::{Dpc, SpinLock};

/// A machine whose spin budget is long enough for heavy contention on a loaded host.
pub fn roomy_machine(cpus: u32) -> Machine {
    Machine::new(MachineConfig {
        processors: cpus,
        spin_budget: Duration::from_secs(60),
        hang_budget: Duration::from_secs(600),
        ..MachineConfig::default()
    })
}

/// The `…ForDpc` routines and `KeTestSpinLock` on an ordinary spin lock.
pub trait SpinLockExtras {
    /// `KeAcquireSpinLockForDpc`.
    fn acquire_for_dpc(self) -> u8;
    /// `KeReleaseSpinLockForDpc`.
    fn release_for_dpc(self, old: u8);
    /// `KeTestSpinLock`: true when free.
    fn test(self) -> bool;
}

impl SpinLockExtras for SpinLock {
    fn acquire_for_dpc(self) -> u8 {
        // SAFETY: leaked, aligned KSPIN_LOCK.
        unsafe { ntddk::KeAcquireSpinLockForDpc(self.ptr()) }
    }

    fn release_for_dpc(self, old: u8) {
        // SAFETY: leaked, aligned KSPIN_LOCK.
        unsafe { ntddk::KeReleaseSpinLockForDpc(self.ptr(), old) }
    }

    fn test(self) -> bool {
        // SAFETY: leaked, aligned KSPIN_LOCK.
        unsafe { ntddk::KeTestSpinLock(self.ptr()) != 0 }
    }
}

/// A `KLOCK_QUEUE_HANDLE` in leaked memory (stable address, shareable across contexts, and
/// observable by the test while in use).
#[derive(Clone, Copy, Debug)]
pub struct Handle(usize);

impl Handle {
    /// A new zeroed handle.
    pub fn new() -> Self {
        Self(Box::into_raw(Box::<KLOCK_QUEUE_HANDLE>::default()) as usize)
    }

    /// The handle at `addr` (from [`Handle::context`]).
    pub const fn from_addr(addr: usize) -> Self {
        Self(addr)
    }

    /// Its address, to pass as a context pointer.
    pub const fn context(self) -> usize {
        self.0
    }

    /// Its address as bug check parameters show it.
    pub const fn addr(self) -> u64 {
        self.0 as u64
    }

    /// The raw pointer.
    pub const fn ptr(self) -> *mut KLOCK_QUEUE_HANDLE {
        self.0 as *mut KLOCK_QUEUE_HANDLE
    }

    /// `LockQueue.Next`: the handle queued right behind this one (0 when none), read atomically
    /// because the acquirer behind writes it.
    pub fn next(self) -> usize {
        // SAFETY: leaked, 8-aligned handle; `LockQueue.Next` is its pointer-sized first field,
        // and the kernel writes it only atomically.
        unsafe { AtomicUsize::from_ptr(self.0 as *mut usize) }.load(Ordering::Acquire)
    }

    /// `OldIrql`.
    pub fn old_irql(self) -> u8 {
        // SAFETY: leaked handle; only its owner (the caller) touches `OldIrql`.
        unsafe { (*self.ptr()).OldIrql }
    }

    /// Overwrites `LockQueue.Lock` (to model a driver corrupting its handle).
    pub fn set_lock_field(self, lock: SpinLock) {
        // SAFETY: leaked, aligned handle; the field is pointer-sized at offset 8.
        unsafe { AtomicUsize::from_ptr((self.0 + 8) as *mut usize) }
            .store(lock.context(), Ordering::Relaxed);
    }
}

/// The in-stack queued routines on one `KSPIN_LOCK` with a handle; `handle` must stay in place
/// until the release (ddi.md 2 rule 1).
pub mod queued {
    use super::{ntddk, SpinLock, KLOCK_QUEUE_HANDLE};

    /// `KeAcquireInStackQueuedSpinLock`.
    pub fn acquire(lock: SpinLock, handle: *mut KLOCK_QUEUE_HANDLE) {
        // SAFETY: leaked lock; the handle is the caller's, in place until its release.
        unsafe { ntddk::KeAcquireInStackQueuedSpinLock(lock.ptr(), handle) }
    }

    /// `KeReleaseInStackQueuedSpinLock`.
    pub fn release(handle: *mut KLOCK_QUEUE_HANDLE) {
        // SAFETY: the caller's handle (ntsim checks that an acquire filled it).
        unsafe { ntddk::KeReleaseInStackQueuedSpinLock(handle) }
    }

    /// `KeAcquireInStackQueuedSpinLockAtDpcLevel`.
    pub fn acquire_at_dpc(lock: SpinLock, handle: *mut KLOCK_QUEUE_HANDLE) {
        // SAFETY: as for `acquire`.
        unsafe { ntddk::KeAcquireInStackQueuedSpinLockAtDpcLevel(lock.ptr(), handle) }
    }

    /// `KeReleaseInStackQueuedSpinLockFromDpcLevel`.
    pub fn release_from_dpc(handle: *mut KLOCK_QUEUE_HANDLE) {
        // SAFETY: as for `release`.
        unsafe { ntddk::KeReleaseInStackQueuedSpinLockFromDpcLevel(handle) }
    }

    /// `KeAcquireInStackQueuedSpinLockForDpc`.
    pub fn acquire_for_dpc(lock: SpinLock, handle: *mut KLOCK_QUEUE_HANDLE) {
        // SAFETY: as for `acquire`.
        unsafe { ntddk::KeAcquireInStackQueuedSpinLockForDpc(lock.ptr(), handle) }
    }

    /// `KeReleaseInStackQueuedSpinLockForDpc`.
    pub fn release_for_dpc(handle: *mut KLOCK_QUEUE_HANDLE) {
        // SAFETY: as for `release`.
        unsafe { ntddk::KeReleaseInStackQueuedSpinLockForDpc(handle) }
    }
}

/// An `EX_SPIN_LOCK` in leaked memory.
#[derive(Clone, Copy, Debug)]
pub struct ExLock(usize);

impl ExLock {
    /// A new free (zeroed) lock.
    pub fn new() -> Self {
        Self(Box::into_raw(Box::new(0 as EX_SPIN_LOCK)) as usize)
    }

    /// The lock at `addr` (from [`ExLock::context`]).
    pub const fn from_addr(addr: usize) -> Self {
        Self(addr)
    }

    /// Its address, to pass as a context pointer.
    pub const fn context(self) -> usize {
        self.0
    }

    /// Its address as bug check parameters show it.
    pub const fn addr(self) -> u64 {
        self.0 as u64
    }

    const fn ptr(self) -> *mut EX_SPIN_LOCK {
        self.0 as *mut EX_SPIN_LOCK
    }

    /// `ExAcquireSpinLockExclusive`.
    pub fn acquire_exclusive(self) -> u8 {
        // SAFETY: leaked, aligned EX_SPIN_LOCK.
        unsafe { ntddk::ExAcquireSpinLockExclusive(self.ptr()) }
    }

    /// `ExAcquireSpinLockShared`.
    pub fn acquire_shared(self) -> u8 {
        // SAFETY: leaked, aligned EX_SPIN_LOCK.
        unsafe { ntddk::ExAcquireSpinLockShared(self.ptr()) }
    }

    /// `ExReleaseSpinLockExclusive`.
    pub fn release_exclusive(self, old: u8) {
        // SAFETY: leaked, aligned EX_SPIN_LOCK.
        unsafe { ntddk::ExReleaseSpinLockExclusive(self.ptr(), old) }
    }

    /// `ExReleaseSpinLockShared`.
    pub fn release_shared(self, old: u8) {
        // SAFETY: leaked, aligned EX_SPIN_LOCK.
        unsafe { ntddk::ExReleaseSpinLockShared(self.ptr(), old) }
    }

    /// `ExAcquireSpinLockExclusiveAtDpcLevel`.
    pub fn acquire_exclusive_at_dpc(self) {
        // SAFETY: leaked, aligned EX_SPIN_LOCK.
        unsafe { ntddk::ExAcquireSpinLockExclusiveAtDpcLevel(self.ptr()) }
    }

    /// `ExAcquireSpinLockSharedAtDpcLevel`.
    pub fn acquire_shared_at_dpc(self) {
        // SAFETY: leaked, aligned EX_SPIN_LOCK.
        unsafe { ntddk::ExAcquireSpinLockSharedAtDpcLevel(self.ptr()) }
    }

    /// `ExReleaseSpinLockExclusiveFromDpcLevel`.
    pub fn release_exclusive_from_dpc(self) {
        // SAFETY: leaked, aligned EX_SPIN_LOCK.
        unsafe { ntddk::ExReleaseSpinLockExclusiveFromDpcLevel(self.ptr()) }
    }

    /// `ExReleaseSpinLockSharedFromDpcLevel`.
    pub fn release_shared_from_dpc(self) {
        // SAFETY: leaked, aligned EX_SPIN_LOCK.
        unsafe { ntddk::ExReleaseSpinLockSharedFromDpcLevel(self.ptr()) }
    }

    /// `ExTryConvertSharedSpinLockExclusive`.
    pub fn try_convert(self) -> bool {
        // SAFETY: leaked, aligned EX_SPIN_LOCK.
        unsafe { ntddk::ExTryConvertSharedSpinLockExclusive(self.ptr()) != 0 }
    }

    /// `ExTryAcquireSpinLockSharedAtDpcLevel`.
    pub fn try_shared_at_dpc(self) -> bool {
        // SAFETY: leaked, aligned EX_SPIN_LOCK.
        unsafe { ntddk::ExTryAcquireSpinLockSharedAtDpcLevel(self.ptr()) != 0 }
    }

    /// `ExTryAcquireSpinLockExclusiveAtDpcLevel`.
    pub fn try_exclusive_at_dpc(self) -> bool {
        // SAFETY: leaked, aligned EX_SPIN_LOCK.
        unsafe { ntddk::ExTryAcquireSpinLockExclusiveAtDpcLevel(self.ptr()) != 0 }
    }
}

/// A `WDFSPINLOCK`, by handle value.
#[derive(Clone, Copy, Debug)]
pub struct WdfLock(usize);

impl WdfLock {
    /// `WdfSpinLockCreate` with no attributes; panics unless it succeeds.
    pub fn create() -> Self {
        let mut handle: WDFSPINLOCK = std::ptr::null_mut();
        // SAFETY: no attributes; `handle` is writable.
        let status = unsafe {
            call_unsafe_wdf_function_binding!(
                WdfSpinLockCreate,
                WDF_NO_OBJECT_ATTRIBUTES,
                &raw mut handle
            )
        };
        assert_eq!(status, 0, "WdfSpinLockCreate");
        Self(handle as usize)
    }

    /// The lock with handle value `handle` (from [`WdfLock::context`]).
    pub const fn from_addr(handle: usize) -> Self {
        Self(handle)
    }

    /// Its handle value, to pass as a context pointer.
    pub const fn context(self) -> usize {
        self.0
    }

    /// Its handle as bug check parameters show it.
    pub const fn addr(self) -> u64 {
        self.0 as u64
    }

    /// `WdfSpinLockAcquire`.
    pub fn acquire(self) {
        // SAFETY: a handle from WdfSpinLockCreate (ntsim checks it).
        unsafe { call_unsafe_wdf_function_binding!(WdfSpinLockAcquire, self.0 as WDFSPINLOCK) }
    }

    /// `WdfSpinLockRelease`.
    pub fn release(self) {
        // SAFETY: a handle from WdfSpinLockCreate (ntsim checks it).
        unsafe { call_unsafe_wdf_function_binding!(WdfSpinLockRelease, self.0 as WDFSPINLOCK) }
    }
}

/// The current processor's index.
pub fn current_cpu() -> u32 {
    // SAFETY: NULL is allowed for the optional PROCESSOR_NUMBER.
    unsafe { ntddk::KeGetCurrentProcessorNumberEx(std::ptr::null_mut()) }
}

/// Polls `done` (yielding the host core) until it holds; panics after `limit`. Usable at any
/// IRQL: it never blocks in the emulated kernel.
pub fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}

/// Who runs a critical section in a stress run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Worker {
    /// System thread number n (at `PASSIVE_LEVEL` between sections).
    Thread(usize),
    /// DPC number n (at `DISPATCH_LEVEL`).
    Dpc(usize),
}

/// State shared by every worker of a stress run.
pub struct Arena {
    /// The lock under test (address or handle), made on the machine by the plan.
    pub lock: usize,
    /// Incremented non-atomically (a load and a separate store) inside exclusive sections.
    pub counter: AtomicU64,
    /// A second counter that exclusive sections keep equal to `counter` when they leave.
    pub shadow: AtomicU64,
    /// Exclusive sections inside now.
    pub writers_inside: AtomicU64,
    /// Shared sections inside now.
    pub readers_inside: AtomicU64,
    /// Exclusive sections completed.
    pub exclusive_done: AtomicU64,
    /// Shared sections completed.
    pub shared_done: AtomicU64,
    /// Overlaps seen (an exclusive section meeting any other section, or a shared section
    /// meeting an exclusive one or a torn counter pair).
    pub violations: AtomicU64,
}

impl Arena {
    const fn new(lock: usize) -> Self {
        Self {
            lock,
            counter: AtomicU64::new(0),
            shadow: AtomicU64::new(0),
            writers_inside: AtomicU64::new(0),
            readers_inside: AtomicU64::new(0),
            exclusive_done: AtomicU64::new(0),
            shared_done: AtomicU64::new(0),
            violations: AtomicU64::new(0),
        }
    }

    /// The body of an exclusive section: checks it is alone, then increments both counters
    /// non-atomically.
    pub fn exclusive(&self) {
        if self.writers_inside.fetch_add(1, Ordering::Relaxed) != 0
            || self.readers_inside.load(Ordering::Relaxed) != 0
        {
            self.violations.fetch_add(1, Ordering::Relaxed);
        }
        let value = self.counter.load(Ordering::Relaxed);
        std::hint::spin_loop();
        self.counter.store(value + 1, Ordering::Relaxed);
        let shadow = self.shadow.load(Ordering::Relaxed);
        self.shadow.store(shadow + 1, Ordering::Relaxed);
        self.writers_inside.fetch_sub(1, Ordering::Relaxed);
        self.exclusive_done.fetch_add(1, Ordering::Relaxed);
    }

    /// The body of a shared section: checks no writer is inside and the counters agree.
    pub fn shared(&self) {
        self.readers_inside.fetch_add(1, Ordering::Relaxed);
        let writers = self.writers_inside.load(Ordering::Relaxed);
        let counter = self.counter.load(Ordering::Relaxed);
        let shadow = self.shadow.load(Ordering::Relaxed);
        if writers != 0 || counter != shadow {
            self.violations.fetch_add(1, Ordering::Relaxed);
        }
        self.readers_inside.fetch_sub(1, Ordering::Relaxed);
        self.shared_done.fetch_add(1, Ordering::Relaxed);
    }
}

/// One critical section (acquire, [`Arena::exclusive`] or [`Arena::shared`], release) run by
/// `worker` as its `n`th.
pub type Section = fn(arena: &Arena, worker: Worker, n: u64);

/// The shape of a stress run.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Emulated processors.
    pub cpus: u32,
    /// System threads.
    pub threads: usize,
    /// Sections per thread.
    pub per_thread: u64,
    /// DPCs (DPC `n` targets processor `cpus - 1 - n`).
    pub dpcs: usize,
    /// Sections per DPC (run in batches; the DPC queues itself again until done).
    pub per_dpc: u64,
    /// Makes the lock on the machine (a system thread at `PASSIVE_LEVEL`).
    pub make_lock: fn() -> usize,
    /// The section.
    pub section: Section,
}

/// What a stress run observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Final value of the non-atomically incremented counter.
    pub counter: u64,
    /// Exclusive sections completed.
    pub exclusive: u64,
    /// Shared sections completed.
    pub shared: u64,
    /// Overlaps seen.
    pub violations: u64,
}

const DPC_BATCH: u64 = 2_000;

struct ThreadJob {
    arena: &'static Arena,
    index: usize,
    count: u64,
    section: Section,
}

struct DpcJob {
    arena: &'static Arena,
    index: usize,
    remaining: AtomicU64,
    done_so_far: AtomicU64,
    finished: AtomicU64,
    dpc: AtomicUsize,
    section: Section,
}

unsafe extern "C" fn stress_thread(context: PVOID) {
    // SAFETY: the context is a leaked ThreadJob, alive for the whole process.
    let job = unsafe { &*context.cast::<ThreadJob>() };
    for n in 0..job.count {
        (job.section)(job.arena, Worker::Thread(job.index), n);
    }
}

unsafe extern "C" fn stress_dpc(_: *mut KDPC, context: PVOID, _: PVOID, _: PVOID) {
    // SAFETY: the context is a leaked DpcJob, alive for the whole process.
    let job = unsafe { &*context.cast::<DpcJob>() };
    let batch = job.remaining.load(Ordering::Relaxed).min(DPC_BATCH);
    let first = job.done_so_far.load(Ordering::Relaxed);
    for n in first..first + batch {
        (job.section)(job.arena, Worker::Dpc(job.index), n);
    }
    job.done_so_far.store(first + batch, Ordering::Relaxed);
    let left = job.remaining.fetch_sub(batch, Ordering::Relaxed) - batch;
    if left == 0 {
        job.finished.store(1, Ordering::Release);
    } else {
        let dpc = Dpc(job.dpc.load(Ordering::Relaxed));
        assert!(dpc.insert(), "the running DPC is not queued");
    }
}

/// Runs `plan` on a fresh machine and returns what it observed; panics on a bug check.
pub fn stress(plan: Plan) -> Outcome {
    let machine = roomy_machine(plan.cpus);
    let outcome = machine.run(move || {
        let arena: &'static Arena = Box::leak(Box::new(Arena::new((plan.make_lock)())));
        let mut jobs = Vec::new();
        for index in 0..plan.dpcs {
            let job: &'static DpcJob = Box::leak(Box::new(DpcJob {
                arena,
                index,
                remaining: AtomicU64::new(plan.per_dpc),
                done_so_far: AtomicU64::new(0),
                finished: AtomicU64::new(u64::from(plan.per_dpc == 0)),
                dpc: AtomicUsize::new(0),
                section: plan.section,
            }));
            let dpc = Dpc::new(stress_dpc, std::ptr::from_ref(job) as usize);
            let cpu = plan.cpus - 1 - u32::try_from(index % plan.cpus as usize).unwrap_or(0);
            assert_eq!(dpc.target(u8::try_from(cpu).unwrap_or(0)), 0);
            job.dpc.store(dpc.0, Ordering::Relaxed);
            jobs.push((job, dpc));
        }
        let threads: Vec<_> = (0..plan.threads)
            .map(|index| {
                let job: &'static ThreadJob = Box::leak(Box::new(ThreadJob {
                    arena,
                    index,
                    count: plan.per_thread,
                    section: plan.section,
                }));
                super::spawn(stress_thread, std::ptr::from_ref(job) as usize)
            })
            .collect();
        for (job, dpc) in &jobs {
            if job.remaining.load(Ordering::Relaxed) > 0 {
                assert!(dpc.insert());
            }
        }
        for thread in threads {
            super::join(thread);
        }
        for (job, _) in &jobs {
            while job.finished.load(Ordering::Acquire) == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        super::flush_dpcs();
        Outcome {
            counter: arena.counter.load(Ordering::Relaxed),
            exclusive: arena.exclusive_done.load(Ordering::Relaxed),
            shared: arena.shared_done.load(Ordering::Relaxed),
            violations: arena.violations.load(Ordering::Relaxed),
        }
    });
    match outcome {
        Ok(outcome) => outcome,
        Err(e) => {
            // A context halted inside a wait may keep the dispatcher lock that dropping the
            // machine takes: keep the dead machine rather than hang on it.
            std::mem::forget(machine);
            panic!("stress run failed: {e}")
        }
    }
}
