//! Dispatcher objects and the shared half of the wait engine (ddi.md 8, 13.4).
//!
//! A dispatcher object is driver (or ntsim) memory that starts with a `DISPATCHER_HEADER`:
//! byte 0 is the object type and bytes 4..8 the signal state, as on Windows. That memory is the
//! state: a mutex's recursion is its `SignalState` (1 free, `1 - n` owned n times), a
//! semaphore's count is its `SignalState`.
//!
//! All signal states of a machine change under one lock, the dispatcher lock (Windows'
//! `KiDispatcherLock`), which also guards the wait lists. Wake-ups are targeted, as `KiWaitTest`
//! does them: when an object becomes signaled, [`Locked::wait_test`] walks that object's waiters
//! in FIFO order, satisfies each one it can on the waiter's behalf (applying the side effects:
//! a synchronization event resets, a semaphore count drops, a mutex gets its owner) and wakes
//! exactly those waiters, each on its own condition variable. So a satisfied wait is atomic
//! (`WaitAll` takes every object or none), a synchronization event releases exactly one waiter,
//! and no wake-up can be lost: a waiter registers under the lock it is signaled under.
//!
//! Mutex ownership that is not in the `KMUTANT` layout (the owner's context, and whether it was
//! acquired inside a DPC, errata 8) is kept in a side table keyed by the mutex address.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        atomic::{AtomicBool, AtomicI32, AtomicU8, AtomicUsize, Ordering},
        Arc, Condvar, Mutex, MutexGuard, PoisonError,
    },
    time::Instant,
};

use crate::{
    context::{self, Ctx},
    ddi::timer::Table as TimerTable,
};

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

    /// Whether ntsim can wait on an object with this type byte.
    #[must_use]
    pub const fn is_waitable(kind: u8) -> bool {
        matches!(
            kind,
            EVENT_NOTIFICATION
                | EVENT_SYNCHRONIZATION
                | MUTANT
                | SEMAPHORE
                | THREAD
                | TIMER_NOTIFICATION
                | TIMER_SYNCHRONIZATION
        )
    }
}

/// Byte offset of `SignalState` in a `DISPATCHER_HEADER`.
pub const SIGNAL_STATE_OFFSET: usize = 4;
/// Byte offset of `KMUTANT.OwnerThread`.
pub const MUTANT_OWNER_OFFSET: usize = 40;

/// `STATUS_MUTANT_LIMIT_EXCEEDED`.
const STATUS_MUTANT_LIMIT_EXCEEDED: i32 = wdk_sys::STATUS_MUTANT_LIMIT_EXCEEDED;

/// The thread identity a context has as a mutex owner: its `PETHREAD` for system threads, and
/// for other contexts the stable stand-in `PsGetCurrentThread` returns.
#[must_use]
pub fn current_thread_id(ctx: &Ctx) -> usize {
    crate::ddi::thread::thread_id(ctx)
}

/// Who waits: what a satisfied wait on a mutex records as its owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claimant {
    /// The owner thread identity ([`current_thread_id`]).
    pub thread: usize,
    /// The context's uid.
    pub uid: u64,
    /// Whether the wait was made inside a DPC routine.
    pub in_dpc: bool,
}

impl Claimant {
    /// The claimant a context is.
    #[must_use]
    pub fn of(ctx: &Ctx) -> Self {
        Self {
            thread: current_thread_id(ctx),
            uid: ctx.uid,
            in_dpc: ctx.in_dpc.get(),
        }
    }
}

/// What a satisfied wait returns to its waiter, which applies the parts that belong to its own
/// context (the APC-disable count, an exception).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// `STATUS_SUCCESS` (`WaitAll`, single object) or `STATUS_WAIT_0 + i` (`WaitAny`).
    pub status: i32,
    /// Mutexes of which the waiter became the owner (each disables normal kernel APCs once).
    pub mutexes_acquired: i16,
    /// An exception the satisfied wait raises (status, object): recursion past `MINLONG`.
    pub exception: Option<(i32, usize)>,
}

/// The owner of a mutex, beyond what `KMUTANT` records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MutexOwner {
    /// Owner thread identity ([`current_thread_id`]).
    pub thread: usize,
    /// Owner context's uid.
    pub uid: u64,
    /// Whether it was acquired inside a DPC routine (errata 8).
    pub in_dpc: bool,
}

/// A registered, blocked wait.
struct Waiter {
    objects: Vec<usize>,
    wait_all: bool,
    claimant: Claimant,
    outcome: Option<Outcome>,
    wake: Arc<Condvar>,
}

/// Everything the dispatcher lock guards besides the objects' own memory.
#[derive(Default)]
pub struct State {
    waiters: HashMap<u64, Waiter>,
    /// Object address -> waiter ids in arrival order (an id appears once per occurrence of the
    /// object in that waiter's array).
    queues: HashMap<usize, VecDeque<u64>>,
    mutexes: HashMap<usize, MutexOwner>,
    next_waiter: u64,
    /// Armed timers.
    pub(crate) timers: TimerTable,
}

/// The dispatcher lock and what it guards, for one machine.
#[derive(Default)]
pub struct Dispatcher {
    state: Mutex<State>,
    /// Wakes the timer service (a timer was armed earlier than its next due time, or the
    /// machine stops).
    pub(crate) timer_wake: Condvar,
    /// Whether the timer service thread was started.
    pub(crate) timer_service: AtomicBool,
    /// Shared wake-up of the lock primitives that block without per-waiter bookkeeping (fast
    /// and guarded mutexes, push locks, resources, rundown, WDF wait locks): see
    /// [`Dispatcher::signal`] and [`Dispatcher::sleep`].
    changed: Condvar,
}

/// Proof that the dispatcher lock is held, and access to the state it guards.
pub struct Locked<'a> {
    guard: MutexGuard<'a, State>,
}

impl Dispatcher {
    /// Takes the dispatcher lock.
    pub fn lock(&self) -> Locked<'_> {
        Locked {
            guard: self.state.lock().unwrap_or_else(PoisonError::into_inner),
        }
    }

    /// Wakes every waiter and the timer service (the machine died or is stopping); they notice
    /// and halt or exit. It never blocks on the dispatcher lock, which a context halted by a
    /// bug check may hold forever: every sleep is bounded, so a waiter that misses this
    /// notification still notices within one slice.
    pub fn wake_all(&self) {
        self.changed.notify_all();
        self.timer_wake.notify_all();
        // The lock may be busy for a moment (then waiters must still be woken) or held for good
        // by a halted context (then give up: host calls answer with the bug check anyway).
        for _ in 0..200 {
            if let Ok(state) = self.state.try_lock() {
                for waiter in state.waiters.values() {
                    waiter.wake.notify_all();
                }
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Every dispatcher mutex owned by the context `uid` (deadlock detection).
    pub fn mutexes_owned(&self, uid: u64) -> Vec<usize> {
        let locked = self.lock();
        locked
            .guard
            .mutexes
            .iter()
            .filter(|(_, owner)| owner.uid == uid)
            .map(|(&addr, _)| addr)
            .collect()
    }

    /// Wakes every context sleeping in [`Dispatcher::sleep`] to re-evaluate its condition
    /// (call after changing state it may wait for, with the lock held).
    pub fn signal(&self, _locked: &Locked<'_>) {
        self.changed.notify_all();
    }

    /// Sleeps until [`Dispatcher::signal`] or `deadline`, releasing the dispatcher lock
    /// meanwhile, in bounded slices. Returns the lock and whether the deadline passed.
    pub fn sleep<'a>(
        &'a self,
        locked: Locked<'a>,
        deadline: Option<Instant>,
    ) -> (Locked<'a>, bool) {
        sleep(locked, &self.changed, deadline)
    }

    /// The mutex owned by the context `uid`, if any (checked when a thread ends).
    pub fn mutex_owned_by(&self, uid: u64) -> Option<usize> {
        let locked = self.lock();
        locked
            .guard
            .mutexes
            .iter()
            .filter(|(_, owner)| owner.uid == uid)
            .map(|(&addr, _)| addr)
            .min()
    }
}

/// Sleeps on `wake` until notified or `deadline`, releasing the dispatcher lock meanwhile.
///
/// Returns the lock and whether the deadline passed. There is no polling: whoever must wake
/// the sleeper notifies `wake` under the dispatcher lock (a signaler that satisfied its wait,
/// [`Dispatcher::wake_all`] when the machine dies or stops, `KeSetTimer` for the timer service),
/// so a sleeper that checked its condition under the lock cannot miss it, and a wake-up the
/// engine failed to give shows as a thread blocked for good.
pub fn sleep<'a>(
    locked: Locked<'a>,
    wake: &Condvar,
    deadline: Option<Instant>,
) -> (Locked<'a>, bool) {
    let guard = match deadline {
        None => wake
            .wait(locked.guard)
            .unwrap_or_else(PoisonError::into_inner),
        Some(d) => {
            wake.wait_timeout(locked.guard, d.saturating_duration_since(Instant::now()))
                .unwrap_or_else(PoisonError::into_inner)
                .0
        }
    };
    let expired = deadline.is_some_and(|d| Instant::now() >= d);
    (Locked { guard }, expired)
}

impl Locked<'_> {
    /// The guarded state.
    pub(crate) fn state(&mut self) -> &mut State {
        &mut self.guard
    }

    /// The owner of the mutex at `mutex`, if it is owned.
    #[must_use]
    pub fn mutex_owner(&self, mutex: usize) -> Option<MutexOwner> {
        self.guard.mutexes.get(&mutex).copied()
    }

    /// Forgets any ownership of `mutex` (it is being initialised).
    pub fn forget_mutex(&mut self, mutex: usize) {
        self.guard.mutexes.remove(&mutex);
    }

    /// Records that `mutex` became free.
    pub fn mutex_released(&mut self, mutex: usize) {
        self.guard.mutexes.remove(&mutex);
    }

    /// Tries to satisfy a wait on `objects` for `claimant` right now, applying its side effects.
    ///
    /// # Safety
    /// Every address in `objects` is a live, 8-byte aligned dispatcher object of a waitable
    /// type.
    pub unsafe fn try_satisfy_now(
        &mut self,
        objects: &[usize],
        wait_all: bool,
        claimant: Claimant,
    ) -> Option<Outcome> {
        let state = &mut *self.guard;
        // SAFETY: forwarded caller guarantee; the lock is held.
        let which = unsafe { satisfiable(objects, wait_all, claimant, &state.mutexes) }?;
        // SAFETY: as above.
        Some(unsafe { consume(objects, which, claimant, &mut state.mutexes) })
    }

    /// Registers a blocked wait; the signalers will satisfy it and notify `wake`.
    pub fn register(
        &mut self,
        objects: &[usize],
        wait_all: bool,
        claimant: Claimant,
        wake: Arc<Condvar>,
    ) -> u64 {
        let state = &mut *self.guard;
        state.next_waiter += 1;
        let id = state.next_waiter;
        for &object in objects {
            state.queues.entry(object).or_default().push_back(id);
        }
        state.waiters.insert(
            id,
            Waiter {
                objects: objects.to_vec(),
                wait_all,
                claimant,
                outcome: None,
                wake,
            },
        );
        id
    }

    /// The outcome of a registered wait once a signaler satisfied it (the registration ends).
    pub fn take_outcome(&mut self, id: u64) -> Option<Outcome> {
        let state = &mut *self.guard;
        let outcome = state.waiters.get(&id)?.outcome?;
        state.waiters.remove(&id);
        Some(outcome)
    }

    /// Ends a registered wait that was not satisfied (timeout). Returns its outcome instead if a
    /// signaler satisfied it meanwhile.
    pub fn cancel(&mut self, id: u64) -> Option<Outcome> {
        if let Some(outcome) = self.take_outcome(id) {
            return Some(outcome);
        }
        let state = &mut *self.guard;
        if let Some(waiter) = state.waiters.remove(&id) {
            unlink(&mut state.queues, &waiter.objects, id);
        }
        None
    }

    /// `KiWaitTest`: `object` has just become signaled; satisfies its waiters in arrival order
    /// while it stays signaled, and wakes each satisfied waiter.
    ///
    /// # Safety
    /// `object` and every object any registered waiter waits on are live dispatcher objects.
    pub unsafe fn wait_test(&mut self, object: usize) {
        let state = &mut *self.guard;
        let mut index = 0;
        loop {
            // SAFETY: caller guarantee; the lock is held.
            if unsafe { load_state(object) } <= 0 {
                return;
            }
            let Some(&id) = state.queues.get(&object).and_then(|q| q.get(index)) else {
                return;
            };
            let Some(waiter) = state.waiters.get_mut(&id) else {
                index += 1;
                continue;
            };
            // SAFETY: caller guarantee.
            let which = unsafe {
                satisfiable(
                    &waiter.objects,
                    waiter.wait_all,
                    waiter.claimant,
                    &state.mutexes,
                )
            };
            let Some(which) = which else {
                index += 1;
                continue;
            };
            // SAFETY: caller guarantee.
            let outcome =
                unsafe { consume(&waiter.objects, which, waiter.claimant, &mut state.mutexes) };
            waiter.outcome = Some(outcome);
            waiter.wake.notify_one();
            let objects = std::mem::take(&mut waiter.objects);
            unlink(&mut state.queues, &objects, id);
            // The satisfied waiter left this queue: `index` now names the next one.
        }
    }
}

/// Removes every occurrence of waiter `id` from the queues of `objects`.
fn unlink(queues: &mut HashMap<usize, VecDeque<u64>>, objects: &[usize], id: u64) {
    for object in objects {
        if let Some(queue) = queues.get_mut(object) {
            queue.retain(|&w| w != id);
            if queue.is_empty() {
                queues.remove(object);
            }
        }
    }
}

/// Which part of a wait can be satisfied.
#[derive(Clone, Copy, Debug)]
enum Which {
    /// `WaitAny` (or a single object): the object at this index.
    Any(usize),
    /// `WaitAll`: every object.
    All,
}

/// How many satisfied waits `object` can give `claimant` now (`u32::MAX`: unlimited).
///
/// # Safety
/// `object` is a live, aligned dispatcher object; the dispatcher lock is held.
unsafe fn available(
    object: usize,
    claimant: Claimant,
    mutexes: &HashMap<usize, MutexOwner>,
) -> u32 {
    // SAFETY: caller guarantee.
    let state = unsafe { load_state(object) };
    // SAFETY: caller guarantee.
    match unsafe { load_type(object) } {
        object_type::EVENT_NOTIFICATION | object_type::TIMER_NOTIFICATION | object_type::THREAD
            if state > 0 =>
        {
            u32::MAX
        }
        object_type::EVENT_SYNCHRONIZATION | object_type::TIMER_SYNCHRONIZATION => {
            u32::from(state > 0)
        }
        object_type::SEMAPHORE => u32::try_from(state).unwrap_or(0),
        object_type::MUTANT
            if state > 0
                || mutexes
                    .get(&object)
                    .is_some_and(|o| o.thread == claimant.thread) =>
        {
            u32::MAX
        }
        _ => 0,
    }
}

/// Whether the wait can be satisfied now; `WaitAny` reports the lowest satisfiable index.
///
/// # Safety
/// As [`available`], for every object.
unsafe fn satisfiable(
    objects: &[usize],
    wait_all: bool,
    claimant: Claimant,
    mutexes: &HashMap<usize, MutexOwner>,
) -> Option<Which> {
    if wait_all {
        for (i, &object) in objects.iter().enumerate() {
            let wanted = objects.iter().filter(|&&o| o == object).count();
            if objects[..i].contains(&object) {
                continue;
            }
            // SAFETY: caller guarantee.
            let have = unsafe { available(object, claimant, mutexes) };
            if (have as usize) < wanted {
                return None;
            }
        }
        Some(Which::All)
    } else {
        objects
            .iter()
            // SAFETY: caller guarantee.
            .position(|&object| unsafe { available(object, claimant, mutexes) } > 0)
            .map(Which::Any)
    }
}

/// Applies the side effects of a satisfied wait (dispatcher lock held).
///
/// # Safety
/// As [`available`], for every object; the wait was found satisfiable under the same lock.
unsafe fn consume(
    objects: &[usize],
    which: Which,
    claimant: Claimant,
    mutexes: &mut HashMap<usize, MutexOwner>,
) -> Outcome {
    let mut outcome = Outcome {
        status: wdk_sys::STATUS_SUCCESS,
        mutexes_acquired: 0,
        exception: None,
    };
    let taken: &[usize] = match which {
        Which::Any(i) => {
            outcome.status = i32::try_from(i).unwrap_or(0) + wdk_sys::STATUS_WAIT_0;
            &objects[i..=i]
        }
        Which::All => objects,
    };
    for &object in taken {
        // SAFETY: caller guarantee.
        let state = unsafe { load_state(object) };
        // SAFETY: caller guarantee.
        match unsafe { load_type(object) } {
            object_type::EVENT_SYNCHRONIZATION | object_type::TIMER_SYNCHRONIZATION => {
                // SAFETY: caller guarantee.
                unsafe { store_state(object, 0) };
            }
            object_type::SEMAPHORE => {
                // SAFETY: caller guarantee.
                unsafe { store_state(object, state - 1) };
            }
            object_type::MUTANT => {
                if state > 0 {
                    mutexes.insert(
                        object,
                        MutexOwner {
                            thread: claimant.thread,
                            uid: claimant.uid,
                            in_dpc: claimant.in_dpc,
                        },
                    );
                    // SAFETY: caller guarantee.
                    unsafe { store_mutex_owner(object, claimant.thread) };
                    // SAFETY: caller guarantee.
                    unsafe { store_state(object, 0) };
                    outcome.mutexes_acquired += 1;
                } else if state == i32::MIN {
                    outcome.exception = Some((STATUS_MUTANT_LIMIT_EXCEEDED, object));
                } else {
                    // SAFETY: caller guarantee.
                    unsafe { store_state(object, state - 1) };
                }
            }
            _ => {}
        }
    }
    outcome
}

/// The object type byte of a dispatcher object.
///
/// # Safety
/// `object` points to a readable `DISPATCHER_HEADER`.
#[must_use]
pub unsafe fn load_type(object: usize) -> u8 {
    // SAFETY: caller guarantee; byte 0 of the header, only accessed atomically by ntsim.
    unsafe { AtomicU8::from_ptr(object as *mut u8) }.load(Ordering::Relaxed)
}

/// Sets the object type byte (initialisation).
///
/// # Safety
/// `object` points to a writable `DISPATCHER_HEADER`.
pub unsafe fn store_type(object: usize, kind: u8) {
    // SAFETY: caller guarantee; byte 0 of the header, only accessed atomically by ntsim.
    unsafe { AtomicU8::from_ptr(object as *mut u8) }.store(kind, Ordering::Relaxed);
}

/// The signal state of a dispatcher object. Under the dispatcher lock it is exact; without it,
/// it is the unsynchronised read the `KeReadState…` routines document.
///
/// # Safety
/// `object` points to a readable, 4-byte aligned `DISPATCHER_HEADER`.
#[must_use]
pub unsafe fn load_state(object: usize) -> i32 {
    let state = (object + SIGNAL_STATE_OFFSET) as *mut i32;
    // SAFETY: caller guarantee; SignalState is the aligned LONG at offset 4, only accessed
    // atomically by ntsim, and written only under the dispatcher lock.
    unsafe { AtomicI32::from_ptr(state) }.load(Ordering::Relaxed)
}

/// Sets the signal state of a dispatcher object (dispatcher lock held, or initialisation).
///
/// # Safety
/// `object` points to a writable, 4-byte aligned `DISPATCHER_HEADER`.
pub unsafe fn store_state(object: usize, value: i32) {
    let state = (object + SIGNAL_STATE_OFFSET) as *mut i32;
    // SAFETY: caller guarantee; as in `load_state`.
    unsafe { AtomicI32::from_ptr(state) }.store(value, Ordering::Relaxed);
}

/// Sets `KMUTANT.OwnerThread`.
///
/// # Safety
/// `mutex` points to a writable, 8-byte aligned `KMUTANT`.
pub unsafe fn store_mutex_owner(mutex: usize, thread: usize) {
    let owner = (mutex + MUTANT_OWNER_OFFSET) as *mut usize;
    // SAFETY: caller guarantee; OwnerThread is the aligned pointer at offset 40 of KMUTANT,
    // only accessed atomically by ntsim.
    unsafe { AtomicUsize::from_ptr(owner) }.store(thread, Ordering::Relaxed);
}

/// Sets a header's `WaitListHead` (offset 8) empty, pointing to itself, as the `KeInitialize…`
/// routines leave it. ntsim keeps its wait lists elsewhere; this is for debuggers' eyes.
///
/// # Safety
/// `object` points to a writable, 8-byte aligned `DISPATCHER_HEADER` not in use.
pub const unsafe fn init_wait_list(object: usize) {
    let head = (object + 8) as *mut wdk_sys::LIST_ENTRY;
    let empty = wdk_sys::LIST_ENTRY {
        Flink: head,
        Blink: head,
    };
    // SAFETY: caller guarantee; the LIST_ENTRY at offset 8 of the header.
    unsafe { head.write(empty) };
}

/// Halts the calling thread if its machine died or is being torn down while it waited.
pub fn check_alive(machine: &crate::machine::MachineInner) {
    if machine.is_dead() || machine.is_shutting_down() {
        context::halt();
    }
}
