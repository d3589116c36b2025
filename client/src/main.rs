//! # Abstract
//!
//! `synclab`, the SyncLab client: drives the driver's IOCTLs and shows the results.
//!
//! On Windows it opens the installed device through its interface and calls `DeviceIoControl`.
//! Elsewhere it loads the same driver into an in-process ntsim machine (an emulated NT kernel)
//! and says so in every report: figures from that path describe the emulation, not Windows.
//!
//! Exit status: 0 SUCCESS, 1 FAILURE verdict, 2 bad arguments, 3 device or I/O error,
//! 4 the emulated kernel bugchecked, 5 INCONCLUSIVE verdict, 130 cancelled ([`cli::EXIT_CODES`]).

mod backend;
mod cli;
mod report;

use std::{
    process::ExitCode,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use clap::Parser;
use synclab_protocol::{
    ioctl::{IOCTL_SYNCLAB_GET_INFO, IOCTL_SYNCLAB_RUN_STRESS},
    wire::{verdict, InfoRequest, InfoResponse, StressRequest, StressResponse},
    RequestError,
};
use zerocopy::{FromZeros, IntoBytes};

use crate::{
    backend::{Device, DeviceError},
    cli::{Cli, Command},
};

/// Why the client stops without a verdict.
#[derive(Debug, thiserror::Error)]
enum ClientError {
    #[error("{0}")]
    Usage(String),
    #[error("invalid request: {0}")]
    Request(#[from] RequestError),
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error("the driver's response is malformed: {0}")]
    Response(RequestError),
}

impl ClientError {
    const fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) | Self::Request(_) => 2,
            Self::Device(DeviceError::BugCheck(_)) => 4,
            Self::Device(_) | Self::Response(_) => 3,
        }
    }
}

fn open(cli: &Cli) -> Result<Box<dyn Device>, DeviceError> {
    #[cfg(windows)]
    {
        let _ = cli;
        backend::windows::open()
    }
    #[cfg(not(windows))]
    {
        backend::host::open(cli.cpus, cli.trace)
    }
}

fn info(device: &mut dyn Device) -> Result<InfoResponse, ClientError> {
    let request = InfoRequest::new();
    let mut output = InfoResponse::new_zeroed();
    let n = device.ioctl(
        IOCTL_SYNCLAB_GET_INFO,
        request.as_bytes(),
        output.as_mut_bytes(),
    )?;
    InfoResponse::parse(&output.as_bytes()[..n]).map_err(ClientError::Response)
}

fn stress(
    device: &mut dyn Device,
    request: &StressRequest,
) -> Result<Box<StressResponse>, ClientError> {
    let mut output = StressResponse::new_box_zeroed()
        .map_err(|_| ClientError::Device(DeviceError::OutOfMemory("the response buffer")))?;
    let n = device.ioctl(
        IOCTL_SYNCLAB_RUN_STRESS,
        request.as_bytes(),
        output.as_mut_bytes(),
    )?;
    let parsed = StressResponse::parse(&output.as_bytes()[..n]).map_err(ClientError::Response)?;
    Ok(Box::new(parsed))
}

fn run(cli: &Cli) -> Result<ExitCode, ClientError> {
    match &cli.command {
        Command::List => {
            report::print_list(cli.json);
            Ok(ExitCode::SUCCESS)
        }
        Command::Info => {
            let mut device = open(cli)?;
            let description = device.describe();
            let info = info(device.as_mut())?;
            device.close()?;
            report::print_info(&description, &info, cli.json);
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(args) => {
            let request = args.request(cli.cpus).map_err(ClientError::Usage)?;
            request.validate()?;
            let mut device = open(cli)?;
            let description = device.describe();
            // The bound on time at DISPATCH_LEVEL depends on the processor count: check it here
            // too, so the user reads why rather than a bare status.
            let processors = info(device.as_mut())?.processor_count;
            if let Err(error) = request.validate_for(processors) {
                device.close()?;
                return Err(error.into());
            }
            let ctrl_c = CtrlC::install(device.canceller());
            eprintln!(
                "synclab: running {} (Ctrl-C cancels and prints the figures so far)",
                report::describe_request(&request)
            );
            let response = stress(device.as_mut(), &request);
            let interrupted = ctrl_c.finish();
            let response = match response {
                Ok(response) => response,
                Err(error) if interrupted => {
                    // Cancelled before the driver had started it: nothing ran, nothing to show.
                    eprintln!("synclab: cancelled before the run started ({error})");
                    device.close()?;
                    return Ok(ExitCode::from(130));
                }
                Err(error) => return Err(error),
            };
            device.close()?;
            report::print_stress(&description, &response, cli.json);
            if (response.cancelled != 0 || interrupted) && response.verdict != verdict::FAILURE {
                return Ok(ExitCode::from(130));
            }
            Ok(match response.verdict {
                verdict::SUCCESS => ExitCode::SUCCESS,
                verdict::INCONCLUSIVE => ExitCode::from(5),
                _ => ExitCode::from(1),
            })
        }
    }
}

/// The client's Ctrl-C handling for one run.
///
/// The first Ctrl-C cancels the run in flight: the driver stops it and answers with the figures
/// so far, which are printed with exit code 130. Until the run has returned, the cancel is
/// repeated every 10 ms, so a Ctrl-C that comes before the request reaches the driver still
/// stops it. A second Ctrl-C exits at once with 130.
struct CtrlC {
    interrupted: Arc<AtomicBool>,
    finished: Arc<AtomicBool>,
}

impl CtrlC {
    fn install(cancel: backend::Canceller) -> Self {
        let interrupted = Arc::new(AtomicBool::new(false));
        let finished = Arc::new(AtomicBool::new(false));
        let (seen, done) = (Arc::clone(&interrupted), Arc::clone(&finished));
        let cancel = Arc::new(cancel);
        let installed = ctrlc::set_handler(move || {
            if seen.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!("synclab: cancelling the run (Ctrl-C again to quit at once)");
            let (cancel, done) = (Arc::clone(&cancel), Arc::clone(&done));
            // Off the handler's thread, so that a second Ctrl-C is still seen.
            std::thread::spawn(move || {
                while !done.load(Ordering::SeqCst) {
                    cancel();
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            });
        });
        if let Err(error) = installed {
            eprintln!("synclab: warning: Ctrl-C will not cancel the run: {error}");
        }
        Self {
            interrupted,
            finished,
        }
    }

    /// The run has returned: stops cancelling; whether Ctrl-C was pressed.
    fn finish(self) -> bool {
        self.finished.store(true, Ordering::SeqCst);
        self.interrupted.load(Ordering::SeqCst)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("synclab: error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
