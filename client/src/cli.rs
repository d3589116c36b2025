//! Command line.

use clap::{Args, Parser, Subcommand};
use synclab_protocol::{
    limits::{
        MAX_DELAY_US, MAX_DURATION_MS, MAX_HOLD_US, MAX_ITERATIONS, MAX_LONG_HOLD_US,
        MAX_PER_MILLE, MAX_STUTTER_MS, MAX_THREADS,
    },
    wire::{StressRequest, FLAG_APC_LEVEL, FLAG_BUSTED, FLAG_DPC},
    Primitive,
};

/// Exit statuses, as `--help` and the README list them.
pub const EXIT_CODES: &str = "\
Exit status:
  0  SUCCESS: no violation, exact counter, contention observed
  1  FAILURE: a violation or a lost update
  2  bad arguments (checked against the driver's own registry and limits)
  3  device or I/O error
  4  the emulated kernel bugchecked
  5  INCONCLUSIVE: no violation, but nothing showed the run could have failed
  130  CANCELLED (Ctrl-C): the figures of the part that ran are printed (1 instead if that
       part already caught a violation); a second Ctrl-C exits at once";

/// Drive the SyncLab driver: stress NT kernel synchronization primitives and report.
///
/// On Windows the client talks to the installed driver; elsewhere it loads the same driver into
/// ntsim, an emulated NT kernel, and says so in every report.
#[derive(Debug, Parser)]
#[command(name = "synclab", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Print machine-readable JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// Processors to use. Emulated kernel: the number of virtual processors (1-64, default:
    /// host cores). Both kernels: threads are bound to, and DPC workers run on, at most this many
    /// processors.
    #[arg(long, global = true, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub cpus: Option<u32>,
    /// Emulated kernel only: print the driver's DbgPrint output to standard error afterwards.
    #[arg(long, global = true)]
    pub trace: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the driver's version, its kernel, processors and timestamp frequency.
    Info,
    /// List the primitives `run` can stress: variants, legal contexts, IRQL and APC state while
    /// held, recursion.
    List,
    /// Run a stress test of one primitive.
    #[command(after_help = EXIT_CODES)]
    Run(RunArgs),
}

#[derive(Debug, Args)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "command-line switches, one field each"
)]
#[allow(
    clippy::doc_markdown,
    reason = "clap prints these doc comments as help, where backticks would show literally"
)]
pub struct RunArgs {
    /// The primitive (see `synclab list`).
    #[arg(value_parser = parse_primitive)]
    pub primitive: Primitive,
    /// Which way to take it (see `synclab list`; default: the first).
    #[arg(long)]
    pub variant: Option<String>,
    /// Writer threads (exclusive holders).
    #[arg(long, visible_alias = "threads", default_value_t = 4,
          help = format!("Writer threads, exclusive holders (0-{MAX_THREADS} with readers)"))]
    pub writers: u32,
    /// Reader threads (shared holders; shared primitives only).
    #[arg(long, default_value_t = 0,
          help = format!("Reader threads, shared holders (shared primitives only; 0-{MAX_THREADS})"))]
    pub readers: u32,
    /// Also contend from one DPC worker per processor at DISPATCH_LEVEL.
    #[arg(long)]
    pub dpc: bool,
    /// Threads raise to APC_LEVEL around each acquisition.
    #[arg(long)]
    pub apc_level: bool,
    /// Acquisitions per worker (default 10000, or none when only --duration-ms is given).
    #[arg(long, help = format!(
        "Acquisitions per worker, 1-{MAX_ITERATIONS} (default 10000; with only --duration-ms the run is driven by time)"
    ))]
    pub iterations: Option<u32>,
    /// Stop after this many milliseconds (0: none).
    #[arg(long, default_value_t = 0, help = format!("Stop after this many ms (0: none; max {MAX_DURATION_MS})"))]
    pub duration_ms: u32,
    /// Busy microseconds inside the lock per acquisition.
    #[arg(long, default_value_t = 0, help = format!("Busy microseconds inside the lock (0-{MAX_HOLD_US})"))]
    pub hold_us: u32,
    /// The occasional long hold, microseconds.
    #[arg(long, default_value_t = 0, help = format!(
        "Occasional long hold, microseconds (0-{MAX_LONG_HOLD_US}; 500 for spin locks)"
    ))]
    pub long_hold_us: u32,
    /// How often the long hold happens, per thousand acquisitions.
    #[arg(long, default_value_t = 0, help = format!("Long holds per thousand acquisitions (0-{MAX_PER_MILLE})"))]
    pub long_hold_per_mille: u32,
    /// Busy microseconds outside the lock between acquisitions.
    #[arg(long, default_value_t = 0, help = format!("Busy microseconds outside the lock between acquisitions (0-{MAX_DELAY_US})"))]
    pub delay_us: u32,
    /// Alternate phases of running and pausing, each this long.
    #[arg(long, default_value_t = 0, help = format!("Run and pause in alternate phases of this many ms (0: none; max {MAX_STUTTER_MS})"))]
    pub stutter_ms: u32,
    /// Seed of every random choice (long holds).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Run the busted control instead of the lock; the run must end in FAILURE.
    #[arg(long)]
    pub busted: bool,
}

fn parse_primitive(name: &str) -> Result<Primitive, String> {
    Primitive::from_name(name).ok_or_else(|| {
        let known: Vec<&str> = Primitive::ALL.iter().map(|p| p.name()).collect();
        format!("unknown primitive '{name}'; known: {}", known.join(", "))
    })
}

impl RunArgs {
    /// The request these arguments describe (validated by the caller). `cpus` caps the
    /// processors workers use.
    ///
    /// # Errors
    /// An unknown variant name, with the known ones.
    pub fn request(&self, cpus: Option<u32>) -> Result<StressRequest, String> {
        let info = self.primitive.info();
        let variant = match &self.variant {
            None => 0,
            Some(name) => info.variant_index(name).ok_or_else(|| {
                let known: Vec<&str> = info.variants.iter().map(|v| v.name).collect();
                format!(
                    "{} has no variant '{name}'; known: {}",
                    info.name,
                    known.join(", ")
                )
            })?,
        };
        let iterations = match self.iterations {
            Some(n) => n,
            None if self.duration_ms > 0 => 0,
            None => 10_000,
        };
        let mut request = StressRequest::new(self.primitive, self.writers, iterations);
        request.variant = variant;
        request.readers = self.readers;
        request.max_processors = cpus.unwrap_or(0);
        request.duration_ms = self.duration_ms;
        request.hold_us = self.hold_us;
        request.long_hold_us = self.long_hold_us;
        request.long_hold_per_mille = self.long_hold_per_mille;
        request.delay_us = self.delay_us;
        request.stutter_ms = self.stutter_ms;
        request.seed = self.seed;
        for (on, flag) in [
            (self.dpc, FLAG_DPC),
            (self.busted, FLAG_BUSTED),
            (self.apc_level, FLAG_APC_LEVEL),
        ] {
            if on {
                request.flags |= flag;
            }
        }
        Ok(request)
    }
}
