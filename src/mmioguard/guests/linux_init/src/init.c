// SPDX-License-Identifier: GPL-2.0-only
/*
 * /init of the mmioguard Linux guest's initramfs.
 *
 * Built static against musl by mmioguard.linux.build (zig cc -target
 * aarch64-linux-musl).  It runs as PID 1 and, one line per step, each line
 * starting with "init:":
 *
 *   1. prints a banner with the kernel's uptime;
 *   2. mounts devtmpfs on /dev and proc on /proc (unless already mounted);
 *   3. reads the PL031 through /dev/rtc0 (RTC_RD_TIME) and prints the time;
 *   4. maps through /dev/mem the page at PROBE_PHYS, which no driver ioremapped,
 *      and loads a word from it.  Under a hypervisor that enforces the MMIO
 *      guard the load is aborted, the kernel delivers SIGBUS and the handler
 *      reports it; elsewhere the load reaches the VMM and its value is printed;
 *   5. syncs and powers the machine off with reboot(RB_POWER_OFF).
 *
 * A step that fails prints why and the program goes on to the next one; if the
 * power-off itself fails it exits, and the kernel panics ("Attempted to kill
 * init"), which a test sees as clearly as a clean power-off.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/rtc.h>

#ifndef PROBE_PHYS
#define PROBE_PHYS 0x0a000000UL
#endif
#define PROBE_SIZE 4096UL
/* Where to ask for the mapping: a fixed hint instead of a randomized address,
 * so that two runs print the same lines. */
#define PROBE_HINT 0x200000000UL

static sigjmp_buf probe_env;
static volatile sig_atomic_t probe_signal;
static volatile uintptr_t probe_addr;
static volatile int probe_code;

/* One line, one write(2): lines never interleave and nothing stays buffered. */
__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
	char line[256] = "init: ";
	size_t len = strlen(line);
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line + len, sizeof(line) - len - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	len += (size_t)n < sizeof(line) - len - 1 ? (size_t)n : sizeof(line) - len - 2;
	line[len++] = '\n';
	while (len > 0) {
		ssize_t done = write(STDOUT_FILENO, line, len);
		if (done <= 0)
			return;
		memmove(line, line + done, len - (size_t)done);
		len -= (size_t)done;
	}
}

/* The kernel opens /dev/console from the initramfs for fds 0-2; if it could
 * not, reopen it from devtmpfs once that is mounted. */
static void ensure_console(void)
{
	int fd;

	if (fcntl(STDOUT_FILENO, F_GETFD) != -1)
		return;
	fd = open("/dev/console", O_RDWR | O_NOCTTY);
	if (fd < 0)
		return;
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
}

static void mount_fs(const char *source, const char *target, const char *type)
{
	mkdir(target, 0755);
	if (mount(source, target, type, 0, NULL) == 0)
		say("mounted %s on %s", type, target);
	else if (errno == EBUSY)
		say("%s already mounted on %s", type, target);
	else
		say("cannot mount %s on %s: %s", type, target, strerror(errno));
}

static void read_rtc(void)
{
	struct rtc_time tm;
	int fd = open("/dev/rtc0", O_RDONLY);

	if (fd < 0) {
		say("cannot open /dev/rtc0: %s", strerror(errno));
		return;
	}
	memset(&tm, 0, sizeof(tm));
	if (ioctl(fd, RTC_RD_TIME, &tm) != 0)
		say("RTC_RD_TIME on /dev/rtc0 failed: %s", strerror(errno));
	else
		say("RTC /dev/rtc0 reads %04d-%02d-%02d %02d:%02d:%02d UTC", tm.tm_year + 1900,
		    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	close(fd);
}

/* SIGBUS is what Linux delivers for an external abort on a user access; a
 * SIGSEGV (a hypervisor injecting the wrong fault) is caught and named too, so
 * that it is reported instead of killing PID 1. */
static void on_fault(int sig, siginfo_t *info, void *context)
{
	(void)context;
	probe_signal = sig;
	probe_addr = (uintptr_t)info->si_addr;
	probe_code = info->si_code;
	siglongjmp(probe_env, 1);
}

static void probe_device_page(void)
{
	struct sigaction action;
	volatile uint32_t *page;
	uint32_t value;
	void *map;
	int fd;

	fd = open("/dev/mem", O_RDONLY | O_SYNC);
	if (fd < 0) {
		say("cannot open /dev/mem: %s", strerror(errno));
		return;
	}
	map = mmap((void *)PROBE_HINT, PROBE_SIZE, PROT_READ, MAP_SHARED, fd, (off_t)PROBE_PHYS);
	close(fd);
	if (map == MAP_FAILED) {
		say("cannot map physical 0x%08lx through /dev/mem: %s", PROBE_PHYS,
		    strerror(errno));
		return;
	}
	say("mapped physical 0x%08lx at %p through /dev/mem; reading it", PROBE_PHYS, map);

	memset(&action, 0, sizeof(action));
	action.sa_sigaction = on_fault;
	action.sa_flags = SA_SIGINFO;
	sigemptyset(&action.sa_mask);
	if (sigaction(SIGBUS, &action, NULL) != 0 || sigaction(SIGSEGV, &action, NULL) != 0) {
		say("cannot install the SIGBUS handler: %s", strerror(errno));
		munmap(map, PROBE_SIZE);
		return;
	}

	page = (volatile uint32_t *)map;
	if (sigsetjmp(probe_env, 1) == 0) {
		value = page[0];
		say("read 0x%08x from 0x%08lx: the access reached the VMM", (unsigned)value,
		    PROBE_PHYS);
	} else {
		say("%s at 0x%lx (si_code %d): the hypervisor refused the access",
		    probe_signal == SIGBUS ? "SIGBUS" : "SIGSEGV", (unsigned long)probe_addr,
		    (int)probe_code);
	}
	signal(SIGBUS, SIG_DFL);
	signal(SIGSEGV, SIG_DFL);
	munmap(map, PROBE_SIZE);
}

int main(void)
{
	struct timespec up;

	ensure_console();
	if (clock_gettime(CLOCK_MONOTONIC, &up) != 0)
		up.tv_sec = up.tv_nsec = 0;
	say("mmioguard initramfs /init started as pid %d, uptime %ld.%06ld s", (int)getpid(),
	    (long)up.tv_sec, (long)(up.tv_nsec / 1000));

	mount_fs("devtmpfs", "/dev", "devtmpfs");
	ensure_console();
	mount_fs("proc", "/proc", "proc");

	read_rtc();
	probe_device_page();

	say("syncing and powering off");
	sync();
	reboot(RB_POWER_OFF);
	say("reboot(RB_POWER_OFF) failed: %s", strerror(errno));
	return 1;
}
