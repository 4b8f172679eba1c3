/*
 * gh_socket.c: listening sockets and socket addresses.
 *
 * Address syntax and error wording follow nginx's "listen" and
 * "server" directives so that configurations and their mistakes read the
 * same.  Name resolution here is blocking (getaddrinfo) and therefore
 * only for configuration time.
 */
#include "gh_conn.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define GH_LISTEN_BACKLOG 511   /* nginx's default on Linux */

/* --- sockaddr -> text ---------------------------------------------------- */

static int
gh_ntop_unix(const struct sockaddr *sa, socklen_t len, char *buf,
    size_t size)
{
    const struct sockaddr_un *sun = (const struct sockaddr_un *) sa;
    size_t                    off = offsetof(struct sockaddr_un, sun_path);
    size_t                    plen;

    /* an unnamed peer (the usual client) has no path at all */
    if (len <= off) {
        return snprintf(buf, size, "unix:");
    }
    plen = gh_min((size_t) len - off, sizeof(sun->sun_path));
    if (sun->sun_path[0] == '\0') {
        /* abstract namespace, shown as Linux tools do */
        return snprintf(buf, size, "unix:@%.*s", (int) plen - 1,
            sun->sun_path + 1);
    }
    return snprintf(buf, size, "unix:%.*s",
        (int) strnlen(sun->sun_path, plen), sun->sun_path);
}

size_t
gh_sock_ntop(const struct sockaddr *sa, socklen_t len, char *buf,
    size_t size, bool port)
{
    const struct sockaddr_in  *sin = (const struct sockaddr_in *) sa;
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) sa;
    char                       ip[INET6_ADDRSTRLEN];
    int                        n;

    if (size == 0) {
        return 0;
    }
    switch (sa->sa_family) {
    case AF_INET:
        inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
        n = port ? snprintf(buf, size, "%s:%u", ip, ntohs(sin->sin_port))
                 : snprintf(buf, size, "%s", ip);
        break;
    case AF_INET6:
        inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
        n = port ? snprintf(buf, size, "[%s]:%u", ip, ntohs(sin6->sin6_port))
                 : snprintf(buf, size, "%s", ip);
        break;
    case AF_UNIX:
        n = gh_ntop_unix(sa, len, buf, size);
        break;
    default:
        n = 0;
        buf[0] = '\0';
        break;
    }
    return n > 0 ? gh_min((size_t) n, size - 1) : 0;
}

/* --- text -> sockaddr ---------------------------------------------------- */

static gh_int_t
gh_parse_port(const uint8_t *p, size_t n, int *port, const char **err)
{
    gh_int_t v = gh_atoi(p, n);

    if (v < 1 || v > 65535) {
        *err = "invalid port";
        return GH_ERROR;
    }
    *port = (int) v;
    return GH_OK;
}

static gh_int_t
gh_parse_unix(const uint8_t *path, size_t n, struct sockaddr_storage *ss,
    socklen_t *len, const char **err)
{
    struct sockaddr_un *sun = (struct sockaddr_un *) ss;

    if (n == 0) {
        *err = "no path in the unix domain socket";
        return GH_ERROR;
    }
    if (n >= sizeof(sun->sun_path) || memchr(path, '\0', n)) {
        *err = "too long path in the unix domain socket";
        return GH_ERROR;
    }
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, path, n);
    sun->sun_path[n] = '\0';
    *len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n + 1);
    return GH_OK;
}

static void
gh_set_inet(struct sockaddr_storage *ss, socklen_t *len,
    const struct in_addr *addr, int port)
{
    struct sockaddr_in *sin = (struct sockaddr_in *) ss;

    sin->sin_family = AF_INET;
    sin->sin_addr = *addr;
    sin->sin_port = htons((uint16_t) port);
    *len = sizeof(struct sockaddr_in);
}

static gh_int_t
gh_resolve(const char *host, struct sockaddr_storage *ss, socklen_t *len,
    int port, const char **err)
{
    struct addrinfo  hints = { .ai_socktype = SOCK_STREAM };
    struct addrinfo *res, *ai, *pick = NULL;

    if (getaddrinfo(host, NULL, &hints, &res) != 0) {
        *err = "host not found";
        return GH_ERROR;
    }
    /* the first IPv4 address, else the first at all: "localhost" must not
     * depend on gai.conf ordering from one machine to the next */
    for (ai = res; ai; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6) {
            if (pick == NULL || (ai->ai_family == AF_INET
                                 && pick->ai_family != AF_INET))
            {
                pick = ai;
            }
        }
    }
    if (pick == NULL || pick->ai_addrlen > sizeof(*ss)) {
        freeaddrinfo(res);
        *err = "host not found";
        return GH_ERROR;
    }
    memcpy(ss, pick->ai_addr, pick->ai_addrlen);
    *len = pick->ai_addrlen;
    /* sin_port and sin6_port are at the same offset */
    ((struct sockaddr_in *) ss)->sin_port = htons((uint16_t) port);
    freeaddrinfo(res);
    return GH_OK;
}

static gh_int_t
gh_parse_host(const uint8_t *h, size_t n, struct sockaddr_storage *ss,
    socklen_t *len, int port, const char **err)
{
    char           host[NI_MAXHOST];
    struct in_addr any = { .s_addr = htonl(INADDR_ANY) };
    struct in_addr a4;

    if (n == 0) {
        *err = "no host";
        return GH_ERROR;
    }
    if (n == 1 && h[0] == '*') {
        gh_set_inet(ss, len, &any, port);
        return GH_OK;
    }
    if (n >= sizeof(host) || memchr(h, '\0', n) || memchr(h, ':', n)) {
        /* a colon here is a bare IPv6 address: nginx wants brackets */
        *err = "invalid host";
        return GH_ERROR;
    }
    memcpy(host, h, n);
    host[n] = '\0';
    if (inet_pton(AF_INET, host, &a4) == 1) {
        gh_set_inet(ss, len, &a4, port);
        return GH_OK;
    }
    return gh_resolve(host, ss, len, port, err);
}

static gh_int_t
gh_parse_inet6(const uint8_t *p, size_t n, struct sockaddr_storage *ss,
    socklen_t *len, int port, const char **err)
{
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) ss;
    const uint8_t       *rb = memchr(p, ']', n);
    char                 addr[INET6_ADDRSTRLEN + 1];
    size_t               alen;

    if (rb == NULL) {
        *err = "invalid host";
        return GH_ERROR;
    }
    alen = (size_t) (rb - p) - 1;
    if (rb + 1 < p + n) {
        if (rb[1] != ':') {
            *err = "invalid host";
            return GH_ERROR;
        }
        if (gh_parse_port(rb + 2, (size_t) (p + n - rb - 2), &port, err)
            != GH_OK)
        {
            return GH_ERROR;
        }
    } else if (port <= 0) {
        *err = "no port";
        return GH_ERROR;
    }
    if (alen >= sizeof(addr)) {
        *err = "invalid IPv6 address";
        return GH_ERROR;
    }
    memcpy(addr, p + 1, alen);
    addr[alen] = '\0';
    if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) != 1) {
        *err = "invalid IPv6 address";
        return GH_ERROR;
    }
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t) port);
    *len = sizeof(struct sockaddr_in6);
    return GH_OK;
}

static bool
gh_all_digits(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return false;
        }
    }
    return n > 0;
}

gh_int_t
gh_parse_addr_port(const gh_str_t *s, struct sockaddr_storage *ss,
    socklen_t *len, int default_port, const char **err)
{
    const uint8_t *p = s->data, *colon;
    size_t         n = s->len;
    int            port = default_port;

    memset(ss, 0, sizeof(*ss));
    if (n >= 5 && memcmp(p, "unix:", 5) == 0) {
        return gh_parse_unix(p + 5, n - 5, ss, len, err);
    }
    if (n > 0 && p[0] == '[') {
        return gh_parse_inet6(p, n, ss, len, port, err);
    }
    if (gh_all_digits(p, n)) {
        /* "8080": every IPv4 address */
        if (gh_parse_port(p, n, &port, err) != GH_OK) {
            return GH_ERROR;
        }
        return gh_parse_host((const uint8_t *) "*", 1, ss, len, port, err);
    }
    colon = n ? memchr(p, ':', n) : NULL;
    if (colon && memchr(colon + 1, ':', (size_t) (p + n - colon - 1)) == NULL)
    {
        if (gh_parse_port(colon + 1, (size_t) (p + n - colon - 1), &port,
                err) != GH_OK)
        {
            return GH_ERROR;
        }
        n = (size_t) (colon - p);
    } else if (colon == NULL && port <= 0) {
        *err = "no port";
        return GH_ERROR;
    }
    return gh_parse_host(p, n, ss, len, port, err);
}

/* --- listening sockets --------------------------------------------------- */

static gh_int_t
gh_setsockopt_int(gh_listening_t *ls, int fd, int level, int name,
    const char *what, int value, gh_log_t *log)
{
    if (setsockopt(fd, level, name, &value, sizeof(value)) < 0) {
        gh_log_error(GH_LOG_EMERG, log, errno, "setsockopt(%s) %s failed",
            what, ls->addr_text);
        return GH_ERROR;
    }
    return GH_OK;
}

static gh_int_t
gh_listening_options(gh_listening_t *ls, int fd, gh_log_t *log)
{
    int family = ls->sockaddr.ss_family;

    if (family != AF_UNIX
        && gh_setsockopt_int(ls, fd, SOL_SOCKET, SO_REUSEADDR,
               "SO_REUSEADDR", 1, log) != GH_OK)
    {
        return GH_ERROR;
    }
    if (ls->reuseport
        && gh_setsockopt_int(ls, fd, SOL_SOCKET, SO_REUSEPORT,
               "SO_REUSEPORT", 1, log) != GH_OK)
    {
        return GH_ERROR;
    }
    /* v6-only so that "[::]:80" does not collide with "80" */
    if (family == AF_INET6
        && gh_setsockopt_int(ls, fd, IPPROTO_IPV6, IPV6_V6ONLY,
               "IPV6_V6ONLY", 1, log) != GH_OK)
    {
        return GH_ERROR;
    }
    if (ls->rcvbuf > 0
        && gh_setsockopt_int(ls, fd, SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF",
               ls->rcvbuf, log) != GH_OK)
    {
        return GH_ERROR;
    }
    if (ls->sndbuf > 0
        && gh_setsockopt_int(ls, fd, SOL_SOCKET, SO_SNDBUF, "SO_SNDBUF",
               ls->sndbuf, log) != GH_OK)
    {
        return GH_ERROR;
    }
    return GH_OK;
}

/* A socket file left by a process that died is "stale" when nobody
 * accepts on it any more; a live one is left alone so that bind() fails
 * with EADDRINUSE instead of stealing another server's socket. */
static void
gh_unlink_stale(gh_listening_t *ls, gh_log_t *log)
{
    struct sockaddr_un *sun = (struct sockaddr_un *) &ls->sockaddr;
    struct stat         st;
    int                 fd, rc, err;

    if (sun->sun_path[0] == '\0' || lstat(sun->sun_path, &st) < 0
        || !S_ISSOCK(st.st_mode))
    {
        return;
    }
    /* nonblocking: a live server with a full backlog answers EAGAIN
     * instead of making us wait */
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return;
    }
    rc = connect(fd, (struct sockaddr *) sun, ls->socklen);
    err = errno;
    close(fd);
    if (rc < 0 && err == ECONNREFUSED && unlink(sun->sun_path) == 0) {
        gh_log_error(GH_LOG_NOTICE, log, 0, "removed stale socket %s",
            ls->addr_text);
    }
}

/* Linux copies TCP_NODELAY from a listener to the sockets accept()
 * returns; set here (again for a listener inherited from a previous
 * binary, which may not have it), it saves a setsockopt() per accepted
 * connection.  Failing only loses that: each connection sets it then. */
static void
gh_listening_nodelay(gh_listening_t *ls, int fd)
{
    int one = 1;

    ls->nodelay = ls->sockaddr.ss_family != AF_UNIX
        && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0;
}

gh_int_t
gh_listening_open(gh_listening_t *ls, gh_log_t *log)
{
    int family = ls->sockaddr.ss_family;
    int fd;

    if (ls->inherited) {
        gh_listening_nodelay(ls, ls->fd);
        return GH_OK;
    }
    if (ls->addr_text[0] == '\0') {
        gh_sock_ntop((struct sockaddr *) &ls->sockaddr, ls->socklen,
            ls->addr_text, sizeof(ls->addr_text), true);
    }
    fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        gh_log_error(GH_LOG_EMERG, log, errno, "socket() %s failed",
            ls->addr_text);
        return GH_ERROR;
    }
    if (gh_listening_options(ls, fd, log) != GH_OK) {
        goto failed;
    }
    if (family == AF_UNIX) {
        gh_unlink_stale(ls, log);
    }
    if (bind(fd, (struct sockaddr *) &ls->sockaddr, ls->socklen) < 0) {
        gh_log_error(GH_LOG_EMERG, log, errno, "bind() to %s failed",
            ls->addr_text);
        goto failed;
    }
    if (listen(fd, ls->backlog > 0 ? ls->backlog : GH_LISTEN_BACKLOG) < 0) {
        gh_log_error(GH_LOG_EMERG, log, errno, "listen() to %s, backlog %d "
            "failed", ls->addr_text, ls->backlog);
        goto failed;
    }
    /* wake the worker only once the request's first bytes arrived; a
     * failure just loses the optimisation */
    if (ls->deferred && family != AF_UNIX) {
        int secs = 1;

        if (setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs,
                sizeof(secs)) < 0)
        {
            gh_log_error(GH_LOG_WARN, log, errno,
                "setsockopt(TCP_DEFER_ACCEPT) for %s failed, ignored",
                ls->addr_text);
        }
    }
    gh_listening_nodelay(ls, fd);
    ls->fd = fd;
    return GH_OK;

failed:
    close(fd);
    return GH_ERROR;
}
