//! The WDF call surface behind [`call_unsafe_wdf_function_binding!`](crate::call_unsafe_wdf_function_binding)
//! (approach (b) of wdk-sys-shape.md section 2).
//!
//! On Windows, wdk-sys's macro looks the API up in the framework's function table
//! (`WdfFunctions`, filled by the KMDF loader) and calls it with `WdfDriverGlobals` first. The
//! host has no table: each API `WdfX` is a typed `unsafe fn` here that forwards to the C-ABI
//! symbol `ntsim_WdfX`, which the `ntsim` emulator defines with `#[unsafe(no_mangle)]
//! extern "C"` and the signature of the crate-root type `PFN_WDFX` (`DriverGlobals:
//! PWDF_DRIVER_GLOBALS` followed by the API's KMDF 1.33 parameters). The `const` items below
//! check each declaration against that type.
//!
//! Parameter names and types are those of the KMDF 1.33 `PFN_*` typedefs, so arguments coerce
//! exactly as they do through the real macro; functions returning a value are `#[must_use]`.

#![allow(non_snake_case, reason = "the KMDF API and parameter names")]
#![allow(
    clippy::inline_always,
    reason = "a call through this module must cost what the C stub costs"
)]

use crate::types::{
    WdfDriverGlobals, BOOLEAN, GUID, LONGLONG, NTSTATUS, PCUNICODE_STRING,
    PCWDF_OBJECT_CONTEXT_TYPE_INFO, PDRIVER_OBJECT, PFN_WDFDEVICECREATE,
    PFN_WDFDEVICECREATEDEVICEINTERFACE, PFN_WDFDEVICEGETDEFAULTQUEUE,
    PFN_WDFDEVICEINITASSIGNSDDLSTRING, PFN_WDFDEVICEINITSETEXCLUSIVE,
    PFN_WDFDEVICEINITSETFILEOBJECTCONFIG, PFN_WDFDEVICEINITSETIOTYPE,
    PFN_WDFDEVICEINITSETPNPPOWEREVENTCALLBACKS, PFN_WDFDRIVERCREATE,
    PFN_WDFDRIVERISVERSIONAVAILABLE, PFN_WDFFILEOBJECTGETDEVICE, PFN_WDFIOQUEUECREATE,
    PFN_WDFOBJECTDELETE, PFN_WDFOBJECTGETTYPEDCONTEXTWORKER, PFN_WDFREQUESTCOMPLETE,
    PFN_WDFREQUESTCOMPLETEWITHINFORMATION, PFN_WDFREQUESTGETFILEOBJECT, PFN_WDFREQUESTGETIOQUEUE,
    PFN_WDFREQUESTGETPARAMETERS, PFN_WDFREQUESTISCANCELED, PFN_WDFREQUESTMARKCANCELABLE,
    PFN_WDFREQUESTMARKCANCELABLEEX, PFN_WDFREQUESTRETRIEVEINPUTBUFFER,
    PFN_WDFREQUESTRETRIEVEOUTPUTBUFFER, PFN_WDFREQUESTSETINFORMATION,
    PFN_WDFREQUESTUNMARKCANCELABLE, PFN_WDFSPINLOCKACQUIRE, PFN_WDFSPINLOCKCREATE,
    PFN_WDFSPINLOCKRELEASE, PFN_WDFTIMERCREATE, PFN_WDFTIMERGETPARENTOBJECT, PFN_WDFTIMERSTART,
    PFN_WDFTIMERSTOP, PFN_WDFVERIFIERDBGBREAKPOINT, PFN_WDFWAITLOCKACQUIRE, PFN_WDFWAITLOCKCREATE,
    PFN_WDFWAITLOCKRELEASE, PFN_WDF_REQUEST_CANCEL, PLONGLONG, PVOID, PWDFDEVICE_INIT,
    PWDF_DRIVER_CONFIG, PWDF_DRIVER_GLOBALS, PWDF_DRIVER_VERSION_AVAILABLE_PARAMS,
    PWDF_FILEOBJECT_CONFIG, PWDF_IO_QUEUE_CONFIG, PWDF_OBJECT_ATTRIBUTES,
    PWDF_PNPPOWER_EVENT_CALLBACKS, PWDF_REQUEST_PARAMETERS, PWDF_TIMER_CONFIG, ULONG_PTR,
    WDFDEVICE, WDFDRIVER, WDFFILEOBJECT, WDFOBJECT, WDFQUEUE, WDFREQUEST, WDFSPINLOCK, WDFTIMER,
    WDFWAITLOCK, WDF_DEVICE_IO_TYPE,
};

/// Declares, for each API, the `ntsim_*` symbol, a `const` check of it against the API's `PFN_*`
/// type, and the forwarding `unsafe fn`.
macro_rules! wdf_apis {
    ($(
        $(#[$attr:meta])*
        fn $api:ident => $symbol:ident : $pfn:ident ($($param:ident : $ty:ty),* $(,)?) $(-> $ret:ty)?;
    )*) => {
        unsafe extern "C" {
            $(
                fn $symbol(DriverGlobals: PWDF_DRIVER_GLOBALS $(, $param: $ty)*) $(-> $ret)?;
            )*
        }

        $(
            const _: $pfn = Some($symbol);

            #[doc = concat!(
                "Calls the KMDF 1.33 API `", stringify!($api), "` (implemented by ntsim as `",
                stringify!($symbol), "`), passing [`WdfDriverGlobals`] as `DriverGlobals`.",
            )]
            ///
            /// # Safety
            ///
            /// The arguments must satisfy the API's contract in the KMDF documentation (valid
            /// handles and pointers, IRQL, object state); nothing beyond the parameter types is
            /// checked here.
            $(#[$attr])*
            #[inline(always)]
            pub unsafe fn $api($($param: $ty),*) $(-> $ret)? {
                // SAFETY: `WdfDriverGlobals` is a plain pointer-sized static that is initialised
                // at compile time and never written by this crate; reading it by value creates
                // no reference that could alias a concurrent writer.
                let driver_globals = unsafe { WdfDriverGlobals };
                // SAFETY: the caller upholds the API's KMDF contract (this function's `# Safety`),
                // the declaration matches ntsim's definition (checked against the `PFN_*` type
                // above), and `driver_globals` is the pointer every WDF API expects first.
                unsafe { $symbol(driver_globals $(, $param)*) }
            }
        )*
    };
}

wdf_apis! {
    #[must_use]
    fn WdfDriverCreate => ntsim_WdfDriverCreate: PFN_WDFDRIVERCREATE(
        DriverObject: PDRIVER_OBJECT,
        RegistryPath: PCUNICODE_STRING,
        DriverAttributes: PWDF_OBJECT_ATTRIBUTES,
        DriverConfig: PWDF_DRIVER_CONFIG,
        Driver: *mut WDFDRIVER,
    ) -> NTSTATUS;

    #[must_use]
    fn WdfDriverIsVersionAvailable => ntsim_WdfDriverIsVersionAvailable:
        PFN_WDFDRIVERISVERSIONAVAILABLE(
        Driver: WDFDRIVER,
        VersionAvailableParams: PWDF_DRIVER_VERSION_AVAILABLE_PARAMS,
    ) -> BOOLEAN;

    #[must_use]
    fn WdfDeviceCreate => ntsim_WdfDeviceCreate: PFN_WDFDEVICECREATE(
        DeviceInit: *mut PWDFDEVICE_INIT,
        DeviceAttributes: PWDF_OBJECT_ATTRIBUTES,
        Device: *mut WDFDEVICE,
    ) -> NTSTATUS;

    #[must_use]
    fn WdfDeviceInitAssignSDDLString => ntsim_WdfDeviceInitAssignSDDLString:
        PFN_WDFDEVICEINITASSIGNSDDLSTRING(
        DeviceInit: PWDFDEVICE_INIT,
        SDDLString: PCUNICODE_STRING,
    ) -> NTSTATUS;

    fn WdfDeviceInitSetIoType => ntsim_WdfDeviceInitSetIoType: PFN_WDFDEVICEINITSETIOTYPE(
        DeviceInit: PWDFDEVICE_INIT,
        IoType: WDF_DEVICE_IO_TYPE,
    );

    fn WdfDeviceInitSetExclusive => ntsim_WdfDeviceInitSetExclusive:
        PFN_WDFDEVICEINITSETEXCLUSIVE(
        DeviceInit: PWDFDEVICE_INIT,
        IsExclusive: BOOLEAN,
    );

    fn WdfDeviceInitSetFileObjectConfig => ntsim_WdfDeviceInitSetFileObjectConfig:
        PFN_WDFDEVICEINITSETFILEOBJECTCONFIG(
        DeviceInit: PWDFDEVICE_INIT,
        FileObjectConfig: PWDF_FILEOBJECT_CONFIG,
        FileObjectAttributes: PWDF_OBJECT_ATTRIBUTES,
    );

    fn WdfDeviceInitSetPnpPowerEventCallbacks => ntsim_WdfDeviceInitSetPnpPowerEventCallbacks:
        PFN_WDFDEVICEINITSETPNPPOWEREVENTCALLBACKS(
        DeviceInit: PWDFDEVICE_INIT,
        PnpPowerEventCallbacks: PWDF_PNPPOWER_EVENT_CALLBACKS,
    );

    #[must_use]
    fn WdfDeviceCreateDeviceInterface => ntsim_WdfDeviceCreateDeviceInterface:
        PFN_WDFDEVICECREATEDEVICEINTERFACE(
        Device: WDFDEVICE,
        InterfaceClassGUID: *const GUID,
        ReferenceString: PCUNICODE_STRING,
    ) -> NTSTATUS;

    #[must_use]
    fn WdfDeviceGetDefaultQueue => ntsim_WdfDeviceGetDefaultQueue: PFN_WDFDEVICEGETDEFAULTQUEUE(
        Device: WDFDEVICE,
    ) -> WDFQUEUE;

    #[must_use]
    fn WdfIoQueueCreate => ntsim_WdfIoQueueCreate: PFN_WDFIOQUEUECREATE(
        Device: WDFDEVICE,
        Config: PWDF_IO_QUEUE_CONFIG,
        QueueAttributes: PWDF_OBJECT_ATTRIBUTES,
        Queue: *mut WDFQUEUE,
    ) -> NTSTATUS;

    #[must_use]
    fn WdfFileObjectGetDevice => ntsim_WdfFileObjectGetDevice: PFN_WDFFILEOBJECTGETDEVICE(
        FileObject: WDFFILEOBJECT,
    ) -> WDFDEVICE;

    #[must_use]
    fn WdfRequestGetIoQueue => ntsim_WdfRequestGetIoQueue: PFN_WDFREQUESTGETIOQUEUE(
        Request: WDFREQUEST,
    ) -> WDFQUEUE;

    #[must_use]
    fn WdfRequestRetrieveInputBuffer => ntsim_WdfRequestRetrieveInputBuffer:
        PFN_WDFREQUESTRETRIEVEINPUTBUFFER(
        Request: WDFREQUEST,
        MinimumRequiredLength: usize,
        Buffer: *mut PVOID,
        Length: *mut usize,
    ) -> NTSTATUS;

    #[must_use]
    fn WdfRequestRetrieveOutputBuffer => ntsim_WdfRequestRetrieveOutputBuffer:
        PFN_WDFREQUESTRETRIEVEOUTPUTBUFFER(
        Request: WDFREQUEST,
        MinimumRequiredSize: usize,
        Buffer: *mut PVOID,
        Length: *mut usize,
    ) -> NTSTATUS;

    fn WdfRequestComplete => ntsim_WdfRequestComplete: PFN_WDFREQUESTCOMPLETE(
        Request: WDFREQUEST,
        Status: NTSTATUS,
    );

    fn WdfRequestCompleteWithInformation => ntsim_WdfRequestCompleteWithInformation:
        PFN_WDFREQUESTCOMPLETEWITHINFORMATION(
        Request: WDFREQUEST,
        Status: NTSTATUS,
        Information: ULONG_PTR,
    );

    fn WdfRequestSetInformation => ntsim_WdfRequestSetInformation: PFN_WDFREQUESTSETINFORMATION(
        Request: WDFREQUEST,
        Information: ULONG_PTR,
    );

    fn WdfRequestMarkCancelable => ntsim_WdfRequestMarkCancelable:
        PFN_WDFREQUESTMARKCANCELABLE(
        Request: WDFREQUEST,
        EvtRequestCancel: PFN_WDF_REQUEST_CANCEL,
    );

    #[must_use]
    fn WdfRequestMarkCancelableEx => ntsim_WdfRequestMarkCancelableEx:
        PFN_WDFREQUESTMARKCANCELABLEEX(
        Request: WDFREQUEST,
        EvtRequestCancel: PFN_WDF_REQUEST_CANCEL,
    ) -> NTSTATUS;

    #[must_use]
    fn WdfRequestUnmarkCancelable => ntsim_WdfRequestUnmarkCancelable:
        PFN_WDFREQUESTUNMARKCANCELABLE(
        Request: WDFREQUEST,
    ) -> NTSTATUS;

    #[must_use]
    fn WdfRequestIsCanceled => ntsim_WdfRequestIsCanceled: PFN_WDFREQUESTISCANCELED(
        Request: WDFREQUEST,
    ) -> BOOLEAN;

    #[must_use]
    fn WdfRequestGetFileObject => ntsim_WdfRequestGetFileObject: PFN_WDFREQUESTGETFILEOBJECT(
        Request: WDFREQUEST,
    ) -> WDFFILEOBJECT;

    fn WdfRequestGetParameters => ntsim_WdfRequestGetParameters: PFN_WDFREQUESTGETPARAMETERS(
        Request: WDFREQUEST,
        Parameters: PWDF_REQUEST_PARAMETERS,
    );

    #[must_use]
    fn WdfObjectGetTypedContextWorker => ntsim_WdfObjectGetTypedContextWorker:
        PFN_WDFOBJECTGETTYPEDCONTEXTWORKER(
        Handle: WDFOBJECT,
        TypeInfo: PCWDF_OBJECT_CONTEXT_TYPE_INFO,
    ) -> PVOID;

    fn WdfObjectDelete => ntsim_WdfObjectDelete: PFN_WDFOBJECTDELETE(
        Object: WDFOBJECT,
    );

    #[must_use]
    fn WdfSpinLockCreate => ntsim_WdfSpinLockCreate: PFN_WDFSPINLOCKCREATE(
        SpinLockAttributes: PWDF_OBJECT_ATTRIBUTES,
        SpinLock: *mut WDFSPINLOCK,
    ) -> NTSTATUS;

    fn WdfSpinLockAcquire => ntsim_WdfSpinLockAcquire: PFN_WDFSPINLOCKACQUIRE(
        SpinLock: WDFSPINLOCK,
    );

    fn WdfSpinLockRelease => ntsim_WdfSpinLockRelease: PFN_WDFSPINLOCKRELEASE(
        SpinLock: WDFSPINLOCK,
    );

    #[must_use]
    fn WdfWaitLockCreate => ntsim_WdfWaitLockCreate: PFN_WDFWAITLOCKCREATE(
        LockAttributes: PWDF_OBJECT_ATTRIBUTES,
        Lock: *mut WDFWAITLOCK,
    ) -> NTSTATUS;

    #[must_use]
    fn WdfWaitLockAcquire => ntsim_WdfWaitLockAcquire: PFN_WDFWAITLOCKACQUIRE(
        Lock: WDFWAITLOCK,
        Timeout: PLONGLONG,
    ) -> NTSTATUS;

    fn WdfWaitLockRelease => ntsim_WdfWaitLockRelease: PFN_WDFWAITLOCKRELEASE(
        Lock: WDFWAITLOCK,
    );

    #[must_use]
    fn WdfTimerCreate => ntsim_WdfTimerCreate: PFN_WDFTIMERCREATE(
        Config: PWDF_TIMER_CONFIG,
        Attributes: PWDF_OBJECT_ATTRIBUTES,
        Timer: *mut WDFTIMER,
    ) -> NTSTATUS;

    #[must_use]
    fn WdfTimerStart => ntsim_WdfTimerStart: PFN_WDFTIMERSTART(
        Timer: WDFTIMER,
        DueTime: LONGLONG,
    ) -> BOOLEAN;

    #[must_use]
    fn WdfTimerStop => ntsim_WdfTimerStop: PFN_WDFTIMERSTOP(
        Timer: WDFTIMER,
        Wait: BOOLEAN,
    ) -> BOOLEAN;

    #[must_use]
    fn WdfTimerGetParentObject => ntsim_WdfTimerGetParentObject: PFN_WDFTIMERGETPARENTOBJECT(
        Timer: WDFTIMER,
    ) -> WDFOBJECT;

    fn WdfVerifierDbgBreakPoint => ntsim_WdfVerifierDbgBreakPoint: PFN_WDFVERIFIERDBGBREAKPOINT();
}
