//! Why a request is rejected, each reason mapping to exactly one NTSTATUS.

use crate::status::{
    NtStatus, STATUS_BUFFER_TOO_SMALL, STATUS_INFO_LENGTH_MISMATCH, STATUS_INVALID_PARAMETER,
    STATUS_NOT_SUPPORTED, STATUS_REVISION_MISMATCH,
};

/// A request the driver refuses. [`RequestError::ntstatus`] is what the IOCTL completes with;
/// the client reports the `Display` text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// The input buffer is shorter than the request structure.
    InputTooSmall {
        /// Bytes the structure needs.
        needed: usize,
        /// Bytes supplied.
        got: usize,
    },
    /// The output buffer is shorter than the response structure.
    OutputTooSmall {
        /// Bytes the structure needs.
        needed: usize,
        /// Bytes supplied.
        got: usize,
    },
    /// The header's `size` is not the size of the structure for this IOCTL.
    SizeMismatch {
        /// The structure's size.
        expected: u32,
        /// The header's value.
        got: u32,
    },
    /// The header carries another ABI version.
    AbiVersion {
        /// This side's [`crate::ABI_VERSION`].
        expected: u32,
        /// The header's value.
        got: u32,
    },
    /// No primitive has this identifier.
    UnknownPrimitive(u32),
    /// Flag bits this ABI does not define.
    UnknownFlags(u32),
    /// `threads` is above [`crate::limits::MAX_THREADS`].
    ThreadsOutOfRange(u32),
    /// Neither threads nor DPC workers were requested.
    NoWorkers,
    /// `iterations` is outside `MIN_ITERATIONS..=MAX_ITERATIONS`.
    IterationsOutOfRange(u32),
    /// `duration_ms` is above [`crate::limits::MAX_DURATION_MS`].
    DurationOutOfRange(u32),
    /// `hold_us` is above [`crate::limits::MAX_HOLD_US`].
    HoldOutOfRange(u32),
    /// A reserved field is not zero.
    ReservedNotZero,
}

impl RequestError {
    /// The one NTSTATUS this error completes the request with.
    #[must_use]
    pub const fn ntstatus(self) -> NtStatus {
        match self {
            Self::InputTooSmall { .. } | Self::OutputTooSmall { .. } => STATUS_BUFFER_TOO_SMALL,
            Self::SizeMismatch { .. } => STATUS_INFO_LENGTH_MISMATCH,
            Self::AbiVersion { .. } => STATUS_REVISION_MISMATCH,
            Self::UnknownPrimitive(_) | Self::UnknownFlags(_) => STATUS_NOT_SUPPORTED,
            Self::ThreadsOutOfRange(_)
            | Self::NoWorkers
            | Self::IterationsOutOfRange(_)
            | Self::DurationOutOfRange(_)
            | Self::HoldOutOfRange(_)
            | Self::ReservedNotZero => STATUS_INVALID_PARAMETER,
        }
    }
}

impl core::fmt::Display for RequestError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        use crate::limits::{
            MAX_DURATION_MS, MAX_HOLD_US, MAX_ITERATIONS, MAX_THREADS, MIN_ITERATIONS,
        };
        match *self {
            Self::InputTooSmall { needed, got } => {
                write!(f, "input buffer is {got} bytes, the request needs {needed}")
            }
            Self::OutputTooSmall { needed, got } => {
                write!(
                    f,
                    "output buffer is {got} bytes, the response needs {needed}"
                )
            }
            Self::SizeMismatch { expected, got } => {
                write!(f, "header size is {got}, this request is {expected} bytes")
            }
            Self::AbiVersion { expected, got } => {
                write!(
                    f,
                    "ABI version {got} is not supported (this side speaks {expected})"
                )
            }
            Self::UnknownPrimitive(id) => write!(f, "unknown primitive id {id}"),
            Self::UnknownFlags(bits) => write!(f, "unknown flag bits {bits:#x}"),
            Self::ThreadsOutOfRange(n) => write!(f, "threads = {n}, allowed 0..={MAX_THREADS}"),
            Self::NoWorkers => f.write_str("no workers: ask for at least one thread or for DPCs"),
            Self::IterationsOutOfRange(n) => {
                write!(
                    f,
                    "iterations = {n}, allowed {MIN_ITERATIONS}..={MAX_ITERATIONS}"
                )
            }
            Self::DurationOutOfRange(n) => {
                write!(f, "duration = {n} ms, allowed 0..={MAX_DURATION_MS}")
            }
            Self::HoldOutOfRange(n) => write!(f, "hold = {n} us, allowed 0..={MAX_HOLD_US}"),
            Self::ReservedNotZero => f.write_str("a reserved field is not zero"),
        }
    }
}

impl core::error::Error for RequestError {}
