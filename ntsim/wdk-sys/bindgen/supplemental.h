/*
 * Declarations the WDK (10.0.22621, x64, NTDDI_VERSION >= NTDDI_WIN10) provides as exported
 * functions, types and constants, but that the mingw-w64 10.0.0 DDK headers lack or only inline.
 *
 * Every prototype below follows Microsoft's documented prototype (learn.microsoft.com DDI
 * reference; ddi.md sections 1-10) with SAL annotations dropped. Calling-convention macros
 * (NTAPI, FASTCALL) are kept for readability; they mean nothing on x64.
 *
 * Included by wrapper.h after ntifs.h/ntddk.h, so all base types are available.
 */
#ifndef NTSIM_WDK_SYS_SUPPLEMENTAL_H
#define NTSIM_WDK_SYS_SUPPLEMENTAL_H

/* ---------------------------------------------------------------------------------------------
 * IRQL and spin lock initialisation (ddi.md 0.4, 1.1 and 10.1). Exports on x64 since Windows 8,
 * FORCEINLINE in mingw-w64 (renamed away in wrapper.h).
 * ------------------------------------------------------------------------------------------- */
NTKERNELAPI KIRQL NTAPI KeGetCurrentIrql(VOID);
NTKERNELAPI KIRQL FASTCALL KfRaiseIrql(KIRQL NewIrql);
NTKERNELAPI VOID NTAPI KeLowerIrql(KIRQL NewIrql);
NTKERNELAPI VOID NTAPI KeInitializeSpinLock(PKSPIN_LOCK SpinLock);

/* ---------------------------------------------------------------------------------------------
 * Pool allocation (ddi.md 10.3). Windows 10 2004 (NTDDI_WIN10_VB); absent from mingw-w64.
 *
 * The POOL_FLAG_* values carry MSVC's UI64 suffix exactly as in the WDK, which bindgen cannot
 * evaluate; wdk-sys therefore hand-writes them, typed POOL_FLAGS, in its constants.rs, and so
 * does this crate (src/constants.rs). They are listed here for reference and for C consumers.
 * ------------------------------------------------------------------------------------------- */
typedef ULONG64 POOL_FLAGS;

#define POOL_FLAG_REQUIRED_START        0x0000000000000001UI64
#define POOL_FLAG_USE_QUOTA             0x0000000000000001UI64
#define POOL_FLAG_UNINITIALIZED         0x0000000000000002UI64
#define POOL_FLAG_SESSION               0x0000000000000004UI64
#define POOL_FLAG_CACHE_ALIGNED         0x0000000000000008UI64
#define POOL_FLAG_RESERVED1             0x0000000000000010UI64
#define POOL_FLAG_RAISE_ON_FAILURE      0x0000000000000020UI64
#define POOL_FLAG_NON_PAGED             0x0000000000000040UI64
#define POOL_FLAG_NON_PAGED_EXECUTE     0x0000000000000080UI64
#define POOL_FLAG_PAGED                 0x0000000000000100UI64
#define POOL_FLAG_RESERVED2             0x0000000000000200UI64
#define POOL_FLAG_RESERVED3             0x0000000000000400UI64
#define POOL_FLAG_REQUIRED_END          0x0000000080000000UI64
#define POOL_FLAG_OPTIONAL_START        0x0000000100000000UI64
#define POOL_FLAG_SPECIAL_POOL          0x0000000100000000UI64
#define POOL_FLAG_OPTIONAL_END          0x8000000000000000UI64

NTKERNELAPI PVOID NTAPI ExAllocatePool2(POOL_FLAGS Flags, SIZE_T NumberOfBytes, ULONG Tag);

/* ---------------------------------------------------------------------------------------------
 * Reader/writer spin locks (ddi.md 3). Vista SP1; the two ExTryAcquire...AtDpcLevel routines are
 * Windows 10 1607 and undocumented, but declared in the WDK's wdm.h. None is in mingw-w64.
 * ------------------------------------------------------------------------------------------- */
typedef volatile LONG EX_SPIN_LOCK, *PEX_SPIN_LOCK;

NTKERNELAPI KIRQL ExAcquireSpinLockExclusive(PEX_SPIN_LOCK SpinLock);
NTKERNELAPI KIRQL ExAcquireSpinLockShared(PEX_SPIN_LOCK SpinLock);
NTKERNELAPI VOID ExReleaseSpinLockExclusive(PEX_SPIN_LOCK SpinLock, KIRQL OldIrql);
NTKERNELAPI VOID ExReleaseSpinLockShared(PEX_SPIN_LOCK SpinLock, KIRQL OldIrql);
NTKERNELAPI VOID ExAcquireSpinLockExclusiveAtDpcLevel(PEX_SPIN_LOCK SpinLock);
NTKERNELAPI VOID ExAcquireSpinLockSharedAtDpcLevel(PEX_SPIN_LOCK SpinLock);
NTKERNELAPI VOID ExReleaseSpinLockExclusiveFromDpcLevel(PEX_SPIN_LOCK SpinLock);
NTKERNELAPI VOID ExReleaseSpinLockSharedFromDpcLevel(PEX_SPIN_LOCK SpinLock);
NTKERNELAPI LOGICAL ExTryConvertSharedSpinLockExclusive(PEX_SPIN_LOCK SpinLock);
LOGICAL ExTryAcquireSpinLockSharedAtDpcLevel(PEX_SPIN_LOCK SpinLock);
LOGICAL ExTryAcquireSpinLockExclusiveAtDpcLevel(PEX_SPIN_LOCK SpinLock);

/* ---------------------------------------------------------------------------------------------
 * Push locks (ddi.md 6.1, errata 7 and 12). EX_PUSH_LOCK / PEX_PUSH_LOCK are #defines (ULONG_PTR /
 * PULONG_PTR) in both the WDK and mingw-w64's ntifs.h, so they never become Rust items and the
 * routines take PULONG_PTR. ExInitializePushLock is already declared by mingw-w64's ntifs.h.
 * The non-Ex names are macros over these with EX_DEFAULT_PUSH_LOCK_FLAGS.
 * ------------------------------------------------------------------------------------------- */
#ifndef EX_PUSH_LOCK
#define EX_PUSH_LOCK ULONG_PTR
#define PEX_PUSH_LOCK PULONG_PTR
#endif

#define EX_DEFAULT_PUSH_LOCK_FLAGS 0

NTKERNELAPI VOID FASTCALL ExAcquirePushLockExclusiveEx(PEX_PUSH_LOCK PushLock, ULONG Flags);
NTKERNELAPI VOID FASTCALL ExAcquirePushLockSharedEx(PEX_PUSH_LOCK PushLock, ULONG Flags);
NTKERNELAPI VOID FASTCALL ExReleasePushLockExclusiveEx(PEX_PUSH_LOCK PushLock, ULONG Flags);
NTKERNELAPI VOID FASTCALL ExReleasePushLockSharedEx(PEX_PUSH_LOCK PushLock, ULONG Flags);

/* ---------------------------------------------------------------------------------------------
 * Cache-aware run-down protection, Windows 8.1 additions (ddi.md 9; NTDDI_WINBLUE). The rest of
 * the cache-aware family is declared by mingw-w64.
 * ------------------------------------------------------------------------------------------- */
#define EX_CARR_ALLOCATE_PAGED_POOL     0x00000000
#define EX_CARR_ALLOCATE_NONPAGED_POOL  0x00000001
#define EX_CARR_DISABLE_EXPANSION       0x00000002
#define EX_CARR_VALID_FLAGS             (EX_CARR_ALLOCATE_NONPAGED_POOL | EX_CARR_DISABLE_EXPANSION)

NTKERNELAPI VOID ExInitializeRundownProtectionCacheAwareEx(PEX_RUNDOWN_REF_CACHE_AWARE RunRefCacheAware, ULONG Flags);
NTKERNELAPI VOID ExCleanupRundownProtectionCacheAware(PEX_RUNDOWN_REF_CACHE_AWARE RunRefCacheAware);

/*
 * KeQueryDpcWatchdogInformation and KDPC_WATCHDOG_INFORMATION (errata 6) are declared by
 * mingw-w64's wdm.h with the documented layout (five ULONGs: DpcTimeLimit, DpcTimeCount,
 * DpcWatchdogLimit, DpcWatchdogCount, Reserved), so nothing is added for them here.
 */

#endif /* NTSIM_WDK_SYS_SUPPLEMENTAL_H */
