//! `WdfDriverCreate`, the device-add and unload paths, `WdfDriverIsVersionAvailable`.

use wdk_sys::{
    BOOLEAN, NTSTATUS, PCUNICODE_STRING, PDRIVER_OBJECT, PWDF_DRIVER_CONFIG,
    PWDF_DRIVER_VERSION_AVAILABLE_PARAMS, PWDF_OBJECT_ATTRIBUTES, WDFDRIVER, WDF_DRIVER_CONFIG,
};

use super::{apply_attributes, callback, check_handle, delete, device::InitSettings, Kind};
use crate::context::{enter, Ctx};

wdf_export! {
    /// Creates the framework driver object from `DriverConfig` (its `Size` must be that of
    /// KMDF 1.33's `WDF_DRIVER_CONFIG`, else `STATUS_INFO_LENGTH_MISMATCH`). `PASSIVE_LEVEL`.
    fn WdfDriverCreate as PFN_WDFDRIVERCREATE(
        DriverObject: PDRIVER_OBJECT,
        RegistryPath: PCUNICODE_STRING,
        DriverAttributes: PWDF_OBJECT_ATTRIBUTES,
        DriverConfig: PWDF_DRIVER_CONFIG,
        Driver: *mut WDFDRIVER,
    ) -> NTSTATUS {
        let e = enter("WdfDriverCreate");
        let _ = RegistryPath;
        // SAFETY: the KMDF contract makes DriverConfig a readable WDF_DRIVER_CONFIG.
        let Some(config) = (unsafe { DriverConfig.as_ref() }) else {
            return wdk_sys::STATUS_INVALID_PARAMETER;
        };
        if config.Size as usize != std::mem::size_of::<WDF_DRIVER_CONFIG>() {
            return wdk_sys::STATUS_INFO_LENGTH_MISMATCH;
        }
        let handle = e.machine.io.objects.lock().insert(Kind::Driver);
        let status = apply_attributes(&e, handle, DriverAttributes);
        if !wdk_sys::NT_SUCCESS(status) {
            e.machine.io.objects.lock().map.remove(&handle);
            return status;
        }
        {
            let mut io = e.machine.io.lock();
            let Some(driver) = io.driver.as_mut() else {
                return wdk_sys::STATUS_INVALID_DEVICE_STATE;
            };
            if !std::ptr::eq(DriverObject, &raw const *driver.object) {
                return wdk_sys::STATUS_INVALID_PARAMETER;
            }
            driver.handle = handle;
            driver.device_add = config.EvtDriverDeviceAdd;
            driver.unload = config.EvtDriverUnload;
        }
        // SAFETY: the KMDF contract makes Driver null (WDF_NO_HANDLE) or writable.
        if let Some(out) = unsafe { Driver.as_mut() } {
            *out = handle as WDFDRIVER;
        }
        wdk_sys::STATUS_SUCCESS
    }
}

wdf_export! {
    /// TRUE when the framework (KMDF 1.33) provides the asked version.
    fn WdfDriverIsVersionAvailable as PFN_WDFDRIVERISVERSIONAVAILABLE(
        Driver: WDFDRIVER,
        VersionAvailableParams: PWDF_DRIVER_VERSION_AVAILABLE_PARAMS,
    ) -> BOOLEAN {
        let e = enter("WdfDriverIsVersionAvailable");
        check_handle(&e, Driver as usize, "WDFDRIVER", |k| matches!(k, Kind::Driver));
        // SAFETY: the KMDF contract makes the parameters readable.
        let Some(params) = (unsafe { VersionAvailableParams.as_ref() }) else {
            return 0;
        };
        u8::from(params.MajorVersion == 1 && params.MinorVersion <= 33)
    }
}

/// Calls `EvtDriverDeviceAdd` for the root-enumerated device, as the `PnP` manager does after a
/// successful `DriverEntry`.
pub(crate) fn add_device(ctx: &Ctx) -> NTSTATUS {
    let (driver, device_add) = {
        let io = ctx.machine.io.lock();
        match io.driver.as_ref() {
            Some(d) => (d.handle, d.device_add),
            None => return wdk_sys::STATUS_INVALID_DEVICE_STATE,
        }
    };
    let Some(device_add) = device_add else {
        // A driver without EvtDriverDeviceAdd controls no PnP device.
        return wdk_sys::STATUS_SUCCESS;
    };
    let init = ctx
        .machine
        .io
        .objects
        .lock()
        .insert(Kind::DeviceInit(InitSettings::default()));
    // SAFETY: the driver registered this callback in WdfDriverCreate; the driver handle and the
    // WDFDEVICE_INIT handle are live framework objects.
    let status = callback(ctx, "EvtDriverDeviceAdd", device_add as usize, || unsafe {
        device_add(driver as WDFDRIVER, init as _)
    });
    // The framework frees a DeviceInit that WdfDeviceCreate did not consume.
    ctx.machine.io.objects.lock().map.remove(&init);
    if !wdk_sys::NT_SUCCESS(status) {
        let device = ctx.machine.io.lock().device.take();
        if let Some(device) = device {
            delete(ctx, device.default_queue);
            delete(ctx, device.handle);
        }
    }
    status
}

/// Unloads the driver: `EvtDriverUnload`, then deletes its framework objects (queues and the
/// device first, the driver object last) with their cleanup callbacks.
pub(crate) fn unload(ctx: &Ctx) {
    let (driver, unload) = {
        let io = ctx.machine.io.lock();
        match io.driver.as_ref() {
            Some(d) => (d.handle, d.unload),
            None => return,
        }
    };
    if let Some(unload) = unload {
        // SAFETY: the driver registered this callback; its driver object is still alive.
        callback(ctx, "EvtDriverUnload", unload as usize, || unsafe {
            unload(driver as WDFDRIVER);
        });
    }
    let device = ctx.machine.io.lock().device.take();
    let mut order: Vec<usize> = {
        let table = ctx.machine.io.objects.lock();
        table
            .map
            .iter()
            .filter(|(_, o)| matches!(o.kind, Kind::Queue(_)))
            .map(|(h, _)| *h)
            .collect()
    };
    order.extend(device.map(|d| d.handle));
    order.push(driver);
    for handle in order {
        delete(ctx, handle);
    }
}
