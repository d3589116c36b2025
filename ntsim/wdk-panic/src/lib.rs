//! # Abstract
//!
//! Host stand-in for `wdk-panic`. The real crate defines the kernel's `#[panic_handler]`; on the
//! host, std already provides one, so this crate is empty on purpose (a second handler would be
//! a duplicate lang item). A panic in driver code on an emulated thread is turned into a bug
//! check by ntsim's panic hook, as `wdk-panic` on windows-drivers-rs main does
//! (`KeBugCheckEx(0x52504E43 "RPNC", …)`).
#![no_std]
