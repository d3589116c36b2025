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
    /// `KERNEL_APC_PENDING_DURING_EXIT`.
    pub const KERNEL_APC_PENDING_DURING_EXIT: u32 = 0x20;
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
    /// `RESOURCE_NOT_OWNED`.
    pub const RESOURCE_NOT_OWNED: u32 = 0xE3;
    /// `WDF_VIOLATION` (P1 = subcode, see [`super::wdf`]).
    pub const WDF_VIOLATION: u32 = 0x10D;
    /// `DPC_WATCHDOG_VIOLATION`.
    pub const DPC_WATCHDOG_VIOLATION: u32 = 0x133;
    /// `THREAD_TERMINATE_HELD_MUTEX`.
    pub const THREAD_TERMINATE_HELD_MUTEX: u32 = 0x4000_008A;
    /// What `wdk-panic` on windows-drivers-rs main raises for a Rust panic ("RPNC").
    pub const RUST_PANIC: u32 = 0x5250_4E43;
}

/// `DRIVER_VERIFIER_DETECTED_VIOLATION` (0xC4) subcodes used by ntsim (ddi.md 12.2).
pub mod verifier {
    /// `KeRaiseIrql` to a lower level or above `HIGH_LEVEL`.
    pub const RAISE_IRQL_INVALID: u64 = 0x30;
    /// `KeLowerIrql` to a higher level (P4 = 1: below `DISPATCH_LEVEL` inside a DPC).
    pub const LOWER_IRQL_INVALID: u64 = 0x31;
    /// `KeReleaseSpinLock` at an IRQL other than `DISPATCH_LEVEL`.
    pub const RELEASE_SPIN_LOCK_BAD_IRQL: u64 = 0x32;
    /// `KeWaitXxx` at `DISPATCH_LEVEL` with a nonzero timeout.
    pub const WAIT_AT_DISPATCH: u64 = 0x3B;
    /// `ObReferenceObjectByHandle` with a bad handle.
    pub const BAD_HANDLE: u64 = 0x3C;
    /// Object reference count would go below zero.
    pub const REFERENCE_COUNT_ZERO: u64 = 0x3F;
    /// `KeAcquireSpinLockAtDpcLevel` below `DISPATCH_LEVEL`.
    pub const ACQUIRE_AT_DPC_LEVEL_BELOW_DISPATCH: u64 = 0x40;
    /// `KeReleaseSpinLockFromDpcLevel` below `DISPATCH_LEVEL`.
    pub const RELEASE_FROM_DPC_LEVEL_BELOW_DISPATCH: u64 = 0x41;
    /// `KeAcquireSpinLock` above `DISPATCH_LEVEL`.
    pub const ACQUIRE_SPIN_LOCK_ABOVE_DISPATCH: u64 = 0x42;
    /// Driver unloaded without freeing its pool allocations (P3 count, P4 bytes).
    pub const POOL_LEAKED_AT_UNLOAD: u64 = 0x62;
    /// A kernel API called at an incorrect IRQL (generic).
    pub const API_AT_WRONG_IRQL: u64 = 0xE5;
    /// A `Zw` API called not at `PASSIVE_LEVEL` or with special kernel APCs disabled.
    pub const ZW_NOT_PASSIVE: u64 = 0xE6;
    /// `ObReferenceObjectByHandle` with a NULL handle.
    pub const NULL_HANDLE: u64 = 0xF5;
    /// Wait at IRQL above `DISPATCH_LEVEL`.
    pub const WAIT_ABOVE_DISPATCH: u64 = 0x120;
    /// Wait at `DISPATCH_LEVEL` with no timeout.
    pub const WAIT_AT_DISPATCH_INFINITE: u64 = 0x121;
    /// Deadlock detection: locks released in the wrong order.
    pub const RELEASED_OUT_OF_ORDER: u64 = 0x1003;
    /// Deadlock detection: released by a thread other than the acquirer.
    pub const RELEASED_BY_OTHER_THREAD: u64 = 0x1004;
    /// Deadlock detection: released without having been acquired.
    pub const RELEASED_NOT_ACQUIRED: u64 = 0x1007;
    /// Deadlock detection: acquired with an API that does not match the lock's use.
    pub const ACQUIRE_API_MISMATCH: u64 = 0x1008;
    /// Deadlock detection: released with an API that does not match the acquire.
    pub const RELEASE_API_MISMATCH: u64 = 0x1009;
    /// Deadlock detection: a terminated thread still owns a lock.
    pub const THREAD_TERMINATED_OWNING_LOCK: u64 = 0x100A;
    /// DDI compliance rule `IrqlDispatch`: routine requires exactly `DISPATCH_LEVEL`.
    pub const RULE_IRQL_DISPATCH: u64 = 0x0002_0003;
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
            code::KERNEL_APC_PENDING_DURING_EXIT => "KERNEL_APC_PENDING_DURING_EXIT",
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
            code::RESOURCE_NOT_OWNED => "RESOURCE_NOT_OWNED",
            code::WDF_VIOLATION => "WDF_VIOLATION",
            code::DPC_WATCHDOG_VIOLATION => "DPC_WATCHDOG_VIOLATION",
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
