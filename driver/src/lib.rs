//! # Abstract
//!
//! SyncLab's KMDF driver. It exposes IOCTLs that exercise NT kernel synchronization primitives
//! at their correct IRQL, observe what each really does (IRQL, exclusion), stress them under
//! contention from system threads at `PASSIVE_LEVEL` and DPCs at `DISPATCH_LEVEL` on every
//! processor, and report per-worker figures with a SUCCESS/FAILURE verdict.
//!
//! One source, two kernels: on Windows it builds against Microsoft's `wdk-sys`/`wdk` crates
//! into `synclab.sys`; elsewhere against ntsim, whose crates have the same names and Rust
//! shape. This crate root is the only place that may tell the two apart.
//!
//! - [`driver`]: `DriverEntry`, unload.
//! - `device`: `EvtDriverDeviceAdd` (SDDL, device interface, parallel default queue).
//! - `queue`: `EvtIoDeviceControl`, the IOCTL dispatch (it never waits).
//! - `info`, [`stress`]: the IOCTL handlers; [`runs`]: the runs in flight, each on its own
//!   passive-level control thread that completes its request.
//! - [`sync`]: the lock layer (capability traits, `Lock<T, B>`, RAII guards), one file per
//!   primitive family.
//! - `kernel`: small safe wrappers over the DDIs the driver uses (IRQL, threads, DPCs, time,
//!   requests).
#![no_std]

extern crate alloc;

#[cfg(not(test))]
extern crate wdk_panic;

#[cfg(not(test))]
use wdk_alloc::WdkAllocator;

/// Every Rust allocation of the driver is nonpaged pool tagged `rust`.
#[cfg(not(test))]
#[global_allocator]
static GLOBAL_ALLOCATOR: WdkAllocator = WdkAllocator;

mod device;
pub mod driver;
mod info;
mod kernel;
mod queue;
pub mod runs;
pub mod stress;
pub mod sync;

pub use driver::driver_entry;

/// Which kernel this build runs on, as `IOCTL_SYNCLAB_GET_INFO` reports it.
#[cfg(windows)]
pub(crate) const KERNEL: u32 = synclab_protocol::wire::kernel::WINDOWS;
/// Which kernel this build runs on, as `IOCTL_SYNCLAB_GET_INFO` reports it.
#[cfg(not(windows))]
pub(crate) const KERNEL: u32 = synclab_protocol::wire::kernel::EMULATED;
