//! Requests.
//!
//! `WdfRequestRetrieveInputBuffer`/`OutputBuffer` (`METHOD_BUFFERED`: one system buffer),
//! `WdfRequestComplete`, `WdfRequestCompleteWithInformation`, `WdfRequestSetInformation`,
//! `WdfRequestGetIoQueue`, `WdfRequestGetFileObject`, and cancellation:
//! `WdfRequestMarkCancelable`, `WdfRequestMarkCancelableEx`, `WdfRequestUnmarkCancelable`,
//! `WdfRequestIsCanceled`.
//!
//! Cancellation follows KMDF (`FxIoQueue::RequestCancelable`, `FxRequest::Complete`): a cancel
//! of a request the driver has not marked cancelable only sets `Irp->Cancel`; a cancel of a
//! cancelable request unmarks it and calls its `EvtRequestCancel` once, at `DISPATCH_LEVEL`
//! (at `PASSIVE_LEVEL` for a queue whose execution level is `WdfExecutionLevelPassive`),
//! and that callback is then the one that completes it. The verifier state KMDF keeps
//! (`FXREQUEST_FLAG_DRIVER_CANCELABLE`, `FXREQUEST_FLAG_CANCELLED`) is kept as `Cancelable`.

use std::sync::Arc;

use wdk_sys::{
    BOOLEAN, NTSTATUS, PFN_WDF_REQUEST_CANCEL, PVOID, ULONG_PTR, WDFFILEOBJECT, WDFQUEUE,
    WDFREQUEST,
};

use super::{callback, check_handle, verifier_break, Kind};
use crate::{
    bugcheck::{code, verifier, wdf as sub},
    context::{enter, irql, ContextKind, Ctx, Entry},
    irp::{self, Completion, Irp, Major},
    machine,
};

/// The cancel routine's signature.
type CancelRoutine = unsafe extern "C" fn(WDFREQUEST);

/// Whether the driver has marked a request cancelable.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Cancelable {
    /// Not marked (never, or unmarked with `STATUS_SUCCESS`).
    No,
    /// Marked: a cancel will call this routine (KMDF's driver-cancelable queue holds it).
    Marked(CancelRoutine),
    /// Marked, and the cancel has been (or is being) delivered to its routine
    /// (`FXREQUEST_FLAG_DRIVER_CANCELABLE | FXREQUEST_FLAG_CANCELLED`).
    Delivered,
}

/// An I/O request the driver owns.
pub(crate) struct Request {
    /// The IOCTL code (0 for a create request).
    pub code: u32,
    buffer: Box<[u8]>,
    /// Input length.
    pub in_len: usize,
    /// Output length.
    pub out_len: usize,
    information: u64,
    /// The queue that delivered it (0 for a create request, which no queue delivers).
    queue: usize,
    /// Whether its queue's callbacks run at `PASSIVE_LEVEL`.
    passive: bool,
    /// The `WDFFILEOBJECT` it was issued on (0 when the device has none).
    file_object: usize,
    /// The I/O manager's side.
    irp: Arc<Irp>,
    /// `Irp->Cancel`, as the driver sees it.
    canceled: bool,
    /// Marked cancelable, and whether the cancel was delivered.
    cancelable: Cancelable,
}

impl Request {
    /// A request for `irp` carrying `buffer` (input copied in, room for the output).
    pub(crate) fn new(
        irp: &Arc<Irp>,
        buffer: Box<[u8]>,
        in_len: usize,
        file_object: usize,
    ) -> Self {
        Self {
            code: irp.code,
            buffer,
            in_len,
            out_len: irp.out_len,
            information: 0,
            queue: 0,
            passive: false,
            file_object,
            irp: Arc::clone(irp),
            canceled: false,
            cancelable: Cancelable::No,
        }
    }

    /// Delivered by `queue`, whose callbacks run at `PASSIVE_LEVEL` when `passive`.
    pub(crate) const fn with_queue(mut self, queue: usize, passive: bool) -> Self {
        self.queue = queue;
        self.passive = passive;
        self
    }

    const fn method(&self) -> u32 {
        self.code & 0x3
    }
}

fn check_request(e: &Entry, request: WDFREQUEST) {
    check_handle(e, request as usize, "uncompleted WDFREQUEST", |k| {
        matches!(k, Kind::Request(_))
    });
}

/// 0xC4/0xE5 (P2 IRQL, P3 the request) above `DISPATCH_LEVEL`, the bound of every request
/// method here (`_IRQL_requires_max_(DISPATCH_LEVEL)` in wdfrequest.h).
fn require_dispatch_or_below(e: &Entry, request: WDFREQUEST) {
    let level = e.irql.get();
    if level > irql::DISPATCH {
        e.bugcheck(
            code::DRIVER_VERIFIER_DETECTED_VIOLATION,
            [
                verifier::API_AT_WRONG_IRQL,
                u64::from(level),
                request as u64,
                0,
            ],
            format!(
                "{} at IRQL {level}: the method requires IRQL <= DISPATCH_LEVEL",
                e.ddi
            ),
        );
    }
}

/// Runs `f` on the live, uncompleted request `handle` under the object table's lock.
fn with_request<R>(e: &Entry, handle: WDFREQUEST, f: impl FnOnce(&mut Request) -> R) -> Option<R> {
    let mut table = e.machine.io.objects.lock();
    match table.map.get_mut(&(handle as usize)) {
        Some(super::Object {
            kind: Kind::Request(r),
            ..
        }) => Some(f(r)),
        _ => None,
    }
}

/// Shared body of the two buffer retrievers.
fn retrieve(
    e: &Entry,
    request: WDFREQUEST,
    minimum: usize,
    buffer: *mut PVOID,
    length: *mut usize,
    output: bool,
) -> NTSTATUS {
    check_request(e, request);
    let found = with_request(e, request, |r| {
        if r.irp.major != Major::DeviceControl || r.method() == 3 {
            // Only reads, writes and IOCTLs have buffers; METHOD_NEITHER has no system buffer.
            return Err(wdk_sys::STATUS_INVALID_DEVICE_REQUEST);
        }
        let available = if output { r.out_len } else { r.in_len };
        if available == 0 || available < minimum {
            return Err(wdk_sys::STATUS_BUFFER_TOO_SMALL);
        }
        let ptr: PVOID = r.buffer.as_mut_ptr().cast();
        Ok((ptr, available))
    });
    let (ptr, available) = match found {
        Some(Ok(found)) => found,
        Some(Err(status)) => return status,
        None => return wdk_sys::STATUS_INVALID_DEVICE_REQUEST,
    };
    if buffer.is_null() {
        return wdk_sys::STATUS_INVALID_PARAMETER;
    }
    // SAFETY: `buffer` is non-null (checked) and writable per the KMDF contract.
    unsafe { buffer.write(ptr) };
    // SAFETY: the KMDF contract makes `length` null or writable.
    if let Some(out) = unsafe { length.as_mut() } {
        *out = available;
    }
    wdk_sys::STATUS_SUCCESS
}

wdf_export! {
    /// The input buffer (`METHOD_BUFFERED`: the system buffer). `STATUS_BUFFER_TOO_SMALL` when the
    /// input is empty or shorter than `MinimumRequiredLength`.
    fn WdfRequestRetrieveInputBuffer as PFN_WDFREQUESTRETRIEVEINPUTBUFFER(
        Request: WDFREQUEST,
        MinimumRequiredLength: usize,
        Buffer: *mut PVOID,
        Length: *mut usize,
    ) -> NTSTATUS {
        let e = enter("WdfRequestRetrieveInputBuffer");
        retrieve(&e, Request, MinimumRequiredLength, Buffer, Length, false)
    }
}

wdf_export! {
    /// The output buffer (`METHOD_BUFFERED`: the same system buffer as the input).
    /// `STATUS_BUFFER_TOO_SMALL` when the output is empty or shorter than `MinimumRequiredSize`.
    fn WdfRequestRetrieveOutputBuffer as PFN_WDFREQUESTRETRIEVEOUTPUTBUFFER(
        Request: WDFREQUEST,
        MinimumRequiredSize: usize,
        Buffer: *mut PVOID,
        Length: *mut usize,
    ) -> NTSTATUS {
        let e = enter("WdfRequestRetrieveOutputBuffer");
        retrieve(&e, Request, MinimumRequiredSize, Buffer, Length, true)
    }
}

/// Completes `handle` with `status` and `information` (or the value set before): the request
/// leaves the driver, its sequential queue may present the next one, and the I/O manager
/// completes the IRP.
pub(crate) fn complete(ctx: &Ctx, handle: usize, status: NTSTATUS, information: Option<u64>) {
    let taken = {
        let mut table = ctx.machine.io.objects.lock();
        let request = match table.map.get_mut(&handle) {
            Some(object) if matches!(object.kind, Kind::Request(_)) => {
                match std::mem::replace(&mut object.kind, Kind::CompletedRequest) {
                    Kind::Request(r) => Some(r),
                    _ => None,
                }
            }
            _ => None,
        };
        request.map(|r| {
            let serial = match table.map.get(&r.queue).map(|o| &o.kind) {
                Some(Kind::Queue(settings)) => settings.serial(),
                _ => None,
            };
            (r, serial)
        })
    };
    let Some((request, serial)) = taken else {
        return;
    };
    if let Some(serial) = serial {
        serial.release();
    }
    let information = information.unwrap_or(request.information);
    let Request { irp, buffer, .. } = *request;
    irp::finish(
        &ctx.machine,
        &irp,
        Completion {
            status,
            information,
            buffer,
        },
        handle,
    );
}

/// What a completion found.
enum Found {
    Completed,
    Live { cancelable: Option<usize> },
    Other,
}

fn complete_checked(e: &Entry, request: WDFREQUEST, status: NTSTATUS, information: Option<u64>) {
    require_dispatch_or_below(e, request);
    let found = {
        let table = e.machine.io.objects.lock();
        match table.map.get(&(request as usize)).map(|o| &o.kind) {
            Some(Kind::CompletedRequest) => Found::Completed,
            Some(Kind::Request(r)) => Found::Live {
                cancelable: match r.cancelable {
                    Cancelable::Marked(routine) => Some(routine as usize),
                    Cancelable::No | Cancelable::Delivered => None,
                },
            },
            _ => Found::Other,
        }
    };
    match found {
        Found::Completed => e.bugcheck(
            code::WDF_VIOLATION,
            [sub::REQUEST_ALREADY_COMPLETED, request as u64, 0, 0],
            format!(
                "{} of request {request:p}, which is already completed",
                e.ddi
            ),
        ),
        Found::Live {
            cancelable: Some(routine),
        } => e.bugcheck(
            code::WDF_VIOLATION,
            [
                sub::REQUEST_FATAL_ERROR,
                sub::COMPLETED_WHILE_CANCELABLE,
                request as u64,
                routine as u64,
            ],
            format!(
                "{} of request {request:p}, which is still marked cancelable (cancel routine \
                 {routine:#x}): call WdfRequestUnmarkCancelable first, and if it returns \
                 STATUS_CANCELLED leave the completion to EvtRequestCancel",
                e.ddi
            ),
        ),
        Found::Live { cancelable: None } => complete(e, request as usize, status, information),
        Found::Other => check_request(e, request),
    }
}

wdf_export! {
    /// Completes the request with `Status` and the information set before.
    fn WdfRequestComplete as PFN_WDFREQUESTCOMPLETE(Request: WDFREQUEST, Status: NTSTATUS) {
        let e = enter("WdfRequestComplete");
        complete_checked(&e, Request, Status, None);
    }
}

wdf_export! {
    /// Completes the request with `Status`; `Information` is the byte count returned.
    fn WdfRequestCompleteWithInformation as PFN_WDFREQUESTCOMPLETEWITHINFORMATION(
        Request: WDFREQUEST,
        Status: NTSTATUS,
        Information: ULONG_PTR,
    ) {
        let e = enter("WdfRequestCompleteWithInformation");
        complete_checked(&e, Request, Status, Some(Information));
    }
}

wdf_export! {
    /// Sets the information value the completion will report.
    fn WdfRequestSetInformation as PFN_WDFREQUESTSETINFORMATION(
        Request: WDFREQUEST,
        Information: ULONG_PTR,
    ) {
        let e = enter("WdfRequestSetInformation");
        check_request(&e, Request);
        with_request(&e, Request, |r| r.information = Information);
    }
}

wdf_export! {
    /// The queue that delivered the request (NULL for a create request).
    fn WdfRequestGetIoQueue as PFN_WDFREQUESTGETIOQUEUE(Request: WDFREQUEST) -> WDFQUEUE {
        let e = enter("WdfRequestGetIoQueue");
        check_request(&e, Request);
        with_request(&e, Request, |r| r.queue as WDFQUEUE).unwrap_or(std::ptr::null_mut())
    }
}

wdf_export! {
    /// The `WDFFILEOBJECT` the request was issued on; NULL when the device's file-object class
    /// is `WdfFileObjectNotRequired` (the default without `WdfDeviceInitSetFileObjectConfig`).
    /// IRQL <= `DISPATCH_LEVEL`.
    fn WdfRequestGetFileObject as PFN_WDFREQUESTGETFILEOBJECT(Request: WDFREQUEST) -> WDFFILEOBJECT {
        let e = enter("WdfRequestGetFileObject");
        require_dispatch_or_below(&e, Request);
        check_request(&e, Request);
        with_request(&e, Request, |r| r.file_object as WDFFILEOBJECT).unwrap_or(std::ptr::null_mut())
    }
}

/// What marking a request cancelable found.
enum Mark {
    /// Marked; the cancel routine will be called if the request is canceled.
    Marked,
    /// Already canceled: the caller handles it (Ex) or the cancel routine runs now.
    AlreadyCanceled { passive: bool },
    /// Not a request the driver may mark (a verifier break).
    Refused(&'static str),
}

/// Shared body of `WdfRequestMarkCancelable` and `WdfRequestMarkCancelableEx`.
fn mark_cancelable(
    e: &Entry,
    request: WDFREQUEST,
    routine: PFN_WDF_REQUEST_CANCEL,
    ex: bool,
) -> Mark {
    require_dispatch_or_below(e, request);
    check_request(e, request);
    let Some(routine) = routine else {
        e.bugcheck(
            code::WDF_VIOLATION,
            [sub::REQUIRED_PARAMETER_IS_NULL, 0, 0, 0],
            format!(
                "{} of request {request:p} with a NULL EvtRequestCancel",
                e.ddi
            ),
        );
    };
    with_request(e, request, |r| {
        if r.queue == 0 {
            return Mark::Refused("the request does not belong to any queue");
        }
        if !matches!(r.cancelable, Cancelable::No) {
            return Mark::Refused(
                "the request is already cancelable: unmark it with WdfRequestUnmarkCancelable \
                 before marking it again",
            );
        }
        if r.canceled {
            if !ex {
                // KMDF keeps it marked (the verifier flag) and delivers the cancel at once.
                r.cancelable = Cancelable::Delivered;
            }
            return Mark::AlreadyCanceled { passive: r.passive };
        }
        r.cancelable = Cancelable::Marked(routine);
        Mark::Marked
    })
    .unwrap_or(Mark::Refused("the request is not live"))
}

wdf_export! {
    /// Makes the request cancelable with `EvtRequestCancel`. If the request has already been
    /// canceled, the framework calls `EvtRequestCancel` before this returns (on the caller's
    /// context, at `DISPATCH_LEVEL`, or at `PASSIVE_LEVEL` for a passive-level queue). IRQL <=
    /// `DISPATCH_LEVEL`; a NULL routine is 0x10D/0x4; marking a request that is already
    /// cancelable, or one no queue delivered, is a verifier break (nothing happens).
    fn WdfRequestMarkCancelable as PFN_WDFREQUESTMARKCANCELABLE(
        Request: WDFREQUEST,
        EvtRequestCancel: PFN_WDF_REQUEST_CANCEL,
    ) {
        let e = enter("WdfRequestMarkCancelable");
        match mark_cancelable(&e, Request, EvtRequestCancel, false) {
            Mark::Marked => {}
            Mark::AlreadyCanceled { passive } => {
                if let Some(routine) = EvtRequestCancel {
                    invoke_cancel(&e, Request as usize, routine, passive);
                }
            }
            Mark::Refused(why) => verifier_break(&e, e.ddi, why),
        }
    }
}

wdf_export! {
    /// Makes the request cancelable with `EvtRequestCancel`; `STATUS_CANCELLED` (and not
    /// cancelable, the routine not called) when the request has already been canceled: the
    /// caller then completes it. IRQL <= `DISPATCH_LEVEL`; a NULL routine is 0x10D/0x4;
    /// `STATUS_INVALID_DEVICE_REQUEST` and a verifier break for a request that is already
    /// cancelable or that no queue delivered.
    fn WdfRequestMarkCancelableEx as PFN_WDFREQUESTMARKCANCELABLEEX(
        Request: WDFREQUEST,
        EvtRequestCancel: PFN_WDF_REQUEST_CANCEL,
    ) -> NTSTATUS {
        let e = enter("WdfRequestMarkCancelableEx");
        match mark_cancelable(&e, Request, EvtRequestCancel, true) {
            Mark::Marked => wdk_sys::STATUS_SUCCESS,
            Mark::AlreadyCanceled { .. } => wdk_sys::STATUS_CANCELLED,
            Mark::Refused(why) => {
                verifier_break(&e, e.ddi, why);
                wdk_sys::STATUS_INVALID_DEVICE_REQUEST
            }
        }
    }
}

wdf_export! {
    /// Makes a cancelable request not cancelable: `STATUS_SUCCESS` when it was still
    /// cancelable; `STATUS_CANCELLED` when it has been canceled and its `EvtRequestCancel` has
    /// been or is being called (the driver must then leave the completion to that callback).
    /// IRQL <= `DISPATCH_LEVEL`; `STATUS_INVALID_DEVICE_REQUEST` and a verifier break for a
    /// request that is not marked cancelable.
    fn WdfRequestUnmarkCancelable as PFN_WDFREQUESTUNMARKCANCELABLE(
        Request: WDFREQUEST,
    ) -> NTSTATUS {
        let e = enter("WdfRequestUnmarkCancelable");
        require_dispatch_or_below(&e, Request);
        check_request(&e, Request);
        let outcome = with_request(&e, Request, |r| {
            if r.queue == 0 {
                return Err("the request does not belong to any queue");
            }
            match r.cancelable {
                Cancelable::No => Err("the request is not cancelable"),
                Cancelable::Marked(_) => {
                    r.cancelable = Cancelable::No;
                    Ok(wdk_sys::STATUS_SUCCESS)
                }
                Cancelable::Delivered => Ok(wdk_sys::STATUS_CANCELLED),
            }
        })
        .unwrap_or(Err("the request is not live"));
        outcome.unwrap_or_else(|why| {
            verifier_break(&e, e.ddi, why);
            wdk_sys::STATUS_INVALID_DEVICE_REQUEST
        })
    }
}

wdf_export! {
    /// TRUE when the I/O manager has canceled the request (`Irp->Cancel`). Valid only on a
    /// request the driver owns and has not marked cancelable: on a cancelable one it is a
    /// verifier break and returns FALSE, as KMDF's verifier does. IRQL <= `DISPATCH_LEVEL`.
    fn WdfRequestIsCanceled as PFN_WDFREQUESTISCANCELED(Request: WDFREQUEST) -> BOOLEAN {
        let e = enter("WdfRequestIsCanceled");
        require_dispatch_or_below(&e, Request);
        check_request(&e, Request);
        let canceled =
            with_request(&e, Request, |r| matches!(r.cancelable, Cancelable::No).then_some(r.canceled));
        match canceled {
            Some(Some(canceled)) => u8::from(canceled),
            Some(None) => {
                verifier_break(
                    &e,
                    e.ddi,
                    "the request is marked cancelable: call WdfRequestUnmarkCancelable first",
                );
                0
            }
            None => 0,
        }
    }
}

/// The cancel half of `IoCancelIrp` for a request the driver owns: sets `Irp->Cancel` and, if
/// the request is cancelable, unmarks it and calls its `EvtRequestCancel` on `ctx`.
pub(crate) fn cancel_presented(ctx: &Ctx, handle: usize) {
    let fire = {
        let mut table = ctx.machine.io.objects.lock();
        match table.map.get_mut(&handle) {
            Some(super::Object {
                kind: Kind::Request(r),
                ..
            }) => {
                r.canceled = true;
                match r.cancelable {
                    Cancelable::Marked(routine) => {
                        r.cancelable = Cancelable::Delivered;
                        Some((routine, r.passive))
                    }
                    Cancelable::No | Cancelable::Delivered => None,
                }
            }
            _ => None,
        }
    };
    if let Some((routine, passive)) = fire {
        invoke_cancel(ctx, handle, routine, passive);
    }
}

/// Device removal for a request the driver owns, as KMDF stops and purges its queue
/// (`FxIoQueue::StopProcessingForPower`, `QueuePurge(TRUE, TRUE)`): a power-managed queue with
/// an `EvtIoStop` has it called with `WdfRequestStopActionPurge` (and
/// `WdfRequestStopRequestCancelable` when the request is marked cancelable), at
/// `DISPATCH_LEVEL` (`PASSIVE_LEVEL` for a passive queue); then, if the request is still marked
/// cancelable, it is canceled: `Irp->Cancel` set and `EvtRequestCancel` called. A request that
/// is not cancelable is only waited for.
pub(crate) fn stop_for_removal(ctx: &Ctx, handle: usize) {
    let found = {
        let table = ctx.machine.io.objects.lock();
        match table.map.get(&handle) {
            Some(super::Object {
                kind: Kind::Request(r),
                ..
            }) => Some((
                r.queue,
                r.passive,
                matches!(r.cancelable, Cancelable::Marked(_)),
            )),
            _ => None,
        }
    };
    let Some((queue, passive, cancelable)) = found else {
        return;
    };
    let stop = match ctx.machine.io.objects.lock().map.get(&queue) {
        Some(super::Object {
            kind: Kind::Queue(q),
            ..
        }) if q.power_managed => q.io_stop,
        _ => None,
    };
    if let Some(routine) = stop {
        use wdk_sys::_WDF_REQUEST_STOP_ACTION_FLAGS::{
            WdfRequestStopActionPurge, WdfRequestStopRequestCancelable,
        };
        let flags = WdfRequestStopActionPurge
            | if cancelable {
                WdfRequestStopRequestCancelable
            } else {
                0
            };
        let level = ctx.irql.get();
        let target = if passive {
            irql::PASSIVE
        } else {
            irql::DISPATCH
        };
        ctx.set_irql(target.max(level));
        // SAFETY: the driver registered this callback for the queue that delivered the request,
        // which it still owns (it was found live just above, and only the driver completes it).
        callback(ctx, "EvtIoStop", routine as usize, || unsafe {
            routine(
                queue as WDFQUEUE,
                handle as WDFREQUEST,
                flags.cast_unsigned(),
            );
        });
        ctx.set_irql(level);
    }
    // QueuePurge: the requests still on the driver-cancelable list are canceled.
    let fire = {
        let mut table = ctx.machine.io.objects.lock();
        match table.map.get_mut(&handle) {
            Some(super::Object {
                kind: Kind::Request(r),
                ..
            }) => match r.cancelable {
                Cancelable::Marked(routine) => {
                    r.canceled = true;
                    r.cancelable = Cancelable::Delivered;
                    Some((routine, r.passive))
                }
                Cancelable::No | Cancelable::Delivered => None,
            },
            _ => None,
        }
    };
    if let Some((routine, passive)) = fire {
        invoke_cancel(ctx, handle, routine, passive);
    }
}

/// Calls `EvtRequestCancel` for `handle`: at `DISPATCH_LEVEL` on `ctx` (KMDF may call it at any
/// IRQL <= `DISPATCH_LEVEL`; ntsim picks the highest, so a routine that waits is caught), or
/// for a passive-level queue at `PASSIVE_LEVEL` (on `ctx` when it is at `PASSIVE_LEVEL`, else on
/// a worker thread, as KMDF posts it to a work item).
fn invoke_cancel(ctx: &Ctx, handle: usize, routine: CancelRoutine, passive: bool) {
    let level = ctx.irql.get();
    let target = if passive {
        irql::PASSIVE
    } else {
        irql::DISPATCH
    };
    if level > target {
        let machine = Arc::clone(&ctx.machine);
        let spawned = std::thread::Builder::new()
            .name("ntsim-kmdf-worker".to_owned())
            .stack_size(machine.config.stack_size)
            .spawn(move || {
                let ctx = machine::install_context(
                    &machine,
                    ContextKind::WorkItem,
                    "KMDF queue worker (EvtRequestCancel)".to_owned(),
                    0,
                    0,
                );
                run_cancel(&ctx, handle, routine);
            });
        if spawned.is_err() {
            ctx.machine
                .log_line("ntsim: could not start a worker thread for EvtRequestCancel".to_owned());
        }
        return;
    }
    if level < target {
        ctx.set_irql(target);
    }
    run_cancel(ctx, handle, routine);
    if level < target {
        ctx.set_irql(level);
    }
}

fn run_cancel(ctx: &Ctx, handle: usize, routine: CancelRoutine) {
    // SAFETY: the driver registered this routine for this request, which is still live (a
    // cancelable request is completed only by its cancel routine once the cancel is delivered).
    callback(ctx, "EvtRequestCancel", routine as usize, || unsafe {
        routine(handle as WDFREQUEST);
    });
}
