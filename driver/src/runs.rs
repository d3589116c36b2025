//! The stress runs in flight on the device.
//!
//! `IOCTL_SYNCLAB_RUN_STRESS` never runs in the queue callback: the callback validates the
//! request, claims one of [`MAX_CONCURRENT_RUNS`] slots (or completes with
//! `STATUS_DEVICE_BUSY`), hands the request to a new passive-level control thread and returns
//! with the request pending. The control thread runs the test, writes the response, completes
//! the request and marks its slot done. Nothing else ever completes a run's request.
//!
//! Every run's request is cancelable (`WdfRequestMarkCancelableEx`) from before its thread
//! starts until the thread completes it. `EvtRequestCancel` ([`evt_request_cancel`], which may
//! run at `DISPATCH_LEVEL`) only sets the run's stop flag: the run ends within a hold slice and a
//! DPC batch, and the control thread completes the request with `STATUS_SUCCESS` and a response
//! that says it was cancelled, with the partial figures (`METHOD_BUFFERED` copies nothing back
//! under an error status). Closing the handle (`EvtFileCleanup`, [`evt_file_cleanup`]) stops the
//! file's runs too; as nobody is left to read them, those complete with `STATUS_CANCELLED` and
//! no figures. `CloseHandle` cancels nothing by itself: KMDF only flushes requests still in its
//! queues, so the driver must end its own at cleanup.
//!
//! The table lives in the default queue's framework context (zeroed memory, all atomics), so it
//! belongs to this device instance. Teardown is safe by construction: a slot's thread object
//! stays referenced until somebody has waited on it — the next run that needs the slot, or the
//! queue's cleanup callback at removal or unload, which first asks every run to stop and then
//! waits on every control thread. A control thread is never just counted out while it still
//! executes; the engine itself has waited on its workers and flushed its DPCs before returning.

use core::{
    ffi::c_void,
    sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicUsize, Ordering},
};

use synclab_protocol::limits::MAX_CONCURRENT_RUNS;
use wdk_sys::{
    call_unsafe_wdf_function_binding, NTSTATUS, PCWDF_OBJECT_CONTEXT_TYPE_INFO, PVOID,
    WDFFILEOBJECT, WDFOBJECT, WDFQUEUE, WDFREQUEST, WDF_OBJECT_CONTEXT_TYPE_INFO,
};

use crate::{
    kernel::{pool, request, thread::SystemThread},
    stress::Setup,
};

/// Slot states.
const FREE: u32 = 0;
/// Claimed by a starting or running control thread.
const RUNNING: u32 = 1;
/// The run completed its request; its thread may still be returning.
const DONE: u32 = 2;

/// One run's slot.
#[repr(C)]
struct Slot {
    state: AtomicU32,
    /// The control thread's referenced object (`SystemThread::into_raw`), null until stored.
    thread: AtomicPtr<c_void>,
    /// Set to stop the run early (cancel, cleanup); the engine polls it.
    stop: AtomicBool,
    /// The run's request (a `WDFREQUEST`'s address) from before it is marked cancelable until
    /// its cancelability is settled; 0 otherwise. `EvtRequestCancel` finds the run by it.
    request: AtomicUsize,
    /// The `WDFFILEOBJECT` the request was issued on (its address; 0 for none).
    file: AtomicUsize,
    /// The handle is gone (`EvtFileCleanup`): complete with `STATUS_CANCELLED`, no figures.
    orphaned: AtomicBool,
    /// `EvtRequestCancel` has done all it does with this slot.
    cancel_done: AtomicBool,
}

impl Slot {
    /// Makes the run's request non-cancelable again, so that it may be completed: when
    /// `WdfRequestUnmarkCancelable` says its `EvtRequestCancel` has been or is being called,
    /// waits until that callback has finished with the slot (it only sets two flags, so this is
    /// short). Then the slot forgets the request. `PASSIVE_LEVEL`.
    fn settle(&self, request: WDFREQUEST) {
        if request::unmark_cancelable(request).is_err() {
            while !self.cancel_done.load(Ordering::Acquire) {
                crate::kernel::time::sleep_ms(1);
            }
        }
        self.request.store(0, Ordering::Release);
    }
}

/// The device's runs. Valid when zeroed: framework context memory is zeroed before use.
#[repr(C)]
pub struct Runs {
    slots: [Slot; MAX_CONCURRENT_RUNS],
}

/// What a control thread owns: its request, the validated setup, and where its slot is.
struct Control {
    request: WDFREQUEST,
    setup: Setup,
    runs: *const Runs,
    slot: usize,
}

impl Runs {
    /// Waits on the control threads of finished runs and frees their slots. `PASSIVE_LEVEL`.
    fn reap(&self) {
        for slot in &self.slots {
            if slot.state.load(Ordering::Acquire) == DONE {
                let object = slot.thread.swap(core::ptr::null_mut(), Ordering::AcqRel);
                if !object.is_null() {
                    // SAFETY: the pointer came from SystemThread::into_raw when the run started,
                    // and the swap above took it out of the slot, so it is taken back once.
                    unsafe { SystemThread::from_raw(object) }.join();
                    slot.stop.store(false, Ordering::Relaxed);
                    slot.state.store(FREE, Ordering::Release);
                }
            }
        }
    }

    /// Starts `setup` on a control thread that will complete `request`, which is cancelable
    /// from now on. `PASSIVE_LEVEL` (the queue runs its callbacks at `PASSIVE_LEVEL`).
    ///
    /// # Errors
    /// `STATUS_DEVICE_BUSY` when [`MAX_CONCURRENT_RUNS`] runs are in flight; `STATUS_CANCELLED`
    /// when the request was cancelled before it could be marked cancelable; pool or thread
    /// creation failures. The request is then still the caller's to complete.
    pub fn start(&self, request: WDFREQUEST, setup: Setup) -> Result<(), NTSTATUS> {
        self.reap();
        let Some(index) = self.slots.iter().position(|s| {
            s.state
                .compare_exchange(FREE, RUNNING, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        }) else {
            wdk::println!(
                "synclab: request refused: {MAX_CONCURRENT_RUNS} runs are in flight already"
            );
            return Err(wdk_sys::STATUS_DEVICE_BUSY);
        };
        let slot = &self.slots[index];
        slot.stop.store(false, Ordering::Relaxed);
        slot.orphaned.store(false, Ordering::Relaxed);
        slot.cancel_done.store(false, Ordering::Relaxed);
        slot.file
            .store(request::file_object(request) as usize, Ordering::Relaxed);
        slot.request.store(request as usize, Ordering::Release);
        if let Err(status) = request::mark_cancelable(request, evt_request_cancel) {
            // Cancelled already: the callback will not run, and the caller completes it.
            slot.request.store(0, Ordering::Relaxed);
            slot.state.store(FREE, Ordering::Release);
            return Err(status);
        }
        let control = match pool::try_pin(Control {
            request,
            setup,
            runs: core::ptr::from_ref(self),
            slot: index,
        }) {
            Ok(control) => control,
            Err(status) => {
                slot.settle(request);
                slot.state.store(FREE, Ordering::Release);
                return Err(status);
            }
        };
        // SAFETY: the control thread takes the pinned allocation back with Box::from_raw
        // exactly once; it is neither moved nor used here afterwards.
        let raw =
            alloc::boxed::Box::into_raw(unsafe { core::pin::Pin::into_inner_unchecked(control) });
        // SAFETY: `raw` stays valid until the control thread frees it; the Runs it points to is
        // the queue's context, which the queue's cleanup keeps alive until every control thread
        // has been waited on.
        match unsafe { SystemThread::spawn(control_main, raw.cast()) } {
            Ok(thread) => {
                slot.thread.store(thread.into_raw(), Ordering::Release);
                Ok(())
            }
            Err(status) => {
                // SAFETY: the thread was not created, so `raw` is still only ours.
                drop(unsafe { alloc::boxed::Box::from_raw(raw) });
                slot.settle(request);
                slot.state.store(FREE, Ordering::Release);
                Err(status)
            }
        }
    }

    /// `EvtRequestCancel` of the run whose request is `request`: asks it to stop. Any IRQL <=
    /// `DISPATCH_LEVEL`; touches atomics only.
    fn cancel(&self, request: WDFREQUEST) -> bool {
        let Some(slot) = self
            .slots
            .iter()
            .find(|s| s.request.load(Ordering::Acquire) == request as usize)
        else {
            return false;
        };
        slot.stop.store(true, Ordering::Release);
        slot.cancel_done.store(true, Ordering::Release);
        true
    }

    /// `EvtFileCleanup` of `file`: its runs stop and, their handle gone, will complete with
    /// `STATUS_CANCELLED` and no figures. Any IRQL <= `DISPATCH_LEVEL`; touches atomics only.
    fn orphan(&self, file: WDFFILEOBJECT) -> usize {
        let mut stopped = 0;
        for slot in &self.slots {
            if slot.state.load(Ordering::Acquire) == RUNNING
                && slot.file.load(Ordering::Acquire) == file as usize
            {
                slot.orphaned.store(true, Ordering::Release);
                slot.stop.store(true, Ordering::Release);
                stopped += 1;
            }
        }
        stopped
    }

    /// Asks every run to stop and waits for every control thread: the queue's cleanup, at
    /// device removal or driver unload. `PASSIVE_LEVEL`.
    pub fn stop_all(&self) {
        for slot in &self.slots {
            slot.stop.store(true, Ordering::Release);
        }
        for slot in &self.slots {
            // A run may still be storing its thread: wait until its slot has a thread to join
            // or is free. The store follows the spawn at once, so this is short.
            while slot.state.load(Ordering::Acquire) != FREE
                && slot.thread.load(Ordering::Acquire).is_null()
            {
                crate::kernel::time::sleep_ms(1);
            }
            let object = slot.thread.swap(core::ptr::null_mut(), Ordering::AcqRel);
            if !object.is_null() {
                // SAFETY: as in `reap`: a pointer from SystemThread::into_raw, taken out of its
                // slot by this swap, so taken back once.
                unsafe { SystemThread::from_raw(object) }.join();
            }
            slot.state.store(FREE, Ordering::Release);
        }
    }
}

/// Start routine of a run's control thread. `PASSIVE_LEVEL`.
unsafe extern "C" fn control_main(context: PVOID) {
    // SAFETY: `context` is the Control that `Runs::start` leaked for this thread, which takes
    // it back exactly once, here.
    let control = unsafe { alloc::boxed::Box::from_raw(context.cast::<Control>()) };
    // SAFETY: the Runs (the queue's context) outlives every control thread: its cleanup waits
    // on each of them before the context is freed.
    let runs = unsafe { &*control.runs };
    let slot = &runs.slots[control.slot];
    let outcome = crate::stress::run_to_completion(&control.setup, &slot.stop);
    slot.settle(control.request);
    let (status, bytes) = if slot.orphaned.load(Ordering::Acquire) {
        (wdk_sys::STATUS_CANCELLED, 0)
    } else {
        match outcome {
            Ok(response) => match request::write_output(control.request, &*response) {
                Ok(bytes) => (wdk_sys::STATUS_SUCCESS, bytes),
                Err(status) => (status, 0),
            },
            Err(status) => (status, 0),
        }
    };
    request::complete(control.request, status, bytes);
    drop(control);
    slot.state.store(DONE, Ordering::Release);
}

/// `WDF_DECLARE_CONTEXT_TYPE` for [`Runs`]: the type information the framework identifies the
/// queue's context by (its address is the type's identity).
#[repr(transparent)]
pub struct ContextType(WDF_OBJECT_CONTEXT_TYPE_INFO);

// SAFETY: the type information is written once, at compile time, and only ever read (the
// framework reads its size and compares its address), so sharing it between threads is sound.
unsafe impl Sync for ContextType {}

#[allow(clippy::cast_possible_truncation, reason = "a 40-byte structure")]
const TYPE_INFO_SIZE: u32 = core::mem::size_of::<WDF_OBJECT_CONTEXT_TYPE_INFO>() as u32;

/// The type information of the queue's [`Runs`] context.
#[unsafe(link_section = ".data")]
pub static RUNS_TYPE: ContextType = ContextType(WDF_OBJECT_CONTEXT_TYPE_INFO {
    Size: TYPE_INFO_SIZE,
    ContextName: c"Runs".as_ptr(),
    ContextSize: core::mem::size_of::<Runs>(),
    UniqueType: &raw const RUNS_TYPE.0,
    EvtDriverGetUniqueContextType: None,
});

impl ContextType {
    /// For `WDF_OBJECT_ATTRIBUTES.ContextTypeInfo`.
    #[must_use]
    pub const fn get(&'static self) -> PCWDF_OBJECT_CONTEXT_TYPE_INFO {
        &raw const self.0
    }
}

/// Runs `f` on the runs of `queue` (its framework context). Any IRQL <= `DISPATCH_LEVEL`.
///
/// # Errors
/// `STATUS_INVALID_DEVICE_STATE` when the queue has no such context (never, for the default
/// queue this driver creates).
pub fn with_runs<R>(queue: WDFQUEUE, f: impl FnOnce(&Runs) -> R) -> Result<R, NTSTATUS> {
    // SAFETY: `queue` is the live default queue of the current callback, created with this
    // context type; the type information is a static.
    let context = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfObjectGetTypedContextWorker,
            queue.cast(),
            RUNS_TYPE.get()
        )
    };
    // SAFETY: the framework returned the queue's zeroed, aligned context of `size_of::<Runs>()`
    // bytes (or null), live until the queue is deleted, after its callbacks; all-zero is a valid
    // Runs (atomics only), and it is only ever reached through shared references.
    let runs = unsafe { context.cast::<Runs>().as_ref() };
    runs.map(f).ok_or(wdk_sys::STATUS_INVALID_DEVICE_STATE)
}

/// The queue's `EvtCleanupCallback`, at device removal or driver unload: stops every run and
/// waits for every control thread before the context is freed. `PASSIVE_LEVEL`.
pub extern "C" fn evt_queue_cleanup(queue: WDFOBJECT) {
    let _ = with_runs(queue.cast(), Runs::stop_all);
}

/// A run's `EvtRequestCancel` (`CancelIoEx`, or the I/O manager cancelling the caller's thread's
/// I/O): sets the run's stop flag and nothing else; the control thread completes the request.
/// IRQL <= `DISPATCH_LEVEL` (`PASSIVE_LEVEL` for this driver's passive queue).
unsafe extern "C" fn evt_request_cancel(request: WDFREQUEST) {
    let found = with_runs(request::queue(request), |runs| runs.cancel(request));
    if found != Ok(true) {
        wdk::println!("synclab: EvtRequestCancel for a request that is not a run's");
    }
}

/// The device's `EvtFileCleanup`: the last handle to `file` is closed, so its runs stop.
///
/// They complete with `STATUS_CANCELLED` (the framework only flushes requests still in its
/// queues; the ones the driver owns are its to end). `PASSIVE_LEVEL`.
///
/// # Safety
/// Called by the framework only, with the live file object being cleaned up.
pub unsafe extern "C" fn evt_file_cleanup(file: WDFFILEOBJECT) {
    // SAFETY: `file` is the live file object of this cleanup callback (the function's contract).
    let device = unsafe { call_unsafe_wdf_function_binding!(WdfFileObjectGetDevice, file) };
    // SAFETY: `device` is this driver's live device, which owns the file object.
    let queue = unsafe { call_unsafe_wdf_function_binding!(WdfDeviceGetDefaultQueue, device) };
    if let Ok(stopped @ 1..) = with_runs(queue, |runs| runs.orphan(file)) {
        wdk::println!("synclab: handle closed: {stopped} run(s) of it stop, their figures unread");
    }
}
