//! Shared helpers: a machine with the driver loaded, and typed IOCTL calls.
#![allow(dead_code, reason = "each test file uses a subset")]

use ntsim::{Access, FileHandle, Identity, IoError, Machine, MachineConfig};
use synclab_protocol::{
    ioctl::{IOCTL_SYNCLAB_GET_INFO, IOCTL_SYNCLAB_RUN_STRESS},
    wire::{InfoRequest, InfoResponse, StressRequest, StressResponse},
};
use zerocopy::{FromZeros, IntoBytes};

/// A machine with `cpus` virtual processors, the driver loaded, and an administrator's
/// read/write handle on the device.
pub fn machine(cpus: u32) -> (Machine, FileHandle) {
    machine_with(MachineConfig::with_processors(cpus))
}

/// A machine built from `config`, the driver loaded, and an administrator's read/write handle.
pub fn machine_with(config: MachineConfig) -> (Machine, FileHandle) {
    let machine = Machine::new(config);
    machine
        .load_driver("synclab", synclab::driver_entry)
        .expect("the driver loads");
    let file = machine
        .open(Identity::Administrator, Access::READ_WRITE)
        .expect("an administrator opens the device");
    (machine, file)
}

/// Sends a stress request.
pub fn stress(
    machine: &Machine,
    file: FileHandle,
    request: &StressRequest,
) -> Result<Box<StressResponse>, IoError> {
    let mut output = StressResponse::new_box_zeroed().expect("memory");
    let n = machine.device_io_control(
        file,
        IOCTL_SYNCLAB_RUN_STRESS,
        request.as_bytes(),
        output.as_mut_bytes(),
    )?;
    assert_eq!(
        n,
        std::mem::size_of::<StressResponse>(),
        "the whole response is returned"
    );
    Ok(Box::new(
        StressResponse::parse(output.as_bytes()).expect("a well-formed response"),
    ))
}

/// The status a refused stress request completes with.
pub fn refused(machine: &Machine, file: FileHandle, request: &StressRequest) -> i32 {
    match stress(machine, file, request) {
        Err(IoError::Status(status)) => status,
        Err(other) => panic!("expected an NTSTATUS, got {other}"),
        Ok(response) => panic!("expected a refusal, got verdict {}", response.verdict),
    }
}

/// Sends `GET_INFO`.
pub fn info(machine: &Machine, file: FileHandle) -> Result<InfoResponse, IoError> {
    let mut output = InfoResponse::new_zeroed();
    machine.device_io_control(
        file,
        IOCTL_SYNCLAB_GET_INFO,
        InfoRequest::new().as_bytes(),
        output.as_mut_bytes(),
    )?;
    Ok(output)
}

/// Closes the file and unloads, asserting a clean unload (no leaked pool).
pub fn unload_clean(machine: &Machine, file: FileHandle) {
    machine.close(file);
    let report = machine
        .unload()
        .expect("the driver unloads without a bug check");
    for (tag, stats) in &report.pool {
        assert_eq!(stats.outstanding_bytes, 0, "pool tag {tag:#x} leaked");
    }
    assert_eq!(report.leaked_handles, 0);
    assert_eq!(report.leaked_references, 0);
}

/// Opens another administrator's read/write handle; `overlapped` as `FILE_FLAG_OVERLAPPED`.
pub fn open(machine: &Machine, overlapped: bool) -> FileHandle {
    machine
        .open_with(Identity::Administrator, Access::READ_WRITE, overlapped)
        .expect("an administrator opens the device")
}

/// Issues a stress request without waiting for it (`DeviceIoControl` with an `OVERLAPPED` on an
/// overlapped handle).
pub fn start(machine: &Machine, file: FileHandle, request: &StressRequest) -> ntsim::PendingIo {
    machine
        .device_io_control_async(
            file,
            IOCTL_SYNCLAB_RUN_STRESS,
            request.as_bytes(),
            std::mem::size_of::<StressResponse>(),
        )
        .expect("the request is issued")
}

/// The response in a successful completion's output.
pub fn response(output: &[u8]) -> StressResponse {
    assert_eq!(
        output.len(),
        std::mem::size_of::<StressResponse>(),
        "the whole response is returned"
    );
    StressResponse::parse(output).expect("a well-formed response")
}

/// Asserts an unload report leaves nothing behind: no pool, handles or references.
pub fn assert_nothing_left(report: &ntsim::UnloadReport) {
    for (tag, stats) in &report.pool {
        assert_eq!(stats.outstanding_bytes, 0, "pool tag {tag:#x} leaked");
    }
    assert_eq!(report.leaked_handles, 0, "kernel handles leaked");
    assert_eq!(report.leaked_references, 0, "object references leaked");
}
