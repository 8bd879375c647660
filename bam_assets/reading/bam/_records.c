/* BAM records to SAM text columns, a chunk at a time (used by bam_assets/reading/bam/decoder.py).
 *
 * frame() finds where whole records end in a buffer of uncompressed BAM data; format() turns
 * the records of a chunk into the columns ``samtools view`` prints, following htslib's
 * bam_read1 / sam_format1 (htslib 1.24, the version pysam 0.24.1 bundles) field by field.
 *
 * Nothing here guesses: a record htslib would refuse, or one whose text this file does not
 * reproduce exactly (a CIGAR held in a CG tag, B:f arrays, non-ASCII text), makes format()
 * return a reason instead of columns, and the caller hands the chunk to htslib itself.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "BAM is little-endian; this decoder reads it in place on little-endian hosts only"
#endif

#define CORE_SIZE 36 /* block_size and the 32 bytes of fixed fields */
#define FLAG_UNMAPPED 0x4

typedef struct {
    char *data;
    size_t len, cap;
    int failed;
} Text;

static int reserve(Text *t, size_t extra) {
    if (t->len + extra <= t->cap) return 0;
    size_t cap = t->cap ? t->cap : 1 << 16;
    while (cap < t->len + extra) cap *= 2;
    char *grown = realloc(t->data, cap);
    if (!grown) {
        t->failed = 1;
        return -1;
    }
    t->data = grown;
    t->cap = cap;
    return 0;
}

static inline void put(Text *t, const void *s, size_t n) {
    if (reserve(t, n)) return;
    memcpy(t->data + t->len, s, n);
    t->len += n;
}

static inline void put_char(Text *t, char c) {
    if (reserve(t, 1)) return;
    t->data[t->len++] = c;
}

static inline void put_unsigned(Text *t, uint64_t v) {
    char digits[24];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (reserve(t, (size_t)n)) return;
    while (n) t->data[t->len++] = digits[--n];
}

static inline void put_signed(Text *t, int64_t v) {
    if (v < 0) {
        put_char(t, '-');
        put_unsigned(t, (uint64_t)0 - (uint64_t)v);
    } else {
        put_unsigned(t, (uint64_t)v);
    }
}

static inline int32_t i32(const uint8_t *p) { int32_t v; memcpy(&v, p, 4); return v; }
static inline uint32_t u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline int16_t i16(const uint8_t *p) { int16_t v; memcpy(&v, p, 2); return v; }
static inline uint16_t u16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

static int has_high_bit(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] & 0x80) return 1;
    return 0;
}

/* frame(data, start, max_records) -> (records, end, bad): whole records from ``start`` on. */
static PyObject *frame(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t start, max_records, count = 0;
    int bad = 0;
    if (!PyArg_ParseTuple(args, "y*nn", &view, &start, &max_records)) return NULL;
    if (start < 0 || start > view.len) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "start outside the data");
        return NULL;
    }
    const uint8_t *data = view.buf;
    Py_ssize_t pos = start;
    while (count < max_records && pos + 4 <= view.len) {
        int32_t size = i32(data + pos);
        if (size < 32) {
            bad = 1;
            break;
        }
        if (pos + 4 + (Py_ssize_t)size > view.len) break;
        pos += 4 + (Py_ssize_t)size;
        count++;
    }
    PyBuffer_Release(&view);
    return Py_BuildValue("nni", count, pos, bad);
}

static const char SEQ_CODES[] = "=ACMGRSVTWYHKDBN";
static const char CIGAR_CODES[] = "MIDNSHP=XB??????";
/* Per CIGAR op: bit 1 consumes the query, bit 2 the reference (bam_cigar_type). */
static const int CIGAR_TYPE[16] = {3, 1, 2, 2, 1, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0};

typedef struct {
    Text qname, cigar, seq, qual, tags;
    int32_t *qname_offsets, *cigar_offsets, *seq_offsets, *qual_offsets, *tags_offsets;
    int32_t *flag, *ref_id, *mapq, *next_ref_id;
    int64_t *pos, *next_pos, *tlen, *end_pos, *qual_sum, *gc_count, *nm;
    uint8_t *end_valid, *qual_valid, *seq_valid, *nm_valid;
} Columns;

/* The first NM tag's value as samtools stats reads it (bam_aux_get, bam_aux2i): the integer
 * of an integer type, 0 for any other type. */
static int64_t nm_value(uint8_t type, const uint8_t *s) {
    switch (type) {
    case 'c': return (int8_t)*s;
    case 'C': return *s;
    case 's': return i16(s);
    case 'S': return u16(s);
    case 'i': return i32(s);
    case 'I': return u32(s);
    default: return 0;
    }
}

/* The optional fields of one record, as sam_format1 prints them, and its first NM tag (*nm,
 * *has_nm); NULL or a reason. */
static const char *format_tags(Text *out, const uint8_t *s, const uint8_t *end, int64_t *nm,
                               uint8_t *has_nm) {
    int first = 1;
    char number[64];
    while (end - s >= 4) { /* htslib ignores a tail of fewer than 4 bytes */
        /* the key is printed as it is: a byte >= 0x80 is text that is not ASCII */
        if ((s[0] | s[1]) & 0x80) return "non-ASCII text";
        if (!first) put_char(out, '\t');
        first = 0;
        put(out, s, 2);
        put_char(out, ':');
        uint8_t type = s[2];
        /* the value's bytes are checked below, before the tag is printed: read them there */
        int is_first_nm = s[0] == 'N' && s[1] == 'M' && !*has_nm;
        s += 3;
        if (is_first_nm) {
            static const uint8_t widths[256] = {['c'] = 1, ['C'] = 1, ['s'] = 2, ['S'] = 2,
                                                ['i'] = 4, ['I'] = 4};
            if (end - s < widths[type]) return "truncated tag";
            *nm = nm_value(type, s);
            *has_nm = 1;
        }
        switch (type) {
        case 'A':
            if (*s & 0x80) return "non-ASCII text";
            if (*s == 0) return "NUL character tag";
            put(out, "A:", 2);
            put_char(out, (char)*s);
            s += 1;
            break;
        case 'c':
            put(out, "i:", 2);
            put_signed(out, (int8_t)*s);
            s += 1;
            break;
        case 'C':
            put(out, "i:", 2);
            put_unsigned(out, *s);
            s += 1;
            break;
        case 's':
            if (end - s < 2) return "truncated tag";
            put(out, "i:", 2);
            put_signed(out, i16(s));
            s += 2;
            break;
        case 'S':
            if (end - s < 2) return "truncated tag";
            put(out, "i:", 2);
            put_unsigned(out, u16(s));
            s += 2;
            break;
        case 'i':
            if (end - s < 4) return "truncated tag";
            put(out, "i:", 2);
            put_signed(out, i32(s));
            s += 4;
            break;
        case 'I':
            if (end - s < 4) return "truncated tag";
            put(out, "i:", 2);
            put_unsigned(out, u32(s));
            s += 4;
            break;
        case 'f': {
            if (end - s < 4) return "truncated tag";
            float value;
            memcpy(&value, s, 4);
            int n = snprintf(number, sizeof number, "f:%g", (double)value);
            put(out, number, (size_t)n);
            s += 4;
            break;
        }
        case 'd': {
            if (end - s < 8) return "truncated tag";
            double value;
            memcpy(&value, s, 8);
            int n = snprintf(number, sizeof number, "d:%g", value);
            put(out, number, (size_t)n);
            s += 8;
            break;
        }
        case 'Z':
        case 'H': {
            const uint8_t *nul = memchr(s, 0, (size_t)(end - s));
            if (!nul) return "string tag without its NUL";
            if (has_high_bit(s, (size_t)(nul - s))) return "non-ASCII text";
            put_char(out, (char)type);
            put_char(out, ':');
            put(out, s, (size_t)(nul - s));
            s = nul + 1;
            break;
        }
        case 'B': {
            if (end - s < 5) return "truncated array tag";
            uint8_t sub = s[0];
            uint32_t n = u32(s + 1);
            size_t width;
            switch (sub) {
            case 'c': case 'C': width = 1; break;
            case 's': case 'S': width = 2; break;
            case 'i': case 'I': width = 4; break;
            default: return "array type left to htslib"; /* B:f prints with kputd */
            }
            s += 5;
            if ((size_t)(end - s) / width < n) return "truncated array tag";
            put(out, "B:", 2);
            put_char(out, (char)sub);
            for (uint32_t i = 0; i < n; i++, s += width) {
                put_char(out, ',');
                switch (sub) {
                case 'c': put_signed(out, (int8_t)*s); break;
                case 'C': put_unsigned(out, *s); break;
                case 's': put_signed(out, i16(s)); break;
                case 'S': put_unsigned(out, u16(s)); break;
                case 'i': put_signed(out, i32(s)); break;
                default: put_unsigned(out, u32(s)); break;
                }
            }
            break;
        }
        default:
            return "tag type left to htslib";
        }
    }
    return NULL;
}

/* One record; ``p`` points at its block_size, ``size`` bytes follow it. NULL or a reason. */
static const char *format_record(Columns *c, Py_ssize_t i, const uint8_t *p, int32_t size,
                                 int n_ref) {
    const uint8_t *end = p + 4 + size;
    int32_t tid = i32(p + 4), pos = i32(p + 8);
    uint8_t l_qname = p[12], mapq = p[13];
    uint16_t n_cigar = u16(p + 16), flag = u16(p + 18);
    int32_t l_seq = i32(p + 20), mtid = i32(p + 24), mpos = i32(p + 28), tlen = i32(p + 32);
    if (l_qname < 1 || l_seq < 0) return "invalid record lengths";
    /* As bam_read1 does: the variable-length fields must fit in the record, checked in 64 bits
     * before any pointer into them is formed (size >= 32 was checked by the caller). */
    uint64_t variable = (uint64_t)l_qname + ((uint64_t)n_cigar << 2) +
                        (((uint64_t)l_seq + 1) >> 1) + (uint64_t)l_seq;
    if (variable > (uint64_t)size - 32) return "record fields overrun the record";
    const uint8_t *qname = p + CORE_SIZE;
    const uint8_t *cigar = qname + l_qname;
    const uint8_t *seq = cigar + ((size_t)n_cigar << 2);
    const uint8_t *qual = seq + (((size_t)l_seq + 1) >> 1);
    const uint8_t *tags = qual + l_seq;
    if (qname[l_qname - 1] != 0) return "read name without its NUL";
    if (tid < -1 || tid >= n_ref || mtid < -1 || mtid >= n_ref) return "reference id out of range";

    int64_t query_length = 0, reference_length = 0;
    for (uint16_t k = 0; k < n_cigar; k++) {
        uint32_t op = u32(cigar + 4 * (size_t)k);
        int type = CIGAR_TYPE[op & 0xF];
        if (type & 1) query_length += op >> 4;
        if (type & 2) reference_length += op >> 4;
    }
    if (n_cigar > 0 && tid >= 0 && pos >= 0 && (u32(cigar) & 0xF) == 4 &&
        (u32(cigar) >> 4) == (uint32_t)l_seq)
        return "CIGAR may be held in a CG tag";
    if (n_cigar > 0 && l_seq > 0 && !(flag & FLAG_UNMAPPED) && query_length != l_seq)
        return "CIGAR and sequence lengths differ";
    if (has_high_bit(qname, (size_t)l_qname - 1)) return "non-ASCII text";
    /* pysam hands htslib's line to Python as a C string, so a NUL would cut it short there */
    if (memchr(qname, 0, (size_t)l_qname - 1)) return "NUL inside the read name";

    put(&c->qname, qname, (size_t)l_qname - 1);
    if (n_cigar == 0) {
        put_char(&c->cigar, '*');
    } else {
        for (uint16_t k = 0; k < n_cigar; k++) {
            uint32_t op = u32(cigar + 4 * (size_t)k);
            put_unsigned(&c->cigar, op >> 4);
            put_char(&c->cigar, CIGAR_CODES[op & 0xF]);
        }
    }
    int64_t gc = 0, quality = 0;
    int quality_stored = l_seq > 0;
    if (l_seq == 0) {
        put_char(&c->seq, '*');
        put_char(&c->qual, '*');
    } else {
        if (reserve(&c->seq, (size_t)l_seq) == 0) {
            char *bases = c->seq.data + c->seq.len;
            for (int32_t k = 0; k < l_seq; k++) {
                uint8_t code = (seq[k >> 1] >> ((~k & 1) << 2)) & 0xF;
                bases[k] = SEQ_CODES[code];
                gc += code == 2 || code == 4; /* C or G */
            }
            c->seq.len += (size_t)l_seq;
        }
        if (qual[0] == 0xFF) {
            /* htslib prints '*' as soon as the first byte is 0xff, but samtools stats sums
             * every byte: keep that sum unless all are 0xff (no QUAL: NULL, 255 per base) */
            put_char(&c->qual, '*');
            quality_stored = 0;
            for (int32_t k = 0; k < l_seq; k++) {
                quality += qual[k];
                quality_stored |= qual[k] != 0xFF;
            }
        } else if (reserve(&c->qual, (size_t)l_seq) == 0) {
            char *text = c->qual.data + c->qual.len;
            for (int32_t k = 0; k < l_seq; k++) {
                if (qual[k] > 126 - 33) return "non-ASCII text";
                text[k] = (char)(qual[k] + 33);
                quality += qual[k];
            }
            c->qual.len += (size_t)l_seq;
        }
    }
    const char *reason = format_tags(&c->tags, tags, end, &c->nm[i], &c->nm_valid[i]);
    if (reason) return reason;

    c->flag[i] = flag;
    c->ref_id[i] = tid;
    c->pos[i] = (int64_t)pos + 1;
    c->mapq[i] = mapq;
    c->next_ref_id[i] = mtid;
    c->next_pos[i] = (int64_t)mpos + 1;
    c->tlen[i] = tlen;
    /* pysam's reference_end (bam_endpos): none when unmapped or without a CIGAR. */
    c->end_valid[i] = !(flag & FLAG_UNMAPPED) && n_cigar > 0;
    c->end_pos[i] = c->end_valid[i] ? (int64_t)pos + (reference_length ? reference_length : 1) : 0;
    c->seq_valid[i] = l_seq > 0;
    c->gc_count[i] = gc;
    c->qual_valid[i] = (uint8_t)quality_stored;
    c->qual_sum[i] = c->qual_valid[i] ? quality : 0;
    c->qname_offsets[i + 1] = (int32_t)c->qname.len;
    c->cigar_offsets[i + 1] = (int32_t)c->cigar.len;
    c->seq_offsets[i + 1] = (int32_t)c->seq.len;
    c->qual_offsets[i + 1] = (int32_t)c->qual.len;
    c->tags_offsets[i + 1] = (int32_t)c->tags.len;
    return NULL;
}

/* Adds to ``dict`` a zeroed bytes object of ``count`` items of ``width`` bytes under ``name``
 * and returns its buffer in ``*data``; -1 with an exception set on failure. */
static int add_array(PyObject *dict, const char *name, Py_ssize_t count, size_t width,
                     void **data) {
    PyObject *bytes = PyBytes_FromStringAndSize(NULL, count * (Py_ssize_t)width);
    if (!bytes) return -1;
    *data = PyBytes_AS_STRING(bytes);
    memset(*data, 0, (size_t)count * width);
    int failed = PyDict_SetItemString(dict, name, bytes);
    Py_DECREF(bytes);
    return failed;
}

/* format(data, count, n_ref) -> dict of column buffers, or (reason, record index). */
static PyObject *format(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t count;
    int n_ref;
    if (!PyArg_ParseTuple(args, "y*ni", &view, &count, &n_ref)) return NULL;
    if (count < 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "negative record count");
        return NULL;
    }
    Columns c;
    memset(&c, 0, sizeof c);
    /* Every fixed-width column and every text column's offsets: name, item width, buffer. */
    struct {
        const char *name;
        Py_ssize_t items;
        size_t width;
        void **data;
    } arrays[] = {
        {"flag", count, 4, (void **)&c.flag},
        {"ref_id", count, 4, (void **)&c.ref_id},
        {"mapq", count, 4, (void **)&c.mapq},
        {"next_ref_id", count, 4, (void **)&c.next_ref_id},
        {"pos", count, 8, (void **)&c.pos},
        {"next_pos", count, 8, (void **)&c.next_pos},
        {"tlen", count, 8, (void **)&c.tlen},
        {"end_pos", count, 8, (void **)&c.end_pos},
        {"qual_sum", count, 8, (void **)&c.qual_sum},
        {"gc_count", count, 8, (void **)&c.gc_count},
        {"end_valid", count, 1, (void **)&c.end_valid},
        {"qual_valid", count, 1, (void **)&c.qual_valid},
        {"seq_valid", count, 1, (void **)&c.seq_valid},
        {"nm", count, 8, (void **)&c.nm},
        {"nm_valid", count, 1, (void **)&c.nm_valid},
        {"qname_offsets", count + 1, 4, (void **)&c.qname_offsets},
        {"cigar_offsets", count + 1, 4, (void **)&c.cigar_offsets},
        {"seq_offsets", count + 1, 4, (void **)&c.seq_offsets},
        {"qual_offsets", count + 1, 4, (void **)&c.qual_offsets},
        {"tags_offsets", count + 1, 4, (void **)&c.tags_offsets},
    };
    static const char *text_names[] = {"qname", "cigar", "seq", "qual", "tags"};
    Text *texts[] = {&c.qname, &c.cigar, &c.seq, &c.qual, &c.tags};
    PyObject *result = PyDict_New();
    PyObject *failure = NULL;
    if (!result) goto error;
    for (size_t k = 0; k < sizeof arrays / sizeof arrays[0]; k++)
        if (add_array(result, arrays[k].name, arrays[k].items, arrays[k].width, arrays[k].data))
            goto error;

    const char *reason = NULL;
    Py_ssize_t index = 0;
    Py_BEGIN_ALLOW_THREADS
    const uint8_t *p = view.buf;
    const uint8_t *limit = p + view.len;
    for (; index < count; index++) {
        if (limit - p < CORE_SIZE) { reason = "record shorter than its fixed fields"; break; }
        int32_t size = i32(p);
        if (size < 32 || limit - p - 4 < size) { reason = "invalid record size"; break; }
        reason = format_record(&c, index, p, size, n_ref);
        if (reason) break;
        for (int k = 0; k < 5; k++)
            if (texts[k]->failed || texts[k]->len > INT32_MAX) reason = "chunk text too large";
        if (reason) break;
        p += 4 + size;
    }
    Py_END_ALLOW_THREADS
    if (reason) {
        failure = Py_BuildValue("(sn)", reason, index);
        Py_DECREF(result);
        result = failure;
    } else {
        for (int k = 0; k < 5; k++) {
            PyObject *a = PyBytes_FromStringAndSize(texts[k]->data ? texts[k]->data : "",
                                                    (Py_ssize_t)texts[k]->len);
            if (!a || PyDict_SetItemString(result, text_names[k], a)) {
                Py_XDECREF(a);
                goto error;
            }
            Py_DECREF(a);
        }
    }
    for (int k = 0; k < 5; k++) free(texts[k]->data);
    PyBuffer_Release(&view);
    return result;

error:
    for (int k = 0; k < 5; k++) free(texts[k]->data);
    Py_XDECREF(result);
    PyBuffer_Release(&view);
    return NULL;
}

static PyMethodDef methods[] = {
    {"frame", frame, METH_VARARGS, "frame(data, start, max_records) -> (records, end, bad)"},
    {"format", format, METH_VARARGS, "format(data, count, n_ref) -> columns or (reason, index)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_records", NULL, -1, methods};

PyMODINIT_FUNC PyInit__records(void) { return PyModule_Create(&module); }
