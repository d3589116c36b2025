//! `EvtIoDeviceControl`: dispatches each IOCTL to its handler. `GET_INFO` is answered and
//! completed here; `RUN_STRESS` is validated here and handed to a control thread that completes
//! it when the run ends ([`crate::runs`]), so the callback never waits.

use synclab_protocol::ioctl::{IOCTL_SYNCLAB_GET_INFO, IOCTL_SYNCLAB_RUN_STRESS};
use wdk_sys::{ULONG, WDFQUEUE, WDFREQUEST};

use crate::kernel::request;

/// The default queue's device-control callback. IRQL: `PASSIVE_LEVEL` (the queue's execution
/// level is passive; requests arrive in the caller's context).
pub extern "C" fn evt_io_device_control(
    queue: WDFQUEUE,
    request: WDFREQUEST,
    output_buffer_length: usize,
    _input_buffer_length: usize,
    io_control_code: ULONG,
) {
    let result = match io_control_code {
        IOCTL_SYNCLAB_GET_INFO => crate::info::handle(request, output_buffer_length),
        IOCTL_SYNCLAB_RUN_STRESS => {
            match crate::stress::start(queue, request, output_buffer_length) {
                // Pending: the run's control thread completes it.
                Ok(()) => return,
                Err(status) => Err(status),
            }
        }
        _ => Err(wdk_sys::STATUS_INVALID_DEVICE_REQUEST),
    };
    match result {
        Ok(bytes) => request::complete(request, wdk_sys::STATUS_SUCCESS, bytes),
        Err(status) => request::complete(request, status, 0),
    }
}
