/*
 * gh_time.c: the time cache.
 *
 * The loop calls gh_time_update() once after each epoll_wait(), so every
 * handler of one iteration sees the same "now" and nobody pays for
 * clock_gettime() or strftime() per request.  The strings are rebuilt
 * only when the second changes.  Month and day names come from tables,
 * not strftime(), because HTTP dates must not follow the locale.
 */
#include "gh_core.h"

#include <stdio.h>
#include <time.h>

static char gh_err_log_time[sizeof("1970/09/28 12:00:00")];
static char gh_http_time[sizeof("Mon, 28 Sep 1970 06:00:00 GMT")];
static char gh_log_time[sizeof("28/Sep/1970:12:00:00 +0600")];
static char gh_iso8601_time[sizeof("1970-09-28T12:00:00+06:00")];

gh_str_t gh_cached_err_log_time = { 0, (uint8_t *) gh_err_log_time };
gh_str_t gh_cached_http_time = { 0, (uint8_t *) gh_http_time };
gh_str_t gh_cached_log_time = { 0, (uint8_t *) gh_log_time };
gh_str_t gh_cached_iso8601_time = { 0, (uint8_t *) gh_iso8601_time };

volatile gh_msec_t gh_current_msec;
volatile uint64_t  gh_current_usec;
volatile int64_t   gh_current_sec;
volatile gh_msec_t gh_current_wall_msec;

static int64_t gh_cached_sec = -1;

static const char *const gh_week[] = {
    "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"
};
static const char *const gh_months[] = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun",
    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
};

/* snprintf into a cache slot; the buffers are sized for 4-digit years */
static void
gh_time_set(gh_str_t *s, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
gh_time_set(gh_str_t *s, size_t size, const char *fmt, ...)
{
    va_list args;
    int     n;

    va_start(args, fmt);
    n = vsnprintf((char *) s->data, size, fmt, args);
    va_end(args);
    s->len = n > 0 ? gh_min((size_t) n, size - 1) : 0;
}

static void
gh_time_strings(time_t sec)
{
    struct tm gmt, tm;
    long      off;

    gmtime_r(&sec, &gmt);
    localtime_r(&sec, &tm);
    /* tm_gmtoff (a BSD/GNU field) is in seconds east of UTC */
    off = tm.tm_gmtoff / 60;

    gh_time_set(&gh_cached_http_time, sizeof(gh_http_time),
        "%s, %02d %s %04d %02d:%02d:%02d GMT", gh_week[gmt.tm_wday],
        gmt.tm_mday, gh_months[gmt.tm_mon], gmt.tm_year + 1900,
        gmt.tm_hour, gmt.tm_min, gmt.tm_sec);
    gh_time_set(&gh_cached_err_log_time, sizeof(gh_err_log_time),
        "%04d/%02d/%02d %02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
        tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    gh_time_set(&gh_cached_log_time, sizeof(gh_log_time),
        "%02d/%s/%04d:%02d:%02d:%02d %c%02ld%02ld", tm.tm_mday,
        gh_months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
        tm.tm_sec, off < 0 ? '-' : '+', labs(off) / 60, labs(off) % 60);
    gh_time_set(&gh_cached_iso8601_time, sizeof(gh_iso8601_time),
        "%04d-%02d-%02dT%02d:%02d:%02d%c%02ld:%02ld", tm.tm_year + 1900,
        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
        off < 0 ? '-' : '+', labs(off) / 60, labs(off) % 60);
}

void
gh_time_update(void)
{
    struct timespec ts;

    /* monotonic for timers: a wall clock step must not fire or starve
     * every timeout at once */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    gh_current_msec = (gh_msec_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    gh_current_usec = (uint64_t) ts.tv_sec * 1000000
        + (uint64_t) ts.tv_nsec / 1000;

    clock_gettime(CLOCK_REALTIME, &ts);
    gh_current_sec = ts.tv_sec;
    gh_current_wall_msec = (gh_msec_t) ts.tv_sec * 1000
        + ts.tv_nsec / 1000000;

    if (ts.tv_sec != gh_cached_sec) {
        gh_cached_sec = ts.tv_sec;
        gh_time_strings(ts.tv_sec);
    }
}

void
gh_time_init(void)
{
    /* read TZ once; localtime_r() is not required to */
    tzset();
    gh_cached_sec = -1;
    gh_time_update();
}
