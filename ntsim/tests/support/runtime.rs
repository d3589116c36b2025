//! Safe wrappers for the run-down, DPC-fidelity, affinity, work-item and interlocked-list DDIs.
//! Every pointer passed is to leaked (live, resident, aligned) storage; misuse of IRQL or state
//! is what ntsim turns into a bug check, not undefined behaviour.

use std::sync::atomic::{AtomicU64, Ordering};

use ntsim::wdk_sys::{
    ntddk, EX_RUNDOWN_REF, GROUP_AFFINITY, KDPC_WATCHDOG_INFORMATION, LIST_ENTRY, NTSTATUS,
    PEX_RUNDOWN_REF_CACHE_AWARE, PIO_WORKITEM, PVOID, SLIST_ENTRY, SLIST_HEADER,
};

/// An `EX_RUNDOWN_REF` in leaked memory, addressed by value so it can cross threads.
#[derive(Clone, Copy, Debug)]
pub struct RunRef(usize);

impl RunRef {
    /// New storage, initialised with `ExInitializeRundownProtection` (call on an emulated thread).
    pub fn new() -> Self {
        let r = Self::uninitialized();
        r.init();
        r
    }

    /// New zeroed storage, not passed to any DDI yet.
    pub fn uninitialized() -> Self {
        Self(Box::into_raw(Box::<EX_RUNDOWN_REF>::default()) as usize)
    }

    /// The reference at `addr` (from [`RunRef::addr`]).
    #[allow(
        clippy::cast_possible_truncation,
        reason = "an address from `addr` on x64"
    )]
    pub const fn from_addr(addr: u64) -> Self {
        Self(addr as usize)
    }

    /// Its address, as bug check parameters show it.
    pub const fn addr(self) -> u64 {
        self.0 as u64
    }

    /// Its address, to pass as a context pointer.
    pub const fn context(self) -> usize {
        self.0
    }

    const fn ptr(self) -> *mut EX_RUNDOWN_REF {
        self.0 as *mut EX_RUNDOWN_REF
    }

    /// The raw word (bit 0 = run-down active, holders counted in steps of 2).
    pub fn word(self) -> u64 {
        // SAFETY: leaked, 8-byte aligned storage that ntsim only accesses atomically.
        unsafe { AtomicU64::from_ptr(self.0 as *mut u64) }.load(Ordering::Acquire)
    }

    /// `ExInitializeRundownProtection`.
    pub fn init(self) {
        // SAFETY: leaked, aligned EX_RUNDOWN_REF.
        unsafe { ntddk::ExInitializeRundownProtection(self.ptr()) }
    }

    /// `ExAcquireRundownProtection`.
    pub fn acquire(self) -> bool {
        // SAFETY: as above.
        unsafe { ntddk::ExAcquireRundownProtection(self.ptr()) != 0 }
    }

    /// `ExAcquireRundownProtectionEx`.
    pub fn acquire_ex(self, n: u32) -> bool {
        // SAFETY: as above.
        unsafe { ntddk::ExAcquireRundownProtectionEx(self.ptr(), n) != 0 }
    }

    /// `ExReleaseRundownProtection`.
    pub fn release(self) {
        // SAFETY: as above.
        unsafe { ntddk::ExReleaseRundownProtection(self.ptr()) }
    }

    /// `ExReleaseRundownProtectionEx`.
    pub fn release_ex(self, n: u32) {
        // SAFETY: as above.
        unsafe { ntddk::ExReleaseRundownProtectionEx(self.ptr(), n) }
    }

    /// `ExWaitForRundownProtectionRelease`.
    pub fn wait(self) {
        // SAFETY: as above.
        unsafe { ntddk::ExWaitForRundownProtectionRelease(self.ptr()) }
    }

    /// `ExRundownCompleted`.
    pub fn completed(self) {
        // SAFETY: as above.
        unsafe { ntddk::ExRundownCompleted(self.ptr()) }
    }

    /// `ExReInitializeRundownProtection`.
    pub fn reinit(self) {
        // SAFETY: as above.
        unsafe { ntddk::ExReInitializeRundownProtection(self.ptr()) }
    }
}

/// A cache-aware run-down reference.
#[derive(Clone, Copy, Debug)]
pub struct CacheAware(usize);

impl CacheAware {
    /// `ExAllocateCacheAwareRundownProtection(NonPagedPoolNx, tag)`; `None` for NULL.
    pub fn allocate(tag: u32) -> Option<Self> {
        // SAFETY: no pointers in.
        let p = unsafe { ntddk::ExAllocateCacheAwareRundownProtection(512, tag) };
        (!p.is_null()).then_some(Self(p as usize))
    }

    /// `ExInitializeRundownProtectionCacheAware` on leaked storage of `size` bytes.
    pub fn in_storage(size: usize) -> Self {
        let words = size.div_ceil(8).max(1);
        let storage = Box::leak(vec![0_u64; words].into_boxed_slice());
        let r = Self(storage.as_mut_ptr() as usize);
        // SAFETY: leaked, 8-byte aligned storage of at least `size` bytes.
        unsafe { ntddk::ExInitializeRundownProtectionCacheAware(r.ptr(), size as u64) };
        r
    }

    /// Its address.
    pub const fn addr(self) -> u64 {
        self.0 as u64
    }

    const fn ptr(self) -> PEX_RUNDOWN_REF_CACHE_AWARE {
        self.0 as PEX_RUNDOWN_REF_CACHE_AWARE
    }

    /// `ExAcquireRundownProtectionCacheAware`.
    pub fn acquire(self) -> bool {
        // SAFETY: an initialised cache-aware reference.
        unsafe { ntddk::ExAcquireRundownProtectionCacheAware(self.ptr()) != 0 }
    }

    /// `ExAcquireRundownProtectionCacheAwareEx`.
    pub fn acquire_ex(self, n: u32) -> bool {
        // SAFETY: as above.
        unsafe { ntddk::ExAcquireRundownProtectionCacheAwareEx(self.ptr(), n) != 0 }
    }

    /// `ExReleaseRundownProtectionCacheAware`.
    pub fn release(self) {
        // SAFETY: as above.
        unsafe { ntddk::ExReleaseRundownProtectionCacheAware(self.ptr()) }
    }

    /// `ExReleaseRundownProtectionCacheAwareEx`.
    pub fn release_ex(self, n: u32) {
        // SAFETY: as above.
        unsafe { ntddk::ExReleaseRundownProtectionCacheAwareEx(self.ptr(), n) }
    }

    /// `ExWaitForRundownProtectionReleaseCacheAware`.
    pub fn wait(self) {
        // SAFETY: as above.
        unsafe { ntddk::ExWaitForRundownProtectionReleaseCacheAware(self.ptr()) }
    }

    /// `ExRundownCompletedCacheAware`.
    pub fn completed(self) {
        // SAFETY: as above.
        unsafe { ntddk::ExRundownCompletedCacheAware(self.ptr()) }
    }

    /// `ExReInitializeRundownProtectionCacheAware`.
    pub fn reinit(self) {
        // SAFETY: as above.
        unsafe { ntddk::ExReInitializeRundownProtectionCacheAware(self.ptr()) }
    }

    /// `ExFreeCacheAwareRundownProtection`.
    pub fn free(self) {
        // SAFETY: a reference from ExAllocateCacheAwareRundownProtection (or deliberately not).
        unsafe { ntddk::ExFreeCacheAwareRundownProtection(self.ptr()) }
    }
}

/// `ExSizeOfRundownProtectionCacheAware`.
pub fn cache_aware_size() -> u64 {
    // SAFETY: no pointers.
    unsafe { ntddk::ExSizeOfRundownProtectionCacheAware() }
}

/// `KeGetCurrentProcessorNumberEx(NULL)`.
pub fn current_cpu() -> u32 {
    // SAFETY: NULL is allowed for the optional out parameter.
    unsafe { ntddk::KeGetCurrentProcessorNumberEx(std::ptr::null_mut()) }
}

/// `KeSetSystemGroupAffinityThread`; returns what it wrote to `PreviousAffinity`.
pub fn set_affinity(group: u16, mask: u64) -> GROUP_AFFINITY {
    let mut affinity = GROUP_AFFINITY {
        Mask: mask,
        Group: group,
        Reserved: [0; 3],
    };
    let mut previous = GROUP_AFFINITY {
        Mask: 0xDEAD,
        Group: 7,
        Reserved: [1; 3],
    };
    // SAFETY: two live GROUP_AFFINITY structures.
    unsafe { ntddk::KeSetSystemGroupAffinityThread(&raw mut affinity, &raw mut previous) };
    previous
}

/// `KeRevertToUserGroupAffinityThread`.
pub fn revert_affinity(mut previous: GROUP_AFFINITY) {
    // SAFETY: a live GROUP_AFFINITY.
    unsafe { ntddk::KeRevertToUserGroupAffinityThread(&raw mut previous) }
}

/// `KeQueryDpcWatchdogInformation`; the status and the figures.
pub fn watchdog_information() -> (NTSTATUS, KDPC_WATCHDOG_INFORMATION) {
    let mut info = KDPC_WATCHDOG_INFORMATION::default();
    // SAFETY: a live, writable structure.
    let status = unsafe { ntddk::KeQueryDpcWatchdogInformation(&raw mut info) };
    (status, info)
}

/// A `LIST_ENTRY` list head and its `KSPIN_LOCK`, in leaked memory.
#[derive(Clone, Copy, Debug)]
pub struct InterlockedList {
    head: usize,
    /// The lock's address.
    pub lock: usize,
}

/// A list element: its links first, then a value.
#[repr(C)]
#[derive(Debug)]
pub struct Element {
    /// Links.
    pub links: LIST_ENTRY,
    /// Payload.
    pub value: u64,
}

impl InterlockedList {
    /// An empty list (`InitializeListHead`: both links point to the head) and a free lock.
    pub fn new() -> Self {
        let head = Box::into_raw(Box::<LIST_ENTRY>::default());
        // SAFETY: freshly leaked, exclusively ours.
        unsafe {
            (*head).Flink = head;
        }
        // SAFETY: as above.
        unsafe {
            (*head).Blink = head;
        }
        let lock = Box::into_raw(Box::new(0_u64)) as usize;
        Self {
            head: head as usize,
            lock,
        }
    }

    /// The list at `head` guarded by `lock` (from [`InterlockedList::parts`]).
    #[allow(
        clippy::cast_possible_truncation,
        reason = "addresses from `parts` on x64"
    )]
    pub const fn from_parts(head: u64, lock: u64) -> Self {
        Self {
            head: head as usize,
            lock: lock as usize,
        }
    }

    /// The head's and the lock's addresses.
    pub const fn parts(self) -> (u64, u64) {
        (self.head as u64, self.lock as u64)
    }

    /// A leaked element with `value`.
    pub fn element(value: u64) -> *mut LIST_ENTRY {
        Box::into_raw(Box::new(Element {
            links: LIST_ENTRY::default(),
            value,
        }))
        .cast()
    }

    /// The value of an element made by [`InterlockedList::element`] (`None` for NULL).
    pub fn value(entry: *mut LIST_ENTRY) -> Option<u64> {
        // SAFETY: NULL or an element from `element`, leaked and never freed.
        unsafe { entry.cast::<Element>().as_ref() }.map(|e| e.value)
    }

    /// `ExInterlockedInsertHeadList`; the previous first value.
    pub fn push_front(self, value: u64) -> Option<u64> {
        let entry = Self::element(value);
        // SAFETY: a leaked head, a fresh element, a leaked lock.
        let old =
            unsafe { ntddk::ExInterlockedInsertHeadList(self.head as _, entry, self.lock as _) };
        Self::value(old)
    }

    /// `ExInterlockedInsertTailList`; the previous last value.
    pub fn push_back(self, value: u64) -> Option<u64> {
        let entry = Self::element(value);
        // SAFETY: as above.
        let old =
            unsafe { ntddk::ExInterlockedInsertTailList(self.head as _, entry, self.lock as _) };
        Self::value(old)
    }

    /// `ExInterlockedRemoveHeadList`; the removed value.
    pub fn pop_front(self) -> Option<u64> {
        // SAFETY: a leaked head and lock.
        let entry = unsafe { ntddk::ExInterlockedRemoveHeadList(self.head as _, self.lock as _) };
        Self::value(entry)
    }
}

/// An `SLIST_HEADER` in leaked memory.
#[derive(Clone, Copy, Debug)]
pub struct SList(usize);

/// An `SList` element: the 16-byte aligned entry first, then a value.
#[repr(C)]
#[derive(Debug)]
pub struct SElement {
    /// Link.
    pub entry: SLIST_ENTRY,
    /// Payload.
    pub value: u64,
}

impl SList {
    /// `InitializeSListHead` on new storage.
    pub fn new() -> Self {
        let header = Box::into_raw(Box::<SLIST_HEADER>::default());
        // SAFETY: leaked, 16-byte aligned header.
        unsafe { ntddk::InitializeSListHead(header) };
        Self(header as usize)
    }

    /// The header at `addr` (from [`SList::addr`]).
    #[allow(
        clippy::cast_possible_truncation,
        reason = "an address from `addr` on x64"
    )]
    pub const fn from_addr(addr: u64) -> Self {
        Self(addr as usize)
    }

    /// Its address.
    pub const fn addr(self) -> u64 {
        self.0 as u64
    }

    /// The header pointer.
    pub const fn raw(self) -> ntsim::wdk_sys::PSLIST_HEADER {
        self.0 as ntsim::wdk_sys::PSLIST_HEADER
    }

    /// `ExpInterlockedPushEntrySList`; the previous first value.
    pub fn push(self, value: u64) -> Option<u64> {
        let element = Box::into_raw(Box::new(SElement {
            entry: SLIST_ENTRY::default(),
            value,
        }));
        // SAFETY: a leaked header and a fresh, aligned element.
        let old = unsafe { ntddk::ExpInterlockedPushEntrySList(self.0 as _, element.cast()) };
        Self::value(old)
    }

    /// `ExpInterlockedPopEntrySList`; the popped value.
    pub fn pop(self) -> Option<u64> {
        // SAFETY: a leaked header.
        let entry = unsafe { ntddk::ExpInterlockedPopEntrySList(self.0 as _) };
        Self::value(entry)
    }

    /// `ExpInterlockedFlushSList`; the values of the detached chain, first to last.
    pub fn flush(self) -> Vec<u64> {
        // SAFETY: a leaked header.
        let mut entry = unsafe { ntddk::ExpInterlockedFlushSList(self.0 as _) };
        let mut values = Vec::new();
        while let Some(v) = Self::value(entry) {
            values.push(v);
            // SAFETY: `entry` is a leaked element of the detached chain.
            entry = unsafe { (*entry).Next };
        }
        values
    }

    /// `ExQueryDepthSList`.
    pub fn depth(self) -> u16 {
        // SAFETY: a leaked header.
        unsafe { ntddk::ExQueryDepthSList(self.0 as _) }
    }

    fn value(entry: *mut SLIST_ENTRY) -> Option<u64> {
        // SAFETY: NULL or an element from `push`, leaked and never freed.
        unsafe { entry.cast::<SElement>().as_ref() }.map(|e| e.value)
    }
}

/// A work-item routine (`IoQueueWorkItem`).
pub type WorkRoutine = unsafe extern "C" fn(*mut ntsim::wdk_sys::DEVICE_OBJECT, PVOID);

/// `IoAllocateWorkItem` for a stand-in device object (ntsim only passes it back).
pub fn allocate_work_item() -> PIO_WORKITEM {
    let device = Box::into_raw(Box::new([0_u64; 64])).cast();
    // SAFETY: a non-null, leaked stand-in device object.
    let item = unsafe { ntddk::IoAllocateWorkItem(device) };
    assert!(!item.is_null());
    item
}

/// `IoQueueWorkItem(item, routine, DelayedWorkQueue, context)`.
pub fn queue_work_item(item: PIO_WORKITEM, routine: WorkRoutine, context: usize) {
    // SAFETY: an allocated work item; the routine and context are the test's.
    unsafe { ntddk::IoQueueWorkItem(item, Some(routine), 1, context as PVOID) }
}

/// `IoFreeWorkItem`.
pub fn free_work_item(item: PIO_WORKITEM) {
    // SAFETY: an allocated work item that has run.
    unsafe { ntddk::IoFreeWorkItem(item) }
}

/// Spins (host-side sleeps) until `flag` is nonzero, for at most 10 s.
pub fn wait_for(flag: &AtomicU64) -> u64 {
    for _ in 0..10_000 {
        let v = flag.load(Ordering::Acquire);
        if v != 0 {
            return v;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    panic!("timed out waiting for a flag");
}

/// `KeInitializeThreadedDpc` on new storage.
pub fn threaded_dpc(routine: super::DpcRoutine, context: usize) -> super::Dpc {
    let dpc = super::Dpc::new(routine, context);
    // SAFETY: a leaked KDPC, not queued.
    unsafe { ntddk::KeInitializeThreadedDpc(dpc.ptr(), Some(routine), context as PVOID) };
    dpc
}

/// `KeSetImportanceDpc`.
pub fn set_importance(dpc: super::Dpc, importance: i32) {
    // SAFETY: a leaked, initialised KDPC that is not queued.
    unsafe { ntddk::KeSetImportanceDpc(dpc.ptr(), importance) }
}

/// `KeRemoveQueueDpc`.
pub fn remove_dpc(dpc: super::Dpc) -> bool {
    // SAFETY: a leaked, initialised KDPC.
    unsafe { ntddk::KeRemoveQueueDpc(dpc.ptr()) != 0 }
}

/// An unbalanced `KeEnterCriticalRegion`: enters one and never leaves it.
pub fn leak_critical_region() {
    super::enter_critical_region();
}
