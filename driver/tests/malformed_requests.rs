//! Bad input gets a defined NTSTATUS and never a bug check.
#![cfg(not(windows))] // These tests run the driver on ntsim, the host kernel.

mod common;

use ntsim::{Access, Identity, IoError};
use synclab_protocol::{
    ioctl::{
        ctl_code, FILE_DEVICE_SYNCLAB, FILE_READ_ACCESS, IOCTL_SYNCLAB_RUN_STRESS, METHOD_BUFFERED,
    },
    limits::{MAX_DISPATCH_LONG_HOLD_US, MAX_ITERATIONS, MAX_STUTTER_MS, MAX_THREADS},
    status::*,
    wire::{StressRequest, StressResponse, FLAG_APC_LEVEL, FLAG_DPC},
    Primitive,
};
use zerocopy::{FromZeros, IntoBytes};

fn send(
    machine: &ntsim::Machine,
    file: ntsim::FileHandle,
    code: u32,
    input: &[u8],
    output: &mut [u8],
) -> i32 {
    match machine.device_io_control(file, code, input, output) {
        Ok(_) => STATUS_SUCCESS,
        Err(IoError::Status(status)) => status,
        Err(other) => panic!("expected an NTSTATUS, got {other}"),
    }
}

/// A request with one field changed.
fn with(change: impl FnOnce(&mut StressRequest)) -> Vec<u8> {
    let mut request = StressRequest::new(Primitive::SpinLock, 2, 10);
    change(&mut request);
    request.as_bytes().to_vec()
}

const RUN: u32 = IOCTL_SYNCLAB_RUN_STRESS;
const FULL: usize = std::mem::size_of::<StressResponse>();

/// One malformed request: what it is, its code, input, output length, and the status it gets.
struct Case(&'static str, u32, Vec<u8>, usize, i32);

#[allow(clippy::too_many_lines, reason = "one table of cases")]
fn cases() -> Vec<Case> {
    let good = with(|_| ());
    let unknown = ctl_code(
        FILE_DEVICE_SYNCLAB,
        0x9FF,
        METHOD_BUFFERED,
        FILE_READ_ACCESS,
    );
    vec![
        Case(
            "short input",
            RUN,
            good[..12].to_vec(),
            FULL,
            STATUS_BUFFER_TOO_SMALL,
        ),
        Case(
            "empty input",
            RUN,
            Vec::new(),
            FULL,
            STATUS_BUFFER_TOO_SMALL,
        ),
        Case(
            "short output",
            RUN,
            good.clone(),
            100,
            STATUS_BUFFER_TOO_SMALL,
        ),
        Case(
            "wrong ABI",
            RUN,
            with(|r| r.header.abi_version = 7),
            FULL,
            STATUS_REVISION_MISMATCH,
        ),
        Case(
            "wrong size",
            RUN,
            with(|r| r.header.size = 4),
            FULL,
            STATUS_INFO_LENGTH_MISMATCH,
        ),
        Case(
            "threads",
            RUN,
            with(|r| r.writers = MAX_THREADS + 1),
            FULL,
            STATUS_INVALID_PARAMETER,
        ),
        Case(
            "no end",
            RUN,
            with(|r| r.iterations = 0),
            FULL,
            STATUS_INVALID_PARAMETER,
        ),
        Case(
            "iterations",
            RUN,
            with(|r| r.iterations = MAX_ITERATIONS + 1),
            FULL,
            STATUS_INVALID_PARAMETER,
        ),
        Case(
            "long hold at DISPATCH_LEVEL",
            RUN,
            with(|r| {
                r.long_hold_us = MAX_DISPATCH_LONG_HOLD_US + 1;
            }),
            FULL,
            STATUS_INVALID_PARAMETER,
        ),
        Case(
            "seed is free, stutter is not",
            RUN,
            with(|r| {
                r.seed = u64::MAX;
                r.stutter_ms = MAX_STUTTER_MS + 1;
            }),
            FULL,
            STATUS_INVALID_PARAMETER,
        ),
        Case(
            "variant",
            RUN,
            with(|r| r.variant = 99),
            FULL,
            STATUS_NOT_SUPPORTED,
        ),
        Case(
            "readers of an exclusive lock",
            RUN,
            with(|r| r.readers = 1),
            FULL,
            STATUS_INVALID_PARAMETER_MIX,
        ),
        Case(
            "a fast mutex in a DPC",
            RUN,
            with(|r| {
                r.primitive = Primitive::FastMutex.id();
                r.flags = FLAG_DPC;
            }),
            FULL,
            STATUS_INVALID_PARAMETER_MIX,
        ),
        Case(
            "a wait lock at APC_LEVEL",
            RUN,
            with(|r| {
                r.primitive = Primitive::WdfWaitLock.id();
                r.flags = FLAG_APC_LEVEL;
            }),
            FULL,
            STATUS_INVALID_PARAMETER_MIX,
        ),
        Case(
            "more time at DISPATCH_LEVEL than a DPC may spend",
            RUN,
            with(|r| {
                r.writers = 64;
                r.hold_us = 100;
                r.flags = FLAG_DPC;
            }),
            FULL,
            STATUS_INVALID_PARAMETER_MIX,
        ),
        Case(
            "hold",
            RUN,
            with(|r| r.hold_us = 1_000_000),
            FULL,
            STATUS_INVALID_PARAMETER,
        ),
        Case(
            "reserved",
            RUN,
            with(|r| r.reserved = 1),
            FULL,
            STATUS_INVALID_PARAMETER,
        ),
        Case(
            "primitive",
            RUN,
            with(|r| r.primitive = 999),
            FULL,
            STATUS_NOT_SUPPORTED,
        ),
        Case(
            "flags",
            RUN,
            with(|r| r.flags = 0x100),
            FULL,
            STATUS_NOT_SUPPORTED,
        ),
        Case(
            "unknown IOCTL",
            unknown,
            good,
            FULL,
            STATUS_INVALID_DEVICE_REQUEST,
        ),
        Case(
            "foreign IOCTL",
            0x0022_0000,
            Vec::new(),
            0,
            STATUS_INVALID_DEVICE_REQUEST,
        ),
    ]
}

#[test]
fn malformed_requests_get_defined_statuses_and_no_bugcheck() {
    let (machine, file) = common::machine(2);
    for Case(what, code, input, out_len, expected) in cases() {
        let mut output = vec![0_u8; out_len];
        assert_eq!(
            send(&machine, file, code, &input, &mut output),
            expected,
            "{what}"
        );
    }
    assert!(machine.bugcheck().is_none(), "bad input never bugchecks");
    // And the device still works afterwards.
    let request = StressRequest::new(Primitive::SpinLock, 2, 10);
    let response = common::stress(&machine, file, &request).expect("a good request still works");
    assert_eq!(response.protected_counter, 20);
    let log = machine.debug_log();
    assert!(
        log.iter()
            .any(|l| l.starts_with("synclab: request refused: a fast mutex")
                || l.contains("fast mutex (plain) cannot be acquired at DISPATCH_LEVEL")),
        "a refusal says why in the debug log: {log:#?}"
    );
    common::unload_clean(&machine, file);
}

#[test]
fn run_ioctl_needs_write_access_and_the_device_admits_only_admins() {
    let (machine, admin) = common::machine(2);
    let good = StressRequest::new(Primitive::SpinLock, 1, 10);
    let mut out = StressResponse::new_box_zeroed().expect("memory");
    let reader = machine
        .open(Identity::Administrator, Access::READ)
        .expect("read-only open");
    assert_eq!(
        send(
            &machine,
            reader,
            IOCTL_SYNCLAB_RUN_STRESS,
            good.as_bytes(),
            out.as_mut_bytes()
        ),
        STATUS_ACCESS_DENIED,
        "IOCTLs that run work require FILE_WRITE_ACCESS"
    );
    assert!(
        common::info(&machine, reader).is_ok(),
        "GET_INFO needs only read access"
    );
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
