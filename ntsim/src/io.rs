//! The I/O path: load, open, `DeviceIoControl`, `CancelIoEx`, close and unload.
//!
//! Opens give synchronous or overlapped handles; `DeviceIoControl` has `METHOD_BUFFERED`
//! semantics into the driver's queue (waiting for the completion, or returning a
//! [`PendingIo`]); closing takes two steps (cleanup, then close after the file's last request);
//! unloading ends with a leak report.
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
    irp::{self, Completion, Irp, Major},
    machine::{self, HostError, Machine, MachineInner},
    pool::TagStats,
    wdf::{self, file::FileConfig, request::Request, Objects as WdfObjects},
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
    /// What `WdfDeviceInitSetFileObjectConfig` set (`None`: `WdfFileObjectNotRequired`).
    pub file_config: Option<FileConfig>,
}

/// Where a file object is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Its handle is open.
    Open,
    /// Its handle is closed and cleanup (`EvtFileCleanup`, the cancels) is running.
    CleaningUp,
    /// Cleaned up; the close waits for its last request to complete.
    CleanedUp,
    /// Its close has started (`EvtFileClose`, then the file object goes).
    Closing,
}

/// A file object on the device, from open until `EvtFileClose`.
struct FileState {
    access: Access,
    /// Opened with `FILE_FLAG_OVERLAPPED`; otherwise its I/O is synchronous and serialized.
    overlapped: bool,
    /// Its `WDFFILEOBJECT` (0 when the device needs none).
    object: usize,
    phase: Phase,
    /// A synchronous handle's file lock: the request holding it.
    busy: Option<u64>,
    /// Requests issued on it and not completed yet.
    outstanding: Vec<Arc<Irp>>,
}

impl FileState {
    fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// Whether the file's close is due now (cleaned up, no request left), claiming it if so.
    fn claim_close(&mut self) -> bool {
        let due = self.phase == Phase::CleanedUp && self.outstanding.is_empty();
        if due {
            self.phase = Phase::Closing;
        }
        due
    }
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
    next_request: u64,
}

impl Inner {
    const fn new_request_id(&mut self) -> u64 {
        self.next_request += 1;
        self.next_request
    }

    fn file_config(&self) -> Option<FileConfig> {
        self.device.as_ref().and_then(|d| d.file_config)
    }
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

/// An I/O request issued with [`Machine::device_io_control_async`]: `DeviceIoControl` with an
/// `OVERLAPPED` that returned `ERROR_IO_PENDING`, or that completed at once.
pub struct PendingIo {
    machine: Arc<MachineInner>,
    irp: Arc<Irp>,
    file: FileHandle,
}

impl std::fmt::Debug for PendingIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingIo")
            .field("request", &self.irp.id)
            .field("file", &self.file)
            .field("code", &format_args!("{:#010X}", self.irp.code))
            .field("complete", &self.is_complete())
            .finish_non_exhaustive()
    }
}

impl PendingIo {
    /// Whether the request has completed (`HasOverlappedIoCompleted`).
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.irp.is_complete()
    }

    /// The file it was issued on.
    #[must_use]
    pub const fn file(&self) -> FileHandle {
        self.file
    }

    /// The request's number (unique within the machine; used in messages).
    #[must_use]
    pub fn id(&self) -> u64 {
        self.irp.id
    }

    /// Waits for the completion (`GetOverlappedResult` with `bWait = TRUE`) and returns its
    /// status and the output bytes: `METHOD_BUFFERED` copies `min(Information, output length)`
    /// bytes back for a success, informational or warning status, nothing for an error status.
    ///
    /// # Errors
    /// [`IoError::Host`]: the bug check, or [`HostError::Hung`] naming the request when it
    /// does not complete within the hang budget.
    pub fn wait(self) -> Result<(NTSTATUS, Vec<u8>), IoError> {
        let completion = self.wait_completion()?;
        let output = if wdk_sys::NT_ERROR(completion.status) {
            Vec::new()
        } else {
            let n = usize::try_from(completion.information)
                .unwrap_or(usize::MAX)
                .min(self.irp.out_len)
                .min(completion.buffer.len());
            completion.buffer[..n].to_vec()
        };
        Ok((completion.status, output))
    }

    /// Waits until the dispatch routine has returned and the request has completed.
    fn wait_completion(&self) -> Result<Completion, HostError> {
        let irp = &self.irp;
        self.machine.wait_host_for(
            || format!("{} to complete", irp.describe()),
            || {
                (irp.is_dispatched() && irp.is_complete())
                    .then(|| irp.take_completion())
                    .flatten()
            },
        )
    }

    /// Waits until the request has completed, leaving the result to [`Self::wait`].
    fn wait_until_complete(&self) -> Result<(), HostError> {
        let irp = &self.irp;
        self.machine.wait_host_for(
            || format!("{} to complete", irp.describe()),
            || (irp.is_dispatched() && irp.is_complete()).then_some(()),
        )
    }
}

impl Drop for PendingIo {
    fn drop(&mut self) {
        irp::release(&self.machine, &self.irp);
    }
}

/// Starts `f` on a new emulated context (a thread in a system call) at `PASSIVE_LEVEL`.
fn spawn_kernel_thread(
    machine: &Arc<MachineInner>,
    name: &str,
    f: impl FnOnce(&Ctx) + Send + 'static,
) -> std::io::Result<()> {
    let owner = Arc::clone(machine);
    let name = name.to_owned();
    std::thread::Builder::new()
        .name(format!("ntsim-{name}"))
        .stack_size(machine.config.stack_size)
        .spawn(move || {
            let ctx = machine::install_context(&owner, ContextKind::Syscall, name, 0, 0);
            f(&ctx);
            owner.notify();
        })
        .map(drop)
}

/// Runs `f` on a new emulated context at `PASSIVE_LEVEL` and waits for its value.
fn on_kernel_thread<T: Send + 'static>(
    machine: &Arc<MachineInner>,
    name: &str,
    f: impl FnOnce(&Ctx) -> T + Send + 'static,
) -> Result<T, HostError> {
    let slot = Arc::new(Mutex::new(None));
    let out = Arc::clone(&slot);
    spawn_kernel_thread(machine, name, move |ctx| {
        let value = f(ctx);
        *out.lock().unwrap_or_else(PoisonError::into_inner) = Some(value);
    })
    .map_err(|error| HostError::Hung {
        budget: std::time::Duration::ZERO,
        waiting_for: format!("a host thread for the {name} (it could not start: {error})"),
    })?;
    machine.wait_host_for(
        || format!("the {name} to return"),
        || slot.lock().unwrap_or_else(PoisonError::into_inner).take(),
    )
}

/// The I/O manager's bookkeeping when a device-control request completes: it leaves its
/// file's outstanding list, releases a synchronous handle's lock, and if it was the last
/// request of a cleaned-up file, the file's close (`EvtFileClose`) runs, at `PASSIVE_LEVEL` on
/// a thread of its own (the completing context may be a DPC).
pub(crate) fn request_done(machine: &Arc<MachineInner>, irp: &Irp) {
    let close = {
        let mut io = machine.io.lock();
        let Some(file) = io.files.get_mut(&irp.file) else {
            return;
        };
        file.outstanding.retain(|i| i.id != irp.id);
        if file.busy == Some(irp.id) {
            file.busy = None;
        }
        file.claim_close()
    };
    if close {
        let id = irp.file;
        if let Err(error) = spawn_kernel_thread(machine, "I/O manager (IRP_MJ_CLOSE)", move |ctx| {
            close_file(ctx, id);
        }) {
            machine.log_line(format!(
                "ntsim: could not start the close of file {id}: {error}"
            ));
        }
    }
}

/// `IRP_MJ_CLOSE`: `EvtFileClose`, the file object's deletion, and the file is gone.
fn close_file(ctx: &Ctx, id: u64) {
    let (config, object) = {
        let io = ctx.machine.io.lock();
        (io.file_config(), io.files.get(&id).map_or(0, |f| f.object))
    };
    match config {
        Some(config) => config.close(ctx, object),
        None if object != 0 => wdf::delete(ctx, object),
        None => {}
    }
    ctx.machine.io.lock().files.remove(&id);
    ctx.machine.notify();
}

/// Device removal (`IRP_MN_REMOVE_DEVICE`), which comes before an unload: KMDF stops and purges
/// its queues (`EvtIoStop` on power-managed ones, cancel of the driver-cancelable requests);
/// the caller then waits for every request to complete.
fn remove_device(machine: &Arc<MachineInner>) -> Result<(), IoError> {
    let outstanding: Vec<Arc<Irp>> = machine
        .io
        .lock()
        .files
        .values()
        .flat_map(|f| f.outstanding.iter().cloned())
        .collect();
    if !outstanding.is_empty() {
        on_kernel_thread(machine, "PnP manager (IRP_MN_REMOVE_DEVICE)", move |ctx| {
            for irp in &outstanding {
                irp::remove(ctx, irp);
            }
        })?;
    }
    Ok(())
}

/// Describes the files not yet closed and their outstanding requests.
fn describe_open_files(machine: &MachineInner) -> String {
    let io = machine.io.lock();
    let mut ids: Vec<&u64> = io.files.keys().collect();
    ids.sort_unstable();
    let files: Vec<String> = ids
        .into_iter()
        .map(|id| {
            let f = &io.files[id];
            let state = match f.phase {
                Phase::Open => "open",
                Phase::CleaningUp => "closed by its handle, cleanup running",
                Phase::CleanedUp => "closed by its handle, waiting for its requests to complete",
                Phase::Closing => "closing (EvtFileClose running)",
            };
            let requests: Vec<String> = f.outstanding.iter().map(|i| i.describe()).collect();
            if requests.is_empty() {
                format!("file {id} ({state})")
            } else {
                format!("file {id} ({state}): {}", requests.join("; "))
            }
        })
        .collect();
    files.join("; ")
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

    /// Opens the device for synchronous (non-overlapped) I/O, checking `access` against its
    /// SDDL for `identity`: [`Self::open_with`] with `overlapped` false.
    ///
    /// # Errors
    /// As [`Self::open_with`].
    pub fn open(&self, identity: Identity, access: Access) -> Result<FileHandle, IoError> {
        self.open_with(identity, access, false)
    }

    /// Opens the device (`CreateFile`), checking `access` against its SDDL for `identity`.
    /// With `overlapped` (`FILE_FLAG_OVERLAPPED`) the handle may have several requests in
    /// flight; without it, its requests are synchronous and serialized: a request waits for
    /// the one before it on the same handle to complete, as the I/O manager's file-object lock
    /// makes it on Windows.
    ///
    /// When the driver registered file-object callbacks (`WdfDeviceInitSetFileObjectConfig`),
    /// the open makes the `WDFFILEOBJECT` and presents the create request to
    /// `EvtDeviceFileCreate`, which completes it; its status is the open's.
    ///
    /// # Errors
    /// `STATUS_OBJECT_NAME_NOT_FOUND` with no device, `STATUS_ACCESS_DENIED` when the SDDL
    /// does not grant the access, the status `EvtDeviceFileCreate` failed the create with, or
    /// the bug check.
    pub fn open_with(
        &self,
        identity: Identity,
        access: Access,
        overlapped: bool,
    ) -> Result<FileHandle, IoError> {
        let machine = Arc::clone(self.inner());
        if let Some(b) = machine.bugcheck() {
            return Err(IoError::Host(HostError::BugCheck(b)));
        }
        let (id, driver_side) = {
            let mut io = machine.io.lock();
            let Some(device) = io.device.as_ref() else {
                return Err(IoError::Status(wdk_sys::STATUS_OBJECT_NAME_NOT_FOUND));
            };
            if let Some(sddl) = &device.sddl {
                let granted = sddl_grants(sddl, identity);
                if (access.read && !granted.read) || (access.write && !granted.write) {
                    return Err(IoError::Status(wdk_sys::STATUS_ACCESS_DENIED));
                }
            }
            let device_handle = device.handle;
            let driver_side = device
                .file_config
                .filter(FileConfig::involves_driver)
                .map(|config| (config, device_handle));
            io.next_file += 1;
            let id = io.next_file;
            io.files.insert(
                id,
                FileState {
                    access,
                    overlapped,
                    object: 0,
                    phase: Phase::Open,
                    busy: None,
                    outstanding: Vec::new(),
                },
            );
            (id, driver_side)
        };
        let Some((config, device)) = driver_side else {
            return Ok(FileHandle(id));
        };
        let status = on_kernel_thread(&machine, "CreateFile caller", move |ctx| {
            let object = config.new_file_object(ctx);
            let request_id = {
                let mut io = ctx.machine.io.lock();
                if let Some(file) = io.files.get_mut(&id) {
                    file.object = object;
                }
                io.new_request_id()
            };
            let irp = Irp::new(request_id, id, Major::Create, 0, 0);
            let status = if config.has_create() {
                let request = Request::new(&irp, Box::default(), 0, object);
                let status = irp::present(&ctx.machine, &irp, request).map_or(
                    wdk_sys::STATUS_CANCELLED,
                    |handle| {
                        config.create(ctx, device, handle, object);
                        irp.wait_in_kernel(ctx).status
                    },
                );
                irp::release(&ctx.machine, &irp);
                status
            } else {
                wdk_sys::STATUS_SUCCESS
            };
            if !wdk_sys::NT_SUCCESS(status) {
                if object != 0 {
                    wdf::delete(ctx, object);
                }
                ctx.machine.io.lock().files.remove(&id);
            }
            return_to_user_mode(ctx, "NtCreateFile");
            status
        })?;
        if wdk_sys::NT_SUCCESS(status) {
            Ok(FileHandle(id))
        } else {
            Err(IoError::Status(status))
        }
    }

    /// Issues a device-control request on `file` and returns once the driver's dispatch has
    /// returned (or the request waits in a sequential queue). A synchronous handle's lock is
    /// taken first (waiting for the request before).
    fn issue(
        &self,
        file: FileHandle,
        code: u32,
        input: &[u8],
        out_len: usize,
    ) -> Result<PendingIo, IoError> {
        let machine = Arc::clone(self.inner());
        if let Some(b) = machine.bugcheck() {
            return Err(IoError::Host(HostError::BugCheck(b)));
        }
        let (access, object, request_id) = {
            let mut io = machine.io.lock();
            let f = io
                .files
                .get(&file.0)
                .filter(|f| f.is_open())
                .ok_or(IoError::Status(wdk_sys::STATUS_INVALID_HANDLE))?;
            let found = (f.access, f.object);
            (found.0, found.1, io.new_request_id())
        };
        let required = (code >> 14) & 0x3;
        if (required & 1 != 0 && !access.read) || (required & 2 != 0 && !access.write) {
            return Err(IoError::Status(wdk_sys::STATUS_ACCESS_DENIED));
        }
        let irp = Irp::new(request_id, file.0, Major::DeviceControl, code, out_len);
        let registered = machine.wait_host_for(
            || {
                format!(
                    "the synchronous file {} to finish its request before request #{request_id} \
                     ({})",
                    file.0,
                    describe_open_files(&machine)
                )
            },
            || {
                let mut io = machine.io.lock();
                let Some(f) = io.files.get_mut(&file.0).filter(|f| f.is_open()) else {
                    return Some(Err(IoError::Status(wdk_sys::STATUS_INVALID_HANDLE)));
                };
                if !f.overlapped {
                    if f.busy.is_some() {
                        return None;
                    }
                    f.busy = Some(request_id);
                }
                f.outstanding.push(Arc::clone(&irp));
                Some(Ok(()))
            },
        )?;
        registered?;
        let in_len = input.len();
        let mut buffer = vec![0_u8; in_len.max(out_len)].into_boxed_slice();
        buffer[..in_len].copy_from_slice(input);
        let dispatched = Arc::clone(&irp);
        let started = spawn_kernel_thread(&machine, "I/O caller", move |ctx| {
            wdf::queue::dispatch_device_control(ctx, &dispatched, buffer, in_len, object);
            return_to_user_mode(ctx, "NtDeviceIoControlFile");
            dispatched.mark_dispatched(&ctx.machine);
        });
        if started.is_err() {
            irp::finish(
                &machine,
                &irp,
                Completion::status_only(wdk_sys::STATUS_INSUFFICIENT_RESOURCES),
                0,
            );
            irp::release(&machine, &irp);
            return Err(IoError::Status(wdk_sys::STATUS_INSUFFICIENT_RESOURCES));
        }
        machine.wait_host_for(
            || format!("the dispatch of {} to return", irp.describe()),
            || irp.is_dispatched().then_some(()),
        )?;
        Ok(PendingIo { machine, irp, file })
    }

    /// Sends an IOCTL and waits for its completion. `METHOD_BUFFERED`: one system buffer of
    /// `max(in, out)` bytes carries the input in and the output back; on success `Information`
    /// bytes (at most `output.len()`) are copied to `output`.
    ///
    /// # Errors
    /// The completion NTSTATUS when it is not a success (access checks by the I/O manager, or
    /// the driver's), `STATUS_INVALID_HANDLE` on a closed handle, or the bug check.
    pub fn device_io_control(
        &self,
        file: FileHandle,
        code: u32,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<usize, IoError> {
        let pending = self.issue(file, code, input, output.len())?;
        let completion = pending.wait_completion()?;
        // DeviceIoControl fails for every status that is not a success: errors, and warnings
        // such as STATUS_DEVICE_BUSY (Win32 ERROR_BUSY) too.
        if !wdk_sys::NT_SUCCESS(completion.status) {
            return Err(IoError::Status(completion.status));
        }
        let n = usize::try_from(completion.information)
            .unwrap_or(usize::MAX)
            .min(output.len())
            .min(completion.buffer.len());
        output[..n].copy_from_slice(&completion.buffer[..n]);
        Ok(n)
    }

    /// Sends an IOCTL without waiting for it (`DeviceIoControl` with an `OVERLAPPED`): returns
    /// once the driver's dispatch has returned, while the request may still be pending in the
    /// driver; [`PendingIo::wait`] gives its status and output. On a synchronous handle (not
    /// opened overlapped) the call returns only once the request has completed, as on Windows.
    ///
    /// # Errors
    /// `STATUS_INVALID_HANDLE` on a closed handle, `STATUS_ACCESS_DENIED` when the handle lacks
    /// the access the IOCTL code requires, or the bug check.
    pub fn device_io_control_async(
        &self,
        file: FileHandle,
        code: u32,
        input: &[u8],
        out_len: usize,
    ) -> Result<PendingIo, IoError> {
        let pending = self.issue(file, code, input, out_len)?;
        let overlapped = self
            .inner()
            .io
            .lock()
            .files
            .get(&file.0)
            .is_some_and(|f| f.overlapped);
        if !overlapped {
            pending.wait_until_complete()?;
        }
        Ok(pending)
    }

    /// `CancelIoEx`: cancels `io`, or with `None` every request outstanding on `file`
    /// (`IoCancelIrp` on each, on the caller's thread: a request the driver has marked
    /// cancelable gets its `EvtRequestCancel` before this returns; a request waiting in a
    /// queue is completed with `STATUS_CANCELLED` by the framework; any other is only flagged,
    /// for the driver to see with `WdfRequestIsCanceled`). It does not wait for the requests
    /// to complete.
    ///
    /// # Errors
    /// `STATUS_INVALID_HANDLE` on a closed handle, `STATUS_NOT_FOUND` when there is nothing to
    /// cancel (`ERROR_NOT_FOUND`), or the bug check.
    pub fn cancel_io(&self, file: FileHandle, io: Option<&PendingIo>) -> Result<(), IoError> {
        let machine = Arc::clone(self.inner());
        if let Some(b) = machine.bugcheck() {
            return Err(IoError::Host(HostError::BugCheck(b)));
        }
        let targets: Vec<Arc<Irp>> = {
            let state = machine.io.lock();
            let f = state
                .files
                .get(&file.0)
                .filter(|f| f.is_open())
                .ok_or(IoError::Status(wdk_sys::STATUS_INVALID_HANDLE))?;
            f.outstanding
                .iter()
                .filter(|irp| io.is_none_or(|p| Arc::ptr_eq(irp, &p.irp)))
                .cloned()
                .collect()
        };
        if targets.is_empty() {
            return Err(IoError::Status(wdk_sys::STATUS_NOT_FOUND));
        }
        on_kernel_thread(&machine, "CancelIoEx caller", move |ctx| {
            for irp in &targets {
                irp::cancel(ctx, irp);
            }
            return_to_user_mode(ctx, "NtCancelIoFileEx");
        })?;
        Ok(())
    }

    /// Closes a handle (`CloseHandle`), ignoring errors: see [`Self::try_close`].
    pub fn close(&self, file: FileHandle) {
        let _ = self.try_close(file);
    }

    /// Closes a handle (`CloseHandle`) in Windows' two steps. Cleanup (`IRP_MJ_CLEANUP`, the
    /// handle's last reference is gone) runs now, on the caller's thread: the driver's
    /// `EvtFileCleanup`, then the file's requests still waiting in a framework queue are canceled
    /// (KMDF's `FlushAllQueuesByFileObject`). Requests the driver already owns are not canceled
    /// and their cancel flag stays clear: as on Windows, where `CloseHandle` cancels nothing
    /// itself, completing them is up to the driver's `EvtFileCleanup`. Close (`IRP_MJ_CLOSE`: `EvtFileClose`, then the `WDFFILEOBJECT` is
    /// deleted) follows once every request of the file has completed: at once if none is left,
    /// else on a thread of its own after the last completion. Requests on the handle afterwards
    /// fail with `STATUS_INVALID_HANDLE`.
    ///
    /// # Errors
    /// `STATUS_INVALID_HANDLE` when the handle is not open, or the bug check.
    pub fn try_close(&self, file: FileHandle) -> Result<(), IoError> {
        let machine = Arc::clone(self.inner());
        if let Some(b) = machine.bugcheck() {
            return Err(IoError::Host(HostError::BugCheck(b)));
        }
        let (config, object, outstanding) = {
            let mut io = machine.io.lock();
            let config = io.file_config();
            let Some(f) = io.files.get_mut(&file.0).filter(|f| f.is_open()) else {
                return Err(IoError::Status(wdk_sys::STATUS_INVALID_HANDLE));
            };
            f.phase = Phase::CleaningUp;
            if config.is_none() && f.outstanding.is_empty() {
                // Nothing of the driver's runs: the file object simply goes.
                io.files.remove(&file.0);
                return Ok(());
            }
            (config, f.object, f.outstanding.clone())
        };
        on_kernel_thread(&machine, "CloseHandle caller", move |ctx| {
            if let Some(config) = &config {
                config.cleanup(ctx, object);
            }
            for irp in &outstanding {
                irp::flush_if_queued(irp);
            }
            let close_now = {
                let mut io = ctx.machine.io.lock();
                io.files.get_mut(&file.0).is_some_and(|f| {
                    f.phase = Phase::CleanedUp;
                    f.claim_close()
                })
            };
            if close_now {
                close_file(ctx, file.0);
            }
            return_to_user_mode(ctx, "NtClose");
        })?;
        Ok(())
    }

    /// Unloads the driver: calls `EvtDriverUnload`, deletes its framework objects, then checks
    /// what it left behind. Running system threads are 0xCE (P4 their count); queued or running
    /// work items are 0xCE (P3 their count); armed timers are 0xCE (P1 the first, P4 their
    /// count); pool still allocated is 0xC4/0x62 (P3 blocks, P4 bytes). Kernel handles left
    /// open and object references never dropped are not a bug check (ddi.md 13.5 names none):
    /// they are counted in the [`UnloadReport`] and logged.
    ///
    ///
    /// Unload is refused while a handle is open. A request still outstanding (on a handle
    /// already closed) keeps the device and driver referenced. The device is removed first
    /// (`IRP_MN_REMOVE_DEVICE`), as `PnP` does before an unload: KMDF stops and purges its
    /// queues, so requests still queued complete with `STATUS_CANCELLED`, a power-managed
    /// queue's `EvtIoStop` is called for each request the driver owns, and the requests still
    /// marked cancelable are canceled. Then unload waits for every request to complete and for
    /// the file's close, within the hang budget.
    ///
    /// # Errors
    /// [`IoError::Usage`] with handles still open or no driver; [`IoError::Host`] on a bug
    /// check, or [`HostError::Hung`] naming the requests that did not complete.
    pub fn unload(&self) -> Result<UnloadReport, IoError> {
        let machine = Arc::clone(self.inner());
        {
            let io = machine.io.lock();
            if io.driver.is_none() {
                return Err(IoError::Usage("no driver is loaded"));
            }
            if io.files.values().any(FileState::is_open) {
                return Err(IoError::Usage(
                    "handles are still open on the device: close them before unloading",
                ));
            }
        }
        remove_device(&machine)?;
        machine.wait_host_for(
            || {
                format!(
                    "the device's outstanding requests to complete before unload: {}",
                    describe_open_files(&machine)
                )
            },
            || machine.io.lock().files.is_empty().then_some(()),
        )?;
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
