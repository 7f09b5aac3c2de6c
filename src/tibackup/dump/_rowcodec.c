/* Dumpling's SQL value encoding in C, for rows fetched as raw bytes (mysqlclient, no converters).
 *
 * encode_sql(rows, kinds) -> bytes
 *   rows:  a tuple of row tuples, each value bytes or None (what _mysql's fetch_row returns);
 *   kinds: one byte per column: 'n' number (written as is), 's' string (quoted, backslash-escaped as
 *          dumpling/export/sql_type.go escapeBackslashSQL does), 'b' bytes (x'lower-case hex').
 * Returns the rows as "(v,v,…)" joined by ",\n" (no trailing separator). A raw newline can only occur
 * between rows, never inside a value, so the writer can split the result at newlines.
 *
 * Pure C over immutable bytes: it holds the GIL, builds one bytes object per call.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static const char HEX[] = "0123456789abcdef";

static char escape_of(unsigned char c) {
    switch (c) {
    case 0: return '0';
    case '\n': return 'n';
    case '\r': return 'r';
    case '\\': return '\\';
    case '\'': return '\'';
    case '"': return '"';
    case 26: return 'Z';
    default: return 0;
    }
}

static PyObject *encode_sql(PyObject *self, PyObject *args) {
    PyObject *rows;
    const char *kinds;
    Py_ssize_t nkinds;
    if (!PyArg_ParseTuple(args, "O!y#", &PyTuple_Type, &rows, &kinds, &nkinds)) return NULL;

    Py_ssize_t nrows = PyTuple_GET_SIZE(rows);
    /* First pass: the exact worst-case size, so the output is allocated once. */
    Py_ssize_t need = 0;
    for (Py_ssize_t i = 0; i < nrows; i++) {
        PyObject *row = PyTuple_GET_ITEM(rows, i);
        if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != nkinds) {
            PyErr_SetString(PyExc_ValueError, "every row must be a tuple with one value per kind");
            return NULL;
        }
        need += 4 + nkinds; /* "(", ")", ",\n" and the commas */
        for (Py_ssize_t j = 0; j < nkinds; j++) {
            PyObject *v = PyTuple_GET_ITEM(row, j);
            if (v == Py_None) { need += 4; continue; }
            if (!PyBytes_Check(v)) {
                PyErr_SetString(PyExc_TypeError, "values must be bytes or None");
                return NULL;
            }
            need += 2 * PyBytes_GET_SIZE(v) + 3;
        }
    }
    PyObject *result = PyBytes_FromStringAndSize(NULL, need);
    if (result == NULL) return NULL;
    char *out = PyBytes_AS_STRING(result);
    Py_ssize_t len = 0;

    for (Py_ssize_t i = 0; i < nrows; i++) {
        PyObject *row = PyTuple_GET_ITEM(rows, i);
        if (i) { out[len++] = ','; out[len++] = '\n'; }
        out[len++] = '(';
        for (Py_ssize_t j = 0; j < nkinds; j++) {
            if (j) out[len++] = ',';
            PyObject *v = PyTuple_GET_ITEM(row, j);
            if (v == Py_None) { memcpy(out + len, "NULL", 4); len += 4; continue; }
            const unsigned char *s = (const unsigned char *)PyBytes_AS_STRING(v);
            Py_ssize_t n = PyBytes_GET_SIZE(v);
            switch (kinds[j]) {
            case 'n':
                memcpy(out + len, s, n);
                len += n;
                break;
            case 'b':
                out[len++] = 'x';
                out[len++] = '\'';
                for (Py_ssize_t t = 0; t < n; t++) {
                    out[len++] = HEX[s[t] >> 4];
                    out[len++] = HEX[s[t] & 15];
                }
                out[len++] = '\'';
                break;
            default: /* 's' */
                out[len++] = '\'';
                for (Py_ssize_t t = 0; t < n; t++) {
                    char e = escape_of(s[t]);
                    if (e) { out[len++] = '\\'; out[len++] = e; }
                    else out[len++] = (char)s[t];
                }
                out[len++] = '\'';
            }
        }
        out[len++] = ')';
    }
    if (_PyBytes_Resize(&result, len) < 0) return NULL;
    return result;
}

static PyMethodDef methods[] = {
    {"encode_sql", encode_sql, METH_VARARGS, "Encode raw rows as Dumpling's SQL value tuples joined by ',\\n'."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_rowcodec", NULL, -1, methods};

PyMODINIT_FUNC PyInit__rowcodec(void) { return PyModule_Create(&module); }
