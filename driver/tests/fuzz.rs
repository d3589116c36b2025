//! A seeded IOCTL fuzzer through ntsim's I/O path, after the Device Path Exerciser.
//!
//! Every case is one `DeviceIoControl` (or one open) on a long-lived machine with the driver
//! loaded: IOCTL codes in and around our function range with every method and access bits, our
//! device type and foreign ones, and random codes; input and output lengths of zero, a few bytes,
//! exactly the structure, one byte less or more, oversized and 1 MiB; garbage bytes, valid
//! headers with garbage bodies, and `StressRequest`s with every field at and just beyond its
//! limit in random combinations; read-only and no-access handles, closed handles, and opens as a
//! standard user.
//!
//! Each case is checked against an oracle built from the protocol crate (`ctl_code`'s access
//! bits, `check_output`, `parse`, `validate_for`): the exact NTSTATUS the I/O manager or the
//! driver must answer with, always one the protocol names, and never a bug check. Requests that
//! are valid really run (clamped to a few workers and a few iterations, so they take
//! milliseconds) and must succeed with a well-formed response and a verdict that the figures
//! earn. Every [`RELOAD_EVERY`] cases, and at the end, the handle is closed and the driver
//! unloaded: no pool, handle or reference may leak; then it is loaded again.
//!
//! Reproducible: case `i` is generated from `SYNCLAB_FUZZ_SEED` and `i` alone (`proptest`'s
//! `ChaCha` `TestRng`), so a failure prints the seed and index to replay, and a failing case
//! is shrunk (while the machine is still alive) to a smaller input that fails the same way.
//!
//! - `SYNCLAB_FUZZ_SEED` (decimal or `0x` hex; default [`DEFAULT_SEED`]),
//! - `SYNCLAB_FUZZ_CASES` (default [`DEFAULT_CASES`], the CI smoke),
//! - `SYNCLAB_FUZZ_CASE=<index>` replays that one case alone, on a fresh machine.
//!
//! ```sh
//! SYNCLAB_FUZZ_CASES=1000000 cargo test --release -p synclab --test fuzz -- --nocapture
//! ```
#![cfg(not(windows))] // These tests run the driver on ntsim, the host kernel.

use std::{
    collections::BTreeMap,
    fmt::{self, Write as _},
    time::{Duration, Instant},
};

use ntsim::{Access, FileHandle, Identity, IoError, Machine, MachineConfig, UnloadReport};
use proptest::{
    collection::vec,
    prelude::{any, prop_oneof, Just, Strategy},
    strategy::{BoxedStrategy, ValueTree},
    test_runner::{Config, RngAlgorithm, TestRng, TestRunner},
};
use synclab_protocol::{
    ioctl::{
        ctl_code, device_type, method, required_access, FILE_DEVICE_SYNCLAB, FILE_READ_ACCESS,
        FILE_WRITE_ACCESS, IOCTL_SYNCLAB_GET_INFO, IOCTL_SYNCLAB_RUN_STRESS,
    },
    limits::{
        MAX_DELAY_US, MAX_DISPATCH_LONG_HOLD_US, MAX_DURATION_MS, MAX_HOLD_US, MAX_ITERATIONS,
        MAX_LONG_HOLD_US, MAX_PER_MILLE, MAX_STUTTER_MS, MAX_THREADS, MAX_WORKERS, MIN_ITERATIONS,
    },
    primitive::REGISTRY,
    status::{
        self, STATUS_ACCESS_DENIED, STATUS_INVALID_DEVICE_REQUEST, STATUS_INVALID_HANDLE,
        STATUS_SUCCESS,
    },
    wire::{
        check_output, kernel, verdict, Header, InfoRequest, InfoResponse, StressRequest,
        StressResponse, FLAG_BUSTED,
    },
    RequestError, ABI_VERSION,
};
use zerocopy::{FromBytes, IntoBytes};

/// Virtual processors of the fuzzed machine.
const CPUS: u32 = 2;
/// The seed when `SYNCLAB_FUZZ_SEED` is not set.
const DEFAULT_SEED: u64 = 0x5359_4E43_4C41_4221;
/// Cases when `SYNCLAB_FUZZ_CASES` is not set: the CI smoke, a few seconds in a debug build.
const DEFAULT_CASES: u64 = 3_000;
/// Close, unload (checking for leaks) and reload every this many cases.
const RELOAD_EVERY: u64 = 1_000;
/// Boot a new machine every this many cases (its debug log only grows).
const REBOOT_EVERY: u64 = 100_000;
/// Print progress every this many cases.
const PROGRESS_EVERY: u64 = 100_000;
/// Most shrinking steps after a failure.
const MAX_SHRINK_STEPS: u32 = 2_000;

const INFO_REQUEST_SIZE: usize = size_of::<InfoRequest>();
const INFO_RESPONSE_SIZE: usize = size_of::<InfoResponse>();
const STRESS_REQUEST_SIZE: usize = size_of::<StressRequest>();
const STRESS_RESPONSE_SIZE: usize = size_of::<StressResponse>();
/// The "huge" output buffer.
const HUGE: usize = 1 << 20;

/// Device types that are not ours: `FILE_DEVICE_UNKNOWN`, disk, file system, storage, 0 and
/// the extremes of the vendor range, and our neighbours.
const FOREIGN_TYPES: [u32; 8] = [
    0x22,
    0x07,
    0x09,
    0x2D,
    0x00,
    0x8000,
    0xFFFF,
    FILE_DEVICE_SYNCLAB + 1,
];

// ---------------------------------------------------------------------------------------------
// Cases.

/// How a case gets its handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Opener {
    /// The long-lived administrator's read/write handle.
    Main,
    /// A handle opened for this case alone, then closed.
    Fresh { identity: Identity, access: Access },
    /// A standard user's open, which must be refused; no IOCTL is sent.
    User { access: Access },
    /// A read/write handle closed before the IOCTL: `STATUS_INVALID_HANDLE`.
    Closed,
}

/// One fuzz case.
#[derive(Clone, PartialEq, Eq)]
struct Case {
    opener: Opener,
    code: u32,
    input: Vec<u8>,
    output_len: usize,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self.code;
        let mut input = String::new();
        for byte in &self.input {
            let _ = write!(input, "{byte:02x}");
        }
        let mut s = f.debug_struct("Case");
        s.field("opener", &self.opener)
            .field(
                "code",
                &format_args!(
                    "{code:#010x} (device type {:#x}, function {:#x}, method {}, access {})",
                    device_type(code),
                    (code >> 2) & 0xFFF,
                    method(code),
                    required_access(code)
                ),
            )
            .field("input_len", &self.input.len())
            .field("input", &input)
            .field("output_len", &self.output_len);
        if let Ok((request, _)) = StressRequest::read_from_prefix(&self.input) {
            s.field("input_as_stress_request", &request);
        }
        s.finish()
    }
}

/// An output length, relative to the structure the code's IOCTL answers with.
#[derive(Clone, Copy, Debug)]
enum OutLen {
    Zero,
    Tiny(usize),
    Exact,
    Minus1,
    Plus1,
    Over(usize),
    Huge,
    Any(usize),
}

impl OutLen {
    const fn resolve(self, size: usize) -> usize {
        match self {
            Self::Zero => 0,
            Self::Tiny(n) | Self::Any(n) => n,
            Self::Exact => size,
            Self::Minus1 => size - 1,
            Self::Plus1 => size + 1,
            Self::Over(extra) => size + extra,
            Self::Huge => HUGE,
        }
    }
}

/// How a generated request's bytes are cut or extended.
#[derive(Clone, Debug)]
enum Length {
    Exact,
    Truncate(usize),
    Extend(Vec<u8>),
}

impl Length {
    fn apply(&self, mut bytes: Vec<u8>) -> Vec<u8> {
        match self {
            Self::Exact => {}
            Self::Truncate(n) => bytes.truncate(*n),
            Self::Extend(more) => bytes.extend_from_slice(more),
        }
        bytes
    }
}

fn length() -> impl Strategy<Value = Length> {
    prop_oneof![
        12 => Just(Length::Exact),
        2 => (0..STRESS_REQUEST_SIZE).prop_map(Length::Truncate),
        1 => Just(Length::Truncate(STRESS_REQUEST_SIZE - 1)),
        1 => any::<u8>().prop_map(|b| Length::Extend(vec![b])),
        1 => vec(any::<u8>(), 2..64).prop_map(Length::Extend),
    ]
}

/// A `u32` field: usually `typical`, often exactly `limit` or one past it, sometimes an extreme.
fn around(limit: u32, typical: impl Strategy<Value = u32> + 'static) -> BoxedStrategy<u32> {
    prop_oneof![
        8 => typical,
        2 => Just(limit),
        2 => Just(limit.saturating_add(1)),
        1 => Just(0_u32),
        1 => Just(u32::MAX),
        1 => any::<u32>(),
    ]
    .boxed()
}

fn header(size: u32) -> impl Strategy<Value = Header> {
    let abi = prop_oneof![
        14 => Just(ABI_VERSION),
        1 => Just(ABI_VERSION - 1),
        1 => Just(ABI_VERSION + 1),
        1 => Just(0_u32),
        1 => any::<u32>(),
    ];
    let size = prop_oneof![
        14 => Just(size),
        1 => Just(size - 1),
        1 => Just(size + 1),
        1 => Just(0_u32),
        1 => prop_oneof![Just(8_u32), Just(56), Just(72), Just(u32::MAX)],
        1 => any::<u32>(),
    ];
    (abi, size).prop_map(|(abi_version, size)| Header { abi_version, size })
}

#[allow(
    clippy::cast_possible_truncation,
    reason = "the wire structures are far below 4 GiB"
)]
const fn wire_size(size: usize) -> u32 {
    size as u32
}

/// A `StressRequest` with every field at, near or past its limit, in random combinations.
fn boundary_request() -> impl Strategy<Value = StressRequest> {
    let primitive = prop_oneof![
        10 => 1..=10_u32,
        1 => Just(0_u32),
        1 => Just(11_u32),
        1 => any::<u32>(),
    ];
    let variant = prop_oneof![8 => 0..=5_u32, 1 => Just(u32::MAX), 1 => any::<u32>()];
    let flags = prop_oneof![8 => 0..=7_u32, 1 => 8..=0xFF_u32, 1 => any::<u32>()];
    let writers = around(MAX_THREADS, 0..=4_u32);
    let readers =
        prop_oneof![6 => Just(0_u32), 3 => 1..=3_u32, 2 => around(MAX_THREADS, 0..=4_u32)];
    let iterations = around(MAX_ITERATIONS, MIN_ITERATIONS..=50);
    let duration =
        prop_oneof![6 => Just(0_u32), 2 => 1..=20_u32, 2 => around(MAX_DURATION_MS, 0..=20_u32)];
    let hold = around(MAX_HOLD_US, 0..=3_u32);
    let long_hold = prop_oneof![
        4 => Just(0_u32),
        2 => 0..=50_u32,
        1 => Just(MAX_DISPATCH_LONG_HOLD_US),
        1 => Just(MAX_DISPATCH_LONG_HOLD_US + 1),
        1 => Just(MAX_LONG_HOLD_US),
        1 => Just(MAX_LONG_HOLD_US + 1),
        1 => any::<u32>(),
    ];
    let per_mille = around(MAX_PER_MILLE, 0..=10_u32);
    let delay = around(MAX_DELAY_US, 0..=3_u32);
    let stutter = prop_oneof![8 => Just(0_u32), 2 => around(MAX_STUTTER_MS, 1..=5_u32)];
    let max_processors = prop_oneof![
        6 => 0..=CPUS + 1,
        1 => Just(64_u32),
        1 => Just(65_u32),
        1 => any::<u32>(),
    ];
    let reserved = prop_oneof![10 => Just(0_u32), 1 => Just(1_u32), 1 => any::<u32>()];
    (
        header(wire_size(STRESS_REQUEST_SIZE)),
        (primitive, variant, flags, writers, readers, iterations),
        (duration, hold, long_hold, per_mille, delay, stutter),
        (max_processors, reserved, any::<u64>()),
    )
        .prop_map(
            |(
                header,
                (primitive, variant, flags, writers, readers, iterations),
                (duration_ms, hold_us, long_hold_us, long_hold_per_mille, delay_us, stutter_ms),
                (max_processors, reserved, seed),
            )| StressRequest {
                header,
                primitive,
                variant,
                flags,
                writers,
                readers,
                iterations,
                duration_ms,
                hold_us,
                long_hold_us,
                long_hold_per_mille,
                delay_us,
                stutter_ms,
                max_processors,
                reserved,
                seed,
            },
        )
}

/// A `StressRequest` that is valid far more often than not: a registry row and variant, a few
/// workers, a few iterations.
fn plausible_request() -> impl Strategy<Value = StressRequest> {
    (
        0..REGISTRY.len(),
        0..=4_u32,
        // FLAG_DPC and FLAG_APC_LEVEL freely; the busted control (slower) one time in eight.
        (0..8_u32, 0..=7_u32).prop_map(|(one_in_eight, flags)| {
            if one_in_eight == 0 {
                flags | FLAG_BUSTED
            } else {
                flags & !FLAG_BUSTED
            }
        }),
        (0..=3_u32, 0..=2_u32),
        (1..=50_u32, prop_oneof![4 => Just(0_u32), 1 => 1..=10_u32]),
        (0..=2_u32, 0..=20_u32, 0..=20_u32, 0..=2_u32),
        (0..=CPUS, any::<u64>()),
    )
        .prop_map(
            |(
                row,
                variant,
                flags,
                (writers, readers),
                (iterations, duration_ms),
                (hold_us, long_hold_us, long_hold_per_mille, delay_us),
                (max_processors, seed),
            )| {
                let info = &REGISTRY[row];
                let mut r = StressRequest::new(info.primitive, writers, iterations);
                r.variant = variant % wire_size(info.variants.len());
                r.flags = flags;
                r.readers = if info.shared { readers } else { 0 };
                r.duration_ms = duration_ms;
                r.hold_us = hold_us;
                r.long_hold_us = long_hold_us;
                r.long_hold_per_mille = long_hold_per_mille;
                r.delay_us = delay_us;
                r.max_processors = max_processors;
                r.seed = seed;
                r
            },
        )
}

/// Input bytes: garbage, tiny, info requests, headers with garbage bodies, stress requests.
fn input() -> impl Strategy<Value = Vec<u8>> {
    let info = (header(wire_size(INFO_REQUEST_SIZE)), length()).prop_map(|(header, length)| {
        let bytes = InfoRequest { header }.as_bytes().to_vec();
        match length {
            Length::Truncate(n) => length_capped(bytes, n % INFO_REQUEST_SIZE),
            other => other.apply(bytes),
        }
    });
    let garbage_body = (
        prop_oneof![
            Just(wire_size(STRESS_REQUEST_SIZE)),
            Just(wire_size(INFO_REQUEST_SIZE))
        ],
        prop_oneof![
            4 => Just(STRESS_REQUEST_SIZE - 8),
            1 => Just(STRESS_REQUEST_SIZE - 9),
            1 => Just(STRESS_REQUEST_SIZE - 7),
            1 => 0..200_usize,
        ],
        any::<u64>(),
    )
        .prop_map(|(size, body, noise)| {
            let mut bytes = Header {
                abi_version: ABI_VERSION,
                size,
            }
            .as_bytes()
            .to_vec();
            bytes.extend(noise_bytes(noise, body));
            bytes
        });
    prop_oneof![
        2 => Just(Vec::new()),
        3 => vec(any::<u8>(), 1..=8),
        2 => vec(any::<u8>(), 0..=256),
        1 => prop_oneof![
            vec(any::<u8>(), STRESS_REQUEST_SIZE),
            vec(any::<u8>(), INFO_REQUEST_SIZE),
        ],
        3 => info,
        4 => garbage_body,
        14 => (boundary_request(), length())
            .prop_map(|(r, length)| length.apply(r.as_bytes().to_vec())),
        4 => (plausible_request(), length())
            .prop_map(|(r, length)| length.apply(r.as_bytes().to_vec())),
    ]
}

fn length_capped(mut bytes: Vec<u8>, n: usize) -> Vec<u8> {
    bytes.truncate(n);
    bytes
}

/// `n` pseudo-random bytes from `seed` (a cheap body of garbage that still shrinks by length).
fn noise_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut state = seed;
    (0..n)
        .map(|_| splitmix64(&mut state).to_le_bytes()[0])
        .collect()
}

/// IOCTL codes: ours, every function/method/access around our range on our device type and on
/// foreign ones, and random codes.
fn code() -> impl Strategy<Value = u32> {
    let ours = (0x7F0..=0x810_u32, 0..4_u32, 0..4_u32);
    let foreign = (
        0..FOREIGN_TYPES.len(),
        0x7F0..=0x810_u32,
        0..4_u32,
        0..4_u32,
    );
    prop_oneof![
        10 => Just(IOCTL_SYNCLAB_RUN_STRESS),
        4 => Just(IOCTL_SYNCLAB_GET_INFO),
        6 => ours.prop_map(|(f, m, a)| ctl_code(FILE_DEVICE_SYNCLAB, f, m, a)),
        2 => foreign.prop_map(|(t, f, m, a)| ctl_code(FOREIGN_TYPES[t], f, m, a)),
        1 => (0..=0xFFFF_u32, 0..0x1000_u32, 0..4_u32, 0..4_u32)
            .prop_map(|(t, f, m, a)| ctl_code(t, f, m, a)),
        1 => any::<u32>(),
    ]
}

fn out_len() -> impl Strategy<Value = OutLen> {
    prop_oneof![
        2 => Just(OutLen::Zero),
        2 => (1..=8_usize).prop_map(OutLen::Tiny),
        8 => Just(OutLen::Exact),
        2 => Just(OutLen::Minus1),
        2 => Just(OutLen::Plus1),
        2 => (1..=4096_usize).prop_map(OutLen::Over),
        1 => Just(OutLen::Huge),
        2 => (0..=70_000_usize).prop_map(OutLen::Any),
    ]
}

fn access() -> impl Strategy<Value = Access> {
    (any::<bool>(), any::<bool>()).prop_map(|(read, write)| Access { read, write })
}

fn opener() -> impl Strategy<Value = Opener> {
    let identity = prop_oneof![Just(Identity::Administrator), Just(Identity::System)];
    // A standard user asking for any access at all.
    let user_access = prop_oneof![
        Just(Access::READ),
        Just(Access::READ_WRITE),
        Just(Access {
            read: false,
            write: true
        }),
    ];
    prop_oneof![
        85 => Just(Opener::Main),
        12 => (identity, access()).prop_map(|(identity, access)| Opener::Fresh { identity, access }),
        3 => user_access.prop_map(|access| Opener::User { access }),
        2 => Just(Opener::Closed),
    ]
}

/// Shrinks a request that would really run to a run of milliseconds: at most 4 thread
/// workers, 50 iterations or 10 ms, tiny holds and delays, no stutter, and a short busted run.
/// Requests the driver refuses are left as they are.
const fn cheap(mut r: StressRequest) -> StressRequest {
    if r.writers > 4 {
        r.writers = 4;
    }
    if r.readers > 4 - r.writers {
        r.readers = 4 - r.writers;
    }
    // A busted control's lone thread holder waits up to BUSTED_FIRST_OVERLAP_US (10 ms) per
    // acquisition for a second one: keep those runs to a couple of acquisitions.
    let busted = r.flags & FLAG_BUSTED != 0;
    let (most_iterations, most_ms) = if busted { (2, 3) } else { (50, 10) };
    if r.duration_ms > 0 {
        if r.duration_ms > most_ms {
            r.duration_ms = most_ms;
        }
    } else if r.iterations > most_iterations {
        r.iterations = most_iterations;
    }
    if r.hold_us > 5 {
        r.hold_us = 5;
    }
    if r.long_hold_us > 50 {
        r.long_hold_us = 50;
    }
    if r.delay_us > 5 {
        r.delay_us = 5;
    }
    r.stutter_ms = 0;
    r
}

/// Applies [`cheap`] to an input that is a valid request on this machine.
fn clamp_input(mut input: Vec<u8>) -> Vec<u8> {
    if let Ok(request) = StressRequest::parse(&input) {
        if request.validate_for(CPUS).is_ok() {
            let clamped = cheap(request);
            input[..STRESS_REQUEST_SIZE].copy_from_slice(clamped.as_bytes());
        }
    }
    input
}

fn case() -> BoxedStrategy<Case> {
    (opener(), code(), input(), out_len(), any::<bool>())
        .prop_map(|(opener, code, input, out, info_sized)| {
            let size = if code == IOCTL_SYNCLAB_GET_INFO
                || (code != IOCTL_SYNCLAB_RUN_STRESS && info_sized)
            {
                INFO_RESPONSE_SIZE
            } else {
                STRESS_RESPONSE_SIZE
            };
            Case {
                opener,
                code,
                input: clamp_input(input),
                output_len: out.resolve(size),
            }
        })
        .boxed()
}

// ---------------------------------------------------------------------------------------------
// Seeds.

const fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A runner whose RNG depends on the seed and the case index only, so any case replays alone.
fn runner_for(seed: u64, index: u64) -> TestRunner {
    let mut state = seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03);
    let mut bytes = [0_u8; 32];
    for chunk in bytes.chunks_exact_mut(8) {
        chunk.copy_from_slice(&splitmix64(&mut state).to_le_bytes());
    }
    let config = Config {
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

fn env_u64(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    let text = text.trim().replace('_', "");
    let value = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .map_or_else(|| text.parse(), |hex| u64::from_str_radix(hex, 16));
    Some(value.unwrap_or_else(|e| panic!("{name}={text:?} is not a number: {e}")))
}

// ---------------------------------------------------------------------------------------------
// The oracle.

/// What a case must get.
#[derive(Debug)]
enum Expected {
    /// The open is refused with `STATUS_ACCESS_DENIED`; nothing is sent.
    OpenDenied,
    /// The IOCTL fails with one of these NTSTATUS values.
    Status(Vec<i32>),
    /// `GET_INFO` succeeds.
    Info,
    /// The stress request runs and succeeds.
    Run(StressRequest),
}

fn status_of<T>(result: Result<T, RequestError>) -> Option<i32> {
    result.err().map(RequestError::ntstatus)
}

/// The answer the protocol defines for `case` on a handle with `access`.
fn expected(case: &Case, access: Access) -> Expected {
    if matches!(case.opener, Opener::User { .. }) {
        return Expected::OpenDenied;
    }
    if case.opener == Opener::Closed {
        return Expected::Status(vec![STATUS_INVALID_HANDLE]);
    }
    let required = required_access(case.code);
    if (required & FILE_READ_ACCESS != 0 && !access.read)
        || (required & FILE_WRITE_ACCESS != 0 && !access.write)
    {
        return Expected::Status(vec![STATUS_ACCESS_DENIED]);
    }
    // The driver checks the output buffer, then the input; when both are wrong either answer
    // is one the protocol defines.
    match case.code {
        IOCTL_SYNCLAB_GET_INFO => {
            let output = status_of(check_output::<InfoResponse>(case.output_len));
            let input = status_of(InfoRequest::parse(&case.input));
            match (output, input) {
                (None, None) => Expected::Info,
                (a, b) => Expected::Status(a.into_iter().chain(b).collect()),
            }
        }
        IOCTL_SYNCLAB_RUN_STRESS => {
            let output = status_of(check_output::<StressResponse>(case.output_len));
            let parsed =
                StressRequest::parse(&case.input).and_then(|r| r.validate_for(CPUS).map(|_| r));
            match (output, parsed) {
                (None, Ok(request)) => Expected::Run(request),
                (a, b) => Expected::Status(a.into_iter().chain(status_of(b)).collect()),
            }
        }
        _ => Expected::Status(vec![STATUS_INVALID_DEVICE_REQUEST]),
    }
}

// ---------------------------------------------------------------------------------------------
// Running cases.

/// A case that went wrong.
struct Failure {
    message: String,
    /// The machine bugchecked or hung: it cannot run another case.
    dead: bool,
}

impl Failure {
    const fn alive(message: String) -> Self {
        Self {
            message,
            dead: false,
        }
    }
}

/// What the fuzzer saw, for the summary.
#[derive(Default)]
struct Tally {
    statuses: BTreeMap<&'static str, u64>,
    runs: u64,
    run_time: Duration,
    busted_runs: u64,
    busted_time: Duration,
    verdicts: BTreeMap<&'static str, u64>,
    opens_refused: u64,
    reloads: u64,
    reboots: u64,
}

fn status_name(status: i32) -> &'static str {
    status::name(status).unwrap_or("(undefined)")
}

const fn verdict_name(v: u32) -> &'static str {
    match v {
        verdict::SUCCESS => "SUCCESS",
        verdict::FAILURE => "FAILURE",
        verdict::INCONCLUSIVE => "INCONCLUSIVE",
        _ => "(undefined)",
    }
}

/// The machine under test, with the driver loaded and the main handle open.
struct Rig {
    machine: Machine,
    main: FileHandle,
}

impl Rig {
    fn boot() -> Self {
        let config = MachineConfig {
            // A case that hangs fails in a minute rather than in ten.
            hang_budget: Duration::from_secs(60),
            ..MachineConfig::with_processors(CPUS)
        };
        let machine = Machine::new(config);
        let main = load(&machine).unwrap_or_else(|e| panic!("boot: {e}"));
        Self { machine, main }
    }

    /// The main handle and its access.
    const fn handle(&self) -> (FileHandle, Access) {
        (self.main, Access::READ_WRITE)
    }

    /// Closes the main handle, unloads (checking for leaks) and loads the driver again.
    fn reload(&mut self) -> Result<(), String> {
        self.unload()?;
        self.main = load(&self.machine)?;
        Ok(())
    }

    /// Closes the main handle and unloads, checking the unload report.
    fn unload(&self) -> Result<(), String> {
        self.machine.close(self.main);
        let report = self
            .machine
            .unload()
            .map_err(|e| format!("unload failed: {e}"))?;
        check_report(&report)?;
        let threads = self.machine.system_threads_running();
        if threads != 0 {
            return Err(format!(
                "{threads} system thread(s) still running after unload"
            ));
        }
        Ok(())
    }
}

fn load(machine: &Machine) -> Result<FileHandle, String> {
    machine
        .load_driver("synclab", synclab::driver_entry)
        .map_err(|e| format!("the driver did not load: {e}"))?;
    machine
        .open(Identity::Administrator, Access::READ_WRITE)
        .map_err(|e| format!("an administrator could not open the device: {e}"))
}

fn check_report(report: &UnloadReport) -> Result<(), String> {
    for (tag, stats) in &report.pool {
        if stats.outstanding_bytes != 0 || stats.outstanding_blocks != 0 {
            return Err(format!(
                "pool tag {:?} leaked {} block(s), {} byte(s)",
                ntsim::pool::tag_name(*tag),
                stats.outstanding_blocks,
                stats.outstanding_bytes
            ));
        }
    }
    if report.leaked_handles != 0 || report.leaked_references != 0 {
        return Err(format!(
            "the driver leaked {} handle(s) and {} reference(s)",
            report.leaked_handles, report.leaked_references
        ));
    }
    Ok(())
}

/// Runs one case and checks its answer. `main` is the long-lived handle and its access.
fn run_case(
    machine: &Machine,
    main: (FileHandle, Access),
    case: &Case,
    tally: &mut Tally,
) -> Result<(), Failure> {
    let (file, access, fresh) = match case.opener {
        Opener::Main => (main.0, main.1, false),
        Opener::User { access } => {
            let opened = machine.open(Identity::User, access);
            if let Ok(file) = opened {
                machine.close(file);
            }
            if opened != Err(IoError::Status(STATUS_ACCESS_DENIED)) {
                return Err(Failure::alive(format!(
                    "a standard user's open with {access:?} was not refused with \
                     STATUS_ACCESS_DENIED: {opened:?}"
                )));
            }
            tally.opens_refused += 1;
            return dead_check(machine);
        }
        Opener::Fresh { identity, access } => {
            let file = machine.open(identity, access).map_err(|e| {
                Failure::alive(format!("{identity:?} could not open with {access:?}: {e}"))
            })?;
            (file, access, true)
        }
        Opener::Closed => {
            let file = machine
                .open(Identity::Administrator, Access::READ_WRITE)
                .map_err(|e| Failure::alive(format!("an administrator could not open: {e}")))?;
            machine.close(file);
            (file, Access::READ_WRITE, false)
        }
    };
    let expect = expected(case, access);
    let mut output = vec![0xA5_u8; case.output_len];
    let started = Instant::now();
    let result = machine.device_io_control(file, case.code, &case.input, &mut output);
    let took = started.elapsed();
    if fresh {
        machine.close(file);
    }
    let status = match &result {
        Ok(_) => STATUS_SUCCESS,
        Err(IoError::Status(s)) => *s,
        Err(other) => {
            return Err(Failure {
                message: format!("no NTSTATUS: {other}"),
                dead: machine.bugcheck().is_some() || matches!(other, IoError::Host(_)),
            })
        }
    };
    dead_check(machine)?;
    *tally.statuses.entry(status_name(status)).or_default() += 1;
    if status::name(status).is_none() {
        return Err(Failure::alive(format!(
            "completed with NTSTATUS {:#010X}, which the protocol does not define",
            status.cast_unsigned()
        )));
    }
    match (expect, result) {
        (Expected::OpenDenied, _) => unreachable!("handled above"),
        (Expected::Status(allowed), _) if allowed.contains(&status) => Ok(()),
        (Expected::Status(allowed), _) => Err(Failure::alive(format!(
            "completed with {} ({:#010X}); the protocol says {}",
            status_name(status),
            status.cast_unsigned(),
            allowed
                .iter()
                .map(|s| status_name(*s))
                .collect::<Vec<_>>()
                .join(" or ")
        ))),
        (Expected::Info, Ok(n)) => check_info(&output, n).map_err(Failure::alive),
        (Expected::Run(request), Ok(n)) => {
            tally.runs += 1;
            tally.run_time += took;
            if request.flags & FLAG_BUSTED != 0 {
                tally.busted_runs += 1;
                tally.busted_time += took;
            }
            let response = check_run(&request, &output, n).map_err(Failure::alive)?;
            *tally
                .verdicts
                .entry(verdict_name(response.verdict))
                .or_default() += 1;
            Ok(())
        }
        (Expected::Info | Expected::Run(_), Err(_)) => Err(Failure::alive(format!(
            "a valid request failed with {} ({:#010X})",
            status_name(status),
            status.cast_unsigned()
        ))),
    }
}

fn dead_check(machine: &Machine) -> Result<(), Failure> {
    machine.bugcheck().map_or(Ok(()), |b| {
        Err(Failure {
            message: format!("BUG CHECK: {b}"),
            dead: true,
        })
    })
}

fn check_tail(output: &[u8], n: usize) -> Result<(), String> {
    if output[n..].iter().any(|&b| b != 0xA5) {
        return Err(format!(
            "bytes past the {n} returned were written in the caller's buffer"
        ));
    }
    Ok(())
}

fn check_info(output: &[u8], n: usize) -> Result<(), String> {
    if n != INFO_RESPONSE_SIZE {
        return Err(format!(
            "GET_INFO returned {n} bytes, not {INFO_RESPONSE_SIZE}"
        ));
    }
    check_tail(output, n)?;
    let info = InfoResponse::parse(&output[..n])
        .map_err(|e| format!("GET_INFO's response is malformed: {e}"))?;
    if info.kernel != kernel::EMULATED
        || info.processor_count != CPUS
        || info.reserved != 0
        || info.timestamp_frequency == 0
    {
        return Err(format!("GET_INFO's response is wrong: {info:?}"));
    }
    Ok(())
}

fn check_run(request: &StressRequest, output: &[u8], n: usize) -> Result<StressResponse, String> {
    if n != STRESS_RESPONSE_SIZE {
        return Err(format!(
            "RUN_STRESS returned {n} bytes, not {STRESS_RESPONSE_SIZE}"
        ));
    }
    check_tail(output, n)?;
    let r = StressResponse::parse(&output[..n])
        .map_err(|e| format!("RUN_STRESS's response is malformed: {e}"))?;
    let busted = request.flags & FLAG_BUSTED != 0;
    let workers = request.threads() + request.dpc_workers(CPUS);
    let mut wrong = Vec::new();
    if r.request != *request {
        wrong.push(format!("the request is not echoed: {:?}", r.request));
    }
    if r.processors != CPUS {
        wrong.push(format!("processors = {}", r.processors));
    }
    if r.worker_count != workers || r.worker_count as usize > MAX_WORKERS {
        wrong.push(format!(
            "worker_count = {}, expected {workers}",
            r.worker_count
        ));
    }
    if !matches!(
        r.verdict,
        verdict::SUCCESS | verdict::FAILURE | verdict::INCONCLUSIVE
    ) {
        wrong.push(format!("undefined verdict {}", r.verdict));
    }
    if (r.verdict, r.inconclusive_reason) != r.decide() {
        wrong.push(format!(
            "verdict {} (reason {}) is not what the figures earn, {:?}",
            r.verdict,
            r.inconclusive_reason,
            r.decide()
        ));
    }
    if !busted && (r.verdict == verdict::FAILURE || r.violations() != 0) {
        wrong.push(format!(
            "a real lock FAILED: {} violation(s), {} lost update(s)",
            r.violations(),
            r.lost_updates()
        ));
    }
    if r.cancelled != 0 {
        wrong.push("the run says it was cancelled".to_owned());
    }
    if r.writes + r.reads != r.total_acquisitions {
        wrong.push(format!(
            "writes {} + reads {} != acquisitions {}",
            r.writes, r.reads, r.total_acquisitions
        ));
    }
    if wrong.is_empty() {
        Ok(r)
    } else {
        Err(format!("{}; response: {r:?}", wrong.join("; ")))
    }
}

/// Shrinks a failing case while the machine is alive; returns the smallest failing case found
/// and its failure.
fn shrink(rig: &Rig, mut tree: impl ValueTree<Value = Case>, first: Failure) -> (Case, Failure) {
    let mut best = (tree.current(), first);
    let mut tally = Tally::default();
    let mut failing = true;
    for _ in 0..MAX_SHRINK_STEPS {
        if best.1.dead {
            break;
        }
        let moved = if failing {
            tree.simplify()
        } else {
            tree.complicate()
        };
        if !moved {
            break;
        }
        let candidate = tree.current();
        match run_case(&rig.machine, rig.handle(), &candidate, &mut tally) {
            Err(failure) => {
                failing = true;
                best = (candidate, failure);
            }
            Ok(()) => failing = false,
        }
    }
    best
}

fn replay_hint(seed: u64, index: u64) -> String {
    format!(
        "replay this case alone:   SYNCLAB_FUZZ_SEED={seed:#x} SYNCLAB_FUZZ_CASE={index} cargo \
         test -p synclab --test fuzz fuzz_ioctls -- --nocapture\n\
         replay the whole history: SYNCLAB_FUZZ_SEED={seed:#x} SYNCLAB_FUZZ_CASES={} cargo \
         test --release -p synclab --test fuzz fuzz_ioctls -- --nocapture",
        index + 1
    )
}

/// Runs case `index` of `seed`, shrinking and panicking with a replay hint on failure.
fn fuzz_one(rig: &Rig, strategy: &BoxedStrategy<Case>, seed: u64, index: u64, tally: &mut Tally) {
    let mut runner = runner_for(seed, index);
    let tree = strategy
        .new_tree(&mut runner)
        .unwrap_or_else(|e| panic!("case {index}: generation failed: {e}"));
    let case = tree.current();
    if let Err(failure) = run_case(&rig.machine, rig.handle(), &case, tally) {
        let dead = failure.dead;
        let message = failure.message.clone();
        let (small, small_failure) = shrink(rig, tree, failure);
        let shrunk = if dead || small == case {
            String::new()
        } else {
            format!(
                "\nshrunk to: {small:#?}\nwhich fails with: {}",
                small_failure.message
            )
        };
        let log = rig.machine.debug_log();
        let tail = log[log.len().saturating_sub(10)..].join("\n  ");
        panic!(
            "fuzz case {index} of seed {seed:#x} failed: {message}\ncase: {case:#?}{shrunk}\n\
             last debug log lines:\n  {tail}\n{}",
            replay_hint(seed, index)
        );
    }
}

#[test]
fn fuzz_ioctls_get_defined_statuses_no_bugcheck_and_no_leaks() {
    let seed = env_u64("SYNCLAB_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    let strategy = case();
    if let Some(index) = env_u64("SYNCLAB_FUZZ_CASE") {
        println!("fuzz: replaying case {index} of seed {seed:#x} on a fresh machine");
        let case = strategy
            .new_tree(&mut runner_for(seed, index))
            .expect("generation")
            .current();
        println!("fuzz: {case:#?}");
        let rig = Rig::boot();
        let mut tally = Tally::default();
        fuzz_one(&rig, &strategy, seed, index, &mut tally);
        rig.unload()
            .unwrap_or_else(|e| panic!("after case {index}: {e}"));
        println!("fuzz: case {index} passed: {:?}", tally.statuses);
        return;
    }
    let cases = env_u64("SYNCLAB_FUZZ_CASES").unwrap_or(DEFAULT_CASES);
    println!(
        "fuzz: seed {seed:#x}, {cases} cases (SYNCLAB_FUZZ_SEED, SYNCLAB_FUZZ_CASES; \
         SYNCLAB_FUZZ_CASE=<index> replays one)"
    );
    let started = Instant::now();
    let mut tally = Tally::default();
    let mut rig = Rig::boot();
    for index in 0..cases {
        if index > 0 && index % REBOOT_EVERY == 0 {
            rig.unload().unwrap_or_else(|e| {
                panic!(
                    "seed {seed:#x}, after case {}: {e}\n{}",
                    index - 1,
                    replay_hint(seed, index - 1)
                )
            });
            rig = Rig::boot();
            tally.reboots += 1;
        } else if index > 0 && index % RELOAD_EVERY == 0 {
            rig.reload().unwrap_or_else(|e| {
                panic!(
                    "seed {seed:#x}, after case {}: {e}\n{}",
                    index - 1,
                    replay_hint(seed, index - 1)
                )
            });
            tally.reloads += 1;
        }
        fuzz_one(&rig, &strategy, seed, index, &mut tally);
        if (index + 1) % PROGRESS_EVERY == 0 {
            let secs = started.elapsed().as_secs_f64();
            #[allow(clippy::cast_precision_loss, reason = "a rate to print")]
            let rate = (index + 1) as f64 / secs;
            println!(
                "fuzz: {} cases in {secs:.1} s ({rate:.0}/s), {} runs",
                index + 1,
                tally.runs
            );
        }
    }
    if cases > 0 {
        rig.unload().unwrap_or_else(|e| {
            panic!(
                "seed {seed:#x}, at the end: {e}\n{}",
                replay_hint(seed, cases - 1)
            )
        });
    }
    assert!(rig.machine.bugcheck().is_none());
    let secs = started.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss, reason = "a rate to print")]
    let rate = cases as f64 / secs.max(1e-9);
    println!(
        "fuzz: seed {seed:#x}: {cases} cases passed in {secs:.2} s ({rate:.0} cases/s); \
         {} valid runs ({:.2} s; {} busted controls, {:.2} s), verdicts {:?}; {} user opens \
         refused; {} reloads, {} reboots",
        tally.runs,
        tally.run_time.as_secs_f64(),
        tally.busted_runs,
        tally.busted_time.as_secs_f64(),
        tally.verdicts,
        tally.opens_refused,
        tally.reloads,
        tally.reboots
    );
    println!("fuzz: statuses {:?}", tally.statuses);
}

/// Every function code in and around ours, with every method and access bits, on our device
/// type and foreign ones, from read/write, read-only and no-access handles: deterministic, so
/// coverage of the code space never depends on the seed.
#[test]
fn every_code_around_our_range_gets_the_defined_status() {
    let rig = Rig::boot();
    let machine = &rig.machine;
    let reader = machine
        .open(Identity::Administrator, Access::READ)
        .expect("a read-only open");
    let nothing = machine
        .open(
            Identity::Administrator,
            Access {
                read: false,
                write: false,
            },
        )
        .expect("an open with no access");
    let handles = [
        rig.handle(),
        (reader, Access::READ),
        (
            nothing,
            Access {
                read: false,
                write: false,
            },
        ),
    ];
    let stress = cheap(StressRequest::new(
        synclab_protocol::Primitive::SpinLock,
        1,
        1,
    ));
    let inputs: [(Vec<u8>, usize); 3] = [
        (stress.as_bytes().to_vec(), STRESS_RESPONSE_SIZE),
        (InfoRequest::new().as_bytes().to_vec(), INFO_RESPONSE_SIZE),
        (Vec::new(), 0),
    ];
    let mut tally = Tally::default();
    let mut sent = 0_u32;
    for device in std::iter::once(FILE_DEVICE_SYNCLAB).chain(FOREIGN_TYPES) {
        for function in 0x7F0..=0x810 {
            for method in 0..4 {
                for access_bits in 0..4 {
                    let code = ctl_code(device, function, method, access_bits);
                    // The input our IOCTL with this function number takes; the other
                    // functions get each kind of input in turn.
                    let (input, output_len) = match function {
                        0x800 => &inputs[1],
                        0x801 => &inputs[0],
                        _ => &inputs[((method + access_bits) % 3) as usize],
                    };
                    for main in handles {
                        {
                            let case = Case {
                                opener: Opener::Main,
                                code,
                                input: input.clone(),
                                output_len: *output_len,
                            };
                            if let Err(failure) = run_case(machine, main, &case, &mut tally) {
                                panic!(
                                    "sweep: {} from a {:?} handle\ncase: {case:#?}",
                                    failure.message, main.1
                                );
                            }
                            sent += 1;
                        }
                    }
                }
            }
        }
    }
    machine.close(reader);
    machine.close(nothing);
    rig.unload().unwrap_or_else(|e| panic!("sweep: {e}"));
    println!(
        "sweep: {sent} IOCTLs, {} valid runs, statuses {:?}",
        tally.runs, tally.statuses
    );
    assert_eq!(tally.runs, 1, "one code and handle runs the valid request");
}
