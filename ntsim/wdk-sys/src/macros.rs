//! The macros wdk-sys exports at its crate root.

/// Calls a KMDF API by its C name, with the API's parameters after `DriverGlobals`.
///
/// This is the host version of wdk-sys's macro: the same input (the API name, then zero or more
/// comma-separated argument expressions, optionally ending with a comma), the same argument
/// coercions (each argument goes to a parameter of the API's KMDF 1.33 type), the same result
/// (`#[must_use]` when the API returns a value), and it must be used inside `unsafe`. Instead of
/// indexing the framework's function table it calls the API's typed wrapper in this crate, which
/// forwards to the ntsim emulator.
///
/// # Safety
///
/// The arguments must satisfy the API's contract in the KMDF documentation. Nothing beyond the
/// parameter types is checked.
///
/// # Examples
///
/// ```
/// use wdk_sys::*;
///
/// unsafe extern "system" fn driver_entry(
///     driver: &mut DRIVER_OBJECT,
///     registry_path: PCUNICODE_STRING,
/// ) -> NTSTATUS {
///     let mut driver_config = WDF_DRIVER_CONFIG {
///         Size: core::mem::size_of::<WDF_DRIVER_CONFIG>() as ULONG,
///         ..WDF_DRIVER_CONFIG::default()
///     };
///     let driver_handle_output = WDF_NO_HANDLE.cast::<WDFDRIVER>();
///
///     unsafe {
///         call_unsafe_wdf_function_binding!(
///             WdfDriverCreate,
///             driver as PDRIVER_OBJECT,
///             registry_path,
///             WDF_NO_OBJECT_ATTRIBUTES,
///             &mut driver_config,
///             driver_handle_output,
///         )
///     }
/// }
/// # let _ = driver_entry;
/// ```
///
/// Like wdk-sys's macro, it does not compile outside `unsafe`:
///
/// ```compile_fail,E0133
/// use wdk_sys::*;
///
/// fn acquire(spin_lock: WDFSPINLOCK) {
///     call_unsafe_wdf_function_binding!(WdfSpinLockAcquire, spin_lock);
/// }
/// ```
#[macro_export]
macro_rules! call_unsafe_wdf_function_binding {
    ($function:ident $(, $argument:expr)* $(,)?) => {
        $crate::__wdf::$function($($argument),*)
    };
}

/// Debug-asserts that the caller runs at `IRQL <= APC_LEVEL`, like the WDK's `PAGED_CODE()`.
///
/// Put it first in every function placed in a pageable (`PAGE`) section. The check calls
/// [`ntddk::KeGetCurrentIrql`](crate::ntddk::KeGetCurrentIrql), which ntsim implements from the
/// calling thread's emulated IRQL.
#[macro_export]
#[allow(non_snake_case)]
macro_rules! PAGED_CODE {
    () => {
        debug_assert!(
            // SAFETY: KeGetCurrentIrql has no preconditions: it is callable at any IRQL and only
            // reads the current processor's (here: the emulated thread's) IRQL.
            unsafe { $crate::ntddk::KeGetCurrentIrql() <= $crate::APC_LEVEL as u8 }
        );
    };
}
