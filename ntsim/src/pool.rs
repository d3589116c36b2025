//! Pool: every allocation the driver makes, through `ExAllocatePool2` or through its global
//! allocator (`wdk_alloc::WdkAllocator`), accounted per machine and per pool tag.
//!
//! Each block carries a header in front of it (magic, owning account, size, tag), so a block
//! can be freed from any thread, and host allocations (the client, the test harness, ntsim's own
//! bookkeeping) pass through the same allocator untracked. What the driver allocates while its
//! own code runs is tracked; what ntsim allocates inside a DDI is the kernel's and is not.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
    collections::{BTreeMap, HashMap},
    sync::Mutex,
};

/// Figures for one pool tag.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TagStats {
    /// Allocations made.
    pub allocations: u64,
    /// Frees made.
    pub frees: u64,
    /// Bytes currently allocated.
    pub outstanding_bytes: u64,
    /// Blocks currently allocated.
    pub outstanding_blocks: u64,
    /// Most bytes allocated at once.
    pub peak_bytes: u64,
}

/// A pool tag as its four characters, e.g. `"rust"`.
#[must_use]
pub fn tag_name(tag: u32) -> String {
    tag.to_le_bytes()
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() {
                char::from(b)
            } else {
                '.'
            }
        })
        .collect()
}

#[derive(Default)]
struct Inner {
    live: HashMap<usize, (u32, u64)>,
    tags: BTreeMap<u32, TagStats>,
}

/// The pool of one machine.
pub struct PoolAccount {
    inner: Mutex<Inner>,
    /// Freed memory's locks are forgotten here.
    lock_order: &'static crate::lock_order::LockOrder,
}

impl PoolAccount {
    /// A new, empty account that lives for the rest of the process (blocks point at it).
    pub(crate) fn leak_new(lock_order: &'static crate::lock_order::LockOrder) -> &'static Self {
        Box::leak(Box::new(Self {
            inner: Mutex::new(Inner::default()),
            lock_order,
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn record_alloc(&self, addr: usize, tag: u32, size: u64) {
        let _kernel = KernelScope::enter();
        let mut inner = self.lock();
        inner.live.insert(addr, (tag, size));
        let stats = inner.tags.entry(tag).or_default();
        stats.allocations += 1;
        stats.outstanding_blocks += 1;
        stats.outstanding_bytes += size;
        stats.peak_bytes = stats.peak_bytes.max(stats.outstanding_bytes);
    }

    /// Removes `addr`; returns its (tag, size) when it was live.
    fn record_free(&self, addr: usize) -> Option<(u32, u64)> {
        let _kernel = KernelScope::enter();
        let mut inner = self.lock();
        let (tag, size) = inner.live.remove(&addr)?;
        let stats = inner.tags.entry(tag).or_default();
        stats.frees += 1;
        stats.outstanding_blocks -= 1;
        stats.outstanding_bytes -= size;
        Some((tag, size))
    }

    /// Whether `addr` is a live block of this account, and its (tag, size).
    #[must_use]
    pub fn lookup(&self, addr: usize) -> Option<(u32, u64)> {
        let _kernel = KernelScope::enter();
        self.lock().live.get(&addr).copied()
    }

    /// Per-tag figures.
    #[must_use]
    pub fn stats(&self) -> BTreeMap<u32, TagStats> {
        let _kernel = KernelScope::enter();
        self.lock().tags.clone()
    }

    /// Blocks and bytes still allocated.
    #[must_use]
    pub fn outstanding(&self) -> (u64, u64) {
        let _kernel = KernelScope::enter();
        let inner = self.lock();
        let bytes = inner.live.values().map(|&(_, s)| s).sum();
        (inner.live.len() as u64, bytes)
    }
}

thread_local! {
    /// The account that allocations on this thread are charged to, or null for untracked.
    static TRACKING: Cell<*const PoolAccount> = const { Cell::new(std::ptr::null()) };
}

/// Charges this thread's allocations to `account` (driver code runs) or to nobody.
pub(crate) fn set_tracking(account: Option<&'static PoolAccount>) {
    let ptr = account.map_or(std::ptr::null(), std::ptr::from_ref);
    // try_with: the allocator may run while thread-locals are being torn down.
    let _ = TRACKING.try_with(|t| t.set(ptr));
}

fn tracking() -> Option<&'static PoolAccount> {
    let ptr = TRACKING.try_with(Cell::get).unwrap_or(std::ptr::null());
    // SAFETY: TRACKING only ever holds null or a pointer from `set_tracking`, whose referent is
    // a `PoolAccount` leaked by `leak_new` and therefore valid for the rest of the process.
    unsafe { ptr.as_ref() }
}

/// Makes this thread's allocations untracked until dropped (ntsim's own bookkeeping).
struct KernelScope(*const PoolAccount);

impl KernelScope {
    fn enter() -> Self {
        let saved = TRACKING.try_with(Cell::get).unwrap_or(std::ptr::null());
        let _ = TRACKING.try_with(|t| t.set(std::ptr::null()));
        Self(saved)
    }
}

impl Drop for KernelScope {
    fn drop(&mut self) {
        let _ = TRACKING.try_with(|t| t.set(self.0));
    }
}

const MAGIC: u64 = 0x4E54_5349_4D50_4F4C; // "NTSIMPOL"
const HEADER: usize = std::mem::size_of::<Header>();

#[repr(C)]
struct Header {
    magic: u64,
    account: *const PoolAccount,
    size: u64,
    tag: u32,
    /// Alignment of the system allocation (at least 16); the user pointer is
    /// `HEADER.next_multiple_of(align)` bytes into it.
    align: u32,
}

const _: () = assert!(HEADER == 32);

fn block_layout(size: usize, align: usize) -> Option<(Layout, usize)> {
    let align = align.max(16);
    let offset = HEADER.next_multiple_of(align);
    let layout = Layout::from_size_align(offset.checked_add(size.max(1))?, align).ok()?;
    Some((layout, offset))
}

/// Allocates `size` bytes aligned to `align` with `tag`, charged to `account` (or untracked).
/// Returns null when the host allocator fails.
pub(crate) fn allocate(
    account: Option<&'static PoolAccount>,
    size: usize,
    align: usize,
    tag: u32,
    zeroed: bool,
) -> *mut u8 {
    let Some((layout, offset)) = block_layout(size, align) else {
        return std::ptr::null_mut();
    };
    let base = if zeroed {
        // SAFETY: `layout` has a nonzero size (offset >= 32) and a power-of-two alignment.
        unsafe { System.alloc_zeroed(layout) }
    } else {
        // SAFETY: as above.
        unsafe { System.alloc(layout) }
    };
    if base.is_null() {
        return base;
    }
    // SAFETY: `offset < layout.size()`, so the result stays inside the block just allocated.
    let user = unsafe { base.add(offset) };
    let header = Header {
        magic: MAGIC,
        account: account.map_or(std::ptr::null(), std::ptr::from_ref),
        size: size as u64,
        tag,
        #[allow(
            clippy::cast_possible_truncation,
            reason = "Layout alignments are < 2^29"
        )]
        align: layout.align() as u32,
    };
    #[allow(
        clippy::cast_ptr_alignment,
        reason = "user is 16-aligned, HEADER a multiple of 8"
    )]
    let slot = user.wrapping_sub(HEADER).cast::<Header>();
    // SAFETY: `offset >= HEADER` and `offset` and `user` are multiples of 16 >= align_of::<Header>(),
    // so the header slot `user - HEADER` lies inside the block, aligned, and is ours to write.
    unsafe { slot.write(header) };
    if let Some(account) = account {
        account.record_alloc(user as usize, tag, size as u64);
    }
    user
}

/// The header of a block returned by [`allocate`].
///
/// # Safety
/// `user` must come from [`allocate`] and not have been freed.
const unsafe fn header_of(user: *mut u8) -> Header {
    #[allow(
        clippy::cast_ptr_alignment,
        reason = "user is 16-aligned, HEADER a multiple of 8"
    )]
    let slot = user.wrapping_sub(HEADER).cast::<Header>();
    // SAFETY: the caller guarantees `user` is a live block from `allocate`, which wrote an
    // aligned `Header` at `user - HEADER`.
    unsafe { slot.read() }
}

/// Why a free was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FreeError {
    /// Not a live block of this account (freed already, or never allocated).
    NotLive,
    /// Tag passed to `ExFreePoolWithTag` differs from the block's.
    WrongTag {
        /// The block's tag.
        actual: u32,
    },
}

/// Frees a block of `account` allocated through `ExAllocatePool2`, checking it is live first
/// (so a double free is detected without touching freed memory).
pub(crate) fn free_checked(
    account: &'static PoolAccount,
    user: *mut u8,
    tag: Option<u32>,
) -> Result<(), FreeError> {
    let Some((actual, _)) = account.lookup(user as usize) else {
        return Err(FreeError::NotLive);
    };
    if let Some(tag) = tag {
        if tag != actual {
            return Err(FreeError::WrongTag { actual });
        }
    }
    // SAFETY: `lookup` found `user` live in this account, so it came from `allocate` and has not
    // been freed.
    unsafe { free(user) };
    Ok(())
}

/// Frees a block from [`allocate`].
///
/// # Safety
/// `user` must come from [`allocate`] and not have been freed.
pub(crate) unsafe fn free(user: *mut u8) {
    // SAFETY: forwarded caller guarantee.
    let header = unsafe { header_of(user) };
    debug_assert_eq!(header.magic, MAGIC, "ntsim pool: block without a header");
    // SAFETY: a non-null `account` in a header was set from a `&'static PoolAccount`.
    if let Some(account) = unsafe { header.account.as_ref() } {
        account.record_free(user as usize);
        let _kernel = KernelScope::enter();
        #[allow(
            clippy::cast_possible_truncation,
            reason = "the size came from a usize"
        )]
        account
            .lock_order
            .forget_range(user as usize, header.size as usize);
    }
    #[allow(
        clippy::cast_possible_truncation,
        reason = "the size came from a usize"
    )]
    let size = header.size as usize;
    if let Some((layout, offset)) = block_layout(size, header.align as usize) {
        // SAFETY: `user - offset` is the base System returned for this block (same computation
        // as in `allocate`).
        let base = unsafe { user.sub(offset) };
        // SAFETY: `base` was allocated by System with exactly this layout (same size and the
        // alignment recovered from the offset) and is freed once.
        unsafe { System.dealloc(base, layout) };
    }
}

/// The global-allocator entry used by `wdk_alloc::WdkAllocator`: charged to the driver while
/// driver code runs on an emulated thread, untracked otherwise.
#[must_use]
pub fn global_alloc(layout: Layout, tag: u32, zeroed: bool) -> *mut u8 {
    allocate(tracking(), layout.size(), layout.align(), tag, zeroed)
}

/// Frees a block from [`global_alloc`].
///
/// # Safety
/// `ptr` must come from [`global_alloc`] and not have been freed.
pub unsafe fn global_dealloc(ptr: *mut u8) {
    // SAFETY: forwarded caller guarantee.
    unsafe { free(ptr) }
}
