//! Bug checks: how misuse ends an emulated machine.
//!
//! When the driver breaks a rule of `shared/reference/ddi.md`, ntsim does what Windows with
//! Driver Verifier does: it stops the machine with a bug check code and four parameters. The
//! first bug check wins and is kept as a [`BugCheck`]; every emulated context of that machine
//! then stops at its next kernel call (its host thread parks forever, as a halted processor
//! would), and every host-side call into the machine returns the [`BugCheck`].

use std::fmt;

/// Bug check codes used by ntsim (ddi.md section 12), as `KeBugCheckEx` takes them.
pub mod code {
    /// `APC_INDEX_MISMATCH`.
    pub const APC_INDEX_MISMATCH: u32 = 0x1;
    /// `MAXIMUM_WAIT_OBJECTS_EXCEEDED`.
    pub const MAXIMUM_WAIT_OBJECTS_EXCEEDED: u32 = 0xC;
    /// `SPIN_LOCK_ALREADY_OWNED` (ntsim's deterministic stand-in for a recursive-acquire hang).
    pub const SPIN_LOCK_ALREADY_OWNED: u32 = 0xF;
    /// `KMODE_EXCEPTION_NOT_HANDLED`.
    pub const KMODE_EXCEPTION_NOT_HANDLED: u32 = 0x1E;
    /// `SHARED_RESOURCE_CONV_ERROR`: `ExConvertExclusiveToSharedLite` on a resource the caller
    /// does not own exclusively (ddi.md 13.3, emulator convention; P1 resource, P2 thread).
    pub const SHARED_RESOURCE_CONV_ERROR: u32 = 0x1F;
    /// `KERNEL_APC_PENDING_DURING_EXIT`.
    pub const KERNEL_APC_PENDING_DURING_EXIT: u32 = 0x20;
    /// `SYSTEM_SERVICE_EXCEPTION`: an exception escaped code running in a system call (errata
    /// 14).
    pub const SYSTEM_SERVICE_EXCEPTION: u32 = 0x3B;
    /// `IRQL_GT_ZERO_AT_SYSTEM_SERVICE`.
    pub const IRQL_GT_ZERO_AT_SYSTEM_SERVICE: u32 = 0x4A;
    /// `SYSTEM_THREAD_EXCEPTION_NOT_HANDLED`.
    pub const SYSTEM_THREAD_EXCEPTION_NOT_HANDLED: u32 = 0x7E;
    /// `ATTEMPTED_SWITCH_FROM_DPC`.
    pub const ATTEMPTED_SWITCH_FROM_DPC: u32 = 0xB8;
    /// `MUTEX_ALREADY_OWNED`.
    pub const MUTEX_ALREADY_OWNED: u32 = 0xBF;
    /// `BAD_POOL_CALLER`.
    pub const BAD_POOL_CALLER: u32 = 0xC2;
    /// `DRIVER_VERIFIER_DETECTED_VIOLATION` (P1 = subcode, see [`super::verifier`]).
    pub const DRIVER_VERIFIER_DETECTED_VIOLATION: u32 = 0xC4;
    /// `TIMER_OR_DPC_INVALID`.
    pub const TIMER_OR_DPC_INVALID: u32 = 0xC7;
    /// `IRQL_UNEXPECTED_VALUE`.
    pub const IRQL_UNEXPECTED_VALUE: u32 = 0xC8;
    /// `DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS`.
    pub const DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS: u32 = 0xCE;
    /// `SYSTEM_EXIT_OWNED_MUTEX`: a work item returned while owning a dispatcher mutex (P1 worker
    /// routine, P3 work item).
    pub const SYSTEM_EXIT_OWNED_MUTEX: u32 = 0x39;
    /// `WORKER_THREAD_RETURNED_AT_BAD_IRQL`: a work item returned at `DISPATCH_LEVEL` or above.
    pub const WORKER_THREAD_RETURNED_AT_BAD_IRQL: u32 = 0xE1;
    /// `ACTIVE_EX_WORKER_THREAD_TERMINATION`: a system worker thread tried to terminate.
    pub const ACTIVE_EX_WORKER_THREAD_TERMINATION: u32 = 0xE9;
    /// `RESOURCE_NOT_OWNED`: a thread released an `ERESOURCE` it does not own (P1 resource, P2
    /// thread).
    pub const RESOURCE_NOT_OWNED: u32 = 0xE3;
    /// `WDF_VIOLATION` (P1 = subcode, see [`super::wdf`]).
    pub const WDF_VIOLATION: u32 = 0x10D;
    /// `RESOURCE_OWNER_POINTER_INVALID`: an owner pointer for an `ERESOURCE` without its two low
    /// bits set (P1 resource, P2 owner table, P3 current thread, P4 owner pointer).
    pub const RESOURCE_OWNER_POINTER_INVALID: u32 = 0x132;
    /// `DPC_WATCHDOG_VIOLATION`.
    pub const DPC_WATCHDOG_VIOLATION: u32 = 0x133;
    /// `ERESOURCE_INVALID_RELEASE`: `ExReleaseResourceForThreadLite` with a target that does not
    /// own the resource (P1 resource, P2 current thread, P3 the bad target).
    pub const ERESOURCE_INVALID_RELEASE: u32 = 0x16E;
    /// `INVALID_PUSH_LOCK_FLAGS` (P1 flags, P2 lock).
    pub const INVALID_PUSH_LOCK_FLAGS: u32 = 0x152;
    /// `KERNEL_AUTO_BOOST_INVALID_LOCK_RELEASE`: an AutoBoost-tracked lock (push lock, fast or
    /// guarded mutex) released by a thread that does not own it (P1 thread, P2 lock).
    pub const KERNEL_AUTO_BOOST_INVALID_LOCK_RELEASE: u32 = 0x162;
    /// `THREAD_TERMINATE_HELD_MUTEX`.
    pub const THREAD_TERMINATE_HELD_MUTEX: u32 = 0x4000_008A;
    /// What `wdk-panic` on windows-drivers-rs main raises for a Rust panic ("RPNC").
    pub const RUST_PANIC: u32 = 0x5250_4E43;
}

/// `DRIVER_VERIFIER_DETECTED_VIOLATION` (0xC4) subcodes used by ntsim (ddi.md 12.2).
pub mod verifier {
    /// Freed pool contains an initialised, not deleted `ERESOURCE` (P2 resource, P3 pool type:
    /// ntsim does not record it and reports 0, P4 the pool block).
    pub const FREED_POOL_CONTAINS_ERESOURCE: u64 = 0x17;
    /// Freed pool contains an active timer (P2 timer, P3 pool type, P4 block address).
    pub const FREED_ACTIVE_TIMER: u64 = 0x15;
    /// `KeRaiseIrql` to a lower level or above `HIGH_LEVEL`.
    pub const RAISE_IRQL_INVALID: u64 = 0x30;
    /// `KeLowerIrql` to a higher level (P4 = 1: below `DISPATCH_LEVEL` inside a DPC).
    pub const LOWER_IRQL_INVALID: u64 = 0x31;
    /// `KeReleaseSpinLock` at an IRQL other than `DISPATCH_LEVEL`.
    pub const RELEASE_SPIN_LOCK_BAD_IRQL: u64 = 0x32;
    /// A resource acquired while normal kernel APCs are enabled (P2 IRQL, P3 APC-disable count,
    /// P4 resource).
    pub const RESOURCE_ACQUIRE_APCS_ENABLED: u64 = 0x37;
    /// A resource released while normal kernel APCs are enabled (P2 IRQL, P3 APC-disable count,
    /// P4 resource).
    pub const RESOURCE_RELEASE_APCS_ENABLED: u64 = 0x38;
    /// Fast mutex acquired above `APC_LEVEL` (P2 IRQL, P3 mutex).
    pub const FAST_MUTEX_ACQUIRE_IRQL: u64 = 0x33;
    /// Fast (or Windows 8+ guarded) mutex released at an IRQL other than `APC_LEVEL` (P2 IRQL,
    /// P3 `CombinedApcDisable`, P4 mutex).
    pub const FAST_MUTEX_RELEASE_IRQL: u64 = 0x34;
    /// "Unsafe" mutex acquire without APCs disabled (P2 IRQL, P3 `CombinedApcDisable`, P4 mutex).
    ///
    /// Fast mutex: IRQL not `APC_LEVEL` and no critical or guarded region; guarded mutex
    /// (emulator convention): IRQL not `APC_LEVEL` and no guarded region.
    pub const UNSAFE_MUTEX_ACQUIRE_APCS_ENABLED: u64 = 0x39;
    /// "Unsafe" mutex release without APCs disabled (as 0x39).
    pub const UNSAFE_MUTEX_RELEASE_APCS_ENABLED: u64 = 0x3A;
    /// `KeWaitXxx` at `DISPATCH_LEVEL` with a nonzero timeout.
    pub const WAIT_AT_DISPATCH: u64 = 0x3B;
    /// `ObReferenceObjectByHandle` with a bad handle.
    pub const BAD_HANDLE: u64 = 0x3C;
    /// Object reference count would go below zero.
    pub const REFERENCE_COUNT_ZERO: u64 = 0x3F;
    /// A NULL or misaligned `ERESOURCE` passed to a resource routine (P4 resource).
    pub const BAD_RESOURCE_ADDRESS: u64 = 0x3D;
    /// `KeLeaveCriticalRegion` while not in a critical region.
    pub const LEAVE_CRITICAL_REGION_NOT_ENTERED: u64 = 0x3E;
    /// `KeAcquireSpinLockAtDpcLevel` below `DISPATCH_LEVEL`.
    pub const ACQUIRE_AT_DPC_LEVEL_BELOW_DISPATCH: u64 = 0x40;
    /// `KeReleaseSpinLockFromDpcLevel` below `DISPATCH_LEVEL`.
    pub const RELEASE_FROM_DPC_LEVEL_BELOW_DISPATCH: u64 = 0x41;
    /// `KeAcquireSpinLock` above `DISPATCH_LEVEL`.
    pub const ACQUIRE_SPIN_LOCK_ABOVE_DISPATCH: u64 = 0x42;
    /// Driver unloaded without freeing its pool allocations (P3 count, P4 bytes).
    pub const POOL_LEAKED_AT_UNLOAD: u64 = 0x62;
    /// An `ERESOURCE` initialised again while live (P2 resource).
    pub const RESOURCE_REINITIALIZED: u64 = 0xD0;
    /// `ExDeleteResourceLite` of an `ERESOURCE` that is not initialised (P2 resource).
    pub const RESOURCE_DELETE_UNINITIALIZED: u64 = 0xD1;
    /// A synchronization object at an invalid (null, misaligned) or pageable address; ntsim
    /// also uses it for objects too small or not initialised as the DDI requires.
    pub const INVALID_SYNC_OBJECT_ADDRESS: u64 = 0xE1;
    /// A kernel API called at an incorrect IRQL (generic).
    /// `KeSetEvent` at IRQL above `DISPATCH_LEVEL` (P2 IRQL, P3 event).
    pub const SET_EVENT_ABOVE_DISPATCH: u64 = 0x80;
    /// A kernel API called at an incorrect IRQL (generic); also ntsim's code for a `Wait = TRUE`
    /// set/release call not followed by a wait (ddi.md 13.2 rule 3, emulator convention).
    pub const API_AT_WRONG_IRQL: u64 = 0xE5;
    /// A `Zw` API called not at `PASSIVE_LEVEL` or with special kernel APCs disabled.
    pub const ZW_NOT_PASSIVE: u64 = 0xE6;
    /// Push lock acquired while normal kernel APCs are enabled, or above `APC_LEVEL` (P2 IRQL,
    /// P3 `CombinedApcDisable`, P4 lock).
    pub const PUSH_LOCK_ACQUIRE_APCS_ENABLED: u64 = 0xEA;
    /// Push lock released while normal kernel APCs are enabled (P2 IRQL, P3
    /// `CombinedApcDisable`, P4 lock).
    pub const PUSH_LOCK_RELEASE_APCS_ENABLED: u64 = 0xEB;
    /// `ObReferenceObjectByHandle` with a NULL handle.
    pub const NULL_HANDLE: u64 = 0xF5;
    /// `KeEnterCriticalRegion` above `APC_LEVEL`.
    pub const ENTER_CRITICAL_REGION_IRQL: u64 = 0x11A;
    /// `KeLeaveCriticalRegion` above `APC_LEVEL`.
    pub const LEAVE_CRITICAL_REGION_IRQL: u64 = 0x11B;
    /// Wait at IRQL above `DISPATCH_LEVEL`.
    pub const WAIT_ABOVE_DISPATCH: u64 = 0x120;
    /// Wait at `DISPATCH_LEVEL` with no timeout.
    pub const WAIT_AT_DISPATCH_INFINITE: u64 = 0x121;
    /// Deadlock detection: self-deadlock, e.g. an exclusive acquire of a resource the thread owns
    /// only shared (P2 resource).
    pub const SELF_DEADLOCK: u64 = 0x1000;
    /// Deadlock detection: a cycle in the lock acquisition order (P2 the lock being acquired,
    /// P3 the held lock that closes the cycle).
    pub const LOCK_HIERARCHY_VIOLATION: u64 = 0x1001;
    /// Deadlock detection: a lock used without having been initialised (P2 lock).
    pub const UNINITIALIZED_LOCK: u64 = 0x1002;
    /// Deadlock detection: locks released in the wrong order.
    pub const RELEASED_OUT_OF_ORDER: u64 = 0x1003;
    /// Deadlock detection: released by a thread other than the acquirer.
    pub const RELEASED_BY_OTHER_THREAD: u64 = 0x1004;
    /// Deadlock detection: a lock initialised again while it is held (P2 lock).
    pub const LOCK_INITIALIZED_TWICE: u64 = 0x1005;
    /// Deadlock detection: released without having been acquired.
    pub const RELEASED_NOT_ACQUIRED: u64 = 0x1007;
    /// Deadlock detection: acquired with an API that does not match the lock's use.
    pub const ACQUIRE_API_MISMATCH: u64 = 0x1008;
    /// Deadlock detection: released with an API that does not match the acquire.
    pub const RELEASE_API_MISMATCH: u64 = 0x1009;
    /// Deadlock detection: a terminated thread still owns a lock.
    pub const THREAD_TERMINATED_OWNING_LOCK: u64 = 0x100A;
    /// Deadlock detection: a deleted lock is still owned (P2 lock, P3 owner thread).
    pub const DELETED_LOCK_STILL_OWNED: u64 = 0x100B;
    /// DDI compliance rule `IrqlDispatch`: routine requires exactly `DISPATCH_LEVEL`.
    pub const RULE_IRQL_DISPATCH: u64 = 0x0002_0003;
    /// DDI compliance rule `IrqlExApcLte3`: resource acquires, `ExConvertExclusiveToSharedLite`
    /// and `ExDeleteResourceLite` at <= `APC_LEVEL`.
    pub const RULE_IRQL_EX_APC_LTE3: u64 = 0x0002_0007;
    /// DDI compliance rule `IrqlKeApcLte1`: guarded-mutex routines (and
    /// `KeDelayExecutionThread`) at <= `APC_LEVEL`.
    pub const RULE_IRQL_KE_APC_LTE1: u64 = 0x0002_000F;
    /// DDI compliance rule `IrqlKeApcLte2`: critical/guarded region routines and the APC
    /// queries at <= `APC_LEVEL`.
    pub const RULE_IRQL_KE_APC_LTE2: u64 = 0x0002_0010;
    /// DDI compliance rule `GuardedRegions`: enter and leave balanced.
    pub const RULE_GUARDED_REGIONS: u64 = 0x0004_000E;
    /// DDI compliance rule `IrqlKeDispatchLte`: routine requires IRQL <= `DISPATCH_LEVEL`.
    pub const RULE_IRQL_KE_DISPATCH_LTE: u64 = 0x0002_0011;
    /// DDI compliance rule `IrqlKeSetEvent`: `KeSetEvent(Wait = TRUE)` above `APC_LEVEL`.
    pub const RULE_IRQL_KE_SET_EVENT: u64 = 0x0002_0016;
    /// DDI compliance rule `IrqlKeReleaseSpinLock`: `NewIrql` is not the saved value.
    pub const RULE_IRQL_KE_RELEASE_SPIN_LOCK: u64 = 0x0002_0015;
    /// DDI compliance rule `IrqlObPassive`.
    pub const RULE_IRQL_OB_PASSIVE: u64 = 0x0002_001B;
    /// DDI compliance rule `IrqlPsPassive`.
    pub const RULE_IRQL_PS_PASSIVE: u64 = 0x0002_001C;
}

/// `WDF_VIOLATION` (0x10D) subcodes used by ntsim (ddi.md 12.3).
pub mod wdf {
    /// `WDF_RECURSIVE_LOCK`: acquiring a lock that is already held (`WdfSpinLockAcquire`
    /// recursion; P2 the lock handle).
    pub const RECURSIVE_LOCK: u64 = 0x2;
    /// `WDF_REQUIRED_PARAMETER_IS_NULL`: a NULL passed where the method requires a value.
    pub const REQUIRED_PARAMETER_IS_NULL: u64 = 0x4;
    /// `WDF_INVALID_LOCK_OPERATION`: P3 = 0, the object has no synchronization lock; P3 = 1, a
    /// WDF spin lock (P2) released by a thread that did not acquire it.
    pub const INVALID_LOCK_OPERATION: u64 = 0xB;
    /// An event callback returned at a different IRQL than it was called at.
    pub const CALLBACK_IRQL_CHANGED: u64 = 0xE;
    /// An event callback entered a critical region and did not leave it.
    pub const CALLBACK_CRITICAL_REGION: u64 = 0xF;
    /// ntsim convention: a WDF handle that is not a live object of the expected type.
    pub const INVALID_HANDLE: u64 = 0x4;
    /// ntsim convention: a request completed twice.
    pub const REQUEST_ALREADY_COMPLETED: u64 = 0x7;
    /// `WDF_REQUEST_FATAL_ERROR`: a fatal error while processing a request; P2 says which
    /// (`WDF_REQUEST_FATAL_ERROR_CODES`, or an ntsim convention below).
    pub const REQUEST_FATAL_ERROR: u64 = 0x6;
    /// ntsim convention, P2 of [`REQUEST_FATAL_ERROR`]: a request completed while still marked
    /// cancelable.
    ///
    /// Outside KMDF's codes 1 to 5; P3 is the request, P4 its cancel routine, whose cancel was
    /// not delivered. KMDF's verifier traces this race ("Completing Cancelable
    /// WDFREQUEST") and breaks into the debugger; it has no bug-check code of its own.
    pub const COMPLETED_WHILE_CANCELABLE: u64 = 0x1000;
}

/// A stopped machine: the code and parameters `KeBugCheckEx` would show, plus where it
/// happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BugCheck {
    /// The bug check code, e.g. `0xC4`.
    pub code: u32,
    /// Parameters 1 to 4.
    pub params: [u64; 4],
    /// The DDI (or kernel path) that detected it.
    pub detected_in: &'static str,
    /// The emulated context it happened in, e.g. `system thread 3 on CPU 1`.
    pub context: String,
    /// A sentence naming the rule and the objects involved.
    pub message: String,
}

impl BugCheck {
    /// The symbolic name of the code, when ntsim knows it.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self.code {
            code::APC_INDEX_MISMATCH => "APC_INDEX_MISMATCH",
            code::MAXIMUM_WAIT_OBJECTS_EXCEEDED => "MAXIMUM_WAIT_OBJECTS_EXCEEDED",
            code::SPIN_LOCK_ALREADY_OWNED => "SPIN_LOCK_ALREADY_OWNED",
            code::KMODE_EXCEPTION_NOT_HANDLED => "KMODE_EXCEPTION_NOT_HANDLED",
            code::SHARED_RESOURCE_CONV_ERROR => "SHARED_RESOURCE_CONV_ERROR",
            code::KERNEL_APC_PENDING_DURING_EXIT => "KERNEL_APC_PENDING_DURING_EXIT",
            code::SYSTEM_SERVICE_EXCEPTION => "SYSTEM_SERVICE_EXCEPTION",
            code::IRQL_GT_ZERO_AT_SYSTEM_SERVICE => "IRQL_GT_ZERO_AT_SYSTEM_SERVICE",
            code::SYSTEM_THREAD_EXCEPTION_NOT_HANDLED => "SYSTEM_THREAD_EXCEPTION_NOT_HANDLED",
            code::ATTEMPTED_SWITCH_FROM_DPC => "ATTEMPTED_SWITCH_FROM_DPC",
            code::MUTEX_ALREADY_OWNED => "MUTEX_ALREADY_OWNED",
            code::BAD_POOL_CALLER => "BAD_POOL_CALLER",
            code::DRIVER_VERIFIER_DETECTED_VIOLATION => "DRIVER_VERIFIER_DETECTED_VIOLATION",
            code::TIMER_OR_DPC_INVALID => "TIMER_OR_DPC_INVALID",
            code::IRQL_UNEXPECTED_VALUE => "IRQL_UNEXPECTED_VALUE",
            code::DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS => {
                "DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS"
            }
            code::SYSTEM_EXIT_OWNED_MUTEX => "SYSTEM_EXIT_OWNED_MUTEX",
            code::WORKER_THREAD_RETURNED_AT_BAD_IRQL => "WORKER_THREAD_RETURNED_AT_BAD_IRQL",
            code::ACTIVE_EX_WORKER_THREAD_TERMINATION => "ACTIVE_EX_WORKER_THREAD_TERMINATION",
            code::RESOURCE_NOT_OWNED => "RESOURCE_NOT_OWNED",
            code::WDF_VIOLATION => "WDF_VIOLATION",
            code::RESOURCE_OWNER_POINTER_INVALID => "RESOURCE_OWNER_POINTER_INVALID",
            code::DPC_WATCHDOG_VIOLATION => "DPC_WATCHDOG_VIOLATION",
            code::ERESOURCE_INVALID_RELEASE => "ERESOURCE_INVALID_RELEASE",
            code::INVALID_PUSH_LOCK_FLAGS => "INVALID_PUSH_LOCK_FLAGS",
            code::KERNEL_AUTO_BOOST_INVALID_LOCK_RELEASE => {
                "KERNEL_AUTO_BOOST_INVALID_LOCK_RELEASE"
            }
            code::THREAD_TERMINATE_HELD_MUTEX => "THREAD_TERMINATE_HELD_MUTEX",
            code::RUST_PANIC => "RUST_PANIC (wdk-panic)",
            _ => "UNKNOWN_BUGCHECK",
        }
    }

    /// Parameter 1, which for 0xC4 and 0x10D is the subcode.
    #[must_use]
    pub const fn subcode(&self) -> u64 {
        self.params[0]
    }
}

impl fmt::Display for BugCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "BUGCHECK {:#X} {} ({:#X}, {:#X}, {:#X}, {:#X}) in {} [{}]: {}",
            self.code,
            self.name(),
            self.params[0],
            self.params[1],
            self.params[2],
            self.params[3],
            self.detected_in,
            self.context,
            self.message
        )
    }
}

impl std::error::Error for BugCheck {}
