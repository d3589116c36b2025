//! IOCTL codes, built the way the WDK's `CTL_CODE` macro builds them.

/// `METHOD_BUFFERED`: the I/O manager copies input into, and output out of, one system buffer.
pub const METHOD_BUFFERED: u32 = 0;
/// `FILE_ANY_ACCESS`.
pub const FILE_ANY_ACCESS: u32 = 0;
/// `FILE_READ_ACCESS`: the handle must have been opened for reading.
pub const FILE_READ_ACCESS: u32 = 1;
/// `FILE_WRITE_ACCESS`: the handle must have been opened for writing.
pub const FILE_WRITE_ACCESS: u32 = 2;

/// Device type of `SyncLab`'s IOCTLs (vendor range 0x8000-0xFFFF).
pub const FILE_DEVICE_SYNCLAB: u32 = 0x8A11;

/// The WDK's `CTL_CODE(DeviceType, Function, Method, Access)`.
#[must_use]
pub const fn ctl_code(device_type: u32, function: u32, method: u32, access: u32) -> u32 {
    (device_type << 16) | (access << 14) | (function << 2) | method
}

/// The transfer method of an IOCTL code (bits 0-1).
#[must_use]
pub const fn method(code: u32) -> u32 {
    code & 0x3
}

/// The required access of an IOCTL code (bits 14-15).
#[must_use]
pub const fn required_access(code: u32) -> u32 {
    (code >> 14) & 0x3
}

/// The device type of an IOCTL code (bits 16-31).
#[must_use]
pub const fn device_type(code: u32) -> u32 {
    code >> 16
}

/// Reports the driver's ABI and version, the processor count, the timestamp frequency and which
/// kernel it runs on. Input: [`crate::wire::InfoRequest`]; output: [`crate::wire::InfoResponse`].
pub const IOCTL_SYNCLAB_GET_INFO: u32 = ctl_code(
    FILE_DEVICE_SYNCLAB,
    0x800,
    METHOD_BUFFERED,
    FILE_READ_ACCESS,
);

/// Runs a stress test of one primitive. Runs work, so it requires write access.
/// Input: [`crate::wire::StressRequest`]; output: [`crate::wire::StressResponse`].
pub const IOCTL_SYNCLAB_RUN_STRESS: u32 = ctl_code(
    FILE_DEVICE_SYNCLAB,
    0x801,
    METHOD_BUFFERED,
    FILE_READ_ACCESS | FILE_WRITE_ACCESS,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctl_code_matches_the_wdk_macro() {
        // IOCTL_DISK_GET_DRIVE_GEOMETRY = CTL_CODE(0x7, 0, METHOD_BUFFERED, FILE_ANY_ACCESS).
        assert_eq!(
            ctl_code(0x7, 0, METHOD_BUFFERED, FILE_ANY_ACCESS),
            0x0007_0000
        );
        // FSCTL_LOCK_VOLUME = CTL_CODE(0x9, 6, METHOD_BUFFERED, FILE_ANY_ACCESS).
        assert_eq!(
            ctl_code(0x9, 6, METHOD_BUFFERED, FILE_ANY_ACCESS),
            0x0009_0018
        );
        // IOCTL_STORAGE_EJECT_MEDIA = CTL_CODE(0x2D, 0x202, METHOD_BUFFERED, FILE_READ_ACCESS).
        assert_eq!(
            ctl_code(0x2D, 0x202, METHOD_BUFFERED, FILE_READ_ACCESS),
            0x002D_4808
        );
    }

    #[test]
    fn run_ioctls_require_write_access_and_all_are_buffered() {
        for code in [IOCTL_SYNCLAB_GET_INFO, IOCTL_SYNCLAB_RUN_STRESS] {
            assert_eq!(method(code), METHOD_BUFFERED);
            assert_eq!(device_type(code), FILE_DEVICE_SYNCLAB);
        }
        assert_ne!(
            required_access(IOCTL_SYNCLAB_RUN_STRESS) & FILE_WRITE_ACCESS,
            0
        );
        assert_eq!(
            required_access(IOCTL_SYNCLAB_GET_INFO) & FILE_WRITE_ACCESS,
            0
        );
    }
}
