//! Debugging and system information: `KeBugCheckEx`, the `DbgPrint` sink, `RtlGetVersion`.
//!
//! `DbgPrint` and `DbgPrintEx` are C-variadic, which stable Rust cannot define; they live in
//! `csrc/dbgprint.c`, which formats with Windows' conventions (LLP64 `%l`, `%I64`, `%ws`,
//! `%wZ`) and hands the text to [`ntsim_debug_output`].

use std::ffi::{c_char, CStr};

use wdk_sys::{NTSTATUS, PRTL_OSVERSIONINFOW, ULONG, ULONG_PTR};

use crate::context::{enter, try_current};

/// Windows version ntsim reports (and models: Windows 8 and later semantics).
pub const OS_VERSION: (u32, u32, u32) = (10, 0, 26100);

export! {
    /// Stops the machine with the driver's code and parameters.
    fn KeBugCheckEx(
        BugCheckCode: ULONG,
        BugCheckParameter1: ULONG_PTR,
        BugCheckParameter2: ULONG_PTR,
        BugCheckParameter3: ULONG_PTR,
        BugCheckParameter4: ULONG_PTR,
    ) -> ! {
        let e = enter("KeBugCheckEx");
        e.bugcheck(
            BugCheckCode,
            [BugCheckParameter1, BugCheckParameter2, BugCheckParameter3, BugCheckParameter4],
            "the driver called KeBugCheckEx",
        )
    }
}

export! {
    /// Fills an `RTL_OSVERSIONINFOW` with [`OS_VERSION`].
    fn RtlGetVersion(lpVersionInformation: PRTL_OSVERSIONINFOW) -> NTSTATUS {
        let _e = enter("RtlGetVersion");
        // SAFETY: the DDI contract makes the argument a writable RTL_OSVERSIONINFOW whose
        // dwOSVersionInfoSize the caller set.
        let Some(info) = (unsafe { lpVersionInformation.as_mut() }) else {
            return wdk_sys::STATUS_INVALID_PARAMETER;
        };
        info.dwMajorVersion = OS_VERSION.0;
        info.dwMinorVersion = OS_VERSION.1;
        info.dwBuildNumber = OS_VERSION.2;
        info.dwPlatformId = 2;
        wdk_sys::STATUS_SUCCESS
    }
}

/// Receives the formatted text of a `DbgPrint`/`DbgPrintEx` call from the C shim.
///
/// # Safety
/// `text` must point to a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ntsim_debug_output(text: *const c_char) {
    // A DDI entry, so the log's memory is the kernel's, not charged to the driver's pool.
    let entry = try_current().map(|_| enter("DbgPrint"));
    // SAFETY: the C shim passes its NUL-terminated buffer.
    let line = unsafe { CStr::from_ptr(text) }.to_string_lossy();
    let line = line.trim_end_matches(['\r', '\n']).to_owned();
    match entry {
        Some(e) => e.machine.log_line(line),
        None => eprintln!("[DbgPrint outside a machine] {line}"),
    }
}
