//! Ranges every stress request is validated against, on both sides of the ABI.

/// Most worker threads (writers + readers) in one run.
pub const MAX_THREADS: u32 = 64;
/// Most DPC workers in one run (one per processor, capped here).
pub const MAX_DPC_WORKERS: u32 = 64;
/// Size of the per-worker table in a response.
pub const MAX_WORKERS: usize = (MAX_THREADS + MAX_DPC_WORKERS) as usize;
/// Most stress runs in flight on the device at once; one more is refused with
/// `STATUS_DEVICE_BUSY` (Win32 `ERROR_BUSY`).
pub const MAX_CONCURRENT_RUNS: usize = 4;
/// Fewest acquisitions per worker when the run is driven by iterations.
pub const MIN_ITERATIONS: u32 = 1;
/// Most acquisitions per worker.
pub const MAX_ITERATIONS: u32 = 10_000_000;
/// Longest run, in milliseconds (0: until every worker has done its iterations).
pub const MAX_DURATION_MS: u32 = 600_000;
/// Longest ordinary hold per acquisition, in microseconds.
///
/// Spin locks are held at `DISPATCH_LEVEL`, where Microsoft's guidance is 25 us per hold.
pub const MAX_HOLD_US: u32 = 100;
/// Longest occasional long hold of a lock held below `DISPATCH_LEVEL`, in microseconds.
pub const MAX_LONG_HOLD_US: u32 = 10_000;
/// Longest occasional long hold of a lock held at `DISPATCH_LEVEL` (every spin lock), in
/// microseconds: one DPC invocation may spend at most [`DPC_INVOCATION_MAX_US`] there.
pub const MAX_DISPATCH_LONG_HOLD_US: u32 = 500;
/// Long holds are chosen with this probability, in thousandths.
pub const MAX_PER_MILLE: u32 = 1000;
/// Longest busy delay outside the lock between acquisitions, in microseconds.
pub const MAX_DELAY_US: u32 = 500;
/// Longest stutter phase (run, then pause, alternately), in milliseconds.
pub const MAX_STUTTER_MS: u32 = 10_000;

/// Most acquisitions one DPC invocation makes.
pub const DPC_BATCH: u32 = 256;
/// A DPC invocation starts no new acquisition after this long at `DISPATCH_LEVEL`, in
/// microseconds.
pub const DPC_BATCH_BUDGET_US: u32 = 500;
/// The longest a DPC invocation may spend at `DISPATCH_LEVEL`, in microseconds.
///
/// That is its batch budget plus the worst single acquisition (every other worker ahead of it,
/// each holding as long as allowed, plus its own hold and delay). Validation refuses runs that
/// could exceed it (ddi.md errata 6: 1 ms is well inside the watchdog; 100 us is guidance).
pub const DPC_INVOCATION_MAX_US: u32 = 1000;
/// How long a busted control's holder waits, at most, for a second worker to come inside, in
/// microseconds: the controls overlap by design, not by luck.
pub const BUSTED_OVERLAP_US: u32 = 50;
/// How long a busted control's thread holder waits for a second one, in microseconds, while
/// the run has not yet seen two holders together.
///
/// Per acquisition, during the first [`BUSTED_PATIENCE_MS`] of the run at most, never in a DPC.
pub const BUSTED_FIRST_OVERLAP_US: u32 = 10_000;
/// How long into a busted run its thread holders stay patient ([`BUSTED_FIRST_OVERLAP_US`]).
pub const BUSTED_PATIENCE_MS: u32 = 1000;

/// The worst time one acquisition can take from a DPC, in microseconds: `workers` contenders
/// each holding at most `max_hold_us` (one of them itself), plus `delay_us` outside.
#[must_use]
pub const fn worst_dpc_acquisition_us(workers: u32, max_hold_us: u32, delay_us: u32) -> u64 {
    workers as u64 * max_hold_us as u64 + delay_us as u64
}
