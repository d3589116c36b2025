//! Direct FFI bindings to the WDF functions of the KMDF headers.
//!
//! For KMDF every `Wdf*` API is a `FORCEINLINE` stub that calls through the framework's function
//! table, so bindgen emits no function from the WDF headers and this module is empty in wdk-sys
//! as well. Call the APIs with [`call_unsafe_wdf_function_binding!`](crate::call_unsafe_wdf_function_binding).

/// Internal support for `call_unsafe_wdf_function_binding!`; not part of the public API.
#[doc(hidden)]
pub mod __private {
    /// `_WDFFUNCENUM::WdfFunctionTableNumEntries` of KMDF 1.33.
    const WDF_FUNCTION_TABLE_NUM_ENTRIES: usize = 458;

    /// Returns the number of functions available in the WDF function table.
    ///
    /// wdk-sys reads the framework's `WdfFunctionCount` here. The host has no function table
    /// (each API is a direct call into ntsim), so this is the KMDF 1.33 table size. Should not be
    /// used in public API.
    #[must_use]
    pub const fn get_wdf_function_count() -> usize {
        WDF_FUNCTION_TABLE_NUM_ENTRIES
    }
}
