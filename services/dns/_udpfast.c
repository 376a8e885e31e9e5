/* Bay DNS: the UDP fast path in C (optional; services/dns/udpfast.py falls back to Python).
 *
 * serve(fd, cache, turn, udp_payload, opt) reads up to BATCH queries with one recvmmsg(2), answers
 * every plain query whose prebuilt answer is in `cache` (the zone's dict: key = lowercased question
 * name + type + class, value = wire.Answer, a tuple whose items 2 and 4 are the bodies and the
 * heads), and sends those answers with one sendmmsg(2). Everything else (a miss, an unusual query,
 * an answer that needs truncating) is handed back to Python as (packet, address) to answer the slow
 * way; Python then caches the answer, so the next such query is answered here.
 *
 * The parsing is the same as Responder.fast in responder.py: one question, no compression, at most
 * an EDNS0 OPT record of version 0. Returns (received, answered, turn, misses).
 *
 * rcodes() gives the answers sent so far by rcode (16 counts, the answer's item 0): what the DNS
 * service's bay_dns_queries_total adds to its own, at no cost in Python per query.
 */
#define _GNU_SOURCE
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#define BATCH 64
#define IN_SIZE 4096
#define OUT_SIZE 4096
#define KEY_MAX 260
#define ANSWER_BODIES 2
#define ANSWER_HEADS 4

static unsigned char inbuf[BATCH][IN_SIZE];
static unsigned char outbuf[BATCH][OUT_SIZE];
static struct mmsghdr inmsgs[BATCH], outmsgs[BATCH];
static struct iovec iniov[BATCH], outiov[BATCH];
static struct sockaddr_storage addrs[BATCH];
static unsigned char out_rcode[BATCH];
static unsigned long long rcode_counts[16];

/* The question's end (after type and class) if this is a plain query, else 0; sets rd, edns, payload. */
static size_t parse(const unsigned char *d, size_t n, int *rd, int *edns, unsigned *payload) {
    if (n < 17 || (d[2] & 0xF8) || d[4] != 0 || d[5] != 1 || d[6] || d[7] || d[8] || d[9] || d[10] ||
        d[11] > 1)
        return 0;
    size_t i = 12;
    while (d[i]) {
        if (d[i] > 63) return 0;
        i += d[i] + 1;
        if (i >= n) return 0;
    }
    size_t end = i + 5;
    if (end > n) return 0;
    *rd = d[2] & 1;
    *edns = 0;
    *payload = 512;
    if (d[11]) {
        if (end + 11 > n || d[end] || d[end + 1] || d[end + 2] != 41 || d[end + 6]) return 0;
        if (end + 11 + ((size_t)d[end + 9] << 8 | d[end + 10]) != n) return 0;
        *payload = (unsigned)d[end + 3] << 8 | d[end + 4];
        *edns = 1;
    } else if (end != n) {
        return 0;
    }
    return end;
}

static PyObject *address_of(const struct sockaddr_storage *a) {
    char host[INET6_ADDRSTRLEN];
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)a;
        inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host);
        return Py_BuildValue("(si)", host, ntohs(v4->sin_port));
    }
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)a;
    inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
    return Py_BuildValue("(siII)", host, ntohs(v6->sin6_port), ntohl(v6->sin6_flowinfo), v6->sin6_scope_id);
}

static int miss(PyObject *misses, int i) {
    PyObject *data = PyBytes_FromStringAndSize((const char *)inbuf[i], inmsgs[i].msg_len);
    PyObject *addr = address_of(&addrs[i]);
    PyObject *item = (data && addr) ? PyTuple_Pack(2, data, addr) : NULL;
    Py_XDECREF(data);
    Py_XDECREF(addr);
    if (!item) return -1;
    int rc = PyList_Append(misses, item);
    Py_DECREF(item);
    return rc;
}

/* The reply's length in outbuf[o], or 0 when Python must answer it. */
static size_t answer(PyObject *cache, int i, int o, unsigned long long *turn, unsigned udp_payload,
                     const char *opt, Py_ssize_t optlen, unsigned char *rcode) {
    const unsigned char *d = inbuf[i];
    size_t n = inmsgs[i].msg_len;
    int rd, edns;
    unsigned payload;
    if (inmsgs[i].msg_hdr.msg_flags & MSG_TRUNC) return 0;
    size_t end = parse(d, n, &rd, &edns, &payload);
    if (!end || end - 12 > KEY_MAX) return 0;
    unsigned char key[KEY_MAX];
    size_t keylen = end - 12, name_end = end - 4;
    for (size_t k = 12; k < end; k++) {
        unsigned char c = d[k];
        key[k - 12] = (k < name_end && c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
    }
    PyObject *k = PyBytes_FromStringAndSize((const char *)key, (Py_ssize_t)keylen);
    if (!k) {
        PyErr_Clear();
        return 0;
    }
    PyObject *ans = PyDict_GetItemWithError(cache, k); /* borrowed */
    Py_DECREF(k);
    if (!ans) {
        PyErr_Clear();
        return 0;
    }
    if (!PyTuple_Check(ans) || PyTuple_GET_SIZE(ans) <= ANSWER_HEADS) return 0;
    PyObject *code = PyTuple_GET_ITEM(ans, 0);
    if (!PyLong_Check(code)) return 0;
    *rcode = (unsigned char)(PyLong_AsLong(code) & 15);
    PyObject *bodies = PyTuple_GET_ITEM(ans, ANSWER_BODIES);
    PyObject *heads = PyTuple_GET_ITEM(ans, ANSWER_HEADS);
    if (!PyTuple_Check(bodies) || !PyTuple_Check(heads) || PyTuple_GET_SIZE(heads) != 4) return 0;
    Py_ssize_t nb = PyTuple_GET_SIZE(bodies);
    if (nb < 1) return 0;
    *turn += 1;
    PyObject *body = PyTuple_GET_ITEM(bodies, (Py_ssize_t)(*turn % (unsigned long long)nb));
    PyObject *head = PyTuple_GET_ITEM(heads, rd | (edns << 1));
    if (!PyBytes_Check(body) || !PyBytes_Check(head) || PyBytes_GET_SIZE(head) != 10) return 0;
    Py_ssize_t blen = PyBytes_GET_SIZE(body);
    size_t qlen = end - 12;
    size_t total = 12 + qlen + (size_t)blen + (edns ? (size_t)optlen : 0);
    unsigned limit = edns ? (payload < 512 ? 512 : payload) : 512;
    if (limit > udp_payload) limit = udp_payload;
    if (total > limit || total > OUT_SIZE) return 0; /* truncation: Python's */
    unsigned char *out = outbuf[o];
    out[0] = d[0];
    out[1] = d[1];
    memcpy(out + 2, PyBytes_AS_STRING(head), 10);
    memcpy(out + 12, d + 12, qlen);
    memcpy(out + 12 + qlen, PyBytes_AS_STRING(body), (size_t)blen);
    if (edns) memcpy(out + 12 + qlen + blen, opt, (size_t)optlen);
    return total;
}

static PyObject *serve(PyObject *self, PyObject *args) {
    (void)self;
    int fd;
    PyObject *cache;
    unsigned long long turn;
    unsigned udp_payload;
    const char *opt;
    Py_ssize_t optlen;
    if (!PyArg_ParseTuple(args, "iO!KIy#", &fd, &PyDict_Type, &cache, &turn, &udp_payload, &opt, &optlen))
        return NULL;
    for (int i = 0; i < BATCH; i++) {
        iniov[i].iov_base = inbuf[i];
        iniov[i].iov_len = IN_SIZE;
        memset(&inmsgs[i].msg_hdr, 0, sizeof inmsgs[i].msg_hdr);
        inmsgs[i].msg_hdr.msg_name = &addrs[i];
        inmsgs[i].msg_hdr.msg_namelen = sizeof addrs[i];
        inmsgs[i].msg_hdr.msg_iov = &iniov[i];
        inmsgs[i].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(fd, inmsgs, BATCH, MSG_DONTWAIT, NULL);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return Py_BuildValue("(iiKN)", 0, 0, turn, PyList_New(0));
        return Py_BuildValue("(iiKN)", -1, 0, turn, PyList_New(0)); /* e.g. an ICMP error: read on */
    }
    PyObject *misses = PyList_New(0);
    if (!misses) return NULL;
    int o = 0;
    for (int i = 0; i < n; i++) {
        size_t len = answer(cache, i, o, &turn, udp_payload, opt, optlen, &out_rcode[o]);
        if (!len) {
            if (miss(misses, i) < 0) {
                Py_DECREF(misses);
                return NULL;
            }
            continue;
        }
        outiov[o].iov_base = outbuf[o];
        outiov[o].iov_len = len;
        memset(&outmsgs[o].msg_hdr, 0, sizeof outmsgs[o].msg_hdr);
        outmsgs[o].msg_hdr.msg_name = &addrs[i];
        outmsgs[o].msg_hdr.msg_namelen = inmsgs[i].msg_hdr.msg_namelen;
        outmsgs[o].msg_hdr.msg_iov = &outiov[o];
        outmsgs[o].msg_hdr.msg_iovlen = 1;
        o++;
    }
    int sent = 0;
    while (sent < o) {
        int k = sendmmsg(fd, outmsgs + sent, (unsigned)(o - sent), MSG_DONTWAIT);
        if (k <= 0) break; /* send buffer full: the rest are dropped, their clients retry */
        sent += k;
    }
    for (int k = 0; k < sent; k++) rcode_counts[out_rcode[k]]++;
    return Py_BuildValue("(iiKN)", n, sent, turn, misses);
}

static PyObject *rcodes(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    PyObject *out = PyTuple_New(16);
    if (!out) return NULL;
    for (int i = 0; i < 16; i++) {
        PyObject *n = PyLong_FromUnsignedLongLong(rcode_counts[i]);
        if (!n) {
            Py_DECREF(out);
            return NULL;
        }
        PyTuple_SET_ITEM(out, i, n);
    }
    return out;
}

static PyMethodDef methods[] = {
    {"serve", serve, METH_VARARGS, "Answer a batch of UDP queries from the cache; (received, answered, turn, misses)."},
    {"rcodes", rcodes, METH_NOARGS, "The answers sent so far, by rcode (16 counts)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_udpfast", NULL, -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__udpfast(void) { return PyModule_Create(&module); }
