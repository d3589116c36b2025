//! Test support: a machine with short budgets, bug-check expectations, and safe wrappers over
//! the DDIs. The wrappers are safe because every pointer they pass is to leaked (so live,
//! resident, aligned) storage, and IRQL or ownership misuse is exactly what ntsim turns into a
//! bug check rather than undefined behaviour.
#![allow(dead_code, reason = "each test file uses a subset")]

pub mod dispatcher;
pub mod kmdf;
pub mod resource;
pub mod runtime;
pub mod spin_families;

use std::time::Duration;

use ntsim::{
    wdk_sys::{ntddk, HANDLE, KDPC, KSPIN_LOCK, PVOID},
    BugCheck, HostError, Machine, MachineConfig,
};

/// A machine with `cpus` processors and a 300 ms spin budget.
pub fn machine(cpus: u32) -> Machine {
    Machine::new(MachineConfig {
        processors: cpus,
        spin_budget: Duration::from_millis(300),
        hang_budget: Duration::from_secs(120),
        ..MachineConfig::default()
    })
}

/// Runs `f` on a system thread and returns the bug check it must cause.
pub fn expect_bugcheck<T: Send + 'static>(
    machine: &Machine,
    f: impl FnOnce() -> T + Send + 'static,
) -> BugCheck {
    match machine.run(f) {
        Err(HostError::BugCheck(b)) => b,
        Ok(_) => panic!("expected a bug check; the thread completed"),
        Err(other) => panic!("expected a bug check, got {other}"),
    }
}

/// `KfRaiseIrql`.
pub fn raise(irql: u8) -> u8 {
    // SAFETY: no pointers; an invalid raise is a bug check, not UB.
    unsafe { ntddk::KfRaiseIrql(irql) }
}

/// `KeLowerIrql`.
pub fn lower(irql: u8) {
    // SAFETY: no pointers; an invalid lower is a bug check, not UB.
    unsafe { ntddk::KeLowerIrql(irql) }
}

/// `KeGetCurrentIrql`.
pub fn irql() -> u8 {
    // SAFETY: no preconditions.
    unsafe { ntddk::KeGetCurrentIrql() }
}

/// `KeEnterCriticalRegion`.
pub fn enter_critical_region() {
    // SAFETY: no pointers; misuse is a bug check.
    unsafe { ntddk::KeEnterCriticalRegion() }
}

/// `KeLeaveCriticalRegion`.
pub fn leave_critical_region() {
    // SAFETY: no pointers; misuse is a bug check.
    unsafe { ntddk::KeLeaveCriticalRegion() }
}

/// `KeEnterGuardedRegion`.
pub fn enter_guarded_region() {
    // SAFETY: no pointers; misuse is a bug check.
    unsafe { ntddk::KeEnterGuardedRegion() }
}

/// `KeLeaveGuardedRegion`.
pub fn leave_guarded_region() {
    // SAFETY: no pointers; misuse is a bug check.
    unsafe { ntddk::KeLeaveGuardedRegion() }
}

/// `KeAreApcsDisabled`.
pub fn apcs_disabled() -> bool {
    // SAFETY: no pointers; misuse is a bug check.
    unsafe { ntddk::KeAreApcsDisabled() != 0 }
}

/// `KeAreAllApcsDisabled`.
pub fn all_apcs_disabled() -> bool {
    // SAFETY: no pointers; misuse is a bug check.
    unsafe { ntddk::KeAreAllApcsDisabled() != 0 }
}

/// `KeStallExecutionProcessor`.
pub fn stall(us: u32) {
    // SAFETY: no preconditions.
    unsafe { ntddk::KeStallExecutionProcessor(us) }
}

/// A `KSPIN_LOCK` in leaked memory, addressed by value so it can cross threads.
#[derive(Clone, Copy, Debug)]
pub struct SpinLock(usize);

impl SpinLock {
    /// A new free lock.
    pub fn new() -> Self {
        Self(Box::into_raw(Box::new(0 as KSPIN_LOCK)) as usize)
    }

    /// The lock at `addr` (from [`SpinLock::addr`]).
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

    const fn ptr(self) -> *mut KSPIN_LOCK {
        self.0 as *mut KSPIN_LOCK
    }

    /// `KeAcquireSpinLockRaiseToDpc`.
    pub fn acquire(self) -> u8 {
        // SAFETY: leaked, aligned KSPIN_LOCK.
        unsafe { ntddk::KeAcquireSpinLockRaiseToDpc(self.ptr()) }
    }

    /// `KeReleaseSpinLock`.
    pub fn release(self, irql: u8) {
        // SAFETY: leaked, aligned KSPIN_LOCK.
        unsafe { ntddk::KeReleaseSpinLock(self.ptr(), irql) }
    }

    /// `KeAcquireSpinLockAtDpcLevel`.
    pub fn acquire_at_dpc(self) {
        // SAFETY: leaked, aligned KSPIN_LOCK.
        unsafe { ntddk::KeAcquireSpinLockAtDpcLevel(self.ptr()) }
    }

    /// `KeReleaseSpinLockFromDpcLevel`.
    pub fn release_from_dpc(self) {
        // SAFETY: leaked, aligned KSPIN_LOCK.
        unsafe { ntddk::KeReleaseSpinLockFromDpcLevel(self.ptr()) }
    }

    /// `KeTryToAcquireSpinLockAtDpcLevel`.
    pub fn try_at_dpc(self) -> bool {
        // SAFETY: leaked, aligned KSPIN_LOCK.
        unsafe { ntddk::KeTryToAcquireSpinLockAtDpcLevel(self.ptr()) != 0 }
    }
}

/// A DPC routine.
pub type DpcRoutine = unsafe extern "C" fn(*mut KDPC, PVOID, PVOID, PVOID);

/// A `KDPC` in leaked memory.
#[derive(Clone, Copy, Debug)]
pub struct Dpc(usize);

impl Dpc {
    /// `KeInitializeDpc` on new storage.
    pub fn new(routine: DpcRoutine, context: usize) -> Self {
        let dpc = Self(Box::into_raw(Box::<KDPC>::default()) as usize);
        // SAFETY: leaked, aligned KDPC, not queued.
        unsafe { ntddk::KeInitializeDpc(dpc.ptr(), Some(routine), context as PVOID) };
        dpc
    }

    /// The `KDPC`'s address.
    pub const fn ptr(self) -> *mut KDPC {
        self.0 as *mut KDPC
    }

    /// `KeSetTargetProcessorDpcEx`; the status.
    pub fn target(self, cpu: u8) -> i32 {
        let mut number = ntsim::wdk_sys::PROCESSOR_NUMBER {
            Group: 0,
            Number: cpu,
            Reserved: 0,
        };
        // SAFETY: leaked KDPC and a live PROCESSOR_NUMBER.
        unsafe { ntddk::KeSetTargetProcessorDpcEx(self.ptr(), &raw mut number) }
    }

    /// `KeInsertQueueDpc`.
    pub fn insert(self) -> bool {
        // SAFETY: leaked, initialised KDPC.
        unsafe {
            ntddk::KeInsertQueueDpc(self.ptr(), std::ptr::null_mut(), std::ptr::null_mut()) != 0
        }
    }
}

/// `KeFlushQueuedDpcs`.
pub fn flush_dpcs() {
    // SAFETY: no pointers.
    unsafe { ntddk::KeFlushQueuedDpcs() }
}

/// `PsCreateSystemThread`; returns the handle.
pub fn spawn(routine: unsafe extern "C" fn(PVOID), context: usize) -> HANDLE {
    let mut handle: HANDLE = std::ptr::null_mut();
    // SAFETY: `handle` is writable; NULL optional arguments are allowed.
    let status = unsafe {
        ntddk::PsCreateSystemThread(
            &raw mut handle,
            0,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            Some(routine),
            context as PVOID,
        )
    };
    assert_eq!(status, 0, "PsCreateSystemThread");
    handle
}

/// Waits for the thread behind `handle` (reference, close, wait, dereference).
pub fn join(handle: HANDLE) {
    let mut object: PVOID = std::ptr::null_mut();
    // SAFETY: reading the exported PsThreadType variable, set once at boot.
    let thread_type_ptr = unsafe { ntsim::ddi::thread::PsThreadType };
    // SAFETY: it points to the thread object type, valid for the process's life.
    let thread_type = unsafe { *thread_type_ptr };
    // SAFETY: `handle` is open; `object` is writable.
    let status = unsafe {
        ntddk::ObReferenceObjectByHandle(
            handle,
            0x0010_0000,
            thread_type,
            0,
            &raw mut object,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(status, 0, "ObReferenceObjectByHandle");
    // SAFETY: closing the handle we own.
    let status = unsafe { ntddk::ZwClose(handle) };
    assert_eq!(status, 0, "ZwClose");
    // SAFETY: `object` is a referenced thread object; infinite wait at PASSIVE_LEVEL.
    let status = unsafe { ntddk::KeWaitForSingleObject(object, 0, 0, 0, std::ptr::null_mut()) };
    assert_eq!(status, 0, "KeWaitForSingleObject");
    // SAFETY: drops the reference taken above.
    let _ = unsafe { ntddk::ObfDereferenceObject(object) };
}
pub mod blocking;
