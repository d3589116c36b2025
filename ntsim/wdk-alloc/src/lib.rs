//! # Abstract
//!
//! Host stand-in for `wdk-alloc`: [`WdkAllocator`] allocates "non-paged pool" from ntsim with
//! the pool tag `rust`, as the real allocator calls `ExAllocatePool2(POOL_FLAG_NON_PAGED, size,
//! 'rust')`. Unlike the real one it honours any alignment.
//!
//! Driver allocations (made while driver code runs on an emulated thread) are charged to that
//! machine's pool per tag, so a leak shows at unload; allocations of host code that merely links
//! the driver (a test harness, the client) pass through untracked.

use core::alloc::{GlobalAlloc, Layout};

/// The pool tag of Rust allocations, `'rust'`.
pub const RUST_TAG: u32 = u32::from_ne_bytes(*b"rust");

/// A global allocator backed by ntsim's pool.
pub struct WdkAllocator;

// SAFETY: `global_alloc` returns null or a block of at least `layout.size()` bytes aligned to
// `layout.align()`, valid until passed to `global_dealloc`, which is exactly what `dealloc`
// does with pointers `alloc` returned.
unsafe impl GlobalAlloc for WdkAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ntsim::pool::global_alloc(layout, RUST_TAG, false)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ntsim::pool::global_alloc(layout, RUST_TAG, true)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: GlobalAlloc's contract: `ptr` came from this allocator and is freed once.
        unsafe { ntsim::pool::global_dealloc(ptr) };
    }
}
