//! The lock layer, after Rust-for-Linux's `sync/lock.rs` and `lock_api`.
//!
//! - A [`Backend`] is one NT primitive: its storage ([`Backend::State`], the kernel's lock
//!   object) and what one acquisition must remember ([`Backend::GuardState`], e.g. the IRQL to
//!   restore). One file per primitive.
//! - [`Lock<T, B>`] owns the primitive and the data it protects; it is pinned, because kernel
//!   lock objects must not move while in use, and lives in nonpaged memory (the driver's
//!   allocator is nonpaged pool).
//! - [`Guard`] is the only way to the data. Its `Drop` releases with the acquisition's own
//!   state; it is `!Send`, since an IRQL must be restored on the processor and thread that
//!   raised it. There is no bare acquire or release anywhere in the driver.

use core::{
    cell::UnsafeCell,
    marker::{PhantomData, PhantomPinned},
    ops::Deref,
    pin::Pin,
};

use crate::kernel::irql::AtDispatch;

pub mod busted;
pub mod spin_lock;

/// One kernel lock primitive.
///
/// # Safety
/// Implementors guarantee mutual exclusion between a successful [`Backend::lock`] (or
/// [`DpcBackend::lock_at_dpc`]) and the matching [`Backend::unlock`] on the same state, except
/// the deliberately broken backend of [`busted`], whose whole point is to break it (it is only
/// ever used to prove that the stress harness reports FAILURE).
pub unsafe trait Backend {
    /// The kernel lock object.
    type State;
    /// What one acquisition must remember for its release.
    type GuardState;

    /// Initialises the lock object in place.
    ///
    /// # Safety
    /// `state` is valid for writes, pinned, and not in use.
    unsafe fn init(state: *mut Self::State);

    /// Acquires from IRQL <= `DISPATCH_LEVEL`.
    ///
    /// # Safety
    /// `state` was initialised, is pinned, and is not held by the caller.
    unsafe fn lock(state: *mut Self::State) -> Self::GuardState;

    /// Releases an acquisition.
    ///
    /// # Safety
    /// The caller holds the lock through the acquisition that returned `guard`, on this
    /// thread and processor, and releases acquisitions in reverse order.
    unsafe fn unlock(state: *mut Self::State, guard: &Self::GuardState);
}

/// A primitive that can also be acquired by code already at `DISPATCH_LEVEL` (a DPC).
///
/// # Safety
/// As [`Backend`].
pub unsafe trait DpcBackend: Backend {
    /// Acquires at `DISPATCH_LEVEL` (`…AtDpcLevel`).
    ///
    /// # Safety
    /// As [`Backend::lock`]; the caller is at `DISPATCH_LEVEL`.
    unsafe fn lock_at_dpc(state: *mut Self::State) -> Self::GuardState;
}

/// A lock of kind `B` protecting a `T`.
pub struct Lock<T, B: Backend> {
    state: UnsafeCell<B::State>,
    data: UnsafeCell<T>,
    _pin: PhantomPinned,
}

// SAFETY: the backend provides mutual exclusion (Backend's contract), so sharing the lock lets
// one context at a time reach the `T`; `T: Send` because the data is reached from whichever
// thread or DPC holds it.
unsafe impl<T: Send, B: Backend> Sync for Lock<T, B> {}
// SAFETY: the lock owns its `T` and kernel state; moving it between threads (before pinning) is
// moving plain data.
unsafe impl<T: Send, B: Backend> Send for Lock<T, B> where B::State: Send {}

impl<T, B: Backend> Lock<T, B>
where
    B::State: Default,
{
    /// A lock around `data`, to be pinned and then initialised with [`Lock::init`].
    pub fn new(data: T) -> Self {
        Self {
            state: UnsafeCell::new(B::State::default()),
            data: UnsafeCell::new(data),
            _pin: PhantomPinned,
        }
    }
}

impl<T, B: Backend> Lock<T, B> {
    /// Initialises the kernel lock object in its final (pinned) place. Any IRQL the backend's
    /// initialiser allows (spin locks: any).
    pub fn init(self: Pin<&Self>) {
        // SAFETY: pinned (so it will not move while in use) and not in use yet: nothing can
        // have acquired a lock that is still being initialised by its only reference holder.
        unsafe { B::init(self.state.get()) };
    }

    /// Acquires the lock. IRQL: as the backend's acquire (spin locks: <= `DISPATCH_LEVEL`; the
    /// holder runs at `DISPATCH_LEVEL`).
    #[must_use = "the lock is released when the guard is dropped"]
    pub fn lock(self: Pin<&Self>) -> Guard<'_, T, B> {
        // SAFETY: initialised and pinned (Lock::init before use is the owner's contract);
        // recursion is caught by the kernel (it would hang on Windows).
        let state = unsafe { B::lock(self.state.get()) };
        Guard {
            lock: self.get_ref(),
            state,
            _not_send: PhantomData,
        }
    }
}

impl<T, B: DpcBackend> Lock<T, B> {
    /// Acquires the lock from a DPC routine (already at `DISPATCH_LEVEL`).
    #[must_use = "the lock is released when the guard is dropped"]
    pub fn lock_at_dpc<'a>(self: Pin<&'a Self>, _at: &AtDispatch<'_>) -> Guard<'a, T, B> {
        // SAFETY: as in `lock`; `_at` proves the caller is a DPC routine at DISPATCH_LEVEL.
        let state = unsafe { B::lock_at_dpc(self.state.get()) };
        Guard {
            lock: self.get_ref(),
            state,
            _not_send: PhantomData,
        }
    }
}

/// An acquisition. The data is reachable while it lives; dropping it releases the lock with
/// this acquisition's state.
#[must_use = "the lock is released when the guard is dropped"]
pub struct Guard<'a, T, B: Backend> {
    lock: &'a Lock<T, B>,
    state: B::GuardState,
    _not_send: PhantomData<*mut ()>,
}

impl<T, B: Backend> Deref for Guard<'_, T, B> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the guard proves the lock is held, so no other context has a reference to the
        // data (busted backend excepted, which only stresses atomics).
        unsafe { &*self.lock.data.get() }
    }
}

impl<T, B: Backend> Drop for Guard<'_, T, B> {
    fn drop(&mut self) {
        // SAFETY: this guard is the acquisition that produced `state`, on this thread (guards
        // are !Send); guards drop in reverse order of creation within a scope.
        unsafe { B::unlock(self.lock.state.get(), &self.state) };
    }
}
