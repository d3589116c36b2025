//! `IOCTL_SYNCLAB_GET_INFO`.

use synclab_protocol::{
    wire::{check_output, Header, InfoRequest, InfoResponse},
    RequestError, DRIVER_VERSION,
};
use wdk_sys::{NTSTATUS, RTL_OSVERSIONINFOW, WDFREQUEST};

use crate::kernel::{processor, request, time};

/// Answers with the ABI and driver version, processor count, timestamp frequency, OS version
/// and which kernel this is. IRQL <= `APC_LEVEL` (`RtlGetVersion` is `PASSIVE_LEVEL`).
///
/// # Errors
/// The NTSTATUS of the first [`RequestError`], or of `RtlGetVersion`.
pub fn handle(request: WDFREQUEST, output_length: usize) -> Result<usize, NTSTATUS> {
    check_output::<InfoResponse>(output_length).map_err(RequestError::ntstatus)?;
    request::read_input(request, |bytes| {
        InfoRequest::parse(bytes).map_err(RequestError::ntstatus)
    })?;
    let mut version = RTL_OSVERSIONINFOW {
        #[allow(clippy::cast_possible_truncation, reason = "a 276-byte structure")]
        dwOSVersionInfoSize: core::mem::size_of::<RTL_OSVERSIONINFOW>() as u32,
        ..RTL_OSVERSIONINFOW::default()
    };
    // SAFETY: `version` is a writable RTL_OSVERSIONINFOW with its size set.
    let status = unsafe { wdk_sys::ntddk::RtlGetVersion(&raw mut version) };
    if !wdk::nt_success(status) {
        return Err(status);
    }
    let response = InfoResponse {
        header: Header::of::<InfoResponse>(),
        driver_version: [DRIVER_VERSION[0], DRIVER_VERSION[1], DRIVER_VERSION[2], 0],
        kernel: crate::KERNEL,
        processor_count: processor::count(),
        os_version: [
            version.dwMajorVersion,
            version.dwMinorVersion,
            version.dwBuildNumber,
        ],
        // The minor version the driver was built for (wdk-build's target-kmdf-version-minor).
        kmdf_version: [1, wdk_sys::WdfMinimumVersionRequired],
        reserved: 0,
        timestamp_frequency: time::frequency().unsigned_abs(),
    };
    request::write_output(request, &response)
}
