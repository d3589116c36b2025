//! File objects: `WdfDeviceInitSetFileObjectConfig`, and the framework's create, cleanup and
//! close handling (`EvtDeviceFileCreate`, `EvtFileCleanup`, `EvtFileClose`).
//!
//! As in KMDF (`FxPkgGeneral`), a device without a file-object configuration has file-object
//! class `WdfFileObjectNotRequired`: opens succeed without a callback and requests carry no
//! `WDFFILEOBJECT`. With a configuration whose class is any other, every open gets a
//! `WDFFILEOBJECT` (with the configured attributes: context, cleanup and destroy callbacks),
//! deleted after `EvtFileClose`. All three callbacks run at `PASSIVE_LEVEL`.

use wdk_sys::{
    PWDFDEVICE_INIT, PWDF_FILEOBJECT_CONFIG, PWDF_OBJECT_ATTRIBUTES, WDFDEVICE, WDFFILEOBJECT,
    WDFREQUEST, WDF_FILEOBJECT_CONFIG,
};

use super::{callback, check_handle, device::with_init, verifier_break, Attributes, Kind};
use crate::context::{enter, Ctx};

/// What a driver set with `WdfDeviceInitSetFileObjectConfig`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FileConfig {
    create: wdk_sys::PFN_WDF_DEVICE_FILE_CREATE,
    close: wdk_sys::PFN_WDF_FILE_CLOSE,
    cleanup: wdk_sys::PFN_WDF_FILE_CLEANUP,
    /// The framework makes a `WDFFILEOBJECT` per open (every class but
    /// `WdfFileObjectNotRequired`).
    file_objects: bool,
    attributes: Option<Attributes>,
}

/// `FxFileObjectClassNormalize`: the class without the `WdfFileObjectCanBeOptional` bit.
const fn normalize(class: wdk_sys::WDF_FILEOBJECT_CLASS) -> wdk_sys::WDF_FILEOBJECT_CLASS {
    class & !wdk_sys::_WDF_FILEOBJECT_CLASS::WdfFileObjectCanBeOptional
}

/// Validates a configuration as `WdfDeviceInitSetFileObjectConfig` does; `Err` names what KMDF
/// would trace before breaking into the debugger and ignoring the call.
fn validate(
    config: &WDF_FILEOBJECT_CONFIG,
    attributes: PWDF_OBJECT_ATTRIBUTES,
) -> Result<FileConfig, &'static str> {
    use wdk_sys::_WDF_FILEOBJECT_CLASS::{
        WdfFileObjectCanBeOptional, WdfFileObjectInvalid, WdfFileObjectNotRequired,
        WdfFileObjectWdfCannotUseFsContexts,
    };
    if config.Size as usize != std::mem::size_of::<WDF_FILEOBJECT_CONFIG>() {
        return Err("FileObjectConfig->Size is not sizeof(WDF_FILEOBJECT_CONFIG)");
    }
    let attributes = match Attributes::read(attributes) {
        Ok(Some(a)) if a.parent != 0 => {
            return Err("FileObjectAttributes->ParentObject must be NULL");
        }
        Ok(a) => a,
        Err(_) => return Err("FileObjectAttributes->Size is not sizeof(WDF_OBJECT_ATTRIBUTES)"),
    };
    if !(0..=2).contains(&config.AutoForwardCleanupClose) {
        return Err("FileObjectConfig->AutoForwardCleanupClose is not a WDF_TRI_STATE");
    }
    let class = normalize(config.FileObjectClass);
    if class == WdfFileObjectInvalid || class > WdfFileObjectWdfCannotUseFsContexts {
        return Err("FileObjectConfig->FileObjectClass is out of range");
    }
    if config.FileObjectClass & WdfFileObjectCanBeOptional != 0 && class == WdfFileObjectNotRequired
    {
        return Err("WdfFileObjectCanBeOptional cannot be combined with WdfFileObjectNotRequired");
    }
    Ok(FileConfig {
        create: config.EvtDeviceFileCreate,
        close: config.EvtFileClose,
        cleanup: config.EvtFileCleanup,
        file_objects: class != WdfFileObjectNotRequired,
        attributes,
    })
}

wdf_export! {
    /// Registers the device's file-object callbacks and class (and the attributes of its
    /// `WDFFILEOBJECT`s). A wrong `Size`, class, tri-state or attributes is a verifier break
    /// and the call is ignored, as in KMDF. IRQL <= `DISPATCH_LEVEL`.
    fn WdfDeviceInitSetFileObjectConfig as PFN_WDFDEVICEINITSETFILEOBJECTCONFIG(
        DeviceInit: PWDFDEVICE_INIT,
        FileObjectConfig: PWDF_FILEOBJECT_CONFIG,
        FileObjectAttributes: PWDF_OBJECT_ATTRIBUTES,
    ) {
        let e = enter("WdfDeviceInitSetFileObjectConfig");
        // SAFETY: the KMDF contract makes FileObjectConfig a readable WDF_FILEOBJECT_CONFIG.
        let Some(config) = (unsafe { FileObjectConfig.as_ref() }) else {
            e.bugcheck(
                crate::bugcheck::code::WDF_VIOLATION,
                [crate::bugcheck::wdf::REQUIRED_PARAMETER_IS_NULL, 0, 0, 0],
                "WdfDeviceInitSetFileObjectConfig with a NULL FileObjectConfig",
            );
        };
        match validate(config, FileObjectAttributes) {
            Ok(config) => with_init(&e, DeviceInit, |settings| settings.file_config = Some(config)),
            Err(why) => verifier_break(&e, e.ddi, why),
        }
    }
}

wdf_export! {
    /// The device the file object was opened on. IRQL <= `DISPATCH_LEVEL`.
    fn WdfFileObjectGetDevice as PFN_WDFFILEOBJECTGETDEVICE(FileObject: WDFFILEOBJECT) -> WDFDEVICE {
        let e = enter("WdfFileObjectGetDevice");
        check_handle(&e, FileObject as usize, "WDFFILEOBJECT", |k| matches!(k, Kind::FileObject));
        let io = e.machine.io.lock();
        io.device.as_ref().map_or(std::ptr::null_mut(), |d| d.handle as WDFDEVICE)
    }
}

impl FileConfig {
    /// Makes the `WDFFILEOBJECT` of a new open, or returns 0 when the class needs none.
    pub(crate) fn new_file_object(&self, ctx: &Ctx) -> usize {
        if !self.file_objects {
            return 0;
        }
        let handle = ctx.machine.io.objects.lock().insert(Kind::FileObject);
        if let Some(attributes) = &self.attributes {
            let _ = attributes.apply(&ctx.machine, handle);
        }
        handle
    }

    /// Whether the driver has an `EvtDeviceFileCreate`.
    pub(crate) const fn has_create(&self) -> bool {
        self.create.is_some()
    }

    /// Whether an open needs the driver (a callback to call or a file object to make).
    pub(crate) const fn involves_driver(&self) -> bool {
        self.file_objects || self.create.is_some()
    }

    /// Calls `EvtDeviceFileCreate`, if any, with the create request; returns false when there
    /// is none (the framework then completes the create with `STATUS_SUCCESS`).
    pub(crate) fn create(&self, ctx: &Ctx, device: usize, request: usize, file: usize) -> bool {
        let Some(routine) = self.create else {
            return false;
        };
        // SAFETY: the driver registered this callback for its device; the device, the create
        // request and the file object are live framework objects.
        callback(ctx, "EvtDeviceFileCreate", routine as usize, || unsafe {
            routine(
                device as WDFDEVICE,
                request as WDFREQUEST,
                file as WDFFILEOBJECT,
            );
        });
        true
    }

    /// Calls `EvtFileCleanup`, if any (the handle's last user reference has gone).
    pub(crate) fn cleanup(&self, ctx: &Ctx, file: usize) {
        if let Some(routine) = self.cleanup {
            // SAFETY: the driver registered this callback; the file object is live until close.
            callback(ctx, "EvtFileCleanup", routine as usize, || unsafe {
                routine(file as WDFFILEOBJECT);
            });
        }
    }

    /// Calls `EvtFileClose`, if any, then deletes the file object (its cleanup and destroy
    /// callbacks run).
    pub(crate) fn close(&self, ctx: &Ctx, file: usize) {
        if let Some(routine) = self.close {
            // SAFETY: the driver registered this callback; the file object is live until the
            // deletion below.
            callback(ctx, "EvtFileClose", routine as usize, || unsafe {
                routine(file as WDFFILEOBJECT);
            });
        }
        if file != 0 {
            super::delete(ctx, file);
        }
    }
}
