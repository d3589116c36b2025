/*
 * bindgen input of ntsim-wdk-sys (see generate.sh).
 *
 * wdk-sys 0.5.1 generates its KMDF bindings from the WDK's ntifs.h, ntddk.h and ntstrsafe.h.
 * The WDK is not available on Linux, so the mingw-w64 DDK headers stand in for it, and
 * supplemental.h adds what the WDK exports on x64 but mingw-w64 lacks or only inlines.
 */

/*
 * mingw-w64 defines these four as FORCEINLINE CR8 accessors (or an inline store) in the AMD64
 * branch of wdm.h. The WDK declares them as ntoskrnl exports on x64 for NTDDI_WIN8 and later
 * (ddi.md section 0.4, wdk-sys-shape.md section 10), and PAGED_CODE! calls KeGetCurrentIrql by
 * path. bindgen never emits inline bodies, so mingw's definitions are renamed out of the way here
 * and supplemental.h declares the exported functions under the real names.
 */
#define KeGetCurrentIrql ntsim_mingw_inline_KeGetCurrentIrql
#define KfRaiseIrql ntsim_mingw_inline_KfRaiseIrql
#define KeLowerIrql ntsim_mingw_inline_KeLowerIrql
#define KeInitializeSpinLock ntsim_mingw_inline_KeInitializeSpinLock

/* ntifs.h pulls in ntddk.h, which pulls in wdm.h and the shared headers (ntdef.h, ntstatus.h...). */
#include <ddk/ntifs.h>
#include <ddk/ntddk.h>
#include <ddk/ntstrsafe.h>

#undef KeGetCurrentIrql
#undef KfRaiseIrql
#undef KeLowerIrql
#undef KeInitializeSpinLock

#include "supplemental.h"
