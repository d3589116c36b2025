//! The Windows backend: the real device, driven by the installed KMDF driver (`synclab.sys`).
//!
//! The device is found the way the KMDF echo sample's client finds its device: the Configuration
//! Manager lists the present interfaces of [`DEVICE_INTERFACE_GUID`], the first path is opened
//! with `CreateFileW` for overlapped I/O, and each request is one `DeviceIoControl` waited on with
//! `GetOverlappedResult`, so that another thread (the Ctrl-C handler) can cancel it with
//! `CancelIoEx`: the driver then stops the run and answers with its figures so far. Only when the
//! Configuration Manager fails does the setup API get asked whether any such device exists, so
//! that "no device" is reported as such (Wine, where the CI smoke test runs, stubs the
//! Configuration Manager call).
//!
//! The device's security descriptor (the INF's `Security` value and the driver's SDDL,
//! `D:P(A;;GA;;;SY)(A;;GA;;;BA)`) admits only SYSTEM and Administrators, so the client has to
//! run elevated. The handle is an [`OwnedHandle`], so it is closed when the device is dropped;
//! [`Device::close`] closes it explicitly and reports a failure.

use std::ffi::c_void;
use std::os::windows::io::{AsRawHandle, HandleOrInvalid, IntoRawHandle, OwnedHandle};
use std::{mem, ptr};

use synclab_protocol::{DEVICE_INTERFACE_GUID, HARDWARE_ID};
use windows_sys::core::GUID;
use windows_sys::Win32::Devices::DeviceAndDriverInstallation::{
    CM_Get_Device_Interface_ListW, CM_Get_Device_Interface_List_SizeW,
    SetupDiDestroyDeviceInfoList, SetupDiEnumDeviceInterfaces, SetupDiGetClassDevsW,
    CM_GET_DEVICE_INTERFACE_LIST_PRESENT, CONFIGRET, CR_ACCESS_DENIED, CR_BUFFER_SMALL,
    CR_CALL_NOT_IMPLEMENTED, CR_INVALID_DATA, CR_INVALID_FLAG, CR_INVALID_POINTER,
    CR_NO_SUCH_DEVICE_INTERFACE, CR_OUT_OF_MEMORY, CR_SUCCESS, DIGCF_DEVICEINTERFACE,
    DIGCF_PRESENT, HDEVINFO, SP_DEVICE_INTERFACE_DATA,
};
use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_ACCESS_DENIED, ERROR_BAD_LENGTH, ERROR_BUSY, ERROR_CALL_NOT_IMPLEMENTED,
    ERROR_FILE_NOT_FOUND, ERROR_GEN_FAILURE, ERROR_INSUFFICIENT_BUFFER, ERROR_INVALID_FUNCTION,
    ERROR_INVALID_PARAMETER, ERROR_NOT_ENOUGH_MEMORY, ERROR_NOT_SUPPORTED, ERROR_NO_MORE_ITEMS,
    ERROR_NO_SYSTEM_RESOURCES, ERROR_PATH_NOT_FOUND, ERROR_REVISION_MISMATCH, GENERIC_READ,
    GENERIC_WRITE, INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::Foundation::{ERROR_IO_PENDING, ERROR_OPERATION_ABORTED, HANDLE};
use windows_sys::Win32::Storage::FileSystem::FILE_FLAG_OVERLAPPED;
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FILE_ATTRIBUTE_NORMAL, FILE_SHARE_READ, FILE_SHARE_WRITE, OPEN_EXISTING,
};
use windows_sys::Win32::System::Diagnostics::Debug::{
    FormatMessageW, FORMAT_MESSAGE_FROM_SYSTEM, FORMAT_MESSAGE_IGNORE_INSERTS,
};
use windows_sys::Win32::System::Threading::CreateEventW;
use windows_sys::Win32::System::IO::{
    CancelIoEx, DeviceIoControl, GetOverlappedResult, OVERLAPPED,
};

use super::{Canceller, Device, DeviceError};

/// [`DEVICE_INTERFACE_GUID`] in the layout the Win32 API takes.
const INTERFACE_GUID: GUID = GUID {
    data1: DEVICE_INTERFACE_GUID.data1,
    data2: DEVICE_INTERFACE_GUID.data2,
    data3: DEVICE_INTERFACE_GUID.data3,
    data4: DEVICE_INTERFACE_GUID.data4,
};

/// How often the interface list is read again when it grew between the size query and the read
/// (a device arriving at that moment).
const LIST_ATTEMPTS: usize = 4;

/// Opens the first present device of the driver.
///
/// # Errors
/// - [`DeviceError::NotFound`] when no device exposes the driver's interface (the message says
///   how to install the driver);
/// - [`DeviceError::Win32`] when listing or opening fails, e.g. `ERROR_ACCESS_DENIED` when the
///   client is not elevated.
pub fn open() -> Result<Box<dyn Device>, DeviceError> {
    let paths = interface_paths()?;
    let count = paths.len();
    let path = paths.into_iter().next().ok_or_else(not_found)?;
    let handle = open_path(&path)?;
    Ok(Box::new(KernelDevice {
        handle,
        path: display_path(&path),
        count,
    }))
}

/// An open handle to the driver's device.
struct KernelDevice {
    /// The device handle, opened for reading and writing, overlapped. Closed on drop.
    handle: OwnedHandle,
    /// The device interface path that was opened, for [`Device::describe`].
    path: String,
    /// How many devices of the driver were present when this one was opened.
    count: usize,
}

impl Device for KernelDevice {
    fn describe(&self) -> String {
        let others = match self.count {
            0 | 1 => String::new(),
            n => format!(", the first of {n} SyncLab devices"),
        };
        format!(
            "SyncLab driver in the Windows kernel at {}{others}",
            self.path
        )
    }

    fn ioctl(&mut self, code: u32, input: &[u8], output: &mut [u8]) -> Result<usize, DeviceError> {
        let input_len = buffer_len(input.len(), "input")?;
        let output_len = buffer_len(output.len(), "output")?;
        let input_ptr = if input.is_empty() {
            ptr::null()
        } else {
            input.as_ptr().cast::<c_void>()
        };
        let output_ptr = if output.is_empty() {
            ptr::null_mut()
        } else {
            output.as_mut_ptr().cast::<c_void>()
        };
        let event = Event::new()?;
        // SAFETY: OVERLAPPED is plain data for which all-zero is the documented initial state.
        let mut overlapped: OVERLAPPED = unsafe { mem::zeroed() };
        overlapped.hEvent = event.0;
        let mut returned: u32 = 0;
        // SAFETY: FFI contract: `self.handle` is an open device handle owned by `self`, opened with
        // FILE_FLAG_OVERLAPPED; `overlapped` carries a manual-reset event, and the request is
        // waited for below (GetOverlappedResult with bWait = TRUE) before any buffer or the
        // OVERLAPPED goes out of scope, also when it was cancelled.
        // Memory: `input_ptr` is readable for `input_len` bytes and `output_ptr` writable for
        // `output_len` bytes (each borrowed from a live slice, or null with length 0) for the
        // whole request, which ends before this function returns.
        let ok = unsafe {
            DeviceIoControl(
                self.handle.as_raw_handle(),
                code,
                input_ptr,
                input_len,
                output_ptr,
                output_len,
                &raw mut returned,
                &raw mut overlapped,
            )
        };
        if ok == 0 {
            let code = last_error();
            if code != ERROR_IO_PENDING {
                return Err(ioctl_failure(code));
            }
            // SAFETY: FFI contract: the same handle and OVERLAPPED as the pending request;
            // bWait = TRUE returns once the request has completed (or was cancelled and completed),
            // after which the kernel no longer touches the buffers.
            // Memory: `returned` is a valid, writable u32.
            let done = unsafe {
                GetOverlappedResult(
                    self.handle.as_raw_handle(),
                    &raw const overlapped,
                    &raw mut returned,
                    1,
                )
            };
            if done == 0 {
                return Err(ioctl_failure(last_error()));
            }
        }
        // The I/O manager never reports more than the output length; clamp anyway.
        Ok(usize::try_from(returned).map_or(output.len(), |n| n.min(output.len())))
    }

    fn canceller(&self) -> Canceller {
        // The handle as a number, so the closure can cross threads; it stays open while the
        // device lives, and the client cancels only while a request is in flight.
        let handle = self.handle.as_raw_handle() as usize;
        Box::new(move || {
            // SAFETY: FFI contract: CancelIoEx with a null OVERLAPPED cancels every request of
            // the handle issued by this process; on a handle with nothing in flight it fails with
            // ERROR_NOT_FOUND, which is fine.
            // Memory: it reads no caller memory.
            let _ = unsafe { CancelIoEx(handle as HANDLE, ptr::null()) };
        })
    }

    fn close(self: Box<Self>) -> Result<(), DeviceError> {
        let raw = self.handle.into_raw_handle();
        // SAFETY: FFI contract: `raw` is the open handle just released from its `OwnedHandle`, so
        // it is valid and is closed exactly once, here.
        // Memory: no other copy of the handle exists, so nothing can use it after it is closed.
        let ok = unsafe { CloseHandle(raw) };
        if ok == 0 {
            let code = last_error();
            return Err(DeviceError::Win32 {
                call: "CloseHandle",
                code,
                message: system_message(code),
            });
        }
        Ok(())
    }
}

/// The NUL-terminated paths of all present device interfaces of the driver, at least one.
fn interface_paths() -> Result<Vec<Vec<u16>>, DeviceError> {
    let guid = INTERFACE_GUID;
    for _ in 0..LIST_ATTEMPTS {
        let mut len: u32 = 0;
        // SAFETY: FFI contract: `len` is a valid, writable u32, `guid` is a valid GUID,
        // and a null device ID asks for the interfaces of all devices.
        // Memory: both pointers outlive the call, which keeps neither.
        let cr = unsafe {
            CM_Get_Device_Interface_List_SizeW(
                &raw mut len,
                &raw const guid,
                ptr::null(),
                CM_GET_DEVICE_INTERFACE_LIST_PRESENT,
            )
        };
        match cr {
            CR_SUCCESS => {}
            CR_NO_SUCH_DEVICE_INTERFACE => return Err(not_found()),
            // A second opinion before reporting the failure: when SetupAPI sees no present
            // interface either, "not found" is the true answer. Wine (the CI smoke test) needs
            // this: its cfgmgr32 stubs this function with CR_FAILURE.
            _ if setupapi_sees_interface() == Some(false) => return Err(not_found()),
            _ => return Err(cr_error("CM_Get_Device_Interface_List_SizeW", cr)),
        }
        // An empty list is a single NUL (length 1).
        if len <= 1 {
            return Err(not_found());
        }
        let units = usize::try_from(len)
            .map_err(|_| cr_error("CM_Get_Device_Interface_List_SizeW", CR_OUT_OF_MEMORY))?;
        let mut buffer = vec![0_u16; units];
        // SAFETY: FFI contract: `guid` is a valid GUID, a null device ID asks for all
        // devices, and `len` is the length of `buffer` in UTF-16 units.
        // Memory: `buffer` is writable for `len` units; the function writes at most that many
        // and keeps no pointer after returning.
        let cr = unsafe {
            CM_Get_Device_Interface_ListW(
                &raw const guid,
                ptr::null(),
                buffer.as_mut_ptr(),
                len,
                CM_GET_DEVICE_INTERFACE_LIST_PRESENT,
            )
        };
        match cr {
            CR_SUCCESS => {
                let paths = split_multi_sz(&buffer);
                return if paths.is_empty() {
                    Err(not_found())
                } else {
                    Ok(paths)
                };
            }
            // The list grew since the size query: ask again.
            CR_BUFFER_SMALL => {}
            CR_NO_SUCH_DEVICE_INTERFACE => return Err(not_found()),
            _ => return Err(cr_error("CM_Get_Device_Interface_ListW", cr)),
        }
    }
    Err(cr_error("CM_Get_Device_Interface_ListW", CR_BUFFER_SMALL))
}

/// Whether the setup API sees a present device exposing the interface: `None` when it cannot tell.
///
/// Used only when the Configuration Manager fails to list interfaces, to tell "no device" apart
/// from a real failure. It does not read paths (`SetupDiGetDeviceInterfaceDetailW`): when a device
/// exists, the Configuration Manager's error is the one worth reporting.
fn setupapi_sees_interface() -> Option<bool> {
    let guid = INTERFACE_GUID;
    // SAFETY: FFI contract: `guid` is a valid GUID; with DIGCF_DEVICEINTERFACE, a null enumerator
    // and a null parent window are allowed, and the result is a new list or INVALID_HANDLE_VALUE.
    // Memory: `guid` outlives the call, which keeps no pointer to it.
    let set = unsafe {
        SetupDiGetClassDevsW(
            &raw const guid,
            ptr::null(),
            ptr::null_mut(),
            DIGCF_PRESENT | DIGCF_DEVICEINTERFACE,
        )
    };
    if set == INVALID_HANDLE_VALUE as HDEVINFO {
        return None;
    }
    let set = DeviceInfoList(set);
    let mut data = SP_DEVICE_INTERFACE_DATA {
        cbSize: u32::try_from(mem::size_of::<SP_DEVICE_INTERFACE_DATA>()).ok()?,
        InterfaceClassGuid: GUID::from_u128(0),
        Flags: 0,
        Reserved: 0,
    };
    // SAFETY: FFI contract: `set.0` is the open list just returned, a null device-info pointer
    // means "any device in the list", and `data.cbSize` holds the structure's size as required.
    // Memory: `guid` and `data` outlive the call; `data` is writable and nothing is retained.
    let found = unsafe {
        SetupDiEnumDeviceInterfaces(set.0, ptr::null(), &raw const guid, 0, &raw mut data)
    };
    if found != 0 {
        Some(true)
    } else if last_error() == ERROR_NO_MORE_ITEMS {
        Some(false)
    } else {
        None
    }
}

/// A setup API device information list (`HDEVINFO`), destroyed on drop.
struct DeviceInfoList(HDEVINFO);

impl Drop for DeviceInfoList {
    fn drop(&mut self) {
        // SAFETY: FFI contract: `self.0` is a valid list from SetupDiGetClassDevsW (never
        // INVALID_HANDLE_VALUE, which is checked before wrapping), destroyed exactly once, here.
        // Memory: no interface data taken from the list outlives it.
        let _ = unsafe { SetupDiDestroyDeviceInfoList(self.0) };
    }
}

/// A manual-reset event for one overlapped request, closed on drop.
struct Event(HANDLE);

impl Event {
    fn new() -> Result<Self, DeviceError> {
        // SAFETY: FFI contract: null security attributes and a null name are documented as
        // allowed; manual reset, initially not signaled, as overlapped I/O expects.
        // Memory: nothing is borrowed.
        let handle = unsafe { CreateEventW(ptr::null(), 1, 0, ptr::null()) };
        if handle.is_null() {
            let code = last_error();
            return Err(DeviceError::Win32 {
                call: "CreateEventW",
                code,
                message: system_message(code),
            });
        }
        Ok(Self(handle))
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        // SAFETY: FFI contract: a handle CreateEventW returned, closed exactly once, here, after
        // the request that used it has completed.
        // Memory: no copy of the handle outlives the event.
        let _ = unsafe { CloseHandle(self.0) };
    }
}

/// A failed or cancelled `DeviceIoControl`.
fn ioctl_failure(code: u32) -> DeviceError {
    DeviceError::Win32 {
        call: "DeviceIoControl",
        code,
        message: if code == ERROR_OPERATION_ABORTED {
            "the request was cancelled before the driver could answer it".to_owned()
        } else {
            ioctl_message(code)
        },
    }
}

/// Splits a `REG_MULTI_SZ`-style list into its strings, each kept NUL-terminated for `CreateFileW`.
fn split_multi_sz(buffer: &[u16]) -> Vec<Vec<u16>> {
    buffer
        .split(|&unit| unit == 0)
        .take_while(|path| !path.is_empty())
        .map(|path| {
            let mut owned = Vec::with_capacity(path.len() + 1);
            owned.extend_from_slice(path);
            owned.push(0);
            owned
        })
        .collect()
}

/// A NUL-terminated UTF-16 path as text.
fn display_path(path: &[u16]) -> String {
    let end = path
        .iter()
        .position(|&unit| unit == 0)
        .unwrap_or(path.len());
    String::from_utf16_lossy(&path[..end])
}

/// Opens the device interface at `path` (NUL-terminated) for overlapped reading and writing.
fn open_path(path: &[u16]) -> Result<OwnedHandle, DeviceError> {
    debug_assert_eq!(path.last(), Some(&0), "the path must be NUL-terminated");
    // SAFETY: FFI contract: `path` is a NUL-terminated UTF-16 string (see `split_multi_sz`); null
    // security attributes and a null template handle are documented as allowed.
    // Memory: `path` outlives the call, and CreateFileW keeps no pointer to it.
    let raw = unsafe {
        CreateFileW(
            path.as_ptr(),
            GENERIC_READ | GENERIC_WRITE,
            FILE_SHARE_READ | FILE_SHARE_WRITE,
            ptr::null(),
            OPEN_EXISTING,
            FILE_ATTRIBUTE_NORMAL | FILE_FLAG_OVERLAPPED,
            ptr::null_mut(),
        )
    };
    // Read the error code before any other call can overwrite it; it only matters on failure.
    let code = last_error();
    // SAFETY: `raw` was just returned by CreateFileW, which returns either INVALID_HANDLE_VALUE or
    // a new handle that this process owns and nothing else refers to: exactly the convention
    // `HandleOrInvalid` exists for, and it takes ownership of the handle.
    let checked = unsafe { HandleOrInvalid::from_raw_handle(raw) };
    OwnedHandle::try_from(checked).map_err(|_| open_error(code, &display_path(path)))
}

/// The error for a failed `CreateFileW` on `path`.
fn open_error(code: u32, path: &str) -> DeviceError {
    match code {
        ERROR_ACCESS_DENIED => DeviceError::Win32 {
            call: "CreateFileW",
            code,
            message: format!(
                "access denied opening {path}: the SyncLab device admits only SYSTEM and \
                 Administrators (SDDL D:P(A;;GA;;;SY)(A;;GA;;;BA)); run synclab from an elevated \
                 prompt (Run as administrator)"
            ),
        },
        // The device went away between listing and opening (removed or being disabled).
        ERROR_FILE_NOT_FOUND | ERROR_PATH_NOT_FOUND => DeviceError::NotFound(format!(
            "the SyncLab device at {path} disappeared before it could be opened"
        )),
        _ => DeviceError::Win32 {
            call: "CreateFileW",
            code,
            message: system_message(code),
        },
    }
}

/// The [`DeviceError::NotFound`] for "no device exposes the interface", with install steps.
fn not_found() -> DeviceError {
    DeviceError::NotFound(format!(
        "no device exposes the SyncLab interface {DEVICE_INTERFACE_GUID}. Install the driver package \
         from an elevated prompt: `pnputil /add-driver synclab.inf /install`, then create the \
         root-enumerated device: `devgen /add /hardwareid \"{HARDWARE_ID}\"` (or \
         `devcon install synclab.inf {HARDWARE_ID}`). A test-signed package also needs \
         `bcdedit /set testsigning on` and WDRLocalTestCert.cer trusted; run synclab elevated, \
         since only SYSTEM and Administrators may open the device"
    ))
}

/// A Configuration Manager failure as a [`DeviceError::Win32`].
///
/// `CM_MapCrToWin32Err` would do the mapping, but the `CONFIGRET` values this backend can meet are
/// few, and keeping the import list small lets the client start under Wine, whose cfgmgr32 lacks
/// that export.
fn cr_error(call: &'static str, cr: CONFIGRET) -> DeviceError {
    let code = match cr {
        CR_OUT_OF_MEMORY => ERROR_NOT_ENOUGH_MEMORY,
        CR_ACCESS_DENIED => ERROR_ACCESS_DENIED,
        CR_BUFFER_SMALL => ERROR_INSUFFICIENT_BUFFER,
        CR_INVALID_POINTER | CR_INVALID_FLAG | CR_INVALID_DATA => ERROR_INVALID_PARAMETER,
        CR_CALL_NOT_IMPLEMENTED => ERROR_CALL_NOT_IMPLEMENTED,
        _ => ERROR_GEN_FAILURE,
    };
    DeviceError::Win32 {
        call,
        code,
        message: format!(
            "Configuration Manager returned CONFIGRET {cr:#04X}: {}",
            system_message(code)
        ),
    }
}

/// What a `DeviceIoControl` failure means for this driver. It completes requests with an
/// `NTSTATUS`, which Windows turns into these Win32 codes (`RtlNtStatusToDosError`).
fn ioctl_message(code: u32) -> String {
    let fixed = match code {
        ERROR_INVALID_FUNCTION => {
            "the driver does not know this IOCTL code (STATUS_INVALID_DEVICE_REQUEST): the client \
             and the driver come from different builds"
        }
        ERROR_ACCESS_DENIED => {
            "access denied (STATUS_ACCESS_DENIED): the handle lacks the access this IOCTL needs; \
             run synclab elevated"
        }
        ERROR_BAD_LENGTH => {
            "the request's size field does not match the structure (STATUS_INFO_LENGTH_MISMATCH)"
        }
        ERROR_NOT_SUPPORTED => {
            "the driver does not support this primitive or flag (STATUS_NOT_SUPPORTED)"
        }
        ERROR_INVALID_PARAMETER => {
            "the driver rejected a field of the request as out of range (STATUS_INVALID_PARAMETER)"
        }
        ERROR_INSUFFICIENT_BUFFER => {
            "an input or output buffer is smaller than its structure (STATUS_BUFFER_TOO_SMALL)"
        }
        ERROR_BUSY => {
            return format!(
                "another stress run is in progress (the driver runs at most {} at once; \
                 STATUS_DEVICE_BUSY)",
                synclab_protocol::limits::MAX_CONCURRENT_RUNS
            );
        }
        ERROR_REVISION_MISMATCH => {
            "the driver speaks another ABI version (STATUS_REVISION_MISMATCH): install the driver \
             built with this client"
        }
        ERROR_NO_SYSTEM_RESOURCES => {
            "the driver could not get pool memory or threads (STATUS_INSUFFICIENT_RESOURCES)"
        }
        _ => return system_message(code),
    };
    fixed.to_owned()
}

/// The system's text for a Win32 error code, from `FormatMessageW`.
fn system_message(code: u32) -> String {
    let mut buffer = [0_u16; 512];
    let capacity = u32::try_from(buffer.len()).unwrap_or(u32::MAX);
    // SAFETY: FFI contract: FORMAT_MESSAGE_FROM_SYSTEM with IGNORE_INSERTS takes no source and no
    // arguments (both null), and without ALLOCATE_BUFFER `lpBuffer` is a caller buffer of `nSize`
    // UTF-16 units.
    // Memory: `buffer` is writable for `capacity` units; FormatMessageW writes at most that many
    // (it fails rather than overflow) and keeps no pointer.
    let written = unsafe {
        FormatMessageW(
            FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS,
            ptr::null(),
            code,
            0,
            buffer.as_mut_ptr(),
            capacity,
            ptr::null(),
        )
    };
    let len = usize::try_from(written).map_or(0, |n| n.min(buffer.len()));
    let text = String::from_utf16_lossy(&buffer[..len]);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let text = text.trim_end_matches('.');
    if text.is_empty() {
        format!("unknown Win32 error {code}")
    } else {
        text.to_owned()
    }
}

/// A buffer length as the `u32` that `DeviceIoControl` takes.
fn buffer_len(len: usize, which: &str) -> Result<u32, DeviceError> {
    u32::try_from(len).map_err(|_| DeviceError::Win32 {
        call: "DeviceIoControl",
        code: ERROR_INVALID_PARAMETER,
        message: format!("the {which} buffer is {len} bytes, more than DeviceIoControl can pass"),
    })
}

/// `GetLastError()` of this thread (std reads it the same way).
fn last_error() -> u32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .map_or(0, |code| u32::from_ne_bytes(code.to_ne_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interface_guid_matches_the_protocol() {
        assert_eq!(INTERFACE_GUID.data1, 0x83C7_ECFB);
        assert_eq!(INTERFACE_GUID.data4, DEVICE_INTERFACE_GUID.data4);
    }

    #[test]
    fn multi_sz_lists_split_into_terminated_paths() {
        let list: Vec<u16> = "a\0bc\0\0".encode_utf16().collect();
        let paths = split_multi_sz(&list);
        assert_eq!(
            paths,
            vec![
                vec![u16::from(b'a'), 0],
                vec![u16::from(b'b'), u16::from(b'c'), 0]
            ]
        );
        assert_eq!(display_path(&paths[1]), "bc");
        assert!(split_multi_sz(&[0]).is_empty());
    }

    #[test]
    fn common_ioctl_failures_have_fixed_texts() {
        assert!(ioctl_message(ERROR_REVISION_MISMATCH).contains("ABI version"));
        assert!(ioctl_message(ERROR_INVALID_FUNCTION).contains("IOCTL"));
    }

    #[test]
    fn system_messages_come_from_format_message() {
        let text = system_message(ERROR_ACCESS_DENIED);
        assert!(!text.is_empty() && !text.starts_with("unknown"), "{text}");
        assert!(!text.ends_with('.') && !text.contains('\n'), "{text}");
        assert_eq!(
            system_message(0xDEAD_BEEF),
            "unknown Win32 error 3735928559"
        );
    }

    #[test]
    fn a_vanished_device_is_not_found() {
        let path: Vec<u16> = "\\\\.\\SyncLabNoSuchDevice\0".encode_utf16().collect();
        let error = open_path(&path).expect_err("no such device");
        assert!(matches!(error, DeviceError::NotFound(_)), "{error}");
    }

    #[test]
    fn ioctl_failures_and_close_go_through_the_handle() {
        // The NUL device opens like any device and fails every SyncLab IOCTL.
        let path: Vec<u16> = "\\\\.\\NUL\0".encode_utf16().collect();
        let handle = open_path(&path).expect("NUL opens");
        let mut device = Box::new(KernelDevice {
            handle,
            path: display_path(&path),
            count: 1,
        });
        assert!(device.describe().contains("NUL"));
        let mut output = [0_u8; 16];
        let error = device
            .ioctl(
                synclab_protocol::ioctl::IOCTL_SYNCLAB_GET_INFO,
                &[1, 2, 3],
                &mut output,
            )
            .expect_err("NUL knows no SyncLab IOCTL");
        assert!(
            matches!(
                error,
                DeviceError::Win32 {
                    call: "DeviceIoControl",
                    ..
                }
            ),
            "{error}"
        );
        device.close().expect("closing succeeds");
    }

    #[test]
    fn not_found_says_how_to_install() {
        let text = not_found().to_string();
        assert!(text.starts_with("no SyncLab device found"));
        assert!(text.contains("pnputil /add-driver synclab.inf /install"));
        assert!(text.contains("Root\\SyncLab"));
    }
}
