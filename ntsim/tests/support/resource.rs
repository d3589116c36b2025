//! Safe wrappers over the executive-resource DDIs (ddi.md 7). Each `ERESOURCE` lives in leaked
//! (so live, resident, 8-byte aligned) storage or in pool the test owns; misuse is what ntsim
//! turns into a bug check, not undefined behaviour.

use std::{
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use ntsim::{
    ddi::thread::PsGetCurrentThread,
    wdk_sys::{ntddk, ERESOURCE, PERESOURCE, PVOID},
    BugCheck, Machine,
};

/// `ExGetCurrentResourceThread()`, the macro for `(ULONG_PTR)PsGetCurrentThread()`.
pub fn current_resource_thread() -> usize {
    PsGetCurrentThread() as usize
}

/// A valid owner pointer for `ExSetResourceOwnerPointer(Ex)`: the address of leaked
/// `ERESOURCE_THREAD`-sized storage with its two low bits set.
pub fn owner_pointer() -> usize {
    Box::into_raw(Box::new(0_u64)) as usize | 0x3
}

/// An `ERESOURCE` addressed by value, so it can cross threads.
#[derive(Clone, Copy, Debug)]
pub struct Resource(usize);

impl Resource {
    /// New zeroed storage, not initialised.
    pub fn uninitialised() -> Self {
        Self(Box::into_raw(Box::<ERESOURCE>::default()) as usize)
    }

    /// New storage, initialised with `ExInitializeResourceLite` by a system thread of `machine`.
    pub fn new(machine: &Machine) -> Self {
        let r = Self::uninitialised();
        let status = machine
            .run(move || r.init())
            .expect("ExInitializeResourceLite");
        assert_eq!(status, 0, "ExInitializeResourceLite");
        r
    }

    /// The resource at `addr` (pool the test allocated).
    pub const fn at(addr: usize) -> Self {
        Self(addr)
    }

    /// Its address.
    pub const fn address(self) -> usize {
        self.0
    }

    /// Its address as bug check parameters show it.
    pub const fn addr(self) -> u64 {
        self.0 as u64
    }

    const fn ptr(self) -> PERESOURCE {
        self.0 as PERESOURCE
    }

    /// `ExInitializeResourceLite`.
    pub fn init(self) -> i32 {
        // SAFETY: live, aligned ERESOURCE storage.
        unsafe { ntddk::ExInitializeResourceLite(self.ptr()) }
    }

    /// `ExReinitializeResourceLite`.
    pub fn reinit(self) -> i32 {
        // SAFETY: live, aligned ERESOURCE storage.
        unsafe { ntddk::ExReinitializeResourceLite(self.ptr()) }
    }

    /// `ExDeleteResourceLite`.
    pub fn delete(self) -> i32 {
        // SAFETY: live, aligned ERESOURCE storage.
        unsafe { ntddk::ExDeleteResourceLite(self.ptr()) }
    }

    /// `ExAcquireResourceExclusiveLite`.
    pub fn exclusive(self, wait: bool) -> bool {
        // SAFETY: live, aligned ERESOURCE storage.
        unsafe { ntddk::ExAcquireResourceExclusiveLite(self.ptr(), u8::from(wait)) != 0 }
    }

    /// `ExAcquireResourceSharedLite`.
    pub fn shared(self, wait: bool) -> bool {
        // SAFETY: live, aligned ERESOURCE storage.
        unsafe { ntddk::ExAcquireResourceSharedLite(self.ptr(), u8::from(wait)) != 0 }
    }

    /// `ExAcquireSharedStarveExclusive`.
    pub fn shared_starve_exclusive(self, wait: bool) -> bool {
        // SAFETY: live, aligned ERESOURCE storage.
        unsafe { ntddk::ExAcquireSharedStarveExclusive(self.ptr(), u8::from(wait)) != 0 }
    }

    /// `ExAcquireSharedWaitForExclusive`.
    pub fn shared_wait_for_exclusive(self, wait: bool) -> bool {
        // SAFETY: live, aligned ERESOURCE storage.
        unsafe { ntddk::ExAcquireSharedWaitForExclusive(self.ptr(), u8::from(wait)) != 0 }
    }

    /// `ExConvertExclusiveToSharedLite`.
    pub fn convert_to_shared(self) {
        // SAFETY: live, aligned ERESOURCE storage.
        unsafe { ntddk::ExConvertExclusiveToSharedLite(self.ptr()) }
    }

    /// `ExReleaseResourceLite`.
    pub fn release(self) {
        // SAFETY: live, aligned ERESOURCE storage.
        unsafe { ntddk::ExReleaseResourceLite(self.ptr()) }
    }

    /// `ExReleaseResourceForThreadLite`.
    pub fn release_for_thread(self, thread: usize) {
        // SAFETY: live, aligned ERESOURCE storage; the id is a plain value.
        unsafe { ntddk::ExReleaseResourceForThreadLite(self.ptr(), thread as u64) }
    }

    /// `ExSetResourceOwnerPointer`.
    pub fn set_owner_pointer(self, owner: usize) {
        // SAFETY: live, aligned ERESOURCE storage; ntsim only compares the owner pointer.
        unsafe { ntddk::ExSetResourceOwnerPointer(self.ptr(), owner as PVOID) }
    }

    /// `ExSetResourceOwnerPointerEx`.
    pub fn set_owner_pointer_ex(self, owner: usize, flags: u32) {
        // SAFETY: live, aligned ERESOURCE storage; ntsim only compares the owner pointer.
        unsafe { ntddk::ExSetResourceOwnerPointerEx(self.ptr(), owner as PVOID, flags) }
    }

    /// `ExIsResourceAcquiredExclusiveLite`.
    pub fn is_exclusive(self) -> bool {
        // SAFETY: live, aligned ERESOURCE storage.
        unsafe { ntddk::ExIsResourceAcquiredExclusiveLite(self.ptr()) != 0 }
    }

    /// `ExIsResourceAcquiredSharedLite` (and the `ExIsResourceAcquiredLite` macro).
    pub fn shared_count(self) -> u32 {
        // SAFETY: live, aligned ERESOURCE storage.
        unsafe { ntddk::ExIsResourceAcquiredSharedLite(self.ptr()) }
    }

    /// `ExGetExclusiveWaiterCount`.
    pub fn exclusive_waiters(self) -> u32 {
        // SAFETY: live, aligned ERESOURCE storage.
        unsafe { ntddk::ExGetExclusiveWaiterCount(self.ptr()) }
    }

    /// `ExGetSharedWaiterCount`.
    pub fn shared_waiters(self) -> u32 {
        // SAFETY: live, aligned ERESOURCE storage.
        unsafe { ntddk::ExGetSharedWaiterCount(self.ptr()) }
    }

    /// `ExEnterCriticalRegionAndAcquireResourceExclusive`.
    pub fn enter_region_exclusive(self) {
        // SAFETY: live, aligned ERESOURCE storage.
        let _ = unsafe { ntddk::ExEnterCriticalRegionAndAcquireResourceExclusive(self.ptr()) };
    }

    /// `ExEnterCriticalRegionAndAcquireResourceShared`.
    pub fn enter_region_shared(self) {
        // SAFETY: live, aligned ERESOURCE storage.
        let _ = unsafe { ntddk::ExEnterCriticalRegionAndAcquireResourceShared(self.ptr()) };
    }

    /// `ExEnterCriticalRegionAndAcquireSharedWaitForExclusive`.
    pub fn enter_region_shared_wait_for_exclusive(self) {
        // SAFETY: live, aligned ERESOURCE storage.
        let _ = unsafe { ntddk::ExEnterCriticalRegionAndAcquireSharedWaitForExclusive(self.ptr()) };
    }

    /// `ExReleaseResourceAndLeaveCriticalRegion`.
    pub fn release_and_leave_region(self) {
        // SAFETY: live, aligned ERESOURCE storage.
        unsafe { ntddk::ExReleaseResourceAndLeaveCriticalRegion(self.ptr()) }
    }

    /// Polls (from an emulated thread) until `ExGetExclusiveWaiterCount` reaches `n`.
    pub fn await_exclusive_waiters(self, n: u32) {
        let began = Instant::now();
        while self.exclusive_waiters() != n {
            assert!(
                began.elapsed() < Duration::from_secs(60),
                "exclusive waiters never reached {n}"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Polls (from an emulated thread) until `ExGetSharedWaiterCount` reaches `n`.
    pub fn await_shared_waiters(self, n: u32) {
        let began = Instant::now();
        while self.shared_waiters() != n {
            assert!(
                began.elapsed() < Duration::from_secs(60),
                "shared waiters never reached {n}"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// A step counter threads use to order their actions.
#[derive(Debug)]
pub struct Steps(AtomicU32);

impl Steps {
    /// A counter at step 0, for a `static`.
    pub const fn zero() -> Self {
        Self(AtomicU32::new(0))
    }

    /// Leaked, so threads can share it by `&'static`.
    pub fn new() -> &'static Self {
        Box::leak(Box::new(Self(AtomicU32::new(0))))
    }

    /// Marks step `n` done.
    pub fn done(&self, n: u32) {
        self.0.fetch_max(n, Ordering::AcqRel);
    }

    /// Waits until step `n` is done (on an emulated thread: it halts there if the machine dies
    /// meanwhile).
    pub fn wait(&self, n: u32) {
        let began = Instant::now();
        while self.0.load(Ordering::Acquire) < n {
            if ntsim::context::try_current().is_some() {
                super::irql();
            }
            assert!(
                began.elapsed() < Duration::from_secs(60),
                "step {n} never came"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Waits (on the host) until the machine has bugchecked; for bug checks raised by threads the
/// test does not join.
pub fn await_bugcheck(machine: &Machine, within: Duration) -> BugCheck {
    let began = Instant::now();
    loop {
        if let Some(b) = machine.bugcheck() {
            return b;
        }
        assert!(began.elapsed() < within, "no bug check within {within:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
