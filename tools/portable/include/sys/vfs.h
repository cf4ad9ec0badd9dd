/* make check-portable: a header that only Linux (glibc) has. */
#error "<sys/vfs.h> is Linux-only (macOS has no such header): use a wrapper in src/platform/platform.c"
