//! Build script of the driver crate (`synclab`).
//!
//! On a Windows host it is the build script of every windows-drivers-rs driver:
//! [`wdk_build::configure_wdk_binary_build`] reads the `package.metadata.wdk` driver model from
//! `cargo metadata`, checks that `+crt-static` is on (`.cargo/config.toml`), and emits the WDK's
//! library paths, the KMDF link libraries and the kernel linker flags (`/DRIVER`,
//! `/ENTRY:FxDriverEntry`, ...) together with the `driver_model__driver_type` cfg.
//!
//! Anywhere else it does nothing. `wdk-build` refuses to compile on a non-Windows host (a
//! `compile_error!`), so it is a `[target.'cfg(windows)'.build-dependencies]` entry, and this
//! file names it only under `cfg(windows)`. A build script is compiled for the host, so
//! `cfg(windows)` here means "building on Windows", which is the only place the WDK exists.
//! On Linux the driver builds as an ordinary library against ntsim, and needs no linker setup.

/// Configures the WDK binary build (Windows hosts).
///
/// # Errors
/// [`wdk_build::ConfigError`] when no WDK is found, the driver metadata is missing or ambiguous,
/// or `+crt-static` is not enabled.
#[cfg(windows)]
fn main() -> Result<(), wdk_build::ConfigError> {
    wdk_build::configure_wdk_binary_build()
}

/// Nothing to configure: the host is not Windows, so the driver builds against ntsim.
#[cfg(not(windows))]
fn main() {}
