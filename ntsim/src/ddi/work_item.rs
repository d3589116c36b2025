//! I/O work items (ddi.md 13.5): `IoAllocateWorkItem`, `IoFreeWorkItem`, `IoQueueWorkItem`,
//! `IoSizeofWorkItem`, `IoInitializeWorkItem`, `IoUninitializeWorkItem`, `IoQueueWorkItemEx`.
//!
//! A queued work item runs its routine at `PASSIVE_LEVEL` on a system worker thread (a host
//! thread with a [`ContextKind::WorkItem`] context), and when the routine returns the kernel's
//! worker checks apply: IRQL at or above `DISPATCH_LEVEL` is 0xE1
//! `WORKER_THREAD_RETURNED_AT_BAD_IRQL` (P1 routine, P2 IRQL, P3 context, P4 work item); an
//! unbalanced `CombinedApcDisable` is 0x1 `APC_INDEX_MISMATCH` (P1 routine, P2 0, P3 the value,
//! P4 1 = worker routine). A work item still queued or running when the driver unloads is 0xCE.
//!
//! ntsim has no WDM `DEVICE_OBJECT` (the KMDF device has none to hand out): `IoAllocateWorkItem`
//! accepts any non-null device object pointer, and `IoInitializeWorkItem` the driver object (or
//! any non-null I/O object). The object is only passed back to the routine. Items from
//! `IoAllocateWorkItem` are pool charged to the driver (tag `IoWk`), so one never freed shows at
//! unload. Not modelled: the reference the I/O manager takes on the device object, work queue
//! priorities (every queue type runs the same way), and queuing an item that is already queued
//! or freeing one that is queued (the driver's bug on Windows; ntsim never touches the item's
//! memory after queuing it, so it stays memory-safe, but does not report it).

use std::{
    collections::HashSet,
    sync::{Arc, Mutex, PoisonError},
};

use wdk_sys::{
    PDEVICE_OBJECT, PIO_WORKITEM, PIO_WORKITEM_ROUTINE, PIO_WORKITEM_ROUTINE_EX, PVOID, ULONG,
    WORK_QUEUE_TYPE,
};

use crate::{
    bugcheck::{code, verifier},
    context::{self, enter, irql, ContextKind, Ctx, Entry},
    machine::{self, MachineInner},
    pool,
};

/// Size of ntsim's `IO_WORKITEM`.
pub const WORK_ITEM_SIZE: usize = WORK_ITEM_SIZE_ULONG as usize;
const WORK_ITEM_SIZE_ULONG: ULONG = 64;
/// Pool tag of work items from `IoAllocateWorkItem` (`IoWk`).
pub const WORK_ITEM_TAG: u32 = u32::from_le_bytes(*b"IoWk");
/// First word of an initialised work item.
const MAGIC: u64 = u64::from_le_bytes(*b"ntsimWI\0");

/// Work items queued or running on a machine.
#[derive(Default)]
pub struct Tracker {
    pending: Mutex<HashSet<usize>>,
}

impl Tracker {
    /// How many work items are queued or running.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    fn insert(&self, item: usize) -> bool {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(item)
    }

    fn remove(&self, item: usize) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&item);
    }

    fn contains(&self, item: usize) -> bool {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&item)
    }
}

fn require_max(e: &Entry, max: u8, object: usize) {
    let level = e.irql.get();
    if level > max {
        e.bugcheck(
            code::DRIVER_VERIFIER_DETECTED_VIOLATION,
            [
                verifier::API_AT_WRONG_IRQL,
                u64::from(level),
                object as u64,
                u64::from(max),
            ],
            format!("{} at IRQL {level}: requires IRQL <= {max}", e.ddi),
        );
    }
}

fn words(e: &Entry, item: PIO_WORKITEM) -> *mut u64 {
    let words = item.cast::<u64>();
    if words.is_null() || !words.is_aligned() {
        e.bugcheck(
            code::DRIVER_VERIFIER_DETECTED_VIOLATION,
            [verifier::INVALID_SYNC_OBJECT_ADDRESS, item as u64, 0, 0],
            format!("{} on an invalid work item {item:p}", e.ddi),
        );
    }
    words
}

/// Writes a fresh work item for `io_object`.
///
/// # Safety
/// `words` must be writable for [`WORK_ITEM_SIZE`] bytes and 8-byte aligned.
const unsafe fn write_item(words: *mut u64, io_object: usize) {
    // SAFETY: forwarded caller guarantee.
    unsafe { words.cast::<u8>().write_bytes(0, WORK_ITEM_SIZE) };
    // SAFETY: word 0 is inside the item.
    unsafe { words.write(MAGIC) };
    // SAFETY: word 1 is inside the item.
    unsafe { words.wrapping_add(1).write(io_object as u64) };
}

/// The I/O object of an initialised work item; bug checks on anything else.
fn io_object(e: &Entry, item: PIO_WORKITEM) -> usize {
    let words = words(e, item);
    // SAFETY: non-null and aligned (checked); the DDI contract makes it a work item of
    // WORK_ITEM_SIZE bytes that the driver keeps alive.
    let magic = unsafe { words.read() };
    if magic != MAGIC {
        e.bugcheck(
            code::DRIVER_VERIFIER_DETECTED_VIOLATION,
            [verifier::INVALID_SYNC_OBJECT_ADDRESS, item as u64, magic, 0],
            format!(
                "{} on {item:p}, which is not an initialised work item",
                e.ddi
            ),
        );
    }
    // SAFETY: as above; word 1 holds the I/O object.
    let object = unsafe { words.wrapping_add(1).read() };
    usize::try_from(object).unwrap_or(0)
}

export! {
    /// Allocates a work item for `DeviceObject` (NULL when `DeviceObject` is NULL or pool is
    /// exhausted). IRQL <= `DISPATCH_LEVEL`.
    fn IoAllocateWorkItem(DeviceObject: PDEVICE_OBJECT) -> PIO_WORKITEM {
        let e = enter("IoAllocateWorkItem");
        require_max(&e, irql::DISPATCH, DeviceObject as usize);
        if DeviceObject.is_null() {
            return std::ptr::null_mut();
        }
        let block = pool::allocate(Some(e.machine.pool), WORK_ITEM_SIZE, 16, WORK_ITEM_TAG, true);
        if block.is_null() {
            return std::ptr::null_mut();
        }
        // SAFETY: a fresh, 16-aligned pool block of WORK_ITEM_SIZE bytes.
        unsafe { write_item(block.cast(), DeviceObject as usize) };
        block.cast()
    }
}

export! {
    /// Frees a work item from `IoAllocateWorkItem`. IRQL <= `DISPATCH_LEVEL`.
    fn IoFreeWorkItem(IoWorkItem: PIO_WORKITEM) {
        let e = enter("IoFreeWorkItem");
        require_max(&e, irql::DISPATCH, IoWorkItem as usize);
        io_object(&e, IoWorkItem);
        if e.machine.work_items.contains(IoWorkItem as usize) {
            e.machine.log_line(format!(
                "ntsim: IoFreeWorkItem({IoWorkItem:p}) while the work item is queued or running"
            ));
        }
        if pool::free_checked(e.machine.pool, IoWorkItem.cast(), Some(WORK_ITEM_TAG)).is_err() {
            e.bugcheck(
                code::BAD_POOL_CALLER,
                [0x7, 0, IoWorkItem as u64, 0],
                format!("IoFreeWorkItem({IoWorkItem:p}): not allocated by IoAllocateWorkItem"),
            );
        }
    }
}

export! {
    /// The size of an `IO_WORKITEM`, for `IoInitializeWorkItem`. Any IRQL.
    fn IoSizeofWorkItem() -> ULONG {
        let _e = enter("IoSizeofWorkItem");
        WORK_ITEM_SIZE_ULONG
    }
}

export! {
    /// Initialises a work item in caller storage of `IoSizeofWorkItem()` bytes for `IoObject`
    /// (the driver or a device object). IRQL <= `DISPATCH_LEVEL`.
    fn IoInitializeWorkItem(IoObject: PVOID, IoWorkItem: PIO_WORKITEM) {
        let e = enter("IoInitializeWorkItem");
        require_max(&e, irql::DISPATCH, IoWorkItem as usize);
        let words = words(&e, IoWorkItem);
        // SAFETY: non-null and aligned (checked); the DDI contract makes it writable for
        // IoSizeofWorkItem() bytes.
        unsafe { write_item(words, IoObject as usize) };
    }
}

export! {
    /// Uninitialises a work item from `IoInitializeWorkItem`. IRQL <= `DISPATCH_LEVEL`.
    fn IoUninitializeWorkItem(IoWorkItem: PIO_WORKITEM) {
        let e = enter("IoUninitializeWorkItem");
        require_max(&e, irql::DISPATCH, IoWorkItem as usize);
        let words = words(&e, IoWorkItem);
        io_object(&e, IoWorkItem);
        // SAFETY: an initialised work item (checked), writable per the DDI contract.
        unsafe { words.write(0) };
    }
}

/// What a worker runs.
#[derive(Clone, Copy)]
enum Routine {
    Classic(unsafe extern "C" fn(PDEVICE_OBJECT, PVOID)),
    Ex(unsafe extern "C" fn(PVOID, PVOID, PIO_WORKITEM)),
}

impl Routine {
    fn address(self) -> u64 {
        match self {
            Self::Classic(f) => f as usize as u64,
            Self::Ex(f) => f as usize as u64,
        }
    }
}

/// A queued work item, moved to its worker thread.
struct Job {
    routine: Routine,
    item: usize,
    io_object: usize,
    context: usize,
}

fn queue(e: &Entry, item: PIO_WORKITEM, routine: Option<Routine>, context: PVOID) {
    require_max(e, irql::DISPATCH, item as usize);
    let io_object = io_object(e, item);
    let Some(routine) = routine else {
        e.bugcheck(
            code::DRIVER_VERIFIER_DETECTED_VIOLATION,
            [verifier::INVALID_SYNC_OBJECT_ADDRESS, item as u64, 0, 0],
            format!("{} with a NULL worker routine", e.ddi),
        );
    };
    e.machine.work_items.insert(item as usize);
    let job = Job {
        routine,
        item: item as usize,
        io_object,
        context: context as usize,
    };
    let machine = Arc::clone(&e.machine);
    let processor = e.processor.get();
    let spawned = std::thread::Builder::new()
        .name("ntsim-worker".into())
        .stack_size(machine.config.stack_size)
        .spawn(move || run(&machine, processor, &job));
    if let Err(error) = spawned {
        e.machine.work_items.remove(item as usize);
        e.bugcheck(
            code::DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS,
            [0; 4],
            format!("ntsim cannot start a worker thread: {error}"),
        );
    }
}

fn run(machine: &Arc<MachineInner>, processor: u32, job: &Job) {
    let ctx = machine::install_context(
        machine,
        ContextKind::WorkItem,
        "system worker thread".to_owned(),
        processor,
        0,
    );
    if machine.is_dead() {
        return;
    }
    let (device, context, item) = (
        job.io_object as PVOID,
        job.context as PVOID,
        job.item as PIO_WORKITEM,
    );
    match job.routine {
        // SAFETY: the driver registered this routine with this I/O object and context; it runs
        // at PASSIVE_LEVEL in a system worker thread, as its contract expects.
        Routine::Classic(f) => ctx.call_driver(|| unsafe { f(device.cast(), context) }),
        // SAFETY: as above, for the Ex form, which also receives the work item.
        Routine::Ex(f) => ctx.call_driver(|| unsafe { f(device, context, item) }),
    }
    finish(&ctx, job);
    machine.work_items.remove(job.item);
    machine.notify();
}

/// The checks the kernel's worker makes when a work item's routine returns (ddi.md 13.5).
fn finish(ctx: &Ctx, job: &Job) {
    let routine = job.routine.address();
    let level = ctx.irql.get();
    if level >= irql::DISPATCH {
        context::raise(
            ctx,
            code::WORKER_THREAD_RETURNED_AT_BAD_IRQL,
            [
                routine,
                u64::from(level),
                job.context as u64,
                job.item as u64,
            ],
            "work item return",
            format!("work item routine {routine:#x} returned at IRQL {level}"),
        );
    }
    // Owning a mutex also disables APCs, so this comes before the APC check (ddi.md 13.5).
    if let Some(mutex) = ctx.machine.dispatcher.mutex_owned_by(ctx.uid) {
        context::raise(
            ctx,
            code::SYSTEM_EXIT_OWNED_MUTEX,
            [routine, mutex as u64, job.item as u64, 0],
            "work item return",
            format!("work item routine {routine:#x} returned owning the kernel mutex {mutex:#x}"),
        );
    }
    let combined = ctx.combined_apc_disable();
    if combined != 0 {
        context::raise(
            ctx,
            code::APC_INDEX_MISMATCH,
            [routine, 0, u64::from(combined), 1],
            "work item return",
            format!(
                "work item routine {routine:#x} returned with CombinedApcDisable {combined:#x} \
                 (unbalanced critical or guarded region)"
            ),
        );
    }
    if level != irql::PASSIVE {
        ctx.set_irql(irql::PASSIVE);
    }
}

export! {
    /// Queues a work item: `WorkerRoutine(DeviceObject, Context)` runs later at `PASSIVE_LEVEL`
    /// on a system worker thread. IRQL <= `DISPATCH_LEVEL`.
    fn IoQueueWorkItem(
        IoWorkItem: PIO_WORKITEM,
        WorkerRoutine: PIO_WORKITEM_ROUTINE,
        QueueType: WORK_QUEUE_TYPE,
        Context: PVOID,
    ) {
        let e = enter("IoQueueWorkItem");
        let _ = QueueType;
        queue(&e, IoWorkItem, WorkerRoutine.map(Routine::Classic), Context);
    }
}

export! {
    /// Queues a work item: `WorkerRoutine(IoObject, Context, IoWorkItem)` runs later at
    /// `PASSIVE_LEVEL` on a system worker thread. IRQL <= `DISPATCH_LEVEL`.
    fn IoQueueWorkItemEx(
        IoWorkItem: PIO_WORKITEM,
        WorkerRoutine: PIO_WORKITEM_ROUTINE_EX,
        QueueType: WORK_QUEUE_TYPE,
        Context: PVOID,
    ) {
        let e = enter("IoQueueWorkItemEx");
        let _ = QueueType;
        queue(&e, IoWorkItem, WorkerRoutine.map(Routine::Ex), Context);
    }
}
