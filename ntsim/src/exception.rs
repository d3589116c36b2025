//! Kernel exceptions that nothing handles.
//!
//! Some DDIs raise an exception instead of returning an error (`KeReleaseMutex` by a non-owner
//! raises `STATUS_MUTANT_NOT_OWNED`, `KeReleaseSemaphore` past its limit raises
//! `STATUS_SEMAPHORE_LIMIT_EXCEEDED`, ddi.md 8.3, 8.4). Driver code in ntsim cannot catch them
//! (Rust has no SEH), so every raised exception escapes, and where it escapes decides the bug
//! check (ddi.md 12.4, 13.4, errata 14): a system thread gives 0x7E
//! `SYSTEM_THREAD_EXCEPTION_NOT_HANDLED`, a system call (a KMDF I/O callback or dispatch
//! routine) 0x3B `SYSTEM_SERVICE_EXCEPTION`, anything else (a DPC) 0x1E
//! `KMODE_EXCEPTION_NOT_HANDLED`.
//!
//! P1 is the exception code. Windows puts the faulting instruction's address (and exception
//! or context records) in P2..P4, which mean nothing here: ntsim's convention is P2 = the object
//! the DDI was called on, P3 = P4 = 0.

use wdk_sys::NTSTATUS;

use crate::{
    bugcheck::code,
    context::{self, ContextKind, Entry},
};

/// The bug check code an exception escaping a context of `kind` ends in.
#[must_use]
pub const fn unhandled_code(kind: ContextKind) -> u32 {
    match kind {
        // Work items run on system worker threads.
        ContextKind::SystemThread | ContextKind::WorkItem => {
            code::SYSTEM_THREAD_EXCEPTION_NOT_HANDLED
        }
        ContextKind::Syscall => code::SYSTEM_SERVICE_EXCEPTION,
        ContextKind::DpcRunner => code::KMODE_EXCEPTION_NOT_HANDLED,
    }
}

/// Raises `status` from the DDI `e` serves; it escapes the driver and stops the machine with
/// [`unhandled_code`] (P1 `status`, P2 `object`).
pub fn raise_status(e: &Entry, status: NTSTATUS, object: usize, message: impl Into<String>) -> ! {
    let message = message.into();
    context::raise(
        e,
        unhandled_code(e.kind),
        [u64::from(status.cast_unsigned()), object as u64, 0, 0],
        e.ddi,
        format!(
            "{message}: exception {:#010X} raised and not handled",
            status.cast_unsigned()
        ),
    )
}
