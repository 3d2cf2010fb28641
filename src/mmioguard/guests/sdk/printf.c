/* PL011 console and a small printf. */
#include "printf.h"
#include "io.h"

#define UARTDR 0x00
#define UARTFR 0x18
#define UARTFR_TXFF (1U << 5)

static volatile u8 *uart = (volatile u8 *)UART_BASE;

void uart_set_base(volatile void *base) { uart = base; }

volatile void *uart_get_base(void) { return uart; }

void uart_putc(char c)
{
	while (readl(uart + UARTFR) & UARTFR_TXFF)
		;
	writel((u8)c, uart + UARTDR);
}

int putchar(int c)
{
	uart_putc((char)c);
	return (u8)c;
}

int puts(const char *s)
{
	int n = 0;

	for (; *s; s++, n++)
		uart_putc(*s);
	uart_putc('\n');
	return n + 1;
}

/* Output sink: the UART, or a buffer for snprintf. */
struct sink {
	bool uart;
	char *buf;
	size_t size;
	size_t len;
};

static void emit(struct sink *out, char c)
{
	if (out->uart)
		uart_putc(c);
	else if (out->len + 1 < out->size)
		out->buf[out->len] = c;
	out->len++;
}

#define F_LEFT 1
#define F_ZERO 2
#define F_ALT 4
#define F_PLUS 8
#define F_SPACE 16

static void emit_padding(struct sink *out, char c, int n)
{
	while (n-- > 0)
		emit(out, c);
}

static void emit_number(struct sink *out, u64 val, bool negative, unsigned int base,
			bool upper, int flags, int width, int precision, const char *prefix)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24];
	int n = 0, ndigits, plen = 0, total;
	char sign = 0;

	do {
		tmp[n++] = digits[val % base];
		val /= base;
	} while (val);
	if (precision == 0 && n == 1 && tmp[0] == '0')
		n = 0;
	ndigits = precision > n ? precision : n;
	if (negative)
		sign = '-';
	else if (flags & F_PLUS)
		sign = '+';
	else if (flags & F_SPACE)
		sign = ' ';
	if (prefix)
		while (prefix[plen])
			plen++;
	total = ndigits + plen + (sign ? 1 : 0);

	if (!(flags & F_LEFT) && !((flags & F_ZERO) && precision < 0))
		emit_padding(out, ' ', width - total);
	if (sign)
		emit(out, sign);
	for (int i = 0; i < plen; i++)
		emit(out, prefix[i]);
	if (!(flags & F_LEFT) && (flags & F_ZERO) && precision < 0)
		emit_padding(out, '0', width - total);
	emit_padding(out, '0', ndigits - n);
	while (n)
		emit(out, tmp[--n]);
	if (flags & F_LEFT)
		emit_padding(out, ' ', width - total);
}

static int format(struct sink *out, const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		int flags = 0, width = 0, precision = -1, lenmod = 0;
		const char *s;

		if (*fmt != '%') {
			emit(out, *fmt);
			continue;
		}
		fmt++;
		for (;; fmt++) {
			if (*fmt == '-')
				flags |= F_LEFT;
			else if (*fmt == '0')
				flags |= F_ZERO;
			else if (*fmt == '#')
				flags |= F_ALT;
			else if (*fmt == '+')
				flags |= F_PLUS;
			else if (*fmt == ' ')
				flags |= F_SPACE;
			else
				break;
		}
		if (*fmt == '*') {
			width = va_arg(ap, int);
			if (width < 0) {
				flags |= F_LEFT;
				width = -width;
			}
			fmt++;
		} else {
			while (*fmt >= '0' && *fmt <= '9')
				width = width * 10 + (*fmt++ - '0');
		}
		if (*fmt == '.') {
			fmt++;
			precision = 0;
			if (*fmt == '*') {
				precision = va_arg(ap, int);
				fmt++;
			} else {
				while (*fmt >= '0' && *fmt <= '9')
					precision = precision * 10 + (*fmt++ - '0');
			}
		}
		/* lenmod: -2 hh, -1 h, 0 int, 1 long / long long / size_t / intmax_t */
		for (;; fmt++) {
			if (*fmt == 'h')
				lenmod--;
			else if (*fmt == 'l' || *fmt == 'z' || *fmt == 'j' || *fmt == 't')
				lenmod = 1;
			else
				break;
		}

		switch (*fmt) {
		case 'd':
		case 'i': {
			s64 v;

			if (lenmod > 0)
				v = va_arg(ap, s64);
			else if (lenmod == -1)
				v = (s16)va_arg(ap, int);
			else if (lenmod <= -2)
				v = (s8)va_arg(ap, int);
			else
				v = va_arg(ap, int);
			emit_number(out, v < 0 ? -(u64)v : (u64)v, v < 0, 10, false, flags, width,
				    precision, NULL);
			break;
		}
		case 'u':
		case 'x':
		case 'X':
		case 'o': {
			u64 v;
			unsigned int base = *fmt == 'u' ? 10 : *fmt == 'o' ? 8 : 16;
			const char *prefix = NULL;

			if (lenmod > 0)
				v = va_arg(ap, u64);
			else if (lenmod == -1)
				v = (u16)va_arg(ap, unsigned int);
			else if (lenmod <= -2)
				v = (u8)va_arg(ap, unsigned int);
			else
				v = va_arg(ap, unsigned int);
			if ((flags & F_ALT) && v) {
				if (base == 16)
					prefix = *fmt == 'X' ? "0X" : "0x";
				else if (base == 8)
					prefix = "0";
			}
			emit_number(out, v, false, base, *fmt == 'X', flags & ~(F_PLUS | F_SPACE),
				    width, precision, prefix);
			break;
		}
		case 'p':
			emit_number(out, (u64)(uintptr_t)va_arg(ap, void *), false, 16, false,
				    flags & ~(F_PLUS | F_SPACE), width, precision, "0x");
			break;
		case 'c': {
			char c = (char)va_arg(ap, int);

			if (!(flags & F_LEFT))
				emit_padding(out, ' ', width - 1);
			emit(out, c);
			if (flags & F_LEFT)
				emit_padding(out, ' ', width - 1);
			break;
		}
		case 's': {
			int len = 0;

			s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			while (s[len] && (precision < 0 || len < precision))
				len++;
			if (!(flags & F_LEFT))
				emit_padding(out, ' ', width - len);
			for (int i = 0; i < len; i++)
				emit(out, s[i]);
			if (flags & F_LEFT)
				emit_padding(out, ' ', width - len);
			break;
		}
		case '%':
			emit(out, '%');
			break;
		case '\0':
			return (int)out->len;
		default:
			emit(out, '%');
			emit(out, *fmt);
			break;
		}
	}
	return (int)out->len;
}

int vprintf(const char *fmt, va_list ap)
{
	struct sink out = { true, NULL, 0, 0 };

	return format(&out, fmt, ap);
}

int printf(const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vprintf(fmt, ap);
	va_end(ap);
	return n;
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct sink out = { false, buf, size, 0 };
	int n = format(&out, fmt, ap);

	if (size)
		buf[out.len < size ? out.len : size - 1] = '\0';
	return n;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}
