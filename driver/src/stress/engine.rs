//! The generic run: workers, DPC batches, figures, verdict.

use alloc::{boxed::Box, vec::Vec};
use core::{
    cell::UnsafeCell,
    pin::Pin,
    sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering},
};

use synclab_protocol::{
    limits::{DPC_BATCH, MAX_DPC_WORKERS},
    wire::{verdict, worker_kind, StressRequest, StressResponse, WorkerStats, FLAG_DPC},
};
use wdk_sys::{KDPC, NTSTATUS, PVOID};

use super::{Protected, TortureOps};
use crate::kernel::{
    dpc::{self, Dpc},
    irql::{self, AtDispatch},
    processor,
    thread::SystemThread,
    time,
};

/// Shared state of one run. Pinned in nonpaged pool for the whole run.
struct Run<L> {
    ops: L,
    request: StressRequest,
    /// Workers wait for this before their first acquisition.
    go: AtomicBool,
    /// Performance-counter value after which workers stop; `i64::MAX` for none.
    stop_at: AtomicI64,
    /// DPC workers that still have iterations left.
    dpcs_left: AtomicU32,
}

/// One worker's slot: its stats, and for DPC workers the DPC and its remaining quota.
struct Slot<L> {
    run: *const Run<L>,
    /// Worker id, 1-based (0 means "nobody" in the owner flag).
    id: u64,
    stats: UnsafeCell<WorkerStats>,
    remaining: UnsafeCell<u32>,
    dpc: Dpc,
}

// SAFETY: a slot's `stats` and `remaining` are written only by its own worker (one thread, or
// one DPC whose runs never overlap: a DPC object is queued at most once at a time) until the
// run has joined that worker; `run` points to the pinned Run that outlives every worker.
unsafe impl<L: Sync> Sync for Slot<L> {}

impl<L: TortureOps> Run<L> {
    const fn ops(&self) -> Pin<&L> {
        // SAFETY: a Run is only ever reached through the Pin<Box<Run>> created in `run`, so
        // its `ops` field never moves.
        unsafe { Pin::new_unchecked(&self.ops) }
    }

    fn should_stop(&self) -> bool {
        time::ticks() >= self.stop_at.load(Ordering::Relaxed)
    }

    /// The critical section: checks and the non-atomic increment.
    fn critical(&self, stats: &mut WorkerStats, id: u64, protected: &Protected) {
        if irql::current() != L::HELD_IRQL {
            stats.irql_violations += 1;
        }
        if protected.owner.swap(id, Ordering::Acquire) != 0 {
            stats.exclusion_violations += 1;
        }
        let value = protected.counter.load(Ordering::Relaxed);
        if self.request.hold_us > 0 {
            processor::stall(self.request.hold_us);
        } else {
            for _ in 0..32 {
                core::hint::spin_loop();
            }
        }
        protected.counter.store(value + 1, Ordering::Relaxed);
        protected.owner.store(0, Ordering::Release);
        stats.acquisitions += 1;
    }

    fn record_wait(stats: &mut WorkerStats, waited_ticks: i64, frequency: i64) {
        let ns = time::ticks_to_ns(waited_ticks, frequency);
        stats.max_wait_ns = stats.max_wait_ns.max(ns);
    }
}

/// Start routine of a worker thread. `PASSIVE_LEVEL`.
unsafe extern "C" fn thread_worker<L: TortureOps>(context: PVOID) {
    // SAFETY: `context` is the address of this worker's Slot, which outlives the thread (the
    // run joins every thread before freeing the slots).
    let slot = unsafe { &*context.cast::<Slot<L>>() };
    // SAFETY: the Run outlives every worker (see Slot).
    let run = unsafe { &*slot.run };
    // SAFETY: only this thread touches its slot's stats until it is joined.
    let stats = unsafe { &mut *slot.stats.get() };
    stats.kind = worker_kind::THREAD;
    while !run.go.load(Ordering::Acquire) {
        time::sleep_ms(1);
    }
    let frequency = time::frequency();
    for _ in 0..run.request.iterations {
        if run.should_stop() {
            break;
        }
        let before = irql::current();
        let asked = time::ticks();
        run.ops().with_lock(|protected| {
            Run::<L>::record_wait(stats, time::ticks() - asked, frequency);
            stats.processor = processor::current();
            run.critical(stats, slot.id, protected);
        });
        if irql::current() != before {
            stats.restore_violations += 1;
        }
    }
}

/// Routine of a DPC worker: at most `DPC_BATCH` acquisitions per run, then it queues itself
/// again until its quota is done. `DISPATCH_LEVEL`.
unsafe extern "C" fn dpc_worker<L: TortureOps>(
    _dpc: *mut KDPC,
    context: PVOID,
    _a1: PVOID,
    _a2: PVOID,
) {
    // SAFETY: this is a DPC routine, which the kernel runs at DISPATCH_LEVEL.
    let at = unsafe { AtDispatch::in_dpc_routine() };
    // SAFETY: `context` is this worker's Slot; the run waits for every DPC worker to finish
    // (dpcs_left, then KeFlushQueuedDpcs) before freeing it.
    let slot = unsafe { &*context.cast::<Slot<L>>() };
    // SAFETY: the Run outlives the slot.
    let run = unsafe { &*slot.run };
    // SAFETY: runs of one DPC object never overlap, so this run is the only one touching them.
    let stats = unsafe { &mut *slot.stats.get() };
    // SAFETY: as above.
    let remaining = unsafe { &mut *slot.remaining.get() };
    stats.kind = worker_kind::DPC;
    stats.processor = processor::current();
    let frequency = time::frequency();
    let batch = (*remaining).min(DPC_BATCH);
    for _ in 0..batch {
        if run.should_stop() {
            *remaining = 0;
            break;
        }
        let asked = time::ticks();
        run.ops().with_lock_at_dpc(&at, |protected| {
            Run::<L>::record_wait(stats, time::ticks() - asked, frequency);
            run.critical(stats, slot.id, protected);
        });
        if irql::current() != irql::DISPATCH_LEVEL {
            stats.restore_violations += 1;
        }
        *remaining -= 1;
    }
    if *remaining == 0 || !slot.dpc.queue() {
        *remaining = 0;
        run.dpcs_left.fetch_sub(1, Ordering::Release);
    }
}

/// Starts the worker threads; on failure stops and joins those already started.
fn spawn_threads<L: TortureOps>(
    run: &Run<L>,
    count: u32,
    slot_ptr: impl Fn(u32) -> PVOID,
) -> Result<Vec<SystemThread>, NTSTATUS> {
    let mut threads = Vec::with_capacity(count as usize);
    for i in 0..count {
        // SAFETY: the slot (and the run it points to) outlive the thread: the caller joins
        // every thread (or aborts, which joins them) before freeing the slots and the run.
        match unsafe { SystemThread::spawn(thread_worker::<L>, slot_ptr(i)) } {
            Ok(thread) => threads.push(thread),
            Err(status) => {
                abort(run, threads);
                return Err(status);
            }
        }
    }
    Ok(threads)
}

/// Makes started workers stop at once and joins them (a setup step failed).
fn abort<L>(run: &Run<L>, threads: Vec<SystemThread>) {
    run.stop_at.store(i64::MIN, Ordering::Relaxed);
    run.go.store(true, Ordering::Release);
    for thread in threads {
        thread.join();
    }
}

/// Runs one stress test of `L`. `PASSIVE_LEVEL`.
pub fn run<L: TortureOps>(request: &StressRequest) -> Result<Box<StressResponse>, NTSTATUS> {
    let processors = processor::count();
    let dpc_workers = if request.flags & FLAG_DPC == 0 {
        0
    } else {
        let cap = if request.max_processors == 0 {
            processors
        } else {
            request.max_processors
        };
        processors.min(cap).min(MAX_DPC_WORKERS)
    };
    wdk::println!(
        "synclab: {}: start: threads={} dpc_workers={} iterations={} duration_ms={} hold_us={} processors={}",
        L::NAME,
        request.threads,
        dpc_workers,
        request.iterations,
        request.duration_ms,
        request.hold_us,
        processors
    );
    let run = Box::pin(Run {
        ops: L::create(),
        request: *request,
        go: AtomicBool::new(false),
        stop_at: AtomicI64::new(i64::MAX),
        dpcs_left: AtomicU32::new(0),
    });
    run.as_ref().ops().init();
    let run_ptr: *const Run<L> = &raw const *run;
    let workers = request.threads + dpc_workers;
    let slots: Pin<Box<[Slot<L>]>> = Box::into_pin(
        (0..workers)
            .map(|i| Slot {
                run: run_ptr,
                id: u64::from(i) + 1,
                stats: UnsafeCell::new(WorkerStats::default()),
                remaining: UnsafeCell::new(request.iterations),
                dpc: Dpc::new(),
            })
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    );
    let slot_ptr = |i: u32| -> PVOID { core::ptr::from_ref(&slots[i as usize]).cast_mut().cast() };

    let threads = spawn_threads(&run, request.threads, slot_ptr)?;
    for j in 0..dpc_workers {
        let slot = &slots[(request.threads + j) as usize];
        // SAFETY: the slot is pinned in the boxed slice, and the run waits for every DPC
        // worker and flushes DPCs before freeing it; its context is the slot itself.
        if let Err(status) = unsafe {
            slot.dpc
                .init(dpc_worker::<L>, slot_ptr(request.threads + j), j)
        } {
            abort(&run, threads);
            return Err(status);
        }
    }

    let frequency = time::frequency();
    let started = time::ticks();
    if request.duration_ms > 0 {
        let span = i64::from(request.duration_ms) * frequency / 1000;
        run.stop_at
            .store(started.saturating_add(span), Ordering::Relaxed);
    }
    run.go.store(true, Ordering::Release);
    for j in 0..dpc_workers {
        run.dpcs_left.fetch_add(1, Ordering::AcqRel);
        if !slots[(request.threads + j) as usize].dpc.queue() {
            run.dpcs_left.fetch_sub(1, Ordering::AcqRel);
        }
    }
    for thread in threads {
        thread.join();
    }
    while run.dpcs_left.load(Ordering::Acquire) != 0 {
        time::sleep_ms(1);
    }
    dpc::flush(); // the last DPC runs have returned
    let elapsed = time::ticks() - started;

    let mut counter = 0;
    run.as_ref()
        .ops()
        .with_lock(|protected| counter = protected.counter.load(Ordering::Relaxed));
    Ok(report::<L>(
        request,
        processors,
        &slots,
        counter,
        time::ticks_to_ns(elapsed, frequency),
    ))
}

/// Sums the workers' figures into a response, decides the verdict and logs the end of the test
/// (parameters, totals, and the one-line verdict). `PASSIVE_LEVEL`.
fn report<L: TortureOps>(
    request: &StressRequest,
    processors: u32,
    slots: &[Slot<L>],
    counter: u64,
    elapsed_ns: u64,
) -> Box<StressResponse> {
    let mut response = Box::new(StressResponse::new(*request));
    response.processors = processors;
    response.worker_count = u32::try_from(slots.len()).unwrap_or(u32::MAX);
    for (i, slot) in slots.iter().enumerate() {
        // SAFETY: every worker has finished (threads joined, DPCs flushed), so nothing else
        // touches the slot any more.
        let stats = unsafe { *slot.stats.get() };
        response.workers[i] = stats;
        response.total_acquisitions += stats.acquisitions;
        response.exclusion_violations += stats.exclusion_violations;
        response.irql_violations += stats.irql_violations;
        response.restore_violations += stats.restore_violations;
        response.max_wait_ns = response.max_wait_ns.max(stats.max_wait_ns);
    }
    response.elapsed_ns = elapsed_ns;
    response.protected_counter = counter;
    let clean =
        response.violations() == 0 && response.protected_counter == response.total_acquisitions;
    response.verdict = if clean {
        verdict::SUCCESS
    } else {
        verdict::FAILURE
    };
    wdk::println!(
        "synclab: {}: acquisitions={} counter={} exclusion_violations={} irql_violations={} restore_violations={} max_wait_ns={} elapsed_ns={}",
        L::NAME,
        response.total_acquisitions,
        response.protected_counter,
        response.exclusion_violations,
        response.irql_violations,
        response.restore_violations,
        response.max_wait_ns,
        response.elapsed_ns
    );
    wdk::println!(
        "synclab: {}: End of test: {}",
        L::NAME,
        if clean { "SUCCESS" } else { "FAILURE" }
    );
    response
}
