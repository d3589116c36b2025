//! The lock layer, after `parking_lot`'s `lock_api` and Rust-for-Linux's `sync/lock.rs`.
//!
//! - A backend is one NT primitive (or one way of calling it): [`RawLock`] says what its kernel
//!   object is and how it is initialised and torn down. What it can do is a set of capability
//!   traits, each implemented only by the primitives that have it: [`RawExclusive`],
//!   [`RawTryExclusive`], [`RawShared`], [`RawExclusiveAtDpc`] (`…AtDpcLevel`, released by the
//!   matching `…FromDpcLevel`), [`RawTryAtDpc`], [`RawSharedAtDpc`]. [`NonRecursive`] marks the
//!   primitives whose holder can never be handed a second guard (only those give `&mut T`).
//! - [`Lock<T, B>`] owns the kernel object and the data it protects. It is only ever constructed
//!   initialised, in its final nonpaged pool allocation, pinned ([`Lock::try_new`]): kernel lock
//!   objects are linked by address (wait lists, queued-lock chains) and must not move, and no
//!   safe code can re-initialise a lock that may be held.
//! - [`Guard`] and [`SharedGuard`] are the only way to the data; their `Drop` releases with the
//!   acquisition's own state (the IRQL to restore, which DDI pair was used). They are `!Send`:
//!   an IRQL or an owner thread belongs to the thread and processor that acquired.
//! - Where the kernel needs the acquisition's state to stay put (the in-stack queued spin
//!   lock's `KLOCK_QUEUE_HANDLE`, linked into the lock's queue by address), acquisition is
//!   scoped to a closure instead ([`queued_spin_lock`]).
//!
//! One file per family; each also holds the family's stress table ([`crate::stress::TortureOps`]
//! for each of its variants) and its `run`, which [`runner`] maps from the protocol's registry.

use alloc::boxed::Box;
use core::{
    cell::UnsafeCell,
    marker::{PhantomData, PhantomPinned},
    ops::{Deref, DerefMut},
    pin::Pin,
    sync::atomic::AtomicBool,
};

use synclab_protocol::{wire::StressResponse, Primitive};
use wdk_sys::NTSTATUS;

use crate::{kernel::irql::AtDispatch, stress::Setup};

pub mod fast_mutex;
pub mod guarded_mutex;
pub mod kernel_mutex;
pub mod push_lock;
pub mod queued_spin_lock;
pub mod resource;
pub mod rw_spin_lock;
pub mod spin_lock;
pub mod wdf_spin_lock;
pub mod wdf_wait_lock;

/// How a run of one primitive starts: the family's `run`, which picks the variant.
pub type Runner = fn(&Setup, &AtomicBool) -> Result<Box<StressResponse>, NTSTATUS>;

/// The driver's half of the registry: the family that runs each [`Primitive`]. Validation and
/// the client read the same rows from [`synclab_protocol::primitive::REGISTRY`].
#[must_use]
pub fn runner(primitive: Primitive) -> Runner {
    match primitive {
        Primitive::SpinLock => spin_lock::run,
        Primitive::QueuedSpinLock => queued_spin_lock::run,
        Primitive::ReaderWriterSpinLock => rw_spin_lock::run,
        Primitive::FastMutex => fast_mutex::run,
        Primitive::GuardedMutex => guarded_mutex::run,
        Primitive::PushLock => push_lock::run,
        Primitive::Resource => resource::run,
        Primitive::KernelMutex => kernel_mutex::run,
        Primitive::WdfSpinLock => wdf_spin_lock::run,
        Primitive::WdfWaitLock => wdf_wait_lock::run,
    }
}

/// A kernel lock object: its storage and its life cycle.
///
/// # Safety
/// Implementors' capability traits must provide what they promise (exclusion for the exclusive
/// ones, no writer beside readers for the shared ones) once [`RawLock::init`] has succeeded,
/// until [`RawLock::destroy`].
pub unsafe trait RawLock {
    /// The kernel object (or its handle), before initialisation.
    type State;

    /// The object's storage before [`RawLock::init`] (zeroed, as the kernel expects).
    fn uninit() -> Self::State;

    /// Initialises the object in place.
    ///
    /// # Safety
    /// `state` is valid for writes, pinned in nonpaged memory, and not in use.
    ///
    /// # Errors
    /// The kernel's status when initialisation can fail (KMDF objects).
    unsafe fn init(state: *mut Self::State) -> Result<(), NTSTATUS>;

    /// Tears the object down before its memory is freed (`ExDeleteResourceLite`,
    /// `WdfObjectDelete`). Nothing by default.
    ///
    /// # Safety
    /// `state` was initialised and nobody holds or waits on it.
    unsafe fn destroy(_state: *mut Self::State) {}
}

/// Exclusive acquisition from a thread (IRQL as the primitive allows; see each file).
///
/// # Safety
/// Between a successful acquire and the matching [`RawExclusive::unlock`] no other context
/// holds the lock in any mode.
pub unsafe trait RawExclusive: RawLock {
    /// What one acquisition must remember for its release.
    type GuardState;

    /// Acquires exclusively, waiting or spinning as the primitive does.
    ///
    /// # Safety
    /// `state` was initialised and is pinned; the caller's IRQL and APC state meet the
    /// primitive's contract.
    unsafe fn lock(state: *mut Self::State) -> Self::GuardState;

    /// Releases an acquisition.
    ///
    /// # Safety
    /// The caller holds the lock through the acquisition that returned `guard`, on this thread
    /// and processor, and releases acquisitions in reverse order.
    unsafe fn unlock(state: *mut Self::State, guard: &Self::GuardState);
}

/// An exclusive acquire that gives up instead of waiting.
///
/// # Safety
/// As [`RawExclusive`] when it returns `Some`.
pub unsafe trait RawTryExclusive: RawExclusive {
    /// Acquires if the lock is free now.
    ///
    /// # Safety
    /// As [`RawExclusive::lock`].
    unsafe fn try_lock(state: *mut Self::State) -> Option<Self::GuardState>;
}

/// Exclusive acquisition by code already at `DISPATCH_LEVEL` (`…AtDpcLevel`); the guard state
/// says so, and [`RawExclusive::unlock`] then uses the matching `…FromDpcLevel`.
///
/// # Safety
/// As [`RawExclusive`].
pub unsafe trait RawExclusiveAtDpc: RawExclusive {
    /// Acquires at `DISPATCH_LEVEL`.
    ///
    /// # Safety
    /// As [`RawExclusive::lock`]; the caller is at `DISPATCH_LEVEL`.
    unsafe fn lock_at_dpc(state: *mut Self::State) -> Self::GuardState;
}

/// A try-acquire at `DISPATCH_LEVEL`.
///
/// # Safety
/// As [`RawExclusive`] when it returns `Some`.
pub unsafe trait RawTryAtDpc: RawExclusiveAtDpc {
    /// Acquires at `DISPATCH_LEVEL` if the lock is free now.
    ///
    /// # Safety
    /// As [`RawExclusiveAtDpc::lock_at_dpc`].
    unsafe fn try_lock_at_dpc(state: *mut Self::State) -> Option<Self::GuardState>;
}

/// Shared acquisition: any number of shared holders, never beside an exclusive one.
///
/// # Safety
/// Between a successful shared acquire and its release, no context holds the lock exclusively.
pub unsafe trait RawShared: RawLock {
    /// What one shared acquisition must remember for its release.
    type SharedGuardState;

    /// Acquires shared.
    ///
    /// # Safety
    /// As [`RawExclusive::lock`].
    unsafe fn lock_shared(state: *mut Self::State) -> Self::SharedGuardState;

    /// Releases a shared acquisition.
    ///
    /// # Safety
    /// As [`RawExclusive::unlock`], for a shared acquisition.
    unsafe fn unlock_shared(state: *mut Self::State, guard: &Self::SharedGuardState);
}

/// Shared acquisition at `DISPATCH_LEVEL`.
///
/// # Safety
/// As [`RawShared`].
pub unsafe trait RawSharedAtDpc: RawShared {
    /// Acquires shared at `DISPATCH_LEVEL`.
    ///
    /// # Safety
    /// As [`RawShared::lock_shared`]; the caller is at `DISPATCH_LEVEL`.
    unsafe fn lock_shared_at_dpc(state: *mut Self::State) -> Self::SharedGuardState;
}

/// The primitive never grants an exclusive holder a second acquisition (recursion bugchecks or
/// hangs), so an exclusive guard may hand out `&mut T`.
///
/// # Safety
/// No acquire, in any mode, by a context that holds the lock exclusively returns.
pub unsafe trait NonRecursive: RawLock {}

/// A lock of kind `B` protecting a `T`. Always initialised, pinned and in nonpaged pool.
pub struct Lock<T, B: RawLock> {
    state: UnsafeCell<B::State>,
    data: UnsafeCell<T>,
    /// `init` succeeded, so `Drop` must `destroy` (and only then).
    live: bool,
    _pin: PhantomPinned,
}

// SAFETY: the backend's capability traits provide exclusion (RawLock's contract), so sharing the
// lock lets one exclusive holder, or shared holders that only get `&T`, reach the `T`; `T: Send
// + Sync` because it is reached from whichever thread or DPC holds it, several at once when
// shared.
unsafe impl<T: Send + Sync, B: RawLock> Sync for Lock<T, B> {}

impl<T, B: RawLock> Lock<T, B> {
    /// A lock around `data`, initialised in its final nonpaged pool allocation and pinned
    /// there. IRQL: as the backend's initialiser (spin locks: any; KMDF objects and resources:
    /// <= `DISPATCH_LEVEL`).
    ///
    /// # Errors
    /// `STATUS_INSUFFICIENT_RESOURCES`, or the status of the backend's initialiser.
    pub fn try_new(data: T) -> Result<Pin<Box<Self>>, NTSTATUS> {
        let mut lock = crate::kernel::pool::try_pin(Self {
            state: UnsafeCell::new(B::uninit()),
            data: UnsafeCell::new(data),
            live: false,
            _pin: PhantomPinned,
        })?;
        // SAFETY: the state is in its final pinned, nonpaged place, and nothing can use it yet:
        // this function holds the only reference.
        unsafe { B::init(lock.state.get()) }?;
        // SAFETY: only the `live` flag is written; nothing is moved out of the pinned lock.
        unsafe { lock.as_mut().get_unchecked_mut() }.live = true;
        Ok(lock)
    }

    /// The kernel object, for the family files' closure-scoped acquires.
    pub(crate) const fn state(&self) -> *mut B::State {
        self.state.get()
    }

    /// The data, for the family files' closure-scoped acquires.
    ///
    /// # Safety
    /// The caller holds the lock in a mode that excludes writers for as long as the reference
    /// lives.
    pub(crate) const unsafe fn data(&self) -> &T {
        // SAFETY: the caller holds the lock (this function's contract).
        unsafe { &*self.data.get() }
    }
}

impl<T, B: RawLock> Drop for Lock<T, B> {
    fn drop(&mut self) {
        if self.live {
            // SAFETY: `&mut self` proves no guard borrows the lock, so nobody holds or waits on
            // it; `live` says `init` succeeded.
            unsafe { B::destroy(self.state.get()) };
        }
    }
}

impl<T, B: RawExclusive> Lock<T, B> {
    /// Acquires exclusively. IRQL and APC state: as the backend's acquire (see its file).
    #[must_use = "the lock is released when the guard is dropped"]
    pub fn lock(self: Pin<&Self>) -> Guard<'_, T, B> {
        // SAFETY: initialised and pinned (`try_new` is the only constructor); the IRQL contract
        // is the caller's, documented on each backend.
        let state = unsafe { B::lock(self.state.get()) };
        Guard::new(self.get_ref(), state)
    }
}

impl<T, B: RawTryExclusive> Lock<T, B> {
    /// Acquires exclusively if the lock is free now. IRQL: as [`Lock::lock`].
    #[must_use = "the lock is released when the guard is dropped"]
    pub fn try_lock(self: Pin<&Self>) -> Option<Guard<'_, T, B>> {
        // SAFETY: initialised and pinned (`try_new` is the only constructor); the IRQL contract
        // is the caller's, documented on each backend.
        let state = unsafe { B::try_lock(self.state.get()) }?;
        Some(Guard::new(self.get_ref(), state))
    }
}

impl<T, B: RawExclusiveAtDpc> Lock<T, B> {
    /// Acquires exclusively at `DISPATCH_LEVEL` (`…AtDpcLevel`).
    #[must_use = "the lock is released when the guard is dropped"]
    pub fn lock_at_dpc<'a>(self: Pin<&'a Self>, _at: &AtDispatch<'_>) -> Guard<'a, T, B> {
        // SAFETY: initialised and pinned (`try_new` is the only constructor); `_at` proves the
        // caller runs at DISPATCH_LEVEL, as the `…AtDpcLevel` acquires require.
        let state = unsafe { B::lock_at_dpc(self.state.get()) };
        Guard::new(self.get_ref(), state)
    }
}

impl<T, B: RawTryAtDpc> Lock<T, B> {
    /// Acquires exclusively at `DISPATCH_LEVEL` if the lock is free now.
    #[must_use = "the lock is released when the guard is dropped"]
    pub fn try_lock_at_dpc<'a>(
        self: Pin<&'a Self>,
        _at: &AtDispatch<'_>,
    ) -> Option<Guard<'a, T, B>> {
        // SAFETY: initialised and pinned (`try_new` is the only constructor); `_at` proves the
        // caller runs at DISPATCH_LEVEL.
        let state = unsafe { B::try_lock_at_dpc(self.state.get()) }?;
        Some(Guard::new(self.get_ref(), state))
    }
}

impl<T, B: RawShared> Lock<T, B> {
    /// Acquires shared. IRQL: as the backend's shared acquire.
    #[must_use = "the lock is released when the guard is dropped"]
    pub fn lock_shared(self: Pin<&Self>) -> SharedGuard<'_, T, B> {
        // SAFETY: initialised and pinned (`try_new` is the only constructor); the IRQL contract
        // is the caller's, documented on each backend.
        let state = unsafe { B::lock_shared(self.state.get()) };
        SharedGuard::new(self.get_ref(), state)
    }
}

impl<T, B: RawSharedAtDpc> Lock<T, B> {
    /// Acquires shared at `DISPATCH_LEVEL`.
    #[must_use = "the lock is released when the guard is dropped"]
    pub fn lock_shared_at_dpc<'a>(
        self: Pin<&'a Self>,
        _at: &AtDispatch<'_>,
    ) -> SharedGuard<'a, T, B> {
        // SAFETY: initialised and pinned (`try_new` is the only constructor); `_at` proves the
        // caller runs at DISPATCH_LEVEL.
        let state = unsafe { B::lock_shared_at_dpc(self.state.get()) };
        SharedGuard::new(self.get_ref(), state)
    }
}

/// An exclusive acquisition. The data is reachable while it lives; dropping it releases the
/// lock with this acquisition's state.
#[must_use = "the lock is released when the guard is dropped"]
pub struct Guard<'a, T, B: RawExclusive> {
    lock: &'a Lock<T, B>,
    state: B::GuardState,
    _not_send: PhantomData<*mut ()>,
}

impl<'a, T, B: RawExclusive> Guard<'a, T, B> {
    pub(crate) const fn new(lock: &'a Lock<T, B>, state: B::GuardState) -> Self {
        Self {
            lock,
            state,
            _not_send: PhantomData,
        }
    }

    /// The lock this guard holds.
    pub(crate) const fn lock(&self) -> &'a Lock<T, B> {
        self.lock
    }

    /// Gives up the guard without releasing, returning its state (for a family's conversion
    /// routine, which hands the acquisition to another guard).
    pub(crate) fn into_state(self) -> B::GuardState {
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped or used again, so its state is moved out exactly once.
        unsafe { core::ptr::read(&raw const this.state) }
    }
}

impl<T, B: RawExclusive> Deref for Guard<'_, T, B> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the guard proves an exclusive hold, so only this context reaches the data
        // (a recursive holder's second guard gives `&T` too, never `&mut T`).
        unsafe { &*self.lock.data.get() }
    }
}

impl<T, B: RawExclusive + NonRecursive> DerefMut for Guard<'_, T, B> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: an exclusive hold of a non-recursive lock: this guard is the only one, so
        // this is the only reference to the data while it lives.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T, B: RawExclusive> Drop for Guard<'_, T, B> {
    fn drop(&mut self) {
        // SAFETY: this guard is the acquisition that produced `state`, on this thread (guards
        // are !Send); guards drop in reverse order of creation within a scope.
        unsafe { B::unlock(self.lock.state.get(), &self.state) };
    }
}

/// A shared acquisition: `&T` only.
#[must_use = "the lock is released when the guard is dropped"]
pub struct SharedGuard<'a, T, B: RawShared> {
    lock: &'a Lock<T, B>,
    state: B::SharedGuardState,
    _not_send: PhantomData<*mut ()>,
}

impl<'a, T, B: RawShared> SharedGuard<'a, T, B> {
    pub(crate) const fn new(lock: &'a Lock<T, B>, state: B::SharedGuardState) -> Self {
        Self {
            lock,
            state,
            _not_send: PhantomData,
        }
    }

    /// The lock this guard holds.
    pub(crate) const fn lock(&self) -> &'a Lock<T, B> {
        self.lock
    }

    /// Gives up the guard without releasing, returning its state (for a conversion).
    pub(crate) fn into_state(self) -> B::SharedGuardState {
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped or used again, so its state is moved out exactly once.
        unsafe { core::ptr::read(&raw const this.state) }
    }
}

impl<T, B: RawShared> Deref for SharedGuard<'_, T, B> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: a shared hold excludes writers, and shared holders only get `&T`.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T, B: RawShared> Drop for SharedGuard<'_, T, B> {
    fn drop(&mut self) {
        // SAFETY: this guard is the shared acquisition that produced `state`, on this thread.
        unsafe { B::unlock_shared(self.lock.state.get(), &self.state) };
    }
}
