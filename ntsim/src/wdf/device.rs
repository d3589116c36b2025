//! Device creation: `WdfDeviceInitAssignSDDLString`, `WdfDeviceInitSetIoType`,
//! `WdfDeviceInitSetExclusive`, `WdfDeviceCreate`, `WdfDeviceCreateDeviceInterface`,
//! `WdfDeviceGetDefaultQueue`.
//!
//! `WdfDeviceInitSetFileObjectConfig` is in `file.rs`.

use wdk_sys::{
    BOOLEAN, GUID, NTSTATUS, PCUNICODE_STRING, PWDFDEVICE_INIT, PWDF_OBJECT_ATTRIBUTES, WDFDEVICE,
    WDFQUEUE, WDF_DEVICE_IO_TYPE,
};

use super::{apply_attributes, check_handle, Kind};
use crate::{context::enter, io::DeviceState};

/// What a driver set on its `WDFDEVICE_INIT`.
#[derive(Clone, Debug, Default)]
pub(crate) struct InitSettings {
    pub sddl: Option<String>,
    pub io_type: WDF_DEVICE_IO_TYPE,
    pub exclusive: bool,
    pub file_config: Option<super::file::FileConfig>,
}

pub(crate) fn with_init(
    e: &crate::context::Entry,
    init: PWDFDEVICE_INIT,
    f: impl FnOnce(&mut InitSettings),
) {
    check_handle(e, init as usize, "WDFDEVICE_INIT", |k| {
        matches!(k, Kind::DeviceInit(_))
    });
    if let Some(super::Object {
        kind: Kind::DeviceInit(settings),
        ..
    }) = e.machine.io.objects.lock().map.get_mut(&(init as usize))
    {
        f(settings);
    }
}

wdf_export! {
    /// Sets the security descriptor (SDDL) of the device to be created.
    fn WdfDeviceInitAssignSDDLString as PFN_WDFDEVICEINITASSIGNSDDLSTRING(
        DeviceInit: PWDFDEVICE_INIT,
        SDDLString: PCUNICODE_STRING,
    ) -> NTSTATUS {
        let e = enter("WdfDeviceInitAssignSDDLString");
        // SAFETY: the KMDF contract makes SDDLString null or a readable UNICODE_STRING whose
        // Buffer holds Length bytes.
        let text = unsafe { SDDLString.as_ref() }.map(|s| {
            // SAFETY: as above.
            let units = unsafe { std::slice::from_raw_parts(s.Buffer, usize::from(s.Length / 2)) };
            String::from_utf16_lossy(units)
        });
        with_init(&e, DeviceInit, |settings| settings.sddl = text);
        wdk_sys::STATUS_SUCCESS
    }
}

wdf_export! {
    /// Sets the I/O type (buffered, direct, neither) for read and write requests.
    fn WdfDeviceInitSetIoType as PFN_WDFDEVICEINITSETIOTYPE(
        DeviceInit: PWDFDEVICE_INIT,
        IoType: WDF_DEVICE_IO_TYPE,
    ) {
        let e = enter("WdfDeviceInitSetIoType");
        with_init(&e, DeviceInit, |settings| settings.io_type = IoType);
    }
}

wdf_export! {
    /// Makes the device exclusive (one open file at a time).
    fn WdfDeviceInitSetExclusive as PFN_WDFDEVICEINITSETEXCLUSIVE(
        DeviceInit: PWDFDEVICE_INIT,
        IsExclusive: BOOLEAN,
    ) {
        let e = enter("WdfDeviceInitSetExclusive");
        with_init(&e, DeviceInit, |settings| settings.exclusive = IsExclusive != 0);
    }
}

wdf_export! {
    /// Creates the device from `*DeviceInit`, which it consumes (sets to NULL).
    fn WdfDeviceCreate as PFN_WDFDEVICECREATE(
        DeviceInit: *mut PWDFDEVICE_INIT,
        DeviceAttributes: PWDF_OBJECT_ATTRIBUTES,
        Device: *mut WDFDEVICE,
    ) -> NTSTATUS {
        let e = enter("WdfDeviceCreate");
        // SAFETY: the KMDF contract makes DeviceInit a readable and writable PWDFDEVICE_INIT.
        let Some(init_slot) = (unsafe { DeviceInit.as_mut() }) else {
            return wdk_sys::STATUS_INVALID_PARAMETER;
        };
        let init = *init_slot as usize;
        check_handle(&e, init, "WDFDEVICE_INIT", |k| matches!(k, Kind::DeviceInit(_)));
        let removed = e.machine.io.objects.lock().map.remove(&init);
        let Some(super::Object { kind: Kind::DeviceInit(settings), .. }) = removed else {
            return wdk_sys::STATUS_INVALID_PARAMETER;
        };
        let handle = e.machine.io.objects.lock().insert(Kind::Device);
        let status = apply_attributes(&e, handle, DeviceAttributes);
        if !wdk_sys::NT_SUCCESS(status) {
            e.machine.io.objects.lock().map.remove(&handle);
            return status;
        }
        e.machine.io.lock().device = Some(DeviceState {
            handle,
            sddl: settings.sddl,
            interfaces: Vec::new(),
            default_queue: 0,
            file_config: settings.file_config,
        });
        *init_slot = std::ptr::null_mut();
        // SAFETY: the KMDF contract makes Device a writable WDFDEVICE.
        if let Some(out) = unsafe { Device.as_mut() } {
            *out = handle as WDFDEVICE;
        }
        wdk_sys::STATUS_SUCCESS
    }
}

wdf_export! {
    /// Registers a device interface of class `InterfaceClassGUID` for the device.
    fn WdfDeviceCreateDeviceInterface as PFN_WDFDEVICECREATEDEVICEINTERFACE(
        Device: WDFDEVICE,
        InterfaceClassGUID: *const GUID,
        ReferenceString: PCUNICODE_STRING,
    ) -> NTSTATUS {
        let e = enter("WdfDeviceCreateDeviceInterface");
        let _ = ReferenceString;
        check_handle(&e, Device as usize, "WDFDEVICE", |k| matches!(k, Kind::Device));
        // SAFETY: the KMDF contract makes InterfaceClassGUID a readable GUID.
        let Some(guid) = (unsafe { InterfaceClassGUID.as_ref() }) else {
            return wdk_sys::STATUS_INVALID_PARAMETER;
        };
        let mut io = e.machine.io.lock();
        match io.device.as_mut() {
            Some(device) if device.handle == Device as usize => {
                device.interfaces.push(*guid);
                wdk_sys::STATUS_SUCCESS
            }
            _ => wdk_sys::STATUS_INVALID_DEVICE_STATE,
        }
    }
}

wdf_export! {
    /// The device's default queue, or NULL.
    fn WdfDeviceGetDefaultQueue as PFN_WDFDEVICEGETDEFAULTQUEUE(Device: WDFDEVICE) -> WDFQUEUE {
        let e = enter("WdfDeviceGetDefaultQueue");
        check_handle(&e, Device as usize, "WDFDEVICE", |k| matches!(k, Kind::Device));
        let io = e.machine.io.lock();
        io.device.as_ref().map_or(std::ptr::null_mut(), |d| d.default_queue as WDFQUEUE)
    }
}
