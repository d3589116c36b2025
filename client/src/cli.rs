//! Command line.

use clap::{Args, Parser, Subcommand};
use synclab_protocol::{
    limits::{MAX_DURATION_MS, MAX_HOLD_US, MAX_ITERATIONS, MAX_THREADS},
    wire::{StressRequest, FLAG_BUSTED, FLAG_DPC},
    Primitive,
};

/// Drive the SyncLab driver: stress NT kernel synchronization primitives and report.
#[derive(Debug, Parser)]
#[command(name = "synclab", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Print machine-readable JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// Processors to use. Emulated kernel: the number of virtual processors (1-64, default:
    /// host cores). Windows: at most this many processors get a DPC worker.
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
    /// List the primitives `run` can stress.
    List,
    /// Run a stress test of one primitive.
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The primitive (see `synclab list`).
    #[arg(value_parser = parse_primitive)]
    pub primitive: Primitive,
    /// Worker threads at `PASSIVE_LEVEL`.
    #[arg(long, default_value_t = 4, help = format!("Worker threads at PASSIVE_LEVEL (0-{MAX_THREADS})"))]
    pub threads: u32,
    /// Acquisitions per worker.
    #[arg(long, default_value_t = 10_000, help = format!("Acquisitions per worker (1-{MAX_ITERATIONS})"))]
    pub iterations: u32,
    /// Stop after this many milliseconds even if iterations remain (0: no deadline).
    #[arg(long, default_value_t = 0, help = format!("Stop after this many ms (0: none; max {MAX_DURATION_MS})"))]
    pub duration_ms: u32,
    /// Microseconds each worker spends inside the lock per acquisition.
    #[arg(long, default_value_t = 0, help = format!("Busy microseconds inside the lock (0-{MAX_HOLD_US})"))]
    pub hold_us: u32,
    /// Also contend from one DPC per processor at `DISPATCH_LEVEL`.
    #[arg(long)]
    pub dpc: bool,
    /// Use the deliberately broken lock; the run must end in FAILURE.
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
    /// processors that get a DPC worker.
    pub const fn request(&self, cpus: Option<u32>) -> StressRequest {
        let mut request = StressRequest::new(self.primitive, self.threads, self.iterations);
        request.max_processors = match cpus {
            Some(n) => n,
            None => 0,
        };
        request.duration_ms = self.duration_ms;
        request.hold_us = self.hold_us;
        if self.dpc {
            request.flags |= FLAG_DPC;
        }
        if self.busted {
            request.flags |= FLAG_BUSTED;
        }
        request
    }
}
