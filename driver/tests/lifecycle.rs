//! The life of a run: the queue callback returns at once and the run's control thread completes
//! it; at most `MAX_CONCURRENT_RUNS` run together and the rest are refused with
//! `STATUS_DEVICE_BUSY`; a cancel (`CancelIoEx`) stops a run promptly and it answers with the
//! figures so far; closing the handle stops its runs, which complete with `STATUS_CANCELLED`;
//! unload waits for runs to end and leaves nothing behind, however they ended.
#![cfg(not(windows))] // These tests run the driver on ntsim, the host kernel.

mod common;

use std::time::{Duration, Instant};

use ntsim::{FileHandle, IoError, Machine, PendingIo};
use synclab_protocol::{
    limits::{MAX_CONCURRENT_RUNS, MAX_LONG_HOLD_US, MAX_THREADS},
    status::{STATUS_CANCELLED, STATUS_DEVICE_BUSY, STATUS_SUCCESS},
    wire::{verdict, StressRequest, FLAG_DPC},
    Primitive,
};

/// The bound the issue sets on stopping a run, from the cancel or the close to the completion.
const PROMPT: Duration = Duration::from_millis(100);

/// A run set to last a minute: a spin lock taken by two threads and a DPC on each processor.
const fn minute_of_spin_lock() -> StressRequest {
    let mut request = StressRequest::new(Primitive::SpinLock, 2, 0);
    request.flags = FLAG_DPC;
    request.hold_us = 5;
    request.duration_ms = 60_000;
    request
}

/// A run set to last a minute whose holders all take the longest long hold: the most threads
/// there may be on a fast mutex, each hold 10 ms. Were the stop flag not seen inside a hold, the
/// waiters queued behind the holder would each still hold in turn: over half a second.
const fn minute_of_long_holds() -> StressRequest {
    let mut request = StressRequest::new(Primitive::FastMutex, MAX_THREADS, 0);
    request.long_hold_us = MAX_LONG_HOLD_US;
    request.long_hold_per_mille = 1000;
    request.duration_ms = 60_000;
    request
}

/// Waits until `pending` is done; returns its status, output and how long that took from `since`.
fn completion(pending: PendingIo, since: Instant) -> (i32, Vec<u8>, Duration) {
    let (status, output) = pending.wait().expect("the run completes");
    (status, output, since.elapsed())
}

/// Lets a run get going, then checks it is still running.
fn let_it_run(pending: &PendingIo) {
    std::thread::sleep(Duration::from_millis(300));
    assert!(!pending.is_complete(), "a one-minute run is still running");
}

fn cancelled_by_cancel_io(request: &StressRequest) {
    let (machine, first) = common::machine(4);
    let file = common::open(&machine, true);
    let started = Instant::now();
    let pending = common::start(&machine, file, request);
    let_it_run(&pending);
    let cancelled_at = Instant::now();
    machine
        .cancel_io(file, Some(&pending))
        .expect("CancelIoEx finds the run");
    let (status, output, latency) = completion(pending, cancelled_at);
    assert_eq!(status, STATUS_SUCCESS, "a cancelled run answers");
    eprintln!("stopped {latency:?} after the cancel");
    assert!(latency <= PROMPT, "stopped {latency:?} after the cancel");
    let response = common::response(&output);
    assert_eq!(response.cancelled, 1, "the response says it was cancelled");
    assert!(
        response.total_acquisitions > 0,
        "the partial figures are there"
    );
    assert_eq!(response.violations(), 0);
    assert_ne!(response.verdict, verdict::FAILURE);
    let elapsed = Duration::from_nanos(response.elapsed_ns);
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed <= started.elapsed(),
        "the elapsed time is the part that ran: {elapsed:?}"
    );
    machine.close(file);
    common::unload_clean(&machine, first);
}

#[test]
fn a_cancel_stops_a_run_of_threads_and_dpcs_promptly_and_it_answers_with_partial_figures() {
    cancelled_by_cancel_io(&minute_of_spin_lock());
}

#[test]
fn a_cancel_stops_a_run_of_long_holds_promptly_and_it_answers_with_partial_figures() {
    cancelled_by_cancel_io(&minute_of_long_holds());
}

#[test]
fn closing_the_handle_stops_its_run_which_completes_cancelled_without_figures() {
    let (machine, first) = common::machine(4);
    let file = common::open(&machine, true);
    let other = common::open(&machine, true);
    let pending = common::start(&machine, file, &minute_of_spin_lock());
    // A light run on another handle, which must go on.
    let mut light = StressRequest::new(Primitive::SpinLock, 1, 0);
    light.duration_ms = 60_000;
    let bystander = common::start(&machine, other, &light);
    let_it_run(&pending);
    let closed_at = Instant::now();
    machine.try_close(file).expect("CloseHandle");
    let (status, output, latency) = completion(pending, closed_at);
    assert_eq!(
        status, STATUS_CANCELLED,
        "nobody is left to read the figures"
    );
    assert!(output.is_empty());
    eprintln!("stopped {latency:?} after the close");
    assert!(latency <= PROMPT, "stopped {latency:?} after the close");
    assert!(!bystander.is_complete(), "a run on another handle goes on");
    machine.cancel_io(other, None).expect("CancelIoEx");
    let (status, output, _) = completion(bystander, Instant::now());
    assert_eq!(status, STATUS_SUCCESS);
    assert_eq!(common::response(&output).cancelled, 1);
    machine.close(other);
    common::unload_clean(&machine, first);
}

#[test]
fn unload_requested_during_a_run_waits_for_it_and_leaves_nothing_behind() {
    let (machine, first) = common::machine(4);
    machine.close(first);
    let file = common::open(&machine, true);
    let pending = common::start(&machine, file, &minute_of_long_holds());
    let_it_run(&pending);
    // The handle goes (as when a client is killed), then the unload comes at once.
    machine.try_close(file).expect("CloseHandle");
    let asked = Instant::now();
    let report = machine
        .unload()
        .expect("unload waits for the run, then no bug check");
    assert!(pending.is_complete(), "unload returned after the run ended");
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );
    common::assert_nothing_left(&report);
    assert_eq!(pending.wait().expect("completed").0, STATUS_CANCELLED);
}

#[test]
#[allow(
    clippy::needless_collect,
    reason = "every run starts before any is waited for"
)]
fn eight_runs_on_four_overlapped_handles_beyond_the_limit_get_device_busy_and_the_rest_complete() {
    let (machine, first) = common::machine(4);
    let mut request = StressRequest::new(Primitive::SpinLock, 1, 0);
    request.duration_ms = 1500;
    let files: Vec<FileHandle> = (0..4).map(|_| common::open(&machine, true)).collect();
    let pending: Vec<PendingIo> = files
        .iter()
        .flat_map(|&file| [file, file])
        .map(|file| common::start(&machine, file, &request))
        .collect();
    assert_eq!(pending.len(), 2 * MAX_CONCURRENT_RUNS);
    let outcomes: Vec<(i32, Vec<u8>)> = pending
        .into_iter()
        .map(|p| p.wait().expect("completes"))
        .collect();
    let completed: Vec<_> = outcomes
        .iter()
        .filter(|(status, _)| *status == STATUS_SUCCESS)
        .map(|(_, output)| common::response(output))
        .collect();
    let busy = outcomes
        .iter()
        .filter(|(status, _)| *status == STATUS_DEVICE_BUSY)
        .count();
    assert_eq!(completed.len(), MAX_CONCURRENT_RUNS, "{outcomes:?}");
    assert_eq!(busy, MAX_CONCURRENT_RUNS, "{outcomes:?}");
    for response in completed {
        assert_eq!(response.violations(), 0);
        assert_eq!(response.cancelled, 0);
        assert_ne!(response.verdict, verdict::FAILURE);
    }
    for file in files {
        machine.close(file);
    }
    common::unload_clean(&machine, first);
}

#[test]
fn two_runs_on_one_synchronous_handle_run_one_after_the_other() {
    let (machine, file) = common::machine(4);
    let mut request = StressRequest::new(Primitive::SpinLock, 2, 0);
    request.duration_ms = 400;
    let run = Duration::from_millis(400);
    let started = Instant::now();
    let ends: Vec<Duration> = std::thread::scope(|scope| {
        let one = scope.spawn(|| {
            let r = common::stress(&machine, file, &request);
            (r, started.elapsed())
        });
        let two = scope.spawn(|| {
            let r = common::stress(&machine, file, &request);
            (r, started.elapsed())
        });
        [one, two]
            .map(|h| {
                let (response, end) = h.join().expect("no panic");
                let response = response.expect("both runs complete: no STATUS_DEVICE_BUSY");
                assert_eq!(response.cancelled, 0);
                end
            })
            .to_vec()
    });
    let (first, last) = (ends[0].min(ends[1]), ends[0].max(ends[1]));
    assert!(first >= run, "{ends:?}");
    assert!(
        last >= first + run,
        "the second run starts only when the first has completed: {ends:?}"
    );
    common::unload_clean(&machine, file);
}

#[test]
fn a_hundred_load_unload_cycles_with_a_run_cancelled_in_each_leave_nothing_behind() {
    let machine = Machine::new(ntsim::MachineConfig::with_processors(4));
    for cycle in 0..100 {
        machine
            .load_driver("synclab", synclab::driver_entry)
            .unwrap_or_else(|e| panic!("cycle {cycle}: the driver loads: {e}"));
        let file = common::open(&machine, true);
        let pending = common::start(&machine, file, &minute_of_spin_lock());
        // Alternately by CancelIoEx and by closing the handle.
        let expected = if cycle % 2 == 0 {
            machine.cancel_io(file, None).expect("CancelIoEx");
            STATUS_SUCCESS
        } else {
            machine.try_close(file).expect("CloseHandle");
            STATUS_CANCELLED
        };
        let (status, _) = pending.wait().expect("the run completes");
        assert_eq!(status, expected, "cycle {cycle}");
        if cycle % 2 == 0 {
            machine.close(file);
        }
        let report = machine
            .unload()
            .unwrap_or_else(|e| panic!("cycle {cycle}: unload: {e}"));
        common::assert_nothing_left(&report);
    }
}

#[test]
fn a_request_on_a_closed_handle_is_invalid_handle() {
    let (machine, first) = common::machine(2);
    let file = common::open(&machine, false);
    machine.close(file);
    assert_eq!(
        common::stress(&machine, file, &minute_of_spin_lock()).map(|_| ()),
        Err(IoError::Status(ntsim::wdk_sys::STATUS_INVALID_HANDLE))
    );
    common::unload_clean(&machine, first);
}
