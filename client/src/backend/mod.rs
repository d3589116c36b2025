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
    #[error("{}", status_message(*.0))]
    Status(NtStatus),
    /// The client could not allocate what it needed.
    #[error("out of memory: {0}")]
    OutOfMemory(&'static str),
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

/// What a failed request's status means for the user.
#[must_use]
pub fn status_message(value: NtStatus) -> String {
    let text = status_text(value);
    match value {
        status::STATUS_DEVICE_BUSY => format!(
            "another stress run is in progress (the driver runs at most {} at once): {text}",
            synclab_protocol::limits::MAX_CONCURRENT_RUNS
        ),
        status::STATUS_CANCELLED => format!("the run was cancelled before it started: {text}"),
        _ => format!("the driver failed the request with {text}"),
    }
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

/// Cancels a device's requests in flight; callable from any thread, any number of times.
pub type Canceller = Box<dyn Fn() + Send + Sync>;

/// An open SyncLab device.
pub trait Device {
    /// One line saying what this device is, and for the host backend that it is emulated.
    fn describe(&self) -> String;

    /// Sends `code` with `input`, filling `output`; returns the bytes the driver wrote.
    ///
    /// # Errors
    /// [`DeviceError`] when the request does not complete successfully.
    fn ioctl(&mut self, code: u32, input: &[u8], output: &mut [u8]) -> Result<usize, DeviceError>;

    /// A way to cancel, from another thread (the Ctrl-C handler), whatever request this device
    /// has in flight: `CancelIoEx` on the handle, or ntsim's equivalent. Cancelling a stress run
    /// makes the driver stop it and answer with the figures so far.
    fn canceller(&self) -> Canceller;

    /// Closes the device. The host backend also unloads the driver and reports leaks here.
    ///
    /// # Errors
    /// [`DeviceError`] when closing shows a fault (host: a bugcheck at unload, leaked pool).
    fn close(self: Box<Self>) -> Result<(), DeviceError>;
}
