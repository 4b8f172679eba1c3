/*
 * bench/forwarder.c: the floor of an epoll proxy, for bench/syscalls.py.
 *
 * Not HTTP at all: each accepted connection gets its own upstream
 * connection, and bytes go through as they come (recv, then send to the
 * other side), one edge-triggered epoll loop, TCP_NODELAY on both.  Per
 * keep-alive request that is the four socket calls every proxy needs and
 * a share of epoll_wait, with no parsing, no pool and no timers: what is
 * left of a proxy's CPU per request when its own work is zero.
 *
 *   forwarder LISTEN_PORT UPSTREAM_PORT      (both on 127.0.0.1)
 *
 * A bench tool: small messages only (a send is never short for the
 * request and response sizes of scenario 1), no error recovery beyond
 * closing both sides.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct side_s side_t;
struct side_s {
    int     fd;
    side_t *other;
};

static char fw_buf[65536];

static int
fw_socket_to(int port)
{
    struct sockaddr_in sin = { .sin_family = AF_INET,
                               .sin_port = htons((uint16_t) port) };
    int                one = 1;
    int                fd = socket(AF_INET, SOCK_STREAM, 0);

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *) &sin, sizeof(sin)) != 0) {
        perror("forwarder: connect");
        exit(1);
    }
    /* blocking connect (loopback), non-blocking from then on */
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
        perror("forwarder: fcntl");
        exit(1);
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static void
fw_add(int ep, side_t *s)
{
    struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLET,
                              .data.ptr = s };

    if (epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev) != 0) {
        perror("forwarder: epoll_ctl");
        exit(1);
    }
}

static void
fw_accept(int ep, int lfd, int upstream_port)
{
    int one = 1, fd;

    while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
        side_t *c = calloc(1, sizeof(*c)), *u = calloc(1, sizeof(*u));

        if (c == NULL || u == NULL) {
            exit(1);
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->fd = fd;
        u->fd = fw_socket_to(upstream_port);
        c->other = u;
        u->other = c;
        fw_add(ep, c);
        fw_add(ep, u);
    }
}

static void
fw_close(side_t *s)
{
    side_t *o = s->other;

    /* closing removes both from epoll; the pair is leaked on purpose:
     * a later event of this batch may still name it */
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
    if (o->fd >= 0) {
        close(o->fd);
        o->fd = -1;
    }
}

static void
fw_relay(side_t *s)
{
    for (;;) {
        ssize_t n;

        if (s->fd < 0 || s->other->fd < 0) {
            return;
        }
        n = recv(s->fd, fw_buf, sizeof(fw_buf), 0);
        if (n <= 0) {
            if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                fw_close(s);
            }
            return;
        }
        if (send(s->other->fd, fw_buf, (size_t) n, MSG_NOSIGNAL) != n) {
            fw_close(s);
            return;
        }
        if ((size_t) n < sizeof(fw_buf)) {
            return;     /* drained: the next bytes bring a new edge */
        }
    }
}

int
main(int argc, char **argv)
{
    struct sockaddr_in sin = { .sin_family = AF_INET };
    struct epoll_event evs[512], ev = { .events = EPOLLIN, .data.ptr = NULL };
    int                one = 1, lfd, ep, upstream_port;

    if (argc != 3) {
        fprintf(stderr, "usage: forwarder LISTEN_PORT UPSTREAM_PORT\n");
        return 2;
    }
    upstream_port = atoi(argv[2]);
    sin.sin_port = htons((uint16_t) atoi(argv[1]));
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (lfd < 0 || bind(lfd, (struct sockaddr *) &sin, sizeof(sin)) != 0
        || listen(lfd, 1024) != 0)
    {
        perror("forwarder: listen");
        return 1;
    }
    ep = epoll_create1(0);
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) != 0) {
        perror("forwarder: epoll");
        return 1;
    }
    for (;;) {
        int n = epoll_wait(ep, evs, 512, -1);

        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL) {
                fw_accept(ep, lfd, upstream_port);
            } else {
                fw_relay(evs[i].data.ptr);
            }
        }
    }
}
