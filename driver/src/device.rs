//! `EvtDriverDeviceAdd`: the device, its security, its interface and its queue.

use core::ptr;

use wdk_sys::{
    call_unsafe_wdf_function_binding, _WDF_DEVICE_IO_TYPE, _WDF_EXECUTION_LEVEL,
    _WDF_FILEOBJECT_CLASS, _WDF_IO_QUEUE_DISPATCH_TYPE, _WDF_SYNCHRONIZATION_SCOPE, _WDF_TRI_STATE,
    GUID, NTSTATUS, PWDFDEVICE_INIT, ULONG, UNICODE_STRING, WDFDEVICE, WDFDRIVER, WDFQUEUE,
    WDF_FILEOBJECT_CONFIG, WDF_IO_QUEUE_CONFIG, WDF_OBJECT_ATTRIBUTES,
};

/// `SDDL_DEVOBJ_SYS_ALL_ADM_ALL`: only SYSTEM and Administrators may open the device.
const SDDL: &str = "D:P(A;;GA;;;SY)(A;;GA;;;BA)";
const SDDL_LEN: usize = SDDL.len();

/// The SDDL string as UTF-16 (ASCII widened), built at compile time.
static SDDL_UTF16: [u16; SDDL_LEN] = {
    let bytes = SDDL.as_bytes();
    let mut out = [0_u16; SDDL_LEN];
    let mut i = 0;
    while i < SDDL_LEN {
        out[i] = bytes[i] as u16;
        i += 1;
    }
    out
};

#[allow(clippy::cast_possible_truncation, reason = "asserted below")]
const WDF_OBJECT_ATTRIBUTES_SIZE: ULONG = core::mem::size_of::<WDF_OBJECT_ATTRIBUTES>() as ULONG;
#[allow(clippy::cast_possible_truncation, reason = "asserted below")]
const WDF_FILEOBJECT_CONFIG_SIZE: ULONG = core::mem::size_of::<WDF_FILEOBJECT_CONFIG>() as ULONG;
#[allow(clippy::cast_possible_truncation, reason = "asserted below")]
const WDF_IO_QUEUE_CONFIG_SIZE: ULONG = core::mem::size_of::<WDF_IO_QUEUE_CONFIG>() as ULONG;
const _: () = assert!(core::mem::size_of::<WDF_IO_QUEUE_CONFIG>() < 0x1_0000);
const _: () = assert!(core::mem::size_of::<WDF_FILEOBJECT_CONFIG>() < 0x1_0000);
const _: () = assert!(SDDL_LEN * 2 < 0x1_0000);

/// The device interface GUID, from the protocol crate.
const INTERFACE: GUID = GUID {
    Data1: synclab_protocol::DEVICE_INTERFACE_GUID.data1,
    Data2: synclab_protocol::DEVICE_INTERFACE_GUID.data2,
    Data3: synclab_protocol::DEVICE_INTERFACE_GUID.data3,
    Data4: synclab_protocol::DEVICE_INTERFACE_GUID.data4,
};

/// What `WDF_OBJECT_ATTRIBUTES_INIT` sets.
fn object_attributes() -> WDF_OBJECT_ATTRIBUTES {
    WDF_OBJECT_ATTRIBUTES {
        Size: WDF_OBJECT_ATTRIBUTES_SIZE,
        ExecutionLevel: _WDF_EXECUTION_LEVEL::WdfExecutionLevelInheritFromParent,
        SynchronizationScope: _WDF_SYNCHRONIZATION_SCOPE::WdfSynchronizationScopeInheritFromParent,
        ..WDF_OBJECT_ATTRIBUTES::default()
    }
}

fn check(status: NTSTATUS, what: &str) -> Result<(), NTSTATUS> {
    if wdk::nt_success(status) {
        Ok(())
    } else {
        wdk::println!("synclab: {what} failed: {status:#010X}");
        Err(status)
    }
}

/// Creates the device (SDDL for SYSTEM and Administrators only, buffered I/O, a cleanup callback
/// for its file objects), registers the device interface, and creates the parallel default queue. IRQL: `PASSIVE_LEVEL`.
pub extern "C" fn evt_device_add(_driver: WDFDRIVER, device_init: PWDFDEVICE_INIT) -> NTSTATUS {
    wdk::paged_code!();
    match add(device_init) {
        Ok(()) => wdk_sys::STATUS_SUCCESS,
        Err(status) => status,
    }
}

fn add(mut device_init: PWDFDEVICE_INIT) -> Result<(), NTSTATUS> {
    #[allow(
        clippy::cast_possible_truncation,
        reason = "asserted: the SDDL is short"
    )]
    let bytes = (SDDL_LEN * 2) as u16;
    let sddl = UNICODE_STRING {
        Length: bytes,
        MaximumLength: bytes,
        Buffer: SDDL_UTF16.as_ptr().cast_mut(),
    };
    // SAFETY: `device_init` is the framework's WDFDEVICE_INIT for this callback; `sddl`
    // describes a static UTF-16 string the framework copies.
    let status = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDeviceInitAssignSDDLString,
            device_init,
            &raw const sddl
        )
    };
    check(status, "WdfDeviceInitAssignSDDLString")?;
    // SAFETY: `device_init` is still the framework's WDFDEVICE_INIT for this callback (not yet
    // consumed by WdfDeviceCreate); the I/O type is a valid enumerator.
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDeviceInitSetIoType,
            device_init,
            _WDF_DEVICE_IO_TYPE::WdfDeviceIoBuffered
        );
    }
    // What WDF_FILEOBJECT_CONFIG_INIT sets, with EvtFileCleanup: closing a handle stops its runs.
    let mut file_config = WDF_FILEOBJECT_CONFIG {
        Size: WDF_FILEOBJECT_CONFIG_SIZE,
        EvtDeviceFileCreate: None,
        EvtFileClose: None,
        EvtFileCleanup: Some(crate::runs::evt_file_cleanup),
        AutoForwardCleanupClose: _WDF_TRI_STATE::WdfUseDefault,
        FileObjectClass: _WDF_FILEOBJECT_CLASS::WdfFileObjectWdfCannotUseFsContexts,
    };
    // SAFETY: `device_init` is still the framework's WDFDEVICE_INIT (not yet consumed); the
    // config is a valid, sized local the framework copies; no file-object attributes.
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDeviceInitSetFileObjectConfig,
            device_init,
            &raw mut file_config,
            ptr::null_mut()
        );
    }
    let mut attributes = object_attributes();
    let mut device: WDFDEVICE = ptr::null_mut();
    // SAFETY: `device_init` is consumed by WdfDeviceCreate (it sets it to NULL); attributes and
    // the out handle are valid locals.
    let status = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDeviceCreate,
            &raw mut device_init,
            &raw mut attributes,
            &raw mut device
        )
    };
    check(status, "WdfDeviceCreate")?;
    // SAFETY: `device` was just created; the GUID is a static; no reference string.
    let status = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDeviceCreateDeviceInterface,
            device,
            &INTERFACE,
            ptr::null()
        )
    };
    check(status, "WdfDeviceCreateDeviceInterface")?;
    // Not power-managed: a root-enumerated software device has no power states to stop I/O for,
    // so disable, update and removal never wait for a queue to drain a whole run.
    let mut queue_config = WDF_IO_QUEUE_CONFIG {
        Size: WDF_IO_QUEUE_CONFIG_SIZE,
        DispatchType: _WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchParallel,
        PowerManaged: _WDF_TRI_STATE::WdfFalse,
        DefaultQueue: 1,
        EvtIoDeviceControl: Some(crate::queue::evt_io_device_control),
        ..WDF_IO_QUEUE_CONFIG::default()
    };
    // The queue's callbacks run at PASSIVE_LEVEL; its context holds the runs in flight, which
    // its cleanup stops and waits for before the queue goes away.
    let mut queue_attributes = WDF_OBJECT_ATTRIBUTES {
        ExecutionLevel: _WDF_EXECUTION_LEVEL::WdfExecutionLevelPassive,
        ContextTypeInfo: crate::runs::RUNS_TYPE.get(),
        EvtCleanupCallback: Some(crate::runs::evt_queue_cleanup),
        ..object_attributes()
    };
    let mut queue: WDFQUEUE = ptr::null_mut();
    // SAFETY: `device` is live; the config and attributes are valid and sized.
    let status = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfIoQueueCreate,
            device,
            &raw mut queue_config,
            &raw mut queue_attributes,
            &raw mut queue
        )
    };
    check(status, "WdfIoQueueCreate")
}
