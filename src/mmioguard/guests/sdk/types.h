/* Basic types for mmioguard guests (freestanding AArch64). */
#ifndef MMIOGUARD_TYPES_H
#define MMIOGUARD_TYPES_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int8_t s8;
typedef int16_t s16;
typedef int32_t s32;
typedef int64_t s64;

#define __noreturn __attribute__((noreturn))
#define __unused __attribute__((unused))
#define __aligned(x) __attribute__((aligned(x)))
#define __weak __attribute__((weak))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ALIGN_DOWN(x, a) ((x) & ~((u64)(a) - 1))
#define ALIGN_UP(x, a) (((x) + (u64)(a) - 1) & ~((u64)(a) - 1))
#define IS_ALIGNED(x, a) (((x) & ((u64)(a) - 1)) == 0)

#define SZ_4K 0x1000UL
#define SZ_16K 0x4000UL
#define SZ_64K 0x10000UL
#define SZ_1M 0x100000UL
#define SZ_2M 0x200000UL
#define SZ_64M 0x4000000UL
#define SZ_128M 0x8000000UL

/* The virt machine (see docs: virt-machine.md). */
#define RAM_BASE 0x40000000UL
#define UART_BASE 0x09000000UL
#define RTC_BASE 0x09010000UL
#define DEVICE_WINDOW_BASE 0x08000000UL
#define DEVICE_WINDOW_END 0x10000000UL

#define NR_CPUS 8
#define STACK_SIZE 0x4000UL

#endif
