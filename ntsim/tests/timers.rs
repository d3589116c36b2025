//! Timers as ddi.md 8.5 describes them: due-time forms, notification and synchronization
//! timers, `KeSetTimer`/`KeCancelTimer` return values, DPCs queued at expiry, and periodic
//! timers firing at their period (counted over a window, with a wide tolerance: no timing
//! assertions).

mod support;

use std::time::{Duration, Instant};

use ntsim::wdk_sys::{ntddk, KDPC, PROCESSOR_NUMBER, PVOID};
use support::{
    dispatcher::{
        absolute_in_ms, relative_ms, sleep_ms, spawn_fn, wait_multiple, Counter, Event, Timer,
        Waitable, TIMEOUT, WAIT_0,
    },
    join, lower, machine, raise, Dpc,
};

/// 100-ns units per millisecond.
const MS: i64 = 10_000;

#[test]
fn a_one_shot_notification_timer_signals_at_its_due_time_and_stays_signaled() {
    let m = machine(2);
    m.run(|| {
        let timer = Timer::new();
        assert!(!timer.state(), "initialised not signaled");
        let began = Instant::now();
        assert!(!timer.set(-20 * MS, None), "was not armed");
        assert!(!timer.state());
        assert_eq!(timer.wait(None), WAIT_0);
        assert!(began.elapsed() >= Duration::from_millis(20), "never early");
        assert!(timer.state(), "a notification timer stays signaled");
        assert_eq!(timer.wait(Some(0)), WAIT_0);
        assert!(
            !timer.cancel(),
            "a one-shot timer left the queue when it fired"
        );
        // Setting it again makes it not signaled until the new due time.
        assert!(!timer.set(-1000 * MS, None));
        assert!(!timer.state());
        assert!(timer.cancel(), "armed: cancel returns TRUE");
        // Due times at the ends of the encoding never come, but the timer is armed.
        assert!(!timer.set(i64::MIN, None));
        assert!(timer.set(i64::MAX, None));
        assert!(timer.cancel());
    })
    .unwrap();
}

#[test]
fn set_on_an_armed_timer_returns_true_and_replaces_the_due_time() {
    let m = machine(2);
    m.run(|| {
        let timer = Timer::new();
        assert!(!timer.set(-60_000 * MS, None));
        assert!(timer.set(-10 * MS, None), "it was armed");
        assert_eq!(
            timer.wait(Some(relative_ms(10_000))),
            WAIT_0,
            "the new due time applies"
        );
    })
    .unwrap();
}

#[test]
fn a_cancelled_timer_never_fires() {
    let m = machine(2);
    m.run(|| {
        let timer = Timer::new();
        let fired = Counter::new();
        let dpc = Dpc::new(count_dpc, fired.context());
        assert!(!timer.set(-30 * MS, Some(dpc)));
        assert!(timer.cancel());
        assert!(!timer.cancel(), "not armed any more");
        assert_eq!(timer.wait(Some(relative_ms(80))), TIMEOUT);
        assert!(!timer.state());
        support::flush_dpcs();
        assert_eq!(fired.get(), 0);
    })
    .unwrap();
}

#[test]
fn due_time_forms_relative_absolute_and_past() {
    let m = machine(2);
    m.run(|| {
        let timer = Timer::new();
        let began = Instant::now();
        timer.set(absolute_in_ms(30), None);
        assert_eq!(timer.wait(None), WAIT_0);
        assert!(
            began.elapsed() >= Duration::from_millis(29),
            "absolute: never early"
        );
        // An absolute time in the past, and 0 (an absolute time too), expire at once.
        timer.set(absolute_in_ms(-5000), None);
        assert_eq!(timer.wait(Some(relative_ms(10_000))), WAIT_0);
        timer.set(0, None);
        assert_eq!(timer.wait(Some(relative_ms(10_000))), WAIT_0);
    })
    .unwrap();
}

#[test]
fn a_synchronization_timer_releases_one_waiter_and_resets() {
    let m = machine(4);
    m.run(|| {
        let timer = Timer::synchronization();
        let passed = Counter::new();
        let ready = Counter::new();
        let handles: Vec<usize> = (0..2)
            .map(|_| {
                spawn_fn(move || {
                    ready.bump();
                    assert_eq!(timer.wait(None), WAIT_0);
                    passed.bump();
                }) as usize
            })
            .collect();
        assert!(ready.wait_for(2));
        sleep_ms(30);
        timer.set(-10 * MS, None);
        assert!(passed.wait_for(1));
        sleep_ms(30);
        assert_eq!(passed.get(), 1, "one waiter per expiry");
        assert!(!timer.state(), "reset by the satisfied wait");
        timer.set(-10 * MS, None);
        for h in handles {
            join(h as _);
        }
        assert_eq!(passed.get(), 2);
    })
    .unwrap();
}

#[test]
fn a_timer_can_be_one_of_several_objects_of_a_wait() {
    let m = machine(2);
    m.run(|| {
        let event = Event::notification(false);
        let timer = Timer::new();
        timer.set(-10 * MS, None);
        assert_eq!(
            wait_multiple(&[event.addr(), timer.addr()], false, None, false),
            WAIT_0 + 1
        );
        event.set();
        assert_eq!(
            wait_multiple(&[event.addr(), timer.addr()], true, Some(0), false),
            WAIT_0
        );
    })
    .unwrap();
}

unsafe extern "C" fn count_dpc(_: *mut KDPC, context: PVOID, _: PVOID, _: PVOID) {
    Counter::from_context(context as usize).bump();
}

/// What a timer DPC saw: IRQL and processor, packed.
unsafe extern "C" fn record_dpc(_: *mut KDPC, context: PVOID, _: PVOID, _: PVOID) {
    let irql = usize::from(support::irql());
    let mut number = PROCESSOR_NUMBER::default();
    // SAFETY: `number` is writable.
    let cpu = unsafe { ntddk::KeGetCurrentProcessorNumberEx(&raw mut number) } as usize;
    Counter::from_context(context as usize).store((irql << 8) | cpu | 0x1_0000);
}

#[test]
fn the_dpc_of_a_timer_runs_at_dispatch_on_the_processor_that_set_it() {
    let m = machine(4);
    m.run(|| {
        let seen = Counter::new();
        let dpc = Dpc::new(record_dpc, seen.context());
        let timer = Timer::new();
        // At DISPATCH_LEVEL the thread owns a processor: that is where the timer is set.
        let old = raise(2);
        let mut number = PROCESSOR_NUMBER::default();
        // SAFETY: `number` is writable.
        let cpu = unsafe { ntddk::KeGetCurrentProcessorNumberEx(&raw mut number) } as usize;
        assert!(!timer.set(-10 * MS, Some(dpc)));
        lower(old);
        assert!(seen.wait_for(1));
        assert_eq!(seen.get(), 0x1_0000 | (2 << 8) | cpu);
        assert!(timer.state(), "signaled as well");

        // A DPC targeted elsewhere runs there.
        let seen = Counter::new();
        let dpc = Dpc::new(record_dpc, seen.context());
        let target = (cpu + 1) % 4;
        assert_eq!(dpc.target(u8::try_from(target).unwrap()), 0);
        timer.set(-5 * MS, Some(dpc));
        assert!(seen.wait_for(1));
        assert_eq!(seen.get(), 0x1_0000 | (2 << 8) | target);
    })
    .unwrap();
}

#[test]
fn a_periodic_timer_fires_with_its_dpc_at_its_period_until_cancelled() {
    const PERIOD_MS: i32 = 10;
    const WINDOW_MS: u64 = 600;
    let m = machine(4);
    let (fired, signaled, armed_ms) = m
        .run(|| {
            let fired = Counter::new();
            let dpc = Dpc::new(count_dpc, fired.context());
            let timer = Timer::synchronization();
            let set_at = Instant::now();
            assert!(!timer.set_periodic(-i64::from(PERIOD_MS) * MS, PERIOD_MS, Some(dpc)));
            // Count the expiries a synchronization timer signals, by waiting on it.
            let signaled = Counter::new();
            while set_at.elapsed() < Duration::from_millis(WINDOW_MS) {
                if timer.wait(Some(relative_ms(50))) == WAIT_0 {
                    signaled.bump();
                }
            }
            assert!(timer.cancel(), "a periodic timer is always armed");
            let armed_ms = set_at.elapsed().as_millis();
            support::flush_dpcs();
            let after_cancel = fired.get();
            sleep_ms(5 * i64::from(PERIOD_MS));
            support::flush_dpcs();
            assert_eq!(fired.get(), after_cancel, "no expiry after KeCancelTimer");
            assert!(!timer.cancel());
            (fired.get(), signaled.get(), armed_ms)
        })
        .unwrap();
    // 600 ms at 10 ms is 60 expiries. Accept a wide band: a loaded debug host may drop some
    // (missed expiries are not replayed), but none comes early, so there can be no more than
    // one per period of the time the timer was armed.
    let period = u128::try_from(PERIOD_MS).unwrap();
    let most = usize::try_from(armed_ms / period).unwrap();
    let least = usize::try_from(u128::from(WINDOW_MS) / period / 4).unwrap();
    assert!(
        (least..=most).contains(&fired),
        "{fired} DPCs in {armed_ms} ms at a {PERIOD_MS} ms period"
    );
    assert!(
        (least..=most).contains(&signaled),
        "{signaled} expiries seen by a waiter in {armed_ms} ms"
    );
}

#[test]
fn reinitialising_an_armed_timer_disarms_it() {
    let m = machine(2);
    m.run(|| {
        let timer = Timer::new();
        timer.set(-20 * MS, None);
        let again = Timer::at_notification(timer.addr());
        assert!(!again.cancel(), "no longer armed");
        assert_eq!(again.wait(Some(relative_ms(60))), TIMEOUT);
    })
    .unwrap();
}
