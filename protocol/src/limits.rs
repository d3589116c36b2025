//! Ranges every stress request is validated against, on both sides of the ABI.

/// Most `PASSIVE_LEVEL` worker threads in one run.
pub const MAX_THREADS: u32 = 64;
/// Most DPC workers in one run (one per processor, capped here).
pub const MAX_DPC_WORKERS: u32 = 64;
/// Size of the per-worker table in a response.
pub const MAX_WORKERS: usize = (MAX_THREADS + MAX_DPC_WORKERS) as usize;
/// Fewest acquisitions per worker.
pub const MIN_ITERATIONS: u32 = 1;
/// Most acquisitions per worker.
pub const MAX_ITERATIONS: u32 = 10_000_000;
/// Longest run, in milliseconds (0 means "until every worker has done its iterations").
pub const MAX_DURATION_MS: u32 = 600_000;
/// Longest time a worker holds the lock per acquisition, in microseconds.
///
/// Spin locks are held at `DISPATCH_LEVEL`, where Microsoft's guidance is 25 us; the cap leaves room to provoke
/// contention without approaching the DPC watchdog.
pub const MAX_HOLD_US: u32 = 100;
/// Most acquisitions a DPC worker makes per DPC invocation before it re-queues itself, so work
/// at `DISPATCH_LEVEL` stays bounded.
pub const DPC_BATCH: u32 = 256;
