//! System threads (`PsTerminateSystemThread`, exit checks), handle accounting at unload, and
//! work items with their end checks (ddi.md 10.3, 13.5, errata 9).

mod support;

use std::{
    ptr,
    sync::atomic::{AtomicU64, Ordering},
};

use ntsim::{
    bugcheck::{code, verifier},
    wdk_sys::{
        call_unsafe_wdf_function_binding, ntddk, DEVICE_OBJECT, DRIVER_OBJECT, HANDLE, NTSTATUS,
        PCUNICODE_STRING, PIO_WORKITEM, PVOID, PWDFDEVICE_INIT, STATUS_INVALID_PARAMETER,
        WDFDRIVER, WDFQUEUE, WDFREQUEST,
    },
    Access, HostError, Identity, IoError, Machine,
};
use support::{
    expect_bugcheck, irql, machine, raise,
    runtime::{
        allocate_work_item, free_work_item, leak_critical_region, queue_work_item, wait_for,
    },
};

// ---------------------------------------------------------------------------------------------
// PsTerminateSystemThread and the exit checks.

unsafe extern "C" fn terminate_early(context: PVOID) {
    // SAFETY: a leaked [AtomicU64; 2]: [before, after].
    let slots = unsafe { &*(context as *const [AtomicU64; 2]) };
    slots[0].store(1, Ordering::Release);
    // SAFETY: a system thread at PASSIVE_LEVEL.
    let _ = unsafe { ntddk::PsTerminateSystemThread(0) };
    slots[1].store(1, Ordering::Release);
}

#[test]
fn terminate_ends_the_thread_and_signals_its_object() {
    let m = machine(2);
    m.run(|| {
        let slots: &'static [AtomicU64; 2] = Box::leak(Box::default());
        let handle = support::spawn(terminate_early, ptr::from_ref(slots) as usize);
        // join waits on the thread object: it returns only once the object is signaled.
        support::join(handle);
        assert_eq!(slots[0].load(Ordering::Acquire), 1);
        assert_eq!(
            slots[1].load(Ordering::Acquire),
            0,
            "PsTerminateSystemThread does not return"
        );
    })
    .expect("no bug check");
}

#[test]
fn terminate_runs_the_exit_checks_unbalanced_apc_disable_is_0x20() {
    let m = machine(2);
    let b = expect_bugcheck(&m, || {
        leak_critical_region();
        // SAFETY: a system thread at PASSIVE_LEVEL.
        unsafe { ntddk::PsTerminateSystemThread(0) }
    });
    assert_eq!(b.code, code::KERNEL_APC_PENDING_DURING_EXIT);
    assert_eq!(b.params, [0, 0xFFFF, 0, 1]);
    assert_eq!(b.detected_in, "system thread exit");
}

#[test]
fn returning_with_unbalanced_apc_disable_is_0x20() {
    let m = machine(2);
    let b = expect_bugcheck(&m, leak_critical_region);
    assert_eq!(b.code, code::KERNEL_APC_PENDING_DURING_EXIT);
    assert_eq!(b.params, [0, 0xFFFF, 0, 1]);
}

#[test]
fn terminate_at_raised_irql_breaks_the_ps_passive_rule() {
    let m = machine(2);
    let b = expect_bugcheck(&m, || {
        raise(1);
        // SAFETY: deliberately at APC_LEVEL.
        unsafe { ntddk::PsTerminateSystemThread(0) }
    });
    assert_eq!(b.code, code::DRIVER_VERIFIER_DETECTED_VIOLATION);
    assert_eq!(b.params, [verifier::RULE_IRQL_PS_PASSIVE, 1, 0, 0]);
}

#[test]
fn returning_while_holding_a_spin_lock_at_dpc_level_is_0xc4_0x100a() {
    // Errata 9: the exit path lowers IRQL first; the held lock is what is reported.
    let m = machine(2);
    let lock = support::SpinLock::new();
    let b = expect_bugcheck(&m, move || {
        raise(2);
        lock.acquire_at_dpc();
    });
    assert_eq!(b.params[0], verifier::THREAD_TERMINATED_OWNING_LOCK);
    assert_eq!(b.params[1], lock.addr());
    assert_ne!(b.params[2], 0, "P3: the thread");
}

// ---------------------------------------------------------------------------------------------
// Work items.

unsafe extern "C" fn note_work(device: *mut DEVICE_OBJECT, context: PVOID) {
    // SAFETY: a leaked [AtomicU64; 3]: [ran, irql + 1, device].
    let slots = unsafe { &*(context as *const [AtomicU64; 3]) };
    slots[1].store(u64::from(irql()) + 1, Ordering::Release);
    slots[2].store(device as u64, Ordering::Release);
    slots[0].store(1, Ordering::Release);
}

#[test]
fn a_work_item_runs_at_passive_level_on_a_worker_thread() {
    let m = machine(2);
    m.run(|| {
        let slots: &'static [AtomicU64; 3] = Box::leak(Box::default());
        let item = allocate_work_item();
        // Queued from DISPATCH_LEVEL, as drivers do from DPCs.
        let old = raise(2);
        queue_work_item(item, note_work, ptr::from_ref(slots) as usize);
        support::lower(old);
        wait_for(&slots[0]);
        assert_eq!(slots[1].load(Ordering::Acquire), 1, "PASSIVE_LEVEL");
        assert_ne!(
            slots[2].load(Ordering::Acquire),
            0,
            "the device object is passed back"
        );
        // The worker has finished once it is no longer pending; then the item can be freed.
        while m_pending() > 0 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        free_work_item(item);
    })
    .expect("no bug check");
    assert!(m.pool_stats().values().all(|s| s.outstanding_bytes == 0));
}

fn m_pending() -> usize {
    ntsim::context::try_current()
        .expect("an emulated context")
        .machine
        .work_items
        .pending()
}

unsafe extern "C" fn note_work_ex(object: PVOID, context: PVOID, item: PIO_WORKITEM) {
    // SAFETY: a leaked [AtomicU64; 3]: [ran, object, item].
    let slots = unsafe { &*(context as *const [AtomicU64; 3]) };
    slots[1].store(object as u64, Ordering::Release);
    slots[2].store(item as u64, Ordering::Release);
    slots[0].store(1, Ordering::Release);
}

#[test]
fn an_initialised_work_item_passes_its_object_and_itself_to_the_ex_routine() {
    let m = machine(2);
    m.run(|| {
        // SAFETY: no pointers.
        let size = unsafe { ntddk::IoSizeofWorkItem() } as usize;
        let storage = Box::leak(vec![0_u64; size.div_ceil(8)].into_boxed_slice());
        let item: PIO_WORKITEM = storage.as_mut_ptr().cast();
        let object = Box::into_raw(Box::new(0_u64));
        // SAFETY: storage of IoSizeofWorkItem() bytes and a non-null I/O object.
        unsafe { ntddk::IoInitializeWorkItem(object.cast(), item) };
        let slots: &'static [AtomicU64; 3] = Box::leak(Box::default());
        // SAFETY: an initialised item, a routine and a leaked context.
        unsafe {
            ntddk::IoQueueWorkItemEx(item, Some(note_work_ex), 1, ptr::from_ref(slots) as PVOID);
        };
        wait_for(&slots[0]);
        assert_eq!(slots[1].load(Ordering::Acquire), object as u64);
        assert_eq!(slots[2].load(Ordering::Acquire), item as u64);
        while m_pending() > 0 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        // SAFETY: an initialised item that has run.
        unsafe { ntddk::IoUninitializeWorkItem(item) };
    })
    .expect("no bug check");
}

unsafe extern "C" fn work_returns_raised(_: *mut DEVICE_OBJECT, _: PVOID) {
    raise(2);
}

unsafe extern "C" fn work_leaks_critical_region(_: *mut DEVICE_OBJECT, _: PVOID) {
    leak_critical_region();
}

unsafe extern "C" fn work_keeps_a_mutex(_: *mut DEVICE_OBJECT, context: PVOID) {
    assert_eq!(
        support::dispatcher::KMutex::from_context(context as usize).acquire(),
        0
    );
}

unsafe extern "C" fn work_terminates(_: *mut DEVICE_OBJECT, _: PVOID) {
    // SAFETY: deliberately from a worker thread.
    let _ = unsafe { ntddk::PsTerminateSystemThread(0) };
}

fn run_work(routine: support::runtime::WorkRoutine, context: usize) -> (ntsim::BugCheck, u64) {
    run_work_on(routine, context, || {})
}

/// As [`run_work`], running `setup` in the machine before the item is queued.
fn run_work_on(
    routine: support::runtime::WorkRoutine,
    context: usize,
    setup: impl FnOnce() + Send + 'static,
) -> (ntsim::BugCheck, u64) {
    let m = machine(2);
    let slot: &'static AtomicU64 = Box::leak(Box::default());
    let b = expect_bugcheck(&m, move || {
        setup();
        let item = allocate_work_item();
        slot.store(item as u64, Ordering::Release);
        queue_work_item(item, routine, context);
        // Halts at the next DDI once the worker has stopped the machine.
        loop {
            std::thread::sleep(std::time::Duration::from_millis(1));
            irql();
        }
    });
    assert_eq!(b.context.split(" on ").next(), Some("system worker thread"));
    (b, slot.load(Ordering::Acquire))
}

#[test]
fn a_work_item_returning_at_dispatch_level_is_0xe1() {
    let (b, item) = run_work(work_returns_raised, 0x55);
    assert_eq!(b.code, code::WORKER_THREAD_RETURNED_AT_BAD_IRQL);
    assert_eq!(
        b.params,
        [work_returns_raised as *const () as u64, 2, 0x55, item]
    );
}

#[test]
fn a_work_item_returning_with_unbalanced_apc_disable_is_0x1_p4_1() {
    let (b, _) = run_work(work_leaks_critical_region, 0);
    assert_eq!(b.code, code::APC_INDEX_MISMATCH);
    assert_eq!(
        b.params,
        [work_leaks_critical_region as *const () as u64, 0, 0xFFFF, 1]
    );
}

#[test]
fn a_work_item_returning_while_owning_a_kmutex_is_0x39() {
    let addr = support::dispatcher::KMutex::alloc().addr_for_tests();
    let (b, item) = run_work_on(work_keeps_a_mutex, addr, move || {
        support::dispatcher::KMutex::from_context(addr).init();
    });
    assert_eq!(b.code, code::SYSTEM_EXIT_OWNED_MUTEX);
    assert_eq!(
        b.params,
        [work_keeps_a_mutex as *const () as u64, addr as u64, item, 0]
    );
}

#[test]
fn terminating_a_worker_thread_is_0xe9() {
    let (b, _) = run_work(work_terminates, 0);
    assert_eq!(b.code, code::ACTIVE_EX_WORKER_THREAD_TERMINATION);
    assert_eq!(b.params[1..], [0, 0, 0]);
}

// ---------------------------------------------------------------------------------------------
// A minimal KMDF driver: a non-system-thread caller, leaked handles, a work item at unload.

const fn ioctl(function: u32) -> u32 {
    (0x8000 << 16) | (function << 2)
}
const TERMINATE: u32 = ioctl(0x901);
const LEAK_HANDLE: u32 = ioctl(0x902);
const LEAK_REFERENCE: u32 = ioctl(0x903);
const PENDING_WORK: u32 = ioctl(0x904);

unsafe extern "system" fn driver_entry(
    driver: *mut DRIVER_OBJECT,
    path: PCUNICODE_STRING,
) -> NTSTATUS {
    // SAFETY: forwarded from the loader.
    unsafe { support::kmdf::create_driver(driver, path, Some(device_add)) }
}

extern "C" fn device_add(_driver: WDFDRIVER, init: PWDFDEVICE_INIT) -> NTSTATUS {
    // Passive: its callbacks create threads and wait, which a queue KMDF may call at
    // DISPATCH_LEVEL must not.
    let options = support::kmdf::QueueOptions {
        passive: true,
        ..support::kmdf::QueueOptions::default()
    };
    support::kmdf::create_device_with(init, None, Some(device_control), options)
}

fn complete(request: WDFREQUEST, status: NTSTATUS) {
    // SAFETY: a live, uncompleted request.
    unsafe {
        call_unsafe_wdf_function_binding!(WdfRequestCompleteWithInformation, request, status, 0);
    };
}

unsafe extern "C" fn quick_thread(_: PVOID) {
    irql();
}

unsafe extern "C" fn spin_until_stopped(_: *mut DEVICE_OBJECT, _: PVOID) {
    // Each DDI call halts this worker once the machine has stopped.
    loop {
        support::stall(1_000);
    }
}

/// Waits for the thread behind `handle` without closing the handle; returns the referenced
/// object (the caller decides whether to dereference it).
fn wait_keep_handle(handle: HANDLE) -> PVOID {
    let mut object: PVOID = ptr::null_mut();
    // SAFETY: reading the exported PsThreadType variable, set once at boot.
    let thread_type_ptr = unsafe { ntsim::ddi::thread::PsThreadType };
    // SAFETY: it points to the thread object type.
    let thread_type = unsafe { *thread_type_ptr };
    // SAFETY: an open handle and a writable out pointer.
    let status = unsafe {
        ntddk::ObReferenceObjectByHandle(
            handle,
            0x0010_0000,
            thread_type,
            0,
            &raw mut object,
            ptr::null_mut(),
        )
    };
    assert_eq!(status, 0);
    // SAFETY: a referenced thread object; infinite wait at PASSIVE_LEVEL.
    let status = unsafe { ntddk::KeWaitForSingleObject(object, 0, 0, 0, ptr::null_mut()) };
    assert_eq!(status, 0);
    object
}

extern "C" fn device_control(
    _queue: WDFQUEUE,
    request: WDFREQUEST,
    _out: usize,
    _in: usize,
    code: u32,
) {
    match code {
        TERMINATE => {
            // The I/O caller's thread is not a system thread: an error, and it goes on.
            // SAFETY: PASSIVE_LEVEL.
            let status = unsafe { ntddk::PsTerminateSystemThread(0) };
            complete(request, status);
        }
        LEAK_HANDLE => {
            let handle = support::spawn(quick_thread, 0);
            let object = wait_keep_handle(handle);
            // SAFETY: drops the reference taken above; the handle stays open (leaked).
            let _ = unsafe { ntddk::ObfDereferenceObject(object) };
            complete(request, 0);
        }
        LEAK_REFERENCE => {
            let handle = support::spawn(quick_thread, 0);
            let _object = wait_keep_handle(handle);
            // SAFETY: closes our handle; the reference taken above is leaked.
            let status = unsafe { ntddk::ZwClose(handle) };
            assert_eq!(status, 0);
            complete(request, 0);
        }
        PENDING_WORK => {
            let item = allocate_work_item();
            queue_work_item(item, spin_until_stopped, 0);
            complete(request, 0);
        }
        _ => complete(request, STATUS_INVALID_PARAMETER),
    }
}

fn loaded() -> (Machine, ntsim::FileHandle) {
    let m = machine(2);
    m.load_driver("runtime", driver_entry).expect("loads");
    let file = m.open(Identity::User, Access::READ_WRITE).expect("opens");
    (m, file)
}

#[test]
fn terminate_from_a_non_system_thread_returns_an_error() {
    let (m, file) = loaded();
    assert_eq!(
        m.device_io_control(file, TERMINATE, &[], &mut []),
        Err(IoError::Status(STATUS_INVALID_PARAMETER))
    );
    m.close(file);
    let report = m.unload().expect("clean unload");
    assert_eq!((report.leaked_handles, report.leaked_references), (0, 0));
}

#[test]
fn handles_left_open_are_reported_at_unload() {
    let (m, file) = loaded();
    m.device_io_control(file, LEAK_HANDLE, &[], &mut [])
        .expect("ok");
    m.close(file);
    let report = m
        .unload()
        .expect("not a bug check (ddi.md 13.5 names none)");
    assert_eq!(report.leaked_handles, 1);
    assert_eq!(
        report.leaked_references, 1,
        "the handle's reference keeps the object"
    );
    assert!(m
        .debug_log()
        .iter()
        .any(|l| l.contains("1 kernel handle(s) open")));
}

#[test]
fn references_never_dropped_are_reported_at_unload() {
    let (m, file) = loaded();
    m.device_io_control(file, LEAK_REFERENCE, &[], &mut [])
        .expect("ok");
    m.close(file);
    let report = m.unload().expect("not a bug check");
    assert_eq!((report.leaked_handles, report.leaked_references), (0, 1));
}

#[test]
fn unloading_with_a_work_item_still_running_is_0xce() {
    let (m, file) = loaded();
    m.device_io_control(file, PENDING_WORK, &[], &mut [])
        .expect("ok");
    m.close(file);
    match m.unload() {
        Err(IoError::Host(HostError::BugCheck(b))) => {
            assert_eq!(
                b.code,
                code::DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS
            );
            assert_eq!(b.params, [0, 0, 1, 0]);
        }
        other => panic!("expected 0xCE, got {other:?}"),
    }
}
