//! Fixed-layout request and response structures.
//!
//! Every type is `#[repr(C)]` with explicit padding, its size asserted at compile time, and is
//! read from a byte buffer with `zerocopy` (a copy: alignment of the buffer does not matter).

use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

use crate::{
    limits::{
        MAX_DURATION_MS, MAX_HOLD_US, MAX_ITERATIONS, MAX_THREADS, MAX_WORKERS, MIN_ITERATIONS,
    },
    Primitive, RequestError, ABI_VERSION,
};

/// First field of every request and response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct Header {
    /// Must be [`ABI_VERSION`].
    pub abi_version: u32,
    /// Size in bytes of the whole structure.
    pub size: u32,
}

impl Header {
    /// The header of a `T`.
    #[must_use]
    pub const fn of<T>() -> Self {
        #[allow(
            clippy::cast_possible_truncation,
            reason = "every wire type is far below 4 GiB"
        )]
        let size = core::mem::size_of::<T>() as u32;
        Self {
            abi_version: ABI_VERSION,
            size,
        }
    }

    const fn check<T>(self) -> Result<(), RequestError> {
        let expected = Self::of::<T>();
        if self.abi_version != ABI_VERSION {
            return Err(RequestError::AbiVersion {
                expected: ABI_VERSION,
                got: self.abi_version,
            });
        }
        if self.size != expected.size {
            return Err(RequestError::SizeMismatch {
                expected: expected.size,
                got: self.size,
            });
        }
        Ok(())
    }
}

/// Reads a `T` from the start of `bytes`, checking its length and header.
fn read<T: FromBytes + HasHeader>(bytes: &[u8]) -> Result<T, RequestError> {
    let (value, _) = T::read_from_prefix(bytes).map_err(|_| RequestError::InputTooSmall {
        needed: core::mem::size_of::<T>(),
        got: bytes.len(),
    })?;
    value.header().check::<T>()?;
    Ok(value)
}

/// Checks that an output buffer of `len` bytes can hold a `T`.
///
/// # Errors
/// [`RequestError::OutputTooSmall`] when it cannot.
pub const fn check_output<T>(len: usize) -> Result<(), RequestError> {
    let needed = core::mem::size_of::<T>();
    if len < needed {
        return Err(RequestError::OutputTooSmall { needed, got: len });
    }
    Ok(())
}

/// A wire type that starts with a [`Header`].
pub trait HasHeader {
    /// The header.
    fn header(&self) -> Header;
}

macro_rules! has_header {
    ($($t:ty),*) => {$(
        impl HasHeader for $t {
            fn header(&self) -> Header {
                self.header
            }
        }
    )*};
}

/// Input of `IOCTL_SYNCLAB_GET_INFO`: only the header, so version checks still happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct InfoRequest {
    /// The header.
    pub header: Header,
}

impl InfoRequest {
    /// A request for this ABI.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            header: Header::of::<Self>(),
        }
    }

    /// Parses and checks a request.
    ///
    /// # Errors
    /// Too short, wrong size field or wrong ABI version.
    pub fn parse(bytes: &[u8]) -> Result<Self, RequestError> {
        read(bytes)
    }
}

impl Default for InfoRequest {
    fn default() -> Self {
        Self::new()
    }
}

/// Which kernel the driver is running on.
pub mod kernel {
    /// The real Windows kernel.
    pub const WINDOWS: u32 = 1;
    /// ntsim, the emulated kernel on a host without Windows.
    pub const EMULATED: u32 = 2;
}

/// Output of `IOCTL_SYNCLAB_GET_INFO`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct InfoResponse {
    /// The header.
    pub header: Header,
    /// Driver version: major, minor, patch, 0.
    pub driver_version: [u16; 4],
    /// [`kernel::WINDOWS`] or [`kernel::EMULATED`].
    pub kernel: u32,
    /// Active processors (`KeQueryActiveProcessorCountEx(ALL_PROCESSOR_GROUPS)`).
    pub processor_count: u32,
    /// OS version as `RtlGetVersion` reports it: major, minor, build.
    pub os_version: [u32; 3],
    /// KMDF version the driver was built against: major, minor.
    pub kmdf_version: [u32; 2],
    /// Explicit padding; zero.
    pub reserved: u32,
    /// `KeQueryPerformanceCounter` frequency, ticks per second.
    pub timestamp_frequency: u64,
}

/// Stress-request flag: also run one DPC worker per processor at `DISPATCH_LEVEL`.
pub const FLAG_DPC: u32 = 0x1;
/// Stress-request flag: use the deliberately broken variant of the lock, which does not
/// exclude; the run must end in FAILURE.
pub const FLAG_BUSTED: u32 = 0x2;
/// Every defined flag bit.
pub const FLAGS_ALL: u32 = FLAG_DPC | FLAG_BUSTED;

/// Input of `IOCTL_SYNCLAB_RUN_STRESS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct StressRequest {
    /// The header.
    pub header: Header,
    /// [`Primitive`] identifier.
    pub primitive: u32,
    /// [`FLAG_DPC`], [`FLAG_BUSTED`].
    pub flags: u32,
    /// `PASSIVE_LEVEL` worker threads, `0..=MAX_THREADS`.
    pub threads: u32,
    /// Acquisitions per worker, `MIN_ITERATIONS..=MAX_ITERATIONS`.
    pub iterations: u32,
    /// Stop after this many milliseconds even if iterations remain; 0 = no deadline.
    pub duration_ms: u32,
    /// Busy time inside the lock per acquisition, microseconds, `0..=MAX_HOLD_US`.
    pub hold_us: u32,
    /// Use at most this many processors for DPC workers; 0 = all.
    pub max_processors: u32,
    /// Must be zero.
    pub reserved: u32,
}

impl StressRequest {
    /// A request for `primitive` with `threads` workers doing `iterations` each, no DPCs, no
    /// deadline, no hold time.
    #[must_use]
    pub const fn new(primitive: Primitive, threads: u32, iterations: u32) -> Self {
        Self {
            header: Header::of::<Self>(),
            primitive: primitive.id(),
            flags: 0,
            threads,
            iterations,
            duration_ms: 0,
            hold_us: 0,
            max_processors: 0,
            reserved: 0,
        }
    }

    /// Parses and validates a request.
    ///
    /// # Errors
    /// Any [`RequestError`] that [`StressRequest::validate`] or the header check reports.
    pub fn parse(bytes: &[u8]) -> Result<Self, RequestError> {
        let request: Self = read(bytes)?;
        request.validate()?;
        Ok(request)
    }

    /// Checks every field against [`crate::limits`].
    ///
    /// # Errors
    /// The first field that is out of range.
    pub const fn validate(&self) -> Result<Primitive, RequestError> {
        let Some(primitive) = Primitive::from_id(self.primitive) else {
            return Err(RequestError::UnknownPrimitive(self.primitive));
        };
        if self.flags & !FLAGS_ALL != 0 {
            return Err(RequestError::UnknownFlags(self.flags & !FLAGS_ALL));
        }
        if self.threads > MAX_THREADS {
            return Err(RequestError::ThreadsOutOfRange(self.threads));
        }
        if self.threads == 0 && self.flags & FLAG_DPC == 0 {
            return Err(RequestError::NoWorkers);
        }
        if self.iterations < MIN_ITERATIONS || self.iterations > MAX_ITERATIONS {
            return Err(RequestError::IterationsOutOfRange(self.iterations));
        }
        if self.duration_ms > MAX_DURATION_MS {
            return Err(RequestError::DurationOutOfRange(self.duration_ms));
        }
        if self.hold_us > MAX_HOLD_US {
            return Err(RequestError::HoldOutOfRange(self.hold_us));
        }
        if self.reserved != 0 {
            return Err(RequestError::ReservedNotZero);
        }
        Ok(primitive)
    }
}

/// What kind of context a worker ran in.
pub mod worker_kind {
    /// A system thread at `PASSIVE_LEVEL` that raises to take the lock.
    pub const THREAD: u32 = 1;
    /// A DPC at `DISPATCH_LEVEL`.
    pub const DPC: u32 = 2;
}

/// One worker's figures.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct WorkerStats {
    /// [`worker_kind::THREAD`] or [`worker_kind::DPC`].
    pub kind: u32,
    /// Processor the worker last ran on (DPC workers: their target processor).
    pub processor: u32,
    /// Acquisitions made.
    pub acquisitions: u64,
    /// Times the owner flag was already set on entry: another worker was inside.
    pub exclusion_violations: u64,
    /// Times the IRQL inside the lock was not `DISPATCH_LEVEL`.
    pub irql_violations: u64,
    /// Times the IRQL after release was not the IRQL before acquire.
    pub restore_violations: u64,
    /// Longest wait for the lock, nanoseconds.
    pub max_wait_ns: u64,
}

impl WorkerStats {
    /// Sum of the three kinds of violation.
    #[must_use]
    pub const fn violations(&self) -> u64 {
        self.exclusion_violations + self.irql_violations + self.restore_violations
    }
}

/// Verdict values.
pub mod verdict {
    /// Every invariant held and the protected counter equals the acquisitions.
    pub const SUCCESS: u32 = 1;
    /// At least one violation, or a lost update.
    pub const FAILURE: u32 = 2;
}

/// Output of `IOCTL_SYNCLAB_RUN_STRESS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct StressResponse {
    /// The header.
    pub header: Header,
    /// The request, echoed.
    pub request: StressRequest,
    /// Processors the driver saw.
    pub processors: u32,
    /// Entries of `workers` in use: threads first, then DPC workers.
    pub worker_count: u32,
    /// [`verdict::SUCCESS`] or [`verdict::FAILURE`].
    pub verdict: u32,
    /// Explicit padding; zero.
    pub reserved: u32,
    /// Acquisitions across workers.
    pub total_acquisitions: u64,
    /// Final value of the non-atomic counter the lock protects.
    pub protected_counter: u64,
    /// Sum of the workers' exclusion violations.
    pub exclusion_violations: u64,
    /// Sum of the workers' IRQL-inside violations.
    pub irql_violations: u64,
    /// Sum of the workers' IRQL-restore violations.
    pub restore_violations: u64,
    /// Wall time of the run, nanoseconds.
    pub elapsed_ns: u64,
    /// Longest wait of any worker, nanoseconds.
    pub max_wait_ns: u64,
    /// Per-worker figures; the first `worker_count` are meaningful.
    pub workers: [WorkerStats; MAX_WORKERS],
}

impl StressResponse {
    /// A zeroed response with its header set.
    #[must_use]
    pub fn new(request: StressRequest) -> Self {
        let mut response = Self::new_zeroed();
        response.header = Header::of::<Self>();
        response.request = request;
        response
    }

    /// Parses a response returned by the driver.
    ///
    /// # Errors
    /// Too short, wrong size field or wrong ABI version.
    pub fn parse(bytes: &[u8]) -> Result<Self, RequestError> {
        read(bytes)
    }

    /// The workers in use.
    #[must_use]
    pub fn workers(&self) -> &[WorkerStats] {
        let n = (self.worker_count as usize).min(MAX_WORKERS);
        &self.workers[..n]
    }

    /// Sum of all violations.
    #[must_use]
    pub const fn violations(&self) -> u64 {
        self.exclusion_violations + self.irql_violations + self.restore_violations
    }
}

impl InfoResponse {
    /// Parses a response returned by the driver.
    ///
    /// # Errors
    /// Too short, wrong size field or wrong ABI version.
    pub fn parse(bytes: &[u8]) -> Result<Self, RequestError> {
        read(bytes)
    }
}

has_header!(InfoRequest, InfoResponse, StressRequest, StressResponse);

// The ABI is frozen by these sizes: a change is an ABI_VERSION bump.
const _: () = assert!(core::mem::size_of::<Header>() == 8);
const _: () = assert!(core::mem::size_of::<InfoRequest>() == 8);
const _: () = assert!(core::mem::size_of::<InfoResponse>() == 56);
const _: () = assert!(core::mem::size_of::<StressRequest>() == 40);
const _: () = assert!(core::mem::size_of::<WorkerStats>() == 48);
const _: () =
    assert!(core::mem::size_of::<StressResponse>() == 8 + 40 + 16 + 56 + 48 * MAX_WORKERS);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::*;

    fn bytes<T: IntoBytes + Immutable>(value: &T) -> &[u8] {
        value.as_bytes()
    }

    #[test]
    fn valid_request_round_trips() {
        let mut r = StressRequest::new(Primitive::SpinLock, 8, 1000);
        r.flags = FLAG_DPC;
        assert_eq!(StressRequest::parse(bytes(&r)), Ok(r));
    }

    #[test]
    fn short_buffer_is_buffer_too_small() {
        let r = StressRequest::new(Primitive::SpinLock, 8, 1000);
        let err = StressRequest::parse(&bytes(&r)[..20]).unwrap_err();
        assert_eq!(
            err,
            RequestError::InputTooSmall {
                needed: 40,
                got: 20
            }
        );
        assert_eq!(err.ntstatus(), STATUS_BUFFER_TOO_SMALL);
    }

    #[test]
    fn wrong_abi_is_revision_mismatch() {
        let mut r = StressRequest::new(Primitive::SpinLock, 8, 1000);
        r.header.abi_version = 99;
        let err = StressRequest::parse(bytes(&r)).unwrap_err();
        assert_eq!(err.ntstatus(), STATUS_REVISION_MISMATCH);
    }

    #[test]
    fn wrong_size_field_is_length_mismatch() {
        let mut r = StressRequest::new(Primitive::SpinLock, 8, 1000);
        r.header.size = 12;
        let err = StressRequest::parse(bytes(&r)).unwrap_err();
        assert_eq!(err.ntstatus(), STATUS_INFO_LENGTH_MISMATCH);
    }

    #[test]
    fn each_range_is_checked() {
        type Case = (fn(&mut StressRequest), RequestError);
        let base = StressRequest::new(Primitive::SpinLock, 8, 1000);
        let cases: [Case; 8] = [
            (
                |r| r.threads = MAX_THREADS + 1,
                RequestError::ThreadsOutOfRange(MAX_THREADS + 1),
            ),
            (|r| r.threads = 0, RequestError::NoWorkers),
            (|r| r.iterations = 0, RequestError::IterationsOutOfRange(0)),
            (
                |r| r.iterations = MAX_ITERATIONS + 1,
                RequestError::IterationsOutOfRange(MAX_ITERATIONS + 1),
            ),
            (
                |r| r.duration_ms = MAX_DURATION_MS + 1,
                RequestError::DurationOutOfRange(MAX_DURATION_MS + 1),
            ),
            (
                |r| r.hold_us = MAX_HOLD_US + 1,
                RequestError::HoldOutOfRange(MAX_HOLD_US + 1),
            ),
            (|r| r.primitive = 77, RequestError::UnknownPrimitive(77)),
            (|r| r.flags = 0x80, RequestError::UnknownFlags(0x80)),
        ];
        for (mutate, expected) in cases {
            let mut r = base;
            mutate(&mut r);
            assert_eq!(StressRequest::parse(bytes(&r)), Err(expected));
        }
        let mut r = base;
        r.reserved = 1;
        assert_eq!(r.validate(), Err(RequestError::ReservedNotZero));
        // threads = 0 is fine when DPC workers are asked for.
        let mut r = base;
        r.threads = 0;
        r.flags = FLAG_DPC;
        assert_eq!(r.validate(), Ok(Primitive::SpinLock));
    }

    #[test]
    fn every_error_maps_to_a_named_status() {
        let errors = [
            RequestError::InputTooSmall { needed: 1, got: 0 },
            RequestError::OutputTooSmall { needed: 1, got: 0 },
            RequestError::SizeMismatch {
                expected: 1,
                got: 0,
            },
            RequestError::AbiVersion {
                expected: 1,
                got: 0,
            },
            RequestError::UnknownPrimitive(0),
            RequestError::UnknownFlags(4),
            RequestError::ThreadsOutOfRange(65),
            RequestError::NoWorkers,
            RequestError::IterationsOutOfRange(0),
            RequestError::DurationOutOfRange(0),
            RequestError::HoldOutOfRange(0),
            RequestError::ReservedNotZero,
        ];
        for e in errors {
            assert!(name(e.ntstatus()).is_some(), "{e:?}");
            assert!(e.ntstatus() < 0, "{e:?} must be an error status");
        }
    }

    #[test]
    fn output_check() {
        assert!(check_output::<StressResponse>(core::mem::size_of::<StressResponse>()).is_ok());
        assert_eq!(
            check_output::<InfoResponse>(10),
            Err(RequestError::OutputTooSmall {
                needed: 56,
                got: 10
            })
        );
    }
}
