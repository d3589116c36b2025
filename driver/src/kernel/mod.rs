//! Safe wrappers over the DDIs the driver uses. Every `unsafe` call into the kernel outside
//! [`crate::sync`] lives here, each with its IRQL contract.

pub mod dpc;
pub mod irql;
pub mod processor;
pub mod request;
pub mod thread;
pub mod time;
