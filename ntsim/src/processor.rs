//! Virtual processors.
//!
//! A context at `DISPATCH_LEVEL` or above owns a processor: no other context runs at or above
//! `DISPATCH_LEVEL` there until it drops below, exactly as no thread is dispatched on a processor
//! whose IRQL is raised. Below `DISPATCH_LEVEL` contexts float (threads at `PASSIVE_LEVEL` are
//! preemptible and migrate), remembering the processor they last ran on.
//!
//! Each processor has a DPC queue and a runner (a host thread) that, whenever the queue is not
//! empty and the processor is free, takes the processor, drains the queue at `DISPATCH_LEVEL` and
//! gives it back. So a DPC targeted at a processor never runs while another context holds that
//! processor at `DISPATCH_LEVEL`.

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Condvar, Mutex, PoisonError,
    },
    time::{Duration, Instant},
};

use crate::{
    bugcheck::{code, BugCheck},
    context::{self, irql, ContextKind, Ctx},
    machine::{self, MachineInner},
};

/// One virtual processor.
pub struct Processor {
    /// Index (group 0).
    pub index: u32,
    /// uid of the context holding this processor at `DISPATCH_LEVEL` or above; 0 when none.
    owner: AtomicU64,
    /// Queued DPC objects (addresses of `KDPC`s).
    queue: Mutex<VecDeque<usize>>,
    /// Signalled when the queue gains an entry or the machine stops.
    wake: Condvar,
    /// DPCs ever queued here.
    inserted: AtomicU64,
    /// DPCs that left this queue (ran, or were removed).
    retired: AtomicU64,
    /// When the current owner raised it to `DISPATCH_LEVEL` (nanoseconds since boot, plus 1);
    /// 0 while no context holds it. The DPC watchdog's cumulative measure.
    raised_at: AtomicU64,
    /// When the running DPC routine started (as `raised_at`); 0 when none runs.
    dpc_started: AtomicU64,
}

/// The processors of a machine.
pub struct Processors {
    cpus: Box<[Processor]>,
    /// Wakes `KeFlushQueuedDpcs` waiters when a DPC retires.
    progress: Condvar,
    progress_lock: Mutex<()>,
}

impl Processors {
    /// `count` idle processors.
    pub(crate) fn new(count: u32) -> Self {
        Self {
            cpus: (0..count)
                .map(|index| Processor {
                    index,
                    owner: AtomicU64::new(0),
                    queue: Mutex::new(VecDeque::new()),
                    wake: Condvar::new(),
                    inserted: AtomicU64::new(0),
                    retired: AtomicU64::new(0),
                    raised_at: AtomicU64::new(0),
                    dpc_started: AtomicU64::new(0),
                })
                .collect(),
            progress: Condvar::new(),
            progress_lock: Mutex::new(()),
        }
    }

    /// Number of processors.
    #[allow(clippy::cast_possible_truncation, reason = "at most 64 processors")]
    pub fn count(&self) -> u32 {
        self.cpus.len() as u32
    }

    /// Starts one DPC runner per processor.
    pub(crate) fn start_runners(machine: &Arc<MachineInner>) {
        for index in 0..machine.processors.count() {
            let machine = Arc::clone(machine);
            std::thread::Builder::new()
                .name(format!("ntsim-dpc-{index}"))
                .stack_size(machine.config.stack_size)
                .spawn(move || run_dpcs(&machine, index))
                .unwrap_or_else(|e| {
                    panic!("ntsim: cannot start the DPC runner of CPU {index}: {e}")
                });
        }
    }

    fn cpu(&self, index: u32) -> &Processor {
        &self.cpus[index as usize]
    }

    /// Takes a processor for `ctx`, which is rising to `DISPATCH_LEVEL`: its last processor if
    /// free, else any free one of its affinity (a thread with a hard affinity only ever runs on
    /// those); spins (yielding the host core) while all of them are held. A spin longer than the
    /// spin budget is the hang Windows would show as 0x133.
    pub(crate) fn take(&self, ctx: &Ctx) {
        let n = self.count();
        let allowed = ctx.affinity.get() & mask_of(n);
        let start = ctx.processor.get() % n;
        let began = Instant::now();
        let mut spins: u32 = 0;
        loop {
            for step in 0..n {
                let index = (start + step) % n;
                if allowed & (1 << index) != 0 && self.try_take(ctx, index) {
                    return;
                }
            }
            spin_pause(
                ctx,
                &mut spins,
                began,
                "a free processor of its affinity",
                0,
            );
        }
    }

    /// Takes processor `index` specifically (a DPC runner), spinning while it is held.
    pub(crate) fn take_exact(&self, ctx: &Ctx, index: u32) {
        let began = Instant::now();
        let mut spins: u32 = 0;
        while !self.try_take(ctx, index) {
            spin_pause(ctx, &mut spins, began, "its own processor", 0);
        }
    }

    fn try_take(&self, ctx: &Ctx, index: u32) -> bool {
        let cpu = self.cpu(index);
        if cpu
            .owner
            .compare_exchange(0, ctx.uid, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            cpu.raised_at
                .store(ctx.machine.now_nanos() + 1, Ordering::Release);
            ctx.processor.set(index);
            ctx.holds_cpu.set(true);
            true
        } else {
            false
        }
    }

    /// Gives back the processor `ctx` holds; its DPC runner may now drain the queue.
    pub(crate) fn give_back(&self, ctx: &Ctx) {
        let cpu = self.cpu(ctx.processor.get());
        debug_assert_eq!(cpu.owner.load(Ordering::Relaxed), ctx.uid);
        cpu.raised_at.store(0, Ordering::Release);
        cpu.owner.store(0, Ordering::Release);
        ctx.holds_cpu.set(false);
        let has_work = !cpu
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty();
        if has_work {
            cpu.wake.notify_one();
        }
    }

    /// When the context holding processor `index` raised it to `DISPATCH_LEVEL`, and when its
    /// running DPC routine started (nanoseconds since boot; `None` for not held / no DPC).
    pub fn watchdog_marks(&self, index: u32) -> (Option<u64>, Option<u64>) {
        let cpu = self.cpu(index);
        let mark = |v: u64| v.checked_sub(1);
        (
            mark(cpu.raised_at.load(Ordering::Acquire)),
            mark(cpu.dpc_started.load(Ordering::Acquire)),
        )
    }

    /// Records that a DPC routine starts (`Some(now)`) or ended (`None`) on processor `index`.
    pub(crate) fn mark_dpc(&self, index: u32, started: Option<u64>) {
        self.cpu(index)
            .dpc_started
            .store(started.map_or(0, |t| t + 1), Ordering::Release);
    }

    /// The uid of the context holding processor `index`, 0 if none.
    pub fn owner_of(&self, index: u32) -> u64 {
        self.cpu(index).owner.load(Ordering::Acquire)
    }

    /// Appends (or, for high importance, prepends) a DPC to processor `index`'s queue.
    pub(crate) fn enqueue(&self, index: u32, dpc: usize, front: bool) {
        let cpu = self.cpu(index);
        {
            let mut queue = cpu.queue.lock().unwrap_or_else(PoisonError::into_inner);
            if front {
                queue.push_front(dpc);
            } else {
                queue.push_back(dpc);
            }
            cpu.inserted.fetch_add(1, Ordering::AcqRel);
        }
        cpu.wake.notify_one();
    }

    /// A DPC queued on any processor whose `KDPC` lies in `[start, start + len)`.
    pub(crate) fn queued_within(&self, start: usize, len: usize) -> Option<usize> {
        let end = start.saturating_add(len);
        self.cpus.iter().find_map(|cpu| {
            cpu.queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .copied()
                .find(|dpc| (start..end).contains(dpc))
        })
    }

    /// Removes a queued DPC; returns whether it was queued.
    pub(crate) fn dequeue(&self, index: u32, dpc: usize) -> bool {
        let cpu = self.cpu(index);
        let removed = {
            let mut queue = cpu.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue
                .iter()
                .position(|&d| d == dpc)
                .map(|i| queue.remove(i))
        };
        if removed.is_some() {
            self.retire(index);
        }
        removed.is_some()
    }

    fn retire(&self, index: u32) {
        self.cpu(index).retired.fetch_add(1, Ordering::AcqRel);
        let _guard = self
            .progress_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.progress.notify_all();
    }

    /// `KeFlushQueuedDpcs`: returns once every DPC queued before the call has left its queue.
    pub(crate) fn flush(&self, machine: &MachineInner) {
        let marks: Vec<u64> = self
            .cpus
            .iter()
            .map(|c| c.inserted.load(Ordering::Acquire))
            .collect();
        let mut guard = self
            .progress_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loop {
            if machine.is_dead() {
                drop(guard);
                context::halt();
            }
            let done = self
                .cpus
                .iter()
                .zip(&marks)
                .all(|(c, &mark)| c.retired.load(Ordering::Acquire) >= mark);
            if done {
                return;
            }
            guard = self
                .progress
                .wait_timeout(guard, std::time::Duration::from_millis(10))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Wakes every runner (machine stopping or dead).
    pub(crate) fn wake_all(&self) {
        for cpu in &*self.cpus {
            let _queue = cpu.queue.lock().unwrap_or_else(PoisonError::into_inner);
            cpu.wake.notify_all();
        }
        let _guard = self
            .progress_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.progress.notify_all();
    }
}

/// One step of a bounded spin: yields the host core, halts if the machine died, and declares
/// the hang once the spin budget is spent. `lock` is the `KSPIN_LOCK` spun on (0 for a
/// processor).
pub(crate) fn spin_pause(ctx: &Ctx, spins: &mut u32, began: Instant, what: &str, lock: usize) {
    spin_wait(ctx, spins, began, lock as u64, || {
        let holder = if lock == 0 {
            String::new()
        } else {
            crate::ddi::spin_lock::describe_holder(&ctx.machine, lock)
        };
        format!("{what}{holder}")
    });
}

/// As [`spin_pause`], for any lock: `lock` is its address (P4 of the 0x133), and `describe`,
/// called only when the budget is spent, names what is awaited and who holds it.
pub(crate) fn spin_wait(
    ctx: &Ctx,
    spins: &mut u32,
    began: Instant,
    lock: u64,
    describe: impl FnOnce() -> String,
) {
    *spins = spins.wrapping_add(1);
    std::hint::spin_loop();
    std::thread::yield_now();
    if spins.is_multiple_of(64) {
        if ctx.machine.is_dead() {
            context::halt();
        }
        let waited = began.elapsed();
        if waited > ctx.machine.config.spin_budget {
            context::raise(
                ctx,
                code::DPC_WATCHDOG_VIOLATION,
                [
                    1,
                    u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
                    u64::try_from(ctx.machine.config.spin_budget.as_millis()).unwrap_or(u64::MAX),
                    lock,
                ],
                "spin wait",
                format!(
                    "{} spun {waited:?} at IRQL >= DISPATCH_LEVEL waiting for {} \
                     (ntsim spin budget {:?}; Windows would hang and report 0x133)",
                    ctx.name,
                    describe(),
                    ctx.machine.config.spin_budget
                ),
            );
        }
    }
}

/// The affinity mask of `count` processors (bits `0..count`).
#[must_use]
pub const fn mask_of(count: u32) -> u64 {
    if count >= 64 {
        u64::MAX
    } else {
        (1 << count) - 1
    }
}

/// Length of a clock tick (15.625 ms), the unit in which Windows reports DPC watchdog figures.
pub const CLOCK_TICK: Duration = Duration::from_micros(15_625);

/// `d` in clock ticks, rounded down.
#[must_use]
pub fn ticks(d: Duration) -> u64 {
    u64::try_from(d.as_nanos() / CLOCK_TICK.as_nanos()).unwrap_or(u64::MAX)
}

/// Starts the machine's clock: a host thread that plays the clock interrupt's DPC watchdog
/// (errata 6). Every few milliseconds it checks each processor: a DPC routine running longer
/// than `dpc_time_limit` is 0x133 (P1 = 0, P2 its ticks, P3 the limit in ticks); a processor
/// held at `DISPATCH_LEVEL` or above longer than `dpc_watchdog_limit` is 0x133 (P1 = 1, P2 the
/// limit in ticks, the watchdog period). Like the clock interrupt, it fires while the offender
/// still runs; that context halts at its next kernel call.
pub(crate) fn start_clock(machine: &Arc<MachineInner>) {
    let config = &machine.config;
    if config.dpc_time_limit.is_zero() && config.dpc_watchdog_limit.is_zero() {
        return;
    }
    let machine = Arc::clone(machine);
    std::thread::Builder::new()
        .name("ntsim-clock".into())
        .spawn(move || {
            let period = Duration::from_millis(5);
            while !machine.is_dead() && !machine.is_shutting_down() {
                std::thread::sleep(period);
                watchdog_tick(&machine);
            }
        })
        .unwrap_or_else(|e| panic!("ntsim: cannot start the clock: {e}"));
}

fn watchdog_tick(machine: &MachineInner) {
    let now = machine.now_nanos();
    let single = machine.config.dpc_time_limit;
    let cumulative = machine.config.dpc_watchdog_limit;
    for index in 0..machine.processors.count() {
        let owner = machine.processors.owner_of(index);
        if owner == 0 {
            continue;
        }
        let (raised, dpc) = machine.processors.watchdog_marks(index);
        let holder = machine
            .context_name(owner)
            .unwrap_or_else(|| format!("context {owner}"));
        if let Some(started) = dpc {
            let ran = Duration::from_nanos(now.saturating_sub(started));
            if !single.is_zero() && ran > single {
                machine.die(BugCheck {
                    code: code::DPC_WATCHDOG_VIOLATION,
                    params: [0, ticks(ran), ticks(single), 0],
                    detected_in: "DPC watchdog",
                    context: format!("{holder} on CPU {index}"),
                    message: format!(
                        "a DPC routine on CPU {index} has run {ran:?}, over the single-DPC \
                         limit {single:?}"
                    ),
                });
                return;
            }
        }
        if let Some(since) = raised {
            let held = Duration::from_nanos(now.saturating_sub(since));
            if !cumulative.is_zero() && held > cumulative {
                machine.die(BugCheck {
                    code: code::DPC_WATCHDOG_VIOLATION,
                    params: [1, ticks(cumulative), 0, 0],
                    detected_in: "DPC watchdog",
                    context: format!("{holder} on CPU {index}"),
                    message: format!(
                        "CPU {index} has stayed at DISPATCH_LEVEL or above for {held:?} \
                         (held by {holder}), over the cumulative limit {cumulative:?}"
                    ),
                });
                return;
            }
        }
    }
}

/// The DPC runner of processor `index`.
fn run_dpcs(machine: &Arc<MachineInner>, index: u32) {
    let ctx = machine::install_context(
        machine,
        ContextKind::DpcRunner,
        format!("DPC runner of CPU {index}"),
        index,
        0,
    );
    let processors = &machine.processors;
    let cpu = processors.cpu(index);
    loop {
        {
            let mut queue = cpu.queue.lock().unwrap_or_else(PoisonError::into_inner);
            while queue.is_empty() && !machine.is_dead() && !machine.is_shutting_down() {
                queue = cpu.wake.wait(queue).unwrap_or_else(PoisonError::into_inner);
            }
        }
        if machine.is_dead() || machine.is_shutting_down() {
            return;
        }
        processors.take_exact(&ctx, index);
        ctx.irql.set(irql::DISPATCH);
        loop {
            let next = cpu
                .queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop_front();
            let Some(dpc) = next else { break };
            crate::ddi::dpc::execute(&ctx, dpc);
            processors.retire(index);
        }
        ctx.irql.set(irql::PASSIVE);
        processors.give_back(&ctx);
    }
}
