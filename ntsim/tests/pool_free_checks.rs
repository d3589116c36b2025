//! Freeing pool that still holds a live kernel object (ddi.md 8.5, 12.1): a queued DPC is
//! 0xC7 `TIMER_OR_DPC_INVALID` with P1 = 1 (a DPC object), P2 the DPC, P3..P4 the freed range.

mod support;

use ntsim::{
    bugcheck::code,
    wdk_sys::{ntddk, KDPC, PVOID},
};
use support::{expect_bugcheck, machine, raise};

const unsafe extern "C" fn never_runs(_: *mut KDPC, _: PVOID, _: PVOID, _: PVOID) {}

fn allocate(bytes: u64) -> usize {
    // SAFETY: a nonpaged allocation with a nonzero tag at IRQL <= DISPATCH_LEVEL.
    let block = unsafe { ntddk::ExAllocatePool2(0x40, bytes, u32::from_le_bytes(*b"Test")) };
    assert!(!block.is_null());
    block as usize
}

fn free(block: usize) {
    // SAFETY: a block from `allocate`; freeing it with an object inside is what is tested.
    unsafe { ntddk::ExFreePool(block as PVOID) };
}

#[test]
fn freeing_pool_that_holds_a_queued_dpc_is_0xc7_with_p1_1() {
    // One processor: while this thread holds it at DISPATCH_LEVEL, the DPC cannot run.
    let m = machine(1);
    let (block, bug) = {
        let slot = std::sync::Arc::new(std::sync::Mutex::new(0_usize));
        let seen = std::sync::Arc::clone(&slot);
        let bug = expect_bugcheck(&m, move || {
            let block = allocate(256);
            *seen.lock().expect("not poisoned") = block;
            let dpc = block + 64;
            // SAFETY: a 64-byte, 8-aligned KDPC inside the live block.
            unsafe {
                ntddk::KeInitializeDpc(dpc as *mut KDPC, Some(never_runs), std::ptr::null_mut());
            };
            raise(2);
            // SAFETY: the DPC was initialised above and is not queued.
            let queued = unsafe {
                ntddk::KeInsertQueueDpc(
                    dpc as *mut KDPC,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            };
            assert_eq!(queued, 1);
            free(block);
        });
        let block = *slot.lock().expect("not poisoned");
        (block, bug)
    };
    assert_eq!(bug.code, code::TIMER_OR_DPC_INVALID);
    assert_eq!(
        bug.params,
        [1, block as u64 + 64, block as u64, block as u64 + 256]
    );
}

#[test]
fn freeing_pool_after_its_dpc_ran_is_fine() {
    let m = machine(2);
    m.run(|| {
        let block = allocate(128);
        // SAFETY: a KDPC inside the live block.
        unsafe {
            ntddk::KeInitializeDpc(block as *mut KDPC, Some(never_runs), std::ptr::null_mut());
        };
        // SAFETY: initialised, not queued.
        let queued = unsafe {
            ntddk::KeInsertQueueDpc(
                block as *mut KDPC,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        assert_eq!(queued, 1);
        support::flush_dpcs();
        free(block);
    })
    .expect("a DPC that has run may be freed");
}
