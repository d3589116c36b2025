//! Shape tests of the host wdk-sys: x64 sizes and alignments (wdk-sys-shape.md sections 1.7 and
//! 10), integer widths, enum and constant types, `STATUS_*` values, and that
//! `call_unsafe_wdf_function_binding!` expands like wdk-sys's macro for the APIs drivers use.
//!
//! Nothing here calls into ntsim: the `ntsim_Wdf*` and kernel symbols are not defined by this
//! crate, so the macro checks live in functions that are type-checked but never called.

use core::any::TypeId;
use core::mem::{align_of, size_of};

use wdk_sys::{
    call_unsafe_wdf_function_binding, WdfDriverGlobals, _EVENT_TYPE, _KWAIT_REASON, _MODE,
    _POOL_TYPE, _WAIT_TYPE, _WDF_EXECUTION_LEVEL, _WDF_FILEOBJECT_CLASS,
    _WDF_IO_QUEUE_DISPATCH_TYPE, _WDF_SYNCHRONIZATION_SCOPE, _WDF_TRI_STATE, APC_LEVEL, BOOLEAN,
    CCHAR, CLIENT_ID, DEVICE_OBJECT, DISPATCHER_HEADER, DISPATCH_LEVEL, DRIVER_OBJECT, ERESOURCE,
    EVENT_TYPE, EX_DEFAULT_PUSH_LOCK_FLAGS, EX_RUNDOWN_REF, EX_SPIN_LOCK, FALSE, FAST_MUTEX,
    FILE_OBJECT, GROUP_AFFINITY, GUID, HIGH_LEVEL, IO_STACK_LOCATION, IO_STATUS_BLOCK, IRP, KAPC,
    KDPC, KDPC_WATCHDOG_INFORMATION, KEVENT, KGUARDED_MUTEX, KIRQL, KLOCK_QUEUE_HANDLE, KMUTANT,
    KMUTEX, KPROCESSOR_MODE, KSEMAPHORE, KSPIN_LOCK, KSPIN_LOCK_QUEUE, KTIMER, KWAIT_BLOCK,
    LARGE_INTEGER, LIST_ENTRY, LONG, LONGLONG, LONG_PTR, NTSTATUS, NT_ERROR, NT_INFORMATION,
    NT_SUCCESS, NT_WARNING, OBJECT_ATTRIBUTES, OWNER_ENTRY, PASSIVE_LEVEL, PCUNICODE_STRING,
    PDRIVER_OBJECT, PFAST_MUTEX, PFN_WDF_DEVICE_FILE_CREATE, PFN_WDF_FILE_CLEANUP,
    PFN_WDF_FILE_CLOSE, PFN_WDF_REQUEST_CANCEL, PKGUARDED_MUTEX, POOL_FLAGS, POOL_FLAG_NON_PAGED,
    POOL_FLAG_PAGED, PROCESSOR_NUMBER, PVOID, PWDFDEVICE_INIT, SINGLE_LIST_ENTRY, SIZE_T,
    SLIST_ENTRY, SLIST_HEADER, STATUS_BUFFER_TOO_SMALL, STATUS_CANCELLED, STATUS_INVALID_PARAMETER,
    STATUS_PENDING, STATUS_REVISION_MISMATCH, STATUS_SUCCESS, STATUS_UNSUCCESSFUL, TRUE, UCHAR,
    ULONG, ULONG64, ULONGLONG, ULONG_PTR, UNICODE_STRING, USHORT, WCHAR, WDFDEVICE, WDFDRIVER,
    WDFFILEOBJECT, WDFOBJECT, WDFQUEUE, WDFREQUEST, WDFSPINLOCK, WDFTIMER, WDF_DPC_CONFIG,
    WDF_DRIVER_CONFIG, WDF_DRIVER_GLOBALS, WDF_DRIVER_VERSION_AVAILABLE_PARAMS,
    WDF_FILEOBJECT_CLASS, WDF_FILEOBJECT_CONFIG, WDF_IO_QUEUE_CONFIG, WDF_NO_HANDLE,
    WDF_NO_OBJECT_ATTRIBUTES, WDF_OBJECT_ATTRIBUTES, WDF_OBJECT_CONTEXT_TYPE_INFO,
    WDF_PNPPOWER_EVENT_CALLBACKS, WDF_REQUEST_PARAMETERS, WDF_TIMER_CONFIG, WDF_WORKITEM_CONFIG,
};

fn same_type<A: 'static, B: 'static>() -> bool {
    TypeId::of::<A>() == TypeId::of::<B>()
}

macro_rules! assert_size_align {
    ($($ty:ty => $size:literal, $align:literal;)*) => {
        $(
            assert_eq!(size_of::<$ty>(), $size, "size of {}", stringify!($ty));
            assert_eq!(align_of::<$ty>(), $align, "alignment of {}", stringify!($ty));
        )*
    };
}

#[test]
fn kernel_structures_have_the_wdk_x64_layout() {
    // wdk-sys-shape.md section 10 (WDK 10.0.22621, x64).
    assert_size_align! {
        DISPATCHER_HEADER => 24, 8;
        KEVENT => 24, 8;
        KMUTANT => 56, 8;
        KMUTEX => 56, 8;
        KSEMAPHORE => 32, 8;
        KTIMER => 64, 8;
        KDPC => 64, 8;
        FAST_MUTEX => 56, 8;
        KGUARDED_MUTEX => 56, 8;
        ERESOURCE => 104, 8;
        OWNER_ENTRY => 16, 8;
        EX_RUNDOWN_REF => 8, 8;
        KLOCK_QUEUE_HANDLE => 24, 8;
        KSPIN_LOCK_QUEUE => 16, 8;
        KWAIT_BLOCK => 48, 8;
        LIST_ENTRY => 16, 8;
        SINGLE_LIST_ENTRY => 8, 8;
        SLIST_HEADER => 16, 16;
        SLIST_ENTRY => 16, 16;
        LARGE_INTEGER => 8, 8;
        UNICODE_STRING => 16, 8;
        GUID => 16, 4;
        PROCESSOR_NUMBER => 4, 2;
        GROUP_AFFINITY => 16, 8;
        OBJECT_ATTRIBUTES => 48, 8;
        CLIENT_ID => 16, 8;
        IO_STATUS_BLOCK => 16, 8;
        KAPC => 88, 8;
        EX_SPIN_LOCK => 4, 4;
        KSPIN_LOCK => 8, 8;
        KDPC_WATCHDOG_INFORMATION => 20, 4;
        // I/O objects (dt nt!_X on x64); DEVICE_OBJECT and IRP are DECLSPEC_ALIGN(16).
        DRIVER_OBJECT => 336, 8;
        DEVICE_OBJECT => 336, 16;
        IRP => 208, 16;
        IO_STACK_LOCATION => 72, 8;
        FILE_OBJECT => 216, 8;
    }
}

#[test]
fn kmdf_structures_have_the_kmdf_1_33_x64_layout() {
    // wdk-sys-shape.md section 1.7.
    assert_size_align! {
        WDF_DRIVER_CONFIG => 32, 8;
        WDF_OBJECT_ATTRIBUTES => 56, 8;
        WDF_IO_QUEUE_CONFIG => 96, 8;
        WDF_TIMER_CONFIG => 40, 8;
        WDF_OBJECT_CONTEXT_TYPE_INFO => 40, 8;
        WDF_DRIVER_VERSION_AVAILABLE_PARAMS => 12, 4;
        WDF_PNPPOWER_EVENT_CALLBACKS => 144, 8;
        WDF_DRIVER_GLOBALS => 56, 8;
        WDF_REQUEST_PARAMETERS => 40, 8;
        WDF_WORKITEM_CONFIG => 24, 8;
        WDF_DPC_CONFIG => 24, 8;
        WDF_FILEOBJECT_CONFIG => 40, 8;
    }
}

#[test]
fn base_types_have_the_windows_llp64_widths() {
    assert!(same_type::<ULONG, u32>());
    assert!(same_type::<LONG, i32>());
    assert!(same_type::<NTSTATUS, i32>());
    assert!(same_type::<ULONG_PTR, u64>());
    assert!(same_type::<SIZE_T, u64>());
    assert!(same_type::<KSPIN_LOCK, u64>());
    assert!(same_type::<LONG_PTR, i64>());
    assert!(same_type::<LONGLONG, i64>());
    assert!(same_type::<ULONGLONG, u64>());
    assert!(same_type::<ULONG64, u64>());
    assert!(same_type::<POOL_FLAGS, u64>());
    assert!(same_type::<UCHAR, u8>());
    assert!(same_type::<BOOLEAN, u8>());
    assert!(same_type::<KIRQL, u8>());
    assert!(same_type::<CCHAR, i8>());
    assert!(same_type::<KPROCESSOR_MODE, i8>());
    assert!(same_type::<USHORT, u16>());
    assert!(same_type::<WCHAR, u16>());
    assert!(same_type::<EX_SPIN_LOCK, i32>());
    assert!(same_type::<PVOID, *mut core::ffi::c_void>());
    assert!(same_type::<WDFDRIVER, PVOID>());
    assert!(same_type::<WDFOBJECT, PVOID>());
    assert!(same_type::<PCUNICODE_STRING, *const UNICODE_STRING>());
    // KGUARDED_MUTEX is FAST_MUTEX (Windows 8 and later WDK).
    assert!(same_type::<KGUARDED_MUTEX, FAST_MUTEX>());
    assert!(same_type::<PKGUARDED_MUTEX, PFAST_MUTEX>());
}

#[test]
fn guid_data1_is_32_bits() {
    let guid = GUID {
        Data1: 0xCDC3_5B6E_u32,
        Data2: 0x0BE4,
        Data3: 0x4936,
        Data4: [0xBF, 0x5F, 0x55, 0x37, 0x38, 0x0A, 0x7C, 0x1A],
    };
    assert_eq!(guid.Data1, 0xCDC3_5B6E);
}

#[test]
fn enums_are_modules_of_i32_constants() {
    let notification: i32 = _EVENT_TYPE::NotificationEvent;
    assert_eq!(notification, 0);
    assert!(same_type::<EVENT_TYPE, i32>());
    assert!(same_type::<_EVENT_TYPE::Type, core::ffi::c_int>());
    assert_eq!(_EVENT_TYPE::SynchronizationEvent, 1);
    assert_eq!(_MODE::KernelMode, 0);
    #[allow(
        clippy::cast_possible_truncation,
        reason = "the cast driver code writes"
    )]
    let wait_mode = _MODE::KernelMode as KPROCESSOR_MODE;
    assert_eq!(wait_mode, 0);
    assert_eq!(_KWAIT_REASON::Executive, 0);
    // WDK-only enumerators, absent from mingw-w64.
    assert_eq!(_KWAIT_REASON::WrIoRing, 40);
    assert_eq!(_KWAIT_REASON::MaximumWaitReason, 42);
    assert_eq!(_WAIT_TYPE::WaitDpc, 4);
    assert_eq!(_POOL_TYPE::NonPagedPoolNx, 512);
    assert_eq!(_WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchSequential, 1);
    assert_eq!(_WDF_TRI_STATE::WdfUseDefault, 2);
    assert_eq!(_WDF_EXECUTION_LEVEL::WdfExecutionLevelInheritFromParent, 1);
    assert_eq!(
        _WDF_SYNCHRONIZATION_SCOPE::WdfSynchronizationScopeInheritFromParent,
        1
    );
}

#[test]
fn define_constants_are_untyped_u32() {
    let levels: [u32; 4] = [PASSIVE_LEVEL, APC_LEVEL, DISPATCH_LEVEL, HIGH_LEVEL];
    assert_eq!(levels, [0, 1, 2, 15]);
    let booleans: [u32; 2] = [FALSE, TRUE];
    assert_eq!(booleans, [0, 1]);
    let flags: u32 = EX_DEFAULT_PUSH_LOCK_FLAGS;
    assert_eq!(flags, 0);
    let pool: [POOL_FLAGS; 2] = [POOL_FLAG_NON_PAGED, POOL_FLAG_PAGED];
    assert_eq!(pool, [0x40, 0x100]);
}

#[test]
fn status_values_are_ntstatus_literals() {
    let values: [NTSTATUS; 7] = [
        STATUS_SUCCESS,
        STATUS_PENDING,
        STATUS_UNSUCCESSFUL,
        STATUS_INVALID_PARAMETER,
        STATUS_BUFFER_TOO_SMALL,
        STATUS_REVISION_MISMATCH,
        STATUS_CANCELLED,
    ];
    assert_eq!(
        values,
        [
            0,
            0x103,
            -1_073_741_823,
            -1_073_741_811,
            -1_073_741_789,
            -1_073_741_735,
            -1_073_741_536
        ]
    );
}

#[test]
fn nt_status_predicates_follow_ntdef_h() {
    assert!(NT_SUCCESS(STATUS_SUCCESS));
    assert!(NT_SUCCESS(STATUS_PENDING));
    assert!(!NT_SUCCESS(STATUS_INVALID_PARAMETER));
    assert!(NT_INFORMATION(0x4000_0000));
    assert!(NT_WARNING(i32::MIN));
    assert!(NT_ERROR(STATUS_INVALID_PARAMETER));
    assert!(!NT_ERROR(STATUS_SUCCESS));
}

#[test]
fn default_values_are_all_zero() {
    let config = WDF_DRIVER_CONFIG {
        Size: ULONG::try_from(size_of::<WDF_DRIVER_CONFIG>()).unwrap_or_default(),
        ..WDF_DRIVER_CONFIG::default()
    };
    assert_eq!(config.Size, 32);
    assert!(config.EvtDriverDeviceAdd.is_none());

    let attributes = WDF_OBJECT_ATTRIBUTES::default();
    assert!(attributes.ParentObject.is_null());
    assert!(attributes.ContextTypeInfo.is_null());

    let timer = WDF_TIMER_CONFIG {
        Period: 10,
        ..Default::default()
    };
    assert_eq!(timer.__bindgen_padding_0, [0; 4]);

    let queue = WDF_IO_QUEUE_CONFIG {
        DispatchType: _WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchParallel,
        ..Default::default()
    };
    // SAFETY: `Parallel` is the union's only member, and Default zeroes the whole union.
    let presented = unsafe { queue.Settings.Parallel.NumberOfPresentedRequests };
    assert_eq!(presented, 0);

    let parameters = WDF_REQUEST_PARAMETERS::default();
    // SAFETY: Default zeroes every byte of the union, so every member is initialised.
    let io_control_code = unsafe { parameters.Parameters.DeviceIoControl.IoControlCode };
    assert_eq!(io_control_code, 0);

    let large = LARGE_INTEGER { QuadPart: -10_000 };
    // SAFETY: `QuadPart` is the member that was written.
    let quad = unsafe { large.QuadPart };
    assert_eq!(quad, -10_000);
}

#[test]
fn driver_globals_point_at_zeroed_storage() {
    // SAFETY: reading the pointer by value; nothing writes it.
    let globals = unsafe { WdfDriverGlobals };
    assert!(!globals.is_null());
    // SAFETY: `globals` points at this crate's static WDF_DRIVER_GLOBALS, and no ntsim function
    // (which could write `Driver`) runs in this test.
    let driver = unsafe { (*globals).Driver };
    assert!(driver.is_null());
}

#[test]
fn wdf_function_count_is_the_kmdf_1_33_table_size() {
    assert_eq!(wdk_sys::wdf::__private::get_wdf_function_count(), 458);
}

#[test]
fn file_object_config_has_the_kmdf_1_33_field_offsets() {
    // wdfdevice.h: ULONG Size; three callback pointers; WDF_TRI_STATE; WDF_FILEOBJECT_CLASS.
    assert_eq!(core::mem::offset_of!(WDF_FILEOBJECT_CONFIG, Size), 0);
    assert_eq!(
        core::mem::offset_of!(WDF_FILEOBJECT_CONFIG, EvtDeviceFileCreate),
        8
    );
    assert_eq!(
        core::mem::offset_of!(WDF_FILEOBJECT_CONFIG, EvtFileClose),
        16
    );
    assert_eq!(
        core::mem::offset_of!(WDF_FILEOBJECT_CONFIG, EvtFileCleanup),
        24
    );
    assert_eq!(
        core::mem::offset_of!(WDF_FILEOBJECT_CONFIG, AutoForwardCleanupClose),
        32
    );
    assert_eq!(
        core::mem::offset_of!(WDF_FILEOBJECT_CONFIG, FileObjectClass),
        36
    );
    let config = WDF_FILEOBJECT_CONFIG::default();
    assert!(config.EvtDeviceFileCreate.is_none() && config.EvtFileCleanup.is_none());
    assert_eq!(
        config.FileObjectClass,
        _WDF_FILEOBJECT_CLASS::WdfFileObjectInvalid
    );
}

#[test]
fn file_object_class_is_an_int_enum_with_the_optional_bit() {
    assert!(same_type::<WDF_FILEOBJECT_CLASS, i32>());
    assert_eq!(_WDF_FILEOBJECT_CLASS::WdfFileObjectNotRequired, 1);
    assert_eq!(
        _WDF_FILEOBJECT_CLASS::WdfFileObjectWdfCannotUseFsContexts,
        4
    );
    assert_eq!(
        _WDF_FILEOBJECT_CLASS::WdfFileObjectCanBeOptional.cast_unsigned(),
        0x8000_0000
    );
}

#[test]
fn cancel_and_file_callbacks_have_the_kmdf_shapes() {
    assert!(same_type::<
        PFN_WDF_REQUEST_CANCEL,
        Option<unsafe extern "C" fn(WDFREQUEST)>,
    >());
    assert!(same_type::<
        PFN_WDF_DEVICE_FILE_CREATE,
        Option<unsafe extern "C" fn(WDFDEVICE, WDFREQUEST, WDFFILEOBJECT)>,
    >());
    assert!(same_type::<
        PFN_WDF_FILE_CLEANUP,
        Option<unsafe extern "C" fn(WDFFILEOBJECT)>,
    >());
    assert!(same_type::<
        PFN_WDF_FILE_CLOSE,
        Option<unsafe extern "C" fn(WDFFILEOBJECT)>,
    >());
}

// The macro checks below are type-checked but never called (nothing calls into ntsim here).

#[allow(dead_code)]
unsafe extern "system" fn driver_entry(
    driver: &mut DRIVER_OBJECT,
    registry_path: PCUNICODE_STRING,
) -> NTSTATUS {
    let mut driver_config = WDF_DRIVER_CONFIG {
        Size: ULONG::try_from(size_of::<WDF_DRIVER_CONFIG>()).unwrap_or_default(),
        ..WDF_DRIVER_CONFIG::default()
    };
    let driver_handle_output = WDF_NO_HANDLE.cast::<WDFDRIVER>();
    // SAFETY: never called; the arguments are those of a real DriverEntry.
    let status: NTSTATUS = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDriverCreate,
            driver as PDRIVER_OBJECT,
            registry_path,
            WDF_NO_OBJECT_ATTRIBUTES,
            &raw mut driver_config,
            driver_handle_output,
        )
    };
    status
}

#[allow(dead_code)]
const extern "C" fn cancel(_request: WDFREQUEST) {}

#[allow(dead_code)]
const extern "C" fn file_event(_file: WDFFILEOBJECT) {}

#[allow(dead_code)]
#[allow(
    clippy::borrow_as_ptr,
    reason = "checks that `&mut` coerces to the pointer parameter, as in the KMDF sample"
)]
unsafe fn macro_calls(
    mut device_init: PWDFDEVICE_INIT,
    request: WDFREQUEST,
    timer: WDFTIMER,
    spin_lock: WDFSPINLOCK,
) {
    // SAFETY: never called.
    let status: NTSTATUS = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDeviceCreate,
            &mut device_init,
            WDF_NO_OBJECT_ATTRIBUTES,
            core::ptr::null_mut()
        )
    };
    let _ = status;
    // SAFETY: never called.
    unsafe { call_unsafe_wdf_function_binding!(WdfRequestCompleteWithInformation, request, 0, 0) };
    // SAFETY: never called.
    let queue: WDFQUEUE =
        unsafe { call_unsafe_wdf_function_binding!(WdfRequestGetIoQueue, request) };
    let _ = queue;
    // SAFETY: never called.
    let parent = unsafe { call_unsafe_wdf_function_binding!(WdfTimerGetParentObject, timer,) };
    let _ = parent as WDFQUEUE;
    // SAFETY: never called.
    let started: BOOLEAN =
        unsafe { call_unsafe_wdf_function_binding!(WdfTimerStart, timer, -1_000_000) };
    let _ = started;
    // SAFETY: never called.
    unsafe { call_unsafe_wdf_function_binding!(WdfSpinLockAcquire, spin_lock) };
    // SAFETY: never called.
    unsafe { call_unsafe_wdf_function_binding!(WdfSpinLockRelease, spin_lock,) };
    // SAFETY: never called.
    unsafe { call_unsafe_wdf_function_binding!(WdfRequestMarkCancelable, request, Some(cancel)) };
    // SAFETY: never called.
    let status: NTSTATUS = unsafe {
        call_unsafe_wdf_function_binding!(WdfRequestMarkCancelableEx, request, Some(cancel),)
    };
    let _ = status == STATUS_CANCELLED;
    // SAFETY: never called.
    let status: NTSTATUS =
        unsafe { call_unsafe_wdf_function_binding!(WdfRequestUnmarkCancelable, request,) };
    let _ = status;
    // SAFETY: never called.
    let canceled: BOOLEAN =
        unsafe { call_unsafe_wdf_function_binding!(WdfRequestIsCanceled, request) };
    let _ = canceled;
    // SAFETY: never called.
    let file: WDFFILEOBJECT =
        unsafe { call_unsafe_wdf_function_binding!(WdfRequestGetFileObject, request) };
    let _ = file;
    let mut file_config = WDF_FILEOBJECT_CONFIG {
        Size: ULONG::try_from(size_of::<WDF_FILEOBJECT_CONFIG>()).unwrap_or_default(),
        EvtFileCleanup: Some(file_event),
        EvtFileClose: Some(file_event),
        AutoForwardCleanupClose: _WDF_TRI_STATE::WdfUseDefault,
        FileObjectClass: _WDF_FILEOBJECT_CLASS::WdfFileObjectWdfCannotUseFsContexts,
        ..WDF_FILEOBJECT_CONFIG::default()
    };
    // SAFETY: never called.
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDeviceInitSetFileObjectConfig,
            device_init,
            &raw mut file_config,
            WDF_NO_OBJECT_ATTRIBUTES
        );
    };
    // SAFETY: never called.
    unsafe { call_unsafe_wdf_function_binding!(WdfVerifierDbgBreakPoint) };
    wdk_sys::PAGED_CODE!();
}

#[allow(dead_code)]
fn ntddk_signatures() {
    // Function-pointer coercions check the declared signatures; never called, so the symbols are
    // not needed at link time.
    let _: unsafe extern "C" fn() -> KIRQL = wdk_sys::ntddk::KeGetCurrentIrql;
    let _: unsafe extern "C" fn(KIRQL) -> KIRQL = wdk_sys::ntddk::KfRaiseIrql;
    let _: unsafe extern "C" fn(POOL_FLAGS, SIZE_T, ULONG) -> PVOID =
        wdk_sys::ntddk::ExAllocatePool2;
    let _: unsafe extern "C" fn(*mut EX_SPIN_LOCK) -> KIRQL =
        wdk_sys::ntddk::ExAcquireSpinLockShared;
    let _: unsafe extern "C" fn(*mut ULONG_PTR, ULONG) =
        wdk_sys::ntddk::ExAcquirePushLockExclusiveEx;
    let _: unsafe extern "C" fn(PVOID) -> LONG_PTR = wdk_sys::ntddk::ObfDereferenceObject;
}
