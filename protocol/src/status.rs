//! The NTSTATUS values this ABI uses (the same numbers as ntstatus.h), so the client can name
//! a status without the WDK.

/// An NTSTATUS value.
pub type NtStatus = i32;

/// Reinterprets the 32-bit pattern of an NTSTATUS as the signed value.
const fn nt(bits: u32) -> NtStatus {
    i32::from_ne_bytes(bits.to_ne_bytes())
}

/// `STATUS_SUCCESS`.
pub const STATUS_SUCCESS: NtStatus = 0;
/// `STATUS_INVALID_PARAMETER`: a field is out of its documented range.
pub const STATUS_INVALID_PARAMETER: NtStatus = nt(0xC000_000D);
/// `STATUS_INVALID_DEVICE_REQUEST`: unknown IOCTL code.
pub const STATUS_INVALID_DEVICE_REQUEST: NtStatus = nt(0xC000_0010);
/// `STATUS_ACCESS_DENIED`.
pub const STATUS_ACCESS_DENIED: NtStatus = nt(0xC000_0022);
/// `STATUS_BUFFER_TOO_SMALL`: an input or output buffer is shorter than the structure.
pub const STATUS_BUFFER_TOO_SMALL: NtStatus = nt(0xC000_0023);
/// `STATUS_REVISION_MISMATCH`: the request carries another ABI version.
pub const STATUS_REVISION_MISMATCH: NtStatus = nt(0xC000_0059);
/// `STATUS_INSUFFICIENT_RESOURCES`: pool or threads could not be had.
pub const STATUS_INSUFFICIENT_RESOURCES: NtStatus = nt(0xC000_009A);
/// `STATUS_NOT_SUPPORTED`: a primitive or flag this driver does not know.
pub const STATUS_NOT_SUPPORTED: NtStatus = nt(0xC000_00BB);
/// `STATUS_INFO_LENGTH_MISMATCH`: the header's size field disagrees with the structure size.
pub const STATUS_INFO_LENGTH_MISMATCH: NtStatus = nt(0xC000_0004);
/// `STATUS_INVALID_PARAMETER_MIX`: fields in range that together ask for the impossible.
///
/// A context the primitive's DDIs forbid, readers of an exclusive lock, more time at
/// `DISPATCH_LEVEL` than a DPC may spend.
pub const STATUS_INVALID_PARAMETER_MIX: NtStatus = nt(0xC000_0030);
/// `STATUS_CANCELLED`: the request was cancelled before its run started, or its handle was
/// closed during the run (nobody is left to read the figures).
pub const STATUS_CANCELLED: NtStatus = nt(0xC000_0120);
/// `STATUS_INVALID_HANDLE`: the handle is closed.
pub const STATUS_INVALID_HANDLE: NtStatus = nt(0xC000_0008);
/// `STATUS_DEVICE_BUSY`: another stress run is in progress.
pub const STATUS_DEVICE_BUSY: NtStatus = nt(0x8000_0011);

/// The symbolic name of a status this ABI uses, for messages.
#[must_use]
pub const fn name(status: NtStatus) -> Option<&'static str> {
    Some(match status {
        STATUS_SUCCESS => "STATUS_SUCCESS",
        STATUS_INVALID_PARAMETER => "STATUS_INVALID_PARAMETER",
        STATUS_INVALID_DEVICE_REQUEST => "STATUS_INVALID_DEVICE_REQUEST",
        STATUS_ACCESS_DENIED => "STATUS_ACCESS_DENIED",
        STATUS_BUFFER_TOO_SMALL => "STATUS_BUFFER_TOO_SMALL",
        STATUS_REVISION_MISMATCH => "STATUS_REVISION_MISMATCH",
        STATUS_INSUFFICIENT_RESOURCES => "STATUS_INSUFFICIENT_RESOURCES",
        STATUS_NOT_SUPPORTED => "STATUS_NOT_SUPPORTED",
        STATUS_INFO_LENGTH_MISMATCH => "STATUS_INFO_LENGTH_MISMATCH",
        STATUS_DEVICE_BUSY => "STATUS_DEVICE_BUSY",
        STATUS_CANCELLED => "STATUS_CANCELLED",
        STATUS_INVALID_HANDLE => "STATUS_INVALID_HANDLE",
        STATUS_INVALID_PARAMETER_MIX => "STATUS_INVALID_PARAMETER_MIX",
        _ => return None,
    })
}
