//! Requests.
//!
//! `WdfRequestRetrieveInputBuffer`/`OutputBuffer` (`METHOD_BUFFERED`: one system buffer),
//! `WdfRequestComplete`, `WdfRequestCompleteWithInformation`,
//! `WdfRequestSetInformation`, `WdfRequestGetIoQueue`.

use wdk_sys::{NTSTATUS, PVOID, ULONG_PTR, WDFQUEUE, WDFREQUEST};

use super::{check_handle, Kind};
use crate::{
    bugcheck::{code, wdf as sub},
    context::{enter, Ctx, Entry},
};

/// An I/O request in flight.
pub struct Request {
    /// The IOCTL code.
    pub code: u32,
    buffer: Box<[u8]>,
    /// Input length.
    pub in_len: usize,
    /// Output length.
    pub out_len: usize,
    information: u64,
    queue: usize,
    /// Status and information once completed.
    pub completion: Option<(NTSTATUS, u64)>,
}

impl Request {
    /// A device-control request carrying `buffer` (input copied in, room for the output).
    pub(crate) const fn new(code: u32, buffer: Box<[u8]>, in_len: usize, out_len: usize) -> Self {
        Self {
            code,
            buffer,
            in_len,
            out_len,
            information: 0,
            queue: 0,
            completion: None,
        }
    }

    pub(crate) const fn with_queue(mut self, queue: usize) -> Self {
        self.queue = queue;
        self
    }

    /// The system buffer, after completion.
    pub(crate) fn into_buffer(self) -> Box<[u8]> {
        self.buffer
    }

    const fn method(&self) -> u32 {
        self.code & 0x3
    }
}

fn check_request(e: &Entry, request: WDFREQUEST) {
    check_handle(
        e,
        request as usize,
        "uncompleted WDFREQUEST",
        |k| matches!(k, Kind::Request(r) if r.completion.is_none()),
    );
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
    let mut table = e.machine.io.objects.lock();
    let Some(super::Object {
        kind: Kind::Request(r),
        ..
    }) = table.map.get_mut(&(request as usize))
    else {
        return wdk_sys::STATUS_INVALID_DEVICE_REQUEST;
    };
    if r.method() == 3 {
        // METHOD_NEITHER has no system buffer.
        return wdk_sys::STATUS_INVALID_DEVICE_REQUEST;
    }
    let available = if output { r.out_len } else { r.in_len };
    if available == 0 || available < minimum {
        return wdk_sys::STATUS_BUFFER_TOO_SMALL;
    }
    let ptr: PVOID = r.buffer.as_mut_ptr().cast();
    drop(table);
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

/// Completes `handle` with `status` and `information` (or the value set before).
pub(crate) fn complete(ctx: &Ctx, handle: usize, status: NTSTATUS, information: Option<u64>) {
    let mut table = ctx.machine.io.objects.lock();
    if let Some(super::Object {
        kind: Kind::Request(r),
        ..
    }) = table.map.get_mut(&handle)
    {
        let information = information.unwrap_or(r.information);
        r.completion = Some((status, information));
    }
    drop(table);
    ctx.machine.io.objects.completed.notify_all();
}

fn complete_checked(e: &Entry, request: WDFREQUEST, status: NTSTATUS, information: Option<u64>) {
    let completed = e
        .machine
        .io
        .objects
        .lock()
        .map
        .get(&(request as usize))
        .map(|o| matches!(&o.kind, Kind::Request(r) if r.completion.is_some()));
    if completed == Some(true) {
        e.bugcheck(
            code::WDF_VIOLATION,
            [sub::REQUEST_ALREADY_COMPLETED, request as u64, 0, 0],
            format!(
                "{} of request {request:p}, which is already completed",
                e.ddi
            ),
        );
    }
    check_request(e, request);
    complete(e, request as usize, status, information);
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
        let mut table = e.machine.io.objects.lock();
        if let Some(super::Object { kind: Kind::Request(r), .. }) = table.map.get_mut(&(Request as usize)) {
            r.information = Information;
        }
    }
}

wdf_export! {
    /// The queue that delivered the request.
    fn WdfRequestGetIoQueue as PFN_WDFREQUESTGETIOQUEUE(Request: WDFREQUEST) -> WDFQUEUE {
        let e = enter("WdfRequestGetIoQueue");
        check_request(&e, Request);
        let table = e.machine.io.objects.lock();
        match table.map.get(&(Request as usize)) {
            Some(super::Object { kind: Kind::Request(r), .. }) => r.queue as WDFQUEUE,
            _ => std::ptr::null_mut(),
        }
    }
}
