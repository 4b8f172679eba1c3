/*
 * gh_event.h: the per-worker event loop.
 *
 * One epoll instance, a binary min-heap of timers and a queue of posted
 * events.  Connections are registered once, edge-triggered, for both
 * directions (EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET) so that no epoll_ctl is
 * needed when a handler wants to read or write: handlers read/write until
 * EAGAIN and then wait for the next edge.  Listening sockets are
 * registered level-triggered with EPOLLEXCLUSIVE (no thundering herd).
 *
 *   loop:  wait(min(next timer, cap)) -> io handlers -> expired timers
 *          -> posted events (bounded rounds) -> again
 */
#ifndef GH_EVENT_H
#define GH_EVENT_H

#include "../core/gh_core.h"
#include <sys/socket.h>
#include <sys/uio.h>

typedef void (*gh_event_handler_pt)(gh_event_t *ev);

struct gh_event_s {
    void                *data;       /* usually the gh_conn_t */
    gh_event_handler_pt  handler;

    gh_msec_t            timer_key;  /* absolute deadline (gh_current_msec) */
    gh_event_t          *posted_next;
    /* position in timer heap; 32 bits share a word with the flags (two
     * events sit in every connection object) */
    uint32_t             heap_idx;

    unsigned             write:1;
    unsigned             ready:1;    /* data / space may be available */
    unsigned             eof:1;      /* peer closed (RDHUP or recv 0) */
    unsigned             error:1;
    unsigned             timedout:1;
    unsigned             timer_set:1;
    unsigned             posted:1;
    unsigned             active:1;   /* registered in epoll */
    unsigned             accept:1;
    unsigned             cancelable:1; /* timer does not keep a quitting worker */
};

struct gh_loop_s {
    int          epfd;
    gh_event_t **heap;       /* timers, min-heap by timer_key */
    size_t       nheap;
    size_t       heap_cap;
    gh_event_t  *posted;     /* singly linked FIFO */
    gh_event_t  *posted_tail;
    void        *events;     /* struct epoll_event[max_events] */
    int          max_events;
    gh_log_t    *log;
};

gh_loop_t *gh_loop_create(int max_events, gh_log_t *log);
void gh_loop_destroy(gh_loop_t *loop);

/* wait for io at most `max_wait` ms (or until the next timer, -1 = no cap),
 * run handlers, expired timers and posted events */
gh_int_t gh_loop_run_once(gh_loop_t *loop, gh_msec_t max_wait);

/* timers; adding an already set timer moves it */
void gh_timer_add(gh_loop_t *loop, gh_event_t *ev, gh_msec_t after);
void gh_timer_del(gh_loop_t *loop, gh_event_t *ev);
/* ms until the first timer, -1 if none */
gh_msec_t gh_timer_next(gh_loop_t *loop);
/* number of non-cancelable timers pending (a quitting worker waits) */
size_t gh_timer_pending_noncancelable(gh_loop_t *loop);
void gh_timers_expire(gh_loop_t *loop);

void gh_post_event(gh_loop_t *loop, gh_event_t *ev);
void gh_delete_posted_event(gh_loop_t *loop, gh_event_t *ev);
void gh_process_posted(gh_loop_t *loop);

/* fd registration; data of the epoll entry is the gh_conn_t */
gh_int_t gh_loop_add_conn(gh_loop_t *loop, gh_conn_t *c);
gh_int_t gh_loop_del_conn(gh_loop_t *loop, gh_conn_t *c);
/* level-triggered, EPOLLEXCLUSIVE; the conn is a pseudo-connection
 * whose read event is the accept handler */
gh_int_t gh_loop_add_listen(gh_loop_t *loop, gh_conn_t *c);

#endif
