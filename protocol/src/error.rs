//! Why a request is rejected, each reason mapping to exactly one NTSTATUS.

use crate::{
    limits::{
        DPC_INVOCATION_MAX_US, MAX_DELAY_US, MAX_DURATION_MS, MAX_HOLD_US, MAX_ITERATIONS,
        MAX_PER_MILLE, MAX_STUTTER_MS, MAX_THREADS, MIN_ITERATIONS,
    },
    primitive::context,
    status::{
        NtStatus, STATUS_BUFFER_TOO_SMALL, STATUS_INFO_LENGTH_MISMATCH, STATUS_INVALID_PARAMETER,
        STATUS_INVALID_PARAMETER_MIX, STATUS_NOT_SUPPORTED, STATUS_REVISION_MISMATCH,
    },
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
    /// The primitive has no variant with this index.
    UnknownVariant {
        /// The primitive's name.
        primitive: &'static str,
        /// The index asked for.
        variant: u32,
        /// How many variants it has.
        count: usize,
    },
    /// Flag bits this ABI does not define.
    UnknownFlags(u32),
    /// Writers plus readers is above [`MAX_THREADS`].
    ThreadsOutOfRange(u32),
    /// Neither threads nor DPC workers were requested.
    NoWorkers,
    /// Neither iterations nor a duration: the run would never end.
    NoEnd,
    /// `iterations` is outside `MIN_ITERATIONS..=MAX_ITERATIONS`.
    IterationsOutOfRange(u32),
    /// `duration_ms` is above [`MAX_DURATION_MS`].
    DurationOutOfRange(u32),
    /// `hold_us` is above [`MAX_HOLD_US`].
    HoldOutOfRange(u32),
    /// `long_hold_us` is above the limit for this primitive.
    LongHoldOutOfRange {
        /// The value asked for.
        value: u32,
        /// The limit (lower for locks held at `DISPATCH_LEVEL`).
        max: u32,
    },
    /// `long_hold_per_mille` is above [`MAX_PER_MILLE`].
    PerMilleOutOfRange(u32),
    /// `delay_us` is above [`MAX_DELAY_US`].
    DelayOutOfRange(u32),
    /// `stutter_ms` is above [`MAX_STUTTER_MS`].
    StutterOutOfRange(u32),
    /// A reserved field is not zero.
    ReservedNotZero,
    /// Readers were asked of a primitive with no shared side.
    ReadersOnExclusive {
        /// The primitive's title ("fast mutex").
        title: &'static str,
    },
    /// A worker context the primitive's DDIs forbid.
    IllegalContext {
        /// The primitive's title.
        title: &'static str,
        /// The variant's name.
        variant: &'static str,
        /// The [`context`] bit.
        context: u32,
    },
    /// DPC workers on a lock held at `DISPATCH_LEVEL` could spend more than
    /// [`DPC_INVOCATION_MAX_US`] in one invocation.
    DispatchBudget {
        /// Workers contending.
        workers: u32,
        /// The longest hold (long hold included), microseconds.
        max_hold_us: u32,
        /// The worst single acquisition, microseconds.
        worst_us: u64,
    },
}

impl RequestError {
    /// The one NTSTATUS this error completes the request with.
    #[must_use]
    pub const fn ntstatus(self) -> NtStatus {
        match self {
            Self::InputTooSmall { .. } | Self::OutputTooSmall { .. } => STATUS_BUFFER_TOO_SMALL,
            Self::SizeMismatch { .. } => STATUS_INFO_LENGTH_MISMATCH,
            Self::AbiVersion { .. } => STATUS_REVISION_MISMATCH,
            Self::UnknownPrimitive(_) | Self::UnknownVariant { .. } | Self::UnknownFlags(_) => {
                STATUS_NOT_SUPPORTED
            }
            Self::ThreadsOutOfRange(_)
            | Self::NoWorkers
            | Self::NoEnd
            | Self::IterationsOutOfRange(_)
            | Self::DurationOutOfRange(_)
            | Self::HoldOutOfRange(_)
            | Self::LongHoldOutOfRange { .. }
            | Self::PerMilleOutOfRange(_)
            | Self::DelayOutOfRange(_)
            | Self::StutterOutOfRange(_)
            | Self::ReservedNotZero => STATUS_INVALID_PARAMETER,
            Self::ReadersOnExclusive { .. }
            | Self::IllegalContext { .. }
            | Self::DispatchBudget { .. } => STATUS_INVALID_PARAMETER_MIX,
        }
    }
}

impl core::fmt::Display for RequestError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
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
            Self::UnknownVariant {
                primitive,
                variant,
                count,
            } => write!(
                f,
                "{primitive} has no variant {variant} (it has {count}; see `synclab list`)"
            ),
            Self::UnknownFlags(bits) => write!(f, "unknown flag bits {bits:#x}"),
            Self::ThreadsOutOfRange(n) => {
                write!(
                    f,
                    "threads = {n} (writers + readers), allowed 0..={MAX_THREADS}"
                )
            }
            Self::NoWorkers => f.write_str("no workers: ask for at least one thread or for DPCs"),
            Self::NoEnd => f.write_str("no end: give iterations, a duration, or both"),
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
            Self::LongHoldOutOfRange { value, max } => write!(
                f,
                "long hold = {value} us, allowed 0..={max} for this primitive"
            ),
            Self::PerMilleOutOfRange(n) => {
                write!(
                    f,
                    "long-hold probability = {n} per mille, allowed 0..={MAX_PER_MILLE}"
                )
            }
            Self::DelayOutOfRange(n) => write!(f, "delay = {n} us, allowed 0..={MAX_DELAY_US}"),
            Self::StutterOutOfRange(n) => {
                write!(f, "stutter = {n} ms, allowed 0..={MAX_STUTTER_MS}")
            }
            Self::ReservedNotZero => f.write_str("a reserved field is not zero"),
            Self::ReadersOnExclusive { title } => {
                write!(f, "a {title} has no shared mode: readers must be 0")
            }
            Self::IllegalContext {
                title,
                variant,
                context,
            } => {
                let irql = context::irql_name(context);
                let why = match context {
                    context::DPC => {
                        " (a DPC must not wait, and runs in whatever thread it interrupted)"
                    }
                    _ => "",
                };
                write!(
                    f,
                    "{title} ({variant}) cannot be acquired at {irql} from {}{why}",
                    context::name(context)
                )
            }
            Self::DispatchBudget {
                workers,
                max_hold_us,
                worst_us,
            } => write!(
                f,
                "{workers} workers each holding up to {max_hold_us} us could keep a DPC at \
                 DISPATCH_LEVEL {worst_us} us for one acquisition; one DPC invocation may spend \
                 at most {DPC_INVOCATION_MAX_US} us there: lower the hold, the long hold, the \
                 delay or the number of workers"
            ),
        }
    }
}

impl core::error::Error for RequestError {}
