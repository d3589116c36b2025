//! The KMDF 1.33 types, re-exported at the crate root.
//!
//! mingw-w64 has no WDF headers, so these items are written by hand. They reproduce what bindgen
//! 0.71.1 emits, with wdk-sys's options, from the KMDF 1.33 public headers
//! (`microsoft/Windows-Driver-Frameworks`, `src/publicinc/wdf/kmdf/1.33/`): the same names
//! (including bindgen's `_OUTER__bindgen_ty_N` names of anonymous unions and structs), field
//! order, field types, derives, zero-filling `Default` impls, and x64 layout, which the `const`
//! assertions below check.
//!
//! The API function-pointer types (`PFN_WDFDRIVERCREATE`, ...) are the signatures ntsim's
//! `ntsim_Wdf*` implementations must have; see [`crate::__wdf`].

#![allow(
    missing_docs,
    reason = "mirrors the bindgen output of the KMDF headers; Microsoft's WDF reference documents \
              every item"
)]
#![allow(non_camel_case_types, non_snake_case, non_upper_case_globals)]
#![allow(
    clippy::pub_underscore_fields,
    reason = "bindgen's explicit padding field is public"
)]
#![allow(clippy::upper_case_acronyms, clippy::struct_field_names)]

use core::ptr::null_mut;

use crate::types::{
    BOOLEAN, CHAR, DEVICE_RELATION_TYPE, GUID, HANDLE, LONGLONG, LPCSTR, NTSTATUS,
    PCUNICODE_STRING, PDRIVER_OBJECT, PIO_SECURITY_CONTEXT, PLONGLONG, PVOID, UCHAR, ULONG,
    ULONG_PTR, USHORT,
};

/// Asserts the size and alignment of a type and the offsets of its fields, like bindgen's layout
/// tests.
macro_rules! assert_layout {
    ($ty:ty, size $size:literal, align $align:literal $(, $field:ident @ $offset:literal)* $(,)?) => {
        const _: () = assert!(core::mem::size_of::<$ty>() == $size);
        const _: () = assert!(core::mem::align_of::<$ty>() == $align);
        $(const _: () = assert!(core::mem::offset_of!($ty, $field) == $offset);)*
    };
}

/// Implements `Default` as an all-zero value, like bindgen does for types holding raw pointers or
/// unions.
macro_rules! zeroed_default {
    ($($ty:ty),* $(,)?) => {
        $(
            impl Default for $ty {
                fn default() -> Self {
                    // SAFETY: the type is `repr(C)` plain old data whose fields are integers, raw
                    // pointers, `Option`s of function pointers, or unions and arrays of those; the
                    // all-zero bit pattern is a valid value (0, null, `None`) for every field.
                    unsafe { core::mem::zeroed() }
                }
            }
        )*
    };
}

// ---------------------------------------------------------------------------------------------
// wdftypes.h, wdfglobals.h, wdffuncenum.h
// ---------------------------------------------------------------------------------------------

pub const WDF_DRIVER_GLOBALS_NAME_LEN: u32 = 32;
pub const WDF_TYPE_DEFAULT_SECTION_NAME: &core::ffi::CStr = c".data";
pub const WdfMinimumVersionRequired: ULONG = 33;

pub mod _WDF_TRI_STATE {
    pub type Type = ::core::ffi::c_int;
    pub const WdfFalse: Type = 0;
    pub const WdfTrue: Type = 1;
    pub const WdfUseDefault: Type = 2;
}
pub use self::_WDF_TRI_STATE::Type as WDF_TRI_STATE;
pub type PWDF_TRI_STATE = *mut _WDF_TRI_STATE::Type;

pub type WDFCONTEXT = PVOID;
pub type WDFOBJECT = HANDLE;
pub type WDFDRIVER = HANDLE;
pub type WDFDEVICE = HANDLE;
pub type WDFWMIPROVIDER = HANDLE;
pub type WDFWMIINSTANCE = HANDLE;
pub type WDFQUEUE = HANDLE;
pub type WDFREQUEST = HANDLE;
pub type WDFFILEOBJECT = HANDLE;
pub type WDFDPC = HANDLE;
pub type WDFTIMER = HANDLE;
pub type WDFWORKITEM = HANDLE;
pub type WDFINTERRUPT = HANDLE;
pub type WDFWAITLOCK = HANDLE;
pub type WDFSPINLOCK = HANDLE;
pub type WDFMEMORY = HANDLE;
pub type WDFLOOKASIDE = HANDLE;
pub type WDFIOTARGET = HANDLE;
pub type WDFUSBDEVICE = HANDLE;
pub type WDFUSBINTERFACE = HANDLE;
pub type WDFUSBPIPE = HANDLE;
pub type WDFDMAENABLER = HANDLE;
pub type WDFDMATRANSACTION = HANDLE;
pub type WDFCOMMONBUFFER = HANDLE;
pub type WDFKEY = HANDLE;
pub type WDFSTRING = HANDLE;
pub type WDFCOLLECTION = HANDLE;
pub type WDFCHILDLIST = HANDLE;
pub type WDFIORESREQLIST = HANDLE;
pub type WDFIORESLIST = HANDLE;
pub type WDFCMRESLIST = HANDLE;
pub type WDFCOMPANIONTARGET = HANDLE;

/// An entry of the framework's function table (`WdfFunctions`).
pub type WDFFUNC = ::core::option::Option<unsafe extern "C" fn()>;

/// Opaque device-initialisation block handed to `EvtDriverDeviceAdd`.
#[repr(C)]
#[derive(Debug, Copy, Clone)]
pub struct WDFDEVICE_INIT {
    _unused: [u8; 0],
}
pub type PWDFDEVICE_INIT = *mut WDFDEVICE_INIT;

/// Per-driver framework globals (`WdfDriverGlobals` points at one).
#[repr(C)]
#[derive(Debug, Copy, Clone)]
pub struct _WDF_DRIVER_GLOBALS {
    /// Back-pointer to the driver's `WDFDRIVER` handle.
    pub Driver: WDFDRIVER,
    pub DriverFlags: ULONG,
    pub DriverTag: ULONG,
    pub DriverName: [CHAR; 32usize],
    pub DisplaceDriverUnload: BOOLEAN,
}
assert_layout!(_WDF_DRIVER_GLOBALS, size 56, align 8,
    Driver @ 0, DriverFlags @ 8, DriverTag @ 12, DriverName @ 16, DisplaceDriverUnload @ 48);
pub type WDF_DRIVER_GLOBALS = _WDF_DRIVER_GLOBALS;
pub type PWDF_DRIVER_GLOBALS = *mut _WDF_DRIVER_GLOBALS;

/// The storage [`WdfDriverGlobals`] points at; zeroed (no driver handle, flags or name).
static mut DRIVER_GLOBALS: WDF_DRIVER_GLOBALS = WDF_DRIVER_GLOBALS {
    Driver: null_mut(),
    DriverFlags: 0,
    DriverTag: 0,
    DriverName: [0; 32],
    DisplaceDriverUnload: 0,
};

/// The driver's framework globals, passed as the first argument of every WDF API.
///
/// In wdk-sys this is an extern static that the framework's loader stub (`FxDriverEntry`, from
/// `WdfDriverEntry.lib`) fills in before `DriverEntry` runs. The host has no loader: this static
/// is defined here (deliberately without `#[no_mangle]`) and points at a zeroed
/// [`WDF_DRIVER_GLOBALS`] owned by this crate. `ntsim` does not need it to be per-driver: it
/// resolves the calling (emulated) machine and driver from the calling thread, not from the
/// globals. The pointer is still handed to every `ntsim_Wdf*` function, which may write the
/// `Driver` handle through it (as KMDF does in `WdfDriverCreate`), so that code reading
/// `(*WdfDriverGlobals).Driver` keeps working.
pub static mut WdfDriverGlobals: PWDF_DRIVER_GLOBALS = &raw mut DRIVER_GLOBALS;

// ---------------------------------------------------------------------------------------------
// wdfobject.h
// ---------------------------------------------------------------------------------------------

pub mod _WDF_EXECUTION_LEVEL {
    pub type Type = ::core::ffi::c_int;
    pub const WdfExecutionLevelInvalid: Type = 0;
    pub const WdfExecutionLevelInheritFromParent: Type = 1;
    pub const WdfExecutionLevelPassive: Type = 2;
    pub const WdfExecutionLevelDispatch: Type = 3;
}
pub use self::_WDF_EXECUTION_LEVEL::Type as WDF_EXECUTION_LEVEL;

pub mod _WDF_SYNCHRONIZATION_SCOPE {
    pub type Type = ::core::ffi::c_int;
    pub const WdfSynchronizationScopeInvalid: Type = 0;
    pub const WdfSynchronizationScopeInheritFromParent: Type = 1;
    pub const WdfSynchronizationScopeDevice: Type = 2;
    pub const WdfSynchronizationScopeQueue: Type = 3;
    pub const WdfSynchronizationScopeNone: Type = 4;
}
pub use self::_WDF_SYNCHRONIZATION_SCOPE::Type as WDF_SYNCHRONIZATION_SCOPE;

pub type EVT_WDF_OBJECT_CONTEXT_CLEANUP =
    ::core::option::Option<unsafe extern "C" fn(Object: WDFOBJECT)>;
pub type PFN_WDF_OBJECT_CONTEXT_CLEANUP = EVT_WDF_OBJECT_CONTEXT_CLEANUP;
pub type EVT_WDF_OBJECT_CONTEXT_DESTROY =
    ::core::option::Option<unsafe extern "C" fn(Object: WDFOBJECT)>;
pub type PFN_WDF_OBJECT_CONTEXT_DESTROY = EVT_WDF_OBJECT_CONTEXT_DESTROY;

pub type PCWDF_OBJECT_CONTEXT_TYPE_INFO = *const _WDF_OBJECT_CONTEXT_TYPE_INFO;
pub type PFN_GET_UNIQUE_CONTEXT_TYPE =
    ::core::option::Option<unsafe extern "C" fn() -> PCWDF_OBJECT_CONTEXT_TYPE_INFO>;

/// Attributes of a framework object (callbacks, synchronisation, parent, context type).
#[repr(C)]
#[derive(Debug, Copy, Clone)]
pub struct _WDF_OBJECT_ATTRIBUTES {
    pub Size: ULONG,
    pub EvtCleanupCallback: PFN_WDF_OBJECT_CONTEXT_CLEANUP,
    pub EvtDestroyCallback: PFN_WDF_OBJECT_CONTEXT_DESTROY,
    pub ExecutionLevel: WDF_EXECUTION_LEVEL,
    pub SynchronizationScope: WDF_SYNCHRONIZATION_SCOPE,
    pub ParentObject: WDFOBJECT,
    pub ContextSizeOverride: usize,
    pub ContextTypeInfo: PCWDF_OBJECT_CONTEXT_TYPE_INFO,
}
assert_layout!(_WDF_OBJECT_ATTRIBUTES, size 56, align 8,
    Size @ 0, EvtCleanupCallback @ 8, EvtDestroyCallback @ 16, ExecutionLevel @ 24,
    SynchronizationScope @ 28, ParentObject @ 32, ContextSizeOverride @ 40, ContextTypeInfo @ 48);
pub type WDF_OBJECT_ATTRIBUTES = _WDF_OBJECT_ATTRIBUTES;
pub type PWDF_OBJECT_ATTRIBUTES = *mut _WDF_OBJECT_ATTRIBUTES;

/// Describes an object context type (`WDF_DECLARE_CONTEXT_TYPE` in C).
#[repr(C)]
#[derive(Debug, Copy, Clone)]
pub struct _WDF_OBJECT_CONTEXT_TYPE_INFO {
    pub Size: ULONG,
    pub ContextName: LPCSTR,
    pub ContextSize: usize,
    pub UniqueType: PCWDF_OBJECT_CONTEXT_TYPE_INFO,
    pub EvtDriverGetUniqueContextType: PFN_GET_UNIQUE_CONTEXT_TYPE,
}
assert_layout!(_WDF_OBJECT_CONTEXT_TYPE_INFO, size 40, align 8,
    Size @ 0, ContextName @ 8, ContextSize @ 16, UniqueType @ 24,
    EvtDriverGetUniqueContextType @ 32);
pub type WDF_OBJECT_CONTEXT_TYPE_INFO = _WDF_OBJECT_CONTEXT_TYPE_INFO;
pub type PWDF_OBJECT_CONTEXT_TYPE_INFO = *mut _WDF_OBJECT_CONTEXT_TYPE_INFO;

// ---------------------------------------------------------------------------------------------
// wdfdriver.h
// ---------------------------------------------------------------------------------------------

pub mod _WDF_DRIVER_INIT_FLAGS {
    pub type Type = ::core::ffi::c_int;
    pub const WdfDriverInitNonPnpDriver: Type = 1;
    pub const WdfDriverInitNoDispatchOverride: Type = 2;
    pub const WdfVerifyOn: Type = 4;
    pub const WdfVerifierOn: Type = 8;
    pub const WdfDriverInitCompanion: Type = 16;
}
pub use self::_WDF_DRIVER_INIT_FLAGS::Type as WDF_DRIVER_INIT_FLAGS;

pub type EVT_WDF_DRIVER_DEVICE_ADD = ::core::option::Option<
    unsafe extern "C" fn(Driver: WDFDRIVER, DeviceInit: PWDFDEVICE_INIT) -> NTSTATUS,
>;
pub type PFN_WDF_DRIVER_DEVICE_ADD = EVT_WDF_DRIVER_DEVICE_ADD;
pub type EVT_WDF_DRIVER_UNLOAD = ::core::option::Option<unsafe extern "C" fn(Driver: WDFDRIVER)>;
pub type PFN_WDF_DRIVER_UNLOAD = EVT_WDF_DRIVER_UNLOAD;

/// Driver-wide configuration passed to `WdfDriverCreate`.
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _WDF_DRIVER_CONFIG {
    pub Size: ULONG,
    pub EvtDriverDeviceAdd: PFN_WDF_DRIVER_DEVICE_ADD,
    pub EvtDriverUnload: PFN_WDF_DRIVER_UNLOAD,
    pub DriverInitFlags: ULONG,
    pub DriverPoolTag: ULONG,
}
assert_layout!(_WDF_DRIVER_CONFIG, size 32, align 8,
    Size @ 0, EvtDriverDeviceAdd @ 8, EvtDriverUnload @ 16, DriverInitFlags @ 24,
    DriverPoolTag @ 28);
pub type WDF_DRIVER_CONFIG = _WDF_DRIVER_CONFIG;
pub type PWDF_DRIVER_CONFIG = *mut _WDF_DRIVER_CONFIG;

/// Input of `WdfDriverIsVersionAvailable`.
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _WDF_DRIVER_VERSION_AVAILABLE_PARAMS {
    pub Size: ULONG,
    pub MajorVersion: ULONG,
    pub MinorVersion: ULONG,
}
assert_layout!(_WDF_DRIVER_VERSION_AVAILABLE_PARAMS, size 12, align 4,
    Size @ 0, MajorVersion @ 4, MinorVersion @ 8);
pub type WDF_DRIVER_VERSION_AVAILABLE_PARAMS = _WDF_DRIVER_VERSION_AVAILABLE_PARAMS;
pub type PWDF_DRIVER_VERSION_AVAILABLE_PARAMS = *mut _WDF_DRIVER_VERSION_AVAILABLE_PARAMS;

// ---------------------------------------------------------------------------------------------
// wdfdevice.h
// ---------------------------------------------------------------------------------------------

pub mod _WDF_POWER_DEVICE_STATE {
    pub type Type = ::core::ffi::c_int;
    pub const WdfPowerDeviceInvalid: Type = 0;
    pub const WdfPowerDeviceD0: Type = 1;
    pub const WdfPowerDeviceD1: Type = 2;
    pub const WdfPowerDeviceD2: Type = 3;
    pub const WdfPowerDeviceD3: Type = 4;
    pub const WdfPowerDeviceD3Final: Type = 5;
    pub const WdfPowerDevicePrepareForHibernation: Type = 6;
    pub const WdfPowerDeviceMaximum: Type = 7;
}
pub use self::_WDF_POWER_DEVICE_STATE::Type as WDF_POWER_DEVICE_STATE;
pub type PWDF_POWER_DEVICE_STATE = *mut _WDF_POWER_DEVICE_STATE::Type;

pub mod _WDF_SPECIAL_FILE_TYPE {
    pub type Type = ::core::ffi::c_int;
    pub const WdfSpecialFileUndefined: Type = 0;
    pub const WdfSpecialFilePaging: Type = 1;
    pub const WdfSpecialFileHibernation: Type = 2;
    pub const WdfSpecialFileDump: Type = 3;
    pub const WdfSpecialFileBoot: Type = 4;
    pub const WdfSpecialFilePostDisplay: Type = 5;
    pub const WdfSpecialFileGuestAssigned: Type = 6;
    pub const WdfSpecialFileMax: Type = 7;
}
pub use self::_WDF_SPECIAL_FILE_TYPE::Type as WDF_SPECIAL_FILE_TYPE;
pub type PWDF_SPECIAL_FILE_TYPE = *mut _WDF_SPECIAL_FILE_TYPE::Type;

pub mod _WDF_DEVICE_IO_TYPE {
    pub type Type = ::core::ffi::c_int;
    pub const WdfDeviceIoUndefined: Type = 0;
    pub const WdfDeviceIoNeither: Type = 1;
    pub const WdfDeviceIoBuffered: Type = 2;
    pub const WdfDeviceIoDirect: Type = 3;
    pub const WdfDeviceIoBufferedOrDirect: Type = 4;
    pub const WdfDeviceIoMaximum: Type = 5;
}
pub use self::_WDF_DEVICE_IO_TYPE::Type as WDF_DEVICE_IO_TYPE;
pub type PWDF_DEVICE_IO_TYPE = *mut _WDF_DEVICE_IO_TYPE::Type;

pub type EVT_WDF_DEVICE_D0_ENTRY = ::core::option::Option<
    unsafe extern "C" fn(Device: WDFDEVICE, PreviousState: WDF_POWER_DEVICE_STATE) -> NTSTATUS,
>;
pub type PFN_WDF_DEVICE_D0_ENTRY = EVT_WDF_DEVICE_D0_ENTRY;
pub type EVT_WDF_DEVICE_D0_ENTRY_POST_INTERRUPTS_ENABLED = ::core::option::Option<
    unsafe extern "C" fn(Device: WDFDEVICE, PreviousState: WDF_POWER_DEVICE_STATE) -> NTSTATUS,
>;
pub type PFN_WDF_DEVICE_D0_ENTRY_POST_INTERRUPTS_ENABLED =
    EVT_WDF_DEVICE_D0_ENTRY_POST_INTERRUPTS_ENABLED;
pub type EVT_WDF_DEVICE_D0_ENTRY_POST_HARDWARE_ENABLED = ::core::option::Option<
    unsafe extern "C" fn(Device: WDFDEVICE, PreviousState: WDF_POWER_DEVICE_STATE) -> NTSTATUS,
>;
pub type PFN_WDF_DEVICE_D0_ENTRY_POST_HARDWARE_ENABLED =
    EVT_WDF_DEVICE_D0_ENTRY_POST_HARDWARE_ENABLED;
pub type EVT_WDF_DEVICE_D0_EXIT = ::core::option::Option<
    unsafe extern "C" fn(Device: WDFDEVICE, TargetState: WDF_POWER_DEVICE_STATE) -> NTSTATUS,
>;
pub type PFN_WDF_DEVICE_D0_EXIT = EVT_WDF_DEVICE_D0_EXIT;
pub type EVT_WDF_DEVICE_D0_EXIT_PRE_INTERRUPTS_DISABLED = ::core::option::Option<
    unsafe extern "C" fn(Device: WDFDEVICE, TargetState: WDF_POWER_DEVICE_STATE) -> NTSTATUS,
>;
pub type PFN_WDF_DEVICE_D0_EXIT_PRE_INTERRUPTS_DISABLED =
    EVT_WDF_DEVICE_D0_EXIT_PRE_INTERRUPTS_DISABLED;
pub type EVT_WDF_DEVICE_D0_EXIT_PRE_HARDWARE_DISABLED = ::core::option::Option<
    unsafe extern "C" fn(Device: WDFDEVICE, TargetState: WDF_POWER_DEVICE_STATE) -> NTSTATUS,
>;
pub type PFN_WDF_DEVICE_D0_EXIT_PRE_HARDWARE_DISABLED =
    EVT_WDF_DEVICE_D0_EXIT_PRE_HARDWARE_DISABLED;
pub type EVT_WDF_DEVICE_PREPARE_HARDWARE = ::core::option::Option<
    unsafe extern "C" fn(
        Device: WDFDEVICE,
        ResourcesRaw: WDFCMRESLIST,
        ResourcesTranslated: WDFCMRESLIST,
    ) -> NTSTATUS,
>;
pub type PFN_WDF_DEVICE_PREPARE_HARDWARE = EVT_WDF_DEVICE_PREPARE_HARDWARE;
pub type EVT_WDF_DEVICE_RELEASE_HARDWARE = ::core::option::Option<
    unsafe extern "C" fn(Device: WDFDEVICE, ResourcesTranslated: WDFCMRESLIST) -> NTSTATUS,
>;
pub type PFN_WDF_DEVICE_RELEASE_HARDWARE = EVT_WDF_DEVICE_RELEASE_HARDWARE;
pub type EVT_WDF_DEVICE_SELF_MANAGED_IO_CLEANUP =
    ::core::option::Option<unsafe extern "C" fn(Device: WDFDEVICE)>;
pub type PFN_WDF_DEVICE_SELF_MANAGED_IO_CLEANUP = EVT_WDF_DEVICE_SELF_MANAGED_IO_CLEANUP;
pub type EVT_WDF_DEVICE_SELF_MANAGED_IO_FLUSH =
    ::core::option::Option<unsafe extern "C" fn(Device: WDFDEVICE)>;
pub type PFN_WDF_DEVICE_SELF_MANAGED_IO_FLUSH = EVT_WDF_DEVICE_SELF_MANAGED_IO_FLUSH;
pub type EVT_WDF_DEVICE_SELF_MANAGED_IO_INIT =
    ::core::option::Option<unsafe extern "C" fn(Device: WDFDEVICE) -> NTSTATUS>;
pub type PFN_WDF_DEVICE_SELF_MANAGED_IO_INIT = EVT_WDF_DEVICE_SELF_MANAGED_IO_INIT;
pub type EVT_WDF_DEVICE_SELF_MANAGED_IO_SUSPEND =
    ::core::option::Option<unsafe extern "C" fn(Device: WDFDEVICE) -> NTSTATUS>;
pub type PFN_WDF_DEVICE_SELF_MANAGED_IO_SUSPEND = EVT_WDF_DEVICE_SELF_MANAGED_IO_SUSPEND;
pub type EVT_WDF_DEVICE_SELF_MANAGED_IO_RESTART =
    ::core::option::Option<unsafe extern "C" fn(Device: WDFDEVICE) -> NTSTATUS>;
pub type PFN_WDF_DEVICE_SELF_MANAGED_IO_RESTART = EVT_WDF_DEVICE_SELF_MANAGED_IO_RESTART;
pub type EVT_WDF_DEVICE_QUERY_STOP =
    ::core::option::Option<unsafe extern "C" fn(Device: WDFDEVICE) -> NTSTATUS>;
pub type PFN_WDF_DEVICE_QUERY_STOP = EVT_WDF_DEVICE_QUERY_STOP;
pub type EVT_WDF_DEVICE_QUERY_REMOVE =
    ::core::option::Option<unsafe extern "C" fn(Device: WDFDEVICE) -> NTSTATUS>;
pub type PFN_WDF_DEVICE_QUERY_REMOVE = EVT_WDF_DEVICE_QUERY_REMOVE;
pub type EVT_WDF_DEVICE_SURPRISE_REMOVAL =
    ::core::option::Option<unsafe extern "C" fn(Device: WDFDEVICE)>;
pub type PFN_WDF_DEVICE_SURPRISE_REMOVAL = EVT_WDF_DEVICE_SURPRISE_REMOVAL;
pub type EVT_WDF_DEVICE_USAGE_NOTIFICATION = ::core::option::Option<
    unsafe extern "C" fn(
        Device: WDFDEVICE,
        NotificationType: WDF_SPECIAL_FILE_TYPE,
        IsInNotificationPath: BOOLEAN,
    ),
>;
pub type PFN_WDF_DEVICE_USAGE_NOTIFICATION = EVT_WDF_DEVICE_USAGE_NOTIFICATION;
pub type EVT_WDF_DEVICE_USAGE_NOTIFICATION_EX = ::core::option::Option<
    unsafe extern "C" fn(
        Device: WDFDEVICE,
        NotificationType: WDF_SPECIAL_FILE_TYPE,
        IsInNotificationPath: BOOLEAN,
    ) -> NTSTATUS,
>;
pub type PFN_WDF_DEVICE_USAGE_NOTIFICATION_EX = EVT_WDF_DEVICE_USAGE_NOTIFICATION_EX;
pub type EVT_WDF_DEVICE_RELATIONS_QUERY = ::core::option::Option<
    unsafe extern "C" fn(Device: WDFDEVICE, RelationType: DEVICE_RELATION_TYPE),
>;
pub type PFN_WDF_DEVICE_RELATIONS_QUERY = EVT_WDF_DEVICE_RELATIONS_QUERY;

/// Plug and Play and power callbacks of a device (`WdfDeviceInitSetPnpPowerEventCallbacks`).
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _WDF_PNPPOWER_EVENT_CALLBACKS {
    pub Size: ULONG,
    pub EvtDeviceD0Entry: PFN_WDF_DEVICE_D0_ENTRY,
    pub EvtDeviceD0EntryPostInterruptsEnabled: PFN_WDF_DEVICE_D0_ENTRY_POST_INTERRUPTS_ENABLED,
    pub EvtDeviceD0Exit: PFN_WDF_DEVICE_D0_EXIT,
    pub EvtDeviceD0ExitPreInterruptsDisabled: PFN_WDF_DEVICE_D0_EXIT_PRE_INTERRUPTS_DISABLED,
    pub EvtDevicePrepareHardware: PFN_WDF_DEVICE_PREPARE_HARDWARE,
    pub EvtDeviceReleaseHardware: PFN_WDF_DEVICE_RELEASE_HARDWARE,
    pub EvtDeviceSelfManagedIoCleanup: PFN_WDF_DEVICE_SELF_MANAGED_IO_CLEANUP,
    pub EvtDeviceSelfManagedIoFlush: PFN_WDF_DEVICE_SELF_MANAGED_IO_FLUSH,
    pub EvtDeviceSelfManagedIoInit: PFN_WDF_DEVICE_SELF_MANAGED_IO_INIT,
    pub EvtDeviceSelfManagedIoSuspend: PFN_WDF_DEVICE_SELF_MANAGED_IO_SUSPEND,
    pub EvtDeviceSelfManagedIoRestart: PFN_WDF_DEVICE_SELF_MANAGED_IO_RESTART,
    pub EvtDeviceSurpriseRemoval: PFN_WDF_DEVICE_SURPRISE_REMOVAL,
    pub EvtDeviceQueryRemove: PFN_WDF_DEVICE_QUERY_REMOVE,
    pub EvtDeviceQueryStop: PFN_WDF_DEVICE_QUERY_STOP,
    pub EvtDeviceUsageNotification: PFN_WDF_DEVICE_USAGE_NOTIFICATION,
    pub EvtDeviceRelationsQuery: PFN_WDF_DEVICE_RELATIONS_QUERY,
    pub EvtDeviceUsageNotificationEx: PFN_WDF_DEVICE_USAGE_NOTIFICATION_EX,
}
assert_layout!(_WDF_PNPPOWER_EVENT_CALLBACKS, size 144, align 8,
    Size @ 0, EvtDeviceD0Entry @ 8, EvtDeviceD0EntryPostInterruptsEnabled @ 16,
    EvtDeviceD0Exit @ 24, EvtDeviceD0ExitPreInterruptsDisabled @ 32,
    EvtDevicePrepareHardware @ 40, EvtDeviceReleaseHardware @ 48,
    EvtDeviceSelfManagedIoCleanup @ 56, EvtDeviceSelfManagedIoFlush @ 64,
    EvtDeviceSelfManagedIoInit @ 72, EvtDeviceSelfManagedIoSuspend @ 80,
    EvtDeviceSelfManagedIoRestart @ 88, EvtDeviceSurpriseRemoval @ 96,
    EvtDeviceQueryRemove @ 104, EvtDeviceQueryStop @ 112, EvtDeviceUsageNotification @ 120,
    EvtDeviceRelationsQuery @ 128, EvtDeviceUsageNotificationEx @ 136);
pub type WDF_PNPPOWER_EVENT_CALLBACKS = _WDF_PNPPOWER_EVENT_CALLBACKS;
pub type PWDF_PNPPOWER_EVENT_CALLBACKS = *mut _WDF_PNPPOWER_EVENT_CALLBACKS;

pub mod _WDF_FILEOBJECT_CLASS {
    pub type Type = ::core::ffi::c_int;
    pub const WdfFileObjectInvalid: Type = 0;
    pub const WdfFileObjectNotRequired: Type = 1;
    pub const WdfFileObjectWdfCanUseFsContext: Type = 2;
    pub const WdfFileObjectWdfCanUseFsContext2: Type = 3;
    pub const WdfFileObjectWdfCannotUseFsContexts: Type = 4;
    /// `0x80000000` in the header; the enum's type is `int` (MSVC), so bindgen emits it negative.
    pub const WdfFileObjectCanBeOptional: Type = -2_147_483_648;
}
pub use self::_WDF_FILEOBJECT_CLASS::Type as WDF_FILEOBJECT_CLASS;
pub type PWDF_FILEOBJECT_CLASS = *mut _WDF_FILEOBJECT_CLASS::Type;

pub type EVT_WDF_DEVICE_FILE_CREATE = ::core::option::Option<
    unsafe extern "C" fn(Device: WDFDEVICE, Request: WDFREQUEST, FileObject: WDFFILEOBJECT),
>;
pub type PFN_WDF_DEVICE_FILE_CREATE = EVT_WDF_DEVICE_FILE_CREATE;
pub type EVT_WDF_FILE_CLOSE =
    ::core::option::Option<unsafe extern "C" fn(FileObject: WDFFILEOBJECT)>;
pub type PFN_WDF_FILE_CLOSE = EVT_WDF_FILE_CLOSE;
pub type EVT_WDF_FILE_CLEANUP =
    ::core::option::Option<unsafe extern "C" fn(FileObject: WDFFILEOBJECT)>;
pub type PFN_WDF_FILE_CLEANUP = EVT_WDF_FILE_CLEANUP;

/// File-object callbacks and class of a device (`WdfDeviceInitSetFileObjectConfig`).
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _WDF_FILEOBJECT_CONFIG {
    pub Size: ULONG,
    pub EvtDeviceFileCreate: PFN_WDF_DEVICE_FILE_CREATE,
    pub EvtFileClose: PFN_WDF_FILE_CLOSE,
    pub EvtFileCleanup: PFN_WDF_FILE_CLEANUP,
    pub AutoForwardCleanupClose: WDF_TRI_STATE,
    pub FileObjectClass: WDF_FILEOBJECT_CLASS,
}
assert_layout!(_WDF_FILEOBJECT_CONFIG, size 40, align 8,
    Size @ 0, EvtDeviceFileCreate @ 8, EvtFileClose @ 16, EvtFileCleanup @ 24,
    AutoForwardCleanupClose @ 32, FileObjectClass @ 36);
pub type WDF_FILEOBJECT_CONFIG = _WDF_FILEOBJECT_CONFIG;
pub type PWDF_FILEOBJECT_CONFIG = *mut _WDF_FILEOBJECT_CONFIG;

// ---------------------------------------------------------------------------------------------
// wdfrequest.h
// ---------------------------------------------------------------------------------------------

/// `WDF_REQUEST_STOP_ACTION_FLAGS` (wdfrequest.h): what `EvtIoStop` is told.
pub mod _WDF_REQUEST_STOP_ACTION_FLAGS {
    pub type Type = ::core::ffi::c_int;
    pub const WdfRequestStopActionInvalid: Type = 0;
    pub const WdfRequestStopActionSuspend: Type = 1;
    pub const WdfRequestStopActionPurge: Type = 2;
    pub const WdfRequestStopRequestCancelable: Type = 0x1000_0000;
}
pub use self::_WDF_REQUEST_STOP_ACTION_FLAGS::Type as WDF_REQUEST_STOP_ACTION_FLAGS;

pub mod _WDF_REQUEST_TYPE {
    pub type Type = ::core::ffi::c_int;
    pub const WdfRequestTypeCreate: Type = 0;
    pub const WdfRequestTypeCreateNamedPipe: Type = 1;
    pub const WdfRequestTypeClose: Type = 2;
    pub const WdfRequestTypeRead: Type = 3;
    pub const WdfRequestTypeWrite: Type = 4;
    pub const WdfRequestTypeQueryInformation: Type = 5;
    pub const WdfRequestTypeSetInformation: Type = 6;
    pub const WdfRequestTypeQueryEA: Type = 7;
    pub const WdfRequestTypeSetEA: Type = 8;
    pub const WdfRequestTypeFlushBuffers: Type = 9;
    pub const WdfRequestTypeQueryVolumeInformation: Type = 10;
    pub const WdfRequestTypeSetVolumeInformation: Type = 11;
    pub const WdfRequestTypeDirectoryControl: Type = 12;
    pub const WdfRequestTypeFileSystemControl: Type = 13;
    pub const WdfRequestTypeDeviceControl: Type = 14;
    pub const WdfRequestTypeDeviceControlInternal: Type = 15;
    pub const WdfRequestTypeShutdown: Type = 16;
    pub const WdfRequestTypeLockControl: Type = 17;
    pub const WdfRequestTypeCleanup: Type = 18;
    pub const WdfRequestTypeCreateMailSlot: Type = 19;
    pub const WdfRequestTypeQuerySecurity: Type = 20;
    pub const WdfRequestTypeSetSecurity: Type = 21;
    pub const WdfRequestTypePower: Type = 22;
    pub const WdfRequestTypeSystemControl: Type = 23;
    pub const WdfRequestTypeDeviceChange: Type = 24;
    pub const WdfRequestTypeQueryQuota: Type = 25;
    pub const WdfRequestTypeSetQuota: Type = 26;
    pub const WdfRequestTypePnp: Type = 27;
    pub const WdfRequestTypeOther: Type = 28;
    pub const WdfRequestTypeUsb: Type = 64;
    pub const WdfRequestTypeNoFormat: Type = 255;
    pub const WdfRequestTypeMax: Type = 256;
}
pub use self::_WDF_REQUEST_TYPE::Type as WDF_REQUEST_TYPE;

pub type EVT_WDF_REQUEST_CANCEL = ::core::option::Option<unsafe extern "C" fn(Request: WDFREQUEST)>;
pub type PFN_WDF_REQUEST_CANCEL = EVT_WDF_REQUEST_CANCEL;

/// The parameters of an I/O request (`WdfRequestGetParameters`).
#[repr(C)]
#[derive(Copy, Clone)]
pub struct _WDF_REQUEST_PARAMETERS {
    pub Size: USHORT,
    pub MinorFunction: UCHAR,
    pub Type: WDF_REQUEST_TYPE,
    pub Parameters: _WDF_REQUEST_PARAMETERS__bindgen_ty_1,
}

/// The anonymous `Parameters` union of `WDF_REQUEST_PARAMETERS`, one member per request type.
#[repr(C)]
#[derive(Copy, Clone)]
pub union _WDF_REQUEST_PARAMETERS__bindgen_ty_1 {
    pub Create: _WDF_REQUEST_PARAMETERS__bindgen_ty_1__bindgen_ty_1,
    pub Read: _WDF_REQUEST_PARAMETERS__bindgen_ty_1__bindgen_ty_2,
    pub Write: _WDF_REQUEST_PARAMETERS__bindgen_ty_1__bindgen_ty_3,
    pub DeviceIoControl: _WDF_REQUEST_PARAMETERS__bindgen_ty_1__bindgen_ty_4,
    pub Others: _WDF_REQUEST_PARAMETERS__bindgen_ty_1__bindgen_ty_5,
}

/// `Parameters.Create`. `FileAttributes` and `EaLength` are `DECLSPEC_ALIGN(8)` in C, hence
/// bindgen's explicit padding fields.
#[repr(C)]
#[derive(Debug, Copy, Clone)]
pub struct _WDF_REQUEST_PARAMETERS__bindgen_ty_1__bindgen_ty_1 {
    pub SecurityContext: PIO_SECURITY_CONTEXT,
    pub Options: ULONG,
    pub __bindgen_padding_0: [u16; 2usize],
    pub FileAttributes: USHORT,
    pub ShareAccess: USHORT,
    pub __bindgen_padding_1: u32,
    pub EaLength: ULONG,
}
assert_layout!(_WDF_REQUEST_PARAMETERS__bindgen_ty_1__bindgen_ty_1, size 32, align 8,
    SecurityContext @ 0, Options @ 8, FileAttributes @ 16, ShareAccess @ 18, EaLength @ 24);

/// `Parameters.Read`.
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _WDF_REQUEST_PARAMETERS__bindgen_ty_1__bindgen_ty_2 {
    pub Length: usize,
    pub Key: ULONG,
    pub DeviceOffset: LONGLONG,
}
assert_layout!(_WDF_REQUEST_PARAMETERS__bindgen_ty_1__bindgen_ty_2, size 24, align 8,
    Length @ 0, Key @ 8, DeviceOffset @ 16);

/// `Parameters.Write`.
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _WDF_REQUEST_PARAMETERS__bindgen_ty_1__bindgen_ty_3 {
    pub Length: usize,
    pub Key: ULONG,
    pub DeviceOffset: LONGLONG,
}
assert_layout!(_WDF_REQUEST_PARAMETERS__bindgen_ty_1__bindgen_ty_3, size 24, align 8,
    Length @ 0, Key @ 8, DeviceOffset @ 16);

/// `Parameters.DeviceIoControl`.
#[repr(C)]
#[derive(Debug, Copy, Clone)]
pub struct _WDF_REQUEST_PARAMETERS__bindgen_ty_1__bindgen_ty_4 {
    pub OutputBufferLength: usize,
    pub InputBufferLength: usize,
    pub IoControlCode: ULONG,
    pub Type3InputBuffer: PVOID,
}
assert_layout!(_WDF_REQUEST_PARAMETERS__bindgen_ty_1__bindgen_ty_4, size 32, align 8,
    OutputBufferLength @ 0, InputBufferLength @ 8, IoControlCode @ 16, Type3InputBuffer @ 24);

/// `Parameters.Others`.
#[repr(C)]
#[derive(Debug, Copy, Clone)]
pub struct _WDF_REQUEST_PARAMETERS__bindgen_ty_1__bindgen_ty_5 {
    pub Arg1: PVOID,
    pub Arg2: PVOID,
    pub IoControlCode: ULONG,
    pub Arg4: PVOID,
}
assert_layout!(_WDF_REQUEST_PARAMETERS__bindgen_ty_1__bindgen_ty_5, size 32, align 8,
    Arg1 @ 0, Arg2 @ 8, IoControlCode @ 16, Arg4 @ 24);

assert_layout!(_WDF_REQUEST_PARAMETERS__bindgen_ty_1, size 32, align 8,
    Create @ 0, Read @ 0, Write @ 0, DeviceIoControl @ 0, Others @ 0);
assert_layout!(_WDF_REQUEST_PARAMETERS, size 40, align 8,
    Size @ 0, MinorFunction @ 2, Type @ 4, Parameters @ 8);
pub type WDF_REQUEST_PARAMETERS = _WDF_REQUEST_PARAMETERS;
pub type PWDF_REQUEST_PARAMETERS = *mut _WDF_REQUEST_PARAMETERS;

// ---------------------------------------------------------------------------------------------
// wdfio.h
// ---------------------------------------------------------------------------------------------

pub mod _WDF_IO_QUEUE_DISPATCH_TYPE {
    pub type Type = ::core::ffi::c_int;
    pub const WdfIoQueueDispatchInvalid: Type = 0;
    pub const WdfIoQueueDispatchSequential: Type = 1;
    pub const WdfIoQueueDispatchParallel: Type = 2;
    pub const WdfIoQueueDispatchManual: Type = 3;
    pub const WdfIoQueueDispatchMax: Type = 4;
}
pub use self::_WDF_IO_QUEUE_DISPATCH_TYPE::Type as WDF_IO_QUEUE_DISPATCH_TYPE;

pub type EVT_WDF_IO_QUEUE_IO_DEFAULT =
    ::core::option::Option<unsafe extern "C" fn(Queue: WDFQUEUE, Request: WDFREQUEST)>;
pub type PFN_WDF_IO_QUEUE_IO_DEFAULT = EVT_WDF_IO_QUEUE_IO_DEFAULT;
pub type EVT_WDF_IO_QUEUE_IO_STOP = ::core::option::Option<
    unsafe extern "C" fn(Queue: WDFQUEUE, Request: WDFREQUEST, ActionFlags: ULONG),
>;
pub type PFN_WDF_IO_QUEUE_IO_STOP = EVT_WDF_IO_QUEUE_IO_STOP;
pub type EVT_WDF_IO_QUEUE_IO_RESUME =
    ::core::option::Option<unsafe extern "C" fn(Queue: WDFQUEUE, Request: WDFREQUEST)>;
pub type PFN_WDF_IO_QUEUE_IO_RESUME = EVT_WDF_IO_QUEUE_IO_RESUME;
pub type EVT_WDF_IO_QUEUE_IO_READ = ::core::option::Option<
    unsafe extern "C" fn(Queue: WDFQUEUE, Request: WDFREQUEST, Length: usize),
>;
pub type PFN_WDF_IO_QUEUE_IO_READ = EVT_WDF_IO_QUEUE_IO_READ;
pub type EVT_WDF_IO_QUEUE_IO_WRITE = ::core::option::Option<
    unsafe extern "C" fn(Queue: WDFQUEUE, Request: WDFREQUEST, Length: usize),
>;
pub type PFN_WDF_IO_QUEUE_IO_WRITE = EVT_WDF_IO_QUEUE_IO_WRITE;
pub type EVT_WDF_IO_QUEUE_IO_DEVICE_CONTROL = ::core::option::Option<
    unsafe extern "C" fn(
        Queue: WDFQUEUE,
        Request: WDFREQUEST,
        OutputBufferLength: usize,
        InputBufferLength: usize,
        IoControlCode: ULONG,
    ),
>;
pub type PFN_WDF_IO_QUEUE_IO_DEVICE_CONTROL = EVT_WDF_IO_QUEUE_IO_DEVICE_CONTROL;
pub type EVT_WDF_IO_QUEUE_IO_INTERNAL_DEVICE_CONTROL = ::core::option::Option<
    unsafe extern "C" fn(
        Queue: WDFQUEUE,
        Request: WDFREQUEST,
        OutputBufferLength: usize,
        InputBufferLength: usize,
        IoControlCode: ULONG,
    ),
>;
pub type PFN_WDF_IO_QUEUE_IO_INTERNAL_DEVICE_CONTROL = EVT_WDF_IO_QUEUE_IO_INTERNAL_DEVICE_CONTROL;
pub type EVT_WDF_IO_QUEUE_IO_CANCELED_ON_QUEUE =
    ::core::option::Option<unsafe extern "C" fn(Queue: WDFQUEUE, Request: WDFREQUEST)>;
pub type PFN_WDF_IO_QUEUE_IO_CANCELED_ON_QUEUE = EVT_WDF_IO_QUEUE_IO_CANCELED_ON_QUEUE;

/// Configuration of an I/O queue (`WdfIoQueueCreate`).
#[repr(C)]
#[derive(Copy, Clone)]
pub struct _WDF_IO_QUEUE_CONFIG {
    pub Size: ULONG,
    pub DispatchType: WDF_IO_QUEUE_DISPATCH_TYPE,
    pub PowerManaged: WDF_TRI_STATE,
    pub AllowZeroLengthRequests: BOOLEAN,
    pub DefaultQueue: BOOLEAN,
    pub EvtIoDefault: PFN_WDF_IO_QUEUE_IO_DEFAULT,
    pub EvtIoRead: PFN_WDF_IO_QUEUE_IO_READ,
    pub EvtIoWrite: PFN_WDF_IO_QUEUE_IO_WRITE,
    pub EvtIoDeviceControl: PFN_WDF_IO_QUEUE_IO_DEVICE_CONTROL,
    pub EvtIoInternalDeviceControl: PFN_WDF_IO_QUEUE_IO_INTERNAL_DEVICE_CONTROL,
    pub EvtIoStop: PFN_WDF_IO_QUEUE_IO_STOP,
    pub EvtIoResume: PFN_WDF_IO_QUEUE_IO_RESUME,
    pub EvtIoCanceledOnQueue: PFN_WDF_IO_QUEUE_IO_CANCELED_ON_QUEUE,
    pub Settings: _WDF_IO_QUEUE_CONFIG__bindgen_ty_1,
    pub Driver: WDFDRIVER,
}

/// The `Settings` union of `WDF_IO_QUEUE_CONFIG`.
#[repr(C)]
#[derive(Copy, Clone)]
pub union _WDF_IO_QUEUE_CONFIG__bindgen_ty_1 {
    pub Parallel: _WDF_IO_QUEUE_CONFIG__bindgen_ty_1__bindgen_ty_1,
}

/// `Settings.Parallel`.
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _WDF_IO_QUEUE_CONFIG__bindgen_ty_1__bindgen_ty_1 {
    pub NumberOfPresentedRequests: ULONG,
}
assert_layout!(_WDF_IO_QUEUE_CONFIG__bindgen_ty_1__bindgen_ty_1, size 4, align 4,
    NumberOfPresentedRequests @ 0);
assert_layout!(_WDF_IO_QUEUE_CONFIG__bindgen_ty_1, size 4, align 4, Parallel @ 0);
assert_layout!(_WDF_IO_QUEUE_CONFIG, size 96, align 8,
    Size @ 0, DispatchType @ 4, PowerManaged @ 8, AllowZeroLengthRequests @ 12,
    DefaultQueue @ 13, EvtIoDefault @ 16, EvtIoRead @ 24, EvtIoWrite @ 32,
    EvtIoDeviceControl @ 40, EvtIoInternalDeviceControl @ 48, EvtIoStop @ 56, EvtIoResume @ 64,
    EvtIoCanceledOnQueue @ 72, Settings @ 80, Driver @ 88);
pub type WDF_IO_QUEUE_CONFIG = _WDF_IO_QUEUE_CONFIG;
pub type PWDF_IO_QUEUE_CONFIG = *mut _WDF_IO_QUEUE_CONFIG;

// ---------------------------------------------------------------------------------------------
// wdfdpc.h, wdftimer.h, wdfworkitem.h
// ---------------------------------------------------------------------------------------------

pub type EVT_WDF_DPC = ::core::option::Option<unsafe extern "C" fn(Dpc: WDFDPC)>;
pub type PFN_WDF_DPC = EVT_WDF_DPC;
pub type EVT_WDF_TIMER = ::core::option::Option<unsafe extern "C" fn(Timer: WDFTIMER)>;
pub type PFN_WDF_TIMER = EVT_WDF_TIMER;
pub type EVT_WDF_WORKITEM = ::core::option::Option<unsafe extern "C" fn(WorkItem: WDFWORKITEM)>;
pub type PFN_WDF_WORKITEM = EVT_WDF_WORKITEM;

/// Configuration of a framework DPC object.
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _WDF_DPC_CONFIG {
    pub Size: ULONG,
    pub EvtDpcFunc: PFN_WDF_DPC,
    pub AutomaticSerialization: BOOLEAN,
}
assert_layout!(_WDF_DPC_CONFIG, size 24, align 8,
    Size @ 0, EvtDpcFunc @ 8, AutomaticSerialization @ 16);
pub type WDF_DPC_CONFIG = _WDF_DPC_CONFIG;
pub type PWDF_DPC_CONFIG = *mut _WDF_DPC_CONFIG;

/// Configuration of a framework timer (`WdfTimerCreate`).
///
/// `UseHighResolutionTimer` is `DECLSPEC_ALIGN(8)` in C, so bindgen adds the public
/// `__bindgen_padding_0`; build the struct with `..Default::default()`.
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _WDF_TIMER_CONFIG {
    pub Size: ULONG,
    pub EvtTimerFunc: PFN_WDF_TIMER,
    pub Period: ULONG,
    pub AutomaticSerialization: BOOLEAN,
    pub TolerableDelay: ULONG,
    pub __bindgen_padding_0: [u8; 4usize],
    pub UseHighResolutionTimer: BOOLEAN,
}
assert_layout!(_WDF_TIMER_CONFIG, size 40, align 8,
    Size @ 0, EvtTimerFunc @ 8, Period @ 16, AutomaticSerialization @ 20, TolerableDelay @ 24,
    UseHighResolutionTimer @ 32);
pub type WDF_TIMER_CONFIG = _WDF_TIMER_CONFIG;
pub type PWDF_TIMER_CONFIG = *mut _WDF_TIMER_CONFIG;

/// Configuration of a framework work item.
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _WDF_WORKITEM_CONFIG {
    pub Size: ULONG,
    pub EvtWorkItemFunc: PFN_WDF_WORKITEM,
    pub AutomaticSerialization: BOOLEAN,
}
assert_layout!(_WDF_WORKITEM_CONFIG, size 24, align 8,
    Size @ 0, EvtWorkItemFunc @ 8, AutomaticSerialization @ 16);
pub type WDF_WORKITEM_CONFIG = _WDF_WORKITEM_CONFIG;
pub type PWDF_WORKITEM_CONFIG = *mut _WDF_WORKITEM_CONFIG;

zeroed_default!(
    _WDF_DRIVER_GLOBALS,
    _WDF_OBJECT_ATTRIBUTES,
    _WDF_OBJECT_CONTEXT_TYPE_INFO,
    _WDF_REQUEST_PARAMETERS,
    _WDF_REQUEST_PARAMETERS__bindgen_ty_1,
    _WDF_REQUEST_PARAMETERS__bindgen_ty_1__bindgen_ty_1,
    _WDF_REQUEST_PARAMETERS__bindgen_ty_1__bindgen_ty_4,
    _WDF_REQUEST_PARAMETERS__bindgen_ty_1__bindgen_ty_5,
    _WDF_IO_QUEUE_CONFIG,
    _WDF_IO_QUEUE_CONFIG__bindgen_ty_1,
);

// ---------------------------------------------------------------------------------------------
// The API function-pointer types (PFN_ + upper-case API name), first parameter DriverGlobals.
// ---------------------------------------------------------------------------------------------

pub type PFN_WDFDRIVERCREATE = ::core::option::Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        DriverObject: PDRIVER_OBJECT,
        RegistryPath: PCUNICODE_STRING,
        DriverAttributes: PWDF_OBJECT_ATTRIBUTES,
        DriverConfig: PWDF_DRIVER_CONFIG,
        Driver: *mut WDFDRIVER,
    ) -> NTSTATUS,
>;
pub type PFN_WDFDRIVERISVERSIONAVAILABLE = ::core::option::Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Driver: WDFDRIVER,
        VersionAvailableParams: PWDF_DRIVER_VERSION_AVAILABLE_PARAMS,
    ) -> BOOLEAN,
>;
pub type PFN_WDFDEVICECREATE = ::core::option::Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        DeviceInit: *mut PWDFDEVICE_INIT,
        DeviceAttributes: PWDF_OBJECT_ATTRIBUTES,
        Device: *mut WDFDEVICE,
    ) -> NTSTATUS,
>;
pub type PFN_WDFDEVICEINITASSIGNSDDLSTRING = ::core::option::Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        DeviceInit: PWDFDEVICE_INIT,
        SDDLString: PCUNICODE_STRING,
    ) -> NTSTATUS,
>;
pub type PFN_WDFDEVICEINITSETIOTYPE = ::core::option::Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        DeviceInit: PWDFDEVICE_INIT,
        IoType: WDF_DEVICE_IO_TYPE,
    ),
>;
pub type PFN_WDFDEVICEINITSETEXCLUSIVE = ::core::option::Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        DeviceInit: PWDFDEVICE_INIT,
        IsExclusive: BOOLEAN,
    ),
>;
pub type PFN_WDFDEVICEINITSETPNPPOWEREVENTCALLBACKS = ::core::option::Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        DeviceInit: PWDFDEVICE_INIT,
        PnpPowerEventCallbacks: PWDF_PNPPOWER_EVENT_CALLBACKS,
    ),
>;
pub type PFN_WDFDEVICECREATEDEVICEINTERFACE = ::core::option::Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Device: WDFDEVICE,
        InterfaceClassGUID: *const GUID,
        ReferenceString: PCUNICODE_STRING,
    ) -> NTSTATUS,
>;
pub type PFN_WDFDEVICEGETDEFAULTQUEUE = ::core::option::Option<
    unsafe extern "C" fn(DriverGlobals: PWDF_DRIVER_GLOBALS, Device: WDFDEVICE) -> WDFQUEUE,
>;
pub type PFN_WDFIOQUEUECREATE = ::core::option::Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Device: WDFDEVICE,
        Config: PWDF_IO_QUEUE_CONFIG,
        QueueAttributes: PWDF_OBJECT_ATTRIBUTES,
        Queue: *mut WDFQUEUE,
    ) -> NTSTATUS,
>;
pub type PFN_WDFREQUESTGETIOQUEUE = ::core::option::Option<
    unsafe extern "C" fn(DriverGlobals: PWDF_DRIVER_GLOBALS, Request: WDFREQUEST) -> WDFQUEUE,
>;
pub type PFN_WDFREQUESTRETRIEVEINPUTBUFFER = ::core::option::Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Request: WDFREQUEST,
        MinimumRequiredLength: usize,
        Buffer: *mut PVOID,
        Length: *mut usize,
    ) -> NTSTATUS,
>;
pub type PFN_WDFREQUESTRETRIEVEOUTPUTBUFFER = ::core::option::Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Request: WDFREQUEST,
        MinimumRequiredSize: usize,
        Buffer: *mut PVOID,
        Length: *mut usize,
    ) -> NTSTATUS,
>;
pub type PFN_WDFREQUESTCOMPLETE = ::core::option::Option<
    unsafe extern "C" fn(DriverGlobals: PWDF_DRIVER_GLOBALS, Request: WDFREQUEST, Status: NTSTATUS),
>;
pub type PFN_WDFREQUESTCOMPLETEWITHINFORMATION = ::core::option::Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Request: WDFREQUEST,
        Status: NTSTATUS,
        Information: ULONG_PTR,
    ),
>;
pub type PFN_WDFREQUESTSETINFORMATION = ::core::option::Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Request: WDFREQUEST,
        Information: ULONG_PTR,
    ),
>;
pub type PFN_WDFREQUESTMARKCANCELABLE = ::core::option::Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Request: WDFREQUEST,
        EvtRequestCancel: PFN_WDF_REQUEST_CANCEL,
    ),
>;
pub type PFN_WDFREQUESTMARKCANCELABLEEX = ::core::option::Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Request: WDFREQUEST,
        EvtRequestCancel: PFN_WDF_REQUEST_CANCEL,
    ) -> NTSTATUS,
>;
pub type PFN_WDFREQUESTUNMARKCANCELABLE = ::core::option::Option<
    unsafe extern "C" fn(DriverGlobals: PWDF_DRIVER_GLOBALS, Request: WDFREQUEST) -> NTSTATUS,
>;
pub type PFN_WDFREQUESTISCANCELED = ::core::option::Option<
    unsafe extern "C" fn(DriverGlobals: PWDF_DRIVER_GLOBALS, Request: WDFREQUEST) -> BOOLEAN,
>;
pub type PFN_WDFFILEOBJECTGETDEVICE = ::core::option::Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        FileObject: WDFFILEOBJECT,
    ) -> WDFDEVICE,
>;
pub type PFN_WDFREQUESTGETFILEOBJECT = ::core::option::Option<
    unsafe extern "C" fn(DriverGlobals: PWDF_DRIVER_GLOBALS, Request: WDFREQUEST) -> WDFFILEOBJECT,
>;
pub type PFN_WDFDEVICEINITSETFILEOBJECTCONFIG = ::core::option::Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        DeviceInit: PWDFDEVICE_INIT,
        FileObjectConfig: PWDF_FILEOBJECT_CONFIG,
        FileObjectAttributes: PWDF_OBJECT_ATTRIBUTES,
    ),
>;
pub type PFN_WDFREQUESTGETPARAMETERS = ::core::option::Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Request: WDFREQUEST,
        Parameters: PWDF_REQUEST_PARAMETERS,
    ),
>;
pub type PFN_WDFOBJECTGETTYPEDCONTEXTWORKER = ::core::option::Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Handle: WDFOBJECT,
        TypeInfo: PCWDF_OBJECT_CONTEXT_TYPE_INFO,
    ) -> PVOID,
>;
pub type PFN_WDFOBJECTDELETE = ::core::option::Option<
    unsafe extern "C" fn(DriverGlobals: PWDF_DRIVER_GLOBALS, Object: WDFOBJECT),
>;
pub type PFN_WDFSPINLOCKCREATE = ::core::option::Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        SpinLockAttributes: PWDF_OBJECT_ATTRIBUTES,
        SpinLock: *mut WDFSPINLOCK,
    ) -> NTSTATUS,
>;
pub type PFN_WDFSPINLOCKACQUIRE = ::core::option::Option<
    unsafe extern "C" fn(DriverGlobals: PWDF_DRIVER_GLOBALS, SpinLock: WDFSPINLOCK),
>;
pub type PFN_WDFSPINLOCKRELEASE = ::core::option::Option<
    unsafe extern "C" fn(DriverGlobals: PWDF_DRIVER_GLOBALS, SpinLock: WDFSPINLOCK),
>;
pub type PFN_WDFWAITLOCKCREATE = ::core::option::Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        LockAttributes: PWDF_OBJECT_ATTRIBUTES,
        Lock: *mut WDFWAITLOCK,
    ) -> NTSTATUS,
>;
pub type PFN_WDFWAITLOCKACQUIRE = ::core::option::Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Lock: WDFWAITLOCK,
        Timeout: PLONGLONG,
    ) -> NTSTATUS,
>;
pub type PFN_WDFWAITLOCKRELEASE = ::core::option::Option<
    unsafe extern "C" fn(DriverGlobals: PWDF_DRIVER_GLOBALS, Lock: WDFWAITLOCK),
>;
pub type PFN_WDFTIMERCREATE = ::core::option::Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Config: PWDF_TIMER_CONFIG,
        Attributes: PWDF_OBJECT_ATTRIBUTES,
        Timer: *mut WDFTIMER,
    ) -> NTSTATUS,
>;
pub type PFN_WDFTIMERSTART = ::core::option::Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Timer: WDFTIMER,
        DueTime: LONGLONG,
    ) -> BOOLEAN,
>;
pub type PFN_WDFTIMERSTOP = ::core::option::Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Timer: WDFTIMER,
        Wait: BOOLEAN,
    ) -> BOOLEAN,
>;
pub type PFN_WDFTIMERGETPARENTOBJECT = ::core::option::Option<
    unsafe extern "C" fn(DriverGlobals: PWDF_DRIVER_GLOBALS, Timer: WDFTIMER) -> WDFOBJECT,
>;
pub type PFN_WDFVERIFIERDBGBREAKPOINT =
    ::core::option::Option<unsafe extern "C" fn(DriverGlobals: PWDF_DRIVER_GLOBALS)>;
