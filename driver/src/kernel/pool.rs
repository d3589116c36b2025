//! Fallible, pinned allocations in nonpaged pool (the driver's global allocator).

use alloc::boxed::Box;
use core::{alloc::Layout, pin::Pin};

use wdk_sys::NTSTATUS;

/// Moves `value` into a new nonpaged allocation and pins it there. IRQL <= `DISPATCH_LEVEL`.
///
/// # Errors
/// `STATUS_INSUFFICIENT_RESOURCES` when pool cannot be had (instead of the allocation-failure
/// abort of `Box::new`, which would be a bug check).
pub fn try_pin<T>(value: T) -> Result<Pin<Box<T>>, NTSTATUS> {
    let layout = Layout::new::<T>();
    if layout.size() == 0 {
        return Ok(Box::pin(value));
    }
    // SAFETY: `layout` has a non-zero size (checked above), as `alloc` requires.
    let memory = unsafe { alloc::alloc::alloc(layout) }.cast::<T>();
    if memory.is_null() {
        return Err(wdk_sys::STATUS_INSUFFICIENT_RESOURCES);
    }
    // SAFETY: `memory` is a fresh, non-null allocation with `T`'s layout, so it is valid and
    // aligned for one write of a `T`.
    unsafe { memory.write(value) };
    // SAFETY: `memory` was allocated by the global allocator with `T`'s layout and now holds an
    // initialised `T` that nothing else owns, which is what `Box::from_raw` requires.
    Ok(Box::into_pin(unsafe { Box::from_raw(memory) }))
}
