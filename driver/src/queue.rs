//! `EvtIoDeviceControl`: dispatches each IOCTL to its handler and completes the request exactly
//! once with the handler's status.

use synclab_protocol::ioctl::{IOCTL_SYNCLAB_GET_INFO, IOCTL_SYNCLAB_RUN_STRESS};
use wdk_sys::{ULONG, WDFQUEUE, WDFREQUEST};

use crate::kernel::request;

/// The default queue's device-control callback. IRQL: `PASSIVE_LEVEL` (the queue inherits the
/// device's passive execution level; requests arrive in the caller's context).
pub extern "C" fn evt_io_device_control(
    _queue: WDFQUEUE,
    request: WDFREQUEST,
    output_buffer_length: usize,
    _input_buffer_length: usize,
    io_control_code: ULONG,
) {
    let result = match io_control_code {
        IOCTL_SYNCLAB_GET_INFO => crate::info::handle(request, output_buffer_length),
        IOCTL_SYNCLAB_RUN_STRESS => crate::stress::handle(request, output_buffer_length),
        _ => Err(wdk_sys::STATUS_INVALID_DEVICE_REQUEST),
    };
    match result {
        Ok(bytes) => request::complete(request, wdk_sys::STATUS_SUCCESS, bytes),
        Err(status) => request::complete(request, status, 0),
    }
}
