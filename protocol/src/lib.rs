//! # Abstract
//!
//! The IOCTL ABI between the `SyncLab` driver and its client. It is `no_std` and has no `unsafe`,
//! so the driver (kernel, `no_std`) and the client (user mode, std) compile the very same
//! definitions.
//!
//! - [`ioctl`]: a `const fn` [`ioctl::ctl_code`] and the IOCTL codes (all `METHOD_BUFFERED`;
//!   IOCTLs that run work require `FILE_WRITE_ACCESS`).
//! - [`wire`]: fixed-layout `#[repr(C)]` request and response types, sizes asserted at compile
//!   time, parsed from bytes with `zerocopy` (never by casting a pointer).
//! - [`primitive`]: the registry of primitives ([`primitive::REGISTRY`]): variants, legal
//!   contexts, IRQL and APC state while held; validation, the driver and the client read it.
//! - [`limits`] and [`RequestError`]: validation, each error mapping to one NTSTATUS.
//! - [`DEVICE_INTERFACE_GUID`] and [`HARDWARE_ID`]: how the client finds the device, defined once.
//!
//! ```
//! use synclab_protocol::{wire::StressRequest, Primitive, ABI_VERSION};
//! let request = StressRequest::new(Primitive::SpinLock, 4, 1000);
//! assert_eq!(request.header.abi_version, ABI_VERSION);
//! assert!(request.validate().is_ok());
//! ```
#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

pub mod error;
pub mod ioctl;
pub mod limits;
pub mod primitive;
pub mod status;
pub mod wire;

pub use error::RequestError;
pub use primitive::Primitive;

/// Version of this ABI. The driver rejects requests carrying any other value with
/// `STATUS_REVISION_MISMATCH`.
pub const ABI_VERSION: u32 = 2;

/// A GUID laid out as Windows lays out `GUID` (16 bytes, align 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Guid {
    /// First 32 bits.
    pub data1: u32,
    /// Next 16 bits.
    pub data2: u16,
    /// Next 16 bits.
    pub data3: u16,
    /// Last 64 bits, as bytes.
    pub data4: [u8; 8],
}

impl core::fmt::Display for Guid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let d = &self.data4;
        write!(
            f,
            "{{{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}}}",
            self.data1, self.data2, self.data3, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
        )
    }
}

/// The device interface class the driver registers and the client looks up:
/// `{83C7ECFB-23BC-498E-9476-8B15CB9CE1D8}`.
pub const DEVICE_INTERFACE_GUID: Guid = Guid {
    data1: 0x83C7_ECFB,
    data2: 0x23BC,
    data3: 0x498E,
    data4: [0x94, 0x76, 0x8B, 0x15, 0xCB, 0x9C, 0xE1, 0xD8],
};

/// Hardware ID of the root-enumerated `SyncLab` device (as in `inf/synclab.inx`).
pub const HARDWARE_ID: &str = "Root\\SyncLab";

/// Version of the driver and client, reported by `IOCTL_SYNCLAB_GET_INFO`.
pub const DRIVER_VERSION: [u16; 3] = [0, 2, 0];
