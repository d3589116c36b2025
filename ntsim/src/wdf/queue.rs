//! I/O queues: `WdfIoQueueCreate`, and delivery of a device-control request to the default
//! queue's `EvtIoDeviceControl` (or `EvtIoDefault`), honouring sequential dispatch.

use std::sync::{Arc, Mutex, PoisonError};

use wdk_sys::{
    NTSTATUS, PWDF_IO_QUEUE_CONFIG, PWDF_OBJECT_ATTRIBUTES, WDFDEVICE, WDFQUEUE, WDFREQUEST,
    WDF_IO_QUEUE_CONFIG,
};

use super::{apply_attributes, callback, check_handle, request::Request, Kind};
use crate::context::{self, enter, Ctx};

/// What a queue was created with.
#[derive(Clone)]
pub(crate) struct QueueSettings {
    sequential: bool,
    device_control: wdk_sys::PFN_WDF_IO_QUEUE_IO_DEVICE_CONTROL,
    default: wdk_sys::PFN_WDF_IO_QUEUE_IO_DEFAULT,
    /// Held while a request of a sequential queue is in the driver.
    serial: Arc<Mutex<()>>,
}

const DISPATCH_SEQUENTIAL: i32 = 1;
const DISPATCH_PARALLEL: i32 = 2;
const DISPATCH_MANUAL: i32 = 3;

wdf_export! {
    /// Creates a queue. `Config.Size` must be KMDF 1.33's (else `STATUS_INFO_LENGTH_MISMATCH`);
    /// the dispatch type must be sequential, parallel or manual (else
    /// `STATUS_INVALID_PARAMETER`). A default queue becomes the device's.
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
        let settings = QueueSettings {
            sequential: dispatch == DISPATCH_SEQUENTIAL,
            device_control: config.EvtIoDeviceControl,
            default: config.EvtIoDefault,
            serial: Arc::new(Mutex::new(())),
        };
        let handle = e.machine.io.objects.lock().insert(Kind::Queue(settings));
        let status = apply_attributes(&e, handle, QueueAttributes);
        if !wdk_sys::NT_SUCCESS(status) {
            e.machine.io.objects.lock().map.remove(&handle);
            return status;
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

/// Delivers a device-control request to the default queue and waits for its completion.
/// Returns (status, information, system buffer).
pub(crate) fn dispatch_device_control(ctx: &Ctx, request: Request) -> (NTSTATUS, u64, Box<[u8]>) {
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
        return (
            wdk_sys::STATUS_INVALID_DEVICE_REQUEST,
            0,
            request.into_buffer(),
        );
    };
    let (code, in_len, out_len) = (request.code, request.in_len, request.out_len);
    let handle = machine
        .io
        .objects
        .lock()
        .insert(Kind::Request(Box::new(request.with_queue(queue))));
    let serial = Arc::clone(&settings.serial);
    let _serial = settings
        .sequential
        .then(|| serial.lock().unwrap_or_else(PoisonError::into_inner));
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
    // Wait for completion (the driver may complete later, from another context).
    let mut table = machine.io.objects.lock();
    loop {
        let done = matches!(
            table.map.get(&handle),
            Some(super::Object { kind: Kind::Request(r), .. }) if r.completion.is_some()
        );
        if done {
            break;
        }
        if machine.is_dead() {
            drop(table);
            context::halt();
        }
        table = machine
            .io
            .objects
            .completed
            .wait_timeout(table, std::time::Duration::from_millis(20))
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
    match table.map.remove(&handle) {
        Some(super::Object {
            kind: Kind::Request(r),
            ..
        }) => {
            let (status, information) = r.completion.unwrap_or((wdk_sys::STATUS_UNSUCCESSFUL, 0));
            (status, information, r.into_buffer())
        }
        _ => (wdk_sys::STATUS_UNSUCCESSFUL, 0, Box::default()),
    }
}
