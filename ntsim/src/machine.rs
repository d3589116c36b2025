//! The emulated machine: processors, pool, objects, the I/O path, and its life and death.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Condvar, Mutex, PoisonError,
    },
    time::{Duration, Instant},
};

use crate::{
    bugcheck::BugCheck,
    context::{self, ContextKind, Ctx},
    ddi::queued_spin_lock::QueueHandles,
    dispatcher::Dispatcher,
    io::IoState,
    objects::Objects,
    pool::{PoolAccount, TagStats},
    processor::Processors,
    thread,
};

/// How to build a machine.
#[derive(Clone, Debug)]
pub struct MachineConfig {
    /// Virtual processors (`KeQueryActiveProcessorCountEx`). Any number from 1 to 64, whatever
    /// the host has: 8 or 64 can be emulated on 2 host cores.
    pub processors: u32,
    /// How long a context may spin for a spin lock or a processor before ntsim declares the
    /// hang Windows would have (0x133 `DPC_WATCHDOG_VIOLATION` naming the lock and its holder).
    pub spin_budget: Duration,
    /// How long a host-side call ([`Machine::run`], an IOCTL) waits before reporting the machine
    /// hung.
    pub hang_budget: Duration,
    /// Single-DPC time limit of the DPC watchdog (errata 6: seconds, as on Windows; default
    /// 20 s = 0x500 clock ticks). A DPC routine running longer is 0x133 with P1 = 0.
    /// `Duration::ZERO` disables it (`KeQueryDpcWatchdogInformation` then reports 0).
    pub dpc_time_limit: Duration,
    /// Cumulative limit of the DPC watchdog: how long a processor may stay at `DISPATCH_LEVEL`
    /// or above without dropping below (DPCs back to back, a spin lock held, a raised thread).
    /// Default 120 s = 0x1E00 clock ticks, as Windows reports it; exceeding it is 0x133 with
    /// P1 = 1. `Duration::ZERO` disables it.
    pub dpc_watchdog_limit: Duration,
    /// Stack size of emulated threads. Kernel stacks are 24 KiB; the default is larger because
    /// ntsim's own code runs on the same stack in unoptimised builds.
    pub stack_size: usize,
    /// Also print `DbgPrint` output to standard error as it happens.
    pub echo_debug_output: bool,
    /// Driver Verifier's deadlock detection: lock-order cycles are 0xC4/0x1001.
    pub deadlock_detection: bool,
    /// Judges the callbacks of a KMDF queue whose execution level is not
    /// `WdfExecutionLevelPassive` (`EvtIoDeviceControl`, `EvtIoDefault`) as running at
    /// `DISPATCH_LEVEL`, where KMDF may call them: a blocking `KeWaitFor…` (0xC4/0x121 without a
    /// timeout, 0xC4/0x3B with a nonzero one), a `KeDelayExecutionThread` with a nonzero
    /// interval (0xC4/0x2000F) or a `PsCreateSystemThread` (0xC4/0x2001C) in one is reported
    /// with P2 = 2 (ntsim convention: ntsim itself runs them at the caller's IRQL). On by
    /// default, as such a callback is a bug on Windows whenever KMDF calls it at
    /// `DISPATCH_LEVEL`; turn it off only to study something else in a driver that has it.
    pub dispatch_level_callback_checks: bool,
}

impl Default for MachineConfig {
    fn default() -> Self {
        let host = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Self {
            processors: u32::try_from(host.min(64)).unwrap_or(1),
            spin_budget: Duration::from_secs(30),
            hang_budget: Duration::from_secs(600),
            dpc_time_limit: Duration::from_secs(20),
            dpc_watchdog_limit: Duration::from_secs(120),
            stack_size: 512 * 1024,
            echo_debug_output: false,
            deadlock_detection: true,
            dispatch_level_callback_checks: true,
        }
    }
}

impl MachineConfig {
    /// The default configuration with `processors` virtual processors.
    #[must_use]
    pub fn with_processors(processors: u32) -> Self {
        Self {
            processors,
            ..Self::default()
        }
    }
}

/// Shared state of one machine. Emulated contexts hold it through their [`Ctx`].
pub struct MachineInner {
    /// The configuration it was built with.
    pub config: MachineConfig,
    /// When it booted (`KeQueryPerformanceCounter` counts from here).
    pub boot: Instant,
    /// Virtual processors and their DPC queues.
    pub processors: Processors,
    /// Pool accounting.
    pub pool: &'static PoolAccount,
    /// The lock-order graph (deadlock detection), shared with the pool, which forgets the
    /// locks of freed memory.
    pub lock_order: &'static crate::lock_order::LockOrder,
    /// Handles and referenced objects.
    pub objects: Objects,
    /// Dispatcher objects and waits.
    pub dispatcher: Dispatcher,
    /// The driver, its device, queues and open files.
    pub io: IoState,
    /// Executive resources (`ERESOURCE`) initialised and not deleted, with their owners and
    /// waiters.
    pub resources: crate::ddi::resource::Resources,
    /// Which contexts hold run-down protection on which references (ddi.md 9, 13.3).
    pub rundown: crate::ddi::rundown::Tracker,
    /// Work items queued or running (ddi.md 13.5).
    pub work_items: crate::ddi::work_item::Tracker,
    /// The `KLOCK_QUEUE_HANDLE`s in use (in-stack queued spin locks).
    pub queue_handles: QueueHandles,
    dead: AtomicBool,
    bugcheck: Mutex<Option<BugCheck>>,
    changed: Condvar,
    changed_lock: Mutex<()>,
    uid: AtomicU64,
    log: Mutex<Vec<String>>,
    shutdown: AtomicBool,
    contexts: Mutex<std::collections::HashMap<u64, String>>,
}

impl MachineInner {
    /// Records a context's name, for messages that name a lock's holder.
    pub fn register_context(&self, uid: u64, name: &str) {
        self.contexts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(uid, name.to_owned());
    }

    /// The name of the context with `uid`.
    pub fn context_name(&self, uid: u64) -> Option<String> {
        self.contexts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&uid)
            .cloned()
    }

    /// A fresh identifier for a context or object.
    pub fn next_uid(&self) -> u64 {
        self.uid.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether the machine has bugchecked.
    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }

    /// Whether the machine is being torn down by its host handle.
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    /// The bug check, if any.
    pub fn bugcheck(&self) -> Option<BugCheck> {
        self.bugcheck
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records a bug check (the first wins) and wakes everything that waits.
    pub fn die(&self, bugcheck: BugCheck) {
        {
            let mut slot = self.bugcheck.lock().unwrap_or_else(PoisonError::into_inner);
            if slot.is_none() {
                *slot = Some(bugcheck);
            }
        }
        self.dead.store(true, Ordering::Release);
        self.notify();
        self.dispatcher.wake_all();
        self.processors.wake_all();
    }

    /// Wakes host-side waiters (completions, bug checks).
    pub fn notify(&self) {
        let _guard = self
            .changed_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.changed.notify_all();
    }

    /// Waits until `done` returns `Some`, the machine dies, or the hang budget runs out.
    ///
    /// # Errors
    /// The bug check, or [`HostError::Hung`] when the budget ran out.
    pub fn wait_host<T>(&self, done: impl FnMut() -> Option<T>) -> Result<T, HostError> {
        self.wait_host_for(|| "a host call into the machine".to_owned(), done)
    }

    /// [`Self::wait_host`], with `waiting_for` describing what is awaited when the hang budget
    /// runs out (it is called then, and only then).
    ///
    /// # Errors
    /// The bug check, or [`HostError::Hung`] naming what was awaited.
    pub fn wait_host_for<T>(
        &self,
        waiting_for: impl FnOnce() -> String,
        mut done: impl FnMut() -> Option<T>,
    ) -> Result<T, HostError> {
        let deadline = Instant::now() + self.config.hang_budget;
        let mut guard = self
            .changed_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loop {
            // A dead machine answers every host call with its bug check, even when the value
            // asked for happens to be there.
            if let Some(b) = self.bugcheck() {
                return Err(HostError::BugCheck(b));
            }
            if let Some(v) = done() {
                return Ok(v);
            }
            let now = Instant::now();
            if now >= deadline {
                drop(guard);
                return Err(HostError::Hung {
                    budget: self.config.hang_budget,
                    waiting_for: waiting_for(),
                });
            }
            let step = (deadline - now).min(Duration::from_millis(20));
            guard = self
                .changed
                .wait_timeout(guard, step)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Appends a line to the debug log (`DbgPrint` output and ntsim notes).
    pub fn log_line(&self, line: String) {
        if self.config.echo_debug_output {
            eprintln!("[ntsim] {line}");
        }
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
    }

    /// Nanoseconds since boot.
    pub fn now_nanos(&self) -> u64 {
        u64::try_from(self.boot.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Processor count as a `u32`.
    pub const fn processor_count(&self) -> u32 {
        self.config.processors
    }
}

/// Why a host-side call into a machine did not return a value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// The machine bugchecked.
    #[error("{0}")]
    BugCheck(BugCheck),
    /// Nothing completed within the hang budget and no bug check was raised.
    #[error(
        "the emulated machine made no progress for {budget:?} (hang budget) waiting for \
         {waiting_for}"
    )]
    Hung {
        /// The hang budget (`MachineConfig::hang_budget`).
        budget: Duration,
        /// What the host call was waiting for (e.g. the requests still outstanding).
        waiting_for: String,
    },
}

/// A host-side handle to one emulated machine.
///
/// ```
/// use ntsim::{Machine, MachineConfig};
/// let machine = Machine::new(MachineConfig::with_processors(4));
/// assert_eq!(machine.run(|| 2 + 2).unwrap(), 4);
/// ```
pub struct Machine {
    inner: Arc<MachineInner>,
}

impl Machine {
    /// Boots a machine.
    ///
    /// # Panics
    /// When `config.processors` is not in `1..=64`.
    #[must_use]
    pub fn new(config: MachineConfig) -> Self {
        assert!(
            (1..=64).contains(&config.processors),
            "ntsim emulates 1 to 64 processors (asked for {})",
            config.processors
        );
        install_panic_hook();
        let processors = Processors::new(config.processors);
        let lock_order = crate::lock_order::LockOrder::leak_new();
        let pool = PoolAccount::leak_new(lock_order);
        let inner = Arc::new(MachineInner {
            boot: Instant::now(),
            processors,
            pool,
            lock_order,
            objects: Objects::default(),
            dispatcher: Dispatcher::default(),
            io: IoState::default(),
            resources: crate::ddi::resource::Resources::default(),
            rundown: crate::ddi::rundown::Tracker::default(),
            work_items: crate::ddi::work_item::Tracker::default(),
            queue_handles: QueueHandles::default(),
            dead: AtomicBool::new(false),
            bugcheck: Mutex::new(None),
            changed: Condvar::new(),
            changed_lock: Mutex::new(()),
            uid: AtomicU64::new(1),
            log: Mutex::new(Vec::new()),
            shutdown: AtomicBool::new(false),
            contexts: Mutex::new(std::collections::HashMap::new()),
            config,
        });
        Processors::start_runners(&inner);
        crate::processor::start_clock(&inner);
        Self { inner }
    }

    /// The shared state, for the I/O and test helpers of this crate.
    pub(crate) const fn inner(&self) -> &Arc<MachineInner> {
        &self.inner
    }

    /// Virtual processors.
    #[must_use]
    pub fn processors(&self) -> u32 {
        self.inner.processor_count()
    }

    /// Runs `f` as the start routine of a new system thread at `PASSIVE_LEVEL`, then applies the
    /// checks Windows applies when a system thread ends (ddi.md 13.5, errata 9).
    ///
    /// # Errors
    /// The bug check raised by `f` or by the exit checks, or [`HostError::Hung`].
    pub fn run<T, F>(&self, f: F) -> Result<T, HostError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        if let Some(b) = self.bugcheck() {
            return Err(HostError::BugCheck(b));
        }
        let slot = Arc::new(Mutex::new(None));
        let out = Arc::clone(&slot);
        let inner = Arc::clone(&self.inner);
        let notify = Arc::clone(&self.inner);
        let thread = thread::spawn_system_thread(
            &inner,
            "Machine::run thread",
            Box::new(move || {
                let value = f();
                *out.lock().unwrap_or_else(PoisonError::into_inner) = Some(value);
            }),
            Some(Box::new(move || notify.notify())),
        );
        // The value is stored before the exit checks run: wait for the thread to have passed
        // them, so a bug check raised at exit is not missed.
        let what = || "the Machine::run thread to return".to_owned();
        self.inner
            .wait_host_for(what, || thread.has_exited().then_some(()))?;
        self.inner.wait_host_for(what, || {
            slot.lock().unwrap_or_else(PoisonError::into_inner).take()
        })
    }

    /// System threads that have not ended yet (a driver must have none at unload: 0xCE).
    #[must_use]
    pub fn system_threads_running(&self) -> usize {
        self.inner.objects.live_system_threads()
    }

    /// The bug check that stopped the machine, if any.
    #[must_use]
    pub fn bugcheck(&self) -> Option<BugCheck> {
        self.inner.bugcheck()
    }

    /// Everything the driver printed with `DbgPrint`/`DbgPrintEx`, and ntsim's notes.
    #[must_use]
    pub fn debug_log(&self) -> Vec<String> {
        self.inner
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Pool figures per tag (driver allocations only).
    #[must_use]
    pub fn pool_stats(&self) -> std::collections::BTreeMap<u32, TagStats> {
        self.inner.pool.stats()
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        self.inner.shutdown.store(true, Ordering::Release);
        self.inner.processors.wake_all();
        self.inner.dispatcher.wake_all();
    }
}

/// Installs a fresh context of `kind` on the current host thread.
pub(crate) fn install_context(
    machine: &Arc<MachineInner>,
    kind: ContextKind,
    name: String,
    processor: u32,
    thread_object: usize,
) -> std::rc::Rc<Ctx> {
    context::install(Ctx::new(
        Arc::clone(machine),
        kind,
        name,
        processor,
        thread_object,
    ))
}

/// Makes a panic on an emulated thread a bug check (0x52504E43, "RPNC", as `wdk-panic` on
/// windows-drivers-rs main raises): the machine stops and every host call into it returns the
/// bug check. The panic then proceeds: out of a Rust closure (`Machine::run`) it unwinds to the
/// end of its host thread; through a driver's `extern "C"` frame the process aborts, loudly.
/// The hook must not halt the thread itself: std holds its hook lock while a hook runs, and a
/// parked hook would hang the whole process at exit. Panics on host threads go to the previous
/// hook unchanged.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let Some(ctx) = context::try_current() else {
                previous(info);
                return;
            };
            let (file, line, column) = info
                .location()
                .map_or(("?", 0, 0), |l| (l.file(), l.line(), l.column()));
            let payload = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            ctx.machine.die(BugCheck {
                code: crate::bugcheck::code::RUST_PANIC,
                params: [0, file.len() as u64, u64::from(line), u64::from(column)],
                detected_in: "Rust panic",
                context: ctx.describe(),
                message: format!("panic at {file}:{line}:{column}: {payload}"),
            });
            previous(info);
        }));
    });
}
