//! Fixed-layout request and response structures.
//!
//! Every type is `#[repr(C)]` with explicit padding, its size asserted at compile time, and is
//! read from a byte buffer with `zerocopy` (a copy: alignment of the buffer does not matter).

use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

use crate::{
    limits::{
        worst_dpc_acquisition_us, BUSTED_OVERLAP_US, DPC_BATCH_BUDGET_US, DPC_INVOCATION_MAX_US,
        MAX_DELAY_US, MAX_DISPATCH_LONG_HOLD_US, MAX_DPC_WORKERS, MAX_DURATION_MS, MAX_HOLD_US,
        MAX_ITERATIONS, MAX_LONG_HOLD_US, MAX_PER_MILLE, MAX_STUTTER_MS, MAX_THREADS, MAX_WORKERS,
    },
    primitive::{context, Variant},
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
/// Stress-request flag: run the primitive's busted control, which must end in FAILURE.
///
/// For an exclusive primitive, a "lock" that excludes nobody; for a shared one, writers take the
/// real lock shared. Either way holders wait (bounded) for a second worker to come inside, so
/// they overlap by design.
pub const FLAG_BUSTED: u32 = 0x2;
/// Stress-request flag: thread workers raise to `APC_LEVEL` around each acquisition.
pub const FLAG_APC_LEVEL: u32 = 0x4;
/// Every defined flag bit.
pub const FLAGS_ALL: u32 = FLAG_DPC | FLAG_BUSTED | FLAG_APC_LEVEL;

/// Input of `IOCTL_SYNCLAB_RUN_STRESS`: the primitive, its variant, and locktorture's workload
/// knobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct StressRequest {
    /// The header.
    pub header: Header,
    /// [`Primitive`] identifier.
    pub primitive: u32,
    /// Index into the primitive's [`crate::primitive::PrimitiveInfo::variants`]; 0 = default.
    pub variant: u32,
    /// [`FLAG_DPC`], [`FLAG_BUSTED`], [`FLAG_APC_LEVEL`].
    pub flags: u32,
    /// Thread workers taking the lock exclusively.
    pub writers: u32,
    /// Thread workers taking it shared (shared primitives only).
    pub readers: u32,
    /// Acquisitions per worker, `MIN_ITERATIONS..=MAX_ITERATIONS`; 0 = driven by `duration_ms`.
    pub iterations: u32,
    /// Stop after this many milliseconds; 0 = when the iterations are done.
    pub duration_ms: u32,
    /// Busy time inside the lock per acquisition, microseconds, `0..=MAX_HOLD_US`.
    pub hold_us: u32,
    /// The occasional long hold, microseconds.
    pub long_hold_us: u32,
    /// Probability of a long hold per acquisition, in thousandths.
    pub long_hold_per_mille: u32,
    /// Busy time outside the lock between acquisitions, microseconds.
    pub delay_us: u32,
    /// Stutter: run this many milliseconds, pause as long, and so on; 0 = no pauses.
    pub stutter_ms: u32,
    /// Use at most this many processors (thread affinity and DPC workers); 0 = all.
    pub max_processors: u32,
    /// Must be zero.
    pub reserved: u32,
    /// Seed of every random choice (long holds); the same seed gives the same choices.
    pub seed: u64,
}

/// What a validated request will run: the primitive, its variant and its worker contexts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The primitive.
    pub primitive: Primitive,
    /// The variant's row.
    pub variant: &'static Variant,
    /// The thread workers' context bit (`PASSIVE` or `APC`).
    pub thread_context: u32,
}

impl StressRequest {
    /// A request for `primitive`'s default variant with `writers` thread workers doing
    /// `iterations` each, no readers, no DPCs, no deadline, no hold time, seed 1.
    #[must_use]
    pub const fn new(primitive: Primitive, writers: u32, iterations: u32) -> Self {
        Self {
            header: Header::of::<Self>(),
            primitive: primitive.id(),
            variant: 0,
            flags: 0,
            writers,
            readers: 0,
            iterations,
            duration_ms: 0,
            hold_us: 0,
            long_hold_us: 0,
            long_hold_per_mille: 0,
            delay_us: 0,
            stutter_ms: 0,
            max_processors: 0,
            reserved: 0,
            seed: 1,
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

    /// Thread workers: writers plus readers.
    #[must_use]
    pub const fn threads(&self) -> u32 {
        self.writers.saturating_add(self.readers)
    }

    /// DPC workers on a machine with `processors` processors: one per processor used.
    #[must_use]
    pub const fn dpc_workers(&self, processors: u32) -> u32 {
        if self.flags & FLAG_DPC == 0 {
            return 0;
        }
        let mut n = processors;
        if self.max_processors != 0 && self.max_processors < n {
            n = self.max_processors;
        }
        if n > MAX_DPC_WORKERS {
            n = MAX_DPC_WORKERS;
        }
        n
    }

    /// The longest a holder keeps the lock, microseconds (the long hold when it can occur, the
    /// busted controls' overlap wait, and at least 1 for the checks themselves).
    #[must_use]
    pub const fn max_hold_us(&self) -> u32 {
        let mut hold = if self.hold_us == 0 { 1 } else { self.hold_us };
        if self.long_hold_per_mille > 0 && self.long_hold_us > hold {
            hold = self.long_hold_us;
        }
        if self.flags & FLAG_BUSTED != 0 {
            hold += BUSTED_OVERLAP_US;
        }
        hold
    }

    /// Checks every field against [`crate::limits`] and the registry (variant, contexts,
    /// readers).
    ///
    /// # Errors
    /// The first field or combination that is not allowed.
    pub const fn validate(&self) -> Result<Plan, RequestError> {
        let Some(primitive) = Primitive::from_id(self.primitive) else {
            return Err(RequestError::UnknownPrimitive(self.primitive));
        };
        let info = primitive.info();
        let Some(variant) = info.variant(self.variant) else {
            return Err(RequestError::UnknownVariant {
                primitive: info.name,
                variant: self.variant,
                count: info.variants.len(),
            });
        };
        if self.flags & !FLAGS_ALL != 0 {
            return Err(RequestError::UnknownFlags(self.flags & !FLAGS_ALL));
        }
        if self.writers > MAX_THREADS
            || self.readers > MAX_THREADS
            || self.writers + self.readers > MAX_THREADS
        {
            return Err(RequestError::ThreadsOutOfRange(self.threads()));
        }
        if self.threads() == 0 && self.flags & FLAG_DPC == 0 {
            return Err(RequestError::NoWorkers);
        }
        if self.iterations == 0 && self.duration_ms == 0 {
            return Err(RequestError::NoEnd);
        }
        if self.iterations > MAX_ITERATIONS {
            return Err(RequestError::IterationsOutOfRange(self.iterations));
        }
        if self.duration_ms > MAX_DURATION_MS {
            return Err(RequestError::DurationOutOfRange(self.duration_ms));
        }
        if self.hold_us > MAX_HOLD_US {
            return Err(RequestError::HoldOutOfRange(self.hold_us));
        }
        let long_max = if variant.held_at_dispatch() {
            MAX_DISPATCH_LONG_HOLD_US
        } else {
            MAX_LONG_HOLD_US
        };
        if self.long_hold_us > long_max {
            return Err(RequestError::LongHoldOutOfRange {
                value: self.long_hold_us,
                max: long_max,
            });
        }
        if self.long_hold_per_mille > MAX_PER_MILLE {
            return Err(RequestError::PerMilleOutOfRange(self.long_hold_per_mille));
        }
        if self.delay_us > MAX_DELAY_US {
            return Err(RequestError::DelayOutOfRange(self.delay_us));
        }
        if self.stutter_ms > MAX_STUTTER_MS {
            return Err(RequestError::StutterOutOfRange(self.stutter_ms));
        }
        if self.reserved != 0 {
            return Err(RequestError::ReservedNotZero);
        }
        if self.readers > 0 && !info.shared {
            return Err(RequestError::ReadersOnExclusive { title: info.title });
        }
        let thread_context = if self.flags & FLAG_APC_LEVEL != 0 {
            context::APC
        } else {
            context::PASSIVE
        };
        if self.threads() > 0 && variant.contexts & thread_context == 0 {
            return Err(RequestError::IllegalContext {
                title: info.title,
                variant: variant.name,
                context: thread_context,
            });
        }
        if self.flags & FLAG_DPC != 0 && variant.contexts & context::DPC == 0 {
            return Err(RequestError::IllegalContext {
                title: info.title,
                variant: variant.name,
                context: context::DPC,
            });
        }
        Ok(Plan {
            primitive,
            variant,
            thread_context,
        })
    }

    /// [`StressRequest::validate`], then the bound on time at `DISPATCH_LEVEL` that depends on
    /// the machine: with `processors` processors, one DPC invocation must stay within
    /// [`DPC_INVOCATION_MAX_US`].
    ///
    /// # Errors
    /// As `validate`, and [`RequestError::DispatchBudget`].
    pub const fn validate_for(&self, processors: u32) -> Result<Plan, RequestError> {
        let plan = match self.validate() {
            Ok(plan) => plan,
            Err(e) => return Err(e),
        };
        let dpcs = self.dpc_workers(processors);
        if dpcs > 0 && plan.variant.held_at_dispatch() {
            let workers = self.threads() + dpcs;
            let max_hold_us = self.max_hold_us();
            let worst_us = worst_dpc_acquisition_us(workers, max_hold_us, self.delay_us);
            if worst_us + DPC_BATCH_BUDGET_US as u64 > DPC_INVOCATION_MAX_US as u64 {
                return Err(RequestError::DispatchBudget {
                    workers,
                    max_hold_us,
                    worst_us,
                });
            }
        }
        Ok(plan)
    }
}

/// What kind of context a worker ran in.
pub mod worker_kind {
    /// A system thread (at `PASSIVE_LEVEL`, or raised to `APC_LEVEL` around each acquisition).
    pub const THREAD: u32 = 1;
    /// A DPC at `DISPATCH_LEVEL`.
    pub const DPC: u32 = 2;
    /// A threaded DPC (`KeInitializeThreadedDpc`).
    pub const THREADED_DPC: u32 = 3;
}

/// What a worker does with the lock.
pub mod role {
    /// Takes it exclusively and increments the protected counter.
    pub const WRITER: u32 = 1;
    /// Takes it shared and reads.
    pub const READER: u32 = 2;
}

/// Buckets of the acquire-latency histogram: bucket 0 holds 0 ns, bucket `k` holds
/// `[2^(k-1), 2^k)` ns, the last one everything above.
pub const HISTOGRAM_BUCKETS: usize = 40;

/// The histogram bucket of a latency of `ns` nanoseconds.
#[must_use]
pub const fn histogram_bucket(ns: u64) -> usize {
    let bits = (u64::BITS - ns.leading_zeros()) as usize;
    if bits >= HISTOGRAM_BUCKETS {
        HISTOGRAM_BUCKETS - 1
    } else {
        bits
    }
}

/// The exclusive upper bound of bucket `k`, nanoseconds.
#[must_use]
pub const fn histogram_upper_ns(k: usize) -> u64 {
    if k >= 63 {
        u64::MAX
    } else {
        1 << k
    }
}

/// One worker's figures.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct WorkerStats {
    /// [`worker_kind`].
    pub kind: u32,
    /// [`role`].
    pub role: u32,
    /// Processor the worker last ran on (DPC workers: their target processor).
    pub processor: u32,
    /// IRQL the worker asked for the lock from.
    pub irql: u32,
    /// Holds made (writes + reads).
    pub acquisitions: u64,
    /// Exclusive holds.
    pub writes: u64,
    /// Shared holds.
    pub reads: u64,
    /// Acquisitions that found the lock held when they asked for it (the owner flag or the
    /// reader count already set, or a try that failed).
    pub contended: u64,
    /// Times the owner flag was already set on entry: another holder was inside.
    pub exclusion_violations: u64,
    /// A writer inside while readers were, or readers inside while a writer was.
    pub reader_violations: u64,
    /// Times the IRQL inside the lock was not the family's.
    pub irql_violations: u64,
    /// Times the IRQL after release was not the IRQL before acquire.
    pub restore_violations: u64,
    /// Times `KeAreApcsDisabled`/`KeAreAllApcsDisabled` inside disagreed with the family's
    /// contract.
    pub apc_violations: u64,
    /// Times the recursion depth the kernel reported was not the depth acquired.
    pub recursion_violations: u64,
    /// Longest wait for the lock, nanoseconds.
    pub max_wait_ns: u64,
    /// Sum of the waits, nanoseconds.
    pub total_wait_ns: u64,
    /// Shared holds converted to exclusive (or exclusive to shared) by the variant.
    pub conversions: u64,
}

impl WorkerStats {
    /// Sum of every kind of violation.
    #[must_use]
    pub const fn violations(&self) -> u64 {
        self.exclusion_violations
            + self.reader_violations
            + self.irql_violations
            + self.restore_violations
            + self.apc_violations
            + self.recursion_violations
    }
}

/// Verdict values.
pub mod verdict {
    /// No violation, the counter exact, and contention observed: the run could have caught a
    /// broken lock and did not.
    pub const SUCCESS: u32 = 1;
    /// At least one violation, or a lost update.
    pub const FAILURE: u32 = 2;
    /// No violation, but nothing shows the run could have failed (see
    /// [`super::inconclusive`]).
    pub const INCONCLUSIVE: u32 = 3;
}

/// Why a clean run is INCONCLUSIVE.
pub mod inconclusive {
    /// Not inconclusive.
    pub const NONE: u32 = 0;
    /// No acquisition found the lock held, and no two readers overlapped.
    pub const NO_CONTENTION: u32 = 1;
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
    /// Entries of `workers` in use: writer threads, reader threads, then DPC workers.
    pub worker_count: u32,
    /// [`verdict`].
    pub verdict: u32,
    /// [`inconclusive`].
    pub inconclusive_reason: u32,
    /// 1 when the run was stopped early (its request cancelled, its handle closed, the driver
    /// unloading): the figures are those of the part that ran, and the verdict judges them.
    pub cancelled: u32,
    /// Explicit padding; zero.
    pub reserved: u32,
    /// Acquisitions across workers (writes + reads).
    pub total_acquisitions: u64,
    /// Exclusive acquisitions.
    pub writes: u64,
    /// Shared acquisitions.
    pub reads: u64,
    /// Final value of the non-atomic counter the lock protects (one per write).
    pub protected_counter: u64,
    /// Acquisitions that found the lock held.
    pub contended: u64,
    /// Sum of the workers' exclusion violations.
    pub exclusion_violations: u64,
    /// Sum of the workers' reader violations.
    pub reader_violations: u64,
    /// Sum of the workers' IRQL-inside violations.
    pub irql_violations: u64,
    /// Sum of the workers' IRQL-restore violations.
    pub restore_violations: u64,
    /// Sum of the workers' APC-state violations.
    pub apc_violations: u64,
    /// Sum of the workers' recursion-depth violations.
    pub recursion_violations: u64,
    /// Most readers seen inside at once.
    pub max_concurrent_readers: u64,
    /// Wall time of the run, nanoseconds.
    pub elapsed_ns: u64,
    /// Longest wait of any worker, nanoseconds.
    pub max_wait_ns: u64,
    /// What one timestamp pair (two `KeQueryPerformanceCounter` reads) costs, nanoseconds: every
    /// wait figure includes it.
    pub timing_cost_ns: u64,
    /// DPC invocations.
    pub dpc_invocations: u64,
    /// The longest DPC invocation, nanoseconds: time at `DISPATCH_LEVEL` in one go.
    pub dpc_max_invocation_ns: u64,
    /// Time DPC workers spent in their invocations, nanoseconds.
    pub dpc_busy_ns: u64,
    /// Acquire latencies, log2 buckets ([`histogram_bucket`]).
    pub latency_histogram: [u64; HISTOGRAM_BUCKETS],
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

    /// Writes whose update the counter lost.
    #[must_use]
    pub const fn lost_updates(&self) -> u64 {
        self.writes.saturating_sub(self.protected_counter)
    }

    /// Sum of all violations, lost updates included.
    #[must_use]
    pub const fn violations(&self) -> u64 {
        self.exclusion_violations
            + self.reader_violations
            + self.irql_violations
            + self.restore_violations
            + self.apc_violations
            + self.recursion_violations
            + self.lost_updates()
            + self.protected_counter.saturating_sub(self.writes)
    }

    /// The verdict these figures earn: FAILURE on any violation or lost update; otherwise
    /// SUCCESS only with evidence that the run could have failed (an acquisition that found the
    /// lock held, or two readers inside at once), INCONCLUSIVE without. Returns the verdict and
    /// the [`inconclusive`] reason.
    #[must_use]
    pub const fn decide(&self) -> (u32, u32) {
        if self.violations() != 0 {
            (verdict::FAILURE, inconclusive::NONE)
        } else if self.contended > 0 || self.max_concurrent_readers > 1 {
            (verdict::SUCCESS, inconclusive::NONE)
        } else {
            (verdict::INCONCLUSIVE, inconclusive::NO_CONTENTION)
        }
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
const _: () = assert!(core::mem::size_of::<StressRequest>() == 72);
const _: () = assert!(core::mem::size_of::<WorkerStats>() == 16 + 13 * 8);
const _: () = assert!(
    core::mem::size_of::<StressResponse>()
        == 8 + 72 + 24 + 18 * 8 + 8 * HISTOGRAM_BUCKETS + (16 + 13 * 8) * MAX_WORKERS
);

#[cfg(test)]
mod tests {
    use std::string::ToString;

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
                needed: 72,
                got: 20
            }
        );
        assert_eq!(err.ntstatus(), STATUS_BUFFER_TOO_SMALL);
    }

    #[test]
    fn wrong_abi_is_revision_mismatch() {
        let mut r = StressRequest::new(Primitive::SpinLock, 8, 1000);
        r.header.abi_version = 1;
        let err = StressRequest::parse(bytes(&r)).unwrap_err();
        assert_eq!(err.ntstatus(), STATUS_REVISION_MISMATCH);
    }

    #[test]
    fn wrong_size_field_is_length_mismatch() {
        let mut r = StressRequest::new(Primitive::SpinLock, 8, 1000);
        r.header.size = 40;
        let err = StressRequest::parse(bytes(&r)).unwrap_err();
        assert_eq!(err.ntstatus(), STATUS_INFO_LENGTH_MISMATCH);
    }

    #[test]
    fn each_range_is_checked() {
        type Case = (fn(&mut StressRequest), RequestError);
        let base = StressRequest::new(Primitive::Resource, 8, 1000);
        let cases: [Case; 16] = [
            (
                |r| r.writers = MAX_THREADS + 1,
                RequestError::ThreadsOutOfRange(MAX_THREADS + 1),
            ),
            (
                |r| r.readers = MAX_THREADS - 7,
                RequestError::ThreadsOutOfRange(MAX_THREADS + 1),
            ),
            (|r| r.writers = 0, RequestError::NoWorkers),
            (|r| r.iterations = 0, RequestError::NoEnd),
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
            (
                |r| r.long_hold_us = MAX_LONG_HOLD_US + 1,
                RequestError::LongHoldOutOfRange {
                    value: MAX_LONG_HOLD_US + 1,
                    max: MAX_LONG_HOLD_US,
                },
            ),
            (
                |r| r.long_hold_per_mille = 1001,
                RequestError::PerMilleOutOfRange(1001),
            ),
            (
                |r| r.delay_us = MAX_DELAY_US + 1,
                RequestError::DelayOutOfRange(MAX_DELAY_US + 1),
            ),
            (
                |r| r.stutter_ms = MAX_STUTTER_MS + 1,
                RequestError::StutterOutOfRange(MAX_STUTTER_MS + 1),
            ),
            (|r| r.primitive = 77, RequestError::UnknownPrimitive(77)),
            (
                |r| r.variant = 9,
                RequestError::UnknownVariant {
                    primitive: "resource",
                    variant: 9,
                    count: 5,
                },
            ),
            (|r| r.flags = 0x80, RequestError::UnknownFlags(0x80)),
            (|r| r.reserved = 1, RequestError::ReservedNotZero),
            (
                |r| r.flags = FLAG_DPC,
                RequestError::IllegalContext {
                    title: "executive resource",
                    variant: "lite",
                    context: context::DPC,
                },
            ),
        ];
        for (mutate, expected) in cases {
            let mut r = base;
            mutate(&mut r);
            assert_eq!(StressRequest::parse(bytes(&r)), Err(expected));
        }
        // threads = 0 is fine when DPC workers are asked for; a duration alone ends a run.
        let mut r = StressRequest::new(Primitive::SpinLock, 0, 0);
        r.flags = FLAG_DPC;
        r.duration_ms = 10;
        assert!(r.validate().is_ok());
    }

    #[test]
    fn readers_need_a_shared_primitive() {
        let mut r = StressRequest::new(Primitive::FastMutex, 2, 10);
        r.readers = 2;
        let err = r.validate().unwrap_err();
        assert_eq!(
            err,
            RequestError::ReadersOnExclusive {
                title: "fast mutex"
            }
        );
        assert_eq!(err.ntstatus(), STATUS_INVALID_PARAMETER_MIX);
        r.primitive = Primitive::PushLock.id();
        assert!(r.validate().is_ok());
    }

    #[test]
    fn illegal_contexts_say_why() {
        let mut r = StressRequest::new(Primitive::FastMutex, 0, 10);
        r.flags = FLAG_DPC;
        let text = r.validate().unwrap_err().to_string();
        assert!(
            text.contains("fast mutex (plain) cannot be acquired at DISPATCH_LEVEL"),
            "{text}"
        );
        let mut r = StressRequest::new(Primitive::WdfWaitLock, 1, 10);
        r.flags = FLAG_APC_LEVEL;
        let err = r.validate().unwrap_err();
        assert_eq!(err.ntstatus(), STATUS_INVALID_PARAMETER_MIX);
        assert!(err.to_string().contains("at APC_LEVEL"), "{err}");
    }

    #[test]
    fn dispatch_time_is_bounded_per_dpc_invocation() {
        // One DPC alone with the longest hold fits; 64 threads + 8 DPCs at 100 us do not.
        let mut r = StressRequest::new(Primitive::SpinLock, 0, 10);
        r.flags = FLAG_DPC;
        r.hold_us = MAX_HOLD_US;
        assert!(r.validate_for(1).is_ok());
        r.writers = 64;
        let err = r.validate_for(8).unwrap_err();
        assert!(matches!(
            err,
            RequestError::DispatchBudget { workers: 72, .. }
        ));
        assert_eq!(err.ntstatus(), STATUS_INVALID_PARAMETER_MIX);
        // Locks held below DISPATCH_LEVEL have no DPC workers to bound.
        let r = StressRequest::new(Primitive::FastMutex, 64, 10);
        assert!(r.validate_for(64).is_ok());
    }

    #[test]
    fn verdict_needs_evidence() {
        let mut r = StressResponse::new(StressRequest::new(Primitive::SpinLock, 1, 1));
        r.writes = 10;
        r.protected_counter = 10;
        assert_eq!(
            r.decide(),
            (verdict::INCONCLUSIVE, inconclusive::NO_CONTENTION)
        );
        r.contended = 1;
        assert_eq!(r.decide(), (verdict::SUCCESS, inconclusive::NONE));
        r.protected_counter = 9;
        assert_eq!(r.decide().0, verdict::FAILURE, "a lost update fails");
        r.protected_counter = 10;
        r.contended = 0;
        r.max_concurrent_readers = 2;
        assert_eq!(r.decide().0, verdict::SUCCESS, "overlapping readers count");
        r.apc_violations = 1;
        assert_eq!(r.decide().0, verdict::FAILURE);
    }

    #[test]
    fn histogram_buckets_are_log2() {
        assert_eq!(histogram_bucket(0), 0);
        assert_eq!(histogram_bucket(1), 1);
        assert_eq!(histogram_bucket(2), 2);
        assert_eq!(histogram_bucket(3), 2);
        assert_eq!(histogram_bucket(1024), 11);
        assert_eq!(histogram_bucket(u64::MAX), HISTOGRAM_BUCKETS - 1);
        assert_eq!(histogram_upper_ns(11), 2048);
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
            RequestError::UnknownVariant {
                primitive: "spinlock",
                variant: 9,
                count: 4,
            },
            RequestError::UnknownFlags(8),
            RequestError::ThreadsOutOfRange(65),
            RequestError::NoWorkers,
            RequestError::NoEnd,
            RequestError::IterationsOutOfRange(0),
            RequestError::DurationOutOfRange(0),
            RequestError::HoldOutOfRange(0),
            RequestError::LongHoldOutOfRange { value: 1, max: 0 },
            RequestError::PerMilleOutOfRange(0),
            RequestError::DelayOutOfRange(0),
            RequestError::StutterOutOfRange(0),
            RequestError::ReservedNotZero,
            RequestError::ReadersOnExclusive { title: "x" },
            RequestError::IllegalContext {
                title: "x",
                variant: "y",
                context: context::DPC,
            },
            RequestError::DispatchBudget {
                workers: 1,
                max_hold_us: 1,
                worst_us: 1,
            },
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
