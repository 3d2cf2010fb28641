/*
 * mmioguard native fast path: the guest clock and the architected virtual timer.
 * See mgtimer.h; mmioguard.hyp.timer is the reference model.
 */
#define _POSIX_C_SOURCE 199309L

#include "mgtimer.h"

#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#define MG_API __attribute__((visibility("default")))

#define MG_MAGIC_CLOCK 0x4d47434cu /* "MGCL" */
#define MG_MAGIC_TIMER 0x4d47544du /* "MGTM" */
#define MG_MAGIC_DEAD 0xdeadbeefu

/* CNTV_CTL_EL0 bits. */
#define CTL_ENABLE 1u
#define CTL_IMASK 2u
#define CTL_ISTATUS 4u

#define PSTATE_I (1u << 7)

/* Real mode reads the host clock once every this many blocks (a few microseconds of guest
 * code): a clock read per block would cost more than the block. */
#define REAL_POLL_BLOCKS 64u

struct mg_clock {
    uint32_t magic;
    uint32_t users;
    int mode;
    unsigned shift;
    uint64_t icount;
    uint64_t skip_ns;  /* icount mode: idle time skipped at WFI */
    int64_t origin_ns; /* real mode: host monotonic time of tick 0 */
};

struct mg_timer {
    uint32_t magic;
    uint32_t stop_reasons;
    struct mg_clock *clock;
    uc_engine *uc;
    uint64_t ctl; /* ENABLE and IMASK only: ISTATUS is computed on read */
    uint64_t cval;
    uint64_t deadline; /* ticks at which the output rises; UINT64_MAX: never */
    uint32_t poll;
    bool armed;
    bool watch_unmask;
    bool stop_soon;
    bool block_hook;
    uint64_t mpidr; /* what MRS MPIDR_EL1 reads: Unicorn ignores writes to it */
    int icache;         /* MG_ICACHE_*: the invalidation that stopped the emulator */
    uint64_t icache_va; /* IC IVAU's operand */
};

static int64_t host_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000000000 + (int64_t)ts.tv_nsec;
}

static inline bool clock_ok(const struct mg_clock *c)
{
    return c != NULL && c->magic == MG_MAGIC_CLOCK;
}

static inline bool timer_ok(const struct mg_timer *t)
{
    return t != NULL && t->magic == MG_MAGIC_TIMER;
}

static inline uint64_t now_ticks(const struct mg_clock *c)
{
    if (c->mode == MG_CLOCK_ICOUNT)
        return ((c->icount << c->shift) + c->skip_ns) / MG_TICK_NS;
    int64_t elapsed = host_ns() - c->origin_ns;
    return elapsed > 0 ? (uint64_t)elapsed / MG_TICK_NS : 0;
}

MG_API struct mg_clock *mg_clock_create(int mode, unsigned shift)
{
    if ((mode != MG_CLOCK_REAL && mode != MG_CLOCK_ICOUNT) || shift > MG_CLOCK_MAX_SHIFT)
        return NULL;
    struct mg_clock *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->magic = MG_MAGIC_CLOCK;
    c->mode = mode;
    c->shift = shift;
    c->origin_ns = host_ns();
    return c;
}

MG_API int mg_clock_destroy(struct mg_clock *c)
{
    if (!clock_ok(c) || c->users != 0)
        return -1;
    c->magic = MG_MAGIC_DEAD;
    free(c);
    return 0;
}

MG_API uint64_t mg_clock_now(const struct mg_clock *c)
{
    return clock_ok(c) ? now_ticks(c) : UINT64_MAX;
}

MG_API uint64_t mg_clock_icount(const struct mg_clock *c)
{
    return clock_ok(c) ? c->icount : UINT64_MAX;
}

MG_API int mg_clock_skip_to(struct mg_clock *c, uint64_t ticks)
{
    if (!clock_ok(c) || c->mode != MG_CLOCK_ICOUNT || ticks > UINT64_MAX / MG_TICK_NS)
        return -1;
    uint64_t now = now_ticks(c);
    if (ticks > now)
        c->skip_ns += (ticks - now) * MG_TICK_NS;
    return 0;
}

MG_API int mg_clock_reset(struct mg_clock *c)
{
    if (!clock_ok(c))
        return -1;
    c->icount = 0;
    c->skip_ns = 0;
    c->origin_ns = host_ns();
    return 0;
}

static void update_deadline(struct mg_timer *t)
{
    t->deadline = (t->ctl & CTL_ENABLE) && !(t->ctl & CTL_IMASK) ? t->cval : UINT64_MAX;
    t->armed = true;
    t->poll = 1; /* look at the clock at the next block */
}

MG_API struct mg_timer *mg_timer_create(uc_engine *uc, struct mg_clock *c)
{
    if (uc == NULL || !clock_ok(c) || c->users == UINT32_MAX)
        return NULL;
    struct mg_timer *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->magic = MG_MAGIC_TIMER;
    t->clock = c;
    t->uc = uc;
    c->users++;
    update_deadline(t);
    return t;
}

MG_API int mg_timer_destroy(struct mg_timer *t)
{
    if (!timer_ok(t))
        return -1;
    t->clock->users--;
    t->magic = MG_MAGIC_DEAD;
    free(t);
    return 0;
}

MG_API int mg_timer_get(struct mg_timer *t, uint64_t out[3])
{
    if (!timer_ok(t) || out == NULL)
        return -1;
    out[0] = t->ctl;
    out[1] = t->cval;
    out[2] = t->stop_reasons;
    t->stop_reasons = 0;
    return 0;
}

MG_API int mg_timer_set(struct mg_timer *t, uint64_t ctl, uint64_t cval)
{
    if (!timer_ok(t))
        return -1;
    t->ctl = ctl & (CTL_ENABLE | CTL_IMASK);
    t->cval = cval;
    update_deadline(t);
    return 0;
}

MG_API int mg_timer_set_block_hook(struct mg_timer *t, int installed)
{
    if (!timer_ok(t))
        return -1;
    t->block_hook = installed != 0;
    return 0;
}

MG_API int mg_timer_set_mpidr(struct mg_timer *t, uint64_t mpidr)
{
    if (!timer_ok(t))
        return -1;
    t->mpidr = mpidr;
    return 0;
}

MG_API int mg_timer_request_stop(struct mg_timer *t)
{
    if (!timer_ok(t))
        return -1;
    t->stop_soon = true;
    return 0;
}

MG_API int mg_timer_icache(struct mg_timer *t, uint64_t *va)
{
    if (!timer_ok(t) || va == NULL)
        return -1;
    int kind = t->icache;
    *va = t->icache_va;
    t->icache = MG_ICACHE_NONE;
    return kind;
}

MG_API int mg_timer_control(struct mg_timer *t, int armed, int watch_unmask)
{
    if (!timer_ok(t))
        return -1;
    t->armed = armed != 0;
    t->watch_unmask = watch_unmask != 0;
    t->poll = 1;
    return 0;
}

/* op0 3, op1 3, CRn 14: the generic timer's EL0 registers. */
static inline bool is_timer_space(const uc_arm64_cp_reg *cp)
{
    return cp->crn == 14 && cp->op0 == 3 && cp->op1 == 3;
}

MG_API uint32_t mg_timer_mrs(uc_engine *uc, uc_arm64_reg reg, const uc_arm64_cp_reg *cp,
                             void *user)
{
    struct mg_timer *t = user;
    if (cp == NULL || !timer_ok(t))
        return 0;
    uint64_t value;
    uint64_t now;
    if (cp->crn == 0 && cp->crm == 0 && cp->op0 == 3 && cp->op1 == 0 && cp->op2 == 5) {
        value = t->mpidr; /* MPIDR_EL1: every Unicorn instance believes it is CPU 0 */
    } else if (!is_timer_space(cp)) {
        return 0;
    } else if (cp->crm == 0 && (cp->op2 == 1 || cp->op2 == 2)) { /* CNTPCT_EL0, CNTVCT_EL0 */
        value = now_ticks(t->clock);
    } else if (cp->crm == 3 && cp->op2 == 1) { /* CNTV_CTL_EL0 */
        now = now_ticks(t->clock);
        value = t->ctl | ((t->ctl & CTL_ENABLE) && now >= t->cval ? CTL_ISTATUS : 0u);
    } else if (cp->crm == 3 && cp->op2 == 2) { /* CNTV_CVAL_EL0 */
        value = t->cval;
    } else if (cp->crm == 3 && cp->op2 == 0) { /* CNTV_TVAL_EL0: CVAL - counter, 32 bits */
        now = now_ticks(t->clock);
        value = (t->cval - now) & 0xffffffffu;
    } else {
        return 0;
    }
    /* Writing a general-purpose register from a hook is safe (unlike PC). */
    if (uc_reg_write(uc, (int)reg, &value) != UC_ERR_OK)
        return 0;
    return 1;
}

MG_API uint32_t mg_timer_msr(uc_engine *uc, uc_arm64_reg reg, const uc_arm64_cp_reg *cp,
                             void *user)
{
    (void)reg;
    struct mg_timer *t = user;
    if (cp == NULL || !is_timer_space(cp) || cp->crm != 3 || !timer_ok(t))
        return 0;
    if (cp->op2 == 1) {
        t->ctl = cp->val & (CTL_ENABLE | CTL_IMASK);
    } else if (cp->op2 == 2) {
        t->cval = cp->val;
    } else if (cp->op2 == 0) {
        /* TVAL: CVAL = counter + SignExtend(value<31:0>), modulo 2^64. */
        uint64_t low = cp->val & 0xffffffffu;
        uint64_t delta = (low & 0x80000000u) ? (low | 0xffffffff00000000u) : low;
        t->cval = now_ticks(t->clock) + delta;
    } else {
        return 0;
    }
    update_deadline(t);
    if (!t->block_hook && t->deadline != UINT64_MAX) {
        t->stop_reasons |= MG_STOP_NEED_BLOCK_HOOK;
        uc_emu_stop(uc);
    }
    return 1;
}

/* IC IALLUIS (op1 0, CRm 1, op2 0), IC IALLU (op1 0, CRm 5, op2 0), IC IVAU (op1 3, CRm 5,
 * op2 1): op0 1, CRn 7. */
static inline bool is_icache_invalidation(const uc_arm64_cp_reg *cp)
{
    if (cp->op0 != 1 || cp->crn != 7)
        return false;
    if (cp->op1 == 0 && cp->op2 == 0)
        return cp->crm == 1 || cp->crm == 5;
    return cp->op1 == 3 && cp->crm == 5 && cp->op2 == 1;
}

MG_API uint32_t mg_timer_sys(uc_engine *uc, uc_arm64_reg reg, const uc_arm64_cp_reg *cp,
                             void *user)
{
    (void)reg;
    struct mg_timer *t = user;
    if (cp == NULL || !is_icache_invalidation(cp) || !timer_ok(t))
        return 0;
    /* IVAU names a line; a second invalidation before the VMM looked widens it to all. */
    t->icache = cp->op1 == 3 && t->icache == MG_ICACHE_NONE ? MG_ICACHE_LINE : MG_ICACHE_ALL;
    t->icache_va = cp->val;
    t->stop_reasons |= MG_STOP_ICACHE;
    uc_emu_stop(uc);
    return 0; /* the emulator still performs it (its EL0 access check included) */
}

MG_API void mg_timer_block(uc_engine *uc, uint64_t address, uint32_t size, void *user)
{
    (void)address;
    struct mg_timer *t = user;
    if (!timer_ok(t))
        return;
    struct mg_clock *c = t->clock;
    c->icount += size / 4u;
    if (t->stop_soon) {
        t->stop_soon = false;
        t->stop_reasons |= MG_STOP_REQUESTED;
        uc_emu_stop(uc);
        return;
    }
    if (t->watch_unmask) {
        uint64_t pstate = 0;
        if (uc_reg_read(uc, UC_ARM64_REG_PSTATE, &pstate) == UC_ERR_OK && !(pstate & PSTATE_I)) {
            t->watch_unmask = false;
            t->stop_reasons |= MG_STOP_UNMASKED;
            uc_emu_stop(uc);
            return;
        }
    }
    if (!t->armed || t->deadline == UINT64_MAX)
        return;
    if (c->mode != MG_CLOCK_ICOUNT) {
        if (--t->poll != 0)
            return;
        t->poll = REAL_POLL_BLOCKS;
    }
    if (now_ticks(c) >= t->deadline) {
        t->armed = false;
        t->stop_reasons |= MG_STOP_DEADLINE;
        uc_emu_stop(uc);
    }
}
