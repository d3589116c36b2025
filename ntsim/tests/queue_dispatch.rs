//! Queue dispatch beyond the parallel default queue: a sequential queue presents one request at
//! a time and completes a request canceled while it waits; a queue's execution level decides the
//! IRQL of `EvtRequestCancel`; `MachineConfig::dispatch_level_callback_checks` judges the
//! callbacks of a queue that is not passive-level as running at `DISPATCH_LEVEL`; and
//! `EvtDeviceFileCreate` decides the open.
//!
//! The test drivers keep their state in statics, so the tests of this file take turns (each
//! holds [`exclusive`] while it runs).

mod support;

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering},
        Mutex, MutexGuard, PoisonError,
    },
    time::{Duration, Instant},
};

use ntsim::{
    bugcheck::{code, verifier},
    io::DriverEntry,
    wdk_sys::{
        call_unsafe_wdf_function_binding, ntddk,
        _WDF_REQUEST_STOP_ACTION_FLAGS::{
            WdfRequestStopActionPurge, WdfRequestStopRequestCancelable,
        },
        DRIVER_OBJECT, LARGE_INTEGER, NTSTATUS, PCUNICODE_STRING, PVOID, PWDFDEVICE_INIT,
        STATUS_CANCELLED, STATUS_SHARING_VIOLATION, STATUS_SUCCESS, WDFDEVICE, WDFDRIVER,
        WDFFILEOBJECT, WDFQUEUE, WDFREQUEST,
    },
    Access, FileHandle, HostError, Identity, IoError, Machine, MachineConfig, PendingIo,
};
use support::{
    dispatcher::Waitable,
    kmdf::{FileCallbacks, QueueOptions},
};

const fn ioctl(function: u32) -> u32 {
    (0x8000 << 16) | (function << 2)
}
/// Keeps the request (completed later by [`complete_kept`]).
const HOLD: u32 = ioctl(0x901);
/// Marks the request cancelable and keeps it.
const PARK_CANCELABLE: u32 = ioctl(0x902);
/// `KeDelayExecutionThread` for 10 ms, then completes.
const DELAY: u32 = ioctl(0x903);
/// `KeWaitForSingleObject` (no timeout) on a signaled event, then completes.
const WAIT_EVENT: u32 = ioctl(0x904);
/// `PsCreateSystemThread` (a thread that returns at once), then completes.
const SPAWN: u32 = ioctl(0x905);
/// Completes at once.
const PING: u32 = ioctl(0x906);

static SERIAL: Mutex<()> = Mutex::new(());
static KEPT: Mutex<Vec<usize>> = Mutex::new(Vec::new());
static ARRIVED: AtomicU32 = AtomicU32::new(0);
static CANCEL_IRQL: AtomicU8 = AtomicU8::new(0xFF);
static FAIL_CREATE: AtomicBool = AtomicBool::new(false);
static CREATES: AtomicU32 = AtomicU32::new(0);
static CLOSES: AtomicU32 = AtomicU32::new(0);
/// What `EvtIoStop` was called with: (request, action flags, IRQL).
static STOPS: Mutex<Vec<(usize, u32, u8)>> = Mutex::new(Vec::new());
static CANCELS: AtomicU32 = AtomicU32::new(0);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn exclusive() -> MutexGuard<'static, ()> {
    let turn = lock(&SERIAL);
    lock(&KEPT).clear();
    ARRIVED.store(0, Ordering::SeqCst);
    CANCEL_IRQL.store(0xFF, Ordering::SeqCst);
    FAIL_CREATE.store(false, Ordering::SeqCst);
    CREATES.store(0, Ordering::SeqCst);
    CLOSES.store(0, Ordering::SeqCst);
    lock(&STOPS).clear();
    CANCELS.store(0, Ordering::SeqCst);
    turn
}

// ---------------------------------------------------------------------------------------------
// The test drivers: one device-control callback, three ways of making the queue.
// ---------------------------------------------------------------------------------------------

unsafe extern "system" fn parallel_entry(
    driver: *mut DRIVER_OBJECT,
    path: PCUNICODE_STRING,
) -> NTSTATUS {
    // SAFETY: forwarded from the loader.
    unsafe { support::kmdf::create_driver(driver, path, Some(parallel_add)) }
}

unsafe extern "system" fn sequential_entry(
    driver: *mut DRIVER_OBJECT,
    path: PCUNICODE_STRING,
) -> NTSTATUS {
    // SAFETY: forwarded from the loader.
    unsafe { support::kmdf::create_driver(driver, path, Some(sequential_add)) }
}

unsafe extern "system" fn passive_entry(
    driver: *mut DRIVER_OBJECT,
    path: PCUNICODE_STRING,
) -> NTSTATUS {
    // SAFETY: forwarded from the loader.
    unsafe { support::kmdf::create_driver(driver, path, Some(passive_add)) }
}

unsafe extern "system" fn creating_entry(
    driver: *mut DRIVER_OBJECT,
    path: PCUNICODE_STRING,
) -> NTSTATUS {
    // SAFETY: forwarded from the loader.
    unsafe { support::kmdf::create_driver(driver, path, Some(creating_add)) }
}

unsafe extern "system" fn stopping_entry(
    driver: *mut DRIVER_OBJECT,
    path: PCUNICODE_STRING,
) -> NTSTATUS {
    // SAFETY: forwarded from the loader.
    unsafe { support::kmdf::create_driver(driver, path, Some(stopping_add)) }
}

unsafe extern "system" fn unmanaged_stopping_entry(
    driver: *mut DRIVER_OBJECT,
    path: PCUNICODE_STRING,
) -> NTSTATUS {
    // SAFETY: forwarded from the loader.
    unsafe { support::kmdf::create_driver(driver, path, Some(unmanaged_stopping_add)) }
}

/// A power-managed queue (the default) with an `EvtIoStop`.
extern "C" fn stopping_add(_driver: WDFDRIVER, init: PWDFDEVICE_INIT) -> NTSTATUS {
    let options = QueueOptions {
        io_stop: Some(io_stop),
        ..QueueOptions::default()
    };
    support::kmdf::create_device_with(init, None, Some(device_control), options)
}

/// The same `EvtIoStop` on a queue that is not power-managed.
extern "C" fn unmanaged_stopping_add(_driver: WDFDRIVER, init: PWDFDEVICE_INIT) -> NTSTATUS {
    let options = QueueOptions {
        io_stop: Some(io_stop),
        not_power_managed: true,
        ..QueueOptions::default()
    };
    support::kmdf::create_device_with(init, None, Some(device_control), options)
}

/// `EvtIoStop` for a purge: a non-cancelable request is completed here; a cancelable one is
/// left to the purge, which cancels it.
extern "C" fn io_stop(_queue: WDFQUEUE, request: WDFREQUEST, flags: u32) {
    let request = request as usize;
    lock(&STOPS).push((request, flags, support::irql()));
    let cancelable = flags & WdfRequestStopRequestCancelable as u32 != 0;
    if flags & WdfRequestStopActionPurge as u32 != 0 && !cancelable {
        lock(&KEPT).retain(|&r| r != request);
        complete(request, STATUS_CANCELLED);
    }
}

extern "C" fn parallel_add(_driver: WDFDRIVER, init: PWDFDEVICE_INIT) -> NTSTATUS {
    support::kmdf::create_device(init, None, Some(device_control))
}

extern "C" fn sequential_add(_driver: WDFDRIVER, init: PWDFDEVICE_INIT) -> NTSTATUS {
    let options = QueueOptions {
        sequential: true,
        ..QueueOptions::default()
    };
    support::kmdf::create_device_with(init, None, Some(device_control), options)
}

extern "C" fn passive_add(_driver: WDFDRIVER, init: PWDFDEVICE_INIT) -> NTSTATUS {
    let options = QueueOptions {
        passive: true,
        ..QueueOptions::default()
    };
    support::kmdf::create_device_with(init, None, Some(device_control), options)
}

extern "C" fn creating_add(_driver: WDFDRIVER, init: PWDFDEVICE_INIT) -> NTSTATUS {
    support::kmdf::set_file_callbacks(
        init,
        FileCallbacks {
            create: Some(file_create),
            close: Some(file_close),
            ..FileCallbacks::default()
        },
    );
    support::kmdf::create_device(init, None, Some(device_control))
}

extern "C" fn file_create(_device: WDFDEVICE, request: WDFREQUEST, file: WDFFILEOBJECT) {
    assert!(!file.is_null(), "the framework made a WDFFILEOBJECT");
    CREATES.fetch_add(1, Ordering::SeqCst);
    let status = if FAIL_CREATE.load(Ordering::SeqCst) {
        STATUS_SHARING_VIOLATION
    } else {
        STATUS_SUCCESS
    };
    complete(request as usize, status);
}

extern "C" fn file_close(_file: WDFFILEOBJECT) {
    CLOSES.fetch_add(1, Ordering::SeqCst);
}

fn complete(request: usize, status: NTSTATUS) {
    // SAFETY: a live request the driver owns and completes once.
    unsafe {
        call_unsafe_wdf_function_binding!(WdfRequestComplete, request as WDFREQUEST, status);
    }
}

extern "C" fn request_cancel(request: WDFREQUEST) {
    CANCEL_IRQL.store(support::irql(), Ordering::SeqCst);
    CANCELS.fetch_add(1, Ordering::SeqCst);
    lock(&KEPT).retain(|&r| r != request as usize);
    complete(request as usize, STATUS_CANCELLED);
}

const unsafe extern "C" fn returns_at_once(_context: PVOID) {}

extern "C" fn device_control(
    _queue: WDFQUEUE,
    request: WDFREQUEST,
    _out_len: usize,
    _in_len: usize,
    code: u32,
) {
    let request = request as usize;
    ARRIVED.fetch_add(1, Ordering::SeqCst);
    match code {
        HOLD => lock(&KEPT).push(request),
        PARK_CANCELABLE => {
            // SAFETY: a live request delivered by the queue; a cancel routine of the right type.
            let status = unsafe {
                call_unsafe_wdf_function_binding!(
                    WdfRequestMarkCancelableEx,
                    request as WDFREQUEST,
                    Some(request_cancel)
                )
            };
            assert_eq!(status, STATUS_SUCCESS);
            lock(&KEPT).push(request);
        }
        DELAY => {
            let mut interval = LARGE_INTEGER { QuadPart: -100_000 };
            // SAFETY: a readable interval; a wait at PASSIVE_LEVEL.
            let status = unsafe { ntddk::KeDelayExecutionThread(0, 0, &raw mut interval) };
            complete(request, status);
        }
        WAIT_EVENT => {
            let event = support::dispatcher::Event::notification(true);
            let status = event.wait(None);
            complete(request, status);
        }
        SPAWN => {
            support::join(support::spawn(returns_at_once, 0));
            complete(request, STATUS_SUCCESS);
        }
        PING => complete(request, STATUS_SUCCESS),
        _ => complete(request, ntsim::wdk_sys::STATUS_INVALID_DEVICE_REQUEST),
    }
}

// ---------------------------------------------------------------------------------------------
// Host side
// ---------------------------------------------------------------------------------------------

fn loaded(entry: DriverEntry, config: MachineConfig) -> (Machine, FileHandle) {
    let machine = Machine::new(config);
    machine.load_driver("queuetest", entry).expect("loads");
    let file = machine
        .open_with(Identity::User, Access::READ_WRITE, true)
        .expect("opens overlapped");
    (machine, file)
}

fn config(checks: bool) -> MachineConfig {
    MachineConfig {
        processors: 2,
        hang_budget: Duration::from_secs(60),
        dispatch_level_callback_checks: checks,
        ..MachineConfig::default()
    }
}

fn start(machine: &Machine, file: FileHandle, code: u32) -> PendingIo {
    machine
        .device_io_control_async(file, code, &[], 0)
        .expect("issued")
}

/// Completes the oldest kept request from a system thread of `machine`.
fn complete_kept(machine: &Machine) {
    let request = lock(&KEPT).remove(0);
    machine
        .run(move || complete(request, STATUS_SUCCESS))
        .expect("completes");
}

fn host_wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting until {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn expect_violation(result: Result<usize, IoError>) -> [u64; 4] {
    match result {
        Err(IoError::Host(HostError::BugCheck(b))) => {
            assert_eq!(b.code, code::DRIVER_VERIFIER_DETECTED_VIOLATION, "{b}");
            assert!(b.message.contains("dispatch_level_callback_checks"), "{b}");
            b.params
        }
        other => panic!("expected 0xC4, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn a_sequential_queue_presents_the_next_request_only_after_the_first_completes() {
    let _turn = exclusive();
    let (machine, file) = loaded(sequential_entry, config(false));
    let first = start(&machine, file, HOLD);
    let second = start(&machine, file, HOLD);
    assert_eq!(
        ARRIVED.load(Ordering::SeqCst),
        1,
        "the second waits in the queue"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(ARRIVED.load(Ordering::SeqCst), 1);
    complete_kept(&machine);
    assert_eq!(first.wait().expect("completes").0, STATUS_SUCCESS);
    host_wait_until("the second request is presented", || {
        ARRIVED.load(Ordering::SeqCst) == 2
    });
    complete_kept(&machine);
    assert_eq!(second.wait().expect("completes").0, STATUS_SUCCESS);
    machine.close(file);
    machine.unload().expect("clean unload");
}

#[test]
fn a_request_canceled_while_waiting_in_a_sequential_queue_never_reaches_the_driver() {
    let _turn = exclusive();
    let (machine, file) = loaded(sequential_entry, config(false));
    let first = start(&machine, file, HOLD);
    let queued = start(&machine, file, HOLD);
    machine.cancel_io(file, Some(&queued)).expect("CancelIoEx");
    assert_eq!(
        queued.wait().expect("completes").0,
        STATUS_CANCELLED,
        "the framework completes it"
    );
    assert_eq!(ARRIVED.load(Ordering::SeqCst), 1);
    complete_kept(&machine);
    assert_eq!(first.wait().expect("completes").0, STATUS_SUCCESS);
    let mut nothing = [0_u8; 0];
    assert_eq!(
        machine.device_io_control(file, PING, &[], &mut nothing),
        Ok(0),
        "the queue goes on"
    );
    assert_eq!(ARRIVED.load(Ordering::SeqCst), 2);
    machine.close(file);
    machine.unload().expect("clean unload");
}

#[test]
fn closing_the_handle_flushes_its_requests_still_waiting_in_a_queue() {
    let _turn = exclusive();
    let (machine, file) = loaded(sequential_entry, config(false));
    let first = start(&machine, file, HOLD);
    let queued = start(&machine, file, HOLD);
    machine.try_close(file).expect("CloseHandle");
    assert_eq!(
        queued.wait().expect("completes").0,
        STATUS_CANCELLED,
        "the framework flushed it at cleanup"
    );
    assert_eq!(
        ARRIVED.load(Ordering::SeqCst),
        1,
        "it never reached the driver"
    );
    assert!(
        !first.is_complete(),
        "the presented request is the driver's"
    );
    complete_kept(&machine);
    assert_eq!(first.wait().expect("completes").0, STATUS_SUCCESS);
    machine.unload().expect("clean unload");
}

#[test]
fn removal_calls_evt_io_stop_to_purge_each_request_of_a_power_managed_queue_then_cancels() {
    let _turn = exclusive();
    let (machine, file) = loaded(stopping_entry, config(false));
    let held = start(&machine, file, HOLD);
    let cancelable = start(&machine, file, PARK_CANCELABLE);
    // The handle goes with both requests in the driver; the unload's removal must end them.
    machine.try_close(file).expect("CloseHandle");
    machine
        .unload()
        .expect("removal ends both requests, then the unload");
    assert_eq!(held.wait().expect("completed").0, STATUS_CANCELLED);
    assert_eq!(cancelable.wait().expect("completed").0, STATUS_CANCELLED);
    let stops = lock(&STOPS).clone();
    let purge = WdfRequestStopActionPurge as u32;
    let flagged = purge | WdfRequestStopRequestCancelable as u32;
    let mut flags: Vec<u32> = stops.iter().map(|&(_, f, _)| f).collect();
    flags.sort_unstable();
    assert_eq!(flags, [purge, flagged], "{stops:?}");
    assert!(
        stops.iter().all(|&(_, _, irql)| irql == 2),
        "at DISPATCH_LEVEL: {stops:?}"
    );
    assert_eq!(
        CANCELS.load(Ordering::SeqCst),
        1,
        "the purge canceled the cancelable one"
    );
}

#[test]
fn removal_of_a_queue_that_is_not_power_managed_cancels_without_evt_io_stop() {
    let _turn = exclusive();
    let (machine, file) = loaded(unmanaged_stopping_entry, config(false));
    let cancelable = start(&machine, file, PARK_CANCELABLE);
    machine.try_close(file).expect("CloseHandle");
    machine
        .unload()
        .expect("removal cancels it, then the unload");
    assert_eq!(cancelable.wait().expect("completed").0, STATUS_CANCELLED);
    assert!(
        lock(&STOPS).is_empty(),
        "EvtIoStop is for power-managed queues"
    );
    assert_eq!(CANCELS.load(Ordering::SeqCst), 1);
}

#[test]
fn evt_request_cancel_of_a_passive_level_queue_runs_at_passive_level() {
    let _turn = exclusive();
    let (machine, file) = loaded(passive_entry, config(true));
    let pending = start(&machine, file, PARK_CANCELABLE);
    machine.cancel_io(file, None).expect("CancelIoEx");
    assert_eq!(pending.wait().expect("completes").0, STATUS_CANCELLED);
    assert_eq!(CANCEL_IRQL.load(Ordering::SeqCst), 0);
    machine.close(file);
    machine.unload().expect("clean unload");
}

#[test]
fn a_dispatch_level_queue_callback_that_delays_is_caught_when_the_check_is_on() {
    let _turn = exclusive();
    let (machine, file) = loaded(parallel_entry, config(true));
    let params = expect_violation(machine.device_io_control(file, DELAY, &[], &mut []));
    assert_eq!(
        &params[..2],
        &[0x0002_000F, 2],
        "IrqlKeApcLte1 at DISPATCH_LEVEL"
    );
}

#[test]
fn a_dispatch_level_queue_callback_that_waits_is_caught_when_the_check_is_on() {
    let _turn = exclusive();
    let (machine, file) = loaded(parallel_entry, config(true));
    let params = expect_violation(machine.device_io_control(file, WAIT_EVENT, &[], &mut []));
    assert_eq!(&params[..2], &[verifier::WAIT_AT_DISPATCH_INFINITE, 2]);
}

#[test]
fn a_dispatch_level_queue_callback_that_creates_a_thread_is_caught_when_the_check_is_on() {
    let _turn = exclusive();
    let (machine, file) = loaded(parallel_entry, config(true));
    let params = expect_violation(machine.device_io_control(file, SPAWN, &[], &mut []));
    assert_eq!(&params[..2], &[verifier::RULE_IRQL_PS_PASSIVE, 2]);
}

#[test]
fn the_dispatch_level_callback_check_is_on_by_default_and_can_be_turned_off() {
    let _turn = exclusive();
    assert!(MachineConfig::default().dispatch_level_callback_checks);
    let (machine, file) = loaded(parallel_entry, config(false));
    for code in [DELAY, WAIT_EVENT, SPAWN] {
        assert_eq!(machine.device_io_control(file, code, &[], &mut []), Ok(0));
    }
    machine.close(file);
    machine.unload().expect("clean unload");
}

#[test]
fn a_passive_level_queue_callback_may_wait_with_the_check_on() {
    let _turn = exclusive();
    let (machine, file) = loaded(passive_entry, config(true));
    for code in [DELAY, WAIT_EVENT, SPAWN] {
        assert_eq!(machine.device_io_control(file, code, &[], &mut []), Ok(0));
    }
    machine.close(file);
    machine.unload().expect("clean unload");
}

#[test]
fn evt_device_file_create_decides_the_open() {
    let _turn = exclusive();
    let (machine, file) = loaded(creating_entry, config(false));
    assert_eq!(CREATES.load(Ordering::SeqCst), 1);
    FAIL_CREATE.store(true, Ordering::SeqCst);
    assert_eq!(
        machine.open(Identity::User, Access::READ_WRITE),
        Err(IoError::Status(STATUS_SHARING_VIOLATION))
    );
    assert_eq!(CREATES.load(Ordering::SeqCst), 2);
    assert_eq!(machine.device_io_control(file, PING, &[], &mut []), Ok(0));
    machine.close(file);
    assert_eq!(
        CLOSES.load(Ordering::SeqCst),
        1,
        "EvtFileClose for the open that succeeded only"
    );
    machine.unload().expect("clean unload");
}
