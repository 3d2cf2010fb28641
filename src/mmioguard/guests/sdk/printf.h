/*
 * Console output on the PL011 UART (polled: waits while UARTFR.TXFF is set,
 * then writes UARTDR with a 32-bit store).  Bytes are sent as they are (no
 * "\n" -> "\r\n" translation).  Not SMP-safe: serialise output yourself.
 *
 * printf supports %d %i %u %x %X %o %c %s %p %%, the length modifiers hh h l
 * ll z j t, flags '-' '0' '#' '+' ' ', a width (number or *) and a precision
 * (for %s, and the minimum digits for integers).  %p prints 0x followed by
 * the hex value.  Everything returns the number of characters produced.
 */
#ifndef MMIOGUARD_PRINTF_H
#define MMIOGUARD_PRINTF_H

#include "types.h"

/* Where the console lives; UART_BASE (0x09000000) until changed. */
void uart_set_base(volatile void *base);
volatile void *uart_get_base(void);
void uart_putc(char c);

int putchar(int c);
int puts(const char *s); /* writes s and a newline, like libc */
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);

#endif
