//! DPC and processor fidelity (ddi.md 10.2, 10.3, errata 6): targeted DPCs wait for their
//! processor, queue-once semantics, importance, flush, threaded DPCs, hard affinity, and the
//! DPC watchdog.

mod support;

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex,
    },
    time::Duration,
};

use ntsim::{
    bugcheck::{code, verifier},
    wdk_sys::{KDPC, PVOID, STATUS_SUCCESS, STATUS_UNSUCCESSFUL},
    Machine, MachineConfig,
};
use support::{
    expect_bugcheck, irql, lower, machine, raise,
    runtime::{
        current_cpu, remove_dpc, revert_affinity, set_affinity, set_importance, threaded_dpc,
        watchdog_information,
    },
    stall, Dpc,
};

/// Slots a DPC writes: [ran (1 + processor), IRQL + 1].
type Record = [AtomicU64; 2];

fn record() -> &'static Record {
    Box::leak(Box::new([AtomicU64::new(0), AtomicU64::new(0)]))
}

unsafe extern "C" fn note_cpu(_: *mut KDPC, context: PVOID, _: PVOID, _: PVOID) {
    // SAFETY: a leaked Record.
    let r = unsafe { &*(context as *const Record) };
    r[1].store(u64::from(irql()) + 1, Ordering::Release);
    r[0].store(u64::from(current_cpu()) + 1, Ordering::Release);
}

#[test]
fn a_dpc_never_runs_while_its_processor_is_held_at_dispatch_level() {
    let m = machine(4);
    m.run(|| {
        let previous = set_affinity(0, 1 << 2);
        assert_eq!(
            previous.Mask, 0b1111,
            "the previous (user) affinity: every processor"
        );
        assert_eq!(current_cpu(), 2, "hard affinity moves the thread to CPU 2");
        let old = raise(2);
        assert_eq!(current_cpu(), 2, "raising took CPU 2, the only one allowed");
        let r = record();
        let dpc = Dpc::new(note_cpu, std::ptr::from_ref(r) as usize);
        assert_eq!(dpc.target(2), 0);
        assert!(dpc.insert());
        assert!(!dpc.insert(), "already queued: FALSE, nothing done");
        stall(100_000);
        assert_eq!(
            r[0].load(Ordering::Acquire),
            0,
            "CPU 2 is held at DISPATCH_LEVEL: its DPC has not run"
        );
        lower(old);
        support::flush_dpcs();
        assert_eq!(
            r[0].load(Ordering::Acquire),
            3,
            "ran on CPU 2 once it was free"
        );
        assert_eq!(r[1].load(Ordering::Acquire), 3, "at DISPATCH_LEVEL");
        assert!(dpc.insert(), "dequeued once it ran: it can be queued again");
        support::flush_dpcs();
        revert_affinity(previous);
    })
    .expect("no bug check");
}

static ORDER: Mutex<Vec<u64>> = Mutex::new(Vec::new());

unsafe extern "C" fn note_order(_: *mut KDPC, context: PVOID, _: PVOID, _: PVOID) {
    ORDER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(context as u64);
}

#[test]
fn high_importance_dpcs_go_to_the_head_of_the_queue() {
    let m = machine(2);
    let order = m
        .run(|| {
            let previous = set_affinity(0, 1 << 1);
            let old = raise(2);
            let ids = [(1, 1), (2, 0), (3, 2), (4, 3), (5, 2)];
            let dpcs: Vec<Dpc> = ids
                .iter()
                .map(|&(id, importance)| {
                    let d = Dpc::new(note_order, id);
                    set_importance(d, importance);
                    assert_eq!(d.target(1), 0);
                    d
                })
                .collect();
            for d in &dpcs {
                assert!(d.insert());
            }
            lower(old);
            support::flush_dpcs();
            revert_affinity(previous);
            ORDER
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone()
        })
        .expect("no bug check");
    // Medium (1), low (0) and medium-high (3) are queued at the tail in order; each high (2)
    // at the head.
    assert_eq!(order, vec![5, 3, 1, 2, 4]);
}

#[test]
fn a_removed_dpc_does_not_run_and_flush_waits_for_queued_ones() {
    let m = machine(2);
    m.run(|| {
        let previous = set_affinity(0, 1);
        let old = raise(2);
        let kept = record();
        let removed = record();
        let a = Dpc::new(note_cpu, std::ptr::from_ref(kept) as usize);
        let b = Dpc::new(note_cpu, std::ptr::from_ref(removed) as usize);
        assert_eq!(a.target(0), 0);
        assert_eq!(b.target(0), 0);
        assert!(a.insert());
        assert!(b.insert());
        assert!(remove_dpc(b), "removed before it ran");
        assert!(!remove_dpc(b), "not queued any more");
        lower(old);
        support::flush_dpcs();
        assert_eq!(
            kept[0].load(Ordering::Acquire),
            1,
            "flush returned after it ran"
        );
        assert_eq!(removed[0].load(Ordering::Acquire), 0);
        revert_affinity(previous);
    })
    .expect("no bug check");
}

#[test]
fn threaded_dpcs_run_at_dispatch_level() {
    let m = machine(2);
    m.run(|| {
        let r = record();
        let d = threaded_dpc(note_cpu, std::ptr::from_ref(r) as usize);
        assert!(d.insert());
        support::flush_dpcs();
        assert_eq!(
            r[1].load(Ordering::Acquire),
            3,
            "DISPATCH_LEVEL (threaded DPCs disabled)"
        );
    })
    .expect("no bug check");
}

#[test]
fn invalid_affinity_leaves_it_unchanged_and_zeroes_the_previous() {
    let m = machine(4);
    m.run(|| {
        let previous = set_affinity(0, 1 << 3);
        assert_eq!(current_cpu(), 3);
        for (group, mask) in [(1, 1), (0, 0), (0, 1 << 4), (0, 0b1_0001)] {
            let p = set_affinity(group, mask);
            assert_eq!(
                (p.Mask, p.Group, p.Reserved),
                (0, 0, [0; 3]),
                "group {group} mask {mask:#x}"
            );
            assert_eq!(current_cpu(), 3, "affinity unchanged");
        }
        let old = raise(2);
        assert_eq!(current_cpu(), 3);
        lower(old);
        let inner = set_affinity(0, 0b0011);
        assert_eq!(inner.Mask, 1 << 3, "the previous system affinity");
        assert!(current_cpu() < 2);
        revert_affinity(inner);
        assert_eq!(current_cpu(), 3, "back to CPU 3 only");
        revert_affinity(previous);
        // User affinity again: raising may take any processor.
        let old = raise(2);
        assert!(current_cpu() < 4);
        lower(old);
    })
    .expect("no bug check");
}

#[test]
fn a_thread_with_hard_affinity_waits_for_its_processor() {
    unsafe extern "C" fn hold_cpu0(context: PVOID) {
        // SAFETY: a leaked Record: [holding, release].
        let r = unsafe { &*(context as *const Record) };
        let previous = set_affinity(0, 1);
        let old = raise(2);
        r[0].store(1, Ordering::Release);
        while r[1].load(Ordering::Acquire) == 0 {
            stall(1_000);
        }
        lower(old);
        revert_affinity(previous);
    }
    let m = machine(2);
    m.run(|| {
        let r = record();
        let holder = support::spawn(hold_cpu0, std::ptr::from_ref(r) as usize);
        support::runtime::wait_for(&r[0]);
        // CPU 1 is free, but this thread may only run on CPU 0, which the holder has.
        let previous = set_affinity(0, 1);
        let released = std::thread::spawn({
            let r: &'static Record = r;
            move || {
                std::thread::sleep(Duration::from_millis(50));
                r[1].store(1, Ordering::Release);
            }
        });
        let old = raise(2);
        assert_eq!(current_cpu(), 0);
        assert_eq!(
            r[1].load(Ordering::Acquire),
            1,
            "CPU 0 was taken only after the holder left"
        );
        lower(old);
        revert_affinity(previous);
        released.join().expect("host thread");
        support::join(holder);
    })
    .expect("no bug check");
}

#[test]
fn set_system_group_affinity_at_dispatch_level_is_0xc4_0xe5() {
    let m = machine(2);
    let b = expect_bugcheck(&m, || {
        raise(2);
        set_affinity(0, 1)
    });
    assert_eq!(b.code, code::DRIVER_VERIFIER_DETECTED_VIOLATION);
    assert_eq!(b.params[0], verifier::API_AT_WRONG_IRQL);
    assert_eq!(b.params[1], 2);
    assert_ne!(b.params[2], 0);
    assert_eq!(b.params[3], 1);
}

fn watchdog_machine(single: Duration, cumulative: Duration) -> Machine {
    Machine::new(MachineConfig {
        processors: 2,
        spin_budget: Duration::from_secs(30),
        hang_budget: Duration::from_secs(60),
        dpc_time_limit: single,
        dpc_watchdog_limit: cumulative,
        ..MachineConfig::default()
    })
}

unsafe extern "C" fn query_in_dpc(_: *mut KDPC, context: PVOID, _: PVOID, _: PVOID) {
    // SAFETY: a leaked [AtomicU64; 6].
    let out = unsafe { &*(context as *const [AtomicU64; 6]) };
    let (status, info) = watchdog_information();
    let values = [
        u64::from(status.cast_unsigned()),
        u64::from(info.DpcTimeLimit),
        u64::from(info.DpcTimeCount),
        u64::from(info.DpcWatchdogLimit),
        u64::from(info.DpcWatchdogCount),
        1,
    ];
    for (slot, v) in out.iter().zip(values) {
        slot.store(v, Ordering::Release);
    }
}

#[test]
fn watchdog_information_reports_the_configured_limits_in_clock_ticks() {
    let m = machine(2);
    m.run(|| {
        let out: &'static [AtomicU64; 6] = Box::leak(Box::default());
        let d = Dpc::new(query_in_dpc, std::ptr::from_ref(out) as usize);
        assert!(d.insert());
        support::flush_dpcs();
        let v: Vec<u64> = out.iter().map(|a| a.load(Ordering::Acquire)).collect();
        assert_eq!(
            v[0],
            u64::from(STATUS_SUCCESS.cast_unsigned()),
            "inside a DPC"
        );
        assert_eq!(
            v[1], 0x500,
            "20 s single-DPC limit = 0x500 ticks, as Windows reports"
        );
        assert!(
            v[2] > 0 && v[2] <= 0x500,
            "time left for this DPC: {}",
            v[2]
        );
        assert_eq!(v[3], 0x1E00, "120 s cumulative limit = 0x1E00 ticks");
        assert!(v[4] > 0 && v[4] <= 0x1E00);
        let old = raise(2);
        let (status, info) = watchdog_information();
        lower(old);
        assert_eq!(status, STATUS_UNSUCCESSFUL, "not inside a DPC");
        assert_eq!(info.DpcTimeCount, 0);
        assert_eq!((info.DpcTimeLimit, info.DpcWatchdogLimit), (0x500, 0x1E00));
    })
    .expect("no bug check");
    let disabled = watchdog_machine(Duration::ZERO, Duration::ZERO);
    let info = disabled
        .run(|| {
            let old = raise(2);
            let (_, info) = watchdog_information();
            lower(old);
            info
        })
        .expect("no bug check");
    assert_eq!(
        (
            info.DpcTimeLimit,
            info.DpcTimeCount,
            info.DpcWatchdogLimit,
            info.DpcWatchdogCount
        ),
        (0, 0, 0, 0),
        "0 = disabled"
    );
}

#[test]
fn watchdog_information_below_dispatch_level_is_0xc4_0xe5() {
    let m = machine(2);
    let b = expect_bugcheck(&m, watchdog_information);
    assert_eq!(b.params, [verifier::API_AT_WRONG_IRQL, 0, 0, 0]);
}

unsafe extern "C" fn spin_forever(_: *mut KDPC, _: PVOID, _: PVOID, _: PVOID) {
    loop {
        stall(1_000);
    }
}

#[test]
fn a_dpc_over_the_single_dpc_limit_is_0x133_p1_0() {
    let m = watchdog_machine(Duration::from_millis(100), Duration::ZERO);
    let b = expect_bugcheck(&m, || {
        let d = Dpc::new(spin_forever, 0);
        assert!(d.insert());
        support::flush_dpcs();
    });
    assert_eq!(b.code, code::DPC_WATCHDOG_VIOLATION);
    assert_eq!(b.params[0], 0, "a single DPC");
    assert_eq!(b.params[2], 6, "the limit: 100 ms = 6 clock ticks");
    assert!(
        b.params[1] >= b.params[2],
        "its time count reached the limit"
    );
    assert_eq!(b.params[3], 0);
    assert!(b.context.contains("DPC runner"), "{}", b.context);
}

unsafe extern "C" fn requeue_self(dpc: *mut KDPC, _: PVOID, _: PVOID, _: PVOID) {
    stall(20_000);
    // SAFETY: the DPC being run; it was dequeued before its routine started.
    let _ = unsafe {
        ntsim::wdk_sys::ntddk::KeInsertQueueDpc(dpc, std::ptr::null_mut(), std::ptr::null_mut())
    };
}

#[test]
fn dpcs_back_to_back_over_the_cumulative_limit_are_0x133_p1_1() {
    // Each DPC stays under its single limit (1 s); together they keep the processor at
    // DISPATCH_LEVEL past the cumulative limit (100 ms).
    let m = watchdog_machine(Duration::from_secs(1), Duration::from_millis(100));
    let b = expect_bugcheck(&m, || {
        let d = Dpc::new(requeue_self, 0);
        assert!(d.insert());
        // Each DDI call halts this thread once the machine has stopped.
        for _ in 0..5_000 {
            std::thread::sleep(Duration::from_millis(1));
            irql();
        }
    });
    assert_eq!(b.code, code::DPC_WATCHDOG_VIOLATION);
    assert_eq!(b.params, [1, 6, 0, 0], "P2: the watchdog period in ticks");
}

#[test]
fn a_thread_staying_at_dispatch_level_is_0x133_p1_1() {
    let m = watchdog_machine(Duration::ZERO, Duration::from_millis(100));
    let b = expect_bugcheck(&m, || {
        raise(2);
        loop {
            stall(1_000);
        }
    });
    assert_eq!(b.params, [1, 6, 0, 0]);
    assert!(b.context.contains("Machine::run thread"), "{}", b.context);
}
