//! WDF request helpers: typed input parsed with zerocopy, typed output copied as bytes, and
//! completion. IRQL <= `DISPATCH_LEVEL`.

use core::ptr;

use wdk_sys::{call_unsafe_wdf_function_binding, NTSTATUS, PVOID, WDFREQUEST};
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
