//! Request cancellation and the life of a handle, with KMDF's semantics: cancel of a cancelable
//! and of a non-cancelable request, `WdfRequestMarkCancelable[Ex]` on a canceled request,
//! `WdfRequestUnmarkCancelable` racing with a cancel, cleanup and close of a file with requests
//! in flight, synchronous versus overlapped handles, `CancelIoEx` on one or on all requests, and
//! unload with a request outstanding.
//!
//! The test driver keeps its parked requests in statics, so the tests of this file take turns
//! (each holds [`exclusive`] while it runs).

mod support;

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering},
        Mutex, MutexGuard, PoisonError,
    },
    time::{Duration, Instant},
};

use ntsim::{
    bugcheck::{code, wdf},
    wdk_sys::{
        call_unsafe_wdf_function_binding, DRIVER_OBJECT, GUID, KDPC, NTSTATUS, PCUNICODE_STRING,
        PVOID, PWDFDEVICE_INIT, STATUS_CANCELLED, STATUS_INVALID_HANDLE, STATUS_NOT_FOUND,
        STATUS_SUCCESS, WDFDRIVER, WDFFILEOBJECT, WDFQUEUE, WDFREQUEST,
    },
    Access, FileHandle, HostError, Identity, IoError, Machine, MachineConfig, PendingIo,
};

const INTERFACE: GUID = GUID {
    Data1: 0x7E57_CA9C,
    Data2: 0x1234,
    Data3: 0x5678,
    Data4: [9, 8, 7, 6, 5, 4, 3, 2],
};

/// IOCTL function numbers of the test driver (`METHOD_BUFFERED`, `FILE_ANY_ACCESS`).
const fn ioctl(function: u32) -> u32 {
    (0x8000 << 16) | (function << 2)
}
/// Marks the request cancelable (`WdfRequestMarkCancelableEx`) and keeps it.
const PARK_CANCELABLE: u32 = ioctl(0x801);
/// Keeps the request without marking it cancelable.
const PARK: u32 = ioctl(0x802);
/// Finishes every kept request: unmarks the cancelable ones (completing those it got back),
/// completes the others with `STATUS_CANCELLED` if `WdfRequestIsCanceled`, else success.
const FINISH: u32 = ioctl(0x803);
/// `WdfRequestMarkCancelableEx` on every kept, unmarked request.
const MARK_KEPT_EX: u32 = ioctl(0x804);
/// `WdfRequestMarkCancelable` on every kept, unmarked request.
const MARK_KEPT: u32 = ioctl(0x805);
/// Echoes the input.
const ECHO: u32 = ioctl(0x806);
/// Marks the request cancelable, then completes it without unmarking.
const COMPLETE_CANCELABLE: u32 = ioctl(0x807);
/// Keeps the request; a timer's DPC completes it 1.5 s later.
const PARK_UNTIL_TIMER: u32 = ioctl(0x808);

/// What the test driver saw, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Event {
    /// A request arrived on this file object.
    Issued { request: usize, file: usize },
    /// `EvtFileCleanup`.
    Cleanup(usize),
    /// `EvtFileClose`.
    Close(usize),
    /// `EvtRequestCancel`, at this IRQL.
    Cancel { request: usize, irql: u8 },
    /// The driver completed a request.
    Completed { request: usize, status: NTSTATUS },
}

static SERIAL: Mutex<()> = Mutex::new(());
static EVENTS: Mutex<Vec<Event>> = Mutex::new(Vec::new());
/// Kept requests marked cancelable.
static CANCELABLE: Mutex<Vec<usize>> = Mutex::new(Vec::new());
/// Kept requests not marked cancelable.
static KEPT: Mutex<Vec<usize>> = Mutex::new(Vec::new());
/// What `WdfRequestMarkCancelable[Ex]` / `WdfRequestUnmarkCancelable` returned, in order.
static STATUSES: Mutex<Vec<NTSTATUS>> = Mutex::new(Vec::new());
static CANCEL_CALLS: AtomicU32 = AtomicU32::new(0);
/// `EvtRequestCancel` calls seen right after `WdfRequestMarkCancelable` returned.
static CALLS_AFTER_MARK: AtomicU32 = AtomicU32::new(0);
static ECHOES: AtomicU32 = AtomicU32::new(0);
/// The cancel callback holds (spinning) until [`UNMARKED`] before it completes.
static HOLD_CANCEL: AtomicBool = AtomicBool::new(false);
static CANCEL_ENTERED: AtomicBool = AtomicBool::new(false);
static UNMARKED: AtomicBool = AtomicBool::new(false);
/// The request the timer's DPC completes.
static TIMED: AtomicUsize = AtomicUsize::new(0);
/// The queue that delivered the last request (`WdfRequestGetIoQueue`).
static QUEUE: AtomicUsize = AtomicUsize::new(0);
/// What cleanup found through `WdfFileObjectGetDevice` and `WdfDeviceGetDefaultQueue`.
static QUEUE_OF_FILE: AtomicUsize = AtomicUsize::new(0);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Takes this file's turn and resets the driver's state.
fn exclusive() -> MutexGuard<'static, ()> {
    let turn = lock(&SERIAL);
    lock(&EVENTS).clear();
    lock(&CANCELABLE).clear();
    lock(&KEPT).clear();
    lock(&STATUSES).clear();
    for counter in [&CANCEL_CALLS, &CALLS_AFTER_MARK, &ECHOES] {
        counter.store(0, Ordering::SeqCst);
    }
    for flag in [&HOLD_CANCEL, &CANCEL_ENTERED, &UNMARKED] {
        flag.store(false, Ordering::SeqCst);
    }
    TIMED.store(0, Ordering::SeqCst);
    QUEUE.store(0, Ordering::SeqCst);
    QUEUE_OF_FILE.store(0, Ordering::SeqCst);
    turn
}

fn record(event: Event) {
    lock(&EVENTS).push(event);
}

fn events() -> Vec<Event> {
    lock(&EVENTS).clone()
}

// ---------------------------------------------------------------------------------------------
// The test driver
// ---------------------------------------------------------------------------------------------

unsafe extern "system" fn driver_entry(
    driver: *mut DRIVER_OBJECT,
    path: PCUNICODE_STRING,
) -> NTSTATUS {
    // SAFETY: forwarded from the loader.
    unsafe { support::kmdf::create_driver(driver, path, Some(device_add)) }
}

extern "C" fn device_add(_driver: WDFDRIVER, init: PWDFDEVICE_INIT) -> NTSTATUS {
    support::kmdf::set_file_callbacks(
        init,
        support::kmdf::FileCallbacks {
            cleanup: Some(file_cleanup),
            close: Some(file_close),
            ..Default::default()
        },
    );
    support::kmdf::create_device(init, Some(&INTERFACE), Some(device_control))
}

/// Records the cleanup, then does what a driver must at cleanup: completes the requests of this
/// file that it parked cancelable (unmarked first; one whose cancel routine won the race is
/// completed there). The plain parked ones wait for `FINISH`.
extern "C" fn file_cleanup(file: WDFFILEOBJECT) {
    record(Event::Cleanup(file as usize));
    // SAFETY: the live file object of this cleanup.
    let device = unsafe { call_unsafe_wdf_function_binding!(WdfFileObjectGetDevice, file) };
    // SAFETY: the live device the file object was opened on.
    let queue = unsafe { call_unsafe_wdf_function_binding!(WdfDeviceGetDefaultQueue, device) };
    QUEUE_OF_FILE.store(queue as usize, Ordering::SeqCst);
    let mine: Vec<usize> = {
        let mut cancelable = lock(&CANCELABLE);
        let (mine, others) = cancelable
            .drain(..)
            .partition(|&r| file_object(r) == file as usize);
        *cancelable = others;
        mine
    };
    for request in mine {
        if unmark_cancelable(request) == STATUS_SUCCESS {
            complete(request, STATUS_CANCELLED, 0);
        }
    }
}

extern "C" fn file_close(file: WDFFILEOBJECT) {
    record(Event::Close(file as usize));
}

fn complete(request: usize, status: NTSTATUS, information: u64) {
    record(Event::Completed { request, status });
    // SAFETY: a live request the driver owns and completes once.
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfRequestCompleteWithInformation,
            request as WDFREQUEST,
            status,
            information
        );
    }
}

fn mark_cancelable_ex(request: usize) -> NTSTATUS {
    // SAFETY: a live request delivered by the queue; a cancel routine of the right type.
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfRequestMarkCancelableEx,
            request as WDFREQUEST,
            Some(request_cancel)
        )
    }
}

fn unmark_cancelable(request: usize) -> NTSTATUS {
    // SAFETY: a live request the driver marked cancelable.
    unsafe { call_unsafe_wdf_function_binding!(WdfRequestUnmarkCancelable, request as WDFREQUEST) }
}

fn is_canceled(request: usize) -> bool {
    // SAFETY: a live request the driver owns and has not marked cancelable.
    unsafe { call_unsafe_wdf_function_binding!(WdfRequestIsCanceled, request as WDFREQUEST) != 0 }
}

fn file_object(request: usize) -> usize {
    // SAFETY: a live request.
    let file: WDFFILEOBJECT = unsafe {
        call_unsafe_wdf_function_binding!(WdfRequestGetFileObject, request as WDFREQUEST)
    };
    file as usize
}

extern "C" fn request_cancel(request: WDFREQUEST) {
    let request = request as usize;
    record(Event::Cancel {
        request,
        irql: support::irql(),
    });
    CANCEL_CALLS.fetch_add(1, Ordering::SeqCst);
    if HOLD_CANCEL.load(Ordering::SeqCst) {
        CANCEL_ENTERED.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !UNMARKED.load(Ordering::SeqCst) && Instant::now() < deadline {
            // Spinning at DISPATCH_LEVEL, as a cancel routine may (it must not wait).
            support::stall(1_000);
        }
    }
    lock(&CANCELABLE).retain(|&r| r != request);
    complete(request, STATUS_CANCELLED, 0);
}

unsafe extern "C" fn complete_timed(_dpc: *mut KDPC, _context: PVOID, _a: PVOID, _b: PVOID) {
    let request = TIMED.swap(0, Ordering::SeqCst);
    if request != 0 {
        complete(request, STATUS_SUCCESS, 0);
    }
}

fn echo(request: usize, in_len: usize, out_len: usize) {
    ECHOES.fetch_add(1, Ordering::SeqCst);
    let mut data: PVOID = std::ptr::null_mut();
    let mut length = 0_usize;
    if in_len > 0 {
        // SAFETY: a live request and writable out parameters.
        let status = unsafe {
            call_unsafe_wdf_function_binding!(
                WdfRequestRetrieveInputBuffer,
                request as WDFREQUEST,
                1,
                &raw mut data,
                &raw mut length
            )
        };
        assert_eq!(status, STATUS_SUCCESS);
    }
    complete(request, STATUS_SUCCESS, in_len.min(out_len) as u64);
}

extern "C" fn device_control(
    queue: WDFQUEUE,
    request: WDFREQUEST,
    out_len: usize,
    in_len: usize,
    code: u32,
) {
    QUEUE.store(queue as usize, Ordering::SeqCst);
    let request = request as usize;
    record(Event::Issued {
        request,
        file: file_object(request),
    });
    match code {
        PARK_CANCELABLE => {
            let status = mark_cancelable_ex(request);
            lock(&STATUSES).push(status);
            if status == STATUS_SUCCESS {
                lock(&CANCELABLE).push(request);
            } else {
                complete(request, status, 0);
            }
        }
        PARK => lock(&KEPT).push(request),
        FINISH => {
            let cancelable: Vec<usize> = lock(&CANCELABLE).drain(..).collect();
            for kept in cancelable {
                let status = unmark_cancelable(kept);
                lock(&STATUSES).push(status);
                if status == STATUS_SUCCESS {
                    complete(kept, STATUS_SUCCESS, 0);
                }
                // STATUS_CANCELLED: EvtRequestCancel has been or will be called, and completes.
            }
            UNMARKED.store(true, Ordering::SeqCst);
            let kept: Vec<usize> = lock(&KEPT).drain(..).collect();
            for kept in kept {
                let status = if is_canceled(kept) {
                    STATUS_CANCELLED
                } else {
                    STATUS_SUCCESS
                };
                complete(kept, status, 0);
            }
            complete(request, STATUS_SUCCESS, 0);
        }
        MARK_KEPT_EX => {
            let kept: Vec<usize> = lock(&KEPT).drain(..).collect();
            for kept in kept {
                let status = mark_cancelable_ex(kept);
                lock(&STATUSES).push(status);
                if status == STATUS_SUCCESS {
                    lock(&CANCELABLE).push(kept);
                } else {
                    // Ex: the driver completes a request that was canceled before it was marked.
                    complete(kept, status, 0);
                }
            }
            complete(request, STATUS_SUCCESS, 0);
        }
        MARK_KEPT => {
            let kept: Vec<usize> = lock(&KEPT).drain(..).collect();
            for kept in kept {
                let before = CANCEL_CALLS.load(Ordering::SeqCst);
                // SAFETY: a live request delivered by the queue; a cancel routine of the right
                // type.
                unsafe {
                    call_unsafe_wdf_function_binding!(
                        WdfRequestMarkCancelable,
                        kept as WDFREQUEST,
                        Some(request_cancel)
                    );
                }
                let called = CANCEL_CALLS.load(Ordering::SeqCst) - before;
                CALLS_AFTER_MARK.fetch_add(called, Ordering::SeqCst);
                if called == 0 {
                    lock(&CANCELABLE).push(kept);
                }
            }
            complete(request, STATUS_SUCCESS, 0);
        }
        ECHO => echo(request, in_len, out_len),
        COMPLETE_CANCELABLE => {
            assert_eq!(mark_cancelable_ex(request), STATUS_SUCCESS);
            complete(request, STATUS_SUCCESS, 0);
        }
        PARK_UNTIL_TIMER => {
            TIMED.store(request, Ordering::SeqCst);
            let dpc = support::Dpc::new(complete_timed, 0);
            let timer = support::dispatcher::Timer::new();
            timer.set(-15_000_000, Some(dpc));
        }
        _ => complete(request, ntsim::wdk_sys::STATUS_INVALID_DEVICE_REQUEST, 0),
    }
}

// ---------------------------------------------------------------------------------------------
// Host side
// ---------------------------------------------------------------------------------------------

fn loaded() -> Machine {
    loaded_with(support::machine(2))
}

fn loaded_with(machine: Machine) -> Machine {
    machine
        .load_driver("canceltest", driver_entry)
        .expect("loads");
    machine
}

fn overlapped(machine: &Machine) -> FileHandle {
    machine
        .open_with(Identity::User, Access::READ_WRITE, true)
        .expect("opens overlapped")
}

fn synchronous(machine: &Machine) -> FileHandle {
    machine
        .open(Identity::User, Access::READ_WRITE)
        .expect("opens")
}

fn start(machine: &Machine, file: FileHandle, code: u32) -> PendingIo {
    machine
        .device_io_control_async(file, code, &[], 0)
        .expect("issued")
}

/// `FINISH` on a handle of its own.
fn finish(machine: &Machine) {
    let other = synchronous(machine);
    machine
        .device_io_control(other, FINISH, &[], &mut [])
        .expect("finish");
    machine.close(other);
}

/// Waits on the host (sleeping) until `done` holds; panics after 30 s.
fn host_wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting until {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn kept_count() -> usize {
    lock(&KEPT).len() + lock(&CANCELABLE).len()
}

fn cancels() -> Vec<(usize, u8)> {
    events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Cancel { request, irql } => Some((request, irql)),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn cancel_of_a_cancelable_request_calls_the_callback_once_at_dispatch_level() {
    let _turn = exclusive();
    let machine = loaded();
    let file = overlapped(&machine);
    let pending = start(&machine, file, PARK_CANCELABLE);
    assert!(!pending.is_complete(), "the driver keeps it");
    assert_eq!(lock(&STATUSES).as_slice(), &[STATUS_SUCCESS]);
    machine.cancel_io(file, Some(&pending)).expect("CancelIoEx");
    assert_eq!(CANCEL_CALLS.load(Ordering::SeqCst), 1);
    let calls = cancels();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].1, 2, "EvtRequestCancel runs at DISPATCH_LEVEL");
    let (status, output) = pending.wait().expect("completes");
    assert_eq!(
        status, STATUS_CANCELLED,
        "as the cancel routine completed it"
    );
    assert!(
        output.is_empty(),
        "nothing is copied back for an error status"
    );
    assert_eq!(
        machine.cancel_io(file, None),
        Err(IoError::Status(STATUS_NOT_FOUND)),
        "nothing is left to cancel; the callback is not called again"
    );
    assert_eq!(CANCEL_CALLS.load(Ordering::SeqCst), 1);
    machine.close(file);
    machine.unload().expect("clean unload");
}

#[test]
fn cancel_of_a_request_not_marked_cancelable_only_flags_it() {
    let _turn = exclusive();
    let machine = loaded();
    let file = overlapped(&machine);
    let canceled = start(&machine, file, PARK);
    machine
        .cancel_io(file, Some(&canceled))
        .expect("CancelIoEx");
    assert_eq!(CANCEL_CALLS.load(Ordering::SeqCst), 0);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !canceled.is_complete(),
        "a flag only: the driver still owns it"
    );
    let untouched = start(&machine, file, PARK);
    finish(&machine);
    assert_eq!(
        canceled.wait().expect("completes").0,
        STATUS_CANCELLED,
        "WdfRequestIsCanceled saw the flag"
    );
    assert_eq!(
        untouched.wait().expect("completes").0,
        STATUS_SUCCESS,
        "WdfRequestIsCanceled is FALSE for a request nobody canceled"
    );
    machine.close(file);
    machine.unload().expect("clean unload");
}

#[test]
fn mark_cancelable_ex_on_a_canceled_request_returns_status_cancelled() {
    let _turn = exclusive();
    let machine = loaded();
    let file = overlapped(&machine);
    let pending = start(&machine, file, PARK);
    machine.cancel_io(file, None).expect("CancelIoEx");
    let other = synchronous(&machine);
    machine
        .device_io_control(other, MARK_KEPT_EX, &[], &mut [])
        .expect("mark");
    assert_eq!(lock(&STATUSES).as_slice(), &[STATUS_CANCELLED]);
    assert_eq!(
        CANCEL_CALLS.load(Ordering::SeqCst),
        0,
        "the Ex form does not call the routine"
    );
    assert_eq!(pending.wait().expect("completes").0, STATUS_CANCELLED);
    machine.close(other);
    machine.close(file);
    machine.unload().expect("clean unload");
}

#[test]
fn mark_cancelable_on_a_canceled_request_calls_the_callback_before_returning() {
    let _turn = exclusive();
    let machine = loaded();
    let file = overlapped(&machine);
    let pending = start(&machine, file, PARK);
    machine.cancel_io(file, None).expect("CancelIoEx");
    let other = synchronous(&machine);
    machine
        .device_io_control(other, MARK_KEPT, &[], &mut [])
        .expect("mark");
    assert_eq!(CALLS_AFTER_MARK.load(Ordering::SeqCst), 1);
    assert_eq!(cancels().len(), 1);
    assert_eq!(cancels()[0].1, 2, "at DISPATCH_LEVEL");
    assert_eq!(pending.wait().expect("completes").0, STATUS_CANCELLED);
    machine.close(other);
    machine.close(file);
    machine.unload().expect("clean unload");
}

#[test]
fn unmark_racing_with_cancel_returns_cancelled_and_leaves_completion_to_the_callback() {
    let _turn = exclusive();
    let machine = loaded();
    let file = overlapped(&machine);
    let pending = start(&machine, file, PARK_CANCELABLE);
    HOLD_CANCEL.store(true, Ordering::SeqCst);
    std::thread::scope(|scope| {
        let canceler = scope.spawn(|| machine.cancel_io(file, Some(&pending)));
        host_wait_until("the cancel routine has started", || {
            CANCEL_ENTERED.load(Ordering::SeqCst)
        });
        // The cancel routine is running (held): the driver's unmark loses the race.
        finish(&machine);
        canceler.join().expect("host thread").expect("CancelIoEx");
    });
    assert_eq!(
        lock(&STATUSES).as_slice(),
        &[STATUS_SUCCESS, STATUS_CANCELLED],
        "marked, then the unmark found the cancel under way"
    );
    assert_eq!(CANCEL_CALLS.load(Ordering::SeqCst), 1);
    assert_eq!(pending.wait().expect("completes").0, STATUS_CANCELLED);
    let completions = events()
        .iter()
        .filter(|e| matches!(e, Event::Completed { status, .. } if *status == STATUS_CANCELLED))
        .count();
    assert_eq!(completions, 1, "only the cancel routine completed it");
    machine.close(file);
    machine.unload().expect("clean unload");
}

#[test]
fn unmark_before_cancel_returns_success_and_the_callback_never_runs() {
    let _turn = exclusive();
    let machine = loaded();
    let file = overlapped(&machine);
    let pending = start(&machine, file, PARK_CANCELABLE);
    finish(&machine);
    assert_eq!(
        lock(&STATUSES).as_slice(),
        &[STATUS_SUCCESS, STATUS_SUCCESS]
    );
    assert_eq!(pending.wait().expect("completes").0, STATUS_SUCCESS);
    assert_eq!(
        machine.cancel_io(file, None),
        Err(IoError::Status(STATUS_NOT_FOUND))
    );
    assert_eq!(CANCEL_CALLS.load(Ordering::SeqCst), 0);
    machine.close(file);
    machine.unload().expect("clean unload");
}

#[test]
fn completing_a_request_still_marked_cancelable_is_0x10d_0x6() {
    let _turn = exclusive();
    let machine = loaded();
    let file = synchronous(&machine);
    match machine.device_io_control(file, COMPLETE_CANCELABLE, &[], &mut []) {
        Err(IoError::Host(HostError::BugCheck(b))) => {
            assert_eq!(b.code, code::WDF_VIOLATION);
            assert_eq!(
                &b.params[..2],
                &[wdf::REQUEST_FATAL_ERROR, wdf::COMPLETED_WHILE_CANCELABLE]
            );
            assert_eq!(
                b.params[3], request_cancel as *const () as u64,
                "P4 the routine"
            );
        }
        other => panic!("expected 0x10D/0x6, got {other:?}"),
    }
}

#[test]
fn close_cancels_nothing_the_driver_owns_and_evt_file_close_follows_the_last_completion() {
    let _turn = exclusive();
    let machine = loaded();
    let file = overlapped(&machine);
    let cancelable = start(&machine, file, PARK_CANCELABLE);
    let plain = start(&machine, file, PARK);
    let object = match events()[0] {
        Event::Issued { file, .. } => file,
        other => panic!("expected the first request, got {other:?}"),
    };
    assert_ne!(object, 0, "WdfRequestGetFileObject gives the WDFFILEOBJECT");
    machine.try_close(file).expect("CloseHandle");
    let seen = events();
    assert!(seen.contains(&Event::Cleanup(object)), "{seen:?}");
    assert_ne!(QUEUE.load(Ordering::SeqCst), 0);
    assert_eq!(
        QUEUE_OF_FILE.load(Ordering::SeqCst),
        QUEUE.load(Ordering::SeqCst),
        "WdfFileObjectGetDevice leads cleanup to the device and its default queue"
    );
    assert!(
        !seen.iter().any(|e| matches!(e, Event::Cancel { .. })),
        "CloseHandle cancels no request the driver owns (KMDF flushes only its queues): {seen:?}"
    );
    assert_eq!(
        cancelable.wait().expect("completes").0,
        STATUS_CANCELLED,
        "EvtFileCleanup completed it"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !events().contains(&Event::Close(object)),
        "EvtFileClose waits for the request still outstanding"
    );
    assert!(!plain.is_complete());
    finish(&machine);
    assert_eq!(
        plain.wait().expect("completes").0,
        STATUS_SUCCESS,
        "its cancel flag stayed clear: nothing canceled it"
    );
    host_wait_until("EvtFileClose ran", || {
        events().contains(&Event::Close(object))
    });
    let seen = events();
    let on_file: Vec<usize> = seen
        .iter()
        .filter_map(|e| match e {
            Event::Issued { request, file } if *file == object => Some(*request),
            _ => None,
        })
        .collect();
    assert_eq!(on_file.len(), 2);
    let last_completion = seen
        .iter()
        .rposition(|e| matches!(e, Event::Completed { request, .. } if on_file.contains(request)))
        .expect("completions");
    let close = seen
        .iter()
        .position(|e| *e == Event::Close(object))
        .expect("closed");
    assert!(last_completion < close, "{seen:?}");
    machine.unload().expect("clean unload");
}

#[test]
fn an_ioctl_on_a_closed_handle_is_status_invalid_handle() {
    let _turn = exclusive();
    let machine = loaded();
    let file = synchronous(&machine);
    machine.close(file);
    assert_eq!(
        machine.device_io_control(file, ECHO, b"x", &mut [0; 1]),
        Err(IoError::Status(STATUS_INVALID_HANDLE))
    );
    assert_eq!(
        machine
            .device_io_control_async(file, ECHO, b"x", 1)
            .map(drop),
        Err(IoError::Status(STATUS_INVALID_HANDLE))
    );
    assert_eq!(
        machine.cancel_io(file, None),
        Err(IoError::Status(STATUS_INVALID_HANDLE))
    );
    assert_eq!(
        machine.try_close(file),
        Err(IoError::Status(STATUS_INVALID_HANDLE))
    );
    machine.unload().expect("clean unload");
}

#[test]
fn a_synchronous_handle_serializes_its_requests() {
    let _turn = exclusive();
    let machine = loaded();
    let file = synchronous(&machine);
    std::thread::scope(|scope| {
        let first = scope.spawn(|| machine.device_io_control(file, PARK, &[], &mut []));
        host_wait_until("the first request is in the driver", || kept_count() == 1);
        let second = scope.spawn(|| machine.device_io_control(file, ECHO, b"hi", &mut [0; 2]));
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            ECHOES.load(Ordering::SeqCst),
            0,
            "the second request waits for the first to complete"
        );
        assert!(!second.is_finished());
        finish(&machine);
        assert_eq!(first.join().expect("host thread"), Ok(0));
        assert_eq!(second.join().expect("host thread"), Ok(2));
    });
    assert_eq!(ECHOES.load(Ordering::SeqCst), 1);
    machine.close(file);
    machine.unload().expect("clean unload");
}

#[test]
fn an_overlapped_handle_has_several_requests_in_flight() {
    let _turn = exclusive();
    let machine = loaded();
    let file = overlapped(&machine);
    let first = start(&machine, file, PARK);
    let second = start(&machine, file, PARK);
    assert_eq!(kept_count(), 2, "both are in the driver at once");
    let echo = machine
        .device_io_control_async(file, ECHO, b"abc", 8)
        .expect("issued");
    assert_eq!(
        echo.wait().expect("completes"),
        (STATUS_SUCCESS, b"abc".to_vec()),
        "METHOD_BUFFERED copies Information bytes back"
    );
    assert!(!first.is_complete() && !second.is_complete());
    finish(&machine);
    assert_eq!(first.wait().expect("completes").0, STATUS_SUCCESS);
    assert_eq!(second.wait().expect("completes").0, STATUS_SUCCESS);
    machine.close(file);
    machine.unload().expect("clean unload");
}

#[test]
fn cancel_io_on_one_request_cancels_only_that_one() {
    let _turn = exclusive();
    let machine = loaded();
    let file = overlapped(&machine);
    let requests: Vec<PendingIo> = (0..3)
        .map(|_| start(&machine, file, PARK_CANCELABLE))
        .collect();
    machine
        .cancel_io(file, Some(&requests[1]))
        .expect("CancelIoEx(one)");
    assert_eq!(CANCEL_CALLS.load(Ordering::SeqCst), 1);
    let mut requests = requests.into_iter();
    let (first, second, third) = (
        requests.next().expect("first"),
        requests.next().expect("second"),
        requests.next().expect("third"),
    );
    assert_eq!(second.wait().expect("completes").0, STATUS_CANCELLED);
    std::thread::sleep(Duration::from_millis(200));
    assert!(!first.is_complete() && !third.is_complete());
    finish(&machine);
    assert_eq!(first.wait().expect("completes").0, STATUS_SUCCESS);
    assert_eq!(third.wait().expect("completes").0, STATUS_SUCCESS);
    machine.close(file);
    machine.unload().expect("clean unload");
}

#[test]
fn cancel_io_on_a_handle_cancels_all_its_requests_and_no_other_handles() {
    let _turn = exclusive();
    let machine = loaded();
    let file = overlapped(&machine);
    let neighbour = overlapped(&machine);
    let mine: Vec<PendingIo> = (0..3)
        .map(|_| start(&machine, file, PARK_CANCELABLE))
        .collect();
    let theirs = start(&machine, neighbour, PARK_CANCELABLE);
    machine.cancel_io(file, None).expect("CancelIoEx(all)");
    assert_eq!(CANCEL_CALLS.load(Ordering::SeqCst), 3);
    for pending in mine {
        assert_eq!(pending.wait().expect("completes").0, STATUS_CANCELLED);
    }
    assert!(
        !theirs.is_complete(),
        "another handle's request is untouched"
    );
    finish(&machine);
    assert_eq!(theirs.wait().expect("completes").0, STATUS_SUCCESS);
    machine.close(file);
    machine.close(neighbour);
    machine.unload().expect("clean unload");
}

#[test]
fn unload_is_refused_while_a_handle_is_open() {
    let _turn = exclusive();
    let machine = loaded();
    let file = synchronous(&machine);
    assert!(matches!(machine.unload(), Err(IoError::Usage(_))));
    machine.close(file);
    machine.unload().expect("clean unload");
}

#[test]
fn unload_waits_for_an_outstanding_request() {
    let _turn = exclusive();
    let machine = loaded();
    let file = overlapped(&machine);
    let began = Instant::now();
    let pending = start(&machine, file, PARK_UNTIL_TIMER);
    machine.close(file);
    assert!(
        !pending.is_complete(),
        "not cancelable: cleanup only flags it"
    );
    machine.unload().expect("unload after the completion");
    assert!(
        began.elapsed() >= Duration::from_secs(1),
        "unload went ahead after {:?}, before the timer completed the request",
        began.elapsed()
    );
    assert!(pending.is_complete());
    assert!(
        events().iter().any(|e| matches!(e, Event::Close(_))),
        "EvtFileClose ran before unload"
    );
    assert_eq!(pending.wait().expect("completed").0, STATUS_SUCCESS);
}

#[test]
fn unload_reports_hung_naming_a_request_that_never_completes() {
    let _turn = exclusive();
    let machine = loaded_with(Machine::new(MachineConfig {
        processors: 2,
        hang_budget: Duration::from_millis(1_500),
        ..MachineConfig::default()
    }));
    let file = overlapped(&machine);
    let pending = start(&machine, file, PARK);
    machine.close(file);
    match machine.unload() {
        Err(IoError::Host(HostError::Hung { waiting_for, .. })) => {
            assert!(
                waiting_for.contains(&format!("request #{}", pending.id())),
                "{waiting_for}"
            );
            assert!(
                waiting_for.contains(&format!("{PARK:#010X}")),
                "{waiting_for}"
            );
        }
        other => panic!("expected HostError::Hung, got {other:?}"),
    }
}
