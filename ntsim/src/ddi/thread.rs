//! System threads and the object manager subset (ddi.md 10.3).
//!
//! `PsCreateSystemThread`, `PsTerminateSystemThread`, `ObReferenceObjectByHandle`, `ObfDereferenceObject`, `ZwClose`,
//! `PsThreadType`, and `PsGetCurrentThread` (which the WDK only inlines; drivers declare the
//! export themselves, errata 3).

use std::ptr;

use wdk_sys::{
    ACCESS_MASK, HANDLE, KPROCESSOR_MODE, LONG_PTR, NTSTATUS, OBJECT_ATTRIBUTES, PCLIENT_ID,
    PHANDLE, PKSTART_ROUTINE, POBJECT_HANDLE_INFORMATION, POBJECT_TYPE, PVOID, ULONG,
};

use crate::{
    bugcheck::{code, verifier},
    context::{self, enter, irql, ContextKind, Ctx, Entry},
    objects::{HandleError, Object},
    thread,
};

/// Stand-in storage for the thread object type; only its address matters.
static THREAD_TYPE_TAG: u64 = u64::from_le_bytes(*b"Thread\0\0");

/// The object type of threads, as `*PsThreadType` gives it.
static mut THREAD_OBJECT_TYPE: POBJECT_TYPE = (&raw const THREAD_TYPE_TAG).cast_mut().cast();

/// `PsThreadType`: a pointer to the thread object type, as ntoskrnl exports it.
#[unsafe(no_mangle)]
#[allow(non_upper_case_globals, reason = "the ntoskrnl export's name")]
pub static mut PsThreadType: *mut POBJECT_TYPE = &raw mut THREAD_OBJECT_TYPE;

fn thread_type() -> POBJECT_TYPE {
    (&raw const THREAD_TYPE_TAG).cast_mut().cast()
}

fn require_passive(e: &Entry, rule: u64) {
    let level = e.irql.get();
    if level != irql::PASSIVE {
        e.bugcheck(
            code::DRIVER_VERIFIER_DETECTED_VIOLATION,
            [rule, u64::from(level), 0, 0],
            format!("{} at IRQL {level}: requires PASSIVE_LEVEL", e.ddi),
        );
    }
}

/// Raw start routine and context, moved to the new host thread.
struct Start {
    routine: unsafe extern "C" fn(PVOID),
    context: PVOID,
}

// SAFETY: the context pointer is the driver's to share with the thread it creates; ntsim only
// carries it across and passes it to the start routine, as PsCreateSystemThread does.
unsafe impl Send for Start {}

export! {
    /// Creates a system thread running `StartRoutine(StartContext)` at `PASSIVE_LEVEL` and returns
    /// a kernel handle to it. `PASSIVE_LEVEL` (DDI rule `IrqlPsPassive`).
    fn PsCreateSystemThread(
        ThreadHandle: PHANDLE,
        DesiredAccess: ULONG,
        ObjectAttributes: *mut OBJECT_ATTRIBUTES,
        ProcessHandle: HANDLE,
        ClientId: PCLIENT_ID,
        StartRoutine: PKSTART_ROUTINE,
        StartContext: PVOID,
    ) -> NTSTATUS {
        let e = enter("PsCreateSystemThread");
        require_passive(&e, verifier::RULE_IRQL_PS_PASSIVE);
        if crate::ddi::wait::judged_at_dispatch(&e) {
            e.bugcheck(
                code::DRIVER_VERIFIER_DETECTED_VIOLATION,
                [verifier::RULE_IRQL_PS_PASSIVE, u64::from(irql::DISPATCH), 0, 0],
                "PsCreateSystemThread in a KMDF queue callback whose execution level is not \
                 WdfExecutionLevelPassive: KMDF may call it at DISPATCH_LEVEL \
                 (MachineConfig::dispatch_level_callback_checks)",
            );
        }
        let _ = (DesiredAccess, ObjectAttributes, ProcessHandle);
        let (Some(routine), false) = (StartRoutine, ThreadHandle.is_null()) else {
            return wdk_sys::STATUS_INVALID_PARAMETER;
        };
        let start = Start { routine, context: StartContext };
        let spawned = thread::try_spawn_system_thread(
            &std::sync::Arc::clone(&e.machine),
            "system thread",
            Box::new(move || {
                let start = start;
                // SAFETY: the driver registered this routine and context for this thread; it
                // runs at PASSIVE_LEVEL in a system thread, as its contract expects.
                unsafe { (start.routine)(start.context) };
            }),
            None,
        );
        let Ok(object) = spawned else {
            return wdk_sys::STATUS_INSUFFICIENT_RESOURCES;
        };
        let handle = e.machine.objects.insert_with_handle(Object::Thread(object));
        // SAFETY: `ThreadHandle` is non-null (checked) and writable per the DDI contract.
        unsafe { ThreadHandle.write(handle as HANDLE) };
        // SAFETY: the DDI contract makes `ClientId` null or a writable CLIENT_ID.
        if let Some(client) = unsafe { ClientId.as_mut() } {
            client.UniqueProcess = 4 as HANDLE;
            client.UniqueThread = handle as HANDLE;
        }
        wdk_sys::STATUS_SUCCESS
    }
}

export! {
    /// Ends the calling system thread after the exit checks; does not return. An error
    /// (`STATUS_INVALID_PARAMETER`) when the caller is not a system thread; from a system
    /// worker thread running a work item, 0xE9 `ACTIVE_EX_WORKER_THREAD_TERMINATION` (P1 the
    /// thread). `PASSIVE_LEVEL` (DDI rule `IrqlPsPassive`).
    fn PsTerminateSystemThread(ExitStatus: NTSTATUS) -> NTSTATUS {
        let e = enter("PsTerminateSystemThread");
        require_passive(&e, verifier::RULE_IRQL_PS_PASSIVE);
        let _ = ExitStatus;
        if e.kind == ContextKind::WorkItem {
            e.bugcheck(
                code::ACTIVE_EX_WORKER_THREAD_TERMINATION,
                [e.uid << 4, 0, 0, 0],
                "PsTerminateSystemThread on a system worker thread running a work item",
            );
        }
        if e.kind != ContextKind::SystemThread || e.thread_object == 0 {
            return wdk_sys::STATUS_INVALID_PARAMETER;
        }
        let object = e.thread_object as *const thread::ThreadObject;
        // SAFETY: a system thread's context records the address of its own ThreadObject, which
        // its host thread keeps alive (an Arc) for as long as the thread runs.
        thread::finish(&e, unsafe { &*object });
        context::halt()
    }
}

export! {
    /// References the object behind a kernel handle. `PASSIVE_LEVEL`. A NULL handle is 0xC4/0xF5,
    /// an invalid one 0xC4/0x3C (Driver Verifier); a type mismatch is
    /// `STATUS_OBJECT_TYPE_MISMATCH`.
    fn ObReferenceObjectByHandle(
        Handle: HANDLE,
        DesiredAccess: ACCESS_MASK,
        ObjectType: POBJECT_TYPE,
        AccessMode: KPROCESSOR_MODE,
        Object: *mut PVOID,
        HandleInformation: POBJECT_HANDLE_INFORMATION,
    ) -> NTSTATUS {
        let e = enter("ObReferenceObjectByHandle");
        require_passive(&e, verifier::RULE_IRQL_OB_PASSIVE);
        let _ = (DesiredAccess, AccessMode, HandleInformation);
        if Handle.is_null() {
            e.bugcheck(
                code::DRIVER_VERIFIER_DETECTED_VIOLATION,
                [verifier::NULL_HANDLE, 0, ObjectType as u64, 0],
                "ObReferenceObjectByHandle with a NULL handle",
            );
        }
        let object = match e.machine.objects.reference_by_handle(Handle as u64) {
            Ok(object) => object,
            Err(HandleError::Invalid) => e.bugcheck(
                code::DRIVER_VERIFIER_DETECTED_VIOLATION,
                [verifier::BAD_HANDLE, Handle as u64, ObjectType as u64, 0],
                format!("ObReferenceObjectByHandle with handle {Handle:p}, which is not open"),
            ),
        };
        let matches = match object {
            Object::Thread(_) => ObjectType.is_null() || ObjectType == thread_type(),
        };
        if !matches {
            e.machine.objects.dereference(object.address());
            return wdk_sys::STATUS_OBJECT_TYPE_MISMATCH;
        }
        if Object.is_null() {
            e.machine.objects.dereference(object.address());
            return wdk_sys::STATUS_INVALID_PARAMETER;
        }
        // SAFETY: `Object` is non-null (checked) and writable per the DDI contract.
        unsafe { Object.write(object.address() as PVOID) };
        wdk_sys::STATUS_SUCCESS
    }
}

export! {
    /// Drops a reference; returns the new count. A dereference of an object whose count is 0
    /// is 0xC4/0x3F. IRQL <= `DISPATCH_LEVEL`.
    fn ObfDereferenceObject(Object: PVOID) -> LONG_PTR {
        let e = enter("ObfDereferenceObject");
        let level = e.irql.get();
        if level > irql::DISPATCH {
            e.bugcheck(
                code::DRIVER_VERIFIER_DETECTED_VIOLATION,
                [verifier::API_AT_WRONG_IRQL, u64::from(level), Object as u64, 0],
                format!("ObDereferenceObject at IRQL {level}"),
            );
        }
        e.machine.objects.dereference(Object as usize).unwrap_or_else(|| {
            e.bugcheck(
                code::DRIVER_VERIFIER_DETECTED_VIOLATION,
                [verifier::REFERENCE_COUNT_ZERO, Object as u64, 0, 0],
                format!("ObDereferenceObject({Object:p}): no reference left (or not an object)"),
            )
        })
    }
}

export! {
    /// Closes a kernel handle. `PASSIVE_LEVEL` with special kernel APCs enabled (0xC4/0xE6).
    /// `STATUS_INVALID_HANDLE` when it is not open.
    fn ZwClose(Handle: HANDLE) -> NTSTATUS {
        let e = enter("ZwClose");
        let level = e.irql.get();
        if level != irql::PASSIVE || e.special_apc_disable.get() != 0 {
            e.bugcheck(
                code::DRIVER_VERIFIER_DETECTED_VIOLATION,
                [
                    verifier::ZW_NOT_PASSIVE,
                    0,
                    u64::from(level),
                    u64::from(e.special_apc_disable.get().cast_unsigned()),
                ],
                format!("ZwClose at IRQL {level} or with special kernel APCs disabled"),
            );
        }
        match e.machine.objects.close(Handle as u64) {
            Ok(()) => wdk_sys::STATUS_SUCCESS,
            Err(HandleError::Invalid) => wdk_sys::STATUS_INVALID_HANDLE,
        }
    }
}

/// The `PETHREAD` value of a context, which is also its `ERESOURCE_THREAD`.
///
/// That is what `ExGetCurrentResourceThread` gives: the thread object of a system thread; for a
/// context ntsim did not create a thread object for, a stable, unique stand-in derived from its
/// uid (16-byte aligned, so its two low bits are clear, unlike a resource owner pointer's).
#[must_use]
pub fn thread_id(ctx: &Ctx) -> usize {
    if ctx.thread_object == 0 {
        usize::try_from(ctx.uid).unwrap_or(usize::MAX >> 4) << 4
    } else {
        ctx.thread_object
    }
}

/// `PsGetCurrentThread`: the current thread object (see [`thread_id`] for contexts that are not
/// system threads). The WDK only inlines it; drivers that need it declare this export themselves
/// (errata 3).
#[unsafe(no_mangle)]
pub extern "C" fn PsGetCurrentThread() -> PVOID {
    let e = enter("PsGetCurrentThread");
    ptr::without_provenance_mut(thread_id(&e))
}
