//! A minimal KMDF test driver's scaffolding: the framework driver object, and a device with a
//! parallel default queue. Each test file supplies its own `DriverEntry` and device-add
//! callbacks (plain `extern` functions, as the framework calls them) that forward here with the
//! queue's device-control callback.

use std::ptr;

use ntsim::wdk_sys::{
    call_unsafe_wdf_function_binding, _WDF_EXECUTION_LEVEL, _WDF_FILEOBJECT_CLASS,
    _WDF_IO_QUEUE_DISPATCH_TYPE, _WDF_SYNCHRONIZATION_SCOPE, _WDF_TRI_STATE, DRIVER_OBJECT, GUID,
    NTSTATUS, PCUNICODE_STRING, PFN_WDF_DEVICE_FILE_CREATE, PFN_WDF_DRIVER_DEVICE_ADD,
    PFN_WDF_FILE_CLEANUP, PFN_WDF_FILE_CLOSE, PFN_WDF_IO_QUEUE_IO_DEVICE_CONTROL, PWDFDEVICE_INIT,
    PWDF_OBJECT_ATTRIBUTES, WDFDEVICE, WDFDRIVER, WDFQUEUE, WDF_DRIVER_CONFIG,
    WDF_FILEOBJECT_CONFIG, WDF_IO_QUEUE_CONFIG, WDF_NO_HANDLE, WDF_NO_OBJECT_ATTRIBUTES,
    WDF_OBJECT_ATTRIBUTES,
};

/// The file-object callbacks a test driver registers (`WDF_FILEOBJECT_CONFIG_INIT` with class
/// `WdfFileObjectWdfCannotUseFsContexts`, so every open gets a `WDFFILEOBJECT`).
#[derive(Clone, Copy, Default)]
pub struct FileCallbacks {
    /// `EvtDeviceFileCreate`.
    pub create: PFN_WDF_DEVICE_FILE_CREATE,
    /// `EvtFileCleanup`.
    pub cleanup: PFN_WDF_FILE_CLEANUP,
    /// `EvtFileClose`.
    pub close: PFN_WDF_FILE_CLOSE,
}

/// `WdfDeviceInitSetFileObjectConfig` with `callbacks`, for a test driver's device-add (before
/// [`create_device`]).
pub fn set_file_callbacks(init: PWDFDEVICE_INIT, callbacks: FileCallbacks) {
    let mut config = WDF_FILEOBJECT_CONFIG {
        Size: u32::try_from(size_of::<WDF_FILEOBJECT_CONFIG>()).unwrap_or(0),
        EvtDeviceFileCreate: callbacks.create,
        EvtFileClose: callbacks.close,
        EvtFileCleanup: callbacks.cleanup,
        AutoForwardCleanupClose: _WDF_TRI_STATE::WdfUseDefault,
        FileObjectClass: _WDF_FILEOBJECT_CLASS::WdfFileObjectWdfCannotUseFsContexts,
    };
    // SAFETY: the framework's DeviceInit for the calling device-add callback; a sized config;
    // no file-object attributes.
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDeviceInitSetFileObjectConfig,
            init,
            &raw mut config,
            WDF_NO_OBJECT_ATTRIBUTES
        );
    }
}

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
    init: PWDFDEVICE_INIT,
    interface: Option<&GUID>,
    device_control: PFN_WDF_IO_QUEUE_IO_DEVICE_CONTROL,
) -> NTSTATUS {
    create_device_with(init, interface, device_control, QueueOptions::default())
}

/// How [`create_device_with`] makes the default queue.
#[derive(Clone, Copy, Debug, Default)]
pub struct QueueOptions {
    /// `WdfIoQueueDispatchSequential` instead of parallel.
    pub sequential: bool,
    /// `WDF_OBJECT_ATTRIBUTES.ExecutionLevel = WdfExecutionLevelPassive` on the queue (else
    /// no attributes: the default, `WdfExecutionLevelDispatch` through the device and driver).
    pub passive: bool,
    /// `PowerManaged = WdfFalse` (else `WdfUseDefault`, which is power-managed).
    pub not_power_managed: bool,
    /// `EvtIoStop`.
    pub io_stop: ntsim::wdk_sys::PFN_WDF_IO_QUEUE_IO_STOP,
}

/// [`create_device`] with the default queue made as `options` say.
pub fn create_device_with(
    mut init: PWDFDEVICE_INIT,
    interface: Option<&GUID>,
    device_control: PFN_WDF_IO_QUEUE_IO_DEVICE_CONTROL,
    options: QueueOptions,
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
        DispatchType: if options.sequential {
            _WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchSequential
        } else {
            _WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchParallel
        },
        PowerManaged: if options.not_power_managed {
            _WDF_TRI_STATE::WdfFalse
        } else {
            _WDF_TRI_STATE::WdfUseDefault
        },
        DefaultQueue: 1,
        EvtIoDeviceControl: device_control,
        EvtIoStop: options.io_stop,
        ..WDF_IO_QUEUE_CONFIG::default()
    };
    let mut attributes = WDF_OBJECT_ATTRIBUTES {
        Size: u32::try_from(size_of::<WDF_OBJECT_ATTRIBUTES>()).unwrap_or(0),
        ExecutionLevel: _WDF_EXECUTION_LEVEL::WdfExecutionLevelPassive,
        SynchronizationScope: _WDF_SYNCHRONIZATION_SCOPE::WdfSynchronizationScopeInheritFromParent,
        ..WDF_OBJECT_ATTRIBUTES::default()
    };
    let attributes: PWDF_OBJECT_ATTRIBUTES = if options.passive {
        &raw mut attributes
    } else {
        WDF_NO_OBJECT_ATTRIBUTES
    };
    let mut queue: WDFQUEUE = ptr::null_mut();
    // SAFETY: a live device, a sized config, sized attributes or none, a writable out handle.
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfIoQueueCreate,
            device,
            &raw mut config,
            attributes,
            &raw mut queue
        )
    }
}
