/*
 * gh_upstream_int.h: what the files of src/upstream share and nobody
 * else needs: directive handlers listed in gh_upstream.c's table, the
 * end-of-configuration steps, the zone's lock and layout, and the hooks
 * between balancing, stickiness and health checks.
 */
#ifndef GH_UPSTREAM_INT_H
#define GH_UPSTREAM_INT_H

#include "gh_upstream.h"

/* --- balancing (gh_upstream_balance.c) -------------------------------- */

const char *gh_upstream_least_conn(gh_conf_t *cf, const gh_command_t *cmd,
    void *conf);
const char *gh_upstream_ip_hash(gh_conf_t *cf, const gh_command_t *cmd,
    void *conf);
const char *gh_upstream_hash(gh_conf_t *cf, const gh_command_t *cmd,
    void *conf);
const char *gh_upstream_random(gh_conf_t *cf, const gh_command_t *cmd,
    void *conf);
const char *gh_upstream_least_time(gh_conf_t *cf, const gh_command_t *cmd,
    void *conf);
/* method name for messages and the status endpoint */
const char *gh_upstream_method_name(gh_uint_t method);
/* end of the http block: method tables, sticky ids; NULL or a message */
const char *gh_upstream_balance_init(gh_conf_t *cf,
    gh_upstream_srv_conf_t *us);
/* usable now (down, health, fail window, max_conns); under the lock */
bool gh_upstream_peer_usable(gh_upstream_peer_t *peer,
    gh_upstream_peer_st_t *st, gh_msec_t now);
/* a fresh peer's state (effective weight = weight) */
void gh_upstream_st_reset(const gh_upstream_peer_t *peer,
    gh_upstream_peer_st_t *st);
/* monotonic microseconds: the loop's cached time (gh_time_update) */
uint64_t gh_upstream_now_us(void);

/* --- zone (gh_upstream_zone.c) ------------------------------------------ */

const char *gh_upstream_zone(gh_conf_t *cf, const gh_command_t *cmd,
    void *conf);

/* the zone's lock around every read and write of shared peer state;
 * nothing without a zone (a worker's own state needs no lock) */
static inline void
gh_upstream_lock(gh_upstream_srv_conf_t *us)
{
    if (us->zone != NULL) {
        gh_shm_lock(us->zone);
    }
}

static inline void
gh_upstream_unlock(gh_upstream_srv_conf_t *us)
{
    if (us->zone != NULL) {
        gh_shm_unlock(us->zone);
    }
}

/* --- health checks (gh_upstream_hc.c) --------------------------------- */

/* the state of one check of one peer, in the zone (see the state
 * machine in gh_upstream_hc.c) */
typedef struct {
    gh_msec_t                next;          /* monotonic ms: next probe due */
    pid_t                    owner;         /* worker probing now, 0 none */
    gh_msec_t                started;       /* its claim, monotonic ms */
    gh_uint_t                fails_in_row;
    gh_uint_t                passes_in_row;
    bool                     unhealthy;
    bool                     checking;      /* mandatory, never run yet */
    bool                     last_passed;
    gh_uint_t                last_status;   /* 0: no response */
    gh_msec_t                last_time;     /* wall clock ms */
    uint64_t                 checks;
    uint64_t                 fails;
    uint64_t                 unhealthy_count;
} gh_upstream_hc_st_t;

/* a location's health_check, once bound to its group */
typedef struct gh_upstream_hc_s gh_upstream_hc_t;

/* proxy_pass in the location being read uses us (gh_upstream_add calls
 * it for implicit lookups, which is what proxy_pass does) */
void gh_upstream_hc_location_group(gh_conf_t *cf, gh_upstream_srv_conf_t *us);
/* the check's mandatory flag (zone init sets the initial state) */
bool gh_upstream_hc_mandatory(const gh_upstream_srv_conf_t *us, gh_uint_t i);

/* --- sticky (gh_upstream_sticky.c) ------------------------------------ */

const char *gh_upstream_sticky(gh_conf_t *cf, const gh_command_t *cmd,
    void *conf);
/* the peer r's cookie names (ps->sticky), if any */
void gh_upstream_sticky_request(gh_upstream_peer_state_t *ps,
    gh_http_request_t *r);
/* a peer's id: hex MD5 of its name */
void gh_upstream_sticky_id(gh_upstream_peer_t *peer);

#endif
