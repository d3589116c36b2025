//! Safe wrappers over the DDIs the driver uses. Every `unsafe` call into the kernel outside
//! [`crate::sync`] lives here, each with its IRQL contract.

pub mod apc;
pub mod dpc;
pub mod event;
pub mod irql;
pub mod pool;
pub mod processor;
pub mod request;
pub mod thread;
pub mod time;
