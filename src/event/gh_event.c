/*
 * gh_event.c: the per-worker event loop.
 *
 *   gh_loop_run_once:
 *     timeout = min(first timer, max_wait), 0 if events are posted
 *     epoll_wait -> gh_time_update
 *     io handlers (read, then write unless the read handler closed c)
 *     gh_conn_release_closed   closed conns go back to the pool only now
 *     gh_timers_expire         bounded: the timers due when it starts
 *     gh_process_posted        bounded: GH_POSTED_ROUNDS snapshots
 *
 * Both bounds keep a handler that re-arms itself with a zero delay (or
 * re-posts itself) from starving io: its next turn is the next iteration.
 *
 * Timers are a binary min-heap keyed by the absolute deadline; each event
 * remembers its heap index, so deleting or moving a timer is O(log n),
 * which matters because almost every read re-arms a timeout.
 */
#include "gh_conn.h"

#include <limits.h>
#include <sys/epoll.h>
#include <unistd.h>

#define GH_TIMER_HEAP_MIN  64
#define GH_POSTED_ROUNDS   4
#define GH_DEFAULT_EVENTS  512

gh_loop_t *
gh_loop_create(int max_events, gh_log_t *log)
{
    gh_loop_t *loop = gh_xcalloc(1, sizeof(gh_loop_t));

    loop->log = log ? log : &gh_log_stderr;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) {
        gh_log_error(GH_LOG_EMERG, loop->log, errno,
            "epoll_create1() failed");
        free(loop);
        return NULL;
    }
    loop->max_events = max_events > 0 ? max_events : GH_DEFAULT_EVENTS;
    loop->events = gh_xcalloc((size_t) loop->max_events,
        sizeof(struct epoll_event));
    loop->heap_cap = GH_TIMER_HEAP_MIN;
    loop->heap = gh_xmalloc(loop->heap_cap * sizeof(gh_event_t *));
    return loop;
}

void
gh_loop_destroy(gh_loop_t *loop)
{
    if (loop == NULL) {
        return;
    }
    close(loop->epfd);
    free(loop->events);
    free(loop->heap);
    free(loop);
}

/* --- timers -------------------------------------------------------------- */

static inline void
gh_heap_set(gh_loop_t *loop, size_t i, gh_event_t *ev)
{
    loop->heap[i] = ev;
    ev->heap_idx = (uint32_t) i;   /* events are bounded by fds */
}

static void
gh_heap_up(gh_loop_t *loop, size_t i)
{
    gh_event_t *ev = loop->heap[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;

        if (loop->heap[parent]->timer_key <= ev->timer_key) {
            break;
        }
        gh_heap_set(loop, i, loop->heap[parent]);
        i = parent;
    }
    gh_heap_set(loop, i, ev);
}

static void
gh_heap_down(gh_loop_t *loop, size_t i)
{
    gh_event_t *ev = loop->heap[i];
    size_t      child;

    for (;;) {
        child = 2 * i + 1;
        if (child >= loop->nheap) {
            break;
        }
        if (child + 1 < loop->nheap
            && loop->heap[child + 1]->timer_key < loop->heap[child]->timer_key)
        {
            child++;
        }
        if (ev->timer_key <= loop->heap[child]->timer_key) {
            break;
        }
        gh_heap_set(loop, i, loop->heap[child]);
        i = child;
    }
    gh_heap_set(loop, i, ev);
}

void
gh_timer_add(gh_loop_t *loop, gh_event_t *ev, gh_msec_t after)
{
    gh_msec_t now = gh_current_msec, old = ev->timer_key;

    after = gh_max(after, 0);
    ev->timer_key = after > INT64_MAX - now ? INT64_MAX : now + after;

    if (ev->timer_set) {
        /* moving in place is cheaper than delete + insert */
        if (ev->timer_key < old) {
            gh_heap_up(loop, ev->heap_idx);
        } else {
            gh_heap_down(loop, ev->heap_idx);
        }
        return;
    }
    if (loop->nheap == loop->heap_cap) {
        loop->heap_cap *= 2;
        loop->heap = gh_xrealloc(loop->heap,
            loop->heap_cap * sizeof(gh_event_t *));
    }
    gh_heap_set(loop, loop->nheap++, ev);
    gh_heap_up(loop, ev->heap_idx);
    ev->timer_set = 1;
}

void
gh_timer_del(gh_loop_t *loop, gh_event_t *ev)
{
    size_t      i = ev->heap_idx;
    gh_event_t *last;

    if (!ev->timer_set) {
        return;
    }
    GH_ASSERT(i < loop->nheap && loop->heap[i] == ev);
    ev->timer_set = 0;
    last = loop->heap[--loop->nheap];
    if (last == ev) {
        return;
    }
    /* the last element fills the hole and may need to go either way */
    gh_heap_set(loop, i, last);
    gh_heap_up(loop, i);
    gh_heap_down(loop, last->heap_idx);
}

gh_msec_t
gh_timer_next(gh_loop_t *loop)
{
    gh_msec_t d;

    if (loop->nheap == 0) {
        return -1;
    }
    d = loop->heap[0]->timer_key - gh_current_msec;
    return d > 0 ? d : 0;
}

size_t
gh_timer_pending_noncancelable(gh_loop_t *loop)
{
    size_t n = 0;

    /* a linear scan: only asked while a worker is shutting down */
    for (size_t i = 0; i < loop->nheap; i++) {
        n += !loop->heap[i]->cancelable;
    }
    return n;
}

void
gh_timers_expire(gh_loop_t *loop)
{
    size_t      budget = loop->nheap;
    gh_event_t *ev;

    /* gh_current_msec is not refreshed here: the caller (the loop, or a
     * test) owns the notion of "now" */
    while (budget-- > 0 && loop->nheap > 0
           && loop->heap[0]->timer_key <= gh_current_msec)
    {
        ev = loop->heap[0];
        gh_timer_del(loop, ev);
        ev->timedout = 1;
        if (ev->handler) {
            ev->handler(ev);
        }
    }
}

/* --- posted events ------------------------------------------------------- */

void
gh_post_event(gh_loop_t *loop, gh_event_t *ev)
{
    if (ev->posted) {
        return;
    }
    ev->posted = 1;
    ev->posted_next = NULL;
    if (loop->posted_tail) {
        loop->posted_tail->posted_next = ev;
    } else {
        loop->posted = ev;
    }
    loop->posted_tail = ev;
}

void
gh_delete_posted_event(gh_loop_t *loop, gh_event_t *ev)
{
    gh_event_t **pp, *prev = NULL;

    if (!ev->posted) {
        return;
    }
    /* linear, but the queue is short and deletion is rare (close) */
    for (pp = &loop->posted; *pp && *pp != ev; pp = &(*pp)->posted_next) {
        prev = *pp;
    }
    if (*pp == ev) {
        *pp = ev->posted_next;
        if (loop->posted_tail == ev) {
            loop->posted_tail = prev;
        }
    }
    ev->posted = 0;
    ev->posted_next = NULL;
}

static gh_event_t *
gh_posted_pop(gh_loop_t *loop)
{
    gh_event_t *ev = loop->posted;

    loop->posted = ev->posted_next;
    if (loop->posted == NULL) {
        loop->posted_tail = NULL;
    }
    ev->posted = 0;
    ev->posted_next = NULL;
    return ev;
}

/* one round: at most as many events as were queued when it started, so
 * events posted meanwhile wait for the next round */
static void
gh_posted_round(gh_loop_t *loop)
{
    size_t      n = 0;
    gh_event_t *ev;

    for (ev = loop->posted; ev; ev = ev->posted_next) {
        n++;
    }
    while (n-- > 0 && loop->posted) {
        ev = gh_posted_pop(loop);
        if (ev->handler) {
            ev->handler(ev);
        }
    }
}

void
gh_process_posted(gh_loop_t *loop)
{
    for (int r = 0; r < GH_POSTED_ROUNDS && loop->posted; r++) {
        gh_posted_round(loop);
    }
}

/* --- registration -------------------------------------------------------- */

static gh_int_t
gh_loop_ctl(gh_loop_t *loop, int op, gh_conn_t *c, uint32_t events)
{
    struct epoll_event ee = { .events = events, .data.ptr = c };

    if (epoll_ctl(loop->epfd, op, c->fd, &ee) < 0) {
        gh_log_error(GH_LOG_ALERT, &c->log, errno,
            "epoll_ctl(%d, %d) failed", op, c->fd);
        return GH_ERROR;
    }
    return GH_OK;
}

gh_int_t
gh_loop_add_conn(gh_loop_t *loop, gh_conn_t *c)
{
    /* both directions once, edge-triggered: handlers never need another
     * epoll_ctl, they just run until EAGAIN */
    if (gh_loop_ctl(loop, EPOLL_CTL_ADD, c,
            EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET) != GH_OK)
    {
        return GH_ERROR;
    }
    c->loop = loop;
    c->read.active = 1;
    c->write.active = 1;
    return GH_OK;
}

gh_int_t
gh_loop_add_listen(gh_loop_t *loop, gh_conn_t *c)
{
    /* level-triggered: the accept loop is bounded and must be called
     * again while connections are queued.  EPOLLEXCLUSIVE wakes one
     * worker per connection instead of all of them. */
    if (gh_loop_ctl(loop, EPOLL_CTL_ADD, c, EPOLLIN | EPOLLEXCLUSIVE)
        != GH_OK)
    {
        return GH_ERROR;
    }
    c->loop = loop;
    c->read.active = 1;
    c->read.accept = 1;
    return GH_OK;
}

gh_int_t
gh_loop_del_conn(gh_loop_t *loop, gh_conn_t *c)
{
    if (!c->read.active && !c->write.active) {
        return GH_OK;
    }
    c->read.active = 0;
    c->write.active = 0;
    return gh_loop_ctl(loop, EPOLL_CTL_DEL, c, 0);
}

/* --- the loop ------------------------------------------------------------ */

static void
gh_loop_dispatch(gh_conn_t *c, uint32_t revents)
{
    gh_event_t *rev = &c->read, *wev = &c->write;

    /* an error or hangup is news for whichever side is waiting */
    if (revents & (EPOLLERR | EPOLLHUP)) {
        revents |= EPOLLIN | EPOLLOUT;
    }
    if ((revents & (EPOLLIN | EPOLLRDHUP)) && rev->active) {
        rev->ready = 1;
        rev->eof |= (revents & (EPOLLRDHUP | EPOLLHUP)) != 0;
        rev->error |= (revents & EPOLLERR) != 0;
        if (rev->handler) {
            rev->handler(rev);
        }
    }
    /* the object stays valid until gh_conn_release_closed(), so this
     * check is safe even if the read handler closed c */
    if (c->destroyed) {
        return;
    }
    if ((revents & EPOLLOUT) && wev->active) {
        wev->ready = 1;
        wev->error |= (revents & EPOLLERR) != 0;
        if (wev->handler) {
            wev->handler(wev);
        }
    }
}

static int
gh_loop_timeout(gh_loop_t *loop, gh_msec_t max_wait)
{
    gh_msec_t t = loop->posted ? 0 : gh_timer_next(loop);

    if (max_wait >= 0 && (t < 0 || t > max_wait)) {
        t = max_wait;
    }
    return (int) gh_min(t, (gh_msec_t) INT_MAX);
}

gh_int_t
gh_loop_run_once(gh_loop_t *loop, gh_msec_t max_wait)
{
    struct epoll_event *events = loop->events;
    int                 n, err;

    n = epoll_wait(loop->epfd, events, loop->max_events,
        gh_loop_timeout(loop, max_wait));
    err = errno;
    gh_time_update();

    if (n < 0) {
        if (err != EINTR) {
            gh_log_error(GH_LOG_ALERT, loop->log, err, "epoll_wait() failed");
            return GH_ERROR;
        }
        /* a signal: the caller looks at its flags after we return */
        n = 0;
    }
    for (int i = 0; i < n; i++) {
        gh_conn_t *c = events[i].data.ptr;

        if (!c->destroyed) {
            gh_loop_dispatch(c, events[i].events);
        }
    }
    gh_conn_release_closed();
    gh_timers_expire(loop);
    gh_process_posted(loop);
    gh_conn_release_closed();
    return GH_OK;
}
