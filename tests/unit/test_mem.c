/*
 * test_mem.c: fixed-size slabs, memory accounts, and arenas charged to an
 * account (growth, large blocks, reset, destroy, moving between
 * accounts).
 */
#include "core/gh_core.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

static void
test_slab(void **state)
{
    gh_slab_t s;
    uint8_t  *p[3000];

    gh_slab_init(&s, 100);
    assert_int_equal(s.size, 112);
    for (int i = 0; i < 3000; i++) {
        p[i] = gh_slab_alloc(&s);
        assert_non_null(p[i]);
        assert_int_equal((uintptr_t) p[i] % 16, 0);
        memset(p[i], i & 0xff, 100);
    }
    assert_int_equal(s.used, 3000);
    /* objects do not overlap */
    for (int i = 0; i < 3000; i++) {
        for (int j = 0; j < 100; j++) {
            assert_int_equal(p[i][j], i & 0xff);
        }
    }
    /* freed objects are handed out again before the slab grows */
    size_t mapped = s.mapped;
    for (int i = 0; i < 3000; i += 2) {
        gh_slab_free(&s, p[i]);
    }
    assert_int_equal(s.used, 1500);
    for (int i = 0; i < 3000; i += 2) {
        p[i] = gh_slab_alloc(&s);
    }
    assert_int_equal(s.mapped, mapped);
    for (int i = 0; i < 3000; i++) {
        gh_slab_free(&s, p[i]);
    }
    assert_int_equal(s.used, 0);
    gh_slab_free(&s, NULL);
}

static void
test_account(void **state)
{
    gh_mem_account_t a = { .max = 1000 }, b = { 0 };
    size_t           cur = gh_mem_conns.current;
    uint64_t         refused = gh_mem_conns.refused;

    assert_int_equal(gh_mem_charge(&a, 600), GH_OK);
    assert_int_equal(gh_mem_charge(&b, 5000), GH_OK);   /* no cap */
    assert_int_equal(gh_mem_conns.current, cur + 5600);
    assert_true(gh_mem_conns.peak >= cur + 5600);
    /* past the max: refused, nothing charged, counted */
    assert_int_equal(gh_mem_charge(&a, 401), GH_ERROR);
    assert_int_equal(gh_mem_charge(&a, SIZE_MAX), GH_ERROR);
    assert_int_equal(a.used, 600);
    assert_int_equal(gh_mem_conns.refused, refused + 2);
    assert_int_equal(gh_mem_charge(&a, 400), GH_OK);
    /* forced: memory taken already */
    gh_mem_charge_force(&a, 10);
    assert_int_equal(a.used, 1010);
    gh_mem_uncharge(&a, 1010);
    gh_mem_uncharge(&b, 5000);
    assert_int_equal(gh_mem_conns.current, cur);
    assert_int_equal(gh_mem_charge(NULL, 1), GH_OK);
    gh_mem_uncharge(NULL, 1);
}

static void
test_arena_account(void **state)
{
    gh_mem_account_t acct = { .max = 8192 }, other = { 0 };
    size_t           cur = gh_mem_conns.current;
    gh_arena_t      *a = gh_arena_create(1024, 0);

    assert_int_equal(gh_arena_set_account(a, &acct), GH_OK);
    assert_int_equal(acct.used, 1024);
    /* blocks and large allocations are charged */
    for (int i = 0; i < 10; i++) {
        assert_non_null(gh_alloc(a, 400));
    }
    assert_int_equal(acct.used, a->used);
    void *big = gh_alloc(a, 3000);
    assert_non_null(big);
    assert_int_equal(acct.used, a->used);
    /* past the account's max: NULL, the arena still works */
    assert_null(gh_alloc(a, 8000));
    assert_int_equal(acct.used, a->used);
    gh_arena_free_large(a, big);
    assert_int_equal(acct.used, a->used);
    /* reset gives back all but the first block */
    gh_arena_reset(a);
    assert_int_equal(acct.used, 1024);
    /* an account that cannot take the arena refuses it */
    gh_mem_account_t tiny = { .max = 100 };
    assert_int_equal(gh_arena_set_account(a, &tiny), GH_ERROR);
    assert_int_equal(acct.used, 1024);
    assert_int_equal(tiny.used, 0);
    /* moved to another account */
    assert_non_null(gh_alloc(a, 1000));
    size_t used = a->used;
    assert_int_equal(gh_arena_set_account(a, &other), GH_OK);
    assert_int_equal(acct.used, 0);
    assert_int_equal(other.used, used);
    gh_arena_destroy(a);
    assert_int_equal(other.used, 0);
    assert_int_equal(gh_mem_conns.current, cur);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slab),
        cmocka_unit_test(test_account),
        cmocka_unit_test(test_arena_account),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
