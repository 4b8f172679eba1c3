/*
 * gh_log.c: the error log.
 *
 * A message is formatted once into a stack buffer, then written with one
 * write() per sink: a single write keeps lines from different workers
 * whole in an O_APPEND file.  Lines longer than GH_LOG_MAX_LINE are cut,
 * as nginx does, rather than allocating in an error path.
 */
#include "gh_core.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#define GH_LOG_MAX_LINE 2048

static gh_log_file_t gh_stderr_file = { STDERR_FILENO, NULL, NULL };

gh_log_t gh_log_stderr = {
    .level = GH_LOG_INFO,
    .file = &gh_stderr_file,
};

bool gh_log_startup_style = true;

static const char *const gh_log_levels[] = {
    "stderr", "emerg", "alert", "crit", "error", "warn", "notice", "info",
    "debug"
};

int
gh_log_level_parse(const gh_str_t *name)
{
    /* "stderr" is an internal level, not something error_log accepts */
    for (int i = GH_LOG_EMERG; i <= GH_LOG_DEBUG; i++) {
        if (gh_str_eq_c(name, gh_log_levels[i])) {
            return i;
        }
    }
    return -1;
}

const char *
gh_log_level_name(int level)
{
    if (level < GH_LOG_STDERR || level > GH_LOG_DEBUG) {
        return "unknown";
    }
    return gh_log_levels[level];
}

/* a bounded appender: writes what fits and silently truncates */
typedef struct {
    uint8_t *p;
    uint8_t *end;
} gh_log_out_t;

static void
gh_log_putf(gh_log_out_t *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
gh_log_putf(gh_log_out_t *o, const char *fmt, ...)
{
    va_list args;
    int     n;

    va_start(args, fmt);
    n = vsnprintf((char *) o->p, (size_t) (o->end - o->p), fmt, args);
    va_end(args);
    if (n > 0) {
        o->p += gh_min((size_t) n, (size_t) (o->end - o->p));
    }
}

static void
gh_log_put_msg(gh_log_out_t *o, const char *fmt, va_list args)
{
    static const char hex[] = "0123456789ABCDEF";
    uint8_t           msg[GH_LOG_MAX_LINE];
    int               n;

    n = vsnprintf((char *) msg, sizeof(msg), fmt, args);
    if (n <= 0) {
        return;
    }
    /* control characters would let data inside a message start a forged
     * log line; callers escape untrusted bytes, this is the backstop */
    for (size_t i = 0; i < gh_min((size_t) n, sizeof(msg) - 1); i++) {
        if (msg[i] >= 0x20 && msg[i] != 0x7f) {
            if (o->p < o->end) {
                *o->p++ = msg[i];
            }
        } else if (o->end - o->p >= 4) {
            *o->p++ = '\\';
            *o->p++ = 'x';
            *o->p++ = (uint8_t) hex[msg[i] >> 4];
            *o->p++ = (uint8_t) hex[msg[i] & 0xf];
        }
    }
}

/* message, " (errno: strerror)", handler context: the part shared by the
 * full and the startup line formats */
static size_t
gh_log_body(uint8_t *buf, size_t size, gh_log_t *log, int err,
    const char *fmt, va_list args)
{
    gh_log_out_t o = { buf, buf + size };
    char         ebuf[128];

    gh_log_put_msg(&o, fmt, args);
    if (err) {
        gh_log_putf(&o, " (%d: %s)", err,
            strerror_r(err, ebuf, sizeof(ebuf)));
    }
    if (log->handler && o.p < o.end) {
        o.p += log->handler(log, o.p, (size_t) (o.end - o.p));
    }
    return (size_t) (o.p - buf);
}

static void
gh_log_write(int fd, const uint8_t *buf, size_t len)
{
    ssize_t n;

    /* nothing sensible to do if the log itself fails */
    do {
        n = write(fd, buf, len);
    } while (n < 0 && errno == EINTR);
}

/* writes "prefix body\n" in one call */
static void
gh_log_emit(int fd, const uint8_t *prefix, size_t plen, const uint8_t *body,
    size_t blen)
{
    uint8_t line[GH_LOG_MAX_LINE * 2 + 2];

    memcpy(line, prefix, plen);
    memcpy(line + plen, body, blen);
    line[plen + blen] = '\n';
    gh_log_write(fd, line, plen + blen + 1);
}

static size_t
gh_log_prefix(uint8_t *buf, size_t size, int level, const gh_log_t *log)
{
    gh_log_out_t o = { buf, buf + size };

    if (gh_cached_err_log_time.len == 0) {
        gh_time_update();
    }
    gh_log_putf(&o, "%.*s [%s] %d#0: ", (int) gh_cached_err_log_time.len,
        (const char *) gh_cached_err_log_time.data,
        gh_log_level_name(level), (int) getpid());
    if (log->connection) {
        gh_log_putf(&o, "*%llu ", (unsigned long long) log->connection);
    }
    return (size_t) (o.p - buf);
}

void
gh_log_verror(int level, gh_log_t *log, int err, const char *fmt,
    va_list args)
{
    uint8_t body[GH_LOG_MAX_LINE], full[128], shrt[32];
    size_t  blen, flen = 0, slen;
    bool    to_stderr = false;
    int     saved = errno;

    blen = gh_log_body(body, sizeof(body), log, err, fmt, args);
    slen = (size_t) snprintf((char *) shrt, sizeof(shrt), GH_NAME ": [%s] ",
        gh_log_level_name(level));

    for (gh_log_t *l = log; l; l = l->next) {
        int fd = l->file ? l->file->fd : STDERR_FILENO;

        if (level > l->level) {
            continue;
        }
        if (fd == STDERR_FILENO) {
            to_stderr = true;
        }
        if (fd == STDERR_FILENO && gh_log_startup_style) {
            gh_log_emit(fd, shrt, slen, body, blen);
            continue;
        }
        if (flen == 0) {
            flen = gh_log_prefix(full, sizeof(full), level, log);
        }
        gh_log_emit(fd, full, flen, body, blen);
    }
    if (gh_log_startup_style && !to_stderr && level <= GH_LOG_WARN) {
        gh_log_emit(STDERR_FILENO, shrt, slen, body, blen);
    }
    errno = saved;
}

void
gh_log_error(int level, gh_log_t *log, int err, const char *fmt, ...)
{
    va_list args;

    if (!gh_log_enabled(log, level)) {
        return;
    }
    va_start(args, fmt);
    gh_log_verror(level, log, err, fmt, args);
    va_end(args);
}

static int
gh_log_open_fd(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

static gh_log_file_t *
gh_log_find_file(gh_log_file_t *list, const char *path)
{
    for (gh_log_file_t *f = list; f; f = f->next) {
        if (path == NULL ? f->path == NULL
                         : f->path && strcmp(f->path, path) == 0)
        {
            return f;
        }
    }
    return NULL;
}

gh_log_file_t *
gh_log_open_file(gh_log_file_t **list, const char *path)
{
    gh_log_file_t *f;
    int            fd = STDERR_FILENO;

    if (path && strcmp(path, "stderr") == 0) {
        path = NULL;
    }
    f = gh_log_find_file(*list, path);
    if (f) {
        return f;
    }
    if (path) {
        fd = gh_log_open_fd(path);
        if (fd < 0) {
            return NULL;
        }
    }
    f = gh_xcalloc(1, sizeof(gh_log_file_t));
    f->fd = fd;
    f->path = path ? gh_xstrdup(path) : NULL;
    f->next = *list;
    *list = f;
    return f;
}

void
gh_log_reopen(gh_log_file_t *list)
{
    for (gh_log_file_t *f = list; f; f = f->next) {
        int fd;

        if (f->path == NULL) {
            continue;
        }
        fd = gh_log_open_fd(f->path);
        if (fd < 0) {
            /* keep writing to the old (rotated) file rather than lose
             * messages */
            gh_log_error(GH_LOG_ALERT, &gh_log_stderr, errno,
                "open() \"%s\" failed", f->path);
            continue;
        }
        /* dup3 keeps the fd number, which workers and cached gh_log_t
         * copies hold; O_CLOEXEC because dup2 would drop the flag */
        if (fd != f->fd && dup3(fd, f->fd, O_CLOEXEC) < 0) {
            gh_log_error(GH_LOG_ALERT, &gh_log_stderr, errno,
                "dup3() for \"%s\" failed", f->path);
        }
        close(fd);
    }
}

void
gh_log_files_close(gh_log_file_t *list)
{
    gh_log_file_t *next;

    for (gh_log_file_t *f = list; f; f = next) {
        next = f->next;
        if (f->fd > STDERR_FILENO) {
            close(f->fd);
        }
        free(f->path);
        free(f);
    }
}
