//! The I/O path with a minimal KMDF test driver: load, device interface, open, `METHOD_BUFFERED`
//! device control, completion (inline and from another thread), KMDF callback checks, DbgPrint,
//! and the leak check at unload.

mod support;

use std::ptr;

use ntsim::{
    bugcheck::{code, verifier, wdf},
    wdk_sys::{
        call_unsafe_wdf_function_binding, ntddk, DRIVER_OBJECT, GUID, NTSTATUS, PCUNICODE_STRING,
        PVOID, PWDFDEVICE_INIT, UNICODE_STRING, WDFDRIVER, WDFQUEUE, WDFREQUEST,
    },
    Access, HostError, Identity, IoError, Machine,
};

const INTERFACE: GUID = GUID {
    Data1: 0x1234_5678,
    Data2: 0x9ABC,
    Data3: 0xDEF0,
    Data4: [1, 2, 3, 4, 5, 6, 7, 8],
};

/// IOCTL function numbers of the test driver (`METHOD_BUFFERED`, `FILE_ANY_ACCESS`).
const fn ioctl(function: u32) -> u32 {
    (0x8000 << 16) | (function << 2)
}
const ECHO: u32 = ioctl(0x801);
const LEAK: u32 = ioctl(0x802);
const RETURN_RAISED: u32 = ioctl(0x803);
const COMPLETE_TWICE: u32 = ioctl(0x804);
const COMPLETE_LATER: u32 = ioctl(0x805);
const PRINT: u32 = ioctl(0x806);
const STAY_IN_CRITICAL_REGION: u32 = ioctl(0x807);

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
    support::kmdf::create_device_with(init, Some(&INTERFACE), Some(device_control), options)
}

fn complete(request: WDFREQUEST, status: NTSTATUS, information: u64) {
    // SAFETY: a live, uncompleted request (or, in COMPLETE_TWICE, deliberately not).
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfRequestCompleteWithInformation,
            request,
            status,
            information
        );
    };
}

fn buffer(request: WDFREQUEST, output: bool) -> (PVOID, usize) {
    let mut data: PVOID = ptr::null_mut();
    let mut length = 0_usize;
    let status = if output {
        // SAFETY: a live request and writable out parameters.
        unsafe {
            call_unsafe_wdf_function_binding!(
                WdfRequestRetrieveOutputBuffer,
                request,
                1,
                &raw mut data,
                &raw mut length
            )
        }
    } else {
        // SAFETY: as above.
        unsafe {
            call_unsafe_wdf_function_binding!(
                WdfRequestRetrieveInputBuffer,
                request,
                1,
                &raw mut data,
                &raw mut length
            )
        }
    };
    assert_eq!(status, 0);
    (data, length)
}

unsafe extern "C" fn complete_later(context: PVOID) {
    support::stall(20_000);
    complete(context.cast(), 0, 0);
}

extern "C" fn device_control(
    _queue: WDFQUEUE,
    request: WDFREQUEST,
    out_len: usize,
    in_len: usize,
    code: u32,
) {
    match code {
        ECHO => {
            let (input, n) = buffer(request, false);
            assert_eq!(n, in_len);
            let (output, m) = buffer(request, true);
            assert_eq!(m, out_len);
            assert_eq!(input, output, "METHOD_BUFFERED: one system buffer");
            complete(request, 0, in_len.min(out_len) as u64);
        }
        LEAK => {
            // SAFETY: a nonpaged allocation at PASSIVE_LEVEL; deliberately never freed.
            let p = unsafe { ntddk::ExAllocatePool2(0x40, 100, u32::from_le_bytes(*b"Leak")) };
            assert!(!p.is_null());
            complete(request, 0, 0);
        }
        RETURN_RAISED => {
            complete(request, 0, 0);
            support::raise(2);
        }
        COMPLETE_TWICE => {
            complete(request, 0, 0);
            complete(request, 0, 0);
        }
        STAY_IN_CRITICAL_REGION => {
            complete(request, 0, 0);
            support::enter_critical_region();
        }
        COMPLETE_LATER => {
            let _thread = support::spawn(complete_later, request as usize);
        }
        PRINT => {
            let wide: Vec<u16> = "wide\u{e9}\0".encode_utf16().collect();
            let text: Vec<u16> = "counted".encode_utf16().collect();
            let counted = UNICODE_STRING {
                Length: 14,
                MaximumLength: 14,
                Buffer: text.as_ptr().cast_mut(),
            };
            // SAFETY: a format whose conversions match the arguments' Windows types.
            unsafe {
                ntddk::DbgPrint(
                    c"n=%d u=%lu x=%I64x s=%s ws=%ws wZ=%wZ pad=%5d|%-3s|".as_ptr(),
                    -7_i32,
                    4_000_000_000_u32,
                    0x1234_5678_9ABC_u64,
                    c"narrow".as_ptr(),
                    wide.as_ptr(),
                    &raw const counted,
                    42_i32,
                    c"a".as_ptr(),
                )
            };
            complete(request, 0, 0);
        }
        _ => complete(request, ntsim::wdk_sys::STATUS_INVALID_DEVICE_REQUEST, 0),
    }
}

fn loaded() -> (Machine, ntsim::FileHandle) {
    let machine = support::machine(2);
    machine.load_driver("iotest", driver_entry).expect("loads");
    assert_eq!(machine.device_interfaces(&INTERFACE).len(), 1);
    let file = machine
        .open(Identity::User, Access::READ_WRITE)
        .expect("no SDDL: anyone opens");
    (machine, file)
}

#[test]
fn buffered_device_control_round_trips_and_unloads_clean() {
    let (machine, file) = loaded();
    let mut out = [0_u8; 8];
    let n = machine
        .device_io_control(file, ECHO, b"hello world", &mut out)
        .expect("echo");
    assert_eq!(n, 8);
    assert_eq!(&out, b"hello wo");
    let n = machine
        .device_io_control(file, COMPLETE_LATER, &[], &mut [])
        .expect("completed by a thread");
    assert_eq!(n, 0);
    // The completing thread ends right after completing; unloading before it has ended would
    // rightly be 0xCE, so wait for it as a real driver's unload would.
    while machine.system_threads_running() > 0 {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_eq!(
        machine.device_io_control(file, ioctl(0x9FF), &[], &mut []),
        Err(IoError::Status(
            ntsim::wdk_sys::STATUS_INVALID_DEVICE_REQUEST
        ))
    );
    machine.close(file);
    let report = machine.unload().expect("clean unload");
    assert!(report.pool.values().all(|s| s.outstanding_bytes == 0));
}

#[test]
fn dbgprint_formats_with_windows_conventions() {
    let (machine, file) = loaded();
    machine
        .device_io_control(file, PRINT, &[], &mut [])
        .expect("print");
    let log = machine.debug_log();
    assert!(
        log.iter().any(|l| l
            == "n=-7 u=4000000000 x=123456789abc s=narrow ws=wide\u{e9} wZ=counted pad=   42|a  |"),
        "{log:#?}"
    );
}

#[test]
fn pool_leaked_at_unload_is_0xc4_0x62() {
    let (machine, file) = loaded();
    machine
        .device_io_control(file, LEAK, &[], &mut [])
        .expect("leak");
    let stats = machine.pool_stats();
    let leak = stats[&u32::from_le_bytes(*b"Leak")];
    assert_eq!((leak.outstanding_blocks, leak.outstanding_bytes), (1, 100));
    machine.close(file);
    match machine.unload() {
        Err(IoError::Host(HostError::BugCheck(b))) => {
            assert_eq!(b.code, code::DRIVER_VERIFIER_DETECTED_VIOLATION);
            assert_eq!(b.params, [verifier::POOL_LEAKED_AT_UNLOAD, 0, 1, 100]);
            assert!(b.message.contains("'Leak'"), "{}", b.message);
        }
        other => panic!("expected 0xC4/0x62, got {other:?}"),
    }
}

#[test]
fn callback_returning_at_a_raised_irql_is_0x10d_0xe() {
    let (machine, file) = loaded();
    match machine.device_io_control(file, RETURN_RAISED, &[], &mut []) {
        Err(IoError::Host(HostError::BugCheck(b))) => {
            assert_eq!(b.code, code::WDF_VIOLATION);
            assert_eq!(&b.params[..3], &[wdf::CALLBACK_IRQL_CHANGED, 0, 2]);
        }
        other => panic!("expected 0x10D/0xE, got {other:?}"),
    }
}

#[test]
fn completing_a_request_twice_is_0x10d() {
    let (machine, file) = loaded();
    match machine.device_io_control(file, COMPLETE_TWICE, &[], &mut []) {
        Err(IoError::Host(HostError::BugCheck(b))) => {
            assert_eq!(b.code, code::WDF_VIOLATION);
            assert_eq!(b.params[0], wdf::REQUEST_ALREADY_COMPLETED);
        }
        other => panic!("expected 0x10D, got {other:?}"),
    }
}

#[test]
fn callback_returning_inside_a_critical_region_is_0x10d_0xf() {
    let (machine, file) = loaded();
    match machine.device_io_control(file, STAY_IN_CRITICAL_REGION, &[], &mut []) {
        Err(IoError::Host(HostError::BugCheck(b))) => {
            assert_eq!(b.code, code::WDF_VIOLATION);
            assert_eq!(b.params[0], wdf::CALLBACK_CRITICAL_REGION);
            assert_eq!(
                b.params[1], device_control as *const () as u64,
                "P2 is the callback"
            );
        }
        other => panic!("expected 0x10D/0xF, got {other:?}"),
    }
}

unsafe extern "system" fn entry_leaving_a_critical_region(
    _driver: *mut DRIVER_OBJECT,
    _path: PCUNICODE_STRING,
) -> NTSTATUS {
    support::enter_critical_region();
    0
}

#[test]
fn returning_to_user_mode_inside_a_critical_region_is_0x1() {
    let machine = support::machine(2);
    match machine.load_driver("leaky", entry_leaving_a_critical_region) {
        Err(IoError::Host(HostError::BugCheck(b))) => {
            assert_eq!(b.code, code::APC_INDEX_MISMATCH);
            assert_eq!(b.params, [0, 0, 0xFFFF, 0]);
        }
        other => panic!("expected 0x1, got {other:?}"),
    }
}

#[test]
fn a_panic_in_driver_code_is_a_bug_check_and_the_process_carries_on() {
    let machine = support::machine(2);
    let result = machine.run(|| {
        let values: Vec<u32> = Vec::new();
        values.iter().sum::<u32>() / u32::try_from(values.len()).unwrap_or(0)
    });
    match result {
        Err(HostError::BugCheck(b)) => {
            assert_eq!(b.code, code::RUST_PANIC);
            assert!(b.message.contains("divide by zero"), "{}", b.message);
        }
        other => panic!("expected the RPNC bug check, got {other:?}"),
    }
    assert!(machine.run(|| 1).is_err(), "the machine is dead");
}
