//! I/O queues: `WdfIoQueueCreate`, and delivery of a device-control request to the default
//! queue's `EvtIoDeviceControl` (or `EvtIoDefault`), honouring sequential dispatch and the
//! queue's execution level.

use std::{
    collections::VecDeque,
    sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use wdk_sys::{
    NTSTATUS, PWDF_IO_QUEUE_CONFIG, PWDF_OBJECT_ATTRIBUTES, WDFDEVICE, WDFQUEUE, WDFREQUEST,
    WDF_IO_QUEUE_CONFIG,
};

use super::{apply_attributes, callback, check_handle, request::Request, Kind};
use crate::{
    context::{self, enter, Ctx},
    irp::{self, Completion, Irp},
    machine::MachineInner,
};

/// What a queue was created with.
#[derive(Clone)]
pub(crate) struct QueueSettings {
    sequential: bool,
    /// Its effective execution level is `WdfExecutionLevelPassive`.
    pub passive: bool,
    device_control: wdk_sys::PFN_WDF_IO_QUEUE_IO_DEVICE_CONTROL,
    default: wdk_sys::PFN_WDF_IO_QUEUE_IO_DEFAULT,
    /// Power-managed (`PowerManaged` `WdfTrue`, or `WdfUseDefault`: ntsim's device is a
    /// function driver's, never a filter's).
    pub power_managed: bool,
    /// `EvtIoStop`: called for each request the driver owns when a power-managed queue stops.
    pub io_stop: wdk_sys::PFN_WDF_IO_QUEUE_IO_STOP,
    /// One request at a time, in arrival order (sequential queues).
    serial: Arc<Serial>,
}

impl QueueSettings {
    /// The one-at-a-time gate of a sequential queue.
    pub(crate) fn serial(&self) -> Option<Arc<Serial>> {
        self.sequential.then(|| Arc::clone(&self.serial))
    }
}

/// A sequential queue's gate: the request in the driver, and the ones waiting, oldest first.
#[derive(Default)]
pub(crate) struct Serial {
    state: Mutex<SerialState>,
    turn: Condvar,
}

#[derive(Default)]
struct SerialState {
    busy: bool,
    waiting: VecDeque<u64>,
}

impl Serial {
    fn lock(&self) -> MutexGuard<'_, SerialState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the queue for `id` when it is idle (true); else queues `id` behind the others.
    fn enter_or_enqueue(&self, id: u64) -> bool {
        let mut state = self.lock();
        if !state.busy && state.waiting.is_empty() {
            state.busy = true;
            return true;
        }
        state.waiting.push_back(id);
        false
    }

    /// Waits until `irp` is the next to present (true), or until it is canceled while it waits
    /// (false: it has left the queue).
    fn wait_turn(&self, machine: &MachineInner, irp: &Irp) -> bool {
        let mut state = self.lock();
        loop {
            if irp.cancel_requested() {
                state.waiting.retain(|&id| id != irp.id);
                drop(state);
                self.turn.notify_all();
                return false;
            }
            if !state.busy && state.waiting.front() == Some(&irp.id) {
                state.waiting.pop_front();
                state.busy = true;
                return true;
            }
            if machine.is_dead() {
                drop(state);
                context::halt();
            }
            if machine.is_shutting_down() {
                return false;
            }
            state = self
                .turn
                .wait_timeout(state, Duration::from_millis(20))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// The request in the driver has left it (completed): the next may be presented.
    pub(crate) fn release(&self) {
        self.lock().busy = false;
        self.turn.notify_all();
    }

    /// Wakes the waiters (one of them was canceled).
    pub(crate) fn wake(&self) {
        let _state = self.lock();
        self.turn.notify_all();
    }
}

const DISPATCH_SEQUENTIAL: i32 = 1;
const DISPATCH_PARALLEL: i32 = 2;
const DISPATCH_MANUAL: i32 = 3;

wdf_export! {
    /// Creates a queue. `Config.Size` must be KMDF 1.33's (else `STATUS_INFO_LENGTH_MISMATCH`);
    /// the dispatch type must be sequential, parallel or manual (else
    /// `STATUS_INVALID_PARAMETER`). A default queue becomes the device's. The execution level
    /// is the queue's attributes', else the device's, else the driver's, else
    /// `WdfExecutionLevelDispatch`.
    fn WdfIoQueueCreate as PFN_WDFIOQUEUECREATE(
        Device: WDFDEVICE,
        Config: PWDF_IO_QUEUE_CONFIG,
        QueueAttributes: PWDF_OBJECT_ATTRIBUTES,
        Queue: *mut WDFQUEUE,
    ) -> NTSTATUS {
        let e = enter("WdfIoQueueCreate");
        check_handle(&e, Device as usize, "WDFDEVICE", |k| matches!(k, Kind::Device));
        // SAFETY: the KMDF contract makes Config a readable WDF_IO_QUEUE_CONFIG.
        let Some(config) = (unsafe { Config.as_ref() }) else {
            return wdk_sys::STATUS_INVALID_PARAMETER;
        };
        if config.Size as usize != std::mem::size_of::<WDF_IO_QUEUE_CONFIG>() {
            return wdk_sys::STATUS_INFO_LENGTH_MISMATCH;
        }
        let dispatch = config.DispatchType;
        if ![DISPATCH_SEQUENTIAL, DISPATCH_PARALLEL, DISPATCH_MANUAL].contains(&dispatch) {
            return wdk_sys::STATUS_INVALID_PARAMETER;
        }
        let mut settings = QueueSettings {
            sequential: dispatch == DISPATCH_SEQUENTIAL,
            passive: false,
            device_control: config.EvtIoDeviceControl,
            default: config.EvtIoDefault,
            power_managed: config.PowerManaged != wdk_sys::_WDF_TRI_STATE::WdfFalse,
            io_stop: config.EvtIoStop,
            serial: Arc::default(),
        };
        let handle = e.machine.io.objects.lock().insert(Kind::Queue(settings.clone()));
        let status = apply_attributes(&e, handle, QueueAttributes);
        if !wdk_sys::NT_SUCCESS(status) {
            e.machine.io.objects.lock().map.remove(&handle);
            return status;
        }
        let driver = e.machine.io.lock().driver.as_ref().map_or(0, |d| d.handle);
        settings.passive = super::execution_level(&e.machine, &[handle, Device as usize, driver])
            == wdk_sys::_WDF_EXECUTION_LEVEL::WdfExecutionLevelPassive;
        if let Some(object) = e.machine.io.objects.lock().map.get_mut(&handle) {
            object.kind = Kind::Queue(settings);
        }
        if config.DefaultQueue != 0 {
            let mut io = e.machine.io.lock();
            if let Some(device) = io.device.as_mut() {
                device.default_queue = handle;
            }
        }
        // SAFETY: the KMDF contract makes Queue null or a writable WDFQUEUE.
        if let Some(out) = unsafe { Queue.as_mut() } {
            *out = handle as WDFQUEUE;
        }
        wdk_sys::STATUS_SUCCESS
    }
}

/// Delivers a device-control IRP to the device's default queue, as KMDF's I/O package does: an
/// idle queue presents it at once, on the caller's context; a busy sequential queue keeps it
/// until the request before it has completed (the I/O manager's call returns `STATUS_PENDING`
/// meanwhile, which [`Irp::mark_dispatched`] records); a request
/// canceled before it reaches the driver is completed with `STATUS_CANCELLED` by the framework.
/// Returns once the queue's callback has returned (or the request completed without one).
pub(crate) fn dispatch_device_control(
    ctx: &Ctx,
    irp: &Arc<Irp>,
    buffer: Box<[u8]>,
    in_len: usize,
    file_object: usize,
) {
    let machine = &ctx.machine;
    let queue = machine
        .io
        .lock()
        .device
        .as_ref()
        .map_or(0, |d| d.default_queue);
    let settings = match machine.io.objects.lock().map.get(&queue) {
        Some(super::Object {
            kind: Kind::Queue(s),
            ..
        }) => Some(s.clone()),
        _ => None,
    };
    let Some(settings) = settings else {
        irp::finish(
            machine,
            irp,
            Completion::status_only(wdk_sys::STATUS_INVALID_DEVICE_REQUEST),
            0,
        );
        return;
    };
    if settings.sequential && !settings.serial.enter_or_enqueue(irp.id) {
        // Another request is in the driver: this one waits in the queue, and the I/O manager's
        // call returns STATUS_PENDING.
        irp.set_waiting_in(Some(Arc::clone(&settings.serial)));
        irp.mark_dispatched(machine);
        if !settings.serial.wait_turn(machine, irp) {
            irp::finish(
                machine,
                irp,
                Completion::status_only(wdk_sys::STATUS_CANCELLED),
                0,
            );
            return;
        }
    }
    let (code, out_len) = (irp.code, irp.out_len);
    let request =
        Request::new(irp, buffer, in_len, file_object).with_queue(queue, settings.passive);
    let Some(handle) = irp::present(machine, irp, request) else {
        if settings.sequential {
            settings.serial.release();
        }
        return;
    };
    let may_run_at_dispatch = ctx.may_run_at_dispatch.replace(!settings.passive);
    if let Some(routine) = settings.device_control {
        // SAFETY: the driver registered this callback for its queue; queue and request are live
        // framework objects; the lengths describe the request's buffers.
        callback(ctx, "EvtIoDeviceControl", routine as usize, || unsafe {
            routine(
                queue as WDFQUEUE,
                handle as WDFREQUEST,
                out_len,
                in_len,
                code,
            );
        });
    } else if let Some(routine) = settings.default {
        // SAFETY: as above, for EvtIoDefault.
        callback(ctx, "EvtIoDefault", routine as usize, || unsafe {
            routine(queue as WDFQUEUE, handle as WDFREQUEST);
        });
    } else {
        super::request::complete(ctx, handle, wdk_sys::STATUS_INVALID_DEVICE_REQUEST, None);
    }
    ctx.may_run_at_dispatch.set(may_run_at_dispatch);
}
