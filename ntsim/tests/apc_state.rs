//! The per-thread APC state of ddi.md 0.3: critical and guarded regions, the two queries, and
//! the checks that catch unbalanced regions.

mod support;

use ntsim::{
    bugcheck::{code, verifier},
    MachineConfig,
};
use support::{
    all_apcs_disabled, apcs_disabled, enter_critical_region, enter_guarded_region, expect_bugcheck,
    leave_critical_region, leave_guarded_region, lower, machine, raise,
};

#[test]
fn queries_answer_as_ddi_md_0_3_defines() {
    let m = machine(2);
    let seen = m
        .run(|| {
            let mut seen = vec![(apcs_disabled(), all_apcs_disabled())];
            enter_critical_region();
            seen.push((apcs_disabled(), all_apcs_disabled()));
            enter_critical_region();
            leave_critical_region();
            seen.push((apcs_disabled(), all_apcs_disabled()));
            leave_critical_region();
            seen.push((apcs_disabled(), all_apcs_disabled()));
            enter_guarded_region();
            seen.push((apcs_disabled(), all_apcs_disabled()));
            leave_guarded_region();
            let old = raise(1);
            // At APC_LEVEL: the counter-based query says no, the "all" query says yes.
            seen.push((apcs_disabled(), all_apcs_disabled()));
            lower(old);
            seen
        })
        .expect("no bug check");
    assert_eq!(
        seen,
        vec![
            (false, false), // PASSIVE, no region
            (true, false),  // critical region: normal kernel APCs only
            (true, false),  // still inside the outer region after a nested pair
            (false, false), // left
            (true, true),   // guarded region: all APCs
            (false, true),  // APC_LEVEL, no region
        ]
    );
}

#[test]
fn leaving_a_critical_region_not_entered_is_0xc4_0x3e() {
    let m = machine(2);
    let b = expect_bugcheck(&m, leave_critical_region);
    assert_eq!(b.code, code::DRIVER_VERIFIER_DETECTED_VIOLATION);
    assert_eq!(
        b.params,
        [verifier::LEAVE_CRITICAL_REGION_NOT_ENTERED, 0, 0, 0]
    );
}

#[test]
fn leaving_a_guarded_region_not_entered_is_the_guarded_regions_rule() {
    let m = machine(2);
    let b = expect_bugcheck(&m, leave_guarded_region);
    assert_eq!(b.params, [verifier::RULE_GUARDED_REGIONS, 0, 0, 0]);
}

#[test]
fn critical_region_above_apc_level_is_0xc4_0x11a_and_0x11b() {
    let m = machine(2);
    let b = expect_bugcheck(&m, || {
        raise(2);
        enter_critical_region();
    });
    assert_eq!(b.params, [verifier::ENTER_CRITICAL_REGION_IRQL, 2, 0, 0]);
    let m = machine(2);
    let b = expect_bugcheck(&m, || {
        enter_critical_region();
        raise(2);
        leave_critical_region();
    });
    assert_eq!(b.params, [verifier::LEAVE_CRITICAL_REGION_IRQL, 2, 0, 0]);
}

#[test]
fn apc_queries_at_dispatch_level_break_rule_irql_ke_apc_lte2() {
    // Errata 1: callable at <= APC_LEVEL only.
    let m = machine(2);
    let b = expect_bugcheck(&m, || {
        raise(2);
        apcs_disabled()
    });
    assert_eq!(b.params, [verifier::RULE_IRQL_KE_APC_LTE2, 2, 0, 0]);
}

#[test]
fn a_thread_ending_inside_a_critical_region_is_0x20() {
    let m = machine(2);
    let b = expect_bugcheck(&m, enter_critical_region);
    assert_eq!(b.code, code::KERNEL_APC_PENDING_DURING_EXIT);
    // CombinedApcDisable = (SpecialApcDisable << 16) | (USHORT)KernelApcDisable = 0xFFFF.
    assert_eq!(b.params, [0, 0xFFFF, 0, 1]);
    let m = machine(2);
    let b = expect_bugcheck(&m, enter_guarded_region);
    assert_eq!(b.params, [0, 0xFFFF_0000, 0, 1]);
}

#[test]
fn deadlock_detection_reports_a_lock_order_cycle_with_both_sites() {
    let m = machine(4);
    let (a, b) = (support::SpinLock::new(), support::SpinLock::new());
    // One thread takes A then B; later another takes B then A. They never actually deadlock
    // here, but the two orders can: Driver Verifier reports the cycle at the second acquire.
    m.run(move || {
        let old = a.acquire();
        b.acquire_at_dpc();
        b.release_from_dpc();
        a.release(old);
    })
    .expect("first order is fine");
    let bug = expect_bugcheck(&m, move || {
        let old = b.acquire();
        a.acquire_at_dpc();
        a.release_from_dpc();
        b.release(old);
    });
    assert_eq!(bug.code, code::DRIVER_VERIFIER_DETECTED_VIOLATION);
    assert_eq!(
        bug.params,
        [verifier::LOCK_HIERARCHY_VIOLATION, a.addr(), b.addr(), 0]
    );
    assert!(
        bug.message.contains("KeAcquireSpinLockRaiseToDpc"),
        "{}",
        bug.message
    );
    assert!(
        bug.message.contains("KeAcquireSpinLockAtDpcLevel"),
        "{}",
        bug.message
    );
}

#[test]
fn deadlock_detection_can_be_switched_off() {
    let m = ntsim::Machine::new(MachineConfig {
        processors: 2,
        deadlock_detection: false,
        ..MachineConfig::default()
    });
    let (a, b) = (support::SpinLock::new(), support::SpinLock::new());
    for (first, second) in [(a, b), (b, a)] {
        m.run(move || {
            let old = first.acquire();
            second.acquire_at_dpc();
            second.release_from_dpc();
            first.release(old);
        })
        .expect("no detection, no bug check");
    }
}
