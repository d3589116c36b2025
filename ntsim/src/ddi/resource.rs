//! Executive resources (`ERESOURCE`), ddi.md section 7.
//!
//! The driver owns the 104-byte `ERESOURCE`; ntsim keeps the resource's state in a per-machine
//! table keyed by its address (the state machine of ddi.md 7.2): an exclusive owner with its
//! recursion count, or shared owners with per-owner counts, plus the exclusive waiters (FIFO) and
//! the shared waiters. An owner is an `ERESOURCE_THREAD`: the thread's `PETHREAD`
//! (`ExGetCurrentResourceThread`), or an owner pointer set by `ExSetResourceOwnerPointer(Ex)`.
//!
//! Ownership is handed off on release, as ntoskrnl does: releasing the last exclusive hold grants
//! every shared waiter at once (or else the first exclusive waiter); releasing the last shared
//! hold grants the first exclusive waiter. A contended acquire blocks on the machine's dispatcher
//! condition variable, registered as a waiter under the dispatcher lock, so a hand-off can never
//! be missed. Where Windows would hang for good (an exclusive request by a shared owner), ntsim
//! bugchecks 0xC4/0x1000 at once; `ExAcquireSharedWaitForExclusive` waiting behind its own shared
//! hold is reported only once nobody released that hold for it within the machine's hang budget
//! (errata 13).
//!
//! Verifier rules (ddi.md 7.2, 12, 13): acquires, convert and delete above `APC_LEVEL` break
//! `IrqlExApcLte3` (0xC4/0x20007); other routines above `DISPATCH_LEVEL` are 0xC4/0xE5; acquire or
//! release with normal kernel APCs enabled is 0xC4/0x37 / 0x38; a release by a non-owner is 0xE3;
//! an invalid `ExReleaseResourceForThreadLite` target 0x16E; an owner pointer without its low two
//! bits 0x132; a convert without exclusive ownership 0x1F; a second initialise 0xC4/0xD0; a delete
//! of an uninitialised resource 0xC4/0xD1, of an owned one 0xC4/0x100B; use of an uninitialised
//! resource 0xC4/0x1002; freeing pool that contains a live resource 0xC4/0x17; a thread that ends
//! owning one 0xC4/0x100A.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{Mutex, MutexGuard, PoisonError},
    time::Instant,
};

use wdk_sys::{BOOLEAN, ERESOURCE, ERESOURCE_THREAD, NTSTATUS, PERESOURCE, PVOID, ULONG};

use crate::{
    bugcheck::{code, verifier},
    context::{self, enter, irql, ContextKind, Ctx, Entry},
    ddi::thread::thread_id,
};

/// Size of an `ERESOURCE` on x64 (ddi.md 7).
const RESOURCE_SIZE: usize = size_of::<ERESOURCE>();

/// The low two bits every owner pointer must have set (ddi.md 7.2).
const OWNER_POINTER_BITS: usize = 0x3;

/// What an acquire asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Request {
    /// `ExAcquireResourceExclusiveLite`.
    Exclusive,
    /// `ExAcquireResourceSharedLite`.
    Shared,
    /// `ExAcquireSharedStarveExclusive`.
    StarveExclusive,
    /// `ExAcquireSharedWaitForExclusive`.
    SharedWaitForExclusive,
}

/// The outcome of one look at a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// The caller owns it now (the state was updated).
    Granted,
    /// The caller must wait (or fail, with `Wait == FALSE`). `behind_own_hold`: a
    /// `SharedWaitForExclusive` by a shared owner, queued behind exclusive waiters that wait for
    /// the caller's own hold.
    Wait { behind_own_hold: bool },
    /// An exclusive request by a thread that owns the resource only shared: it would wait for
    /// itself forever.
    SelfDeadlock,
}

/// The state of one initialised resource (ddi.md 13.1).
#[derive(Debug, Default)]
struct State {
    /// Whether the owners hold it exclusively (then there is exactly one owner).
    exclusive: bool,
    /// Owners (`ERESOURCE_THREAD` values) and how many acquisitions each holds.
    owners: Vec<(usize, u32)>,
    /// Threads waiting for exclusive access, in arrival order.
    exclusive_waiters: VecDeque<usize>,
    /// Threads waiting for shared access.
    shared_waiters: Vec<usize>,
}

impl State {
    /// How many acquisitions `owner` holds (exclusive recursion included).
    fn count_of(&self, owner: usize) -> u32 {
        self.owners
            .iter()
            .find(|&&(o, _)| o == owner)
            .map_or(0, |&(_, n)| n)
    }

    /// Adds one shared acquisition for `owner`.
    fn add_shared(&mut self, owner: usize) {
        if let Some(entry) = self.owners.iter_mut().find(|(o, _)| *o == owner) {
            entry.1 += 1;
        } else {
            self.owners.push((owner, 1));
        }
    }

    /// Whether anyone owns or waits for it.
    fn in_use(&self) -> bool {
        !self.owners.is_empty()
            || !self.exclusive_waiters.is_empty()
            || !self.shared_waiters.is_empty()
    }

    fn is_waiting(&self, thread: usize) -> bool {
        self.exclusive_waiters.contains(&thread) || self.shared_waiters.contains(&thread)
    }

    /// Looks at `request` by `thread` (ddi.md 7.2) and grants it when the rules allow.
    fn request(&mut self, thread: usize, request: Request) -> Verdict {
        let mine = self.count_of(thread);
        if self.owners.is_empty() {
            self.exclusive = request == Request::Exclusive;
            self.owners.push((thread, 1));
            return Verdict::Granted;
        }
        if mine > 0 {
            if self.exclusive {
                // X -> X and X -> S: recursion in the mode it already has.
                self.owners[0].1 += 1;
                return Verdict::Granted;
            }
            return match request {
                Request::Exclusive => Verdict::SelfDeadlock,
                Request::SharedWaitForExclusive if !self.exclusive_waiters.is_empty() => {
                    Verdict::Wait {
                        behind_own_hold: true,
                    }
                }
                Request::Shared | Request::StarveExclusive | Request::SharedWaitForExclusive => {
                    self.add_shared(thread);
                    Verdict::Granted
                }
            };
        }
        let grant = match request {
            Request::Exclusive => false,
            // Owned shared by others: a shared request passes unless exclusive requests wait
            // (writer preference); the starving variant passes them anyway.
            Request::Shared | Request::SharedWaitForExclusive => {
                !self.exclusive && self.exclusive_waiters.is_empty()
            }
            Request::StarveExclusive => !self.exclusive,
        };
        if grant {
            self.add_shared(thread);
            Verdict::Granted
        } else {
            Verdict::Wait {
                behind_own_hold: false,
            }
        }
    }

    fn enqueue(&mut self, thread: usize, request: Request) {
        if request == Request::Exclusive {
            self.exclusive_waiters.push_back(thread);
        } else {
            self.shared_waiters.push(thread);
        }
    }

    /// Grants every shared waiter at once. Returns whether there was one.
    fn grant_shared_waiters(&mut self) -> bool {
        if self.shared_waiters.is_empty() {
            return false;
        }
        self.exclusive = false;
        for thread in std::mem::take(&mut self.shared_waiters) {
            self.add_shared(thread);
        }
        true
    }

    /// Grants the first exclusive waiter, if any (the resource is free).
    fn grant_exclusive_waiter(&mut self) -> bool {
        let Some(thread) = self.exclusive_waiters.pop_front() else {
            return false;
        };
        self.exclusive = true;
        self.owners.push((thread, 1));
        true
    }

    /// Releases one acquisition of `owner`. `None` when it owns none; otherwise whether waiters
    /// were granted (and must be woken).
    fn release(&mut self, owner: usize) -> Option<bool> {
        let index = self.owners.iter().position(|&(o, _)| o == owner)?;
        self.owners[index].1 -= 1;
        if self.owners[index].1 > 0 {
            return Some(false);
        }
        self.owners.swap_remove(index);
        if !self.owners.is_empty() {
            return Some(false);
        }
        let was_exclusive = std::mem::replace(&mut self.exclusive, false);
        // ntoskrnl's order: after an exclusive hold, shared waiters first; after the last shared
        // hold, an exclusive waiter first.
        if was_exclusive && self.grant_shared_waiters() {
            return Some(true);
        }
        Some(self.grant_exclusive_waiter() || self.grant_shared_waiters())
    }
}

/// The executive resources of one machine: initialised, not deleted, keyed by address.
#[derive(Default)]
pub struct Resources {
    table: Mutex<BTreeMap<usize, State>>,
}

impl Resources {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<usize, State>> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the state of the resource at `addr`; `None` when it is not initialised.
    fn with<R>(&self, addr: usize, f: impl FnOnce(&mut State) -> R) -> Option<R> {
        self.lock().get_mut(&addr).map(f)
    }

    /// The first live resource that overlaps `[start, start + len)`.
    #[must_use]
    pub fn live_in(&self, start: usize, len: usize) -> Option<usize> {
        let end = start.saturating_add(len);
        let first = start.saturating_sub(RESOURCE_SIZE - 1);
        self.lock().range(first..end).next().map(|(&addr, _)| addr)
    }

    /// A live resource that `owner` holds, if any.
    #[must_use]
    pub fn owned_by(&self, owner: usize) -> Option<usize> {
        self.lock()
            .iter()
            .find(|(_, s)| s.count_of(owner) > 0)
            .map(|(&addr, _)| addr)
    }
}

/// The resource's address, after checking it is a usable `ERESOURCE` pointer: NULL or not
/// 8-byte aligned is 0xC4/0x3D.
fn address(e: &Entry, resource: PERESOURCE) -> usize {
    if resource.is_null() || !resource.is_aligned() {
        e.bugcheck(
            code::DRIVER_VERIFIER_DETECTED_VIOLATION,
            [verifier::BAD_RESOURCE_ADDRESS, 0, 0, resource as u64],
            format!(
                "{} on {resource:p}: an ERESOURCE must be a valid, 8-byte aligned address",
                e.ddi
            ),
        );
    }
    resource as usize
}

/// Bug checks when the caller is above `max`: with the DDI rule `IrqlExApcLte3` for the routines
/// it covers, 0xC4/0xE5 for the others.
fn require_irql(e: &Entry, max: u8, subcode: u64, resource: usize) {
    let level = e.irql.get();
    if level > max {
        e.bugcheck(
            code::DRIVER_VERIFIER_DETECTED_VIOLATION,
            [subcode, u64::from(level), resource as u64, 0],
            format!(
                "{} at IRQL {level}: requires IRQL <= {max} (resource {resource:#x})",
                e.ddi
            ),
        );
    }
}

/// Whether normal kernel APCs are disabled: a critical or guarded region, or IRQL >= `APC_LEVEL`
/// (ddi.md 0.3).
fn normal_apcs_disabled(e: &Entry) -> bool {
    e.kernel_apc_disable.get() != 0 || e.special_apc_disable.get() != 0 || e.irql.get() >= irql::APC
}

/// Bug checks with `subcode` (0x37 acquire, 0x38 release) when normal kernel APCs are enabled.
fn require_apcs_disabled(e: &Entry, subcode: u64, resource: usize) {
    if !normal_apcs_disabled(e) {
        e.bugcheck(
            code::DRIVER_VERIFIER_DETECTED_VIOLATION,
            [
                subcode,
                u64::from(e.irql.get()),
                u64::from(e.combined_apc_disable()),
                resource as u64,
            ],
            format!(
                "{} of resource {resource:#x} with normal kernel APCs enabled: enter a critical \
                 region (KeEnterCriticalRegion) first and stay in it until the release",
                e.ddi
            ),
        );
    }
}

fn uninitialised(e: &Entry, resource: usize) -> ! {
    e.bugcheck(
        code::DRIVER_VERIFIER_DETECTED_VIOLATION,
        [verifier::UNINITIALIZED_LOCK, resource as u64, 0, 0],
        format!(
            "{} on resource {resource:#x}, which is not initialised (never \
             ExInitializeResourceLite'd, or deleted)",
            e.ddi
        ),
    )
}

fn not_owned(e: &Entry, resource: usize, thread: usize) -> ! {
    e.bugcheck(
        code::RESOURCE_NOT_OWNED,
        [resource as u64, thread as u64, 0, 0],
        format!(
            "{} of resource {resource:#x} by thread {thread:#x}, which does not own it",
            e.ddi
        ),
    )
}

/// Wakes blocked acquirers after a hand-off.
fn wake_waiters(e: &Entry) {
    let locked = e.machine.dispatcher.lock();
    e.machine.dispatcher.signal(&locked);
}

/// An acquire: the checks, then the state machine; blocks while it must wait and `wait` is set.
fn acquire(e: &Entry, resource: PERESOURCE, request: Request, wait: bool) -> bool {
    let addr = address(e, resource);
    require_irql(e, irql::APC, verifier::RULE_IRQL_EX_APC_LTE3, addr);
    require_apcs_disabled(e, verifier::RESOURCE_ACQUIRE_APCS_ENABLED, addr);
    let me = thread_id(e);
    match e.machine.resources.with(addr, |s| s.request(me, request)) {
        None => uninitialised(e, addr),
        Some(Verdict::Granted) => true,
        Some(_) if !wait => false,
        Some(Verdict::SelfDeadlock) => self_deadlock(e, addr),
        Some(Verdict::Wait { .. }) => block(e, addr, me, request),
    }
}

/// 0xC4/0x1000 for an exclusive request by a thread that owns the resource only shared.
fn self_deadlock(e: &Entry, resource: usize) -> ! {
    e.bugcheck(
        code::DRIVER_VERIFIER_DETECTED_VIOLATION,
        [verifier::SELF_DEADLOCK, resource as u64, 0, 0],
        format!(
            "{} of resource {resource:#x}, which this thread owns only shared: it would wait \
             for its own release forever (self-deadlock)",
            e.ddi
        ),
    )
}

/// Waits until the request is granted by a hand-off. Registration and sleep happen under the
/// dispatcher lock, and releasers signal under it after granting, so no grant is missed.
fn block(e: &Entry, addr: usize, me: usize, request: Request) -> bool {
    let machine = &e.machine;
    let dispatcher = &machine.dispatcher;
    let mut locked = dispatcher.lock();
    let verdict = machine.resources.with(addr, |s| {
        let verdict = s.request(me, request);
        if matches!(verdict, Verdict::Wait { .. }) {
            s.enqueue(me, request);
        }
        verdict
    });
    let mut deadline = match verdict {
        Some(Verdict::Granted) => return true,
        None => {
            drop(locked);
            uninitialised(e, addr)
        }
        Some(Verdict::SelfDeadlock) => {
            drop(locked);
            self_deadlock(e, addr)
        }
        Some(Verdict::Wait { behind_own_hold }) => {
            behind_own_hold.then(|| Instant::now() + machine.config.hang_budget)
        }
    };
    loop {
        let (again, _) = dispatcher.sleep(locked, deadline);
        locked = again;
        if machine.is_dead() || machine.is_shutting_down() {
            drop(locked);
            context::halt();
        }
        let (waiting, holds) = machine
            .resources
            .with(addr, |s| (s.is_waiting(me), s.count_of(me) > 0))
            .unwrap_or((false, false));
        if !waiting {
            return true;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            if holds {
                drop(locked);
                e.bugcheck(
                    code::DRIVER_VERIFIER_DETECTED_VIOLATION,
                    [verifier::SELF_DEADLOCK, addr as u64, 0, 0],
                    format!(
                        "ExAcquireSharedWaitForExclusive of resource {addr:#x}: the caller owns \
                         it shared and waits behind exclusive waiters that wait for that very \
                         hold; nobody released it on the caller's behalf within the hang budget \
                         ({:?}) (self-deadlock, errata 13)",
                        machine.config.hang_budget
                    ),
                );
            }
            // Its own hold was released for it: now it waits like any other request.
            deadline = None;
        }
    }
}

/// Releases one acquisition of `owner`; `false` when `owner` holds none.
fn release(e: &Entry, addr: usize, owner: usize) -> bool {
    match e.machine.resources.with(addr, |s| s.release(owner)) {
        Some(Some(woke)) => {
            if woke {
                wake_waiters(e);
            }
            true
        }
        Some(None) | None => false,
    }
}

/// The checks of `ExReleaseResourceLite` and the release itself.
fn release_own(e: &Entry, resource: PERESOURCE) {
    let addr = address(e, resource);
    require_irql(e, irql::DISPATCH, verifier::API_AT_WRONG_IRQL, addr);
    require_apcs_disabled(e, verifier::RESOURCE_RELEASE_APCS_ENABLED, addr);
    let me = thread_id(e);
    if !release(e, addr, me) {
        not_owned(e, addr, me);
    }
}

/// Thread exit (ddi.md 13.5): a resource still owned by the ending thread is 0xC4/0x100A.
pub(crate) fn exit_check(ctx: &Ctx) {
    let me = thread_id(ctx);
    if let Some(addr) = ctx.machine.resources.owned_by(me) {
        context::raise(
            ctx,
            code::DRIVER_VERIFIER_DETECTED_VIOLATION,
            [
                verifier::THREAD_TERMINATED_OWNING_LOCK,
                addr as u64,
                me as u64,
                0,
            ],
            "system thread exit",
            format!(
                "{} ended still owning the executive resource at {addr:#x}",
                ctx.name
            ),
        );
    }
}

/// Pool free (ddi.md 7.2 "Lifetime"): freeing `[block, block + len)` while it contains a live
/// `ERESOURCE` is 0xC4/0x17.
pub(crate) fn check_free(e: &Entry, block: usize, len: usize) {
    if let Some(addr) = e.machine.resources.live_in(block, len) {
        e.bugcheck(
            code::DRIVER_VERIFIER_DETECTED_VIOLATION,
            [
                verifier::FREED_POOL_CONTAINS_ERESOURCE,
                addr as u64,
                0,
                block as u64,
            ],
            format!(
                "{} of pool block {block:#x} ({len} bytes), which contains the executive \
                 resource at {addr:#x}: ExDeleteResourceLite it before freeing its memory",
                e.ddi
            ),
        );
    }
}

export! {
    /// Initialises an executive resource; always `STATUS_SUCCESS`. IRQL <= `DISPATCH_LEVEL`
    /// (above: 0xC4/0xE5). Initialising a live (initialised, not deleted) resource again is
    /// 0xC4/0xD0.
    fn ExInitializeResourceLite(Resource: PERESOURCE) -> NTSTATUS {
        let e = enter("ExInitializeResourceLite");
        let addr = address(&e, Resource);
        require_irql(&e, irql::DISPATCH, verifier::API_AT_WRONG_IRQL, addr);
        let fresh = {
            let mut table = e.machine.resources.lock();
            match table.entry(addr) {
                std::collections::btree_map::Entry::Occupied(_) => false,
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(State::default());
                    true
                }
            }
        };
        if !fresh {
            e.bugcheck(
                code::DRIVER_VERIFIER_DETECTED_VIOLATION,
                [verifier::RESOURCE_REINITIALIZED, addr as u64, 0, 0],
                format!(
                    "ExInitializeResourceLite of resource {addr:#x}, which is already \
                     initialised (ExDeleteResourceLite it first, or use ExReinitializeResourceLite)"
                ),
            );
        }
        wdk_sys::STATUS_SUCCESS
    }
}

export! {
    /// Re-initialises an initialised resource that nobody owns or waits for (= delete + init);
    /// always `STATUS_SUCCESS`. IRQL <= `DISPATCH_LEVEL` (above: 0xC4/0xE5). A resource that is
    /// not initialised is 0xC4/0xD1 (the delete half); one still owned or waited for is
    /// 0xC4/0xD0.
    fn ExReinitializeResourceLite(Resource: PERESOURCE) -> NTSTATUS {
        let e = enter("ExReinitializeResourceLite");
        let addr = address(&e, Resource);
        require_irql(&e, irql::DISPATCH, verifier::API_AT_WRONG_IRQL, addr);
        match e.machine.resources.with(addr, |s| s.in_use()) {
            None => e.bugcheck(
                code::DRIVER_VERIFIER_DETECTED_VIOLATION,
                [verifier::RESOURCE_DELETE_UNINITIALIZED, addr as u64, 0, 0],
                format!("ExReinitializeResourceLite of resource {addr:#x}, which is not initialised"),
            ),
            Some(true) => e.bugcheck(
                code::DRIVER_VERIFIER_DETECTED_VIOLATION,
                [verifier::RESOURCE_REINITIALIZED, addr as u64, 0, 0],
                format!(
                    "ExReinitializeResourceLite of resource {addr:#x}, which is still owned or \
                     waited for"
                ),
            ),
            Some(false) => wdk_sys::STATUS_SUCCESS,
        }
    }
}

export! {
    /// Deletes a resource; `STATUS_SUCCESS`. IRQL <= `APC_LEVEL` (the docs' value, stricter than
    /// the header's; above: DDI rule `IrqlExApcLte3`, 0xC4/0x20007). Not initialised:
    /// 0xC4/0xD1; still owned or waited for: 0xC4/0x100B (P3 an owner).
    fn ExDeleteResourceLite(Resource: PERESOURCE) -> NTSTATUS {
        let e = enter("ExDeleteResourceLite");
        let addr = address(&e, Resource);
        require_irql(&e, irql::APC, verifier::RULE_IRQL_EX_APC_LTE3, addr);
        // Ok(()) deleted; Err(None) not initialised; Err(Some(owner)) in use.
        let outcome = {
            let mut table = e.machine.resources.lock();
            match table.get(&addr) {
                None => Err(None),
                Some(s) if s.in_use() => Err(Some(s.owners.first().map_or(0, |&(o, _)| o))),
                Some(_) => {
                    table.remove(&addr);
                    Ok(())
                }
            }
        };
        match outcome {
            Ok(()) => wdk_sys::STATUS_SUCCESS,
            Err(None) => e.bugcheck(
                code::DRIVER_VERIFIER_DETECTED_VIOLATION,
                [verifier::RESOURCE_DELETE_UNINITIALIZED, addr as u64, 0, 0],
                format!("ExDeleteResourceLite of resource {addr:#x}, which is not initialised"),
            ),
            Err(Some(owner)) => e.bugcheck(
                code::DRIVER_VERIFIER_DETECTED_VIOLATION,
                [verifier::DELETED_LOCK_STILL_OWNED, addr as u64, owner as u64, 0],
                format!(
                    "ExDeleteResourceLite of resource {addr:#x}, which is still owned (by \
                     {owner:#x}) or waited for"
                ),
            ),
        }
    }
}

export! {
    /// Acquires exclusive access. Free: granted; already exclusive: recursion; owned by others:
    /// waits (`Wait`) or returns FALSE. Owned only shared by the caller: FALSE without `Wait`,
    /// 0xC4/0x1000 with it (a self-deadlock on Windows). IRQL <= `APC_LEVEL` (0xC4/0x20007),
    /// normal kernel APCs disabled (0xC4/0x37).
    fn ExAcquireResourceExclusiveLite(Resource: PERESOURCE, Wait: BOOLEAN) -> BOOLEAN {
        let e = enter("ExAcquireResourceExclusiveLite");
        u8::from(acquire(&e, Resource, Request::Exclusive, Wait != 0))
    }
}

export! {
    /// Acquires shared access. Free or held by the caller (either mode, recursion in that
    /// mode): granted; shared by others with no exclusive waiter: granted; owned exclusive by
    /// another thread, or exclusive waiters and the caller holds nothing: waits (`Wait`) or
    /// returns FALSE. IRQL <= `APC_LEVEL` (0xC4/0x20007), normal kernel APCs disabled
    /// (0xC4/0x37).
    fn ExAcquireResourceSharedLite(Resource: PERESOURCE, Wait: BOOLEAN) -> BOOLEAN {
        let e = enter("ExAcquireResourceSharedLite");
        u8::from(acquire(&e, Resource, Request::Shared, Wait != 0))
    }
}

export! {
    /// As `ExAcquireResourceSharedLite`, but granted while others own it shared even when
    /// exclusive requests wait (they can starve). IRQL <= `APC_LEVEL` (0xC4/0x20007), normal
    /// kernel APCs disabled (0xC4/0x37).
    fn ExAcquireSharedStarveExclusive(Resource: PERESOURCE, Wait: BOOLEAN) -> BOOLEAN {
        let e = enter("ExAcquireSharedStarveExclusive");
        u8::from(acquire(&e, Resource, Request::StarveExclusive, Wait != 0))
    }
}

export! {
    /// As `ExAcquireResourceSharedLite`, except that a caller that owns it shared while
    /// exclusive requests wait queues behind them. If nobody releases the caller's hold for it
    /// (`ExReleaseResourceForThreadLite`) within the hang budget, that is a self-deadlock:
    /// 0xC4/0x1000 (errata 13). IRQL <= `APC_LEVEL` (0xC4/0x20007), normal kernel APCs disabled
    /// (0xC4/0x37).
    fn ExAcquireSharedWaitForExclusive(Resource: PERESOURCE, Wait: BOOLEAN) -> BOOLEAN {
        let e = enter("ExAcquireSharedWaitForExclusive");
        u8::from(acquire(&e, Resource, Request::SharedWaitForExclusive, Wait != 0))
    }
}

export! {
    /// Converts the caller's exclusive ownership (with all its recursive acquisitions) to shared,
    /// and grants every waiting shared request at the same time. Not owning it exclusively:
    /// 0x1F. IRQL <= `APC_LEVEL` (the docs' value; 0xC4/0x20007).
    fn ExConvertExclusiveToSharedLite(Resource: PERESOURCE) {
        let e = enter("ExConvertExclusiveToSharedLite");
        let addr = address(&e, Resource);
        require_irql(&e, irql::APC, verifier::RULE_IRQL_EX_APC_LTE3, addr);
        let me = thread_id(&e);
        let converted = e.machine.resources.with(addr, |s| {
            if !(s.exclusive && s.count_of(me) > 0) {
                return None;
            }
            s.exclusive = false;
            Some(s.grant_shared_waiters())
        });
        match converted {
            None => uninitialised(&e, addr),
            Some(None) => e.bugcheck(
                code::SHARED_RESOURCE_CONV_ERROR,
                [addr as u64, me as u64, 0, 0],
                format!(
                    "ExConvertExclusiveToSharedLite of resource {addr:#x}, which the caller does \
                     not own exclusively"
                ),
            ),
            Some(Some(woke)) => {
                if woke {
                    wake_waiters(&e);
                }
            }
        }
    }
}

export! {
    /// Releases one acquisition of the calling thread; the last one hands the resource to its
    /// waiters. A caller that does not own it: 0xE3 (P1 resource, P2 thread). IRQL <=
    /// `DISPATCH_LEVEL` (0xC4/0xE5), normal kernel APCs still disabled (0xC4/0x38).
    fn ExReleaseResourceLite(Resource: PERESOURCE) {
        let e = enter("ExReleaseResourceLite");
        release_own(&e, Resource);
    }
}

export! {
    /// Releases one acquisition held by `ResourceThreadId`: a thread
    /// (`ExGetCurrentResourceThread` of the acquirer) or an owner pointer set by
    /// `ExSetResourceOwnerPointer(Ex)`. An id that does not own it: 0x16E (P1 resource, P2
    /// current thread, P3 the id). IRQL <= `DISPATCH_LEVEL` (0xC4/0xE5); normal kernel APCs
    /// disabled (0xC4/0x38) except in a system thread, which need not (ddi.md 7.1).
    fn ExReleaseResourceForThreadLite(Resource: PERESOURCE, ResourceThreadId: ERESOURCE_THREAD) {
        let e = enter("ExReleaseResourceForThreadLite");
        let addr = address(&e, Resource);
        require_irql(&e, irql::DISPATCH, verifier::API_AT_WRONG_IRQL, addr);
        if e.kind != ContextKind::SystemThread {
            require_apcs_disabled(&e, verifier::RESOURCE_RELEASE_APCS_ENABLED, addr);
        }
        let target = usize::try_from(ResourceThreadId).unwrap_or(usize::MAX);
        if !release(&e, addr, target) {
            let me = thread_id(&e);
            e.bugcheck(
                code::ERESOURCE_INVALID_RELEASE,
                [addr as u64, me as u64, ResourceThreadId, 0],
                format!(
                    "ExReleaseResourceForThreadLite of resource {addr:#x} for {target:#x}, which \
                     owns no acquisition of it"
                ),
            );
        }
    }
}

/// Transfers the caller's acquisitions to `owner_pointer` (ddi.md 7.2).
fn set_owner_pointer(e: &Entry, resource: PERESOURCE, owner_pointer: PVOID) {
    let addr = address(e, resource);
    require_irql(e, irql::DISPATCH, verifier::API_AT_WRONG_IRQL, addr);
    let me = thread_id(e);
    let pointer = owner_pointer as usize;
    if pointer & OWNER_POINTER_BITS != OWNER_POINTER_BITS {
        e.bugcheck(
            code::RESOURCE_OWNER_POINTER_INVALID,
            [addr as u64, 0, me as u64, pointer as u64],
            format!(
                "{} of resource {addr:#x} with owner pointer {pointer:#x}: its two low bits \
                 must be set",
                e.ddi
            ),
        );
    }
    let moved = e.machine.resources.with(addr, |s| {
        let index = s.owners.iter().position(|&(o, _)| o == me)?;
        let (_, count) = s.owners.swap_remove(index);
        if let Some(entry) = s.owners.iter_mut().find(|(o, _)| *o == pointer) {
            entry.1 += count;
        } else {
            s.owners.push((pointer, count));
        }
        Some(())
    });
    match moved {
        None => uninitialised(e, addr),
        Some(None) => not_owned(e, addr, me),
        Some(Some(())) => {}
    }
}

export! {
    /// Transfers the caller's ownership to `OwnerPointer` (an `ERESOURCE_THREAD` value with its
    /// two low bits set; otherwise 0x132); from then on only `ExReleaseResourceForThreadLite`
    /// with that pointer may release it. The caller must own the resource (0xE3). IRQL <=
    /// `DISPATCH_LEVEL` (0xC4/0xE5).
    fn ExSetResourceOwnerPointer(Resource: PERESOURCE, OwnerPointer: PVOID) {
        let e = enter("ExSetResourceOwnerPointer");
        set_owner_pointer(&e, Resource, OwnerPointer);
    }
}

export! {
    /// As `ExSetResourceOwnerPointer`; `Flags` is 0 or `FLAG_OWNER_POINTER_IS_THREAD` (which only
    /// says what the pointer designates; the low-bit rule is the same). IRQL <=
    /// `DISPATCH_LEVEL` (0xC4/0xE5).
    fn ExSetResourceOwnerPointerEx(Resource: PERESOURCE, OwnerPointer: PVOID, Flags: ULONG) {
        let e = enter("ExSetResourceOwnerPointerEx");
        let _ = Flags;
        set_owner_pointer(&e, Resource, OwnerPointer);
    }
}

/// A query on the resource at `resource` for the calling thread.
fn query<R>(e: &Entry, resource: PERESOURCE, f: impl FnOnce(&State, usize) -> R) -> R {
    let addr = address(e, resource);
    require_irql(e, irql::DISPATCH, verifier::API_AT_WRONG_IRQL, addr);
    let me = thread_id(e);
    e.machine
        .resources
        .with(addr, |s| f(s, me))
        .unwrap_or_else(|| uninitialised(e, addr))
}

export! {
    /// TRUE iff the calling thread owns the resource exclusively. IRQL <= `DISPATCH_LEVEL`.
    fn ExIsResourceAcquiredExclusiveLite(Resource: PERESOURCE) -> BOOLEAN {
        let e = enter("ExIsResourceAcquiredExclusiveLite");
        query(&e, Resource, |s, me| u8::from(s.exclusive && s.count_of(me) > 0))
    }
}

export! {
    /// How many acquisitions the calling thread holds, shared or exclusive (an exclusive owner
    /// that also acquired it shared counts 2); 0 when none. `ExIsResourceAcquiredLite` is a
    /// macro for it. IRQL <= `DISPATCH_LEVEL`.
    fn ExIsResourceAcquiredSharedLite(Resource: PERESOURCE) -> ULONG {
        let e = enter("ExIsResourceAcquiredSharedLite");
        query(&e, Resource, State::count_of)
    }
}

export! {
    /// How many threads wait for exclusive access. IRQL <= `DISPATCH_LEVEL`.
    fn ExGetExclusiveWaiterCount(Resource: PERESOURCE) -> ULONG {
        let e = enter("ExGetExclusiveWaiterCount");
        query(&e, Resource, |s, _| {
            ULONG::try_from(s.exclusive_waiters.len()).unwrap_or(ULONG::MAX)
        })
    }
}

export! {
    /// How many threads wait for shared access. IRQL <= `DISPATCH_LEVEL`.
    fn ExGetSharedWaiterCount(Resource: PERESOURCE) -> ULONG {
        let e = enter("ExGetSharedWaiterCount");
        query(&e, Resource, |s, _| ULONG::try_from(s.shared_waiters.len()).unwrap_or(ULONG::MAX))
    }
}

/// The `ExEnterCriticalRegionAndAcquire…` helpers: IRQL <= `APC_LEVEL` (0xC4/0x20007), enter a
/// critical region, then acquire with `Wait = TRUE`. They return the thread's `Win32Thread`,
/// which drivers ignore: NULL for kernel threads.
fn enter_region_and_acquire(e: &Entry, resource: PERESOURCE, request: Request) -> PVOID {
    let addr = address(e, resource);
    require_irql(e, irql::APC, verifier::RULE_IRQL_EX_APC_LTE3, addr);
    e.kernel_apc_disable.set(e.kernel_apc_disable.get() - 1);
    acquire(e, resource, request, true);
    std::ptr::null_mut()
}

export! {
    /// Enters a critical region and acquires the resource exclusively (waiting). Returns an
    /// opaque value drivers ignore (NULL). IRQL <= `APC_LEVEL` (0xC4/0x20007).
    fn ExEnterCriticalRegionAndAcquireResourceExclusive(Resource: PERESOURCE) -> PVOID {
        let e = enter("ExEnterCriticalRegionAndAcquireResourceExclusive");
        enter_region_and_acquire(&e, Resource, Request::Exclusive)
    }
}

export! {
    /// Enters a critical region and acquires the resource shared (waiting). Returns an opaque
    /// value drivers ignore (NULL). IRQL <= `APC_LEVEL` (0xC4/0x20007).
    fn ExEnterCriticalRegionAndAcquireResourceShared(Resource: PERESOURCE) -> PVOID {
        let e = enter("ExEnterCriticalRegionAndAcquireResourceShared");
        enter_region_and_acquire(&e, Resource, Request::Shared)
    }
}

export! {
    /// Enters a critical region and acquires the resource as `ExAcquireSharedWaitForExclusive`
    /// (waiting). Returns an opaque value drivers ignore (NULL). IRQL <= `APC_LEVEL`
    /// (0xC4/0x20007).
    fn ExEnterCriticalRegionAndAcquireSharedWaitForExclusive(Resource: PERESOURCE) -> PVOID {
        let e = enter("ExEnterCriticalRegionAndAcquireSharedWaitForExclusive");
        enter_region_and_acquire(&e, Resource, Request::SharedWaitForExclusive)
    }
}

export! {
    /// Releases one acquisition of the calling thread (as `ExReleaseResourceLite`), then leaves
    /// the critical region (not in one: 0xC4/0x3E). IRQL <= `APC_LEVEL` (the docs' value,
    /// stricter than the header's; above: 0xC4/0xE5).
    fn ExReleaseResourceAndLeaveCriticalRegion(Resource: PERESOURCE) {
        let e = enter("ExReleaseResourceAndLeaveCriticalRegion");
        let addr = address(&e, Resource);
        require_irql(&e, irql::APC, verifier::API_AT_WRONG_IRQL, addr);
        release_own(&e, Resource);
        let count = e.kernel_apc_disable.get();
        if count >= 0 {
            e.bugcheck(
                code::DRIVER_VERIFIER_DETECTED_VIOLATION,
                [verifier::LEAVE_CRITICAL_REGION_NOT_ENTERED, 0, 0, 0],
                "ExReleaseResourceAndLeaveCriticalRegion outside a critical region",
            );
        }
        e.kernel_apc_disable.set(count + 1);
    }
}
