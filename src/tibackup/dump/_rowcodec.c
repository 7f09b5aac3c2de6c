/* The dumper's hot loop in C: fetch rows from the server and write them as Dumpling's SQL values or CSV.
 *
 * Reader(connection, sql, kinds, csv=None)
 *   connection: a mysqlclient ``_mysql.connection`` (tibackup.dump.conn.DB owns it; the reader borrows
 *               its MYSQL handle, so the session, its snapshot transaction and its options are the ones
 *               Python set up);
 *   sql:        the SELECT to run (bytes); it is sent at once and read with mysql_use_result, so only
 *               one row at a time is held by the driver;
 *   kinds:      one byte per selected column: 'n' number (the server's text, written as is), 's' string
 *               (quoted, backslash-escaped as dumpling/export/sql_type.go escapeBackslashSQL does), 'b'
 *               bytes (x'lower-case hex');
 *   csv:        None for SQL, or (separator, delimiter, null value, line terminator) for Dumpling's CSV
 *               with backslash escapes: numbers as is, NULL as the null value, strings and bytes between
 *               delimiters with \\ \0 \r \n and the delimiter's first byte (or the separator's, without
 *               a delimiter) escaped by a backslash (dumpling/export/sql_type.go escapeCSV).
 * Reader.read(max_bytes) -> (bytes, rows) | None
 *   The next rows ("(v,v,…)" joined by ",\n", or CSV lines joined by the terminator, without a last
 *   one), and how many: rows are added while the text is shorter than max_bytes (so the last one may
 *   cross it; at least one row). None at the end. A raw newline only ever ends a row separator (the
 *   caller allows CSV only with a terminator ending in one), so the writer can split a blob at newlines.
 * Reader.close()  frees the result (reading any rows left, as the protocol requires);
 * Reader.abort()  shuts the socket down first so nothing is read: the session is unusable after it.
 *
 * Fetching and encoding run with the GIL released, so worker threads read in parallel and no Python
 * object is made per value. Errors raise ``Error(code, message)`` with the server's error code.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <mysql.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* mysqlclient's _mysql_ConnectionObject (src/MySQLdb/_mysql.c), the fields up to ``open``. It embeds
 * the MYSQL struct; the module checks at import time (client_version) that both sides link one
 * library, so the struct is the same size on both. */
typedef struct {
    PyObject_HEAD
    MYSQL connection;
    int open;
} MysqlclientConnection;

static PyObject *RowcodecError;

/* HEX2[b]: the two lower-case hex digits of byte b, as they are stored (one 16-bit copy a byte). */
static char HEX2[256][2];

/* An escape table: the letter after the backslash for each byte (0 for a byte written as is), and the
 * bytes it escapes (at most 8), each repeated 16 times for the 16-bytes-at-a-time scan; unused slots
 * repeat the first byte. */
typedef struct {
    char letter[256];
    unsigned char special[8][16];
    int nspecial;
} Escapes;

/* The bytes Dumpling escapes in SQL strings (dumpling/export/sql_type.go escapeBackslashSQL). */
static Escapes SQL_ESCAPES;

static void escapes_add(Escapes *e, unsigned char c, char letter) {
    if (e->letter[c]) return;
    e->letter[c] = letter;
    if (e->nspecial == 0) {
        for (int k = 0; k < 8; k++) memset(e->special[k], c, 16);
    } else {
        memset(e->special[e->nspecial], c, 16);
    }
    e->nspecial++;
}

static void init_tables(void) {
    static const char HEX[] = "0123456789abcdef";
    for (int b = 0; b < 256; b++) {
        HEX2[b][0] = HEX[b >> 4];
        HEX2[b][1] = HEX[b & 15];
    }
    escapes_add(&SQL_ESCAPES, 0, '0');
    escapes_add(&SQL_ESCAPES, '\n', 'n');
    escapes_add(&SQL_ESCAPES, '\r', 'r');
    escapes_add(&SQL_ESCAPES, '\\', '\\');
    escapes_add(&SQL_ESCAPES, '\'', '\'');
    escapes_add(&SQL_ESCAPES, '"', '"');
    escapes_add(&SQL_ESCAPES, 26, 'Z');
}

/* n bytes (a number's text, a separator) without a call to memcpy: most are a few bytes long. Reads
 * only the n bytes given. */
static inline void copy_small(char *out, const char *s, size_t n) {
    if (n >= 8) {
        if (n > 16) { memcpy(out, s, n); return; }
        uint64_t a, b;
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        memcpy(out, &a, 8);
        memcpy(out + n - 8, &b, 8);
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        memcpy(out, &a, 4);
        memcpy(out + n - 4, &b, 4);
    } else {
        for (size_t i = 0; i < n; i++) out[i] = s[i];
    }
}

/* s escaped by a backslash where ``e`` says, into out; returns the length written. Never reads past
 * s + n, and never writes past out + 2 * n (the caller reserves two bytes a byte). */
static size_t put_escaped_bytewise(char *restrict out, const unsigned char *restrict s, size_t n,
                                   const char *restrict letters) {
    size_t len = 0;
    for (size_t t = 0; t < n; t++) {
        char letter = letters[s[t]];
        if (letter) {
            out[len++] = '\\';
            out[len++] = letter;
        } else {
            out[len++] = (char)s[t];
        }
    }
    return len;
}

#if defined(__SSE2__)
/* Where SSE2 is there (every x86-64): 16 bytes at a time. A block with no byte to escape is stored
 * whole; else the bytes before the first one are kept and that one is escaped (the block's store
 * writes at most 16 bytes from where the output stands, within the two bytes a byte reserved for
 * the 16 bytes of s still ahead). The last partial block is checked the same way, read from the
 * block that ends at s + n (or from a copy, for a value shorter than 16 bytes), and copied whole
 * when it has nothing to escape, which is what most values are. */
static size_t put_escaped(char *restrict out, const unsigned char *restrict s, size_t n, const Escapes *e) {
    const __m128i c0 = _mm_loadu_si128((const __m128i *)e->special[0]);
    const __m128i c1 = _mm_loadu_si128((const __m128i *)e->special[1]);
    const __m128i c2 = _mm_loadu_si128((const __m128i *)e->special[2]);
    const __m128i c3 = _mm_loadu_si128((const __m128i *)e->special[3]);
    const __m128i c4 = _mm_loadu_si128((const __m128i *)e->special[4]);
    const __m128i c5 = _mm_loadu_si128((const __m128i *)e->special[5]);
    const __m128i c6 = _mm_loadu_si128((const __m128i *)e->special[6]);
    const __m128i c7 = _mm_loadu_si128((const __m128i *)e->special[7]);
#define HITS(v)                                                                                        \
    ((unsigned int)_mm_movemask_epi8(_mm_or_si128(                                                   \
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, c0), _mm_cmpeq_epi8(v, c1)),                     \
                     _mm_or_si128(_mm_cmpeq_epi8(v, c2), _mm_cmpeq_epi8(v, c3))),                    \
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, c4), _mm_cmpeq_epi8(v, c5)),                     \
                     _mm_or_si128(_mm_cmpeq_epi8(v, c6), _mm_cmpeq_epi8(v, c7))))))
    size_t len = 0, t = 0;
    while (n - t >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(s + t));
        unsigned int mask = HITS(v);
        _mm_storeu_si128((__m128i *)(out + len), v);
        if (mask == 0) {
            len += 16;
            t += 16;
            continue;
        }
        unsigned int k = (unsigned int)__builtin_ctz(mask);
        len += k;
        t += k;
        out[len++] = '\\';
        out[len++] = e->letter[s[t++]];
    }
    size_t r = n - t;
    if (r == 0) return len;
    unsigned int mask;
    if (n >= 16) {
        mask = HITS(_mm_loadu_si128((const __m128i *)(s + n - 16))) >> (16 - r);
    } else {
        unsigned char block[16] = {0};
        copy_small((char *)block, (const char *)s, n);
        mask = HITS(_mm_loadu_si128((const __m128i *)block)) & ((1u << r) - 1);
    }
#undef HITS
    if (mask == 0) {
        copy_small(out + len, (const char *)s + t, r);
        return len + r;
    }
    return len + put_escaped_bytewise(out + len, s + t, r, e->letter);
}
#else
static size_t put_escaped(char *out, const unsigned char *s, size_t n, const Escapes *e) {
    return put_escaped_bytewise(out, s, n, e->letter);
}
#endif

/* Bytes as given (a separator, a delimiter, a null value). */
typedef struct {
    char *data;
    size_t len;
} Text;

static int text_init(Text *t, const char *data, Py_ssize_t len) {
    t->data = PyMem_RawMalloc(len + 1);
    if (t->data == NULL) return -1;
    memcpy(t->data, data, len);
    t->len = (size_t)len;
    return 0;
}

static inline size_t put(char *out, const Text *t) {
    copy_small(out, t->data, t->len);
    return t->len;
}

typedef struct {
    PyObject_HEAD
    PyObject *conn; /* keeps the borrowed MYSQL alive */
    MYSQL *mysql;
    MYSQL_RES *res;
    char *kinds;
    unsigned int ncols;
    char *buf;
    size_t cap;
    int done;
    /* The format: SQL, or CSV with these texts and its own escape table. */
    int csv;
    Text field_sep, row_sep, null_value, delimiter;
    Escapes csv_escape;
} Reader;

/* Buffers of finished readers, for the next ones: a dump creates a reader per chunk (and per half or
 * quarter), and a buffer grown afresh to its 1-2 MiB each time costs a page fault per 4 KiB
 * (~7k faults on 50 tables, more than the rows' encoding of a small table). Taken and given back
 * with the GIL held (Reader_init, close, abort, dealloc), so no lock; at most SPARE_MAX buffers of at
 * most SPARE_CAP_MAX bytes are kept, so an idle process holds little. */
#define SPARE_MAX 4
#define SPARE_CAP_MAX ((size_t)8 << 20)
static struct {
    char *buf;
    size_t cap;
} spare[SPARE_MAX];
static int nspare;

static void take_spare(Reader *self) {
    if (self->buf != NULL || nspare == 0) return;
    nspare--;
    self->buf = spare[nspare].buf;
    self->cap = spare[nspare].cap;
}

static void give_back(Reader *self) {
    if (self->buf == NULL) return;
    if (nspare < SPARE_MAX && self->cap <= SPARE_CAP_MAX) {
        spare[nspare].buf = self->buf;
        spare[nspare].cap = self->cap;
        nspare++;
    } else {
        PyMem_RawFree(self->buf);
    }
    self->buf = NULL;
    self->cap = 0;
}

static PyObject *raise_mysql(MYSQL *mysql) {
    const char *msg = mysql_error(mysql);
    PyObject *text = PyUnicode_DecodeUTF8(msg, (Py_ssize_t)strlen(msg), "replace");
    if (text == NULL) return NULL;
    PyObject *args = Py_BuildValue("(IN)", mysql_errno(mysql), text);
    if (args != NULL) {
        PyErr_SetObject(RowcodecError, args);
        Py_DECREF(args);
    }
    return NULL;
}

static MYSQL *borrow(PyObject *conn) {
    if (strcmp(Py_TYPE(conn)->tp_name, "_mysql.connection") != 0) {
        PyErr_SetString(PyExc_TypeError, "connection must be a mysqlclient _mysql.connection");
        return NULL;
    }
    MysqlclientConnection *c = (MysqlclientConnection *)conn;
    if (!c->open) {
        PyErr_SetObject(RowcodecError, Py_BuildValue("(is)", 2006, "the connection is closed"));
        return NULL;
    }
    /* The layout check: mysqlclient's own thread_id() must read the same session id as we do. */
    PyObject *id = PyObject_CallMethod(conn, "thread_id", NULL);
    if (id == NULL) return NULL;
    unsigned long theirs = PyLong_AsUnsignedLong(id);
    Py_DECREF(id);
    if (PyErr_Occurred()) return NULL;
    if (theirs != mysql_thread_id(&c->connection)) {
        PyErr_SetString(PyExc_RuntimeError,
                        "the C row reader does not match this mysqlclient build (rebuild tibackup with "
                        "pip install, or use --read-mode stream)");
        return NULL;
    }
    return &c->connection;
}

static int init_format(Reader *self, PyObject *csv) {
    const char *sep, *delim, *null, *term;
    Py_ssize_t sep_len, delim_len, null_len, term_len;
    if (csv == Py_None) {
        self->csv = 0;
        if (text_init(&self->field_sep, ",", 1) || text_init(&self->row_sep, ",\n", 2) ||
            text_init(&self->null_value, "NULL", 4) || text_init(&self->delimiter, "", 0)) {
            PyErr_NoMemory();
            return -1;
        }
        return 0;
    }
    if (!PyArg_ParseTuple(csv, "y#y#y#y#", &sep, &sep_len, &delim, &delim_len, &null, &null_len, &term,
                          &term_len))
        return -1;
    if (term_len == 0 || term[term_len - 1] != '\n' || memchr(term, '\n', term_len - 1) != NULL ||
        memchr(sep, '\n', sep_len) != NULL) {
        PyErr_SetString(PyExc_ValueError, "the CSV line terminator must end in its only newline, and the "
                                          "separator must have none");
        return -1;
    }
    self->csv = 1;
    if (text_init(&self->field_sep, sep, sep_len) || text_init(&self->row_sep, term, term_len) ||
        text_init(&self->null_value, null, null_len) || text_init(&self->delimiter, delim, delim_len)) {
        PyErr_NoMemory();
        return -1;
    }
    memset(&self->csv_escape, 0, sizeof self->csv_escape);
    escapes_add(&self->csv_escape, '\\', '\\');
    escapes_add(&self->csv_escape, 0, '0');
    escapes_add(&self->csv_escape, '\r', 'r');
    escapes_add(&self->csv_escape, '\n', 'n');
    const char *special = delim_len ? delim : (sep_len ? sep : NULL);
    if (special != NULL) escapes_add(&self->csv_escape, (unsigned char)special[0], special[0]);
    return 0;
}

static int Reader_init(Reader *self, PyObject *args, PyObject *kwds) {
    PyObject *conn, *csv = Py_None;
    const char *sql, *kinds;
    Py_ssize_t sql_len, nkinds;
    static char *kwlist[] = {"connection", "sql", "kinds", "csv", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Oy#y#|O", kwlist, &conn, &sql, &sql_len, &kinds, &nkinds, &csv))
        return -1;
    if (self->conn != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "a Reader is initialised once");
        return -1;
    }
    if (init_format(self, csv) != 0) return -1;
    for (Py_ssize_t j = 0; j < nkinds; j++) {
        if (kinds[j] != 'n' && kinds[j] != 's' && kinds[j] != 'b') {
            PyErr_SetString(PyExc_ValueError, "kinds are 'n', 's' or 'b'");
            return -1;
        }
    }
    MYSQL *mysql = borrow(conn);
    if (mysql == NULL) return -1;
    self->kinds = PyMem_RawMalloc(nkinds + 1);
    if (self->kinds == NULL) { PyErr_NoMemory(); return -1; }
    memcpy(self->kinds, kinds, nkinds);
    self->ncols = (unsigned int)nkinds;
    Py_INCREF(conn);
    self->conn = conn;
    self->mysql = mysql;

    int failed;
    MYSQL_RES *res = NULL;
    Py_BEGIN_ALLOW_THREADS
    failed = mysql_real_query(mysql, sql, (unsigned long)sql_len) != 0;
    if (!failed) res = mysql_use_result(mysql);
    Py_END_ALLOW_THREADS
    if (failed || (res == NULL && mysql_errno(mysql))) {
        raise_mysql(mysql);
        return -1;
    }
    if (res == NULL) {
        PyErr_SetString(PyExc_ValueError, "the statement returned no result set");
        return -1;
    }
    self->res = res;
    take_spare(self);
    if (mysql_num_fields(res) != self->ncols) {
        PyErr_Format(PyExc_ValueError, "the statement returned %u columns, but %u kinds were given",
                     mysql_num_fields(res), self->ncols);
        return -1;
    }
    return 0;
}

/* Make room for ``need`` more bytes; 0 on success. Runs without the GIL. */
static int reserve(Reader *self, size_t len, size_t need) {
    if (len + need <= self->cap) return 0;
    size_t cap = self->cap ? self->cap : 1 << 16;
    while (cap < len + need) cap *= 2;
    char *buf = PyMem_RawRealloc(self->buf, cap);
    if (buf == NULL) return -1;
    self->buf = buf;
    self->cap = cap;
    return 0;
}

/* Append rows while shorter than ``max_bytes``; returns the length and counts the rows in *rows, or
 * (size_t)-1 with *error set (1 server, 2 memory). Runs without the GIL. */
static size_t fill(Reader *self, size_t max_bytes, int *error, Py_ssize_t *rows) {
    size_t len = 0;
    const unsigned int ncols = self->ncols;
    const char *kinds = self->kinds;
    while (len < max_bytes) {
        MYSQL_ROW row = mysql_fetch_row(self->res);
        if (row == NULL) {
            if (mysql_errno(self->mysql)) { *error = 1; return (size_t)-1; }
            self->done = 1;
            break;
        }
        unsigned long *lengths = mysql_fetch_lengths(self->res);
        const Text *fs = &self->field_sep, *null = &self->null_value, *delim = &self->delimiter;
        /* The worst case: every byte of every value escaped by a backslash. */
        size_t need = self->row_sep.len + 2 + ncols * (fs->len + 2 * delim->len + 3 + null->len);
        for (unsigned int j = 0; j < ncols; j++) need += row[j] ? 2 * (size_t)lengths[j] : 0;
        if (reserve(self, len, need) != 0) { *error = 2; return (size_t)-1; }
        char *out = self->buf;
        if (len) len += put(out + len, &self->row_sep);
        if (!self->csv) out[len++] = '(';
        for (unsigned int j = 0; j < ncols; j++) {
            if (j) len += put(out + len, fs);
            const unsigned char *s = (const unsigned char *)row[j];
            if (s == NULL) { len += put(out + len, null); continue; }
            size_t n = lengths[j];
            if (kinds[j] == 'n') {
                copy_small(out + len, (const char *)s, n);
                len += n;
            } else if (self->csv) { /* strings and bytes alike */
                len += put(out + len, delim);
                len += put_escaped(out + len, s, n, &self->csv_escape);
                len += put(out + len, delim);
            } else if (kinds[j] == 'b') {
                out[len++] = 'x';
                out[len++] = '\'';
                for (size_t t = 0; t < n; t++, len += 2) memcpy(out + len, HEX2[s[t]], 2);
                out[len++] = '\'';
            } else { /* 's' */
                out[len++] = '\'';
                len += put_escaped(out + len, s, n, &SQL_ESCAPES);
                out[len++] = '\'';
            }
        }
        if (!self->csv) out[len++] = ')';
        (*rows)++;
    }
    return len;
}

static PyObject *Reader_read(Reader *self, PyObject *args) {
    Py_ssize_t max_bytes;
    if (!PyArg_ParseTuple(args, "n", &max_bytes)) return NULL;
    if (self->res == NULL) {
        if (self->done) Py_RETURN_NONE;
        PyErr_SetString(PyExc_ValueError, "the reader is closed");
        return NULL;
    }
    if (self->done) Py_RETURN_NONE;
    int error = 0;
    Py_ssize_t rows = 0;
    size_t len;
    Py_BEGIN_ALLOW_THREADS
    len = fill(self, max_bytes > 0 ? (size_t)max_bytes : 1, &error, &rows);
    Py_END_ALLOW_THREADS
    if (error == 1) return raise_mysql(self->mysql);
    if (error == 2) return PyErr_NoMemory();
    if (rows == 0) Py_RETURN_NONE;
    return Py_BuildValue("(y#n)", self->buf, (Py_ssize_t)len, rows);
}

static void free_result(Reader *self, int shut_down) {
    MYSQL_RES *res = self->res;
    if (res == NULL) return;
    self->res = NULL;
    int unread = !self->done;
    Py_BEGIN_ALLOW_THREADS
    if (shut_down && unread) shutdown((int)mysql_get_socket(self->mysql), SHUT_RDWR);
    mysql_free_result(res);
    Py_END_ALLOW_THREADS
}

static PyObject *Reader_close(Reader *self, PyObject *Py_UNUSED(ignored)) {
    free_result(self, 0);
    give_back(self);
    Py_RETURN_NONE;
}

static PyObject *Reader_abort(Reader *self, PyObject *Py_UNUSED(ignored)) {
    free_result(self, 1);
    give_back(self);
    Py_RETURN_NONE;
}

static void Reader_dealloc(Reader *self) {
    free_result(self, 1); /* never closed: the caller is unwinding, do not read the rest */
    give_back(self);
    PyMem_RawFree(self->kinds);
    PyMem_RawFree(self->field_sep.data);
    PyMem_RawFree(self->row_sep.data);
    PyMem_RawFree(self->null_value.data);
    PyMem_RawFree(self->delimiter.data);
    Py_XDECREF(self->conn);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Reader_methods[] = {
    {"read", (PyCFunction)Reader_read, METH_VARARGS,
     "read(max_bytes) -> (the next rows encoded and joined by ',\\n', their count), or None at the end"},
    {"close", (PyCFunction)Reader_close, METH_NOARGS, "Free the result, reading any rows left."},
    {"abort", (PyCFunction)Reader_abort, METH_NOARGS,
     "Free the result without reading the rest: shuts the session's socket down."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ReaderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tibackup.dump._rowcodec.Reader",
    .tp_basicsize = sizeof(Reader),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Rows of one SELECT, fetched and encoded as Dumpling's SQL values or CSV lines in C.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Reader_init,
    .tp_dealloc = (destructor)Reader_dealloc,
    .tp_methods = Reader_methods,
};

static PyObject *client_version(PyObject *self, PyObject *Py_UNUSED(ignored)) {
    return PyUnicode_FromString(mysql_get_client_info());
}

static PyObject *spare_buffers(PyObject *self, PyObject *Py_UNUSED(ignored)) {
    return PyLong_FromLong(nspare);
}

static PyMethodDef methods[] = {
    {"client_version", client_version, METH_NOARGS,
     "The C client library this module links (must equal mysqlclient's get_client_info())."},
    {"spare_buffers", spare_buffers, METH_NOARGS,
     "How many buffers of finished readers are kept for the next ones (at most 4)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_rowcodec", NULL, -1, methods};

PyMODINIT_FUNC PyInit__rowcodec(void) {
    init_tables();
    if (PyType_Ready(&ReaderType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    RowcodecError = PyErr_NewException("tibackup.dump._rowcodec.Error", NULL, NULL);
    if (RowcodecError == NULL || PyModule_AddObjectRef(m, "Error", RowcodecError) < 0 ||
        PyModule_AddObjectRef(m, "Reader", (PyObject *)&ReaderType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
