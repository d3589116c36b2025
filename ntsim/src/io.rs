//! The I/O path: loading the driver, opening its device, `DeviceIoControl` with
//! `METHOD_BUFFERED` semantics into the driver's queue, closing, and unloading with a leak report.
//!
//! Host code drives it through [`Machine`] methods. Each call runs the kernel side on an
//! emulated context (as a user thread runs in kernel mode during a system call) and returns the
//! NTSTATUS, or the [`BugCheck`](crate::BugCheck) that stopped the machine.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use wdk_sys::{DRIVER_OBJECT, GUID, NTSTATUS, PCUNICODE_STRING, UNICODE_STRING};

use crate::{
    bugcheck::{code, verifier},
    context::{self, irql, ContextKind, Ctx},
    machine::{self, HostError, Machine, MachineInner},
    pool::TagStats,
    wdf::{self, request::Request, Objects as WdfObjects},
};

/// The signature of a driver's `DriverEntry`.
pub type DriverEntry = unsafe extern "system" fn(*mut DRIVER_OBJECT, PCUNICODE_STRING) -> NTSTATUS;

/// Who opens the device; checked against the device's SDDL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Identity {
    /// `NT AUTHORITY\SYSTEM` (SDDL `SY`).
    System,
    /// A member of `BUILTIN\Administrators` running elevated (SDDL `BA`, also `BU`).
    Administrator,
    /// A standard user (SDDL `BU`).
    User,
}

/// Access asked for when opening.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// `GENERIC_READ`.
    pub read: bool,
    /// `GENERIC_WRITE`.
    pub write: bool,
}

impl Access {
    /// Read and write, as the `SyncLab` client opens the device.
    pub const READ_WRITE: Self = Self {
        read: true,
        write: true,
    };
    /// Read only.
    pub const READ: Self = Self {
        read: true,
        write: false,
    };
}

/// An open file on the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileHandle(u64);

/// Why an I/O call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IoError {
    /// The request completed with an error NTSTATUS (from the I/O manager or the driver).
    #[error("request failed with NTSTATUS {:#010X}", .0.cast_unsigned())]
    Status(NTSTATUS),
    /// The machine stopped, or hung.
    #[error(transparent)]
    Host(#[from] HostError),
    /// No driver is loaded, or the handle is not open.
    #[error("{0}")]
    Usage(&'static str),
}

/// What unloading found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnloadReport {
    /// Pool figures per tag over the driver's life.
    pub pool: std::collections::BTreeMap<u32, TagStats>,
    /// Kernel handles the driver left open.
    pub leaked_handles: usize,
    /// Object references the driver never dropped.
    pub leaked_references: usize,
}

pub(crate) struct DeviceState {
    pub handle: usize,
    pub sddl: Option<String>,
    pub interfaces: Vec<GUID>,
    pub default_queue: usize,
}

struct FileState {
    read: bool,
    write: bool,
}

pub(crate) struct DriverState {
    /// The `DRIVER_OBJECT` given to `DriverEntry` (boxed: its address must not move).
    pub object: Box<DRIVER_OBJECT>,
    /// Registry path given to `DriverEntry`, and its UTF-16 buffer.
    pub registry_path: Box<UNICODE_STRING>,
    pub registry_buffer: Vec<u16>,
    pub handle: usize,
    pub device_add: wdk_sys::PFN_WDF_DRIVER_DEVICE_ADD,
    pub unload: wdk_sys::PFN_WDF_DRIVER_UNLOAD,
}

// SAFETY: the raw pointers inside DRIVER_OBJECT and UNICODE_STRING point into this same
// DriverState (the boxed registry buffer) or to driver-owned storage; ntsim only touches them
// under the I/O state's mutex, so moving the state between threads is sound.
#[allow(clippy::non_send_fields_in_send_ty, reason = "see the SAFETY comment")]
unsafe impl Send for DriverState {}

#[derive(Default)]
pub(crate) struct Inner {
    pub driver: Option<DriverState>,
    pub device: Option<DeviceState>,
    files: HashMap<u64, FileState>,
    next_file: u64,
}

/// The I/O state of a machine: its driver, device, open files, and WDF objects.
#[derive(Default)]
pub struct IoState {
    pub(crate) inner: Mutex<Inner>,
    pub(crate) objects: WdfObjects,
}

impl IoState {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Runs `f` on a new emulated context of `kind` at `PASSIVE_LEVEL` and waits for its value.
fn on_kernel_thread<T: Send + 'static>(
    machine: &Arc<MachineInner>,
    name: &str,
    f: impl FnOnce(&Ctx) -> T + Send + 'static,
) -> Result<T, HostError> {
    let slot = Arc::new(Mutex::new(None));
    let out = Arc::clone(&slot);
    let owner = Arc::clone(machine);
    let name = name.to_owned();
    std::thread::Builder::new()
        .name(format!("ntsim-{name}"))
        .stack_size(machine.config.stack_size)
        .spawn(move || {
            let ctx = machine::install_context(&owner, ContextKind::Syscall, name, 0, 0);
            let value = f(&ctx);
            *out.lock().unwrap_or_else(PoisonError::into_inner) = Some(value);
            owner.notify();
        })
        .map_err(|_| HostError::Hung(std::time::Duration::ZERO))?;
    machine.wait_host(|| slot.lock().unwrap_or_else(PoisonError::into_inner).take())
}

/// The checks made when a thread returns to user mode from a system call (ddi.md 13.5).
fn return_to_user_mode(ctx: &Ctx, what: &'static str) {
    let level = ctx.irql.get();
    if level != irql::PASSIVE {
        context::raise(
            ctx,
            code::IRQL_GT_ZERO_AT_SYSTEM_SERVICE,
            [0, u64::from(level), 0, 0],
            what,
            format!("returned to user mode at IRQL {level}"),
        );
    }
    let combined = ctx.combined_apc_disable();
    if combined != 0 {
        context::raise(
            ctx,
            code::APC_INDEX_MISMATCH,
            [0, 0, u64::from(combined), 0],
            what,
            format!("returned to user mode with CombinedApcDisable {combined:#x}"),
        );
    }
}

/// Which rights an SDDL string grants `identity` (only `A` allow ACEs with generic rights).
fn sddl_grants(sddl: &str, identity: Identity) -> Access {
    let sids: &[&str] = match identity {
        Identity::System => &["SY", "WD", "AU"],
        Identity::Administrator => &["BA", "BU", "WD", "AU"],
        Identity::User => &["BU", "WD", "AU"],
    };
    let mut granted = Access {
        read: false,
        write: false,
    };
    for ace in sddl.split('(').skip(1) {
        let fields: Vec<&str> = ace.trim_end_matches(')').split(';').collect();
        if fields.len() < 6 || fields[0] != "A" || !sids.contains(&fields[5]) {
            continue;
        }
        let rights = fields[2];
        let all = rights.contains("GA") || rights.contains("FA");
        granted.read |= all || rights.contains("GR") || rights.contains("FR");
        granted.write |= all || rights.contains("GW") || rights.contains("FW");
    }
    granted
}

impl Machine {
    /// Loads a driver: sets up the framework, calls `DriverEntry`, then (as the `PnP` manager
    /// does for the root-enumerated device) `EvtDriverDeviceAdd`.
    ///
    /// # Errors
    /// [`IoError::Status`] when `DriverEntry` or device add fails; [`IoError::Host`] on a
    /// bug check.
    pub fn load_driver(&self, name: &str, entry: DriverEntry) -> Result<(), IoError> {
        let machine = Arc::clone(self.inner());
        if machine.io.lock().driver.is_some() {
            return Err(IoError::Usage("a driver is already loaded"));
        }
        let service = name.to_owned();
        let status = on_kernel_thread(&machine, "driver loader", move |ctx| {
            let path: Vec<u16> =
                format!("\\REGISTRY\\MACHINE\\SYSTEM\\ControlSet001\\Services\\{service}")
                    .encode_utf16()
                    .collect();
            let mut object = Box::<DRIVER_OBJECT>::default();
            object.Type = 4;
            object.Size = i16::try_from(std::mem::size_of::<DRIVER_OBJECT>()).unwrap_or(i16::MAX);
            #[allow(clippy::cast_possible_truncation, reason = "a short service path")]
            let bytes = (path.len() * 2) as u16;
            let mut state = DriverState {
                object,
                registry_path: Box::new(UNICODE_STRING {
                    Length: bytes,
                    MaximumLength: bytes,
                    Buffer: std::ptr::null_mut(),
                }),
                registry_buffer: path,
                handle: 0,
                device_add: None,
                unload: None,
            };
            state.registry_path.Buffer = state.registry_buffer.as_mut_ptr();
            let driver_object: *mut DRIVER_OBJECT = &raw mut *state.object;
            let registry: PCUNICODE_STRING = &raw const *state.registry_path;
            ctx.machine.io.lock().driver = Some(state);
            // SAFETY: DriverEntry gets a zeroed, boxed DRIVER_OBJECT and a registry path that
            // both stay alive (in the machine's I/O state) until the driver is unloaded.
            let status = ctx.call_driver(|| unsafe { entry(driver_object, registry) });
            return_to_user_mode(ctx, "DriverEntry");
            if !wdk_sys::NT_SUCCESS(status) {
                ctx.machine.io.lock().driver = None;
                return status;
            }
            wdf::driver::add_device(ctx)
        })?;
        if wdk_sys::NT_SUCCESS(status) {
            Ok(())
        } else {
            Err(IoError::Status(status))
        }
    }

    /// The symbolic links of the device interfaces registered for `guid`
    /// (`CM_Get_Device_Interface_List`).
    #[must_use]
    pub fn device_interfaces(&self, guid: &GUID) -> Vec<String> {
        let io = self.inner().io.lock();
        io.device
            .iter()
            .filter(|d| d.interfaces.iter().any(|g| guid_eq(g, guid)))
            .map(|_| format!("\\\\?\\ROOT#SYNCLAB#0000#{}", guid_text(guid)))
            .collect()
    }

    /// Opens the device, checking `access` against its SDDL for `identity`.
    ///
    /// # Errors
    /// `STATUS_OBJECT_NAME_NOT_FOUND` with no device, `STATUS_ACCESS_DENIED` when the SDDL
    /// does not grant the access.
    pub fn open(&self, identity: Identity, access: Access) -> Result<FileHandle, IoError> {
        if let Some(b) = self.bugcheck() {
            return Err(IoError::Host(HostError::BugCheck(b)));
        }
        let mut io = self.inner().io.lock();
        let Some(device) = io.device.as_ref() else {
            return Err(IoError::Status(wdk_sys::STATUS_OBJECT_NAME_NOT_FOUND));
        };
        if let Some(sddl) = &device.sddl {
            let granted = sddl_grants(sddl, identity);
            if (access.read && !granted.read) || (access.write && !granted.write) {
                return Err(IoError::Status(wdk_sys::STATUS_ACCESS_DENIED));
            }
        }
        io.next_file += 1;
        let id = io.next_file;
        io.files.insert(
            id,
            FileState {
                read: access.read,
                write: access.write,
            },
        );
        Ok(FileHandle(id))
    }

    /// Sends an IOCTL. `METHOD_BUFFERED`: one system buffer of `max(in, out)` bytes carries the
    /// input in and the output back; on success `Information` bytes are copied to `output`.
    ///
    /// # Errors
    /// The completion NTSTATUS when it is an error (access checks by the I/O manager, or the
    /// driver's), or the bug check.
    pub fn device_io_control(
        &self,
        file: FileHandle,
        code: u32,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<usize, IoError> {
        let machine = Arc::clone(self.inner());
        if let Some(b) = machine.bugcheck() {
            return Err(IoError::Host(HostError::BugCheck(b)));
        }
        let (read, write) = {
            let io = machine.io.lock();
            let f = io
                .files
                .get(&file.0)
                .ok_or(IoError::Usage("the file handle is not open"))?;
            (f.read, f.write)
        };
        let required = (code >> 14) & 0x3;
        if (required & 1 != 0 && !read) || (required & 2 != 0 && !write) {
            return Err(IoError::Status(wdk_sys::STATUS_ACCESS_DENIED));
        }
        let in_len = input.len();
        let out_len = output.len();
        let mut buffer = vec![0_u8; in_len.max(out_len)].into_boxed_slice();
        buffer[..in_len].copy_from_slice(input);
        let (status, information, buffer) = on_kernel_thread(&machine, "I/O caller", move |ctx| {
            let request = Request::new(code, buffer, in_len, out_len);
            let (status, information, buffer) = wdf::queue::dispatch_device_control(ctx, request);
            return_to_user_mode(ctx, "NtDeviceIoControlFile");
            (status, information, buffer)
        })?;
        if wdk_sys::NT_ERROR(status) {
            return Err(IoError::Status(status));
        }
        let n = usize::try_from(information)
            .unwrap_or(usize::MAX)
            .min(out_len);
        output[..n].copy_from_slice(&buffer[..n]);
        Ok(n)
    }

    /// Closes a file.
    pub fn close(&self, file: FileHandle) {
        self.inner().io.lock().files.remove(&file.0);
    }

    /// Unloads the driver: calls `EvtDriverUnload`, deletes its framework objects, then checks
    /// what it left behind. Running system threads are 0xCE (P4 their count); queued or running
    /// work items are 0xCE (P3 their count); armed timers are 0xCE (P1 the first, P4 their
    /// count); pool still allocated is 0xC4/0x62 (P3 blocks, P4 bytes). Kernel handles left
    /// open and object references never dropped are not a bug check (ddi.md 13.5 names none):
    /// they are counted in the [`UnloadReport`] and logged.
    ///
    /// # Errors
    /// [`IoError::Usage`] with files still open or no driver; [`IoError::Host`] on a bug check.
    pub fn unload(&self) -> Result<UnloadReport, IoError> {
        let machine = Arc::clone(self.inner());
        {
            let io = machine.io.lock();
            if io.driver.is_none() {
                return Err(IoError::Usage("no driver is loaded"));
            }
            if !io.files.is_empty() {
                return Err(IoError::Usage("files are still open on the device"));
            }
        }
        let report = on_kernel_thread(&machine, "driver unloader", move |ctx| {
            wdf::driver::unload(ctx);
            return_to_user_mode(ctx, "driver unload");
            let threads = ctx.machine.objects.live_system_threads();
            if threads > 0 {
                context::raise(
                    ctx,
                    code::DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS,
                    [0, 0, 0, threads as u64],
                    "driver unload",
                    format!("the driver unloaded with {threads} system thread(s) still running"),
                );
            }
            let items = ctx.machine.work_items.pending();
            if items > 0 {
                context::raise(
                    ctx,
                    code::DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS,
                    [0, 0, items as u64, 0],
                    "driver unload",
                    format!("the driver unloaded with {items} work item(s) queued or running"),
                );
            }
            if let Some((timer, armed)) = crate::ddi::timer::armed_timers(&ctx.machine) {
                context::raise(
                    ctx,
                    code::DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS,
                    [timer as u64, 0, 0, armed as u64],
                    "driver unload",
                    format!(
                        "the driver unloaded with {armed} timer(s) still armed (first at \
                         {timer:#x}): unload must cancel its timers (ddi.md 8.5)"
                    ),
                );
            }
            let (blocks, bytes) = ctx.machine.pool.outstanding();
            if blocks > 0 {
                let detail: Vec<String> = ctx
                    .machine
                    .pool
                    .stats()
                    .iter()
                    .filter(|(_, s)| s.outstanding_blocks > 0)
                    .map(|(t, s)| {
                        format!(
                            "'{}': {} block(s), {} byte(s)",
                            crate::pool::tag_name(*t),
                            s.outstanding_blocks,
                            s.outstanding_bytes
                        )
                    })
                    .collect();
                context::raise(
                    ctx,
                    code::DRIVER_VERIFIER_DETECTED_VIOLATION,
                    [verifier::POOL_LEAKED_AT_UNLOAD, 0, blocks, bytes],
                    "driver unload",
                    format!(
                        "the driver unloaded without freeing its pool: {}",
                        detail.join(", ")
                    ),
                );
            }
            // Leaked handles and references are not a bug check (ddi.md 13.5 names none; on
            // Windows they keep the objects alive), but they are reported and logged.
            let (handles, references) = ctx.machine.objects.leaks();
            if handles > 0 || references > 0 {
                ctx.machine.log_line(format!(
                    "ntsim: the driver unloaded leaving {handles} kernel handle(s) open and \
                     {references} object(s) referenced"
                ));
            }
            UnloadReport {
                pool: ctx.machine.pool.stats(),
                leaked_handles: handles,
                leaked_references: references,
            }
        })?;
        machine.io.lock().driver = None;
        Ok(report)
    }
}

/// GUID equality (bindgen's GUID has no `PartialEq`).
pub(crate) fn guid_eq(a: &GUID, b: &GUID) -> bool {
    a.Data1 == b.Data1 && a.Data2 == b.Data2 && a.Data3 == b.Data3 && a.Data4 == b.Data4
}

fn guid_text(g: &GUID) -> String {
    let d = g.Data4;
    format!(
        "{{{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}}}",
        g.Data1, g.Data2, g.Data3, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sddl_of_synclab_admits_only_system_and_administrators() {
        let sddl = "D:P(A;;GA;;;SY)(A;;GA;;;BA)";
        assert_eq!(sddl_grants(sddl, Identity::System), Access::READ_WRITE);
        assert_eq!(
            sddl_grants(sddl, Identity::Administrator),
            Access::READ_WRITE
        );
        assert_eq!(
            sddl_grants(sddl, Identity::User),
            Access {
                read: false,
                write: false
            }
        );
        assert_eq!(sddl_grants("D:P(A;;GR;;;BU)", Identity::User), Access::READ);
    }
}
