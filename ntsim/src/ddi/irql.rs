//! IRQL: `KeGetCurrentIrql`, `KfRaiseIrql` (what `KeRaiseIrql` expands to), `KeLowerIrql`
//! (ddi.md 10.1).

use wdk_sys::KIRQL;

use crate::{
    bugcheck::{code::DRIVER_VERIFIER_DETECTED_VIOLATION, verifier},
    context::{enter, irql},
};

export! {
    /// Returns the current IRQL. Any IRQL.
    fn KeGetCurrentIrql() -> KIRQL {
        enter("KeGetCurrentIrql").irql.get()
    }
}

export! {
    /// Raises IRQL to `NewIrql` and returns the previous IRQL. `NewIrql` below the current IRQL
    /// or above `HIGH_LEVEL` is 0xC4/0x30.
    fn KfRaiseIrql(NewIrql: KIRQL) -> KIRQL {
        let e = enter("KfRaiseIrql");
        let old = e.irql.get();
        if NewIrql < old || NewIrql > irql::HIGH {
            e.bugcheck(
                DRIVER_VERIFIER_DETECTED_VIOLATION,
                [verifier::RAISE_IRQL_INVALID, u64::from(old), u64::from(NewIrql), 0],
                format!("KeRaiseIrql from {old} to {NewIrql}: not a raise"),
            );
        }
        e.set_irql(NewIrql);
        old
    }
}

export! {
    /// Lowers IRQL to `NewIrql`. Lowering to a higher IRQL (or above `HIGH_LEVEL`) is
    /// 0xC4/0x31; lowering below `DISPATCH_LEVEL` inside a DPC routine is 0xC4/0x31 with P4 = 1.
    fn KeLowerIrql(NewIrql: KIRQL) {
        let e = enter("KeLowerIrql");
        let old = e.irql.get();
        if NewIrql > old || NewIrql > irql::HIGH {
            e.bugcheck(
                DRIVER_VERIFIER_DETECTED_VIOLATION,
                [verifier::LOWER_IRQL_INVALID, u64::from(old), u64::from(NewIrql), 0],
                format!("KeLowerIrql from {old} to {NewIrql}: not a lower"),
            );
        }
        if e.in_dpc.get() && NewIrql < irql::DISPATCH {
            e.bugcheck(
                DRIVER_VERIFIER_DETECTED_VIOLATION,
                [verifier::LOWER_IRQL_INVALID, u64::from(old), u64::from(NewIrql), 1],
                format!("KeLowerIrql to {NewIrql} inside a DPC routine"),
            );
        }
        e.set_irql(NewIrql);
    }
}
