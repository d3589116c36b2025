//! System threads, owned: a [`SystemThread`] is joined when dropped, so no thread outlives the
//! data it was given.

use core::ptr;

use wdk_sys::{HANDLE, NTSTATUS, PVOID};

/// A running system thread. Dropping it waits for the thread to end.
pub struct SystemThread {
    /// Referenced thread object (`PETHREAD`).
    object: PVOID,
}

impl SystemThread {
    /// Starts `routine(context)` in a new system thread at `PASSIVE_LEVEL`.
    /// IRQL: `PASSIVE_LEVEL`.
    ///
    /// # Errors
    /// The NTSTATUS of `PsCreateSystemThread` or `ObReferenceObjectByHandle`.
    ///
    /// # Safety
    /// `context` must stay valid, for what `routine` does with it, until the returned
    /// [`SystemThread`] is joined or dropped.
    pub unsafe fn spawn(
        routine: unsafe extern "C" fn(PVOID),
        context: PVOID,
    ) -> Result<Self, NTSTATUS> {
        let mut handle: HANDLE = ptr::null_mut();
        // SAFETY: `handle` is writable; NULL attributes, process and client id are allowed for a
        // driver thread; the caller keeps `context` valid for the thread's life; PASSIVE_LEVEL
        // is this function's contract.
        let status = unsafe {
            wdk_sys::ntddk::PsCreateSystemThread(
                &raw mut handle,
                wdk_sys::THREAD_ALL_ACCESS,
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
                Some(routine),
                context,
            )
        };
        if !wdk_sys::NT_SUCCESS(status) {
            return Err(status);
        }
        let mut object: PVOID = ptr::null_mut();
        // SAFETY: reading the kernel's exported `PsThreadType` variable, which is set before
        // drivers load and never written afterwards.
        let thread_type_ptr = unsafe { wdk_sys::PsThreadType };
        // SAFETY: `PsThreadType` points to the thread object type, valid for the kernel's life.
        let thread_type = unsafe { *thread_type_ptr };
        #[allow(clippy::cast_possible_truncation, reason = "KernelMode is 0")]
        let mode = wdk_sys::_MODE::KernelMode as wdk_sys::KPROCESSOR_MODE;
        // SAFETY: `handle` is the kernel handle just created; `object` is writable.
        let status = unsafe {
            wdk_sys::ntddk::ObReferenceObjectByHandle(
                handle,
                wdk_sys::SYNCHRONIZE,
                thread_type,
                mode,
                &raw mut object,
                ptr::null_mut(),
            )
        };
        // SAFETY: `handle` is open and owned here; the object reference (if any) keeps the
        // thread object alive without it.
        let _ = unsafe { wdk_sys::ntddk::ZwClose(handle) };
        if wdk_sys::NT_SUCCESS(status) {
            Ok(Self { object })
        } else {
            Err(status)
        }
    }

    /// Waits for the thread to end. IRQL: `PASSIVE_LEVEL`.
    pub fn join(self) {
        drop(self);
    }

    /// Gives up ownership as the referenced thread object, for storage in an atomic slot; the
    /// thread is neither waited on nor dereferenced until [`SystemThread::from_raw`] takes it
    /// back.
    #[must_use]
    pub const fn into_raw(self) -> PVOID {
        let object = self.object;
        core::mem::forget(self);
        object
    }

    /// Takes ownership back of a thread object given up by [`SystemThread::into_raw`].
    ///
    /// # Safety
    /// `object` came from `into_raw` and is taken back exactly once.
    #[must_use]
    pub const unsafe fn from_raw(object: PVOID) -> Self {
        Self { object }
    }
}

impl Drop for SystemThread {
    fn drop(&mut self) {
        #[allow(clippy::cast_possible_truncation, reason = "KernelMode is 0")]
        let mode = wdk_sys::_MODE::KernelMode as wdk_sys::KPROCESSOR_MODE;
        // SAFETY: `object` is a referenced thread object (a dispatcher object, signaled when the
        // thread ends); an infinite non-alertable kernel wait at PASSIVE_LEVEL is allowed.
        let _ = unsafe {
            wdk_sys::ntddk::KeWaitForSingleObject(
                self.object,
                wdk_sys::_KWAIT_REASON::Executive,
                mode,
                0,
                ptr::null_mut(),
            )
        };
        // SAFETY: drops the reference taken in `spawn`, exactly once.
        let _ = unsafe { wdk_sys::ntddk::ObfDereferenceObject(self.object) };
    }
}
