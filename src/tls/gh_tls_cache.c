/*
 * gh_tls_cache.c: the shared session cache and session tickets.
 *
 * Shared cache (`ssl_session_cache shared:NAME:SIZE`): serialized
 * sessions in a shm zone, found by session id through a hash table and
 * kept in an age queue (oldest first) for expiry and eviction:
 *
 *   zone: [gh_tls_cache_t: queue head/tail, buckets[]] [session] ...
 *   session: hash link, queue links, expiry, id, DER bytes
 *
 * OpenSSL calls new/get/remove on the context the SSL was created with
 * (the address's default server), under the zone's lock; a get copies
 * the bytes out before decoding, so the lock is never held across
 * OpenSSL.  When the zone is full the oldest sessions go first.
 *
 * Tickets: see gh_tls.h.  The derived keys are a function of (secret,
 * period number), so no worker ever has to tell another which key is
 * current.
 */
#include "gh_tls.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <sys/stat.h>

#define GH_TLS_CACHE_BUCKETS_MAX 65536
#define GH_TLS_TICKET_PERIOD     3600      /* seconds, at least */
#define GH_TLS_TICKET_FILE_MAX   80

typedef struct gh_tls_sess_s gh_tls_sess_t;

struct gh_tls_sess_s {
    gh_tls_sess_t *hnext;
    gh_tls_sess_t *qprev;
    gh_tls_sess_t *qnext;
    int64_t        expire;          /* wall clock seconds */
    uint32_t       hash;
    uint16_t       id_len;
    uint16_t       len;
    uint8_t        id[SSL_MAX_SSL_SESSION_ID_LENGTH];
    uint8_t        der[];
};

typedef struct {
    gh_tls_sess_t *head;            /* oldest */
    gh_tls_sess_t *tail;            /* newest */
    uint64_t       count;
    uint32_t       nbuckets;
    gh_tls_sess_t *buckets[];
} gh_tls_cache_t;

typedef struct {
    uint8_t  name[16];
    uint8_t  hmac[32];
    uint8_t  aes[32];
    size_t   size;                  /* 16 (AES-128) or 32 (AES-256) */
} gh_tls_ticket_key_t;

/* per context, at SSL_CTX ex_data */
typedef struct {
    gh_shm_zone_t        *zone;     /* shared session cache or NULL */
    gh_tls_ticket_key_t  *keys;     /* from files; keys[0] encrypts */
    size_t                nkeys;
    bool                  derived;  /* keys from the process secret */
    int64_t               period;
    int64_t               epoch;    /* of cur, in this process */
    gh_tls_ticket_key_t   cur;
    gh_tls_ticket_key_t   prev;
} gh_tls_ctx_data_t;

static int     gh_tls_ctx_index = -1;
/* drawn once by the master and inherited by workers and by later
 * configurations (see gh_tls.h) */
static uint8_t gh_tls_ticket_secret[32];
static bool    gh_tls_ticket_secret_set;


static gh_tls_ctx_data_t *
gh_tls_ctx_data(SSL_CTX *ctx, gh_arena_t *arena)
{
    gh_tls_ctx_data_t *d;

    if (gh_tls_ctx_index < 0) {
        gh_tls_ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL,
            NULL);
        if (gh_tls_ctx_index < 0) {
            return NULL;
        }
    }
    d = SSL_CTX_get_ex_data(ctx, gh_tls_ctx_index);
    if (d != NULL || arena == NULL) {
        return d;
    }
    d = gh_calloc(arena, sizeof(*d));
    if (d == NULL || SSL_CTX_set_ex_data(ctx, gh_tls_ctx_index, d) != 1) {
        return NULL;
    }
    d->epoch = -1;
    return d;
}


/* the data of the context an SSL's sessions belong to */
static gh_tls_ctx_data_t *
gh_tls_session_data(SSL *ssl)
{
    gh_conn_t *c = gh_tls_conn_of(ssl);
    SSL_CTX   *ctx;

    ctx = (c && c->tls) ? gh_tls_conn(c)->session_ctx : SSL_get_SSL_CTX(ssl);
    return gh_tls_ctx_index >= 0 ? SSL_CTX_get_ex_data(ctx, gh_tls_ctx_index)
                                 : NULL;
}


/* --- the shared cache -------------------------------------------------- */

gh_int_t
gh_tls_cache_zone_init(gh_shm_zone_t *zone, void *old_data)
{
    gh_tls_cache_t *cache;
    size_t          n;

    if (old_data != NULL) {
        zone->data = old_data;      /* a reload keeps the sessions */
        return GH_OK;
    }
    /* about one bucket per 512 bytes of zone, a power of two */
    n = 64;
    while (n < GH_TLS_CACHE_BUCKETS_MAX && n * 512 < zone->size) {
        n <<= 1;
    }
    cache = gh_shm_alloc(zone, sizeof(*cache) + n * sizeof(gh_tls_sess_t *));
    if (cache == NULL) {
        return GH_ERROR;
    }
    memset(cache, 0, sizeof(*cache) + n * sizeof(gh_tls_sess_t *));
    cache->nbuckets = (uint32_t) n;
    zone->data = cache;
    return GH_OK;
}


static uint32_t
gh_tls_id_hash(const uint8_t *id, size_t len)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < len; i++) {
        h = (h ^ id[i]) * 16777619u;
    }
    return h;
}


static gh_tls_sess_t **
gh_tls_cache_slot(gh_tls_cache_t *cache, uint32_t hash, const uint8_t *id,
    size_t len)
{
    gh_tls_sess_t **pp = &cache->buckets[hash & (cache->nbuckets - 1)];

    for (; *pp; pp = &(*pp)->hnext) {
        if ((*pp)->hash == hash && (*pp)->id_len == len
            && memcmp((*pp)->id, id, len) == 0)
        {
            break;
        }
    }
    return pp;
}


/* unlink and free s; the lock is held */
static void
gh_tls_cache_drop(gh_shm_zone_t *zone, gh_tls_cache_t *cache,
    gh_tls_sess_t *s)
{
    gh_tls_sess_t **pp = gh_tls_cache_slot(cache, s->hash, s->id, s->id_len);

    if (*pp == s) {
        *pp = s->hnext;
    }
    if (s->qprev) {
        s->qprev->qnext = s->qnext;
    } else {
        cache->head = s->qnext;
    }
    if (s->qnext) {
        s->qnext->qprev = s->qprev;
    } else {
        cache->tail = s->qprev;
    }
    cache->count--;
    gh_shm_free_locked(zone, s);
}


static int
gh_tls_cache_new(SSL *ssl, SSL_SESSION *sess)
{
    gh_tls_ctx_data_t *d = gh_tls_session_data(ssl);
    uint8_t            buf[GH_TLS_MAX_SESSION], *p = buf;
    const uint8_t     *id;
    unsigned int       id_len;
    gh_tls_cache_t    *cache;
    gh_tls_sess_t     *s, **pp;
    uint32_t           hash;
    int                len;

    if (d == NULL || d->zone == NULL || d->zone->data == NULL) {
        return 0;
    }
    len = i2d_SSL_SESSION(sess, NULL);
    if (len <= 0 || len > GH_TLS_MAX_SESSION) {
        return 0;          /* e.g. a long client chain: not cached */
    }
    i2d_SSL_SESSION(sess, &p);
    id = SSL_SESSION_get_id(sess, &id_len);
    if (id_len == 0 || id_len > SSL_MAX_SSL_SESSION_ID_LENGTH) {
        return 0;
    }
    hash = gh_tls_id_hash(id, id_len);
    cache = d->zone->data;

    gh_shm_lock(d->zone);
    /* a little expiry on every store keeps the queue short */
    for (int i = 0; i < 4 && cache->head
         && cache->head->expire <= gh_current_sec; i++)
    {
        gh_tls_cache_drop(d->zone, cache, cache->head);
    }
    pp = gh_tls_cache_slot(cache, hash, id, id_len);
    if (*pp) {
        gh_tls_cache_drop(d->zone, cache, *pp);
    }
    s = gh_shm_alloc_locked(d->zone, sizeof(*s) + (size_t) len);
    /* full: the oldest sessions make room */
    for (int i = 0; s == NULL && cache->head && i < 8; i++) {
        gh_tls_cache_drop(d->zone, cache, cache->head);
        s = gh_shm_alloc_locked(d->zone, sizeof(*s) + (size_t) len);
    }
    if (s == NULL) {
        gh_shm_unlock(d->zone);
        return 0;
    }
    memset(s, 0, sizeof(*s));
    s->hash = hash;
    s->id_len = (uint16_t) id_len;
    memcpy(s->id, id, id_len);
    s->len = (uint16_t) len;
    memcpy(s->der, buf, (size_t) len);
    s->expire = (int64_t) SSL_SESSION_get_time(sess)
        + (int64_t) SSL_SESSION_get_timeout(sess);
    pp = &cache->buckets[hash & (cache->nbuckets - 1)];
    s->hnext = *pp;
    *pp = s;
    s->qprev = cache->tail;
    if (cache->tail) {
        cache->tail->qnext = s;
    } else {
        cache->head = s;
    }
    cache->tail = s;
    cache->count++;
    gh_shm_unlock(d->zone);
    /* 0: OpenSSL keeps its reference, we hold a copy */
    return 0;
}


static SSL_SESSION *
gh_tls_cache_get(SSL *ssl, const unsigned char *id, int id_len, int *copy)
{
    gh_tls_ctx_data_t   *d = gh_tls_session_data(ssl);
    uint8_t              buf[GH_TLS_MAX_SESSION];
    const unsigned char *p = buf;
    gh_tls_cache_t      *cache;
    gh_tls_sess_t      **pp;
    size_t               len = 0;

    *copy = 0;
    if (d == NULL || d->zone == NULL || d->zone->data == NULL || id_len <= 0
        || id_len > SSL_MAX_SSL_SESSION_ID_LENGTH)
    {
        return NULL;
    }
    cache = d->zone->data;
    gh_shm_lock(d->zone);
    pp = gh_tls_cache_slot(cache, gh_tls_id_hash(id, (size_t) id_len), id,
        (size_t) id_len);
    if (*pp) {
        if ((*pp)->expire > gh_current_sec) {
            len = (*pp)->len;
            memcpy(buf, (*pp)->der, len);
        } else {
            gh_tls_cache_drop(d->zone, cache, *pp);
        }
    }
    gh_shm_unlock(d->zone);
    if (len == 0) {
        return NULL;
    }
    return d2i_SSL_SESSION(NULL, &p, (long) len);
}


static void
gh_tls_cache_remove(SSL_CTX *ctx, SSL_SESSION *sess)
{
    gh_tls_ctx_data_t *d = gh_tls_ctx_data(ctx, NULL);
    const uint8_t     *id;
    unsigned int       id_len;
    gh_tls_cache_t    *cache;
    gh_tls_sess_t    **pp;

    if (d == NULL || d->zone == NULL || d->zone->data == NULL) {
        return;
    }
    id = SSL_SESSION_get_id(sess, &id_len);
    if (id_len == 0 || id_len > SSL_MAX_SSL_SESSION_ID_LENGTH) {
        return;
    }
    cache = d->zone->data;
    gh_shm_lock(d->zone);
    pp = gh_tls_cache_slot(cache, gh_tls_id_hash(id, id_len), id, id_len);
    if (*pp) {
        gh_tls_cache_drop(d->zone, cache, *pp);
    }
    gh_shm_unlock(d->zone);
}


gh_int_t
gh_tls_ctx_session_cache(SSL_CTX *ctx, gh_arena_t *arena, gh_int_t builtin,
    gh_shm_zone_t *zone, int64_t timeout, char *err, size_t errlen)
{
    gh_tls_ctx_data_t *d = gh_tls_ctx_data(ctx, arena);
    long               mode;

    if (d == NULL) {
        snprintf(err, errlen, "not enough memory for the session cache");
        return GH_ERROR;
    }
    SSL_CTX_set_timeout(ctx, (long) timeout);
    if (builtin == GH_TLS_CACHE_OFF) {
        /* clients are told sessions will not be resumed */
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        return GH_OK;
    }
    if (builtin == GH_TLS_CACHE_NONE && zone == NULL) {
        /* resumption announced (some clients misbehave when it is
         * refused outright) but nothing is stored */
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER
            | SSL_SESS_CACHE_NO_AUTO_CLEAR | SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_cache_size(ctx, 1);
        return GH_OK;
    }
    mode = SSL_SESS_CACHE_SERVER;
    if (zone != NULL && (builtin == GH_TLS_CACHE_NO_BUILTIN
                         || builtin == GH_TLS_CACHE_NONE))
    {
        mode |= SSL_SESS_CACHE_NO_INTERNAL;
    }
    SSL_CTX_set_session_cache_mode(ctx, mode);
    if (builtin >= 0) {
        SSL_CTX_sess_set_cache_size(ctx, (long) builtin);
    }
    if (zone != NULL) {
        d->zone = zone;
        SSL_CTX_sess_set_new_cb(ctx, gh_tls_cache_new);
        SSL_CTX_sess_set_get_cb(ctx, gh_tls_cache_get);
        SSL_CTX_sess_set_remove_cb(ctx, gh_tls_cache_remove);
    }
    return GH_OK;
}


/* --- tickets ------------------------------------------------------------ */

static gh_int_t
gh_tls_ticket_derive(int64_t epoch, gh_tls_ticket_key_t *key)
{
    static const char label[] = "gatehouse session ticket key";
    uint8_t           in[sizeof(label) + 9], out[3][32];
    size_t            outlen;

    memcpy(in, label, sizeof(label));
    for (int i = 0; i < 8; i++) {
        in[sizeof(label) + i] = (uint8_t) ((uint64_t) epoch >> (56 - 8 * i));
    }
    for (uint8_t block = 0; block < 3; block++) {
        in[sizeof(label) + 8] = block;
        if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL,
                gh_tls_ticket_secret, sizeof(gh_tls_ticket_secret), in,
                sizeof(in), out[block], sizeof(out[block]), &outlen) == NULL)
        {
            return GH_ERROR;
        }
    }
    memcpy(key->name, out[0], sizeof(key->name));
    memcpy(key->hmac, out[1], sizeof(key->hmac));
    memcpy(key->aes, out[2], sizeof(key->aes));
    key->size = 32;
    return GH_OK;
}


/* the derived keys of now: computed once per period in each process */
static gh_int_t
gh_tls_ticket_refresh(gh_tls_ctx_data_t *d)
{
    int64_t epoch = gh_current_sec / d->period;

    if (epoch == d->epoch) {
        return GH_OK;
    }
    if (gh_tls_ticket_derive(epoch, &d->cur) != GH_OK
        || gh_tls_ticket_derive(epoch - 1, &d->prev) != GH_OK)
    {
        d->epoch = -1;
        return GH_ERROR;
    }
    d->epoch = epoch;
    return GH_OK;
}


static int
gh_tls_ticket_params(EVP_MAC_CTX *hctx, gh_tls_ticket_key_t *key)
{
    OSSL_PARAM params[3];

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
        (char *) "SHA256", 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
        key->hmac, key->size);
    params[2] = OSSL_PARAM_construct_end();
    return EVP_MAC_CTX_set_params(hctx, params);
}


static int
gh_tls_ticket_cb(SSL *ssl, unsigned char *name, unsigned char *iv,
    EVP_CIPHER_CTX *ectx, EVP_MAC_CTX *hctx, int enc)
{
    gh_tls_ctx_data_t   *d = gh_tls_session_data(ssl);
    gh_tls_ticket_key_t *key = NULL;
    const EVP_CIPHER    *cipher;
    int                  rc = 1;

    if (d == NULL || (d->derived && gh_tls_ticket_refresh(d) != GH_OK)) {
        return enc ? -1 : 0;
    }
    if (enc) {
        key = d->derived ? &d->cur : &d->keys[0];
        cipher = key->size == 16 ? EVP_aes_128_cbc() : EVP_aes_256_cbc();
        memcpy(name, key->name, 16);
        if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(cipher)) != 1
            || EVP_EncryptInit_ex(ectx, cipher, NULL, key->aes, iv) != 1
            || gh_tls_ticket_params(hctx, key) != 1)
        {
            return -1;
        }
        return 1;
    }
    if (d->derived) {
        if (memcmp(name, d->cur.name, 16) == 0) {
            key = &d->cur;
        } else if (memcmp(name, d->prev.name, 16) == 0) {
            key = &d->prev;
            rc = 2;             /* accepted, and a fresh ticket is sent */
        }
    } else {
        for (size_t i = 0; i < d->nkeys; i++) {
            if (memcmp(name, d->keys[i].name, 16) == 0) {
                key = &d->keys[i];
                rc = i == 0 ? 1 : 2;
                break;
            }
        }
    }
    if (key == NULL) {
        return 0;               /* unknown key: a full handshake */
    }
    cipher = key->size == 16 ? EVP_aes_128_cbc() : EVP_aes_256_cbc();
    if (gh_tls_ticket_params(hctx, key) != 1
        || EVP_DecryptInit_ex(ectx, cipher, NULL, key->aes, iv) != 1)
    {
        return -1;
    }
    return rc;
}


static gh_int_t
gh_tls_ticket_file(const char *file, gh_tls_ticket_key_t *key, char *err,
    size_t errlen)
{
    uint8_t buf[GH_TLS_TICKET_FILE_MAX + 1];
    size_t  n;
    FILE   *f;

    f = fopen(file, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "open() \"%s\" failed (%d: %s)", file, errno,
            strerror(errno));
        return GH_ERROR;
    }
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    if (n != 48 && n != 80) {
        snprintf(err, errlen, "\"%s\" must be 48 or 80 bytes", file);
        return GH_ERROR;
    }
    /* nginx's layouts: name, AES-128 key, HMAC key (48); name, HMAC key,
     * AES-256 key (80) */
    memcpy(key->name, buf, 16);
    if (n == 48) {
        memcpy(key->aes, buf + 16, 16);
        memcpy(key->hmac, buf + 32, 16);
        key->size = 16;
    } else {
        memcpy(key->hmac, buf + 16, 32);
        memcpy(key->aes, buf + 48, 32);
        key->size = 32;
    }
    return GH_OK;
}


gh_int_t
gh_tls_ctx_tickets(SSL_CTX *ctx, gh_arena_t *arena, bool on,
    char **key_files, size_t nfiles, int64_t timeout, char *err,
    size_t errlen)
{
    gh_tls_ctx_data_t *d;

    if (!on) {
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        return GH_OK;
    }
    SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
    d = gh_tls_ctx_data(ctx, arena);
    if (d == NULL) {
        snprintf(err, errlen, "not enough memory for ticket keys");
        return GH_ERROR;
    }
    if (nfiles > 0) {
        d->keys = gh_calloc(arena, nfiles * sizeof(gh_tls_ticket_key_t));
        if (d->keys == NULL) {
            snprintf(err, errlen, "not enough memory for ticket keys");
            return GH_ERROR;
        }
        for (size_t i = 0; i < nfiles; i++) {
            if (gh_tls_ticket_file(key_files[i], &d->keys[i], err, errlen)
                != GH_OK)
            {
                return GH_ERROR;
            }
        }
        d->nkeys = nfiles;
    } else {
        if (!gh_tls_ticket_secret_set) {
            if (RAND_bytes(gh_tls_ticket_secret,
                    sizeof(gh_tls_ticket_secret)) != 1)
            {
                snprintf(err, errlen, "RAND_bytes() failed");
                return GH_ERROR;
            }
            gh_tls_ticket_secret_set = true;
        }
        d->derived = true;
        d->period = gh_max((int64_t) GH_TLS_TICKET_PERIOD, timeout);
        d->epoch = -1;
    }
    if (SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, gh_tls_ticket_cb) != 1) {
        snprintf(err, errlen, "SSL_CTX_set_tlsext_ticket_key_evp_cb() "
            "failed");
        return GH_ERROR;
    }
    return GH_OK;
}
