//! Where IOCTLs go: the real device on Windows, an in-process ntsim machine elsewhere.

use synclab_protocol::status::{self, NtStatus};

#[cfg(not(windows))]
pub mod host;
#[cfg(windows)]
pub mod windows;

/// Why an IOCTL did not return data.
#[derive(Debug, thiserror::Error)]
#[cfg_attr(
    windows,
    allow(dead_code, reason = "Status and BugCheck come from the host backend")
)]
pub enum DeviceError {
    /// The driver completed the request with an error status.
    #[error("the driver failed the request with {}", status_text(*.0))]
    Status(NtStatus),
    /// A Win32 call failed (Windows backend).
    #[cfg_attr(
        not(windows),
        allow(dead_code, reason = "built by the Windows backend only")
    )]
    #[error("{call} failed: Win32 error {code}: {message}")]
    Win32 {
        /// The API that failed.
        call: &'static str,
        /// `GetLastError()`.
        code: u32,
        /// Its text, or what it means for SyncLab.
        message: String,
    },
    /// No SyncLab device is present.
    #[error("no SyncLab device found: {0}")]
    NotFound(String),
    /// The emulated kernel bugchecked while serving the request (host backend).
    #[error("the emulated kernel stopped: {0}")]
    BugCheck(String),
}

/// Formats an NTSTATUS with its name when known.
#[must_use]
pub fn status_text(value: NtStatus) -> String {
    let bits = u32::from_ne_bytes(value.to_ne_bytes());
    status::name(value).map_or_else(
        || format!("NTSTATUS {bits:#010X}"),
        |n| format!("{n} ({bits:#010X})"),
    )
}

/// An open SyncLab device.
pub trait Device {
    /// One line saying what this device is, and for the host backend that it is emulated.
    fn describe(&self) -> String;

    /// Sends `code` with `input`, filling `output`; returns the bytes the driver wrote.
    ///
    /// # Errors
    /// [`DeviceError`] when the request does not complete successfully.
    fn ioctl(&mut self, code: u32, input: &[u8], output: &mut [u8]) -> Result<usize, DeviceError>;

    /// Closes the device. The host backend also unloads the driver and reports leaks here.
    ///
    /// # Errors
    /// [`DeviceError`] when closing shows a fault (host: a bugcheck at unload, leaked pool).
    fn close(self: Box<Self>) -> Result<(), DeviceError>;
}
