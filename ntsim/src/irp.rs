//! The I/O manager's view of one request (an IRP): who issued it on which file, whether it has
//! been canceled (`Irp->Cancel`), whether the dispatch routine has returned, and its
//! completion (status, information, the `METHOD_BUFFERED` system buffer).
//!
//! An [`Irp`] is shared by the host caller (which waits for it), the framework request that
//! carries it into the driver (`wdf::request`), and whoever cancels it (`CancelIoEx`, the
//! file's cleanup). Lock order: the I/O state (`io.lock()`), then an IRP's state, then the
//! framework object table; never the other way round.

use std::{
    sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use wdk_sys::NTSTATUS;

use crate::{
    context::{self, Ctx},
    machine::MachineInner,
    wdf::{self, queue::Serial, request::Request, Kind},
};

/// What the request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Major {
    /// `IRP_MJ_CREATE`, presented to `EvtDeviceFileCreate`.
    Create,
    /// `IRP_MJ_DEVICE_CONTROL`, presented to the default queue.
    DeviceControl,
}

/// Where the request is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Stage {
    /// Issued, not yet presented to the driver (possibly waiting in a sequential queue).
    #[default]
    Pending,
    /// Presented as the `WDFREQUEST` with this handle.
    Presented(usize),
    /// Completed; the handle of the completed `WDFREQUEST` kept for double-completion checks
    /// (0 when the framework completed it without presenting it).
    Completed(usize),
}

/// How a request completed.
#[derive(Debug)]
pub struct Completion {
    /// `IoStatus.Status`.
    pub status: NTSTATUS,
    /// `IoStatus.Information`.
    pub information: u64,
    /// The system buffer.
    pub buffer: Box<[u8]>,
}

impl Completion {
    /// A completion by the framework or the I/O manager itself, with no data.
    pub fn status_only(status: NTSTATUS) -> Self {
        Self {
            status,
            information: 0,
            buffer: Box::default(),
        }
    }
}

#[derive(Default)]
struct State {
    stage: Stage,
    /// `Irp->Cancel`.
    cancel: bool,
    /// The I/O manager's call into the driver has returned (with the result, or
    /// `STATUS_PENDING`).
    dispatched: bool,
    completion: Option<Completion>,
    /// The host has taken the result, or will never ask for it.
    released: bool,
    /// The sequential queue it waits in, so a cancel can wake the waiter.
    waiting_in: Option<Arc<Serial>>,
}

/// One I/O request.
pub struct Irp {
    /// Unique within the machine; names the request in messages.
    pub id: u64,
    /// The file it was issued on.
    pub file: u64,
    /// What it asks for.
    pub major: Major,
    /// The IOCTL code (0 for a create).
    pub code: u32,
    /// The caller's output length.
    pub out_len: usize,
    state: Mutex<State>,
    done: Condvar,
}

impl Irp {
    /// A new pending request.
    pub fn new(id: u64, file: u64, major: Major, code: u32, out_len: usize) -> Arc<Self> {
        Arc::new(Self {
            id,
            file,
            major,
            code,
            out_len,
            state: Mutex::new(State::default()),
            done: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Names the request and where it is, for messages.
    pub fn describe(&self) -> String {
        let what = match self.major {
            Major::Create => "create request".to_owned(),
            Major::DeviceControl => format!("IOCTL {:#010X}", self.code),
        };
        let state = self.lock();
        let cancel = if state.cancel { ", canceled" } else { "" };
        let position = match state.stage {
            Stage::Pending => "not yet presented to the driver".to_owned(),
            Stage::Presented(h) => format!("owned by the driver as WDFREQUEST {h:#x}"),
            Stage::Completed(_) => "completed".to_owned(),
        };
        format!(
            "request #{} ({what} on file {}, {position}{cancel})",
            self.id, self.file
        )
    }

    /// Whether the dispatch routine has returned.
    pub fn is_dispatched(&self) -> bool {
        self.lock().dispatched
    }

    /// Records that the dispatch routine has returned.
    pub fn mark_dispatched(&self, machine: &MachineInner) {
        self.lock().dispatched = true;
        machine.notify();
    }

    /// Whether the request has completed.
    pub fn is_complete(&self) -> bool {
        matches!(self.lock().stage, Stage::Completed(_))
    }

    /// Whether `Irp->Cancel` is set.
    pub fn cancel_requested(&self) -> bool {
        self.lock().cancel
    }

    /// Takes the completion, once there is one.
    pub fn take_completion(&self) -> Option<Completion> {
        self.lock().completion.take()
    }

    /// Records the sequential queue the request waits in.
    pub fn set_waiting_in(&self, serial: Option<Arc<Serial>>) {
        self.lock().waiting_in = serial;
    }

    /// Waits, on an emulated context, until the request completes; halts the context if the
    /// machine dies meanwhile.
    pub fn wait_in_kernel(&self, ctx: &Ctx) -> Completion {
        let mut state = self.lock();
        loop {
            if let Some(completion) = state.completion.take() {
                return completion;
            }
            if ctx.machine.is_dead() || ctx.machine.is_shutting_down() {
                drop(state);
                context::halt();
            }
            state = self
                .done
                .wait_timeout(state, Duration::from_millis(20))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// Presents `irp` to the driver as a new `WDFREQUEST` carrying `request`, and returns its
/// handle; or, when the request was canceled before it reached the driver, completes it with
/// `STATUS_CANCELLED` (as KMDF does for a request canceled in its queue) and returns `None`.
pub fn present(machine: &Arc<MachineInner>, irp: &Arc<Irp>, request: Request) -> Option<usize> {
    let mut state = irp.lock();
    if state.cancel {
        drop(state);
        finish(
            machine,
            irp,
            Completion::status_only(wdk_sys::STATUS_CANCELLED),
            0,
        );
        return None;
    }
    let handle = machine
        .io
        .objects
        .lock()
        .insert(Kind::Request(Box::new(request)));
    state.stage = Stage::Presented(handle);
    state.waiting_in = None;
    Some(handle)
}

/// Completes `irp` (`IoCompleteRequest`): records the result, wakes its waiters, and does the
/// I/O manager's bookkeeping for its file (the synchronous handle's lock, the close that
/// waits for the last request). `handle` is the completed `WDFREQUEST` (0 if none).
pub fn finish(machine: &Arc<MachineInner>, irp: &Arc<Irp>, completion: Completion, handle: usize) {
    let forget = {
        let mut state = irp.lock();
        state.stage = Stage::Completed(handle);
        state.completion = Some(completion);
        state.waiting_in = None;
        state.released && handle != 0
    };
    if forget {
        machine.io.objects.lock().map.remove(&handle);
    }
    irp.done.notify_all();
    if irp.major == Major::DeviceControl {
        crate::io::request_done(machine, irp);
    }
    machine.notify();
}

/// The host no longer needs the request: once it has completed, its `WDFREQUEST` handle is
/// forgotten.
pub fn release(machine: &MachineInner, irp: &Irp) {
    let forget = {
        let mut state = irp.lock();
        state.released = true;
        match state.stage {
            Stage::Completed(handle) if handle != 0 => Some(handle),
            _ => None,
        }
    };
    if let Some(handle) = forget {
        machine.io.objects.lock().map.remove(&handle);
    }
}

/// Cancels `irp` only if it still waits in a framework queue, not yet presented to the
/// driver: what KMDF's cleanup does for the file being closed
/// (`FxPkgIo::FlushAllQueuesByFileObject`, after `EvtFileCleanup`). A request the driver already
/// owns is left alone: completing it is the driver's business in `EvtFileCleanup`, and nothing
/// sets its cancel flag.
pub fn flush_if_queued(irp: &Irp) {
    let serial = {
        let mut state = irp.lock();
        if !matches!(state.stage, Stage::Pending) {
            return;
        }
        // Under the request's lock, so it cannot be presented in between: `present` sees the
        // flag and completes it with STATUS_CANCELLED instead.
        state.cancel = true;
        state.waiting_in.clone()
    };
    if let Some(serial) = serial {
        serial.wake();
    }
}

/// Device removal (`IRP_MN_REMOVE_DEVICE`) for an outstanding request: one still waiting in a
/// queue is completed with `STATUS_CANCELLED`; one the driver owns is stopped and purged as
/// KMDF does ([`wdf::request::stop_for_removal`]).
pub fn remove(ctx: &Ctx, irp: &Irp) {
    let stage = irp.lock().stage;
    match stage {
        Stage::Pending => flush_if_queued(irp),
        Stage::Presented(handle) => wdf::request::stop_for_removal(ctx, handle),
        Stage::Completed(_) => {}
    }
}

/// `IoCancelIrp`: sets `Irp->Cancel`; a request waiting in a queue is completed with
/// `STATUS_CANCELLED` by the framework; a request the driver marked cancelable has its
/// `EvtRequestCancel` called (on this context); any other request is only flagged.
pub fn cancel(ctx: &Ctx, irp: &Irp) {
    let (stage, serial) = {
        let mut state = irp.lock();
        if matches!(state.stage, Stage::Completed(_)) {
            return;
        }
        state.cancel = true;
        (state.stage, state.waiting_in.clone())
    };
    match stage {
        Stage::Pending => {
            if let Some(serial) = serial {
                serial.wake();
            }
        }
        Stage::Presented(handle) => wdf::request::cancel_presented(ctx, handle),
        Stage::Completed(_) => {}
    }
}
