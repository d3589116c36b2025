//! System threads: creation, thread objects that signal on exit, and the checks Windows
//! applies when a system thread ends (ddi.md 10.3, 13.5, errata 9).

use std::{
    cell::UnsafeCell,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use crate::{
    bugcheck::{code, verifier},
    context::{self, irql, ContextKind, Ctx},
    dispatcher::{self, object_type},
    machine::{self, MachineInner},
};

/// A thread object (`ETHREAD` stand-in). It begins with a `DISPATCHER_HEADER`, so a
/// `KeWaitFor…Object` on it works as on Windows: it is signaled when the thread ends.
#[repr(C)]
pub struct ThreadObject {
    header: UnsafeCell<[u64; 3]>,
    exited: AtomicBool,
    /// Name used in messages.
    pub name: String,
}

// SAFETY: the header is only read or written through the dispatcher functions, which require
// the machine's dispatcher lock; the other fields are immutable or atomic.
unsafe impl Sync for ThreadObject {}
// SAFETY: as above; nothing in the object is tied to a host thread.
unsafe impl Send for ThreadObject {}

impl ThreadObject {
    fn new(name: String) -> Self {
        let mut header = [0_u64; 3];
        // DISPATCHER_HEADER: Type (byte 0) = ThreadObject, Size (byte 2) in 4-byte units.
        header[0] = u64::from(object_type::THREAD) | (6_u64 << 16);
        Self {
            header: UnsafeCell::new(header),
            exited: AtomicBool::new(false),
            name,
        }
    }

    /// The object's address (`PETHREAD`).
    pub fn address(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    /// Whether the thread has ended and passed its exit checks.
    pub fn has_exited(&self) -> bool {
        self.exited.load(Ordering::Acquire)
    }

    const fn header_ptr(&self) -> *mut u8 {
        self.header.get().cast()
    }
}

/// Start routine of a system thread, as ntsim runs it.
pub type StartRoutine = Box<dyn FnOnce() + Send + 'static>;

/// Creates a system thread running `start` at `PASSIVE_LEVEL` as driver code. `on_exit` runs on
/// that thread after it ended cleanly. Returns `None` when the host cannot create a thread.
pub(crate) fn spawn_system_thread(
    machine: &Arc<MachineInner>,
    name: &str,
    start: StartRoutine,
    on_exit: Option<StartRoutine>,
) -> Arc<ThreadObject> {
    try_spawn_system_thread(machine, name, start, on_exit)
        .unwrap_or_else(|e| panic!("ntsim: cannot create a host thread: {e}"))
}

/// As [`spawn_system_thread`], reporting host failure.
pub(crate) fn try_spawn_system_thread(
    machine: &Arc<MachineInner>,
    name: &str,
    start: StartRoutine,
    on_exit: Option<StartRoutine>,
) -> std::io::Result<Arc<ThreadObject>> {
    let uid = machine.next_uid();
    let thread = Arc::new(ThreadObject::new(format!("{name} #{uid}")));
    #[allow(
        clippy::cast_possible_truncation,
        reason = "modulo a processor count <= 64"
    )]
    let ideal = (uid % u64::from(machine.processor_count())) as u32;
    machine.objects.thread_started();
    let object = Arc::clone(&thread);
    let owner = Arc::clone(machine);
    let spawned = std::thread::Builder::new()
        .name(format!("ntsim-thread-{uid}"))
        .stack_size(machine.config.stack_size)
        .spawn(move || {
            let ctx = machine::install_context(
                &owner,
                ContextKind::SystemThread,
                object.name.clone(),
                ideal,
                object.address(),
            );
            ctx.call_driver(start);
            finish(&ctx, &object);
            if let Some(on_exit) = on_exit {
                on_exit();
            }
        });
    match spawned {
        Ok(_) => Ok(thread),
        Err(e) => {
            machine.objects.thread_exited();
            Err(e)
        }
    }
}

/// Ends the current system thread: exit checks, then the thread object is signaled.
pub(crate) fn finish(ctx: &Ctx, object: &ThreadObject) {
    exit_checks(ctx);
    let machine = &ctx.machine;
    // The thread has terminated once its object is signaled (a joiner may unload the driver
    // right away), so it is counted out first.
    object.exited.store(true, Ordering::Release);
    machine.objects.thread_exited();
    {
        let mut locked = machine.dispatcher.lock();
        let header = object.header_ptr() as usize;
        // SAFETY: the header is the object's first field, 8-byte aligned, and only changed under
        // the dispatcher lock, which `locked` holds.
        unsafe { dispatcher::store_state(header, 1) };
        // SAFETY: as above; the other objects of its waiters are live while they wait.
        unsafe { locked.wait_test(header) };
    }
    machine.notify();
}

/// What Windows checks when a system thread ends (ddi.md 13.5 with errata 2, 4 and 9): a
/// `Wait = TRUE` call not followed by its wait is 0xC4/0xE5; a lock still held (or an executive resource still owned) is
/// 0xC4/0x100A;
/// a `KMUTEX` still owned is 0x4000008A (P1 thread, P2 mutex); the exit path then lowers IRQL
/// to `PASSIVE_LEVEL` (a raised IRQL alone is not fatal, ntsim logs it); an unbalanced
/// APC-disable count is 0x20.
pub(crate) fn exit_checks(ctx: &Ctx) {
    if let Some(pending) = ctx.wait_next.take() {
        crate::ddi::wait::missing_follow_up_wait(ctx, pending, "system thread exit");
    }
    let held = ctx.held.borrow().first().cloned();
    if let Some(hold) = held {
        context::raise(
            ctx,
            code::DRIVER_VERIFIER_DETECTED_VIOLATION,
            [
                verifier::THREAD_TERMINATED_OWNING_LOCK,
                hold.addr as u64,
                ctx.thread_object as u64,
                0,
            ],
            "system thread exit",
            format!(
                "{} ended still holding the lock at {:#x} (acquired with {})",
                ctx.name, hold.addr, hold.acquired_by
            ),
        );
    }
    crate::ddi::resource::exit_check(ctx);
    if let Some(mutex) = ctx.machine.dispatcher.mutex_owned_by(ctx.uid) {
        context::raise(
            ctx,
            code::THREAD_TERMINATE_HELD_MUTEX,
            [ctx.thread_object as u64, mutex as u64, 0, 0],
            "system thread exit",
            format!(
                "{} ended owning the kernel mutex at {mutex:#x} (a KMUTEX is never abandoned, \
                 errata 4)",
                ctx.name
            ),
        );
    }
    let level = ctx.irql.get();
    if level != irql::PASSIVE {
        ctx.machine.log_line(format!(
            "ntsim: {} ended at IRQL {level}; the exit path lowered it to PASSIVE_LEVEL \
             (errata 9: not a bug check by itself)",
            ctx.name
        ));
        ctx.set_irql(irql::PASSIVE);
    }
    let combined = ctx.combined_apc_disable();
    if combined != 0 {
        context::raise(
            ctx,
            code::KERNEL_APC_PENDING_DURING_EXIT,
            [0, u64::from(combined), 0, 1],
            "system thread exit",
            format!(
                "{} ended with CombinedApcDisable {combined:#x} (unbalanced critical or guarded region)",
                ctx.name
            ),
        );
    }
}
