//! The exported DDIs: what `wdk_sys::ntddk` declares, implemented for the emulated machine.
//!
//! Each DDI is defined with [`export!`], which gives it the C name the driver links against and
//! checks at compile time that its signature is exactly the one `wdk_sys::ntddk` declares (the
//! generated binding and the definition are coerced to one function-pointer type). One file per
//! DDI group.

/// Defines an exported DDI and checks its signature against the `wdk_sys::ntddk` declaration.
macro_rules! export {
    (
        $(#[$meta:meta])*
        fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block
    ) => {
        $(#[$meta])*
        ///
        /// # Safety
        /// The caller obeys the DDI's contract in ddi.md: pointers valid for the access
        /// described there. IRQL and APC preconditions are checked: violating them bugchecks
        /// the emulated machine, as Driver Verifier would.
        #[allow(non_snake_case, reason = "WDK parameter names")]
        #[allow(clippy::too_long_first_doc_paragraph, reason = "DDI contracts read best whole")]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name($($arg: $ty),*) $(-> $ret)? $body

        const _: () = {
            let _same_signature: [unsafe extern "C" fn($($ty),*) $(-> $ret)?; 2] =
                [wdk_sys::ntddk::$name, $name];
        };
    };
}

pub mod apc;
pub mod debug;
pub mod dpc;
pub mod event;
pub mod fast_mutex;
pub mod guarded_mutex;
pub mod interlocked;
pub mod irql;
pub mod mutex;
pub mod pool;
pub mod processor;
pub mod push_lock;
pub mod queued_spin_lock;
pub mod resource;
pub mod rundown;
pub mod rw_spin_lock;
pub mod semaphore;
pub mod spin_lock;
pub mod thread;
pub mod timer;
pub mod wait;
pub mod work_item;
