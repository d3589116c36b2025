/*
 * DbgPrint and DbgPrintEx for ntsim.
 *
 * Both are C-variadic, which stable Rust cannot define, so they live here. Arguments are read
 * with Windows' conventions, not the host's: LLP64 (`%ld`/`%lu`/`%lx` are 32-bit), `%I64`/`%ll`
 * 64-bit, `%I`/`%z` pointer-sized, `%ws`/`%S`/`%ls` UTF-16 strings, `%wZ` a PUNICODE_STRING,
 * `%Z` a PANSI_STRING, `%p` 16 upper-case hex digits. Output is cut at 512 bytes, as DbgPrint
 * does, then handed to ntsim_debug_output (Rust), which appends it to the machine's log.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef uint32_t ULONG;

typedef struct {
    uint16_t Length;
    uint16_t MaximumLength;
    const uint16_t *Buffer;
} ntsim_unicode_string;

typedef struct {
    uint16_t Length;
    uint16_t MaximumLength;
    const char *Buffer;
} ntsim_ansi_string;

void ntsim_debug_output(const char *text);

enum { OUT_MAX = 512 };

struct out {
    char buf[OUT_MAX];
    size_t len;
};

static void put(struct out *o, const char *s, size_t n) {
    size_t room = OUT_MAX - 1 - o->len;
    if (n > room) n = room;
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

/* UTF-16 (count < 0: NUL-terminated) to UTF-8 into dst (cap bytes, NUL-terminated). */
static void utf16_to_utf8(char *dst, size_t cap, const uint16_t *src, long count) {
    size_t n = 0;
    if (!src) {
        snprintf(dst, cap, "(null)");
        return;
    }
    for (long i = 0; (count < 0 ? src[i] != 0 : i < count) && n + 4 < cap; i++) {
        uint32_t c = src[i];
        if (c >= 0xD800 && c < 0xDC00 && (count < 0 || i + 1 < count) && src[i + 1] >= 0xDC00 &&
            src[i + 1] < 0xE000) {
            c = 0x10000 + ((c - 0xD800) << 10) + (src[i + 1] - 0xDC00);
            i++;
        }
        if (c < 0x80) {
            dst[n++] = (char)c;
        } else if (c < 0x800) {
            dst[n++] = (char)(0xC0 | (c >> 6));
            dst[n++] = (char)(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            dst[n++] = (char)(0xE0 | (c >> 12));
            dst[n++] = (char)(0x80 | ((c >> 6) & 0x3F));
            dst[n++] = (char)(0x80 | (c & 0x3F));
        } else {
            dst[n++] = (char)(0xF0 | (c >> 18));
            dst[n++] = (char)(0x80 | ((c >> 12) & 0x3F));
            dst[n++] = (char)(0x80 | ((c >> 6) & 0x3F));
            dst[n++] = (char)(0x80 | (c & 0x3F));
        }
    }
    dst[n] = 0;
}

static void format_windows(struct out *o, const char *fmt, va_list ap) {
    char spec[32], tmp[OUT_MAX], wide[OUT_MAX];
    while (*fmt) {
        if (*fmt != '%') {
            const char *start = fmt;
            while (*fmt && *fmt != '%') fmt++;
            put(o, start, (size_t)(fmt - start));
            continue;
        }
        const char *start = fmt++;
        if (*fmt == '%') {
            put(o, "%", 1);
            fmt++;
            continue;
        }
        /* flags, width, precision: copied into a host spec, '*' resolved now. */
        size_t s = 0;
        spec[s++] = '%';
        while (*fmt && strchr("-+ #0", *fmt) && s < 8) spec[s++] = *fmt++;
        if (*fmt == '*') {
            s += (size_t)snprintf(spec + s, sizeof spec - s, "%d", va_arg(ap, int));
            fmt++;
        } else {
            while (*fmt >= '0' && *fmt <= '9' && s < 16) spec[s++] = *fmt++;
        }
        if (*fmt == '.') {
            spec[s++] = *fmt++;
            if (*fmt == '*') {
                s += (size_t)snprintf(spec + s, sizeof spec - s, "%d", va_arg(ap, int));
                fmt++;
            } else {
                while (*fmt >= '0' && *fmt <= '9' && s < 24) spec[s++] = *fmt++;
            }
        }
        /* length modifier, Windows meaning: 0 default (32-bit), 'h' short/narrow, 'l' 32-bit
           or wide, 'L' 64-bit, 'w' wide. */
        int size64 = 0, wide_mod = 0, narrow = 0;
        if (fmt[0] == 'I' && fmt[1] == '6' && fmt[2] == '4') {
            size64 = 1;
            fmt += 3;
        } else if (fmt[0] == 'I' && fmt[1] == '3' && fmt[2] == '2') {
            fmt += 3;
        } else if (fmt[0] == 'l' && fmt[1] == 'l') {
            size64 = 1;
            fmt += 2;
        } else if (*fmt == 'I' || *fmt == 'z' || *fmt == 'j' || *fmt == 't') {
            size64 = 1;
            fmt++;
        } else if (*fmt == 'l' || *fmt == 'w') {
            wide_mod = 1;
            fmt++;
        } else if (*fmt == 'h') {
            narrow = 1;
            fmt++;
            if (*fmt == 'h') fmt++;
        }
        char conv = *fmt ? *fmt++ : 0;
        spec[s] = 0;
        switch (conv) {
        case 'd': case 'i': case 'u': case 'x': case 'X': case 'o':
            if (size64) {
                strcat(spec, "ll");
                size_t t = strlen(spec);
                spec[t] = conv;
                spec[t + 1] = 0;
                if (conv == 'd' || conv == 'i')
                    snprintf(tmp, sizeof tmp, spec, va_arg(ap, long long));
                else
                    snprintf(tmp, sizeof tmp, spec, va_arg(ap, unsigned long long));
            } else {
                spec[s] = conv;
                spec[s + 1] = 0;
                if (conv == 'd' || conv == 'i')
                    snprintf(tmp, sizeof tmp, spec, narrow ? (int)(short)va_arg(ap, int) : va_arg(ap, int));
                else
                    snprintf(tmp, sizeof tmp, spec,
                             narrow ? (unsigned)(unsigned short)va_arg(ap, unsigned) : va_arg(ap, unsigned));
            }
            put(o, tmp, strlen(tmp));
            break;
        case 'p':
            snprintf(tmp, sizeof tmp, "%016llX", (unsigned long long)(uintptr_t)va_arg(ap, void *));
            put(o, tmp, strlen(tmp));
            break;
        case 'c': case 'C': {
            int c = va_arg(ap, int);
            if ((conv == 'C' && !narrow) || wide_mod) {
                uint16_t w[2] = {(uint16_t)c, 0};
                utf16_to_utf8(wide, sizeof wide, w, 1);
            } else {
                wide[0] = (char)c;
                wide[1] = 0;
            }
            strcat(spec, "s");
            snprintf(tmp, sizeof tmp, spec, wide);
            put(o, tmp, strlen(tmp));
            break;
        }
        case 's': case 'S': {
            const char *text;
            if ((conv == 'S' && !narrow) || (conv == 's' && wide_mod)) {
                utf16_to_utf8(wide, sizeof wide, va_arg(ap, const uint16_t *), -1);
                text = wide;
            } else {
                text = va_arg(ap, const char *);
                if (!text) text = "(null)";
            }
            strcat(spec, "s");
            snprintf(tmp, sizeof tmp, spec, text);
            put(o, tmp, strlen(tmp));
            break;
        }
        case 'Z': {
            if (wide_mod) {
                const ntsim_unicode_string *u = va_arg(ap, const ntsim_unicode_string *);
                if (u)
                    utf16_to_utf8(wide, sizeof wide, u->Buffer, u->Length / 2);
                else
                    snprintf(wide, sizeof wide, "(null)");
            } else {
                const ntsim_ansi_string *a = va_arg(ap, const ntsim_ansi_string *);
                if (a && a->Buffer)
                    snprintf(wide, sizeof wide, "%.*s", (int)a->Length, a->Buffer);
                else
                    snprintf(wide, sizeof wide, "(null)");
            }
            strcat(spec, "s");
            snprintf(tmp, sizeof tmp, spec, wide);
            put(o, tmp, strlen(tmp));
            break;
        }
        default:
            /* Unknown conversion: print it as written, consume nothing. */
            put(o, start, (size_t)(fmt - start));
            break;
        }
    }
}

ULONG DbgPrint(const char *Format, ...) {
    struct out o = {{0}, 0};
    va_list ap;
    va_start(ap, Format);
    if (Format) format_windows(&o, Format, ap);
    va_end(ap);
    o.buf[o.len] = 0;
    ntsim_debug_output(o.buf);
    return 0; /* STATUS_SUCCESS */
}

ULONG DbgPrintEx(ULONG ComponentId, ULONG Level, const char *Format, ...) {
    struct out o = {{0}, 0};
    va_list ap;
    (void)ComponentId;
    (void)Level;
    va_start(ap, Format);
    if (Format) format_windows(&o, Format, ap);
    va_end(ap);
    o.buf[o.len] = 0;
    ntsim_debug_output(o.buf);
    return 0;
}
