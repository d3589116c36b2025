//! Safe wrappers for the blocking locks: fast and guarded mutexes, push locks, WDF wait locks.
//! As in the parent module, every pointer passed is to leaked (live, resident, aligned) storage;
//! misuse of IRQL, APC state or ownership is what ntsim turns into a bug check.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use ntsim::{
    wdk_sys::{
        call_unsafe_wdf_function_binding, ntddk, FAST_MUTEX, NTSTATUS, PVOID, ULONG_PTR,
        WDFWAITLOCK, WDF_NO_OBJECT_ATTRIBUTES,
    },
    HostError, Machine,
};

/// `PsGetCurrentThread` (the value lock owners are recorded as).
pub fn current_thread() -> u64 {
    ntsim::ddi::thread::PsGetCurrentThread() as u64
}

/// A `FAST_MUTEX` (also a `KGUARDED_MUTEX`) in leaked memory, addressed by value.
#[derive(Clone, Copy, Debug)]
pub struct Mutex(usize);

impl Mutex {
    /// A mutex initialised the way the WDK's `FORCEINLINE` `ExInitializeFastMutex` does (ddi.md
    /// 0.4): `Count = 1` (free), `Owner = NULL`, `Contention = 0`, and the event as
    /// `KeInitializeEvent(&Event, SynchronizationEvent, FALSE)` leaves it (header type 1, size 6
    /// in 4-byte units, not signaled, empty wait list pointing to itself).
    pub fn new() -> Self {
        let mut m = Box::<FAST_MUTEX>::default();
        m.Count = 1;
        m.Owner = std::ptr::null_mut();
        m.Contention = 0;
        // Type (byte 0) = SynchronizationEvent, Size (byte 2) = 6.
        m.Event.Header.__bindgen_anon_1.Lock = 1 | (6 << 16);
        m.Event.Header.SignalState = 0;
        let list = &raw mut m.Event.Header.WaitListHead;
        m.Event.Header.WaitListHead.Flink = list;
        m.Event.Header.WaitListHead.Blink = list;
        Self(Box::into_raw(m) as usize)
    }

    /// Zeroed storage: never initialised.
    pub fn zeroed() -> Self {
        Self(Box::into_raw(Box::<FAST_MUTEX>::default()) as usize)
    }

    /// Zeroed storage initialised with `KeInitializeGuardedMutex` (call on an emulated thread).
    pub fn guarded() -> Self {
        let m = Self::zeroed();
        // SAFETY: leaked, aligned, unused FAST_MUTEX.
        unsafe { ntddk::KeInitializeGuardedMutex(m.ptr()) };
        m
    }

    /// Its address as bug check parameters show it.
    pub const fn addr(self) -> u64 {
        self.0 as u64
    }

    /// Its address as a `usize`.
    pub const fn raw(self) -> usize {
        self.0
    }

    const fn ptr(self) -> *mut FAST_MUTEX {
        self.0 as *mut FAST_MUTEX
    }

    /// Contexts asleep in an acquire of this mutex.
    pub fn sleepers(self) -> u32 {
        // SAFETY: leaked, aligned FAST_MUTEX.
        unsafe { ntsim::ddi::fast_mutex::sleeping_waiters(self.ptr()) }
    }

    /// A copy of the structure's current contents.
    pub const fn snapshot(self) -> FAST_MUTEX {
        // SAFETY: leaked, aligned FAST_MUTEX; a racy read only matters to tests that read while
        // no other thread uses it.
        unsafe { self.ptr().read() }
    }

    /// `ExAcquireFastMutex`.
    pub fn acquire(self) {
        // SAFETY: leaked, aligned FAST_MUTEX.
        unsafe { ntddk::ExAcquireFastMutex(self.ptr()) }
    }

    /// `ExTryToAcquireFastMutex`.
    pub fn try_acquire(self) -> bool {
        // SAFETY: leaked, aligned FAST_MUTEX.
        unsafe { ntddk::ExTryToAcquireFastMutex(self.ptr()) != 0 }
    }

    /// `ExReleaseFastMutex`.
    pub fn release(self) {
        // SAFETY: leaked, aligned FAST_MUTEX.
        unsafe { ntddk::ExReleaseFastMutex(self.ptr()) }
    }

    /// `ExAcquireFastMutexUnsafe`.
    pub fn acquire_unsafe(self) {
        // SAFETY: leaked, aligned FAST_MUTEX.
        unsafe { ntddk::ExAcquireFastMutexUnsafe(self.ptr()) }
    }

    /// `ExReleaseFastMutexUnsafe`.
    pub fn release_unsafe(self) {
        // SAFETY: leaked, aligned FAST_MUTEX.
        unsafe { ntddk::ExReleaseFastMutexUnsafe(self.ptr()) }
    }

    /// `KeAcquireGuardedMutex`.
    pub fn acquire_guarded(self) {
        // SAFETY: leaked, aligned KGUARDED_MUTEX.
        unsafe { ntddk::KeAcquireGuardedMutex(self.ptr()) }
    }

    /// `KeTryToAcquireGuardedMutex`.
    pub fn try_acquire_guarded(self) -> bool {
        // SAFETY: leaked, aligned KGUARDED_MUTEX.
        unsafe { ntddk::KeTryToAcquireGuardedMutex(self.ptr()) != 0 }
    }

    /// `KeReleaseGuardedMutex`.
    pub fn release_guarded(self) {
        // SAFETY: leaked, aligned KGUARDED_MUTEX.
        unsafe { ntddk::KeReleaseGuardedMutex(self.ptr()) }
    }

    /// `KeAcquireGuardedMutexUnsafe`.
    pub fn acquire_guarded_unsafe(self) {
        // SAFETY: leaked, aligned KGUARDED_MUTEX.
        unsafe { ntddk::KeAcquireGuardedMutexUnsafe(self.ptr()) }
    }

    /// `KeReleaseGuardedMutexUnsafe`.
    pub fn release_guarded_unsafe(self) {
        // SAFETY: leaked, aligned KGUARDED_MUTEX.
        unsafe { ntddk::KeReleaseGuardedMutexUnsafe(self.ptr()) }
    }

    /// `KeInitializeGuardedMutex` on this storage again.
    pub fn reinitialize_guarded(self) {
        // SAFETY: leaked, aligned KGUARDED_MUTEX.
        unsafe { ntddk::KeInitializeGuardedMutex(self.ptr()) }
    }
}

/// An `EX_PUSH_LOCK` in leaked memory.
#[derive(Clone, Copy, Debug)]
pub struct PushLock(usize);

impl PushLock {
    /// New storage in the state `ExInitializePushLock` gives (0).
    pub fn new() -> Self {
        Self(Box::into_raw(Box::new(0 as ULONG_PTR)) as usize)
    }

    /// New storage filled with garbage (all ones), to be initialised with [`Self::initialize`].
    pub fn garbage() -> Self {
        Self(Box::into_raw(Box::new(ULONG_PTR::MAX)) as usize)
    }

    /// `ExInitializePushLock` (call on an emulated thread).
    pub fn initialize(self) {
        // SAFETY: leaked, aligned ULONG_PTR.
        unsafe { ntddk::ExInitializePushLock(self.ptr()) }
    }

    /// Its address as bug check parameters show it.
    pub const fn addr(self) -> u64 {
        self.0 as u64
    }

    const fn ptr(self) -> *mut ULONG_PTR {
        self.0 as *mut ULONG_PTR
    }

    /// (Exclusive requests queued, contexts asleep) on this lock.
    pub fn waiters(self) -> (u32, u32) {
        // SAFETY: leaked, aligned EX_PUSH_LOCK.
        unsafe { ntsim::ddi::push_lock::waiters(self.ptr()) }
    }

    /// `ExAcquirePushLockExclusiveEx`.
    pub fn acquire_exclusive_with(self, flags: u32) {
        // SAFETY: leaked, aligned EX_PUSH_LOCK.
        unsafe { ntddk::ExAcquirePushLockExclusiveEx(self.ptr(), flags) }
    }

    /// `ExAcquirePushLockSharedEx`.
    pub fn acquire_shared_with(self, flags: u32) {
        // SAFETY: leaked, aligned EX_PUSH_LOCK.
        unsafe { ntddk::ExAcquirePushLockSharedEx(self.ptr(), flags) }
    }

    /// `ExReleasePushLockExclusiveEx`.
    pub fn release_exclusive_with(self, flags: u32) {
        // SAFETY: leaked, aligned EX_PUSH_LOCK.
        unsafe { ntddk::ExReleasePushLockExclusiveEx(self.ptr(), flags) }
    }

    /// `ExReleasePushLockSharedEx`.
    pub fn release_shared_with(self, flags: u32) {
        // SAFETY: leaked, aligned EX_PUSH_LOCK.
        unsafe { ntddk::ExReleasePushLockSharedEx(self.ptr(), flags) }
    }

    /// `ExAcquirePushLockExclusive` (the macro: flags 0).
    pub fn acquire_exclusive(self) {
        self.acquire_exclusive_with(0);
    }

    /// `ExAcquirePushLockShared`.
    pub fn acquire_shared(self) {
        self.acquire_shared_with(0);
    }

    /// `ExReleasePushLockExclusive`.
    pub fn release_exclusive(self) {
        self.release_exclusive_with(0);
    }

    /// `ExReleasePushLockShared`.
    pub fn release_shared(self) {
        self.release_shared_with(0);
    }
}

/// A `WDFWAITLOCK` handle.
#[derive(Clone, Copy, Debug)]
pub struct WaitLock(usize);

impl WaitLock {
    /// `WdfWaitLockCreate` with no attributes.
    pub fn create() -> Self {
        let mut handle: WDFWAITLOCK = std::ptr::null_mut();
        // SAFETY: no attributes; a writable out handle.
        let status = unsafe {
            call_unsafe_wdf_function_binding!(
                WdfWaitLockCreate,
                WDF_NO_OBJECT_ATTRIBUTES,
                &raw mut handle
            )
        };
        assert_eq!(status, 0, "WdfWaitLockCreate");
        Self(handle as usize)
    }

    /// The lock whose handle is `raw` (from [`Self::raw`]).
    pub const fn from_addr(raw: usize) -> Self {
        Self(raw)
    }

    /// The handle as a `usize`, to share with other threads.
    pub const fn raw(self) -> usize {
        self.0
    }

    /// The handle as bug check parameters show it.
    pub const fn addr(self) -> u64 {
        self.0 as u64
    }

    const fn handle(self) -> WDFWAITLOCK {
        self.0 as WDFWAITLOCK
    }

    /// `WdfWaitLockAcquire`; `timeout` `None` is NULL (wait forever), else 100-ns units.
    pub fn acquire(self, timeout: Option<i64>) -> NTSTATUS {
        let mut value = timeout.unwrap_or(0);
        let pointer = if timeout.is_some() {
            &raw mut value
        } else {
            std::ptr::null_mut()
        };
        // SAFETY: a live handle; the timeout is NULL or a live LONGLONG.
        unsafe { call_unsafe_wdf_function_binding!(WdfWaitLockAcquire, self.handle(), pointer) }
    }

    /// Contexts asleep in an acquire of this lock (call on an emulated thread).
    pub fn sleepers(self) -> u32 {
        ntsim::wdf::wait_lock::sleeping_waiters(self.handle()).expect("a live wait lock")
    }

    /// `WdfWaitLockRelease`.
    pub fn release(self) {
        // SAFETY: a live handle.
        unsafe { call_unsafe_wdf_function_binding!(WdfWaitLockRelease, self.handle()) }
    }

    /// `WdfObjectDelete`.
    pub fn delete(self) {
        // SAFETY: a live handle.
        unsafe { call_unsafe_wdf_function_binding!(WdfObjectDelete, self.handle() as PVOID) }
    }
}

/// Waits (on an emulated thread) until `done` holds, checking back into the kernel every
/// millisecond so the thread halts if the machine dies. Gives up with a panic (a bug check of
/// the machine, so the test fails) after a minute.
pub fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting until {what}");
        std::thread::sleep(Duration::from_millis(1));
        let _ = super::irql();
    }
}

/// A job for [`run_parallel`].
pub type Job<T> = Box<dyn FnOnce() -> T + Send + 'static>;

/// Runs every job as its own system thread of `machine`, all at the same time; returns each
/// job's outcome in order.
pub fn run_parallel<T: Send + 'static>(
    machine: &Machine,
    jobs: Vec<Job<T>>,
) -> Vec<Result<T, HostError>> {
    std::thread::scope(|scope| {
        let running: Vec<_> = jobs
            .into_iter()
            .map(|job| scope.spawn(move || machine.run(job)))
            .collect();
        running
            .into_iter()
            .map(|t| t.join().expect("host thread"))
            .collect()
    })
}

/// A counter in host memory that emulated threads share, updated with a plain load and store
/// (not a read-modify-write): increments under a lock are exact only if the lock excludes.
#[derive(Clone, Debug, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    /// `value + 1`, as two separate accesses.
    pub fn bump(&self) {
        let value = self.0.load(Ordering::Relaxed);
        self.0.store(value + 1, Ordering::Relaxed);
    }

    /// The value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}
