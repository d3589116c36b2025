#!/usr/bin/env bash
# Smoke test of the Windows client under Wine, on Linux.
#
# Cross-builds synclab.exe for x86_64-pc-windows-gnu with mingw-w64 and runs it under 64-bit
# Wine in a throwaway prefix:
#   synclab.exe --help   must exit 0 and mention the `run` command;
#   synclab.exe info     must exit non-zero with "no SyncLab device" on stderr: Wine has no
#                        SyncLab driver, so this checks that the real Windows backend (device
#                        lookup through cfgmgr32/setupapi, error mapping) fails cleanly.
#
# Rust's std for Windows imports ProcessPrng from bcryptprimitives.dll, which Debian bookworm's
# Wine 8 does not have; .ci/wine/bcryptprimitives.c provides it and is put beside the exe.
#
# Usage: .ci/wine/run-client.sh   (from anywhere; ~15 s with a warm cargo build, ~1 min cold)
# Needs: x86_64-w64-mingw32-gcc, 64-bit wine, the Rust target x86_64-pc-windows-gnu. Missing
# Debian packages are installed when running as root with apt-get; nothing is downloaded
# otherwise.
# Exit status: 0 passed, 1 a check failed, 2 a prerequisite is missing.
# Env: CARGO_TARGET_DIR (honoured), SYNCLAB_WINE_TIMEOUT (seconds per Wine command, default 60).

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TARGET_TRIPLE=x86_64-pc-windows-gnu
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
WORK="$TARGET_DIR/wine"
EXE_DIR="$TARGET_DIR/$TARGET_TRIPLE/debug"
EXE="$EXE_DIR/synclab.exe"
WINE_TIMEOUT="${SYNCLAB_WINE_TIMEOUT:-60}"

START=$SECONDS
phase_start=$SECONDS
say() { printf '[wine-client] %s\n' "$*"; }
fail() { printf '[wine-client] FAIL: %s\n' "$*" >&2; exit 1; }
missing() { printf '[wine-client] MISSING: %s\n' "$*" >&2; exit 2; }
phase_done() { say "$1 took $((SECONDS - phase_start)) s"; phase_start=$SECONDS; }

# --- prerequisites ---------------------------------------------------------------------------

find_wine() {
    # Debian: the wine64 package has only /usr/lib/wine/wine64; `wine` (package wine) is a
    # wrapper that picks wine32 when installed, else wine64. Prefer the 64-bit loader directly.
    local candidate
    for candidate in "$(command -v wine64 || true)" /usr/lib/wine/wine64 "$(command -v wine || true)"; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    return 1
}

need_packages=()
command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || need_packages+=(gcc-mingw-w64-x86-64)
find_wine >/dev/null || need_packages+=(wine64 wine)
command -v timeout >/dev/null 2>&1 || need_packages+=(coreutils)
if [ "${#need_packages[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing ${need_packages[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq || missing "apt-get update failed"
        apt-get install -y -qq --no-install-recommends "${need_packages[@]}" >/dev/null \
            || missing "apt-get install ${need_packages[*]} failed"
    else
        missing "install ${need_packages[*]} (Debian: apt-get install gcc-mingw-w64-x86-64 wine64 wine)"
    fi
fi
WINE="$(find_wine)" || missing "no wine64 loader after installation"

if command -v rustup >/dev/null 2>&1 \
    && ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET_TRIPLE"; then
    say "adding the Rust target $TARGET_TRIPLE"
    timeout 300 rustup target add "$TARGET_TRIPLE" >/dev/null 2>&1 \
        || missing "the Rust target $TARGET_TRIPLE (rustup target add $TARGET_TRIPLE)"
fi
phase_done "prerequisites"

# --- build -----------------------------------------------------------------------------------

mkdir -p "$WORK"
say "building bcryptprimitives.dll"
x86_64-w64-mingw32-gcc -shared -O2 -Wall -Wextra -Werror -static-libgcc \
    -o "$WORK/bcryptprimitives.dll" "$ROOT/.ci/wine/bcryptprimitives.c" -ladvapi32 \
    || fail "building bcryptprimitives.dll"

say "building synclab.exe for $TARGET_TRIPLE"
(cd "$ROOT" && cargo build --quiet -p synclab-client --target "$TARGET_TRIPLE") \
    || fail "cargo build -p synclab-client --target $TARGET_TRIPLE"
[ -f "$EXE" ] || fail "$EXE was not built"
cp "$WORK/bcryptprimitives.dll" "$EXE_DIR/"
phase_done "build"

# --- Wine prefix -----------------------------------------------------------------------------

# A fresh 64-bit prefix, private to this run. No display is needed: wineboot and console programs
# run without X. Mono and Gecko are disabled so that wineboot never tries to install them.
export WINEPREFIX="$WORK/prefix"
export WINEARCH=win64
export WINEDEBUG=-all
export WINEDLLOVERRIDES="mscoree,mshtml="
export WINELOADER="$WINE"
unset DISPLAY WAYLAND_DISPLAY
rm -rf "$WINEPREFIX"

WINESERVER=""
for candidate in "$(command -v wineserver || true)" /usr/lib/wine/wineserver64 /usr/lib/wine/wineserver; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then
        WINESERVER="$candidate"
        break
    fi
done
cleanup() {
    # Stop this prefix's wineserver (it lingers a few seconds after the last program), then drop
    # the prefix.
    if [ -n "$WINESERVER" ]; then
        "$WINESERVER" -k >/dev/null 2>&1 || true
    fi
    rm -rf "$WINEPREFIX"
}
trap cleanup EXIT

say "creating the Wine prefix ($WINE)"
timeout -k 10 120 "$WINE" wineboot --init >"$WORK/wineboot.log" 2>&1 \
    || { cat "$WORK/wineboot.log" >&2; fail "wineboot --init"; }
if [ -n "$WINESERVER" ]; then
    # Let wineboot's background work finish before the first real run.
    timeout -k 10 60 "$WINESERVER" -w >/dev/null 2>&1 || true
fi
phase_done "wineboot"

# --- the checks ------------------------------------------------------------------------------

run_exe() { # run_exe NAME ARGS...: stdout, stderr and exit code land in $WORK/NAME.{out,err,rc}
    local name="$1"
    shift
    local rc=0
    (cd "$EXE_DIR" && timeout -k 10 "$WINE_TIMEOUT" "$WINE" "$EXE" "$@") \
        >"$WORK/$name.out" 2>"$WORK/$name.err" </dev/null || rc=$?
    printf '%s\n' "$rc" >"$WORK/$name.rc"
    say "synclab.exe $* -> exit $rc"
}
show() { # show NAME: print what a run wrote, for the log
    sed 's/^/    stdout| /' "$WORK/$1.out"
    sed 's/^/    stderr| /' "$WORK/$1.err"
}
explain_load_failure() { # explain_load_failure RC ARGS...: Wine's loader errors, if it never started
    # Wine exits 53 (c0000135) when an imported DLL is missing, e.g. bcryptprimitives.dll or an
    # export Wine 8 lacks; WINEDEBUG=-all hides its message, so run again with errors on.
    [ "$1" = 53 ] || return 0
    shift
    say "synclab.exe did not load; Wine's loader says:"
    (cd "$EXE_DIR" && WINEDEBUG=err+module timeout -k 10 "$WINE_TIMEOUT" "$WINE" "$EXE" "$@") \
        </dev/null 2>&1 | grep ':err:' | sed 's/^/    wine| /' >&2 || true
}

run_exe help --help
show help
help_rc="$(cat "$WORK/help.rc")"
explain_load_failure "$help_rc" --help
[ "$help_rc" = 0 ] || fail "--help exited $help_rc, expected 0"
grep -qw run "$WORK/help.out" || fail "--help does not mention the run command"

run_exe info info
show info
info_rc="$(cat "$WORK/info.rc")"
case "$info_rc" in
    0) fail "info succeeded, but there is no SyncLab device under Wine" ;;
    124 | 137) fail "info timed out after ${WINE_TIMEOUT} s" ;;
esac
explain_load_failure "$info_rc" info
grep -q "no SyncLab device" "$WORK/info.err" \
    || fail "info exited $info_rc without \"no SyncLab device\" on stderr"
phase_done "checks"

say "passed in $((SECONDS - START)) s"
