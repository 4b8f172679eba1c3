/*
 * test_timer.c: the timer heap and posted events, without any I/O.
 * "Now" is driven by setting gh_current_msec by hand.
 */
#include "event/gh_event.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define NTIMERS 20000

static gh_event_t  gh_evs[NTIMERS];
static bool        gh_deleted[NTIMERS];
static gh_msec_t   gh_last_fired;
static size_t      gh_nfired;
static bool        gh_order_ok;

static void
check_heap(gh_loop_t *loop)
{
    for (size_t i = 0; i < loop->nheap; i++) {
        assert_int_equal(loop->heap[i]->heap_idx, i);
        assert_true(loop->heap[i]->timer_set);
        if (i > 0) {
            assert_true(loop->heap[(i - 1) / 2]->timer_key
                        <= loop->heap[i]->timer_key);
        }
    }
}

static void
on_timer(gh_event_t *ev)
{
    size_t i = (size_t) (ev - gh_evs);

    /* fired in deadline order, only when due, never after deletion */
    if (ev->timer_key < gh_last_fired || ev->timer_key > gh_current_msec
        || gh_deleted[i] || !ev->timedout || ev->timer_set)
    {
        gh_order_ok = false;
    }
    gh_last_fired = ev->timer_key;
    gh_nfired++;
}

static void
test_many_random(void **state)
{
    gh_loop_t *loop = gh_loop_create(16, NULL);
    size_t     ndel = 0;

    assert_non_null(loop);
    srand(12345);
    gh_current_msec = 1000000;
    memset(gh_evs, 0, sizeof(gh_evs));
    memset(gh_deleted, 0, sizeof(gh_deleted));
    for (int i = 0; i < NTIMERS; i++) {
        gh_evs[i].handler = on_timer;
        gh_timer_add(loop, &gh_evs[i], rand() % 100000);
    }
    assert_int_equal(loop->nheap, NTIMERS);
    check_heap(loop);

    /* move some, delete a third */
    for (int i = 0; i < NTIMERS / 10; i++) {
        gh_timer_add(loop, &gh_evs[rand() % NTIMERS], rand() % 100000);
    }
    for (int i = 0; i < NTIMERS; i++) {
        if (rand() % 3 == 0) {
            gh_timer_del(loop, &gh_evs[i]);
            gh_deleted[i] = true;
            ndel++;
        }
    }
    check_heap(loop);
    assert_int_equal(loop->nheap + ndel, NTIMERS);
    for (int i = 0; i < NTIMERS; i++) {
        if (gh_deleted[i]) {
            gh_timer_del(loop, &gh_evs[i]);    /* twice is harmless */
            break;
        }
    }
    assert_int_equal(loop->nheap + ndel, NTIMERS);

    gh_last_fired = 0;
    gh_nfired = 0;
    gh_order_ok = true;
    while (loop->nheap > 0) {
        gh_current_msec += rand() % 997;
        gh_timers_expire(loop);
        assert_true(gh_timer_next(loop) != 0);
    }
    assert_true(gh_order_ok);
    assert_int_equal(gh_nfired + ndel, NTIMERS);
    assert_int_equal(gh_timer_next(loop), -1);
    gh_loop_destroy(loop);
}

static void
test_next_and_move(void **state)
{
    gh_loop_t  *loop = gh_loop_create(16, NULL);
    gh_event_t  a = { .handler = on_timer }, b = { .handler = on_timer };

    gh_current_msec = 500;
    assert_int_equal(gh_timer_next(loop), -1);
    gh_timer_add(loop, &a, 100);
    gh_timer_add(loop, &b, 50);
    assert_int_equal(gh_timer_next(loop), 50);
    gh_timer_add(loop, &b, 200);               /* moves, no duplicate */
    assert_int_equal(loop->nheap, 2);
    assert_int_equal(gh_timer_next(loop), 100);
    gh_current_msec = 700;
    assert_int_equal(gh_timer_next(loop), 0);  /* overdue */

    a.cancelable = 1;
    assert_int_equal(gh_timer_pending_noncancelable(loop), 1);
    gh_timer_del(loop, &a);
    gh_timer_del(loop, &b);
    assert_int_equal(loop->nheap, 0);
    assert_int_equal(gh_timer_pending_noncancelable(loop), 0);
    gh_loop_destroy(loop);
}

static gh_loop_t *gh_rearm_loop;
static int        gh_rearm_count;

static void
on_rearm(gh_event_t *ev)
{
    gh_rearm_count++;
    gh_timer_add(gh_rearm_loop, ev, 0);
}

static void
test_expire_bounded(void **state)
{
    gh_event_t ev = { .handler = on_rearm };

    gh_rearm_loop = gh_loop_create(16, NULL);
    gh_rearm_count = 0;
    gh_current_msec = 10;
    gh_timer_add(gh_rearm_loop, &ev, 0);
    /* a timer that re-arms itself at "now" runs once per call */
    gh_timers_expire(gh_rearm_loop);
    assert_int_equal(gh_rearm_count, 1);
    gh_timers_expire(gh_rearm_loop);
    assert_int_equal(gh_rearm_count, 2);
    gh_timer_del(gh_rearm_loop, &ev);
    gh_loop_destroy(gh_rearm_loop);
}

static int        gh_posted_log[16];
static int        gh_nposted;
static gh_loop_t *gh_post_loop;

static void
on_posted(gh_event_t *ev)
{
    gh_posted_log[gh_nposted++ % 16] = (int) (intptr_t) ev->data;
}

static void
on_repost(gh_event_t *ev)
{
    gh_nposted++;
    gh_post_event(gh_post_loop, ev);
}

static void
test_posted(void **state)
{
    gh_event_t ev[4];

    gh_post_loop = gh_loop_create(16, NULL);
    memset(ev, 0, sizeof(ev));
    for (int i = 0; i < 4; i++) {
        ev[i].handler = on_posted;
        ev[i].data = (void *) (intptr_t) i;
        gh_post_event(gh_post_loop, &ev[i]);
    }
    gh_post_event(gh_post_loop, &ev[1]);       /* already queued */
    gh_delete_posted_event(gh_post_loop, &ev[2]);
    gh_delete_posted_event(gh_post_loop, &ev[3]);   /* the tail */
    gh_nposted = 0;
    gh_process_posted(gh_post_loop);
    assert_int_equal(gh_nposted, 2);
    assert_int_equal(gh_posted_log[0], 0);
    assert_int_equal(gh_posted_log[1], 1);
    assert_null(gh_post_loop->posted);
    assert_null(gh_post_loop->posted_tail);

    /* FIFO, and the tail is right after deleting it */
    gh_post_event(gh_post_loop, &ev[3]);
    gh_post_event(gh_post_loop, &ev[2]);
    gh_nposted = 0;
    gh_process_posted(gh_post_loop);
    assert_int_equal(gh_posted_log[0], 3);
    assert_int_equal(gh_posted_log[1], 2);

    /* an event that re-posts itself does not spin forever */
    ev[0].handler = on_repost;
    gh_nposted = 0;
    gh_post_event(gh_post_loop, &ev[0]);
    gh_process_posted(gh_post_loop);
    assert_true(gh_nposted >= 1 && gh_nposted <= 16);
    assert_true(ev[0].posted);
    gh_delete_posted_event(gh_post_loop, &ev[0]);
    assert_null(gh_post_loop->posted);
    gh_loop_destroy(gh_post_loop);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_random),
        cmocka_unit_test(test_next_and_move),
        cmocka_unit_test(test_expire_bounded),
        cmocka_unit_test(test_posted),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
