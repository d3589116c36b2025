//! Direct FFI bindings to the NTDDK APIs (`ntifs.h`, `ntddk.h`, `wdm.h`).
//!
//! This module contains functions only, declared as in wdk-sys (`unsafe extern "C"`, the WDK's
//! parameter names, `#[must_use]` on every function returning `NTSTATUS`). Types and constants
//! are at the crate root. Nothing here is defined by this crate: the `ntsim` emulator defines
//! the functions it implements with `#[unsafe(no_mangle)] extern "C"`.
//!
//! As in wdk-sys, DDIs that the WDK implements as macros or `FORCEINLINE` bodies on x64 are
//! absent; call the export they expand to (`KeAcquireSpinLockRaiseToDpc`, `KfRaiseIrql`,
//! `IofCompleteRequest`, `IofCallDriver`, `ObfDereferenceObject`, `ExpInterlockedPushEntrySList`,
//! the `Ex…PushLock…Ex` routines with `EX_DEFAULT_PUSH_LOCK_FLAGS`, ...).

pub use bindings::*;

#[allow(missing_docs)]
#[allow(clippy::derive_partial_eq_without_eq)]
#[allow(clippy::doc_markdown)]
mod bindings {
    #[allow(
        clippy::wildcard_imports,
        reason = "the underlying C declarations rely on every type being in scope"
    )]
    use crate::types::*;

    include!("generated/ntddk.rs");
}
