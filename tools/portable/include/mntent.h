/* make check-portable: a header that only Linux (glibc) has. */
#error "<mntent.h> is Linux-only (macOS has no such header): use a wrapper in src/platform/platform.c"
