/*
 * The benchmark guest: runs one loop of loops.S, chosen at build time, then powers off.
 * BENCH: 1 compute, 2 memory, 3 mmio, 4 hvc, 5 map_unmap, 6 abort (unassigned address),
 * 7 touch all RAM pages, 8 abort (a device whose granule is not mapped), 9 the mmio loop
 * without the guard calls, 10 PSCI_VERSION hypercalls (9 and 10 also run on QEMU TCG).
 */
#include "guest.h"

#ifndef BENCH
#define BENCH 1
#endif
#ifndef ITERATIONS
#define ITERATIONS 1000000
#endif

void bench_compute(u64 n);
void bench_memory(u64 n);
void bench_mmio(u64 n);
void bench_mmio_plain(u64 n);
void bench_psci_version(u64 n);
void bench_hvc(u64 n);
void bench_map_unmap(u64 n);
void bench_abort(u64 n);
void bench_abort_device(u64 n);
void bench_touch(u64 start, u64 end);
extern char __image_end[];

int main(u64 dtb)
{
	(void)dtb;
	switch (BENCH) {
	case 1: bench_compute(ITERATIONS); break;
	case 2: bench_memory(ITERATIONS); break;
	case 3: bench_mmio(ITERATIONS); break;
	case 4: bench_hvc(ITERATIONS); break;
	case 5: bench_map_unmap(ITERATIONS); break;
	case 6: bench_abort(ITERATIONS); break;
	case 7: bench_touch(((u64)__image_end + 4095) & ~4095ULL, RAM_BASE + (126ULL << 20)); break;
	case 8: bench_abort_device(ITERATIONS); break;
	case 9: bench_mmio_plain(ITERATIONS); break;
	case 10: bench_psci_version(ITERATIONS); break;
	}
	return 0;
}
