//! Dispatcher objects and waits.
//!
//! A dispatcher object is driver (or ntsim) memory that starts with a `DISPATCHER_HEADER`:
//! byte 0 is the object type and bytes 4..8 the signal state, as on Windows. All signal states
//! of a machine change under one lock (the dispatcher lock), and waiters sleep on one condition
//! variable that every state change notifies; a waiter re-evaluates its objects when woken, so a
//! wake-up cannot be lost and a satisfied wait applies its side effects atomically.

use std::{
    sync::{Condvar, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use crate::context;

/// `DISPATCHER_HEADER.Type` values (the `KOBJECTS` enumeration).
pub mod object_type {
    /// `EventNotificationObject`.
    pub const EVENT_NOTIFICATION: u8 = 0;
    /// `EventSynchronizationObject`.
    pub const EVENT_SYNCHRONIZATION: u8 = 1;
    /// `MutantObject`.
    pub const MUTANT: u8 = 2;
    /// `SemaphoreObject`.
    pub const SEMAPHORE: u8 = 5;
    /// `ThreadObject`.
    pub const THREAD: u8 = 6;
    /// `TimerNotificationObject`.
    pub const TIMER_NOTIFICATION: u8 = 8;
    /// `TimerSynchronizationObject`.
    pub const TIMER_SYNCHRONIZATION: u8 = 9;
}

/// Byte offset of `SignalState` in a `DISPATCHER_HEADER`.
pub const SIGNAL_STATE_OFFSET: usize = 4;

/// The dispatcher lock and the waiters' condition variable of one machine.
#[derive(Default)]
pub struct Dispatcher {
    lock: Mutex<()>,
    changed: Condvar,
}

/// Proof that the dispatcher lock is held.
pub struct Locked<'a> {
    guard: MutexGuard<'a, ()>,
}

impl Dispatcher {
    /// Takes the dispatcher lock.
    pub fn lock(&self) -> Locked<'_> {
        Locked {
            guard: self.lock.lock().unwrap_or_else(PoisonError::into_inner),
        }
    }

    /// Wakes every waiter to re-evaluate (call after changing a signal state, lock held).
    pub fn signal(&self, _locked: &Locked<'_>) {
        self.changed.notify_all();
    }

    /// Wakes every waiter (machine died or is stopping). It does not take the dispatcher lock:
    /// a context halted by a bug check may hold it forever, and waiters re-check the machine's
    /// state at least every sleep slice anyway.
    pub fn wake_all(&self) {
        self.changed.notify_all();
    }

    /// Sleeps until notified or `deadline`, releasing the lock meanwhile. Returns the lock
    /// and whether the deadline passed.
    pub fn sleep<'a>(
        &'a self,
        locked: Locked<'a>,
        deadline: Option<Instant>,
    ) -> (Locked<'a>, bool) {
        // Bounded slices, so a dead machine is noticed even without a notification.
        let slice = Duration::from_millis(50);
        let timeout = deadline.map_or(slice, |d| {
            d.saturating_duration_since(Instant::now()).min(slice)
        });
        let (guard, _) = self
            .changed
            .wait_timeout(locked.guard, timeout)
            .unwrap_or_else(PoisonError::into_inner);
        let expired = deadline.is_some_and(|d| Instant::now() >= d);
        (Locked { guard }, expired)
    }
}

/// Reads the object type byte of a dispatcher object.
///
/// # Safety
/// `object` must point to a readable `DISPATCHER_HEADER`.
#[must_use]
pub unsafe fn type_of(object: *const u8) -> u8 {
    // SAFETY: the caller guarantees a readable header; the type byte is at offset 0.
    unsafe { object.read_volatile() }
}

/// The signal state of a dispatcher object (dispatcher lock held).
///
/// # Safety
/// `object` must point to a readable, 4-byte aligned `DISPATCHER_HEADER`.
#[must_use]
pub unsafe fn signal_state(object: *const u8, _locked: &Locked<'_>) -> i32 {
    #[allow(
        clippy::cast_ptr_alignment,
        reason = "the header is 4-byte aligned (contract)"
    )]
    let state = object.wrapping_add(SIGNAL_STATE_OFFSET).cast::<i32>();
    // SAFETY: caller guarantees a readable aligned header; SignalState is the LONG at offset 4;
    // the dispatcher lock serialises every writer.
    unsafe { state.read_volatile() }
}

/// Sets the signal state of a dispatcher object (dispatcher lock held).
///
/// # Safety
/// `object` must point to a writable, 4-byte aligned `DISPATCHER_HEADER`.
pub unsafe fn set_signal_state(object: *mut u8, value: i32, _locked: &Locked<'_>) {
    #[allow(
        clippy::cast_ptr_alignment,
        reason = "the header is 4-byte aligned (contract)"
    )]
    let state = object.wrapping_add(SIGNAL_STATE_OFFSET).cast::<i32>();
    // SAFETY: caller guarantees a writable aligned header; the dispatcher lock serialises
    // every writer.
    unsafe { state.write_volatile(value) };
}

/// Halts the calling thread if its machine died while it waited.
pub fn check_alive(machine: &crate::machine::MachineInner) {
    if machine.is_dead() {
        context::halt();
    }
}
