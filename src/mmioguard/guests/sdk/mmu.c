/* Stage-1 identity map with a run-time selectable granule (see mmu.h). */
#include "mmu.h"
#include "asm-defs.h"
#include "internal.h"
#include "sysreg.h"

#define VA_BITS 39

/* Descriptor bits. */
#define PTE_VALID (1ULL << 0)
#define PTE_TABLE (1ULL << 1) /* table at level 0-2, page at level 3 */
#define PTE_ATTRINDX(i) ((u64)(i) << 2)
#define PTE_AP_USER (1ULL << 6)
#define PTE_AP_RDONLY (1ULL << 7)
#define PTE_SH_INNER (3ULL << 8)
#define PTE_AF (1ULL << 10)
#define PTE_PXN (1ULL << 53)
#define PTE_UXN (1ULL << 54)
#define PTE_ATTR_MASK 0xfff0000000000ffcULL
#define PTE_ADDR_MASK 0x0000ffffffffffffULL

/* TCR_EL1 fields. */
#define TCR_T0SZ(n) ((u64)(64 - (n)))
#define TCR_IRGN0_WBWA (1ULL << 8)
#define TCR_ORGN0_WBWA (1ULL << 10)
#define TCR_SH0_INNER (3ULL << 12)
#define TCR_TG0_4K (0ULL << 14)
#define TCR_TG0_64K (1ULL << 14)
#define TCR_TG0_16K (2ULL << 14)
#define TCR_T1SZ(n) ((u64)(64 - (n)) << 16)
#define TCR_EPD1 (1ULL << 23)
#define TCR_TG1_4K (2ULL << 30)
#define TCR_IPS_SHIFT 32

enum op_kind { OP_MAP, OP_UNMAP, OP_USER_SET, OP_USER_CLEAR };

struct change {
	u64 start, end;
	enum op_kind kind;
	unsigned int attr_idx, flags;
};

struct pt_cfg {
	unsigned int gshift;      /* 12, 14 or 16 */
	unsigned int bits;        /* index bits per level: gshift - 3 */
	unsigned int start_level; /* level of the root table */
	unsigned int top_bits;    /* index bits of the root table */
};

extern u8 __text_start[], __text_end[], __pgtables_start[], __pgtables_end[];

static u64 ram_size = SZ_128M;
static struct change changes[MMU_MAX_CHANGES];
static unsigned int nr_changes;

static struct pt_cfg cfg;
static uintptr_t pool_next;
static u64 *root;

/* What a secondary CPU needs to join (mmu_secondary_init). */
static struct {
	volatile bool on;
	unsigned long granule;
	u64 tcr, ttbr0, sctlr;
} state;

static unsigned int level_shift(unsigned int level)
{
	return cfg.gshift + (3 - level) * cfg.bits;
}

static bool block_ok(unsigned int level)
{
	return level == 2 || (level == 1 && cfg.gshift == 12);
}

static u64 out_addr_mask(unsigned int level)
{
	return PTE_ADDR_MASK & ~((1ULL << level_shift(level)) - 1);
}

static u64 *alloc_table(void)
{
	u64 size = 1ULL << cfg.gshift;
	uintptr_t p = ALIGN_UP(pool_next, size);
	volatile u64 *t = (volatile u64 *)p;

	if (p + size > (uintptr_t)__pgtables_end)
		return NULL;
	pool_next = p + size;
	for (u64 i = 0; i < size / 8; i++)
		t[i] = 0;
	return (u64 *)p;
}

static u64 *table_of(u64 desc)
{
	return (u64 *)(uintptr_t)(desc & PTE_ADDR_MASK & ~((1ULL << cfg.gshift) - 1));
}

static u64 leaf_attrs(unsigned int attr_idx, unsigned int flags)
{
	bool device = attr_idx == MT_DEVICE_nGnRE || attr_idx == MT_DEVICE_nGnRnE;
	u64 d = PTE_AF | PTE_SH_INNER | PTE_ATTRINDX(attr_idx);

	if (flags & MMU_USER)
		d |= PTE_AP_USER;
	if (flags & MMU_RDONLY)
		d |= PTE_AP_RDONLY;
	if (device || !(flags & MMU_EXEC))
		d |= PTE_PXN | PTE_UXN;
	else if (!(flags & MMU_USER))
		d |= PTE_UXN;
	return d;
}

/* New leaf (block or page) descriptor at `level` for `va`, from the old one. */
static u64 new_leaf(u64 old, u64 va, const struct change *c, unsigned int level)
{
	u64 type = level == 3 ? (PTE_VALID | PTE_TABLE) : PTE_VALID;

	switch (c->kind) {
	case OP_MAP:
		return leaf_attrs(c->attr_idx, c->flags) | (va & out_addr_mask(level)) | type;
	case OP_UNMAP:
		return 0;
	case OP_USER_SET:
		return (old & PTE_VALID) ? old | PTE_AP_USER : old;
	case OP_USER_CLEAR:
		return old & ~PTE_AP_USER;
	}
	return old;
}

/* Replace a block at `level` by a table of level + 1 entries mapping the same. */
static u64 *split_block(u64 desc, unsigned int level)
{
	u64 *t = alloc_table();
	unsigned int child = level + 1;
	u64 span = 1ULL << level_shift(child);
	u64 base = desc & out_addr_mask(level);
	u64 attrs = desc & PTE_ATTR_MASK;
	u64 type = child == 3 ? (PTE_VALID | PTE_TABLE) : PTE_VALID;
	u64 n = 1ULL << cfg.bits;

	if (!t)
		return NULL;
	for (u64 i = 0; i < n; i++)
		t[i] = attrs | (base + i * span) | type;
	return t;
}

static int walk(u64 *table, unsigned int level, u64 va, u64 end, const struct change *c)
{
	unsigned int shift = level_shift(level);
	unsigned int nbits = level == cfg.start_level ? cfg.top_bits : cfg.bits;
	u64 span = 1ULL << shift;

	while (va < end) {
		u64 idx = (va >> shift) & ((1ULL << nbits) - 1);
		u64 next = (va & ~(span - 1)) + span;
		u64 stop = next < end ? next : end;
		volatile u64 *e = &table[idx];
		u64 desc = *e;
		bool whole = (va & (span - 1)) == 0 && stop == next;
		bool valid = desc & PTE_VALID;
		bool is_table = valid && (desc & PTE_TABLE) && level < 3;

		if (level == 3) {
			*e = new_leaf(desc, va, c, level);
		} else if (whole && c->kind == OP_MAP && block_ok(level)) {
			*e = new_leaf(desc, va, c, level);
		} else if (whole && c->kind == OP_UNMAP) {
			*e = 0;
		} else if (whole && valid && !is_table) {
			*e = new_leaf(desc, va, c, level);
		} else if (!valid && c->kind != OP_MAP) {
			/* nothing mapped here: nothing to unmap or change */
		} else {
			u64 *next_table;

			if (!valid)
				next_table = alloc_table();
			else if (!is_table)
				next_table = split_block(desc, level);
			else
				next_table = table_of(desc);
			if (!next_table)
				return MMU_ENOMEM;
			if (!is_table)
				*e = (u64)(uintptr_t)next_table | PTE_VALID | PTE_TABLE;
			if (walk(next_table, level + 1, va, stop, c))
				return MMU_ENOMEM;
		}
		va = stop;
	}
	return 0;
}

static int apply(const struct change *c)
{
	u64 g = 1ULL << cfg.gshift;
	u64 start = ALIGN_DOWN(c->start, g);
	u64 end = ALIGN_UP(c->end, g);

	if (end > (1ULL << VA_BITS))
		end = 1ULL << VA_BITS;
	return walk(root, cfg.start_level, start, end, c);
}

static int configure(unsigned long granule)
{
	switch (granule) {
	case SZ_4K: cfg.gshift = 12; break;
	case SZ_16K: cfg.gshift = 14; break;
	case SZ_64K: cfg.gshift = 16; break;
	default: return MMU_EINVAL;
	}
	cfg.bits = cfg.gshift - 3;
	for (int level = 3; level >= 0; level--) {
		cfg.start_level = (unsigned int)level;
		if (level_shift((unsigned int)level) + cfg.bits >= VA_BITS)
			break;
	}
	cfg.top_bits = VA_BITS - level_shift(cfg.start_level);
	return 0;
}

static int build_tables(unsigned long granule)
{
	const struct change defaults[] = {
		{ RAM_BASE, RAM_BASE + ram_size, OP_MAP, MT_NORMAL, MMU_USER },
		{ (uintptr_t)__text_start, (uintptr_t)__text_end, OP_MAP, MT_NORMAL,
		  MMU_USER | MMU_RDONLY | MMU_EXEC },
		{ DEVICE_WINDOW_BASE, DEVICE_WINDOW_END, OP_MAP, MT_DEVICE_nGnRE, 0 },
	};
	int ret = configure(granule);

	if (ret)
		return ret;
	pool_next = (uintptr_t)__pgtables_start;
	root = alloc_table();
	if (!root)
		return MMU_ENOMEM;
	for (unsigned int i = 0; i < ARRAY_SIZE(defaults); i++)
		if ((ret = apply(&defaults[i])))
			return ret;
	for (unsigned int i = 0; i < nr_changes; i++)
		if ((ret = apply(&changes[i])))
			return ret;
	return 0;
}

bool mmu_granule_supported(unsigned long granule)
{
	u64 mmfr0 = read_sysreg(id_aa64mmfr0_el1);

	switch (granule) {
	case SZ_4K: return ((mmfr0 >> 28) & 0xf) != 0xf;
	case SZ_16K: return ((mmfr0 >> 20) & 0xf) != 0;
	case SZ_64K: return ((mmfr0 >> 24) & 0xf) != 0xf;
	default: return false;
	}
}

void mmu_set_ram_size(u64 size) { ram_size = size; }

static void tlb_flush_local(void)
{
	dsb(ish);
	asm volatile("tlbi vmalle1" ::: "memory");
	dsb(ish);
	isb();
}

static void load_and_enable(void)
{
	write_sysreg(MAIR_EL1_VALUE, mair_el1);
	write_sysreg(state.tcr, tcr_el1);
	write_sysreg(state.ttbr0, ttbr0_el1);
	isb();
	tlb_flush_local();
	write_sysreg(state.sctlr, sctlr_el1);
	isb();
}

int mmu_enable(unsigned long granule)
{
	u64 tg, parange;
	int ret;

	if (granule != SZ_4K && granule != SZ_16K && granule != SZ_64K)
		return MMU_EINVAL;
	if (!mmu_granule_supported(granule))
		return MMU_ENOTSUPP;
	if (state.on)
		mmu_disable();
	ret = build_tables(granule);
	if (ret)
		return ret;

	tg = granule == SZ_4K ? TCR_TG0_4K : granule == SZ_16K ? TCR_TG0_16K : TCR_TG0_64K;
	parange = read_sysreg(id_aa64mmfr0_el1) & 0xf;
	if (parange > 5)
		parange = 5;
	state.tcr = TCR_T0SZ(VA_BITS) | TCR_IRGN0_WBWA | TCR_ORGN0_WBWA | TCR_SH0_INNER | tg |
		    TCR_T1SZ(VA_BITS) | TCR_EPD1 | TCR_TG1_4K | (parange << TCR_IPS_SHIFT);
	state.ttbr0 = (u64)(uintptr_t)root;
	state.sctlr = read_sysreg(sctlr_el1) | SCTLR_EL1_M | SCTLR_EL1_C | SCTLR_EL1_I;
	state.granule = granule;
	dsb(sy);
	load_and_enable();
	state.on = true;
	return 0;
}

void mmu_disable(void)
{
	u64 sctlr = read_sysreg(sctlr_el1);

	write_sysreg(sctlr & ~(u64)(SCTLR_EL1_M | SCTLR_EL1_C), sctlr_el1);
	isb();
	tlb_flush_local();
	state.on = false;
}

bool mmu_enabled(void) { return state.on; }

unsigned long mmu_granule(void) { return state.on ? state.granule : 0; }

void mmu_secondary_init(void)
{
	if (state.on)
		load_and_enable();
}

static int rebuild_if_on(void)
{
	if (!state.on)
		return 0;
	return mmu_enable(state.granule);
}

static int add_change(u64 pa, u64 size, enum op_kind kind, unsigned int attr_idx,
		      unsigned int flags)
{
	struct change *c;

	if (size == 0 || pa + size < pa || pa + size > (1ULL << VA_BITS) || attr_idx > 7)
		return MMU_EINVAL;
	if (nr_changes >= MMU_MAX_CHANGES)
		return MMU_ENOMEM;
	c = &changes[nr_changes++];
	c->start = pa;
	c->end = pa + size;
	c->kind = kind;
	c->attr_idx = attr_idx;
	c->flags = flags;
	return rebuild_if_on();
}

int mmu_map(u64 pa, u64 size, unsigned int attr_idx, unsigned int flags)
{
	return add_change(pa, size, OP_MAP, attr_idx, flags);
}

int mmu_map_device(u64 pa, u64 size) { return mmu_map(pa, size, MT_DEVICE_nGnRE, 0); }

int mmu_map_normal(u64 pa, u64 size) { return mmu_map(pa, size, MT_NORMAL, 0); }

int mmu_unmap(u64 pa, u64 size) { return add_change(pa, size, OP_UNMAP, 0, 0); }

int mmu_set_user(u64 pa, u64 size, bool user)
{
	return add_change(pa, size, user ? OP_USER_SET : OP_USER_CLEAR, 0, 0);
}

void mmu_reset_map(void)
{
	nr_changes = 0;
	rebuild_if_on();
}

u64 mmu_at_s1e1r(u64 va)
{
	asm volatile("at s1e1r, %0" ::"r"(va) : "memory");
	isb();
	return read_sysreg(par_el1);
}
