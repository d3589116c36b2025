//! Timers (ddi.md 8.5, 13.4): `KeInitializeTimer`, `KeInitializeTimerEx`, `KeSetTimer`,
//! `KeSetTimerEx`, `KeCancelTimer`, `KeReadStateTimer`; and the machine's timer service.
//!
//! A `KTIMER` is driver memory: a `DISPATCHER_HEADER` of type 8 (notification) or 9
//! (synchronization), then `DueTime`, `Dpc`, `Processor` and `Period` at the x64 offsets.
//! Armed timers are kept in the dispatcher state ([`Table`], the timer table), in due order. One
//! host thread per machine, the timer service (started by the first `KeSetTimer…`), sleeps
//! until the earliest due time; then, under the dispatcher lock, it signals the timer (a
//! notification timer releases every waiter, a synchronization timer one, through the wait
//! engine), queues the timer's DPC with `KeInsertQueueDpc`'s logic on the processor that set the
//! timer (unless the DPC is already queued, as on Windows), and re-arms a periodic timer.
//!
//! A periodic timer whose next expiry is already past when it fires (the host was slow) is
//! re-armed one period from now: missed expiries are dropped, not replayed in a burst.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{atomic::Ordering, Arc},
    time::{Duration, Instant},
};

use wdk_sys::{BOOLEAN, LARGE_INTEGER, LONG, PKDPC, PKTIMER, TIMER_TYPE};

use crate::{
    bugcheck::verifier,
    context::{enter, irql, Entry},
    ddi::{
        dpc,
        wait::{check_header, deadline_of, later, require_irql_at_most, system_time},
    },
    dispatcher::{self, object_type, Locked},
    machine::MachineInner,
};

/// `sizeof(KTIMER) / 4`, the header's `Size` byte.
const TIMER_SIZE_IN_LONGS: u8 = 16;
/// Offset of `KTIMER.DueTime`.
const DUE_TIME_OFFSET: usize = 24;
/// Offset of `KTIMER.Dpc`.
const DPC_OFFSET: usize = 48;
/// Offset of `KTIMER.Processor`.
const PROCESSOR_OFFSET: usize = 56;
/// Offset of `KTIMER.Period`.
const PERIOD_OFFSET: usize = 60;

/// One armed timer.
#[derive(Clone, Copy, Debug)]
struct Armed {
    /// Due instant and a sequence number (timers due at once fire in the order they were set).
    key: (Instant, u64),
    period: Duration,
    dpc: usize,
    cpu: u32,
}

/// The timer table of a machine: armed timers by address and by due time. Guarded by the
/// dispatcher lock.
#[derive(Default)]
pub struct Table {
    armed: HashMap<usize, Armed>,
    order: BTreeMap<(Instant, u64), usize>,
    sequence: u64,
}

impl Table {
    /// Arms (or re-arms) `timer`; returns whether it was armed before.
    fn arm(&mut self, timer: usize, due: Instant, period: Duration, dpc: usize, cpu: u32) -> bool {
        let was_armed = self.cancel(timer);
        self.sequence += 1;
        let key = (due, self.sequence);
        self.order.insert(key, timer);
        self.armed.insert(
            timer,
            Armed {
                key,
                period,
                dpc,
                cpu,
            },
        );
        was_armed
    }

    /// Disarms `timer`; returns whether it was armed.
    fn cancel(&mut self, timer: usize) -> bool {
        self.armed.remove(&timer).is_some_and(|armed| {
            self.order.remove(&armed.key);
            true
        })
    }

    /// The earliest due instant.
    fn next_due(&self) -> Option<Instant> {
        self.order.keys().next().map(|key| key.0)
    }

    /// Removes and returns the earliest timer if it is due at `now`.
    fn pop_expired(&mut self, now: Instant) -> Option<(usize, Armed)> {
        let (&key, &timer) = self.order.iter().next()?;
        if key.0 > now {
            return None;
        }
        self.order.remove(&key);
        self.armed.remove(&timer).map(|armed| (timer, armed))
    }

    /// The lowest address of an armed timer in `[start, start + len)`.
    fn armed_within(&self, start: usize, len: usize) -> Option<usize> {
        self.armed
            .keys()
            .copied()
            .filter(|&t| t >= start && t - start < len)
            .min()
    }

    /// The lowest address of an armed timer, and how many are armed.
    fn first_armed(&self) -> Option<(usize, usize)> {
        self.armed
            .keys()
            .copied()
            .min()
            .map(|first| (first, self.armed.len()))
    }
}

/// An armed timer inside `[start, start + len)` (freeing that memory is 0xC4/0x15).
pub(crate) fn armed_within(machine: &MachineInner, start: usize, len: usize) -> Option<usize> {
    machine
        .dispatcher
        .lock()
        .state()
        .timers
        .armed_within(start, len)
}

/// The lowest armed timer's address and the number armed (0xCE at unload).
pub(crate) fn armed_timers(machine: &MachineInner) -> Option<(usize, usize)> {
    machine.dispatcher.lock().state().timers.first_armed()
}

/// Starts the machine's timer service unless it runs already.
fn start_service(machine: &Arc<MachineInner>) {
    if machine
        .dispatcher
        .timer_service
        .swap(true, Ordering::AcqRel)
    {
        return;
    }
    let owner = Arc::clone(machine);
    std::thread::Builder::new()
        .name("ntsim-timers".to_owned())
        .spawn(move || service(&owner))
        .unwrap_or_else(|e| panic!("ntsim: cannot start the timer service: {e}"));
}

/// The timer service: fires due timers, sleeps until the next one; ends with the machine.
fn service(machine: &MachineInner) {
    let dispatcher = &machine.dispatcher;
    let mut locked = dispatcher.lock();
    loop {
        if machine.is_dead() || machine.is_shutting_down() {
            return;
        }
        let now = Instant::now();
        while let Some((timer, armed)) = locked.state().timers.pop_expired(now) {
            expire(machine, &mut locked, timer, armed, now);
        }
        let next = locked.state().timers.next_due();
        locked = dispatcher::sleep(locked, &dispatcher.timer_wake, next).0;
    }
}

/// One expiry (dispatcher lock held): signal, satisfy waits, re-arm a periodic timer, queue
/// the DPC.
fn expire(
    machine: &MachineInner,
    locked: &mut Locked<'_>,
    timer: usize,
    armed: Armed,
    now: Instant,
) {
    // SAFETY: an armed timer is resident: freeing its memory while armed is 0xC4/0x15 (checked
    // at free), and re-initialising it disarms it first. The dispatcher lock is held.
    unsafe { dispatcher::store_state(timer, 1) };
    // SAFETY: as above; the other objects of its waiters are live while they wait.
    unsafe { locked.wait_test(timer) };
    if !armed.period.is_zero() {
        let mut next = armed.key.0.checked_add(armed.period).unwrap_or(armed.key.0);
        if next <= now {
            next = later(armed.period);
        }
        locked
            .state()
            .timers
            .arm(timer, next, armed.period, armed.dpc, armed.cpu);
    }
    if armed.dpc != 0 {
        let time = system_time().cast_unsigned();
        // SAFETY: the DPC was checked when the timer was set, and the driver keeps it resident
        // while the timer is armed (ddi.md 8.5).
        unsafe {
            dpc::insert(
                machine,
                armed.dpc as PKDPC,
                std::ptr::without_provenance_mut((time & 0xFFFF_FFFF) as usize),
                std::ptr::without_provenance_mut((time >> 32) as usize),
                armed.cpu,
                true,
            )
        };
    }
}

/// `KeInitializeTimerEx`'s work.
fn initialize(e: &Entry, timer: PKTIMER, kind: u8) {
    let addr = check_header(e, timer);
    require_irql_at_most(e, irql::DISPATCH, verifier::RULE_IRQL_KE_DISPATCH_LTE, addr);
    let mut locked = e.machine.dispatcher.lock();
    locked.state().timers.cancel(addr);
    let bytes = timer.cast::<u8>();
    // SAFETY: `timer` is non-null and aligned (checked) and, per the DDI contract, a writable
    // 64-byte KTIMER; it is not armed (just disarmed under the dispatcher lock, which is held).
    unsafe { bytes.write_bytes(0, 64) };
    // SAFETY: as above; the header's Size byte.
    unsafe { bytes.wrapping_add(2).write(TIMER_SIZE_IN_LONGS) };
    // SAFETY: as above.
    unsafe { dispatcher::init_wait_list(addr) };
    // SAFETY: as above.
    unsafe { dispatcher::store_type(addr, kind) };
}

/// `KeSetTimerEx`'s work.
fn set(e: &Entry, timer: PKTIMER, due: LARGE_INTEGER, period: LONG, dpc: PKDPC) -> BOOLEAN {
    let addr = check_header(e, timer);
    require_irql_at_most(e, irql::DISPATCH, verifier::RULE_IRQL_KE_DISPATCH_LTE, addr);
    if !dpc.is_null() {
        dpc::check_dpc(e, dpc);
    }
    // SAFETY: every bit pattern of the union is a valid i64.
    let ticks = unsafe { due.QuadPart };
    let due_at = deadline_of(ticks);
    let period = u64::try_from(period).unwrap_or_else(|_| {
        e.machine.log_line(format!(
            "ntsim: {}({addr:#x}) with Period {period} < 0: set as a one-shot timer",
            e.ddi
        ));
        0
    });
    let period = Duration::from_millis(period);
    let cpu = e.processor.get();
    let mut locked = e.machine.dispatcher.lock();
    // SAFETY: checked non-null and aligned; an initialised KTIMER per the DDI contract; its
    // fields are written only under the dispatcher lock, which is held.
    unsafe { dispatcher::store_state(addr, 0) };
    let ahead = due_at.saturating_duration_since(Instant::now()).as_nanos() / 100;
    let due_system_time = system_time().saturating_add(i64::try_from(ahead).unwrap_or(i64::MAX));
    let field = timer.wrapping_byte_add(DUE_TIME_OFFSET).cast::<i64>();
    // SAFETY: as above; DueTime is the 8-aligned ULONGLONG at offset 24 (ntsim stores the
    // system time it is due at).
    unsafe { field.write(due_system_time) };
    let field = timer.wrapping_byte_add(DPC_OFFSET).cast::<PKDPC>();
    // SAFETY: as above; Dpc is the pointer at offset 48.
    unsafe { field.write(dpc) };
    let field = timer.wrapping_byte_add(PROCESSOR_OFFSET).cast::<u32>();
    // SAFETY: as above; Processor is the ULONG at offset 56.
    unsafe { field.write(cpu) };
    #[allow(clippy::cast_possible_truncation, reason = "from a non-negative LONG")]
    let period_ms = period.as_millis() as u32;
    let field = timer.wrapping_byte_add(PERIOD_OFFSET).cast::<u32>();
    // SAFETY: as above; Period is the ULONG at offset 60.
    unsafe { field.write(period_ms) };
    let was_armed = locked
        .state()
        .timers
        .arm(addr, due_at, period, dpc as usize, cpu);
    e.machine.dispatcher.timer_wake.notify_all();
    drop(locked);
    start_service(&e.machine);
    BOOLEAN::from(was_armed)
}

export! {
    /// Initialises a notification timer, not signaled. IRQL <= `DISPATCH_LEVEL` (DDI rule
    /// `IrqlKeDispatchLte`).
    fn KeInitializeTimer(Timer: PKTIMER) {
        let e = enter("KeInitializeTimer");
        initialize(&e, Timer, object_type::TIMER_NOTIFICATION);
    }
}

export! {
    /// Initialises a timer of `Type` (`NotificationTimer`: stays signaled and releases every
    /// waiter; `SynchronizationTimer`: releases one waiter and resets), not signaled. IRQL <=
    /// `DISPATCH_LEVEL` (DDI rule `IrqlKeDispatchLte`).
    fn KeInitializeTimerEx(Timer: PKTIMER, Type: TIMER_TYPE) {
        let e = enter("KeInitializeTimerEx");
        let kind = if Type == wdk_sys::_TIMER_TYPE::SynchronizationTimer {
            object_type::TIMER_SYNCHRONIZATION
        } else {
            object_type::TIMER_NOTIFICATION
        };
        initialize(&e, Timer, kind);
    }
}

export! {
    /// Sets the timer not signaled and arms it for `DueTime` (negative: relative, 100 ns;
    /// otherwise absolute system time); at expiry it is signaled and `Dpc`, if not NULL, is
    /// queued. TRUE when it was armed already (that expiry is cancelled). IRQL <=
    /// `DISPATCH_LEVEL` (DDI rule `IrqlKeDispatchLte`).
    fn KeSetTimer(Timer: PKTIMER, DueTime: LARGE_INTEGER, Dpc: PKDPC) -> BOOLEAN {
        let e = enter("KeSetTimer");
        set(&e, Timer, DueTime, 0, Dpc)
    }
}

export! {
    /// As `KeSetTimer`, with `Period` in milliseconds (0: one-shot): a periodic timer re-arms
    /// at every expiry. IRQL <= `DISPATCH_LEVEL` (DDI rule `IrqlKeDispatchLte`).
    fn KeSetTimerEx(Timer: PKTIMER, DueTime: LARGE_INTEGER, Period: LONG, Dpc: PKDPC) -> BOOLEAN {
        let e = enter("KeSetTimerEx");
        set(&e, Timer, DueTime, Period, Dpc)
    }
}

export! {
    /// Disarms the timer: TRUE when it was armed. A one-shot timer leaves the table when it
    /// fires (FALSE afterwards, though its DPC may still be queued or running); a periodic one
    /// stays armed (TRUE). Does not wait for the DPC. IRQL <= `DISPATCH_LEVEL` (DDI rule
    /// `IrqlKeDispatchLte`).
    fn KeCancelTimer(Timer: PKTIMER) -> BOOLEAN {
        let e = enter("KeCancelTimer");
        let addr = check_header(&e, Timer);
        require_irql_at_most(&e, irql::DISPATCH, verifier::RULE_IRQL_KE_DISPATCH_LTE, addr);
        let mut locked = e.machine.dispatcher.lock();
        BOOLEAN::from(locked.state().timers.cancel(addr))
    }
}

export! {
    /// TRUE when the timer is signaled (an unsynchronised read). IRQL <= `DISPATCH_LEVEL` (DDI
    /// rule `IrqlKeDispatchLte`).
    fn KeReadStateTimer(Timer: PKTIMER) -> BOOLEAN {
        let e = enter("KeReadStateTimer");
        let addr = check_header(&e, Timer);
        require_irql_at_most(&e, irql::DISPATCH, verifier::RULE_IRQL_KE_DISPATCH_LTE, addr);
        // SAFETY: checked non-null and aligned; an initialised KTIMER per the DDI contract.
        BOOLEAN::from(unsafe { dispatcher::load_state(addr) } != 0)
    }
}
