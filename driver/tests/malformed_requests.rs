//! Bad input gets a defined NTSTATUS and never a bug check.

mod common;

use ntsim::{Access, Identity, IoError};
use synclab_protocol::{
    ioctl::{ctl_code, FILE_DEVICE_SYNCLAB, FILE_READ_ACCESS, IOCTL_SYNCLAB_RUN_STRESS, METHOD_BUFFERED},
    limits::MAX_THREADS,
    status::*,
    wire::{StressRequest, StressResponse},
    Primitive,
};
use zerocopy::{FromZeros, IntoBytes};

fn send(machine: &ntsim::Machine, file: ntsim::FileHandle, code: u32, input: &[u8], output: &mut [u8]) -> i32 {
    match machine.device_io_control(file, code, input, output) {
        Ok(_) => STATUS_SUCCESS,
        Err(IoError::Status(status)) => status,
        Err(other) => panic!("expected an NTSTATUS, got {other}"),
    }
}

#[test]
fn malformed_requests_get_defined_statuses_and_no_bugcheck() {
    let (machine, file) = common::machine(2);
    let good = StressRequest::new(Primitive::SpinLock, 2, 10);
    let mut out = StressResponse::new_box_zeroed().expect("memory");

    // Short input buffer.
    let status = send(&machine, file, IOCTL_SYNCLAB_RUN_STRESS, &good.as_bytes()[..12], out.as_mut_bytes());
    assert_eq!(status, STATUS_BUFFER_TOO_SMALL);
    // Empty input buffer.
    let status = send(&machine, file, IOCTL_SYNCLAB_RUN_STRESS, &[], out.as_mut_bytes());
    assert_eq!(status, STATUS_BUFFER_TOO_SMALL);
    // Short output buffer.
    let status = send(&machine, file, IOCTL_SYNCLAB_RUN_STRESS, good.as_bytes(), &mut out.as_mut_bytes()[..100]);
    assert_eq!(status, STATUS_BUFFER_TOO_SMALL);
    // Wrong ABI version.
    let mut bad = good;
    bad.header.abi_version = 7;
    assert_eq!(send(&machine, file, IOCTL_SYNCLAB_RUN_STRESS, bad.as_bytes(), out.as_mut_bytes()), STATUS_REVISION_MISMATCH);
    // Wrong size field.
    let mut bad = good;
    bad.header.size = 4;
    assert_eq!(send(&machine, file, IOCTL_SYNCLAB_RUN_STRESS, bad.as_bytes(), out.as_mut_bytes()), STATUS_INFO_LENGTH_MISMATCH);
    // Thread count out of range.
    let mut bad = good;
    bad.threads = MAX_THREADS + 1;
    assert_eq!(send(&machine, file, IOCTL_SYNCLAB_RUN_STRESS, bad.as_bytes(), out.as_mut_bytes()), STATUS_INVALID_PARAMETER);
    // Zero iterations, hold time out of range.
    let mut bad = good;
    bad.iterations = 0;
    assert_eq!(send(&machine, file, IOCTL_SYNCLAB_RUN_STRESS, bad.as_bytes(), out.as_mut_bytes()), STATUS_INVALID_PARAMETER);
    let mut bad = good;
    bad.hold_us = 1_000_000;
    assert_eq!(send(&machine, file, IOCTL_SYNCLAB_RUN_STRESS, bad.as_bytes(), out.as_mut_bytes()), STATUS_INVALID_PARAMETER);
    // Unknown primitive, unknown flags.
    let mut bad = good;
    bad.primitive = 999;
    assert_eq!(send(&machine, file, IOCTL_SYNCLAB_RUN_STRESS, bad.as_bytes(), out.as_mut_bytes()), STATUS_NOT_SUPPORTED);
    let mut bad = good;
    bad.flags = 0x100;
    assert_eq!(send(&machine, file, IOCTL_SYNCLAB_RUN_STRESS, bad.as_bytes(), out.as_mut_bytes()), STATUS_NOT_SUPPORTED);
    // Unknown IOCTL codes (a buffered one, and one of another device type).
    let unknown = ctl_code(FILE_DEVICE_SYNCLAB, 0x9FF, METHOD_BUFFERED, FILE_READ_ACCESS);
    assert_eq!(send(&machine, file, unknown, good.as_bytes(), out.as_mut_bytes()), STATUS_INVALID_DEVICE_REQUEST);
    assert_eq!(send(&machine, file, 0x0022_0000, &[], &mut []), STATUS_INVALID_DEVICE_REQUEST);

    assert!(machine.bugcheck().is_none(), "bad input never bugchecks");
    // And the device still works afterwards.
    let response = common::stress(&machine, file, &good).expect("a good request still works");
    assert_eq!(response.protected_counter, 20);
    common::unload_clean(&machine, file);
}

#[test]
fn run_ioctl_needs_write_access_and_the_device_admits_only_admins() {
    let (machine, admin) = common::machine(2);
    let good = StressRequest::new(Primitive::SpinLock, 1, 10);
    let mut out = StressResponse::new_box_zeroed().expect("memory");
    let reader = machine.open(Identity::Administrator, Access::READ).expect("read-only open");
    assert_eq!(
        send(&machine, reader, IOCTL_SYNCLAB_RUN_STRESS, good.as_bytes(), out.as_mut_bytes()),
        STATUS_ACCESS_DENIED,
        "IOCTLs that run work require FILE_WRITE_ACCESS"
    );
    assert!(common::info(&machine, reader).is_ok(), "GET_INFO needs only read access");
    assert_eq!(
        machine.open(Identity::User, Access::READ),
        Err(IoError::Status(STATUS_ACCESS_DENIED)),
        "the SDDL admits only SYSTEM and Administrators"
    );
    assert!(machine.open(Identity::System, Access::READ_WRITE).is_ok());
    machine.close(reader);
    assert!(machine.bugcheck().is_none());
    let _ = admin;
}
