//! A minimal KMDF test driver's scaffolding: the framework driver object, and a device with a
//! parallel default queue. Each test file supplies its own `DriverEntry` and device-add
//! callbacks (plain `extern` functions, as the framework calls them) that forward here with the
//! queue's device-control callback.

use std::ptr;

use ntsim::wdk_sys::{
    call_unsafe_wdf_function_binding, _WDF_IO_QUEUE_DISPATCH_TYPE, _WDF_TRI_STATE, DRIVER_OBJECT,
    GUID, NTSTATUS, PCUNICODE_STRING, PFN_WDF_DRIVER_DEVICE_ADD,
    PFN_WDF_IO_QUEUE_IO_DEVICE_CONTROL, PWDFDEVICE_INIT, WDFDEVICE, WDFDRIVER, WDFQUEUE,
    WDF_DRIVER_CONFIG, WDF_IO_QUEUE_CONFIG, WDF_NO_HANDLE, WDF_NO_OBJECT_ATTRIBUTES,
};

/// `WdfDriverCreate` with `device_add`, for a test driver's `DriverEntry`.
///
/// # Safety
/// `driver` and `path` are what the loader passed to `DriverEntry`.
pub unsafe fn create_driver(
    driver: *mut DRIVER_OBJECT,
    path: PCUNICODE_STRING,
    device_add: PFN_WDF_DRIVER_DEVICE_ADD,
) -> NTSTATUS {
    let mut config = WDF_DRIVER_CONFIG {
        Size: u32::try_from(size_of::<WDF_DRIVER_CONFIG>()).unwrap_or(0),
        EvtDriverDeviceAdd: device_add,
        ..WDF_DRIVER_CONFIG::default()
    };
    // SAFETY: the loader's driver object and path (contract); a sized config; no attributes or
    // handle out.
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDriverCreate,
            driver,
            path,
            WDF_NO_OBJECT_ATTRIBUTES,
            &raw mut config,
            WDF_NO_HANDLE.cast::<WDFDRIVER>()
        )
    }
}

/// Creates the device (with `interface` registered, if given) and its parallel default queue
/// delivering device-control requests to `device_control`, for a test driver's device-add.
pub fn create_device(
    mut init: PWDFDEVICE_INIT,
    interface: Option<&GUID>,
    device_control: PFN_WDF_IO_QUEUE_IO_DEVICE_CONTROL,
) -> NTSTATUS {
    let mut device: WDFDEVICE = ptr::null_mut();
    // SAFETY: the framework's DeviceInit for the calling device-add callback; a writable out
    // handle.
    let status = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDeviceCreate,
            &raw mut init,
            WDF_NO_OBJECT_ATTRIBUTES,
            &raw mut device
        )
    };
    assert_eq!(status, 0);
    assert!(init.is_null(), "WdfDeviceCreate consumes the DeviceInit");
    if let Some(guid) = interface {
        // SAFETY: a live device and a GUID that outlives the call.
        let status = unsafe {
            call_unsafe_wdf_function_binding!(
                WdfDeviceCreateDeviceInterface,
                device,
                guid,
                ptr::null()
            )
        };
        assert_eq!(status, 0);
    }
    let mut config = WDF_IO_QUEUE_CONFIG {
        Size: u32::try_from(size_of::<WDF_IO_QUEUE_CONFIG>()).unwrap_or(0),
        DispatchType: _WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchParallel,
        PowerManaged: _WDF_TRI_STATE::WdfUseDefault,
        DefaultQueue: 1,
        EvtIoDeviceControl: device_control,
        ..WDF_IO_QUEUE_CONFIG::default()
    };
    let mut queue: WDFQUEUE = ptr::null_mut();
    // SAFETY: a live device, a sized config, a writable out handle.
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfIoQueueCreate,
            device,
            &raw mut config,
            WDF_NO_OBJECT_ATTRIBUTES,
            &raw mut queue
        )
    }
}
