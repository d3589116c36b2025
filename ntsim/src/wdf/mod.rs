//! The KMDF subset `SyncLab` uses: framework objects with typed contexts and cleanup callbacks,
//! the driver, the device (SDDL, device interface), I/O queues and requests.
//!
//! The driver calls these through `call_unsafe_wdf_function_binding!`, which in `wdk_sys`
//! forwards `WdfX(args)` to the symbol `ntsim_WdfX(DriverGlobals, args)` defined here. Each
//! definition is checked at compile time against the KMDF 1.33 `PFN_WDFX` type.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard, PoisonError},
};

use wdk_sys::{PCWDF_OBJECT_CONTEXT_TYPE_INFO, PWDF_OBJECT_ATTRIBUTES, WDF_OBJECT_ATTRIBUTES};

use crate::{
    bugcheck::{code, wdf as sub},
    context::{self, Ctx, Entry},
    machine::MachineInner,
};

/// Defines `ntsim_<Name>` and checks it against `wdk_sys::<PFN>`.
macro_rules! wdf_export {
    (
        $(#[$meta:meta])*
        fn $name:ident as $pfn:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block
    ) => {
        $(#[$meta])*
        ///
        /// # Safety
        /// As the KMDF method's contract: handles and pointers valid. Misuse the framework
        /// verifier catches bugchecks the emulated machine (0x10D).
        #[allow(non_snake_case, reason = "KMDF parameter names")]
        #[allow(clippy::too_long_first_doc_paragraph, reason = "DDI contracts read best whole")]
        #[unsafe(export_name = concat!("ntsim_", stringify!($name)))]
        pub unsafe extern "C" fn $name(
            DriverGlobals: wdk_sys::PWDF_DRIVER_GLOBALS,
            $($arg: $ty),*
        ) $(-> $ret)? {
            let _ = DriverGlobals;
            $body
        }

        const _: () = {
            let _same_signature: wdk_sys::$pfn = Some($name);
        };
    };
}

pub mod device;
pub mod driver;
pub mod file;
pub mod queue;
pub mod request;
pub mod spin_lock;
pub mod wait_lock;

/// What a framework object is.
pub(crate) enum Kind {
    Driver,
    DeviceInit(device::InitSettings),
    Device,
    Queue(queue::QueueSettings),
    Request(Box<request::Request>),
    /// A request after `WdfRequestComplete`: its handle is kept until the host has taken the
    /// result, so a second completion is told apart from a handle that never existed.
    CompletedRequest,
    /// A `WDFFILEOBJECT` (one per open file when the driver asked for file objects).
    FileObject,
    WaitLock(std::sync::Arc<wait_lock::WaitLock>),
    SpinLock(std::sync::Arc<spin_lock::SpinLockObject>),
}

/// One framework object.
pub(crate) struct Object {
    pub kind: Kind,
    /// Typed contexts: (`UniqueType`, zeroed memory).
    contexts: Vec<(usize, Box<[u128]>)>,
    cleanup: wdk_sys::PFN_WDF_OBJECT_CONTEXT_CLEANUP,
    destroy: wdk_sys::PFN_WDF_OBJECT_CONTEXT_DESTROY,
    /// `WDF_OBJECT_ATTRIBUTES.ExecutionLevel` as given (`WdfExecutionLevelInheritFromParent`
    /// when none were).
    pub execution_level: wdk_sys::WDF_EXECUTION_LEVEL,
}

/// The framework objects of a machine, keyed by handle.
#[derive(Default)]
pub struct Objects {
    table: Mutex<Table>,
}

#[derive(Default)]
pub(crate) struct Table {
    pub map: HashMap<usize, Object>,
    next: usize,
}

/// Handles look like kernel addresses and are never dereferenced by ntsim.
const HANDLE_BASE: usize = 0xFFFF_C000_0000_0000;

impl Objects {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Table {
    /// Adds an object; returns its handle.
    pub(crate) fn insert(&mut self, kind: Kind) -> usize {
        self.next += 1;
        let handle = HANDLE_BASE | (self.next << 4);
        self.map.insert(
            handle,
            Object {
                kind,
                contexts: Vec::new(),
                cleanup: None,
                destroy: None,
                execution_level: INHERIT,
            },
        );
        handle
    }
}

const INHERIT: wdk_sys::WDF_EXECUTION_LEVEL =
    wdk_sys::_WDF_EXECUTION_LEVEL::WdfExecutionLevelInheritFromParent;

/// What ntsim keeps of a `WDF_OBJECT_ATTRIBUTES` (a copy without the driver's pointers, so it
/// can be stored and applied later, as KMDF does with a device's file-object attributes).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Attributes {
    cleanup: wdk_sys::PFN_WDF_OBJECT_CONTEXT_CLEANUP,
    destroy: wdk_sys::PFN_WDF_OBJECT_CONTEXT_DESTROY,
    execution_level: wdk_sys::WDF_EXECUTION_LEVEL,
    /// The context type's `UniqueType` (its address), 0 for none.
    context_type: usize,
    /// Context size in bytes (the type's, or the override when larger).
    context_size: usize,
    /// `ParentObject`, as given.
    pub parent: usize,
}

impl Attributes {
    /// Reads the driver's attributes: `Ok(None)` for `WDF_NO_OBJECT_ATTRIBUTES`,
    /// `STATUS_INFO_LENGTH_MISMATCH` for a wrong `Size`.
    pub(crate) fn read(
        attributes: PWDF_OBJECT_ATTRIBUTES,
    ) -> Result<Option<Self>, wdk_sys::NTSTATUS> {
        // SAFETY: the KMDF contract makes `attributes` null (WDF_NO_OBJECT_ATTRIBUTES) or a
        // readable WDF_OBJECT_ATTRIBUTES.
        let Some(attributes) = (unsafe { attributes.as_ref() }) else {
            return Ok(None);
        };
        if attributes.Size as usize != std::mem::size_of::<WDF_OBJECT_ATTRIBUTES>() {
            return Err(wdk_sys::STATUS_INFO_LENGTH_MISMATCH);
        }
        let info: PCWDF_OBJECT_CONTEXT_TYPE_INFO = attributes.ContextTypeInfo;
        // SAFETY: a non-null ContextTypeInfo points to the driver's static type information.
        let (context_type, context_size) = unsafe { info.as_ref() }.map_or((0, 0), |info| {
            let unique = if info.UniqueType.is_null() {
                std::ptr::from_ref(info) as usize
            } else {
                info.UniqueType as usize
            };
            (unique, info.ContextSize.max(attributes.ContextSizeOverride))
        });
        Ok(Some(Self {
            cleanup: attributes.EvtCleanupCallback,
            destroy: attributes.EvtDestroyCallback,
            execution_level: attributes.ExecutionLevel,
            context_type,
            context_size,
            parent: attributes.ParentObject as usize,
        }))
    }

    /// Gives `handle` these callbacks, execution level and context.
    pub(crate) fn apply(&self, machine: &MachineInner, handle: usize) -> wdk_sys::NTSTATUS {
        let mut table = machine.io.objects.lock();
        let Some(object) = table.map.get_mut(&handle) else {
            return wdk_sys::STATUS_INVALID_HANDLE;
        };
        object.cleanup = self.cleanup;
        object.destroy = self.destroy;
        object.execution_level = self.execution_level;
        if self.context_type != 0 {
            let words = self.context_size.div_ceil(16).max(1);
            object
                .contexts
                .push((self.context_type, vec![0_u128; words].into_boxed_slice()));
        }
        wdk_sys::STATUS_SUCCESS
    }
}

/// Applies `WDF_OBJECT_ATTRIBUTES` (context type, cleanup/destroy callbacks, execution level)
/// to `handle`. Returns `STATUS_INFO_LENGTH_MISMATCH` for a wrong `Size`.
pub(crate) fn apply_attributes(
    e: &Entry,
    handle: usize,
    attributes: PWDF_OBJECT_ATTRIBUTES,
) -> wdk_sys::NTSTATUS {
    match Attributes::read(attributes) {
        Ok(Some(attributes)) => attributes.apply(&e.machine, handle),
        Ok(None) => wdk_sys::STATUS_SUCCESS,
        Err(status) => status,
    }
}

/// The execution level a callback of `handle` gets: its own, else its parent's (`parents`,
/// nearest first), else `WdfExecutionLevelDispatch`, KMDF's default for the driver object.
pub(crate) fn execution_level(
    machine: &MachineInner,
    chain: &[usize],
) -> wdk_sys::WDF_EXECUTION_LEVEL {
    use wdk_sys::_WDF_EXECUTION_LEVEL::{WdfExecutionLevelDispatch, WdfExecutionLevelPassive};
    let table = machine.io.objects.lock();
    chain
        .iter()
        .filter_map(|h| table.map.get(h).map(|o| o.execution_level))
        .find(|level| [WdfExecutionLevelPassive, WdfExecutionLevelDispatch].contains(level))
        .unwrap_or(WdfExecutionLevelDispatch)
}

/// What KMDF's verifier does where it traces an error and calls `FxVerifierDbgBreakPoint`
/// (no bug check): ntsim writes the trace to the debug log (the debugger would stop there).
pub(crate) fn verifier_break(ctx: &Ctx, ddi: &str, message: &str) {
    ctx.machine.log_line(format!(
        "ntsim: WDF verifier break in {ddi} ({}): {message}",
        ctx.describe()
    ));
}

/// Bug checks 0x10D/0x4 unless `handle` is a live object for which `accept` holds.
pub(crate) fn check_handle(
    e: &Entry,
    handle: usize,
    what: &str,
    accept: impl FnOnce(&Kind) -> bool,
) {
    let ok = e
        .machine
        .io
        .objects
        .lock()
        .map
        .get(&handle)
        .is_some_and(|o| accept(&o.kind));
    if !ok {
        e.bugcheck(
            code::WDF_VIOLATION,
            [sub::INVALID_HANDLE, handle as u64, 0, 0],
            format!("{} with {handle:#x}, which is not a live {what}", e.ddi),
        );
    }
}

/// Runs a KMDF event callback and applies the framework verifier's return checks: IRQL
/// changed is 0x10D/0xE (P2 entry, P3 exit IRQL); a critical region left entered is 0x10D/0xF.
pub(crate) fn callback<R>(
    ctx: &Ctx,
    name: &'static str,
    routine: usize,
    f: impl FnOnce() -> R,
) -> R {
    let irql_before = ctx.irql.get();
    let kernel_before = ctx.kernel_apc_disable.get();
    let result = ctx.call_driver(f);
    let irql_after = ctx.irql.get();
    if irql_after != irql_before {
        context::raise(
            ctx,
            code::WDF_VIOLATION,
            [
                sub::CALLBACK_IRQL_CHANGED,
                u64::from(irql_before),
                u64::from(irql_after),
                routine as u64,
            ],
            name,
            format!("{name} returned at IRQL {irql_after}; it was called at {irql_before}"),
        );
    }
    if ctx.kernel_apc_disable.get() < kernel_before {
        context::raise(
            ctx,
            code::WDF_VIOLATION,
            [sub::CALLBACK_CRITICAL_REGION, routine as u64, 0, 0],
            name,
            format!("{name} returned inside a critical region it entered"),
        );
    }
    result
}

/// Deletes `handle` and its children: cleanup, then destroy callbacks, then the memory.
pub(crate) fn delete(ctx: &Ctx, handle: usize) {
    let callbacks = {
        let table = ctx.machine.io.objects.lock();
        table.map.get(&handle).map(|o| (o.cleanup, o.destroy))
    };
    let Some(callbacks) = callbacks else { return };
    for routine in <[_; 2]>::from(callbacks).into_iter().flatten() {
        // SAFETY: the driver registered this callback for this object, which is still alive.
        callback(ctx, "EvtCleanupCallback", routine as usize, || unsafe {
            routine(handle as _);
        });
    }
    ctx.machine.io.objects.lock().map.remove(&handle);
}

wdf_export! {
    /// The typed context of an object, or NULL when it has none of that type.
    fn WdfObjectGetTypedContextWorker as PFN_WDFOBJECTGETTYPEDCONTEXTWORKER(
        Handle: wdk_sys::WDFOBJECT,
        TypeInfo: PCWDF_OBJECT_CONTEXT_TYPE_INFO,
    ) -> wdk_sys::PVOID {
        let e = context::enter("WdfObjectGetTypedContextWorker");
        check_handle(&e, Handle as usize, "framework object", |_| true);
        // SAFETY: the KMDF contract makes TypeInfo the driver's static type information.
        let Some(info) = (unsafe { TypeInfo.as_ref() }) else {
            return std::ptr::null_mut();
        };
        let unique = if info.UniqueType.is_null() { std::ptr::from_ref(info) as usize } else { info.UniqueType as usize };
        let mut table = e.machine.io.objects.lock();
        table
            .map
            .get_mut(&(Handle as usize))
            .and_then(|o| o.contexts.iter_mut().find(|(u, _)| *u == unique))
            .map_or(std::ptr::null_mut(), |(_, memory)| memory.as_mut_ptr().cast())
    }
}

wdf_export! {
    /// Deletes a framework object (cleanup and destroy callbacks run first).
    fn WdfObjectDelete as PFN_WDFOBJECTDELETE(Object: wdk_sys::WDFOBJECT) {
        let e = context::enter("WdfObjectDelete");
        check_handle(&e, Object as usize, "framework object", |_| true);
        delete(&e, Object as usize);
    }
}
