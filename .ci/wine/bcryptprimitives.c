/*
 * A stand-in bcryptprimitives.dll for running the client under Wine.
 *
 * Since Rust 1.78, the standard library on Windows seeds its RNG (HashMap's RandomState, among
 * others) with ProcessPrng, imported from bcryptprimitives.dll. Windows 10 and later ship that
 * DLL; Wine gained it only after 8.x, so under Debian bookworm's Wine 8 every Rust program fails
 * to load (STATUS_DLL_NOT_FOUND). This DLL exports the one function std needs and fills the
 * buffer from RtlGenRandom (advapi32!SystemFunction036), which Wine implements.
 *
 * Test-harness only: never ship it, and never put it on a real Windows machine.
 *
 * Build: x86_64-w64-mingw32-gcc -shared -O2 -static-libgcc -o bcryptprimitives.dll \
 *            bcryptprimitives.c -ladvapi32
 */
#include <windows.h>
#include <ntsecapi.h> /* RtlGenRandom, i.e. SystemFunction036 */

/* The documented contract: fills `len` bytes at `data` and always returns TRUE. */
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        /* RtlGenRandom takes a ULONG length: feed it at most 1 GiB at a time. */
        ULONG chunk = len > 0x40000000u ? 0x40000000u : (ULONG)len;
        if (!RtlGenRandom(data, chunk)) {
            /* The real ProcessPrng cannot fail; std aborts if it returns FALSE, which is the
             * right outcome for a broken test environment. */
            return FALSE;
        }
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE instance, DWORD reason, LPVOID reserved)
{
    (void)instance;
    (void)reason;
    (void)reserved;
    return TRUE;
}
