/*
 * gh_upstream_keepalive.c: per-worker pools of idle upstream connections
 * (`keepalive N` in an upstream{} block).
 *
 *   response done -> gh_upstream_keepalive_put()
 *       |  pool off, keepalive_requests or keepalive_time reached,
 *       |  eof/error/timeout seen, worker quitting  -> close
 *       v
 *   idle: head of us->idle (newest first), c->idle set, read timer
 *   keepalive_timeout, read handler gh_upstream_keepalive_check
 *       |-- readable: the upstream closed, failed, or sent bytes no
 *       |   request asked for                       -> close
 *       |-- timer                                   -> close
 *       |-- graceful shutdown (c->close)            -> close
 *       |-- pool full at a later put, least recently used -> close
 *       v
 *   gh_upstream_keepalive_get() (connect to the same sockaddr) -> in use
 *
 * The lists live in the gh_upstream_srv_conf_t, which each worker has a
 * private copy of after fork: no locking, and a pooled fd is only ever
 * in the process that opened it.  The links are embedded in the
 * connection's gh_upstream_conn_info_t, so putting a connection back
 * allocates nothing, however many times it is reused.
 */
#include "gh_upstream.h"

/* every pooled connection of this worker, for gh_upstream_keepalive_close_all
 * at exit (the groups themselves are not listed anywhere global) */
static gh_upstream_idle_t *gh_upstream_idle_all;


static void
gh_upstream_keepalive_noop(gh_event_t *ev)
{
}


/* take c out of its pool; it stays open and registered */
static void
gh_upstream_idle_unlink(gh_conn_t *c)
{
    gh_upstream_conn_info_t *info = gh_upstream_conn_info(c);
    gh_upstream_idle_t      *it = &info->idle;
    gh_upstream_srv_conf_t  *us = info->us;

    if (it->prev != NULL) {
        it->prev->next = it->next;
    } else {
        us->idle = it->next;
    }
    if (it->next != NULL) {
        it->next->prev = it->prev;
    } else {
        us->idle_tail = it->prev;
    }
    if (it->all_prev != NULL) {
        it->all_prev->all_next = it->all_next;
    } else {
        gh_upstream_idle_all = it->all_next;
    }
    if (it->all_next != NULL) {
        it->all_next->all_prev = it->all_prev;
    }
    memset(it, 0, sizeof(*it));
    us->nidle--;

    gh_conn_set_idle(c, false);
    gh_timer_del(c->loop, &c->read);
    c->read.cancelable = 0;
}


static void
gh_upstream_idle_close(gh_conn_t *c)
{
    gh_upstream_idle_unlink(c);
    gh_conn_close(c);
}


/* read handler while idle: nothing may arrive on a connection no
 * request is using, so any event is the end of it, except a spurious
 * wake-up with nothing to read */
static void
gh_upstream_keepalive_check(gh_event_t *ev)
{
    gh_conn_t *c = ev->data;
    uint8_t    byte;

    if (c->close || ev->timedout) {
        gh_upstream_idle_close(c);
        return;
    }
    /* c->recv rather than recv(MSG_PEEK): the same call works once TLS
     * sits under the connection (issue 7) */
    if (c->recv(c, &byte, 1) == GH_AGAIN) {
        return;
    }
    gh_upstream_idle_close(c);
}


static bool
gh_upstream_keepalive_reusable(gh_conn_t *c, gh_upstream_conn_info_t *info)
{
    gh_upstream_srv_conf_t *us = info->us;

    if (us == NULL || us->keepalive <= 0 || gh_conns.quitting || c->close) {
        return false;
    }
    if (c->read.eof || c->read.error || c->read.timedout || c->write.error
        || c->write.timedout)
    {
        return false;
    }
    if (info->requests >= (gh_uint_t) us->keepalive_requests) {
        return false;
    }
    return gh_current_msec - info->created < us->keepalive_time;
}


void
gh_upstream_keepalive_put(gh_conn_t *c)
{
    gh_upstream_conn_info_t *info;
    gh_upstream_srv_conf_t  *us;
    gh_upstream_idle_t      *it;

    if (c == NULL || c->destroyed) {
        return;
    }
    info = gh_upstream_conn_info(c);
    if (info == NULL || !gh_upstream_keepalive_reusable(c, info)) {
        gh_conn_close(c);
        return;
    }
    us = info->us;
    it = &info->idle;
    GH_ASSERT(it->c == NULL);
    if (it->c != NULL) {
        return;      /* already pooled: a second put is a caller's bug */
    }

    /* nothing of the request may fire on it any more */
    gh_timer_del(c->loop, &c->read);
    gh_timer_del(c->loop, &c->write);
    gh_delete_posted_event(c->loop, &c->read);
    gh_delete_posted_event(c->loop, &c->write);
    c->data = NULL;
    c->read.handler = gh_upstream_keepalive_check;
    c->write.handler = gh_upstream_keepalive_noop;
    /* the log context pointed at the client request, which ends now */
    c->log.handler = NULL;
    c->log.data = NULL;

    if (us->nidle >= (gh_uint_t) us->keepalive && us->idle_tail != NULL) {
        gh_upstream_idle_close(us->idle_tail->c);
    }

    it->c = c;
    it->prev = NULL;
    it->next = us->idle;
    if (us->idle != NULL) {
        us->idle->prev = it;
    } else {
        us->idle_tail = it;
    }
    us->idle = it;
    us->nidle++;
    it->all_prev = NULL;
    it->all_next = gh_upstream_idle_all;
    if (gh_upstream_idle_all != NULL) {
        gh_upstream_idle_all->all_prev = it;
    }
    gh_upstream_idle_all = it;

    /* idle: graceful shutdown closes it, and its timer does not keep a
     * quitting worker alive */
    gh_conn_set_idle(c, true);
    c->read.cancelable = 1;
    gh_timer_add(c->loop, &c->read, us->keepalive_timeout);

    /* edge-triggered: whatever arrived while the response was being
     * finished (a close, stray bytes) will not be announced again */
    if (c->read.ready) {
        gh_upstream_keepalive_check(&c->read);
    }
}


gh_conn_t *
gh_upstream_keepalive_get(gh_upstream_srv_conf_t *us,
    const gh_upstream_peer_t *peer)
{
    gh_upstream_idle_t *it;
    gh_conn_t          *c;

    /* most recently used first: the one least likely to have been
     * closed by the upstream's own idle timeout */
    for (it = us->idle; it != NULL; it = it->next) {
        c = it->c;
        gh_upstream_conn_info_t *info = gh_upstream_conn_info(c);
        if (info->socklen != peer->socklen
            || memcmp(&info->sockaddr, &peer->sockaddr, peer->socklen) != 0)
        {
            continue;
        }
        gh_upstream_idle_unlink(c);
        c->read.handler = gh_upstream_keepalive_noop;
        c->write.handler = gh_upstream_keepalive_noop;
        c->read.timedout = 0;
        /* an idle connection has nothing queued: the caller may write
         * at once (a full buffer just returns GH_AGAIN, and an edge
         * follows when it drains) */
        c->write.ready = 1;
        return c;
    }
    return NULL;
}


void
gh_upstream_keepalive_close_all(void)
{
    while (gh_upstream_idle_all != NULL) {
        gh_upstream_idle_close(gh_upstream_idle_all->c);
    }
}
