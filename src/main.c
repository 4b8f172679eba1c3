/*
 * main.c: the command line, as nginx's.
 *
 *   gatehouse [-?hvVtTq] [-s signal] [-p prefix] [-e filename]
 *             [-c filename] [-g directives]
 *
 * Options may be grouped ("-tq") and a value may be glued to its option
 * ("-cfile") or be the next argument, as nginx allows.
 *
 * Defaults without a compiled-in prefix (see gh_cycle.c): the config is
 * "conf/gatehouse.conf", relative to -p if given, else to the working
 * directory; the prefix is derived from the config's location.
 *
 * Startup errors go to stderr as "gatehouse: [emerg] ..." (and to the
 * error log), and the exit status is 1 with nothing started.
 */
#include "core/gh_core.h"
#include "core/gh_cycle.h"
#include "event/gh_process.h"

#include <stdio.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/opensslv.h>
#include <zlib.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#define GH_DEFAULT_CONF     "conf/gatehouse.conf"
#define GH_DEFAULT_ERROR_LOG "logs/error.log"
#define GH_DEFAULT_PID      "logs/gatehouse.pid"


typedef struct {
    const char *conf_file;
    const char *prefix;
    const char *conf_param;
    const char *error_log;
    const char *signal;
    bool        help;
    bool        version;
    bool        build_info;
    bool        test;
    bool        dump;
    bool        quiet;
} gh_options_t;


static void
gh_usage(void)
{
    fputs(
        "Usage: " GH_NAME " [-?hvVtTq] [-s signal] [-p prefix]\n"
        "                 [-e filename] [-c filename] [-g directives]\n"
        "\n"
        "Options:\n"
        "  -?,-h         : this help\n"
        "  -v            : show version and exit\n"
        "  -V            : show version and build options then exit\n"
        "  -t            : test configuration and exit\n"
        "  -T            : test configuration, dump it and exit\n"
        "  -q            : suppress non-error messages during configuration"
        " testing\n"
        "  -s signal     : send signal to a master process: stop, quit,"
        " reopen, reload\n"
        "  -p prefix     : set prefix path (default: derived from the"
        " configuration\n"
        "                  file: the parent of its directory if that is"
        " \"conf\",\n"
        "                  else its directory)\n"
        "  -e filename   : set error log file (default: "
        GH_DEFAULT_ERROR_LOG ")\n"
        "  -c filename   : set configuration file (default: "
        GH_DEFAULT_CONF ",\n"
        "                  relative to the prefix if -p is given, else to"
        " the current\n"
        "                  directory)\n"
        "  -g directives : set global directives out of configuration file\n"
        "\n", stderr);
}


static void
gh_show_build_info(void)
{
#if defined(__clang__)
    fprintf(stderr, "built by clang %s\n", __clang_version__);
#elif defined(__GNUC__)
    fprintf(stderr, "built by gcc %s\n", __VERSION__);
#endif
    /* as nginx: the library found at run time may differ from the one
     * compiled against */
    if (strcmp(OPENSSL_VERSION_TEXT, OpenSSL_version(OPENSSL_VERSION)) != 0) {
        fprintf(stderr, "built with %s (running with %s)\n",
            OPENSSL_VERSION_TEXT, OpenSSL_version(OPENSSL_VERSION));
    } else {
        fprintf(stderr, "built with %s\n", OPENSSL_VERSION_TEXT);
    }
    fprintf(stderr, "built with PCRE2 %d.%d, zlib %s\n", PCRE2_MAJOR,
        PCRE2_MINOR, ZLIB_VERSION);
    /* there is no configure script; these are the equivalents of what
     * nginx's line would say, for tools that parse it */
    fprintf(stderr, "configure arguments: --conf-path=" GH_DEFAULT_CONF
        " --error-log-path=" GH_DEFAULT_ERROR_LOG
        " --pid-path=" GH_DEFAULT_PID
        " --with-pcre-jit"
#ifdef GH_DEBUG
        " --with-debug"
#endif
#if defined(__SANITIZE_ADDRESS__)
        " --with-cc-opt=-fsanitize=address"
#endif
        "\n");
}


/* the value of an option: the rest of this argument, else the next one */
static const char *
gh_option_value(int argc, char **argv, int *i, const char *rest,
    const char *what, char opt)
{
    if (*rest != '\0') {
        return rest;
    }
    if (*i + 1 < argc) {
        return argv[++*i];
    }
    fprintf(stderr, GH_NAME ": option \"-%c\" requires %s\n", opt, what);
    return NULL;
}


static gh_int_t
gh_parse_options(int argc, char **argv, gh_options_t *o)
{
    const char *p;

    for (int i = 1; i < argc; i++) {
        p = argv[i];
        if (*p++ != '-' || *p == '\0') {
            fprintf(stderr, GH_NAME ": invalid option: \"%s\"\n", argv[i]);
            return GH_ERROR;
        }

        while (*p != '\0') {
            switch (*p++) {
            case '?':
            case 'h':
                o->version = true;
                o->help = true;
                break;
            case 'v':
                o->version = true;
                break;
            case 'V':
                o->version = true;
                o->build_info = true;
                break;
            case 't':
                o->test = true;
                break;
            case 'T':
                o->test = true;
                o->dump = true;
                break;
            case 'q':
                o->quiet = true;
                break;
            case 'p':
                o->prefix = gh_option_value(argc, argv, &i, p,
                    "directory name", 'p');
                if (o->prefix == NULL) {
                    return GH_ERROR;
                }
                goto next;
            case 'e':
                o->error_log = gh_option_value(argc, argv, &i, p,
                    "file name", 'e');
                if (o->error_log == NULL) {
                    return GH_ERROR;
                }
                goto next;
            case 'c':
                o->conf_file = gh_option_value(argc, argv, &i, p,
                    "file name", 'c');
                if (o->conf_file == NULL) {
                    return GH_ERROR;
                }
                goto next;
            case 'g':
                o->conf_param = gh_option_value(argc, argv, &i, p,
                    "parameter", 'g');
                if (o->conf_param == NULL) {
                    return GH_ERROR;
                }
                goto next;
            case 's':
                o->signal = gh_option_value(argc, argv, &i, p,
                    "parameter", 's');
                if (o->signal == NULL) {
                    return GH_ERROR;
                }
                if (gh_signal_check(o->signal) != GH_OK) {
                    fprintf(stderr, GH_NAME ": invalid option: \"-s %s\"\n",
                        o->signal);
                    return GH_ERROR;
                }
                goto next;
            default:
                fprintf(stderr, GH_NAME ": invalid option: \"%c\"\n", p[-1]);
                return GH_ERROR;
            }
        }
    next:
        continue;
    }
    return GH_OK;
}


static int
gh_test_config(gh_cycle_t *cycle, const gh_options_t *o)
{
    char *name;

    if (cycle == NULL) {
        name = gh_cycle_conf_name(o->conf_file, o->prefix);
        fprintf(stderr, GH_NAME ": configuration file %s test failed\n",
            name);
        free(name);
        return 1;
    }
    if (!o->quiet) {
        fprintf(stderr, GH_NAME ": the configuration file %s syntax is ok\n",
            cycle->conf_file);
        fprintf(stderr, GH_NAME ": configuration file %s test is "
            "successful\n", cycle->conf_file);
    }
    if (o->dump) {
        gh_conf_dump(cycle->conf, STDOUT_FILENO);
    }
    gh_cycle_free(cycle);
    return 0;
}


/* sockets and zones, daemon, pid file, then the process model */
static int
gh_start(gh_cycle_t *cycle)
{
    gh_core_conf_t *ccf = gh_core_conf(cycle);

    if (gh_shm_zones_init(cycle->shm_zones, NULL, cycle->log) != GH_OK
        || gh_cycle_open_listening(cycle, NULL) != GH_OK)
    {
        goto failed;
    }
    if (ccf->daemon && gh_daemonize(cycle->log) != GH_OK) {
        goto failed;
    }
    /* written by the process that stays (the daemon child) and only once
     * every socket is open: whoever waits for the file can connect */
    if (gh_pidfile_write(ccf->pid, cycle->log) != GH_OK) {
        goto failed;
    }

    /* from here on messages go to the error_log files only */
    gh_log_startup_style = false;
    gh_cycle = cycle;

    if (ccf->master) {
        return gh_master_process_cycle(cycle);
    }
    return gh_single_process_cycle(cycle);

failed:
    /* freed so that a sanitizer build sees no leak on a failed start */
    gh_cycle_free(cycle);
    return 1;
}


int
main(int argc, char **argv)
{
    gh_options_t  o;
    gh_cycle_t   *cycle;
    int           rc;

    gh_proctitle_init(argc, argv);

    memset(&o, 0, sizeof(o));
    if (gh_parse_options(argc, argv, &o) != GH_OK) {
        return 1;
    }
    if (o.version) {
        fputs(GH_NAME " version: " GH_NAME "/" GH_VERSION "\n", stderr);
        if (o.help) {
            gh_usage();
        }
        if (o.build_info) {
            gh_show_build_info();
        }
        if (!o.test) {
            return 0;
        }
    }
    if (o.conf_file == NULL) {
        o.conf_file = GH_DEFAULT_CONF;
    }

    gh_time_init();
    gh_modules_init();

    cycle = gh_cycle_load(o.conf_file, o.prefix, o.conf_param, o.error_log,
        &gh_log_stderr, NULL);

    if (o.test) {
        return gh_test_config(cycle, &o);
    }
    if (cycle == NULL) {
        return 1;
    }
    if (o.signal != NULL) {
        rc = gh_signal_process(cycle, o.signal);
        gh_cycle_free(cycle);
        return rc;
    }
    return gh_start(cycle);
}
