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
    time::Instant,
};

use crate::{
    bugcheck::code,
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
    /// free, else any free one; spins (yielding the host core) while all are held. A spin longer
    /// than the spin budget is the hang Windows would show as 0x133.
    pub(crate) fn take(&self, ctx: &Ctx) {
        let n = self.count();
        let start = ctx.processor.get() % n;
        let began = Instant::now();
        let mut spins: u32 = 0;
        loop {
            for step in 0..n {
                let index = (start + step) % n;
                if self.try_take(ctx, index) {
                    return;
                }
            }
            spin_pause(ctx, &mut spins, began, "a free processor", 0);
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
