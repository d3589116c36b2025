//! The host backend: the driver loaded into an in-process ntsim machine.

use ntsim::{Access, HostError, Identity, IoError, Machine, MachineConfig};
use synclab_protocol::DEVICE_INTERFACE_GUID;

use super::{Device, DeviceError};

/// The driver running on an emulated machine, with one open file.
pub struct HostDevice {
    machine: std::sync::Arc<Machine>,
    file: ntsim::FileHandle,
    trace: bool,
}

fn host_error(error: &HostError) -> DeviceError {
    DeviceError::BugCheck(error.to_string())
}

fn io_error(error: IoError) -> DeviceError {
    match error {
        IoError::Status(status) => DeviceError::Status(status),
        IoError::Host(e) => host_error(&e),
        IoError::Usage(text) => DeviceError::NotFound(text.to_owned()),
    }
}

/// Boots a machine with `cpus` virtual processors (default: host cores), loads the driver,
/// finds its device interface and opens it as an administrator would.
///
/// # Errors
/// A bug check or failure while loading, or no device interface.
pub fn open(cpus: Option<u32>, trace: bool) -> Result<Box<dyn Device>, DeviceError> {
    let mut config = MachineConfig::default();
    if let Some(cpus) = cpus {
        config.processors = cpus;
    }
    let machine = Machine::new(config);
    let loaded = machine.load_driver("synclab", synclab::driver_entry);
    if let Err(error) = loaded {
        dump_trace(&machine, trace);
        return Err(io_error(error));
    }
    let guid = ntsim::wdk_sys::GUID {
        Data1: DEVICE_INTERFACE_GUID.data1,
        Data2: DEVICE_INTERFACE_GUID.data2,
        Data3: DEVICE_INTERFACE_GUID.data3,
        Data4: DEVICE_INTERFACE_GUID.data4,
    };
    if machine.device_interfaces(&guid).is_empty() {
        return Err(DeviceError::NotFound(format!(
            "the driver registered no interface {DEVICE_INTERFACE_GUID}"
        )));
    }
    let file = machine
        .open(Identity::Administrator, Access::READ_WRITE)
        .map_err(io_error)?;
    Ok(Box::new(HostDevice {
        machine: std::sync::Arc::new(machine),
        file,
        trace,
    }))
}

fn dump_trace(machine: &Machine, trace: bool) {
    if trace {
        for line in machine.debug_log() {
            eprintln!("[DbgPrint] {line}");
        }
    }
}

impl Device for HostDevice {
    fn describe(&self) -> String {
        format!(
            "the emulated kernel (ntsim, {} virtual processors on {} host cores)",
            self.machine.processors(),
            std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
        )
    }

    fn ioctl(&mut self, code: u32, input: &[u8], output: &mut [u8]) -> Result<usize, DeviceError> {
        let result = self
            .machine
            .device_io_control(self.file, code, input, output);
        if result.is_err() {
            dump_trace(&self.machine, self.trace);
        }
        result.map_err(io_error)
    }

    fn canceller(&self) -> super::Canceller {
        let machine = std::sync::Arc::clone(&self.machine);
        let file = self.file;
        Box::new(move || {
            // Nothing in flight is not an error for a Ctrl-C.
            let _ = machine.cancel_io(file, None);
        })
    }

    fn close(self: Box<Self>) -> Result<(), DeviceError> {
        self.machine.close(self.file);
        let report = self.machine.unload();
        dump_trace(&self.machine, self.trace);
        report.map(|_| ()).map_err(io_error)
    }
}
