//! # Abstract
//!
//! ntsim is a host NT kernel: a user-mode emulation of the Windows kernel's synchronization
//! model, precise enough that a KMDF driver written against `wdk-sys` runs on Linux and misuse
//! fails the way it fails on Windows with Driver Verifier.
//!
//! - The driver compiles against `ntsim-wdk-sys` (library `wdk_sys`), which has the Rust shape
//!   of Microsoft's `wdk-sys`; this crate defines the functions that surface declares, with the
//!   same C names ([`ddi`] for ntddk, [`wdf`] for the KMDF subset).
//! - A [`Machine`] has N virtual processors, each with a DPC queue, per-thread IRQL and APC
//!   state, pool accounted per tag, system threads, dispatcher objects, and an I/O path from
//!   "user mode" into the driver's queues.
//! - Misuse bugchecks: the machine stops with the real code and parameters
//!   ([`BugCheck`]), and every host call into it returns that bug check.
//!
//! What ntsim models and what it does not is listed in `ntsim/README.md`.
//!
//! ```
//! use ntsim::{Machine, MachineConfig};
//! let machine = Machine::new(MachineConfig::with_processors(8));
//! let irql = machine.run(|| {
//!     // SAFETY: a valid, aligned KSPIN_LOCK on this thread's stack, used only here.
//!     let mut lock: wdk_sys::KSPIN_LOCK = 0;
//!     // SAFETY: as above; PASSIVE_LEVEL is a valid IRQL for the raising acquire.
//!     let old = unsafe { ntsim::ddi::spin_lock::KeAcquireSpinLockRaiseToDpc(&mut lock) };
//!     // SAFETY: the DDI is callable at any IRQL.
//!     let inside = unsafe { ntsim::ddi::irql::KeGetCurrentIrql() };
//!     // SAFETY: released by its owner at DISPATCH_LEVEL with the saved IRQL.
//!     unsafe { ntsim::ddi::spin_lock::KeReleaseSpinLock(&mut lock, old) };
//!     inside
//! });
//! assert_eq!(irql.unwrap(), 2);
//! ```

// ntsim holds a state lock (dispatcher, pool, I/O, object table) for each whole transition on
// purpose, so that a transition is atomic; the lint's early drops would split them.
#![allow(clippy::significant_drop_tightening)]

pub use wdk_sys;

pub mod bugcheck;
pub mod context;
pub mod ddi;
pub mod dispatcher;
pub mod exception;
pub mod io;
mod irp;
pub mod lock_order;
pub mod machine;
pub mod objects;
pub mod pool;
pub mod processor;
pub mod thread;
pub mod wdf;

pub use bugcheck::BugCheck;
pub use io::{Access, FileHandle, Identity, IoError, PendingIo, UnloadReport};
pub use machine::{HostError, Machine, MachineConfig};
