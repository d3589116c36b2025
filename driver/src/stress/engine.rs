//! The generic run: workers, the start gate, DPC batches and their kicker, checks, figures and
//! the verdict.
//!
//! Schedule:
//! - Thread workers (writers, then readers) bind to processors round-robin, then wait on one
//!   notification event; the IRQL-`PASSIVE_LEVEL` request thread sets it once every worker
//!   exists, so all start together (no polling).
//! - DPC workers cannot wait: the request thread queues each one's first batch after setting
//!   the event, and from then on acts as their kicker. A DPC invocation makes at most
//!   `batch` acquisitions (what fits [`DPC_BATCH_BUDGET_US`] at the hold time: a 100 us hold
//!   gives at most 5), starts none after that budget, and never queues itself: it records when
//!   it may run again (no sooner than it ran, so a DPC worker keeps its processor at
//!   `DISPATCH_LEVEL` at most half of the time) and returns; the kicker, sleeping at
//!   `PASSIVE_LEVEL` until the next batch is due (50 us to 1 ms), queues it. Between batches the
//!   processor drops below `DISPATCH_LEVEL`, so threads bound to it run, and the DPC watchdog
//!   (single and cumulative)
//!   is never approached. Validation bounds the worst single acquisition so that one
//!   invocation stays within [`synclab_protocol::limits::DPC_INVOCATION_MAX_US`].
//! - A run given iterations ends when every worker has made them; a run given a duration ends
//!   at its deadline (with iterations too, whichever comes first). Stutter pauses every worker
//!   in alternate phases.

use alloc::{boxed::Box, vec::Vec};
use core::{
    cell::UnsafeCell,
    pin::Pin,
    sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering},
};

use synclab_protocol::{
    limits::{
        BUSTED_FIRST_OVERLAP_US, BUSTED_OVERLAP_US, BUSTED_PATIENCE_MS, DPC_BATCH,
        DPC_BATCH_BUDGET_US, MAX_WORKERS,
    },
    primitive::{context, Variant},
    wire::{
        histogram_bucket, role, verdict, worker_kind, StressRequest, StressResponse, WorkerStats,
        FLAG_APC_LEVEL, HISTOGRAM_BUCKETS,
    },
};
use wdk_sys::{KDPC, KIRQL, NTSTATUS, PVOID};

use super::{Attempt, Hold, Inside, Mode, Protected, Setup, TortureOps};
use crate::kernel::{
    apc,
    dpc::{self, Dpc},
    event::Event,
    irql::{self, AtDispatch, APC_LEVEL, DISPATCH_LEVEL},
    pool, processor,
    thread::SystemThread,
    time,
};

/// Violations logged one line each before the log says how many more there were.
const MAX_LOGGED_VIOLATIONS: u32 = 32;
/// Longest stall between two looks at the stop flag while holding: a stopped run's holders
/// leave within this, whatever their long hold.
const HOLD_SLICE_US: u32 = 100;
/// Timestamp pairs read to measure what one costs.
const TIMING_SAMPLES: i64 = 1000;

/// Shared state of one run. Pinned in nonpaged pool for the whole run.
struct Run<L> {
    ops: L,
    protected: Protected,
    request: StressRequest,
    variant: &'static Variant,
    name: &'static str,
    /// Thread workers wait on it; set once, when every worker exists.
    start: Pin<Box<Event>>,
    /// Performance-counter value at the start; written before the event is set.
    started: AtomicI64,
    /// Performance-counter value after which workers stop; `i64::MAX` for none.
    stop_at: AtomicI64,
    /// Stutter phase length in ticks; 0 for none.
    stutter_ticks: i64,
    frequency: i64,
    /// Writers take the lock shared: the shared busted control.
    writers_share: bool,
    busted: bool,
    /// Busted runs: two holders have been seen inside together.
    overlapped: AtomicBool,
    max_readers: AtomicU64,
    logged: AtomicU32,
    /// Setup failed: workers leave at once.
    abort: AtomicBool,
    /// The caller's stop flag (cancel, cleanup): workers leave at their next acquisition, DPC
    /// workers after their batch. Outlives the run (`run` returns only after every worker).
    stop: *const AtomicBool,
}

/// One worker's slot: its figures, and for DPC workers the DPC and its schedule.
struct Slot<L> {
    run: *const Run<L>,
    /// Worker id, 1-based (0 means "nobody" in the owner flag).
    id: u64,
    role: u32,
    kind: u32,
    processor: u32,
    /// Acquisitions left; `u64::MAX` when the run is driven by time.
    remaining: AtomicU64,
    stats: UnsafeCell<WorkerStats>,
    histogram: UnsafeCell<[u64; HISTOGRAM_BUCKETS]>,
    rng: UnsafeCell<u64>,
    dpc: Dpc,
    /// The DPC worker is neither queued nor running: the kicker may queue it.
    idle: AtomicBool,
    /// The DPC worker has nothing left to do.
    done: AtomicBool,
    /// Earliest performance-counter value of its next batch.
    next_due: AtomicI64,
    invocations: AtomicU64,
    busy_ticks: AtomicU64,
    max_invocation_ticks: AtomicU64,
}

// SAFETY: a slot's `stats`, `histogram` and `rng` are written only by its own worker (one
// thread, or one DPC object whose runs never overlap: the kicker queues it again only after its
// previous run set `idle`) until the run has joined that worker; everything else is atomic or
// immutable; `run` points to the pinned Run that outlives every worker.
unsafe impl<L: Sync> Sync for Slot<L> {}

const fn kind_name(kind: u32) -> &'static str {
    match kind {
        worker_kind::THREAD => "thread",
        worker_kind::DPC => "DPC",
        worker_kind::THREADED_DPC => "threaded DPC",
        _ => "?",
    }
}

impl<L: TortureOps> Run<L> {
    fn stopped(&self) -> bool {
        // SAFETY: the stop flag outlives the run (see the field).
        self.abort.load(Ordering::Relaxed) || unsafe { &*self.stop }.load(Ordering::Relaxed)
    }

    fn should_stop(&self) -> bool {
        self.stopped() || time::ticks() >= self.stop_at.load(Ordering::Relaxed)
    }

    /// In a stutter pause at `now`.
    fn paused(&self, now: i64) -> bool {
        self.stutter_ticks > 0
            && ((now - self.started.load(Ordering::Relaxed)) / self.stutter_ticks) % 2 == 1
    }

    fn us_to_ticks(&self, us: u32) -> i64 {
        i64::from(us) * self.frequency / 1_000_000
    }

    /// Logs one violation (worker, processor, IRQL, what was seen); at most
    /// [`MAX_LOGGED_VIOLATIONS`] lines per run. Any IRQL.
    fn log_violation(&self, slot: &Slot<L>, what: &str, seen: u64) {
        let n = self.logged.fetch_add(1, Ordering::Relaxed);
        if n < MAX_LOGGED_VIOLATIONS {
            wdk::println!(
                "synclab: {}: VIOLATION: worker {} ({}) on processor {} at IRQL {}: {} (saw {})",
                self.name,
                slot.id,
                kind_name(slot.kind),
                processor::current(),
                irql::current(),
                what,
                seen
            );
        } else if n == MAX_LOGGED_VIOLATIONS {
            wdk::println!(
                "synclab: {}: further violations are counted, not logged",
                self.name
            );
        }
    }

    /// A hold: every check, the non-atomic update for writers, the hold time.
    fn inside(&self, slot: &Slot<L>, stats: &mut WorkerStats, hold: Hold, caller: KIRQL, us: u32) {
        let p = &self.protected;
        let writer =
            hold.mode == Mode::Exclusive || (self.writers_share && slot.role == role::WRITER);
        p.inside.fetch_add(1, Ordering::AcqRel);
        let now_irql = irql::current();
        if now_irql != self.variant.held_irql.inside(caller) {
            stats.irql_violations += 1;
            self.log_violation(slot, "IRQL inside is not the family's", u64::from(now_irql));
        }
        // KeAreApcsDisabled/KeAreAllApcsDisabled may only be asked at <= APC_LEVEL (errata 1).
        if now_irql < DISPATCH_LEVEL {
            let apc = self.variant.apc;
            let (some, all) = (apc::apcs_disabled(), apc::all_apcs_disabled());
            if some != apc.apcs_disabled() || all != apc.all_apcs_disabled(now_irql) {
                stats.apc_violations += 1;
                self.log_violation(
                    slot,
                    "APC state inside (KeAreApcsDisabled, KeAreAllApcsDisabled)",
                    u64::from(some) << 1 | u64::from(all),
                );
            }
        }
        if let Some(depth) = hold.depth {
            if depth != self.variant.depth {
                stats.recursion_violations += 1;
                self.log_violation(slot, "recursion depth the kernel reports", u64::from(depth));
            }
        }
        if writer {
            let other = p.owner.swap(slot.id, Ordering::AcqRel);
            p.owner_processor
                .store(processor::current(), Ordering::Relaxed);
            if other != 0 {
                stats.exclusion_violations += 1;
                self.overlapped.store(true, Ordering::Relaxed);
                self.log_violation(slot, "another writer inside", other);
            }
            let readers = p.readers.load(Ordering::Acquire);
            if readers != 0 {
                stats.reader_violations += 1;
                self.log_violation(slot, "readers inside with a writer", readers);
            }
            let value = p.counter.load(Ordering::Relaxed);
            self.hold_for(us);
            if self.busted {
                self.wait_for_company(slot);
            }
            p.counter.store(value + 1, Ordering::Relaxed);
            let _ = p
                .owner
                .compare_exchange(slot.id, 0, Ordering::AcqRel, Ordering::Relaxed);
            p.write_end_processor
                .store(processor::current(), Ordering::Relaxed);
            p.writes_ended.fetch_add(1, Ordering::AcqRel);
            stats.writes += 1;
        } else {
            p.reader_processor
                .store(processor::current(), Ordering::Relaxed);
            let n = p.readers.fetch_add(1, Ordering::AcqRel) + 1;
            self.max_readers.fetch_max(n, Ordering::Relaxed);
            let owner = p.owner.load(Ordering::Acquire);
            if owner != 0 {
                stats.reader_violations += 1;
                self.log_violation(slot, "a writer inside with a reader", owner);
            }
            self.hold_for(us);
            p.readers.fetch_sub(1, Ordering::AcqRel);
            p.read_end_processor
                .store(processor::current(), Ordering::Relaxed);
            p.reads_ended.fetch_add(1, Ordering::AcqRel);
            stats.reads += 1;
        }
        p.inside.fetch_sub(1, Ordering::AcqRel);
        stats.acquisitions += 1;
    }

    /// Holds for `us`: in slices of [`HOLD_SLICE_US`], so that a holder of a stopped run
    /// leaves within a slice and the waiters behind it do not hold at all.
    fn hold_for(&self, us: u32) {
        if us > 0 {
            let mut left = us;
            while left > 0 && !self.stopped() {
                let slice = left.min(HOLD_SLICE_US);
                processor::stall(slice);
                left -= slice;
            }
        } else {
            for _ in 0..32 {
                core::hint::spin_loop();
            }
        }
    }

    /// The busted controls overlap by design: a holder stays until a second one is inside.
    /// Until the run has seen two holders together, and for its first [`BUSTED_PATIENCE_MS`]
    /// at most, a thread worker waits up to [`BUSTED_FIRST_OVERLAP_US`] (so the overlap happens
    /// however the kernel or the host schedules the other workers); after that, and always in a
    /// DPC, at most [`BUSTED_OVERLAP_US`].
    fn wait_for_company(&self, slot: &Slot<L>) {
        let now = time::ticks();
        let patience = i64::from(BUSTED_PATIENCE_MS) * self.frequency / 1000;
        let patient = slot.kind == worker_kind::THREAD
            && !self.overlapped.load(Ordering::Relaxed)
            && now - self.started.load(Ordering::Relaxed) < patience;
        let limit = if patient {
            BUSTED_FIRST_OVERLAP_US
        } else {
            BUSTED_OVERLAP_US
        };
        let deadline = now + self.us_to_ticks(limit);
        while self.protected.inside.load(Ordering::Acquire) < 2
            && time::ticks() < deadline
            && !self.stopped()
        {
            core::hint::spin_loop();
        }
    }

    /// The hold for the next acquisition: the long hold with its probability, else the hold.
    fn pick_hold(&self, rng: &mut u64) -> u32 {
        let q = &self.request;
        if q.long_hold_per_mille > 0 {
            // xorshift64: cheap, seeded per worker, reproducible.
            *rng ^= *rng << 13;
            *rng ^= *rng >> 7;
            *rng ^= *rng << 17;
            if *rng % 1000 < u64::from(q.long_hold_per_mille) {
                return q.long_hold_us;
            }
        }
        q.hold_us
    }

    /// One acquisition by `slot` through `acquire`: contention seen when asking, the wait, every
    /// check inside, the IRQL after release, and the delay outside.
    fn acquisition(&self, slot: &Slot<L>, acquire: impl FnOnce(&L, Inside<'_>) -> Attempt) {
        // SAFETY: only this worker touches its own stats until the run has joined it (see
        // Slot), and this is the only live reference to them in this call.
        let stats = unsafe { &mut *slot.stats.get() };
        // SAFETY: the histogram, like the stats, belongs to this worker alone until it is joined.
        let histogram = unsafe { &mut *slot.histogram.get() };
        // SAFETY: the random state, like the stats, belongs to this worker alone.
        let rng = unsafe { &mut *slot.rng.get() };
        let us = self.pick_hold(rng);
        let writer = slot.role == role::WRITER || self.writers_share;
        let me = processor::current();
        let held = self.held_when_asked(writer, me);
        let before = self.ended(writer);
        let caller = irql::current();
        let asked = time::ticks();
        let mut waited = None;
        let mut overtaken = false;
        let attempt = acquire(&self.ops, &mut |hold: Hold| {
            if waited.is_none() {
                waited = Some(time::ticks() - asked);
                overtaken = self.overtaken(writer, before, me);
            }
            self.inside(slot, stats, hold, caller, us);
        });
        let after = irql::current();
        if after != caller {
            stats.restore_violations += 1;
            self.log_violation(
                slot,
                "IRQL after release is not the IRQL before",
                after.into(),
            );
        }
        if attempt.unsupported || waited.is_none() {
            stats.irql_violations += 1;
            self.log_violation(slot, "the family has no such path", 0);
        }
        stats.conversions += u64::from(attempt.conversions);
        if held || overtaken || attempt.failed_tries > 0 {
            stats.contended += 1;
        }
        let ns = time::ticks_to_ns(waited.unwrap_or(0), self.frequency);
        stats.max_wait_ns = stats.max_wait_ns.max(ns);
        stats.total_wait_ns = stats.total_wait_ns.saturating_add(ns);
        histogram[histogram_bucket(ns)] += 1;
        if self.request.delay_us > 0 {
            processor::stall(self.request.delay_us);
        }
    }

    /// Whether `cpu` names a holder that could overlap with one on processor `me`: any holder of
    /// a lock held below `DISPATCH_LEVEL`, one on another processor for a lock held at
    /// `DISPATCH_LEVEL`. On one processor IRQL alone keeps a DPC and a thread apart, so such a
    /// hold shows nothing about the lock (a busted lock would pass it too).
    fn could_overlap(&self, cpu: &AtomicU32, me: u32) -> bool {
        !self.variant.held_at_dispatch() || cpu.load(Ordering::Relaxed) != me
    }

    /// Whether the lock is held, when this worker asks, by a holder that could overlap with it:
    /// a writer inside, or for a writer any reader.
    fn held_when_asked(&self, writer: bool, me: u32) -> bool {
        let p = &self.protected;
        (p.owner.load(Ordering::Relaxed) != 0 && self.could_overlap(&p.owner_processor, me))
            || (writer
                && p.readers.load(Ordering::Relaxed) != 0
                && self.could_overlap(&p.reader_processor, me))
    }

    /// How many holds that exclude this worker had ended when it asked: writes, and for a
    /// writer reads too.
    fn ended(&self, writer: bool) -> (u64, u64) {
        let p = &self.protected;
        let reads = if writer {
            p.reads_ended.load(Ordering::Acquire)
        } else {
            0
        };
        (p.writes_ended.load(Ordering::Acquire), reads)
    }

    /// Whether, between its request and its entry, this worker was overtaken: a hold that
    /// excludes it ended on a processor where it could have overlapped (the lock was handed to
    /// a waiter the asker could not yet see inside, as a FIFO lock does).
    fn overtaken(&self, writer: bool, before: (u64, u64), me: u32) -> bool {
        let p = &self.protected;
        let now = self.ended(writer);
        (now.0 != before.0 && self.could_overlap(&p.write_end_processor, me))
            || (now.1 != before.1 && self.could_overlap(&p.read_end_processor, me))
    }

    /// Takes one acquisition from `remaining`; false when there is none left.
    fn take_one(slot: &Slot<L>) -> bool {
        slot.remaining
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| match n {
                0 => None,
                u64::MAX => Some(u64::MAX),
                n => Some(n - 1),
            })
            .is_ok()
    }

    fn has_work(&self, slot: &Slot<L>) -> bool {
        slot.remaining.load(Ordering::Acquire) != 0 && !self.should_stop()
    }

    /// One acquisition from a thread (or threaded DPC) through the role's path.
    fn thread_acquisition(&self, slot: &Slot<L>) {
        if slot.role == role::READER || self.writers_share {
            self.acquisition(slot, |ops, inside| ops.read(inside));
        } else {
            self.acquisition(slot, |ops, inside| ops.write(inside));
        }
    }
}

/// Start routine of a worker thread. `PASSIVE_LEVEL`.
unsafe extern "C" fn thread_worker<L: TortureOps>(context: PVOID) {
    // SAFETY: `context` is the address of this worker's Slot, which outlives the thread (the
    // run joins every thread before freeing the slots).
    let slot = unsafe { &*context.cast::<Slot<L>>() };
    // SAFETY: the Run outlives every worker (see Slot).
    let run = unsafe { &*slot.run };
    // Bound to its processor for the whole run; reverted (guard dropped) before it ends.
    let _affinity = processor::bind_current_thread(slot.processor).ok();
    run.start.wait();
    let raise_to_apc = run.request.flags & FLAG_APC_LEVEL != 0;
    while run.has_work(slot) {
        if run.paused(time::ticks()) {
            time::sleep_ms(1);
            continue;
        }
        if !Run::<L>::take_one(slot) {
            break;
        }
        let raised = raise_to_apc.then(|| irql::raise(APC_LEVEL));
        run.thread_acquisition(slot);
        drop(raised);
    }
}

/// Routine of a DPC worker: one bounded batch at `DISPATCH_LEVEL`, then it records when it may
/// run again and returns; the kicker queues the next batch.
unsafe extern "C" fn dpc_worker<L: TortureOps>(
    _dpc: *mut KDPC,
    context: PVOID,
    _a1: PVOID,
    _a2: PVOID,
) {
    // SAFETY: `context` is this worker's Slot; the run waits for every DPC worker to go idle
    // for good, then flushes DPCs, before freeing it.
    let slot = unsafe { &*context.cast::<Slot<L>>() };
    // SAFETY: the Run outlives the slot.
    let run = unsafe { &*slot.run };
    let threaded = slot.kind == worker_kind::THREADED_DPC;
    let begun = time::ticks();
    let budget = run.us_to_ticks(DPC_BATCH_BUDGET_US);
    let batch = batch_size(&run.request);
    let mut made = 0;
    while made < batch && time::ticks() - begun < budget && run.has_work(slot) {
        if !Run::<L>::take_one(slot) {
            break;
        }
        if threaded {
            // A threaded DPC may run at PASSIVE_LEVEL on Windows: the thread path, whose DDIs
            // (…ForDpc) are legal at either IRQL, and no DISPATCH_LEVEL token.
            run.thread_acquisition(slot);
        } else {
            // SAFETY: this is a (non-threaded) DPC routine, which the kernel runs at
            // DISPATCH_LEVEL, and the token does not outlive this call.
            let at = unsafe { AtDispatch::in_dpc_routine() };
            if slot.role == role::READER || run.writers_share {
                run.acquisition(slot, |ops, inside| ops.read_at_dpc(&at, inside));
            } else {
                run.acquisition(slot, |ops, inside| ops.write_at_dpc(&at, inside));
            }
        }
        made += 1;
    }
    let ended = time::ticks();
    let spent = ended - begun;
    let spent_u = spent.unsigned_abs();
    slot.invocations.fetch_add(1, Ordering::Relaxed);
    slot.busy_ticks.fetch_add(spent_u, Ordering::Relaxed);
    slot.max_invocation_ticks
        .fetch_max(spent_u, Ordering::Relaxed);
    // No sooner than it ran: at most half of the time at DISPATCH_LEVEL.
    slot.next_due.store(ended + spent, Ordering::Relaxed);
    slot.idle.store(true, Ordering::Release);
}

/// Acquisitions per DPC invocation: what fits [`DPC_BATCH_BUDGET_US`] at the longest hold plus
/// the delay (a 100 us hold gives 5), at least 1, at most [`DPC_BATCH`].
fn batch_size(request: &StressRequest) -> u32 {
    let hold = request.max_hold_us().max(1) + request.delay_us;
    (DPC_BATCH_BUDGET_US / hold).clamp(1, DPC_BATCH)
}

/// Starts the worker threads; on failure stops and joins those already started.
fn spawn_threads<L: TortureOps>(
    run: &Run<L>,
    slots: &[Slot<L>],
) -> Result<Vec<SystemThread>, NTSTATUS> {
    let mut threads = Vec::new();
    if threads.try_reserve_exact(slots.len()).is_err() {
        return Err(wdk_sys::STATUS_INSUFFICIENT_RESOURCES);
    }
    for slot in slots {
        let context: PVOID = core::ptr::from_ref(slot).cast_mut().cast();
        // SAFETY: the slot (and the run it points to) outlive the thread: the caller joins
        // every thread (or aborts, which joins them) before freeing the slots and the run.
        match unsafe { SystemThread::spawn(thread_worker::<L>, context) } {
            Ok(thread) => threads.push(thread),
            Err(status) => {
                abort(run, threads);
                return Err(status);
            }
        }
    }
    Ok(threads)
}

/// Makes started workers leave at once and joins them (a setup step failed).
fn abort<L>(run: &Run<L>, threads: Vec<SystemThread>) {
    run.abort.store(true, Ordering::Relaxed);
    run.start.signal();
    for thread in threads {
        thread.join();
    }
}

/// What one timestamp pair costs, nanoseconds (every wait figure includes one).
fn timing_cost_ns(frequency: i64) -> u64 {
    let begun = time::ticks();
    for _ in 0..TIMING_SAMPLES {
        let a = time::ticks();
        let b = time::ticks();
        core::hint::black_box((a, b));
    }
    time::ticks_to_ns(time::ticks() - begun, frequency) / TIMING_SAMPLES.unsigned_abs()
}

/// locktorture's parameter list, for the start and end lines.
struct Parameters<'a>(&'a Setup, u32);

impl core::fmt::Display for Parameters<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let (setup, dpc_workers) = (self.0, self.1);
        let q = &setup.request;
        write!(
            f,
            "variant={} writers={} readers={} dpc_workers={} context={} iterations={} \
             duration_ms={} hold_us={} long_hold_us={} long_hold_per_mille={} delay_us={} \
             stutter_ms={} seed={} processors={} busted={}",
            setup.plan.variant.name,
            q.writers,
            q.readers,
            dpc_workers,
            context::irql_name(setup.plan.thread_context),
            q.iterations,
            q.duration_ms,
            q.hold_us,
            q.long_hold_us,
            q.long_hold_per_mille,
            q.delay_us,
            q.stutter_ms,
            q.seed,
            setup.processors,
            u8::from(setup.busted())
        )
    }
}

/// The processors workers use: all, or the first `max_processors`.
const fn used_processors(setup: &Setup) -> u32 {
    let m = setup.request.max_processors;
    if m != 0 && m < setup.processors {
        m
    } else {
        setup.processors
    }
}

/// The workers' slots: writer threads, reader threads, then one DPC worker per processor used
/// (on shared primitives every other DPC worker reads; with `threaded_dpcs`, every other one is
/// a threaded DPC). Pinned: workers reach their slot by address.
fn build_slots<L: TortureOps>(
    setup: &Setup,
    run_ptr: *const Run<L>,
    dpc_workers: u32,
    used: u32,
) -> Result<Pin<Box<[Slot<L>]>>, NTSTATUS> {
    let q = setup.request;
    let info = setup.plan.primitive.info();
    let threads = q.threads();
    let workers = threads + dpc_workers;
    let remaining = if q.iterations == 0 {
        u64::MAX
    } else {
        u64::from(q.iterations)
    };
    let mut table = Vec::new();
    if table.try_reserve_exact(workers as usize).is_err() {
        return Err(wdk_sys::STATUS_INSUFFICIENT_RESOURCES);
    }
    for i in 0..workers {
        let (kind, worker_role, processor) = if i < threads {
            let r = if i < q.writers {
                role::WRITER
            } else {
                role::READER
            };
            (worker_kind::THREAD, r, i % used)
        } else {
            let j = i - threads;
            let kind = if setup.plan.variant.threaded_dpcs && j % 2 == 1 {
                worker_kind::THREADED_DPC
            } else {
                worker_kind::DPC
            };
            let r = if info.shared && j % 2 == 1 {
                role::READER
            } else {
                role::WRITER
            };
            (kind, r, j)
        };
        table.push(Slot {
            run: run_ptr,
            id: u64::from(i) + 1,
            role: worker_role,
            kind,
            processor,
            remaining: AtomicU64::new(remaining),
            stats: UnsafeCell::new(WorkerStats {
                kind,
                role: worker_role,
                processor,
                irql: u32::from(if kind == worker_kind::THREAD {
                    context::irql(setup.plan.thread_context)
                } else {
                    2
                }),
                ..WorkerStats::default()
            }),
            histogram: UnsafeCell::new([0; HISTOGRAM_BUCKETS]),
            rng: UnsafeCell::new(
                q.seed ^ (u64::from(i) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            ),
            dpc: Dpc::new(),
            idle: AtomicBool::new(true),
            done: AtomicBool::new(false),
            next_due: AtomicI64::new(0),
            invocations: AtomicU64::new(0),
            busy_ticks: AtomicU64::new(0),
            max_invocation_ticks: AtomicU64::new(0),
        });
    }
    Ok(Box::into_pin(table.into_boxed_slice()))
}

/// Runs one stress test of `L`, until it ends or `stop` is set. `PASSIVE_LEVEL`.
pub fn run<L: TortureOps>(
    setup: &Setup,
    stop: &AtomicBool,
) -> Result<Box<StressResponse>, NTSTATUS> {
    let q = setup.request;
    let info = setup.plan.primitive.info();
    let dpc_workers = q.dpc_workers(setup.processors);
    let used = used_processors(setup).max(1);
    wdk::println!(
        "synclab: {}: Start of test: {}",
        info.name,
        Parameters(setup, dpc_workers)
    );
    let frequency = time::frequency();
    let run = pool::try_pin(Run {
        ops: L::try_new(setup)?,
        protected: Protected::default(),
        request: q,
        variant: setup.plan.variant,
        name: info.name,
        start: Event::try_new()?,
        started: AtomicI64::new(0),
        stop_at: AtomicI64::new(i64::MAX),
        stutter_ticks: i64::from(q.stutter_ms) * frequency / 1000,
        frequency,
        writers_share: setup.busted() && info.shared,
        busted: setup.busted(),
        overlapped: AtomicBool::new(false),
        max_readers: AtomicU64::new(0),
        logged: AtomicU32::new(0),
        abort: AtomicBool::new(false),
        stop: core::ptr::from_ref(stop),
    })?;
    let run_ptr: *const Run<L> = &raw const *run;
    let threads = q.threads();
    let slots = build_slots(setup, run_ptr, dpc_workers, used)?;
    let (thread_slots, dpc_slots) = slots.split_at(threads as usize);

    let spawned = spawn_threads(&run, thread_slots)?;
    for slot in dpc_slots {
        let context: PVOID = core::ptr::from_ref(slot).cast_mut().cast();
        let threaded = slot.kind == worker_kind::THREADED_DPC;
        // SAFETY: the slot is pinned in the boxed slice, and the run waits for every DPC
        // worker to go idle for good and flushes DPCs before freeing it; its context is the
        // slot itself.
        let status = unsafe {
            slot.dpc
                .init(dpc_worker::<L>, context, slot.processor, threaded)
        };
        if let Err(status) = status {
            abort(&run, spawned);
            return Err(status);
        }
    }

    let timing_cost = timing_cost_ns(frequency);
    let started = time::ticks();
    run.started.store(started, Ordering::Relaxed);
    if q.duration_ms > 0 {
        let span = i64::from(q.duration_ms) * frequency / 1000;
        run.stop_at
            .store(started.saturating_add(span), Ordering::Relaxed);
    }
    run.start.signal();
    kick(&run, dpc_slots, thread_slots);
    for thread in spawned {
        thread.join();
    }
    dpc::flush(); // the last DPC runs have returned
    let elapsed = time::ticks() - started;
    Ok(report::<L>(
        setup,
        &run,
        &slots,
        dpc_workers,
        time::ticks_to_ns(elapsed, frequency),
        timing_cost,
    ))
}

/// The request thread's loop while the run goes on, at `PASSIVE_LEVEL`: queues each idle DPC
/// worker's next batch when it is due, until no DPC worker has work left and every thread has
/// finished.
fn kick<L: TortureOps>(run: &Run<L>, dpc_slots: &[Slot<L>], thread_slots: &[Slot<L>]) {
    let longest_nap = run.us_to_ticks(1000);
    let shortest_nap = run.us_to_ticks(50).max(1);
    loop {
        let now = time::ticks();
        let mut nap = longest_nap;
        let mut dpcs_busy = false;
        for slot in dpc_slots {
            if slot.done.load(Ordering::Relaxed) {
                continue;
            }
            if !slot.idle.load(Ordering::Acquire) {
                dpcs_busy = true;
                continue;
            }
            if !run.has_work(slot) {
                slot.done.store(true, Ordering::Relaxed);
                continue;
            }
            dpcs_busy = true;
            let due = slot.next_due.load(Ordering::Relaxed);
            if now >= due && !run.paused(now) {
                slot.idle.store(false, Ordering::Relaxed);
                if !slot.dpc.queue() {
                    // Cannot happen (an idle DPC is not queued); never spin on it.
                    slot.idle.store(true, Ordering::Relaxed);
                }
            } else {
                nap = nap.min(due - now);
            }
        }
        let threads_busy = thread_slots.iter().any(|s| run.has_work(s));
        if !dpcs_busy && !threads_busy {
            break;
        }
        // Until the next batch is due (at least 50 us, at most 1 ms); the kernel's timer
        // resolution may stretch it, which only lowers the DPC workers' duty cycle.
        time::sleep_ticks(nap.clamp(shortest_nap, longest_nap), run.frequency);
    }
}

/// Sums the workers' figures into a response, decides the verdict and logs the end of the test
/// (totals, fairness, and locktorture's one-line verdict with the parameters). `PASSIVE_LEVEL`.
fn report<L: TortureOps>(
    setup: &Setup,
    run: &Run<L>,
    slots: &[Slot<L>],
    dpc_workers: u32,
    elapsed_ns: u64,
    timing_cost_ns: u64,
) -> Box<StressResponse> {
    let mut r = Box::new(StressResponse::new(setup.request));
    r.processors = setup.processors;
    r.worker_count = u32::try_from(slots.len().min(MAX_WORKERS)).unwrap_or(0);
    for (i, slot) in slots.iter().enumerate().take(MAX_WORKERS) {
        // SAFETY: every worker has finished (threads joined, DPCs idle for good and flushed),
        // so nothing else touches the slot any more.
        let w = unsafe { *slot.stats.get() };
        // SAFETY: the histogram, like the stats, is no longer written by its finished worker.
        let histogram = unsafe { &*slot.histogram.get() };
        r.workers[i] = w;
        r.total_acquisitions += w.acquisitions;
        r.writes += w.writes;
        r.reads += w.reads;
        r.contended += w.contended;
        r.exclusion_violations += w.exclusion_violations;
        r.reader_violations += w.reader_violations;
        r.irql_violations += w.irql_violations;
        r.restore_violations += w.restore_violations;
        r.apc_violations += w.apc_violations;
        r.recursion_violations += w.recursion_violations;
        r.max_wait_ns = r.max_wait_ns.max(w.max_wait_ns);
        for (total, n) in r.latency_histogram.iter_mut().zip(histogram) {
            *total += n;
        }
        r.dpc_invocations += slot.invocations.load(Ordering::Relaxed);
        r.dpc_busy_ns += time::ticks_to_ns(
            i64::try_from(slot.busy_ticks.load(Ordering::Relaxed)).unwrap_or(i64::MAX),
            run.frequency,
        );
        r.dpc_max_invocation_ns = r.dpc_max_invocation_ns.max(time::ticks_to_ns(
            i64::try_from(slot.max_invocation_ticks.load(Ordering::Relaxed)).unwrap_or(i64::MAX),
            run.frequency,
        ));
    }
    r.protected_counter = run.protected.counter.load(Ordering::Relaxed);
    r.max_concurrent_readers = run.max_readers.load(Ordering::Relaxed);
    r.elapsed_ns = elapsed_ns;
    r.cancelled = u32::from(run.stopped());
    r.timing_cost_ns = timing_cost_ns;
    (r.verdict, r.inconclusive_reason) = r.decide();
    let name = run.name;
    let max = r
        .workers()
        .iter()
        .map(|w| w.acquisitions)
        .max()
        .unwrap_or(0);
    let min = r
        .workers()
        .iter()
        .map(|w| w.acquisitions)
        .min()
        .unwrap_or(0);
    wdk::println!(
        "synclab: {}: Writes: {} Reads: {} Counter: {} Contended: {} Max readers: {} Max/Min: {}/{}{} Fail: {}{}",
        name,
        r.writes,
        r.reads,
        r.protected_counter,
        r.contended,
        r.max_concurrent_readers,
        max,
        min,
        if max / 2 > min { " ???" } else { "" },
        r.violations(),
        if r.violations() > 0 { " !!!" } else { "" }
    );
    wdk::println!(
        "synclab: {}: DPC invocations: {} longest: {} ns busy: {} ns; timestamp pair: {} ns; elapsed: {} ns",
        name,
        r.dpc_invocations,
        r.dpc_max_invocation_ns,
        r.dpc_busy_ns,
        r.timing_cost_ns,
        r.elapsed_ns
    );
    let word = match r.verdict {
        verdict::SUCCESS => "SUCCESS",
        verdict::FAILURE => "FAILURE",
        _ => "INCONCLUSIVE",
    };
    wdk::println!(
        "synclab: {}: End of test: {}: {}",
        name,
        word,
        Parameters(setup, dpc_workers)
    );
    r
}
