/* The few libc string functions a guest needs (the compiler may call these). */
#ifndef MMIOGUARD_LIB_H
#define MMIOGUARD_LIB_H

#include "types.h"

void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);

/* Address of the device tree passed in x0 at boot (0 if none). */
u64 boot_dtb(void);

/* Power off with SYSTEM_OFF; a non-zero code first prints "exit code N" and "FAIL". */
__noreturn void exit(int code);

/* The guest's entry point, called by the SDK at EL1 with x0 from the loader. */
int main(u64 dtb);

#endif
