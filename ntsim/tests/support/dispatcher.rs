//! Safe wrappers over the dispatcher-object DDIs (events, mutexes, semaphores, timers, waits)
//! and small thread helpers. Every object lives in leaked memory (resident, aligned, never
//! freed), and is addressed by value so it can cross threads; misuse is what ntsim turns into a
//! bug check rather than undefined behaviour.

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use ntsim::wdk_sys::{
    ntddk, HANDLE, KEVENT, KMUTEX, KSEMAPHORE, KTIMER, KWAIT_BLOCK, LARGE_INTEGER, PVOID,
};

use super::Dpc;

/// `STATUS_SUCCESS` / `STATUS_WAIT_0`.
pub const WAIT_0: i32 = 0;
/// `STATUS_TIMEOUT`.
pub const TIMEOUT: i32 = 0x102;
/// `STATUS_MUTANT_NOT_OWNED` as bug check P1.
pub const MUTANT_NOT_OWNED: u64 = 0xC000_0046;
/// `STATUS_SEMAPHORE_LIMIT_EXCEEDED` as bug check P1.
pub const SEMAPHORE_LIMIT_EXCEEDED: u64 = 0xC000_0047;

/// A timeout argument: `None` waits forever, `Some(0)` polls, negative is relative (100 ns),
/// positive is an absolute system time.
pub type Timeout = Option<i64>;

/// A relative time of `ms` milliseconds (100-ns units, negative).
pub const fn relative_ms(ms: i64) -> i64 {
    -ms * 10_000
}

/// The current system time (100 ns since 1601-01-01 UTC), from the host clock.
pub fn system_time() -> i64 {
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    116_444_736_000_000_000 + i64::try_from(unix.as_nanos() / 100).unwrap_or(i64::MAX)
}

/// The absolute system time `ms` milliseconds from now.
pub fn absolute_in_ms(ms: i64) -> i64 {
    system_time() + ms * 10_000
}

fn leak<T: Default>() -> usize {
    Box::into_raw(Box::<T>::default()) as usize
}

const fn large(t: i64) -> LARGE_INTEGER {
    LARGE_INTEGER { QuadPart: t }
}

fn timeout_ptr(value: &mut Option<LARGE_INTEGER>) -> *mut LARGE_INTEGER {
    value
        .as_mut()
        .map_or(std::ptr::null_mut(), std::ptr::from_mut)
}

/// Anything one can wait on: its address.
pub trait Waitable: Copy {
    /// The object's address.
    fn addr(self) -> usize;

    /// Its address as bug check parameters show it.
    fn param(self) -> u64 {
        self.addr() as u64
    }

    /// `KeWaitForSingleObject(Executive, KernelMode, FALSE, timeout)`.
    fn wait(self, timeout: Timeout) -> i32 {
        wait_single(self.addr(), timeout)
    }

    /// `DISPATCHER_HEADER.SignalState`, read from the host (after a bug check, say).
    fn state_in_memory(self) -> i32 {
        // SAFETY: the wrappers' objects are leaked, so never freed, and 8-byte aligned; a
        // volatile read of the LONG at offset 4 of the header.
        unsafe { ((self.addr() + 4) as *const i32).read_volatile() }
    }
}

/// `KeWaitForSingleObject` on any address (kernel mode, not alertable).
pub fn wait_single(object: usize, timeout: Timeout) -> i32 {
    let mut t = timeout.map(large);
    // SAFETY: `object` is a leaked dispatcher object (or garbage a test wants rejected);
    // `t` lives across the call.
    unsafe { ntddk::KeWaitForSingleObject(object as PVOID, 0, 0, 0, timeout_ptr(&mut t)) }
}

/// `KeWaitForMultipleObjects` (kernel mode, not alertable); `blocks` passes a wait-block array
/// of `objects.len()` entries.
pub fn wait_multiple(objects: &[usize], all: bool, timeout: Timeout, blocks: bool) -> i32 {
    wait_multiple_count(
        objects,
        u32::try_from(objects.len()).unwrap_or(u32::MAX),
        all,
        timeout,
        blocks,
    )
}

/// `KeWaitForMultipleObjects` with an explicit `count` (for limit tests).
pub fn wait_multiple_count(
    objects: &[usize],
    count: u32,
    all: bool,
    timeout: Timeout,
    blocks: bool,
) -> i32 {
    let mut array: Vec<PVOID> = objects.iter().map(|&o| o as PVOID).collect();
    let mut wait_blocks = vec![KWAIT_BLOCK::default(); objects.len().max(1)];
    let block_ptr = if blocks {
        wait_blocks.as_mut_ptr()
    } else {
        std::ptr::null_mut()
    };
    let mut t = timeout.map(large);
    // SAFETY: `array` holds `count` pointers (or fewer only when the call must bugcheck before
    // reading them), `wait_blocks` as many wait blocks; both live across the call.
    unsafe {
        ntddk::KeWaitForMultipleObjects(
            count,
            array.as_mut_ptr(),
            i32::from(!all),
            0,
            0,
            0,
            timeout_ptr(&mut t),
            block_ptr,
        )
    }
}

/// A `KEVENT` in leaked memory.
#[derive(Clone, Copy, Debug)]
pub struct Event(usize);

impl Waitable for Event {
    fn addr(self) -> usize {
        self.0
    }
}

impl Event {
    /// `KeInitializeEvent(NotificationEvent, signaled)`.
    pub fn notification(signaled: bool) -> Self {
        Self::alloc().init(0, signaled)
    }

    /// `KeInitializeEvent(SynchronizationEvent, signaled)`.
    pub fn synchronization(signaled: bool) -> Self {
        Self::alloc().init(1, signaled)
    }

    /// Zeroed storage for an event (allocated on the host; initialise it in the machine).
    pub fn alloc() -> Self {
        Self(leak::<KEVENT>())
    }

    /// `KeInitializeEvent(kind, signaled)` on this storage.
    pub fn init(self, kind: i32, signaled: bool) -> Self {
        // SAFETY: leaked, aligned KEVENT storage that is not in use.
        unsafe { ntddk::KeInitializeEvent(self.ptr(), kind, u8::from(signaled)) };
        self
    }

    const fn ptr(self) -> *mut KEVENT {
        self.0 as *mut KEVENT
    }

    /// The object at `addr` (from [`Waitable::addr`], passed as a context pointer).
    pub const fn from_context(addr: usize) -> Self {
        Self(addr)
    }

    /// `KeSetEvent(Wait = FALSE)`: the previous state.
    pub fn set(self) -> i32 {
        // SAFETY: leaked, initialised KEVENT.
        unsafe { ntddk::KeSetEvent(self.ptr(), 0, 0) }
    }

    /// `KeSetEvent(Wait = TRUE)`: the previous state; a wait must follow.
    pub fn set_and_wait(self) -> i32 {
        // SAFETY: leaked, initialised KEVENT.
        unsafe { ntddk::KeSetEvent(self.ptr(), 0, 1) }
    }

    /// `KePulseEvent(Wait = FALSE)`: the previous state.
    pub fn pulse(self) -> i32 {
        // SAFETY: leaked, initialised KEVENT.
        unsafe { ntddk::KePulseEvent(self.ptr(), 0, 0) }
    }

    /// `KePulseEvent(Wait = TRUE)`.
    pub fn pulse_and_wait(self) -> i32 {
        // SAFETY: leaked, initialised KEVENT.
        unsafe { ntddk::KePulseEvent(self.ptr(), 0, 1) }
    }

    /// `KeResetEvent`: the previous state.
    pub fn reset(self) -> i32 {
        // SAFETY: leaked, initialised KEVENT.
        unsafe { ntddk::KeResetEvent(self.ptr()) }
    }

    /// `KeClearEvent`.
    pub fn clear(self) {
        // SAFETY: leaked, initialised KEVENT.
        unsafe { ntddk::KeClearEvent(self.ptr()) }
    }

    /// `KeReadStateEvent`.
    pub fn state(self) -> i32 {
        // SAFETY: leaked, initialised KEVENT.
        unsafe { ntddk::KeReadStateEvent(self.ptr()) }
    }
}

/// A `KMUTEX` in leaked memory.
#[derive(Clone, Copy, Debug)]
pub struct KMutex(usize);

impl Waitable for KMutex {
    fn addr(self) -> usize {
        self.0
    }
}

impl KMutex {
    /// `KeInitializeMutex(0)`.
    pub fn new() -> Self {
        Self::alloc().init()
    }

    /// Zeroed storage for a mutex (allocated on the host; initialise it in the machine).
    pub fn alloc() -> Self {
        Self(leak::<KMUTEX>())
    }

    /// `KeInitializeMutex(0)` on this storage.
    pub fn init(self) -> Self {
        // SAFETY: leaked, aligned KMUTEX storage that is not in use.
        unsafe { ntddk::KeInitializeMutex(self.ptr(), 0) };
        self
    }

    const fn ptr(self) -> *mut KMUTEX {
        self.0 as *mut KMUTEX
    }

    /// The object at `addr` (from [`Waitable::addr`], passed as a context pointer).
    pub const fn from_context(addr: usize) -> Self {
        Self(addr)
    }

    /// Its address, as bug check parameters show it.
    pub const fn addr_for_tests(self) -> usize {
        self.0
    }

    /// `KeWaitForMutexObject` (= `KeWaitForSingleObject`) without a timeout.
    pub fn acquire(self) -> i32 {
        self.wait(None)
    }

    /// `KeReleaseMutex(Wait = FALSE)`: the previous signal state.
    pub fn release(self) -> i32 {
        // SAFETY: leaked, initialised KMUTEX.
        unsafe { ntddk::KeReleaseMutex(self.ptr(), 0) }
    }

    /// `KeReleaseMutex(Wait = TRUE)`.
    pub fn release_and_wait(self) -> i32 {
        // SAFETY: leaked, initialised KMUTEX.
        unsafe { ntddk::KeReleaseMutex(self.ptr(), 1) }
    }

    /// `KeReadStateMutex`.
    pub fn state(self) -> i32 {
        // SAFETY: leaked, initialised KMUTEX.
        unsafe { ntddk::KeReadStateMutex(self.ptr()) }
    }

    /// `OwnerThread`, read from the host (after a bug check, say).
    pub fn owner_in_memory(self) -> usize {
        // SAFETY: leaked KMUTEX, never freed; a plain read of a pointer-sized field.
        unsafe { (*self.ptr()).OwnerThread as usize }
    }
}

/// A `KSEMAPHORE` in leaked memory.
#[derive(Clone, Copy, Debug)]
pub struct Semaphore(usize);

impl Waitable for Semaphore {
    fn addr(self) -> usize {
        self.0
    }
}

impl Semaphore {
    /// `KeInitializeSemaphore(count, limit)`.
    pub fn new(count: i32, limit: i32) -> Self {
        Self::alloc().init(count, limit)
    }

    /// Zeroed storage for a semaphore (allocated on the host; initialise it in the machine).
    pub fn alloc() -> Self {
        Self(leak::<KSEMAPHORE>())
    }

    /// `KeInitializeSemaphore(count, limit)` on this storage.
    pub fn init(self, count: i32, limit: i32) -> Self {
        // SAFETY: leaked, aligned KSEMAPHORE storage that is not in use.
        unsafe { ntddk::KeInitializeSemaphore(self.ptr(), count, limit) };
        self
    }

    const fn ptr(self) -> *mut KSEMAPHORE {
        self.0 as *mut KSEMAPHORE
    }

    /// The object at `addr` (from [`Waitable::addr`], passed as a context pointer).
    pub const fn from_context(addr: usize) -> Self {
        Self(addr)
    }

    /// `KeReleaseSemaphore(adjustment, Wait = FALSE)`: the previous count.
    pub fn release(self, adjustment: i32) -> i32 {
        // SAFETY: leaked, initialised KSEMAPHORE.
        unsafe { ntddk::KeReleaseSemaphore(self.ptr(), 0, adjustment, 0) }
    }

    /// `KeReleaseSemaphore(adjustment, Wait = TRUE)`.
    pub fn release_and_wait(self, adjustment: i32) -> i32 {
        // SAFETY: leaked, initialised KSEMAPHORE.
        unsafe { ntddk::KeReleaseSemaphore(self.ptr(), 0, adjustment, 1) }
    }

    /// `KeReadStateSemaphore`.
    pub fn state(self) -> i32 {
        // SAFETY: leaked, initialised KSEMAPHORE.
        unsafe { ntddk::KeReadStateSemaphore(self.ptr()) }
    }
}

/// A `KTIMER` in leaked memory (or in pool, for the free test).
#[derive(Clone, Copy, Debug)]
pub struct Timer(usize);

impl Waitable for Timer {
    fn addr(self) -> usize {
        self.0
    }
}

impl Timer {
    /// `KeInitializeTimer`: a notification timer.
    pub fn new() -> Self {
        let timer = Self(leak::<KTIMER>());
        // SAFETY: leaked, aligned, unused KTIMER.
        unsafe { ntddk::KeInitializeTimer(timer.ptr()) };
        timer
    }

    /// `KeInitializeTimerEx(SynchronizationTimer)`.
    pub fn synchronization() -> Self {
        Self::at_synchronization(leak::<KTIMER>())
    }

    /// `KeInitializeTimerEx(NotificationTimer)` on the 64 writable bytes at `addr`.
    pub fn at_notification(addr: usize) -> Self {
        let timer = Self(addr);
        // SAFETY: the caller hands 64 writable, aligned bytes that are not an armed timer.
        unsafe { ntddk::KeInitializeTimerEx(timer.ptr(), 0) };
        timer
    }

    fn at_synchronization(addr: usize) -> Self {
        let timer = Self(addr);
        // SAFETY: leaked, aligned, unused KTIMER.
        unsafe { ntddk::KeInitializeTimerEx(timer.ptr(), 1) };
        timer
    }

    const fn ptr(self) -> *mut KTIMER {
        self.0 as *mut KTIMER
    }

    /// The object at `addr` (from [`Waitable::addr`], passed as a context pointer).
    pub const fn from_context(addr: usize) -> Self {
        Self(addr)
    }

    /// `KeSetTimer`: whether it was armed.
    pub fn set(self, due: i64, dpc: Option<Dpc>) -> bool {
        let dpc = dpc.map_or(std::ptr::null_mut(), Dpc::ptr);
        // SAFETY: leaked, initialised KTIMER and KDPC.
        unsafe { ntddk::KeSetTimer(self.ptr(), LARGE_INTEGER { QuadPart: due }, dpc) != 0 }
    }

    /// `KeSetTimerEx`: whether it was armed.
    pub fn set_periodic(self, due: i64, period_ms: i32, dpc: Option<Dpc>) -> bool {
        let dpc = dpc.map_or(std::ptr::null_mut(), Dpc::ptr);
        // SAFETY: leaked, initialised KTIMER and KDPC.
        unsafe {
            ntddk::KeSetTimerEx(self.ptr(), LARGE_INTEGER { QuadPart: due }, period_ms, dpc) != 0
        }
    }

    /// `KeCancelTimer`: whether it was armed.
    pub fn cancel(self) -> bool {
        // SAFETY: leaked, initialised KTIMER.
        unsafe { ntddk::KeCancelTimer(self.ptr()) != 0 }
    }

    /// `KeReadStateTimer`.
    pub fn state(self) -> bool {
        // SAFETY: leaked, initialised KTIMER.
        unsafe { ntddk::KeReadStateTimer(self.ptr()) != 0 }
    }
}

/// A thread object (`PETHREAD`) referenced from a handle.
#[derive(Clone, Copy, Debug)]
pub struct ThreadObject(usize);

impl Waitable for ThreadObject {
    fn addr(self) -> usize {
        self.0
    }
}

type Closure = Box<dyn FnOnce() + Send + 'static>;

unsafe extern "C" fn trampoline(context: PVOID) {
    // SAFETY: `context` is the `Box<Closure>` leaked by `spawn_fn`, handed to this thread only.
    let f = unsafe { Box::from_raw(context.cast::<Closure>()) };
    f();
}

/// `PsCreateSystemThread` running `f`; returns the handle.
pub fn spawn_fn(f: impl FnOnce() + Send + 'static) -> HANDLE {
    let boxed: Box<Closure> = Box::new(Box::new(f));
    super::spawn(trampoline, Box::into_raw(boxed) as usize)
}

/// References the thread behind `handle` and closes the handle.
pub fn thread_object(handle: HANDLE) -> ThreadObject {
    let mut object: PVOID = std::ptr::null_mut();
    // SAFETY: reading the exported PsThreadType variable, set once at boot.
    let thread_type_ptr = unsafe { ntsim::ddi::thread::PsThreadType };
    // SAFETY: it points to the thread object type, valid for the process's life.
    let thread_type = unsafe { *thread_type_ptr };
    // SAFETY: `handle` is open; `object` is writable.
    let status = unsafe {
        ntddk::ObReferenceObjectByHandle(
            handle,
            0x0010_0000,
            thread_type,
            0,
            &raw mut object,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(status, 0, "ObReferenceObjectByHandle");
    // SAFETY: closing the handle we own.
    let status = unsafe { ntddk::ZwClose(handle) };
    assert_eq!(status, 0, "ZwClose");
    ThreadObject(object as usize)
}

/// `PsGetCurrentThread`, declared by drivers themselves (errata 3).
pub fn current_thread() -> usize {
    ntsim::ddi::thread::PsGetCurrentThread() as usize
}

/// `KeDelayExecutionThread` for `ms` milliseconds.
pub fn sleep_ms(ms: i64) {
    let mut interval = LARGE_INTEGER {
        QuadPart: -ms * 10_000,
    };
    // SAFETY: `interval` lives across the call.
    let status = unsafe { ntddk::KeDelayExecutionThread(0, 0, &raw mut interval) };
    assert_eq!(status, 0, "KeDelayExecutionThread");
}

/// A counter in leaked memory, shared by value.
#[derive(Clone, Copy, Debug)]
pub struct Counter(&'static AtomicUsize);

impl Counter {
    /// A new counter at 0.
    pub fn new() -> Self {
        Self(Box::leak(Box::new(AtomicUsize::new(0))))
    }

    /// Adds one; returns the new value.
    pub fn bump(self) -> usize {
        self.0.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Adds `n`.
    pub fn add(self, n: usize) {
        self.0.fetch_add(n, Ordering::AcqRel);
    }

    /// The value.
    pub fn get(self) -> usize {
        self.0.load(Ordering::Acquire)
    }

    /// Stores `v`.
    pub fn store(self, v: usize) {
        self.0.store(v, Ordering::Release);
    }

    /// Its address, as a context pointer.
    pub fn context(self) -> usize {
        std::ptr::from_ref(self.0) as usize
    }

    /// The counter at `addr` (from [`Counter::context`]).
    pub const fn from_context(addr: usize) -> Self {
        // SAFETY: `addr` comes from `Counter::context` of a leaked counter.
        Self(unsafe { &*(addr as *const AtomicUsize) })
    }

    /// Sleeps (`KeDelayExecutionThread`) until the value reaches `n`; false after ~10 s.
    pub fn wait_for(self, n: usize) -> bool {
        for _ in 0..10_000 {
            if self.get() >= n {
                return true;
            }
            sleep_ms(1);
        }
        self.get() >= n
    }
}
