//! Every constant of the bindings, re-exported at the crate root as in wdk-sys:
//!
//! * the `#define` values bindgen can evaluate (untyped, so `u32` when non-negative, e.g.
//!   `PASSIVE_LEVEL`, `TRUE`, `IRP_MJ_*`), plus the extern statics of the headers;
//! * every `STATUS_*` value as an [`NTSTATUS`] (bindgen cannot evaluate `((NTSTATUS)0x...L)`);
//!   generated from mingw-w64's `ntstatus.h`, where wdk-sys copies its list from windows-sys;
//! * the hand-written `POOL_FLAG_*` values (their `UI64` suffix defeats bindgen) and `WDF_NO_*`
//!   null pointers.

#![allow(missing_docs)]

pub use bindings::*;
pub use kernel_mode::*;
pub use wdf::*;

use crate::types::NTSTATUS;

#[allow(non_upper_case_globals)]
#[allow(clippy::unreadable_literal)]
#[allow(clippy::manual_c_str_literals)]
mod bindings {
    #[allow(
        clippy::wildcard_imports,
        reason = "the generated code refers to the generated types by their bare names"
    )]
    use crate::types::*;

    include!("generated/constants.rs");
}

include!("generated/ntstatus.rs");

mod wdf {
    use crate::types::{PVOID, PWDF_OBJECT_ATTRIBUTES};

    pub const WDF_NO_OBJECT_ATTRIBUTES: PWDF_OBJECT_ATTRIBUTES = core::ptr::null_mut();
    pub const WDF_NO_EVENT_CALLBACK: PVOID = core::ptr::null_mut();
    pub const WDF_NO_HANDLE: PVOID = core::ptr::null_mut();
    pub const WDF_NO_CONTEXT: PVOID = core::ptr::null_mut();
    pub const WDF_NO_SEND_OPTIONS: PVOID = core::ptr::null_mut();
}

mod kernel_mode {
    use crate::types::POOL_FLAGS;

    // The WDK writes these with MSVC's `UI64` suffix, which bindgen cannot evaluate
    // (rust-lang/rust-bindgen#2600), so wdk-sys ports them by hand; values from wdm.h and
    // learn.microsoft.com's POOL_FLAGS page.
    pub const POOL_FLAG_REQUIRED_START: POOL_FLAGS = 0x0000_0000_0000_0001;
    /// Charge quota.
    pub const POOL_FLAG_USE_QUOTA: POOL_FLAGS = 0x0000_0000_0000_0001;
    /// Do not zero-initialise the allocation.
    pub const POOL_FLAG_UNINITIALIZED: POOL_FLAGS = 0x0000_0000_0000_0002;
    /// Session-specific pool.
    pub const POOL_FLAG_SESSION: POOL_FLAGS = 0x0000_0000_0000_0004;
    /// Cache-aligned allocation.
    pub const POOL_FLAG_CACHE_ALIGNED: POOL_FLAGS = 0x0000_0000_0000_0008;
    /// Reserved for system use.
    pub const POOL_FLAG_RESERVED1: POOL_FLAGS = 0x0000_0000_0000_0010;
    /// Raise an exception instead of returning NULL on failure.
    pub const POOL_FLAG_RAISE_ON_FAILURE: POOL_FLAGS = 0x0000_0000_0000_0020;
    /// Non-paged, non-executable pool.
    pub const POOL_FLAG_NON_PAGED: POOL_FLAGS = 0x0000_0000_0000_0040;
    /// Non-paged executable pool.
    pub const POOL_FLAG_NON_PAGED_EXECUTE: POOL_FLAGS = 0x0000_0000_0000_0080;
    /// Paged pool.
    pub const POOL_FLAG_PAGED: POOL_FLAGS = 0x0000_0000_0000_0100;
    /// Reserved for system use.
    pub const POOL_FLAG_RESERVED2: POOL_FLAGS = 0x0000_0000_0000_0200;
    /// Reserved for system use.
    pub const POOL_FLAG_RESERVED3: POOL_FLAGS = 0x0000_0000_0000_0400;
    pub const POOL_FLAG_REQUIRED_END: POOL_FLAGS = 0x0000_0000_8000_0000;
    pub const POOL_FLAG_OPTIONAL_START: POOL_FLAGS = 0x0000_0001_0000_0000;
    /// Special-pool allocation.
    pub const POOL_FLAG_SPECIAL_POOL: POOL_FLAGS = 0x0000_0001_0000_0000;
    pub const POOL_FLAG_OPTIONAL_END: POOL_FLAGS = 0x8000_0000_0000_0000;
}
