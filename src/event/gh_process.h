/*
 * gh_process.h: the master/worker process model, daemonizing, the pid
 * file, process titles and `-s signal`.
 *
 * Signals, as nginx:
 *   master: HUP reload, QUIT graceful stop, TERM/INT fast stop,
 *           USR1 reopen logs, CHLD reap (and respawn), USR2/WINCH ignored
 *   worker: QUIT graceful stop, TERM/INT exit now, USR1 reopen logs
 */
#ifndef GH_PROCESS_H
#define GH_PROCESS_H

#include "../core/gh_cycle.h"

/* keep argv's memory for process titles ("gatehouse: worker process");
 * copies argv strings (argv[i] is replaced) and the environment, so call
 * it before anything keeps pointers into either */
void gh_proctitle_init(int argc, char **argv);
/* "gatehouse: <title>" in ps */
void gh_proctitle_set(const char *title);

/* fork and detach: the parent exits 0, the child is a session leader
 * with stdin/stdout/stderr on /dev/null */
gh_int_t gh_daemonize(gh_log_t *log);

gh_int_t gh_pidfile_write(const char *path, gh_log_t *log);
void gh_pidfile_remove(const char *path, gh_log_t *log);

/* run until stopped; return the exit status for main().  The cycle's
 * listening sockets and shared zones must be open. */
int gh_master_process_cycle(gh_cycle_t *cycle);
/* master_process off: one process serves (for debugging); reload is not
 * supported there */
int gh_single_process_cycle(gh_cycle_t *cycle);

/* -s stop|quit|reopen|reload: signal the pid in the cycle's pid file;
 * returns the exit status */
int gh_signal_process(gh_cycle_t *cycle, const char *name);
/* GH_ERROR if name is not one of the -s signals */
gh_int_t gh_signal_check(const char *name);

#endif
