//! `DriverEntry` and unload.

use wdk_sys::{
    call_unsafe_wdf_function_binding, DRIVER_OBJECT, NTSTATUS, PCUNICODE_STRING, ULONG, WDFDRIVER,
    WDF_DRIVER_CONFIG, WDF_NO_HANDLE, WDF_NO_OBJECT_ATTRIBUTES,
};

/// `WDF_DRIVER_CONFIG.Size` (no `WDF_STRUCTURE_SIZE` exists in Rust, windows-drivers-rs #242).
#[allow(clippy::cast_possible_truncation, reason = "asserted below")]
const WDF_DRIVER_CONFIG_SIZE: ULONG = core::mem::size_of::<WDF_DRIVER_CONFIG>() as ULONG;
const _: () = assert!(core::mem::size_of::<WDF_DRIVER_CONFIG>() <= ULONG::MAX as usize);

/// The driver's entry point: creates the framework driver object with its device-add and
/// unload callbacks. IRQL: `PASSIVE_LEVEL`.
///
/// # Safety
/// Called once by the system (or ntsim's loader) with a valid `DRIVER_OBJECT` and registry
/// path.
#[cfg_attr(not(test), unsafe(export_name = "DriverEntry"))]
pub unsafe extern "system" fn driver_entry(
    driver: *mut DRIVER_OBJECT,
    registry_path: PCUNICODE_STRING,
) -> NTSTATUS {
    wdk::println!(
        "synclab: DriverEntry: version {}.{}.{}",
        synclab_protocol::DRIVER_VERSION[0],
        synclab_protocol::DRIVER_VERSION[1],
        synclab_protocol::DRIVER_VERSION[2]
    );
    let mut config = WDF_DRIVER_CONFIG {
        Size: WDF_DRIVER_CONFIG_SIZE,
        EvtDriverDeviceAdd: Some(crate::device::evt_device_add),
        EvtDriverUnload: Some(evt_driver_unload),
        ..WDF_DRIVER_CONFIG::default()
    };
    // SAFETY: `driver` and `registry_path` come from the system as DriverEntry's contract says;
    // `config` is a valid, sized WDF_DRIVER_CONFIG; no attributes and no driver handle out.
    let status = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDriverCreate,
            driver,
            registry_path,
            WDF_NO_OBJECT_ATTRIBUTES,
            &raw mut config,
            WDF_NO_HANDLE.cast::<WDFDRIVER>()
        )
    };
    if !wdk::nt_success(status) {
        wdk::println!("synclab: WdfDriverCreate failed: {status:#010X}");
    }
    status
}

/// `EvtDriverUnload`. IRQL: `PASSIVE_LEVEL`.
extern "C" fn evt_driver_unload(_driver: WDFDRIVER) {
    wdk::println!("synclab: unloaded");
}
