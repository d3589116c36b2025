//! Pool DDIs (ddi.md 10.3): `ExAllocatePool2`, `ExFreePool`, `ExFreePoolWithTag`.

use wdk_sys::{POOL_FLAGS, PVOID, SIZE_T, ULONG};

use crate::{
    bugcheck::{code, verifier},
    context::{enter, irql, Entry},
    pool::{self, FreeError},
};

const POOL_FLAG_UNINITIALIZED: u64 = 0x2;
const POOL_FLAG_NON_PAGED_EXECUTE: u64 = 0x80;
const POOL_FLAG_NON_PAGED: u64 = 0x40;
const POOL_FLAG_PAGED: u64 = 0x100;
/// Flags this emulation understands; any other bit makes the allocation fail, as an invalid
/// flag does on Windows.
const KNOWN_FLAGS: u64 = 0x1
    | POOL_FLAG_UNINITIALIZED
    | 0x4
    | 0x8
    | 0x10
    | 0x20
    | POOL_FLAG_NON_PAGED
    | POOL_FLAG_NON_PAGED_EXECUTE
    | POOL_FLAG_PAGED;

export! {
    /// Allocates pool, zeroed unless `POOL_FLAG_UNINITIALIZED`. NULL for tag 0, unknown flags,
    /// or not exactly one pool type. Nonpaged: IRQL <= `DISPATCH_LEVEL`; paged: <= `APC_LEVEL`.
    fn ExAllocatePool2(Flags: POOL_FLAGS, NumberOfBytes: SIZE_T, Tag: ULONG) -> PVOID {
        let e = enter("ExAllocatePool2");
        let paged = Flags & POOL_FLAG_PAGED != 0;
        let level = e.irql.get();
        let limit = if paged { irql::APC } else { irql::DISPATCH };
        if level > limit {
            e.bugcheck(
                code::DRIVER_VERIFIER_DETECTED_VIOLATION,
                [verifier::API_AT_WRONG_IRQL, u64::from(level), Flags, NumberOfBytes],
                format!("ExAllocatePool2({Flags:#x}) at IRQL {level}"),
            );
        }
        let types = [POOL_FLAG_NON_PAGED, POOL_FLAG_NON_PAGED_EXECUTE, POOL_FLAG_PAGED]
            .iter()
            .filter(|&&t| Flags & t != 0)
            .count();
        if Tag == 0 || Flags & !KNOWN_FLAGS != 0 || types != 1 {
            return std::ptr::null_mut();
        }
        let Ok(size) = usize::try_from(NumberOfBytes) else {
            return std::ptr::null_mut();
        };
        let zeroed = Flags & POOL_FLAG_UNINITIALIZED == 0;
        pool::allocate(Some(e.machine.pool), size, 16, Tag, zeroed).cast()
    }
}

fn free(e: &Entry, p: PVOID, tag: Option<u32>) {
    let level = e.irql.get();
    if level > irql::DISPATCH {
        e.bugcheck(
            code::DRIVER_VERIFIER_DETECTED_VIOLATION,
            [0x12, u64::from(level), 0, p as u64],
            format!("{} at IRQL {level}", e.ddi),
        );
    }
    if let Some((_, size)) = e.machine.pool.lookup(p as usize) {
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        crate::ddi::resource::check_free(e, p as usize, size);
        if let Some(dpc) = e.machine.processors.queued_within(p as usize, size) {
            e.bugcheck(
                code::TIMER_OR_DPC_INVALID,
                [
                    1,
                    dpc as u64,
                    p as u64,
                    (p as u64).saturating_add(size as u64),
                ],
                format!(
                    "{} of {p:p} ({size} bytes), which contains the queued DPC {dpc:#x}",
                    e.ddi
                ),
            );
        }
        if let Some(timer) = crate::ddi::timer::armed_within(&e.machine, p as usize, size) {
            e.bugcheck(
                code::DRIVER_VERIFIER_DETECTED_VIOLATION,
                [verifier::FREED_ACTIVE_TIMER, timer as u64, 0, p as u64],
                format!(
                    "{} of {p:p} ({size} bytes), which contains the armed timer {timer:#x}",
                    e.ddi
                ),
            );
        }
    }
    match pool::free_checked(e.machine.pool, p.cast(), tag) {
        Ok(()) => {}
        Err(FreeError::NotLive) => e.bugcheck(
            code::BAD_POOL_CALLER,
            [0x7, 0, p as u64, 0],
            format!(
                "{} of {p:p}: not an allocated block (already freed, or never allocated)",
                e.ddi
            ),
        ),
        Err(FreeError::WrongTag { actual }) => e.bugcheck(
            code::BAD_POOL_CALLER,
            [
                0xA,
                p as u64,
                u64::from(tag.unwrap_or(0)),
                u64::from(actual),
            ],
            format!(
                "ExFreePoolWithTag of {p:p} with tag '{}', allocated with '{}'",
                pool::tag_name(tag.unwrap_or(0)),
                pool::tag_name(actual)
            ),
        ),
    }
}

export! {
    /// Frees pool. IRQL <= `DISPATCH_LEVEL` for nonpaged pool. A block that still contains an
    /// initialised executive resource is 0xC4/0x17.
    fn ExFreePool(P: PVOID) {
        let e = enter("ExFreePool");
        free(&e, P, None);
    }
}

export! {
    /// Frees pool allocated with `Tag`; a different tag is 0xC2/0xA.
    fn ExFreePoolWithTag(P: PVOID, Tag: ULONG) {
        let e = enter("ExFreePoolWithTag");
        free(&e, P, Some(Tag));
    }
}
