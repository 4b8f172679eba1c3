"""TLS helpers for the test_tls*.py files: a test PKI made with the openssl
command line, TLS clients over the raw-socket Conn of conftest.py, and a
TLS test upstream.

    pki                  session fixture: a PKI in a temporary directory
    pki.ca               CA certificate (PEM path) that signs everything
    pki.cert("a.test")   (cert, key) paths of a server certificate for
                         a.test (EC P-256); key="rsa" for an RSA one
    pki.client("alice")  (cert, key) of a client certificate (clientAuth)
    pki.other_ca / pki.other_client: a second CA and a client it signed
                         (for "certificate not trusted")

    tls_conn(port, "a.test", ctx=client_ctx(pki))  -> conftest.Conn over TLS
    record_conn(port, "a.test", ctx)  the same, whose .sock.write_records()
                         sends one TLS record per piece, all in one write
    TlsUpstream(ctx, handler)   upstreams.Upstream speaking TLS

Certificates are generated once per test session (a few hundred ms).
"""

import os
import socket
import ssl
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from conftest import Conn, SOCK_TIMEOUT
import upstreams

OPENSSL_TIMEOUT = 60


def _openssl(*args, cwd):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True,
                       text=True, timeout=OPENSSL_TIMEOUT,
                       stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise AssertionError(f"openssl {' '.join(args)} failed:\n{r.stderr}")
    return r.stdout


class PKI:
    def __init__(self, d):
        self.dir = Path(d)
        self._serial = 1000
        self._lock = threading.Lock()
        self.ca = self._make_ca("ca", "Gatehouse Test CA")
        self.other_ca = self._make_ca("other-ca", "Another Test CA")
        self._certs = {}
        self.other_client = self._leaf("other-client", "mallory", [], "other-ca",
                                       "ec", client=True)

    def p(self, name):
        return str(self.dir / name)

    def _key(self, name, kind):
        if kind == "rsa":
            _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt",
                     "rsa_keygen_bits:2048", "-out", f"{name}.key",
                     cwd=self.dir)
        else:
            _openssl("genpkey", "-algorithm", "EC", "-pkeyopt",
                     "ec_paramgen_curve:P-256", "-out", f"{name}.key",
                     cwd=self.dir)
        return self.p(f"{name}.key")

    def _make_ca(self, name, cn):
        self._key(name, "ec")
        (self.dir / f"{name}.ext").write_text(
            "basicConstraints=critical,CA:TRUE\n"
            "keyUsage=critical,keyCertSign,cRLSign\n"
            "subjectKeyIdentifier=hash\n")
        _openssl("req", "-x509", "-new", "-key", f"{name}.key", "-subj",
                 f"/O=Gatehouse Tests/CN={cn}", "-days", "30", "-out",
                 f"{name}.crt", "-extensions", "v3_ca", "-addext",
                 "basicConstraints=critical,CA:TRUE", cwd=self.dir)
        return self.p(f"{name}.crt")

    def _leaf(self, name, cn, sans, ca, kind, client=False, days=30):
        with self._lock:
            self._serial += 1
            serial = self._serial
        key = self._key(name, kind)
        ext = ["basicConstraints=CA:FALSE",
               "extendedKeyUsage=" + ("clientAuth" if client else "serverAuth"),
               "authorityKeyIdentifier=keyid"]
        if sans:
            ext.append("subjectAltName=" + ",".join(f"DNS:{s}" for s in sans))
        (self.dir / f"{name}.ext").write_text("\n".join(ext) + "\n")
        _openssl("req", "-new", "-key", f"{name}.key", "-subj",
                 f"/O=Gatehouse Tests/CN={cn}", "-out", f"{name}.csr",
                 cwd=self.dir)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt",
                 "-CAkey", f"{ca}.key", "-set_serial", str(serial), "-days",
                 str(days), "-extfile", f"{name}.ext", "-out", f"{name}.crt",
                 cwd=self.dir)
        return (self.p(f"{name}.crt"), key)

    def cert(self, cn, sans=None, key="ec"):
        """(cert, key) for a server name; cached per (cn, key type)."""
        k = (cn, tuple(sans or ()), key, False)
        if k not in self._certs:
            name = f"srv-{cn.replace('*', 'star')}-{key}-{len(self._certs)}"
            self._certs[k] = self._leaf(name, cn, sans or [cn], "ca", key)
        return self._certs[k]

    def client(self, cn="alice"):
        k = (cn, (), "ec", True)
        if k not in self._certs:
            self._certs[k] = self._leaf(f"client-{cn}", cn, [], "ca", "ec",
                                        client=True)
        return self._certs[k]

    def fingerprint(self, cert):
        """SHA-256 of the DER certificate (what a client sees)."""
        out = _openssl("x509", "-in", cert, "-noout", "-fingerprint",
                       "-sha256", cwd=self.dir)
        return out.strip().split("=", 1)[1].replace(":", "").lower()


@pytest.fixture(scope="session")
def pki():
    d = tempfile.mkdtemp(prefix="ghpki", dir="/tmp")
    try:
        yield PKI(d)
    finally:
        import shutil
        shutil.rmtree(d, ignore_errors=True)


def client_ctx(pki=None, alpn=None, cert=None, verify=True, min_version=None,
               max_version=None, tickets=True):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify and pki is not None:
        ctx.load_verify_locations(pki.ca)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if cert:
        ctx.load_cert_chain(cert[0], cert[1])
    if min_version:
        ctx.minimum_version = min_version
    if max_version:
        ctx.maximum_version = max_version
    if not tickets:
        ctx.options |= ssl.OP_NO_TICKET
    return ctx


def tls_socket(port, server_hostname="a.test", ctx=None, session=None,
               timeout=SOCK_TIMEOUT):
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s = ctx.wrap_socket(raw, server_hostname=server_hostname,
                            session=session)
    except Exception:
        raw.close()
        raise
    s.settimeout(timeout)
    return s


def tls_conn(port, server_hostname="a.test", ctx=None, session=None,
             timeout=SOCK_TIMEOUT):
    """A conftest.Conn whose socket is TLS (handshake done)."""
    c = Conn.__new__(Conn)
    c.sock = tls_socket(port, server_hostname, ctx, session, timeout)
    c.buf = b""
    c.received_any = False
    return c


class RecordSocket:
    """A TLS client over ssl.MemoryBIO, socket-like enough for
    conftest.Conn (recv, sendall, settimeout, close).  write_records()
    makes one TLS record per piece (a piece over 16 KiB makes several)
    and hands all of them to the socket in one sendall: a client that
    packs several records into one segment, so that the server finds
    more than one record per read() -- what a reader that forgets bytes
    buffered inside OpenSSL would leave unanswered."""

    def __init__(self, port, server_hostname="a.test", ctx=None,
                 timeout=SOCK_TIMEOUT):
        self.raw = socket.create_connection(("127.0.0.1", port),
                                            timeout=timeout)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out,
                                server_hostname=server_hostname)
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._push()
                data = self.raw.recv(65536)
                if not data:
                    raise ConnectionError("closed during the handshake")
                self.inc.write(data)
        self._push()

    def _push(self):
        data = self.out.read()
        if data:
            self.raw.sendall(data)

    def write_records(self, pieces):
        for p in pieces:
            self.obj.write(p)
        self._push()

    def sendall(self, data):
        self.write_records([data])

    def recv(self, n):
        while True:
            try:
                return self.obj.read(n)
            except ssl.SSLWantReadError:
                data = self.raw.recv(65536)
                if not data:
                    return b""
                self.inc.write(data)
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""

    def settimeout(self, t):
        self.raw.settimeout(t)

    def gettimeout(self):
        return self.raw.gettimeout()

    def close(self):
        self.raw.close()


def record_conn(port, server_hostname="a.test", ctx=None,
                timeout=SOCK_TIMEOUT):
    """A conftest.Conn over a RecordSocket; .sock.write_records(pieces)
    sends several records in one write."""
    c = Conn.__new__(Conn)
    c.sock = RecordSocket(port, server_hostname, ctx, timeout)
    c.buf = b""
    c.received_any = False
    return c


def peer_fingerprint(sock):
    import hashlib
    return hashlib.sha256(sock.getpeercert(binary_form=True)).hexdigest()


class TlsUpstream(upstreams.Upstream):
    """upstreams.Upstream behind TLS: ctx is a server SSLContext.  Each
    accepted connection records its handshake in .tls_info (server name
    asked for, session reused, protocol)."""

    def __init__(self, ctx, handler=None, **kw):
        super().__init__(handler, **kw)
        self.ctx = ctx
        self.tls_info = []
        self.handshake_errors = []
        self._sni = threading.local()
        ctx.sni_callback = self._on_sni

    def _on_sni(self, sslobj, name, ctx):
        self._sni.name = name

    @property
    def url(self):
        return "https://" + self.addr

    def _serve(self, s, cid, peer):
        s.settimeout(upstreams.UP_TIMEOUT)
        self._sni.name = None
        try:
            t = self.ctx.wrap_socket(s, server_side=True)
        except (ssl.SSLError, OSError) as e:
            self.handshake_errors.append(repr(e))
            with self._lock:
                self._socks.discard(s)
            s.close()
            return
        with self._lock:
            self._socks.discard(s)
            self._socks.add(t)
            self.tls_info.append({"sni": self._sni.name,
                                  "reused": t.session_reused,
                                  "version": t.version(),
                                  "cid": cid})
        super()._serve(t, cid, peer)


def server_ctx(cert, ca=None, require_client=False):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert[0], cert[1])
    if ca:
        ctx.load_verify_locations(ca)
        ctx.verify_mode = (ssl.CERT_REQUIRED if require_client
                           else ssl.CERT_OPTIONAL)
    return ctx
