//! The APC state (ddi.md 0.3, 5, 7.3): critical regions, guarded regions, and the two queries.
//!
//! Each context keeps `KernelApcDisable` (critical regions, owned dispatcher mutexes) and
//! `SpecialApcDisable` (guarded regions); both are zero or negative in correct code. The
//! end-of-context checks (thread exit 0x20, DPC return 0xC7, system-call return 0x1, KMDF
//! callback 0x10D/0xF) compare them.

use wdk_sys::BOOLEAN;

use crate::{
    bugcheck::{code::DRIVER_VERIFIER_DETECTED_VIOLATION, verifier},
    context::{enter, irql, Entry},
};

/// Bug checks with `subcode` when the caller is above `APC_LEVEL`.
fn require_apc_or_below(e: &Entry, subcode: u64) {
    let level = e.irql.get();
    if level > irql::APC {
        e.bugcheck(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [subcode, u64::from(level), 0, 0],
            format!("{} at IRQL {level}: requires <= APC_LEVEL", e.ddi),
        );
    }
}

export! {
    /// Enters a critical region: normal kernel APCs are disabled until the matching leave.
    /// Nestable. IRQL <= `APC_LEVEL` (above: 0xC4/0x11A).
    fn KeEnterCriticalRegion() {
        let e = enter("KeEnterCriticalRegion");
        require_apc_or_below(&e, verifier::ENTER_CRITICAL_REGION_IRQL);
        e.kernel_apc_disable.set(e.kernel_apc_disable.get() - 1);
    }
}

export! {
    /// Leaves a critical region. Leaving one that was not entered is 0xC4/0x3E. IRQL <=
    /// `APC_LEVEL` (above: 0xC4/0x11B).
    fn KeLeaveCriticalRegion() {
        let e = enter("KeLeaveCriticalRegion");
        require_apc_or_below(&e, verifier::LEAVE_CRITICAL_REGION_IRQL);
        let count = e.kernel_apc_disable.get();
        if count >= 0 {
            e.bugcheck(
                DRIVER_VERIFIER_DETECTED_VIOLATION,
                [verifier::LEAVE_CRITICAL_REGION_NOT_ENTERED, 0, 0, 0],
                "KeLeaveCriticalRegion without a matching KeEnterCriticalRegion",
            );
        }
        e.kernel_apc_disable.set(count + 1);
    }
}

export! {
    /// Enters a guarded region: all APCs are disabled until the matching leave. Nestable. IRQL
    /// <= `APC_LEVEL` (DDI rule `IrqlKeApcLte2`, 0xC4/0x20010).
    fn KeEnterGuardedRegion() {
        let e = enter("KeEnterGuardedRegion");
        require_apc_or_below(&e, verifier::RULE_IRQL_KE_APC_LTE2);
        e.special_apc_disable.set(e.special_apc_disable.get() - 1);
    }
}

export! {
    /// Leaves a guarded region. Leaving one that was not entered violates DDI rule
    /// `GuardedRegions` (0xC4/0x4000E). IRQL <= `APC_LEVEL` (0xC4/0x20010).
    fn KeLeaveGuardedRegion() {
        let e = enter("KeLeaveGuardedRegion");
        require_apc_or_below(&e, verifier::RULE_IRQL_KE_APC_LTE2);
        let count = e.special_apc_disable.get();
        if count >= 0 {
            e.bugcheck(
                DRIVER_VERIFIER_DETECTED_VIOLATION,
                [verifier::RULE_GUARDED_REGIONS, 0, 0, 0],
                "KeLeaveGuardedRegion without a matching KeEnterGuardedRegion",
            );
        }
        e.special_apc_disable.set(count + 1);
    }
}

export! {
    /// TRUE iff the caller is in a critical or a guarded region (counter-based; IRQL is not
    /// considered). IRQL <= `APC_LEVEL` (errata 1: DDI rule `IrqlKeApcLte2`, 0xC4/0x20010).
    fn KeAreApcsDisabled() -> BOOLEAN {
        let e = enter("KeAreApcsDisabled");
        require_apc_or_below(&e, verifier::RULE_IRQL_KE_APC_LTE2);
        u8::from(e.kernel_apc_disable.get() != 0 || e.special_apc_disable.get() != 0)
    }
}

export! {
    /// TRUE iff the caller is in a guarded region or at IRQL >= `APC_LEVEL`. IRQL <= `APC_LEVEL`
    /// (errata 1: 0xC4/0x20010).
    fn KeAreAllApcsDisabled() -> BOOLEAN {
        let e = enter("KeAreAllApcsDisabled");
        require_apc_or_below(&e, verifier::RULE_IRQL_KE_APC_LTE2);
        u8::from(e.special_apc_disable.get() != 0 || e.irql.get() >= irql::APC)
    }
}
