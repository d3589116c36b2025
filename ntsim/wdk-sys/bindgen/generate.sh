#!/usr/bin/env bash
# Regenerates the committed bindings of ntsim-wdk-sys (src/generated/*.rs).
#
#   bash ntsim/wdk-sys/bindgen/generate.sh
#
# Needs: bindgen-cli 0.71.1 (installed below with `cargo install` if missing), libclang, python3,
# and the mingw-w64 headers (Debian: mingw-w64-x86-64-dev). Building the crate needs none of them.
#
# The options reproduce `BuilderExt::wdk_default` of wdk-build 0.5.1 (wdk-sys-shape.md 1.2):
# use_core, derive_default, generate_cstr, ModuleConsts enums, must_use_type NTSTATUS/HRESULT,
# prettyplease, rust target 1.85 (so extern blocks are `unsafe extern "C"`), the same blocklist and
# opaque types, the x64 KMDF defines, and clang's x86_64-pc-windows-msvc target (so LONG/ULONG are
# 32-bit and enums are `int` while bindgen lays the structs out). Like wdk-sys's build.rs it runs
# bindgen three times: TYPES -> types.rs, VARS -> constants.rs, everything else -> ntddk.rs.
set -euo pipefail

BINDGEN_VERSION=0.71.1
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CRATE="$(dirname "$HERE")"
OUT="$CRATE/src/generated"
MINGW_INCLUDE="${MINGW_INCLUDE:-/usr/share/mingw-w64/include}"

if ! command -v bindgen >/dev/null 2>&1 && [ -x "${CARGO_HOME:-$HOME/.cargo}/bin/bindgen" ]; then
    PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi
if ! bindgen --version 2>/dev/null | grep -q "^bindgen $BINDGEN_VERSION\$"; then
    echo "generate.sh: installing bindgen-cli $BINDGEN_VERSION" >&2
    cargo install bindgen-cli --version "$BINDGEN_VERSION" --locked
    PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi
for header in ddk/ntifs.h ntstatus.h; do
    if [ ! -f "$MINGW_INCLUDE/$header" ]; then
        echo "generate.sh: $MINGW_INCLUDE/$header not found (apt-get install mingw-w64-x86-64-dev)" >&2
        exit 1
    fi
done

BINDGEN_ARGS=(
    --use-core
    --with-derive-default
    --generate-cstr
    --default-enum-style moduleconsts
    --must-use-type NTSTATUS
    --must-use-type HRESULT
    --formatter prettyplease
    --rust-target 1.85
    --rust-edition 2024
    --no-include-path-detection
    # wdk-build 0.5.1's blocklist and opaque types (the USB/WHEA/ACPI ones do not occur in mingw).
    --blocklist-item ExAllocatePoolWithTag
    --blocklist-item ExAllocatePoolWithQuotaTag
    --blocklist-item ExAllocatePoolWithTagPriority
    --blocklist-item ExAllocatePool
    --blocklist-item '.*MCG_CAP(?:__bindgen.*)?'
    --opaque-type _KGDTENTRY64
    --opaque-type _KIDTENTRY64
    # mingw-w64 keeps the Windows 7 KGUARDED_MUTEX struct; postprocess.py re-adds the WDK's
    # `KGUARDED_MUTEX = _FAST_MUTEX` aliases.
    --blocklist-type '_KGUARDED_MUTEX(__bindgen.*)?'
    --blocklist-type 'P?KGUARDED_MUTEX'
    # mingw-w64's inline bodies, renamed away in wrapper.h.
    --blocklist-function 'ntsim_mingw_inline_.*'
)

# Names that are macros or FORCEINLINE bodies on x64 in the WDK, so absent from wdk-sys
# (ddi.md 0.4 and errata 3, wdk-sys-shape.md 1.9 and 10). mingw-w64 10.0.0 already omits them;
# they are listed so that a different mingw-w64 version cannot bring them back.
INLINE_IN_WDK=(
    PsGetCurrentThread KeGetCurrentThread KeRaiseIrqlToDpcLevel KeRaiseIrqlToSynchLevel
    KeAcquireSpinLock ExInitializeFastMutex ObDereferenceObject ObReferenceObject
    InitializeListHead IsListEmpty InsertHeadList InsertTailList RemoveHeadList RemoveTailList
    RemoveEntryList PushEntryList PopEntryList AppendTailList
    IoGetCurrentIrpStackLocation IoGetNextIrpStackLocation IoSkipCurrentIrpStackLocation
    IoCopyCurrentIrpStackLocationToNext IoSetCompletionRoutine IoMarkIrpPending
    IoCompleteRequest IoCallDriver
    ExInitializeSListHead ExInterlockedPushEntrySList ExInterlockedPopEntrySList
    KeQuerySystemTime KeQueryTickCount KeQueryInterruptTime
    RtlZeroMemory RtlCopyMemory RtlMoveMemory RtlFillMemory RtlEqualMemory CTL_CODE
)
# Routines mingw-w64 declares that the WDK 10.0.22621 kernel headers do not declare at all.
NOT_IN_WDK=(
    CcGetLsnForFileObject FsRtlAllocatePool FsRtlAllocatePoolWithQuota FsRtlMdlReadComplete
    FsRtlMdlWriteComplete FsRtlNotifyChangeDirectory IoUpdateDiskGeometry
    KeQueryTotalCycleTimeProcess NtQueryInformationProcess ObCreateObject ObGetObjectPointerCount
    ObReferenceObjectByName PoRequestShutdownEvent PsLookupProcessThreadByCid
    RtlSetSaclSecurityDescriptor WdmlibRtlIsNtDdiVersionAvailable
    WdmlibRtlIsServicePackVersionInstalled ZwAccessCheckAndAuditAlarm ZwAdjustPrivilegesToken
    ZwAlertThread ZwCancelIoFile ZwClearEvent ZwCloseObjectAuditAlarm ZwCreateSymbolicLinkObject
    ZwFlushInstructionCache ZwInitiatePowerAction ZwLoadKey ZwNotifyChangeMultipleKeys
    ZwOpenProcessToken ZwOpenThread ZwOpenThreadToken ZwPulseEvent ZwQueryDefaultLocale
    ZwQueryDirectoryObject ZwQueryInformationProcess ZwQueryMultipleValueKey ZwReplaceKey
    ZwResetEvent ZwSetDefaultLocale ZwSetDefaultUILanguage ZwSetInformationProcess
    ZwSetSystemTime ZwUnloadKey ZwWaitForMultipleObjects ZwYieldExecution
)
FUNCTION_ONLY_ARGS=(
    # The WDK's ntstrsafe.h functions are all `__inline` (NTSTRSAFEDDI); mingw-w64 declares them
    # out of line as well, so drop every function that file declares.
    --blocklist-file '.*/ntstrsafe\.h'
    # mingw-w64 drags its user-mode C runtime in through _mingw.h and intrin.h; the WDK kernel
    # headers only bring string/ctype/intrinsic declarations. Drop the user-mode CRT's functions.
    --blocklist-file '.*/(stdio|stdlib|malloc|conio|process|io|dos|pthread|corecrt_wstdlib|corecrt_startup)\.h'
    --blocklist-file '.*/sec_api/(stdio_s|stdlib_s|conio_s)\.h'
    --blocklist-function '__mingw_.*|__ms_.*'
)
for f in "${INLINE_IN_WDK[@]}" "${NOT_IN_WDK[@]}"; do
    FUNCTION_ONLY_ARGS+=(--blocklist-function "$f")
done

CLANG_RESOURCE_DIR="${CLANG_RESOURCE_DIR:-$(clang -print-resource-dir)}"
CLANG_ARGS=(
    -target x86_64-pc-windows-msvc
    # mingw-w64 hides GCC attributes (vector_size, aligned, ...) behind __GNUC__; without it the
    # intrinsic headers do not parse under the msvc target.
    -fgnuc-version=4.2.1
    -fms-extensions
    -I "$MINGW_INCLUDE"
    -I "$MINGW_INCLUDE/ddk"
    # Include-path detection is off (as in wdk-build), so name clang's own headers (intrinsics).
    -isystem "$CLANG_RESOURCE_DIR/include"
    -I "$HERE"
    -D_WIN64 -D_AMD64_ -DAMD64 -D_KERNEL_MODE
    -Wno-pragma-pack -Wno-ignored-attributes -Wno-microsoft -Wno-deprecated-declarations
    -Wno-incompatible-library-redeclaration -Wno-ignored-pragma-intrinsic
)

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

run_bindgen() { # $1 = --generate kinds, $2 = output file, rest = extra bindgen options
    local kinds="$1" out="$2"
    shift 2
    bindgen "${BINDGEN_ARGS[@]}" "$@" --generate "$kinds" "$HERE/wrapper.h" -o "$out" \
        -- "${CLANG_ARGS[@]}"
}

run_bindgen types "$TMP/types.rs"
run_bindgen vars "$TMP/constants.rs"
run_bindgen functions,methods,constructors,destructors "$TMP/ntddk.rs" "${FUNCTION_ONLY_ARGS[@]}"

python3 "$HERE/postprocess.py" bindings "$TMP/types.rs" "$TMP/constants.rs" "$TMP/ntddk.rs"
python3 "$HERE/postprocess.py" ntstatus "$MINGW_INCLUDE/ntstatus.h" "$TMP/ntstatus.rs"

mkdir -p "$OUT"
for f in types constants ntddk ntstatus; do
    cp "$TMP/$f.rs" "$OUT/$f.rs"
done
wc -l "$OUT"/*.rs
