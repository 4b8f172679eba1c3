/*
 * gh_log.h: error log.
 *
 * Levels as nginx: emerg alert crit error warn notice info debug.
 * A gh_log_t is a chain of sinks (error_log may be given several times),
 * each with its own level.  gh_log_error() checks the level before
 * formatting.  A `handler` may append context (", client: ..., request:
 * ...") to the line; HTTP sets it per connection.
 */
#ifndef GH_LOG_H
#define GH_LOG_H

#include <stdarg.h>

#define GH_LOG_STDERR 0
#define GH_LOG_EMERG  1
#define GH_LOG_ALERT  2
#define GH_LOG_CRIT   3
#define GH_LOG_ERR    4
#define GH_LOG_WARN   5
#define GH_LOG_NOTICE 6
#define GH_LOG_INFO   7
#define GH_LOG_DEBUG  8

typedef struct gh_log_file_s gh_log_file_t;
struct gh_log_file_s {
    int            fd;
    char          *path;     /* NULL for stderr */
    gh_log_file_t *next;     /* list of all open files of a cycle, for USR1 */
};

/* writes context into buf, returns bytes written */
typedef size_t (*gh_log_handler_pt)(gh_log_t *log, uint8_t *buf, size_t len);

struct gh_log_s {
    int                level;
    gh_log_file_t     *file;
    gh_log_handler_pt  handler;
    void              *data;       /* for handler */
    gh_log_t          *next;       /* further sinks */
    uint64_t           connection; /* non-zero: "*N " before the message
                                      (set by gh_conn_get in its copy) */
};

extern gh_log_t gh_log_stderr;     /* level info, fd 2 */

/*
 * Line formats:
 *   2026/11/26 15:04:05 [error] 1234#0: *7 connect() failed
 *       (111: Connection refused) while ..., client: ...
 * i.e. time, level, "pid#tid: ", "*conn " if log->connection, message,
 * " (errno: strerror)" if err != 0, then the handler's context.
 *
 * gh_log_startup_style (default true) is nginx's startup behaviour: lines
 * to stderr sinks are the short "gatehouse: [emerg] message" form, and
 * messages of level warn and above sent to file sinks are also echoed to
 * stderr in that form, so that configuration errors reach the terminal.
 * main() clears it once the configuration is loaded and the error_log
 * files are open (before daemonizing / starting workers).
 */
extern bool gh_log_startup_style;

int gh_log_level_parse(const gh_str_t *name);   /* -1 if unknown */
const char *gh_log_level_name(int level);

void gh_log_error(int level, gh_log_t *log, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void gh_log_verror(int level, gh_log_t *log, int err, const char *fmt,
    va_list args);

/* maximal level any sink of the chain accepts */
static inline bool
gh_log_enabled(const gh_log_t *log, int level)
{
    for (; log; log = log->next) {
        if (level <= log->level) {
            return true;
        }
    }
    return false;
}

#define gh_log(level, log, err, ...) \
    do { if (gh_log_enabled((log), (level))) \
        gh_log_error((level), (log), (err), __VA_ARGS__); } while (0)

/* open (or find already opened) file; path absolute.  Returns NULL and
 * sets errno on failure.  Path "stderr" (or NULL) gives an entry for fd 2
 * with path NULL. */
gh_log_file_t *gh_log_open_file(gh_log_file_t **list, const char *path);
/* reopen every file of the list (USR1) */
void gh_log_reopen(gh_log_file_t *list);
/* close (except fd 2) and free every entry of a list from
 * gh_log_open_file, e.g. the old cycle's after a reload */
void gh_log_files_close(gh_log_file_t *list);

/* cached time strings, updated by gh_time_update() */
extern gh_str_t gh_cached_err_log_time;    /* 2026/11/26 15:04:05 */
extern gh_str_t gh_cached_http_time;       /* Thu, 26 Nov 2026 15:04:05 GMT */
extern gh_str_t gh_cached_log_time;        /* 26/Nov/2026:15:04:05 +0000 */
extern gh_str_t gh_cached_iso8601_time;    /* 2026-11-26T15:04:05+00:00 */
extern volatile gh_msec_t gh_current_msec; /* monotonic ms */
extern volatile uint64_t gh_current_usec;  /* the same instant, in us */
extern volatile int64_t gh_current_sec;    /* wall clock seconds */
extern volatile gh_msec_t gh_current_wall_msec;

void gh_time_init(void);
void gh_time_update(void);

#endif
