//! WDF request helpers: typed input parsed with zerocopy, typed output copied as bytes, and
//! completion. IRQL <= `DISPATCH_LEVEL`.

use core::ptr;

use wdk_sys::{
    call_unsafe_wdf_function_binding, NTSTATUS, PVOID, WDFFILEOBJECT, WDFQUEUE, WDFREQUEST,
};
use zerocopy::{Immutable, IntoBytes};

/// The request's input buffer as bytes, for `parse` to read a copy of a `T` from.
///
/// # Errors
/// `STATUS_BUFFER_TOO_SMALL` (input shorter than `T`) or the framework's status.
pub fn read_input<T>(
    request: WDFREQUEST,
    parse: impl FnOnce(&[u8]) -> Result<T, NTSTATUS>,
) -> Result<T, NTSTATUS> {
    let mut buffer: PVOID = ptr::null_mut();
    let mut length: usize = 0;
    // SAFETY: `request` is the live request of the current callback; the out pointers are
    // writable locals.
    let status = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfRequestRetrieveInputBuffer,
            request,
            core::mem::size_of::<T>(),
            &raw mut buffer,
            &raw mut length
        )
    };
    if !wdk_sys::NT_SUCCESS(status) {
        return Err(status);
    }
    // SAFETY: on success the framework returned a buffer of `length` readable bytes (the
    // METHOD_BUFFERED system buffer, kernel memory) that stays valid until the request is
    // completed, which happens after `parse` has copied what it needs.
    let bytes = unsafe { core::slice::from_raw_parts(buffer.cast::<u8>(), length) };
    parse(bytes)
}

/// Copies `value` into the request's output buffer; returns the bytes written.
///
/// # Errors
/// `STATUS_BUFFER_TOO_SMALL` (output shorter than `T`) or the framework's status.
pub fn write_output<T: IntoBytes + Immutable>(
    request: WDFREQUEST,
    value: &T,
) -> Result<usize, NTSTATUS> {
    let bytes = value.as_bytes();
    let mut buffer: PVOID = ptr::null_mut();
    let mut length: usize = 0;
    // SAFETY: `request` is the live request of the current callback; the out pointers are
    // writable locals.
    let status = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfRequestRetrieveOutputBuffer,
            request,
            bytes.len(),
            &raw mut buffer,
            &raw mut length
        )
    };
    if !wdk_sys::NT_SUCCESS(status) {
        return Err(status);
    }
    // SAFETY: the framework returned `length >= bytes.len()` writable bytes valid until
    // completion; `bytes` is a separate, initialised value, so the ranges do not overlap.
    unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), buffer.cast::<u8>(), bytes.len()) };
    Ok(bytes.len())
}

/// Completes the request with `status` and `information` bytes.
pub fn complete(request: WDFREQUEST, status: NTSTATUS, information: usize) {
    // SAFETY: `request` is live and not yet completed (each handler completes exactly once).
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfRequestCompleteWithInformation,
            request,
            status,
            information as u64
        );
    }
}

/// Marks the request cancelable with `cancel` as its `EvtRequestCancel`
/// (`WdfRequestMarkCancelableEx`). IRQL <= `DISPATCH_LEVEL`.
///
/// # Errors
/// `STATUS_CANCELLED` when the request was cancelled already: the callback will not run, and
/// the caller completes the request itself.
pub fn mark_cancelable(
    request: WDFREQUEST,
    cancel: unsafe extern "C" fn(WDFREQUEST),
) -> Result<(), NTSTATUS> {
    // SAFETY: `request` is live, owned by the driver and not yet completed; the callback is a
    // driver function that stays loaded while the request exists.
    let status = unsafe {
        call_unsafe_wdf_function_binding!(WdfRequestMarkCancelableEx, request, Some(cancel))
    };
    if wdk_sys::NT_SUCCESS(status) {
        Ok(())
    } else {
        Err(status)
    }
}

/// Makes the request non-cancelable again before completing it (`WdfRequestUnmarkCancelable`).
/// IRQL <= `DISPATCH_LEVEL`.
///
/// # Errors
/// `STATUS_CANCELLED` when its `EvtRequestCancel` has run or is about to run: the caller must
/// not complete the request until that callback has returned.
pub fn unmark_cancelable(request: WDFREQUEST) -> Result<(), NTSTATUS> {
    // SAFETY: `request` is live and was marked cancelable by `mark_cancelable`.
    let status = unsafe { call_unsafe_wdf_function_binding!(WdfRequestUnmarkCancelable, request) };
    if wdk_sys::NT_SUCCESS(status) {
        Ok(())
    } else {
        Err(status)
    }
}

/// The queue that delivered the request (`WdfRequestGetIoQueue`). IRQL <= `DISPATCH_LEVEL`.
#[must_use]
pub fn queue(request: WDFREQUEST) -> WDFQUEUE {
    // SAFETY: `request` is a live request the framework delivered to this driver.
    unsafe { call_unsafe_wdf_function_binding!(WdfRequestGetIoQueue, request) }
}

/// The framework file object the request was issued on (`WdfRequestGetFileObject`); null when
/// the device's file-object class needs none. IRQL <= `DISPATCH_LEVEL`.
#[must_use]
pub fn file_object(request: WDFREQUEST) -> WDFFILEOBJECT {
    // SAFETY: `request` is a live request the framework delivered to this driver.
    unsafe { call_unsafe_wdf_function_binding!(WdfRequestGetFileObject, request) }
}
