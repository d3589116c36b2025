//! # Abstract
//!
//! Host stand-in for Microsoft's `wdk` crate (0.4.1): the same public items, backed by ntsim.
//!
//! - [`print!`] / [`println!`]: formatted output through `DbgPrint("%s", …)` in 512-byte chunks,
//!   which ntsim captures in the machine's debug log.
//! - [`nt_success`], [`paged_code!`], [`dbg_break`].
//! - [`wdf::SpinLock`] and [`wdf::Timer`]: thin wrappers over the WDF objects, with no `Drop`
//!   (they live in framework-zeroed context memory).

pub use wdk_sys::NT_SUCCESS as nt_success;
pub use wdk_sys::PAGED_CODE as paged_code;

pub mod wdf;

// Keep the emulator linked into every driver build that uses this crate.
use ntsim as _;

/// Prints to the kernel debugger (ntsim: the machine's debug log).
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::_print(format_args!($($arg)*))
    };
}

/// Prints a line to the kernel debugger (ntsim: the machine's debug log).
#[macro_export]
macro_rules! println {
    () => {
        $crate::print!("\n")
    };
    ($($arg:tt)*) => {
        $crate::print!("{}\n", format_args!($($arg)*))
    };
}

/// The part of `DbgPrint`'s 512-byte buffer one chunk may use.
const CHUNK: usize = 511;

#[doc(hidden)]
pub fn _print(args: core::fmt::Arguments) {
    let text = std::fmt::format(args);
    let mut bytes = text.as_bytes();
    while !bytes.is_empty() {
        let mut end = bytes.len().min(CHUNK);
        while !text.is_char_boundary(text.len() - bytes.len() + end) {
            end -= 1;
        }
        let mut chunk = bytes[..end].to_vec();
        chunk.retain(|&b| b != 0);
        chunk.push(0);
        // SAFETY: "%s" and `chunk` are NUL-terminated and outlive the call; DbgPrint reads
        // exactly one string argument for "%s".
        unsafe {
            wdk_sys::ntddk::DbgPrint(c"%s".as_ptr(), chunk.as_ptr().cast::<core::ffi::c_char>());
        }
        bytes = &bytes[end..];
    }
}

/// Breaks into the debugger. On ntsim there is none: it is logged and execution continues.
#[allow(
    clippy::used_underscore_items,
    reason = "println! expands to wdk's own `_print`"
)]
pub fn dbg_break() {
    crate::println!("dbg_break(): no kernel debugger attached to the emulated machine");
}
