/* Quality sums per sequencing cycle over one Arrow batch (used by bam_assets/stats/cycle_quality.py).
 *
 * add(flag, seq_offsets, seq, qual_offsets, qual, qual_sum, reads, sums) adds the batch's original
 * first and last fragments to per-cycle sums, as samtools stats' FFQ/LFQ lines count them
 * (reverse-strand records read back to front). ``flag`` is int32[n]; ``seq_offsets``/
 * ``qual_offsets`` are the int32[n + 1] offsets of the Arrow string columns into ``seq``/``qual``
 * (``qual`` as bytes: escaped bytes already unescaped); ``qual_sum`` is int64[n], -1 where null.
 * ``reads`` and ``sums`` are int64 [2][capacity] (first fragments, then last ones):
 * reads[f][n - 1] counts fragments with n bases (cycle c has the bases of every fragment longer
 * than c - 1), and sums[f][c] adds the base qualities at cycle c.
 *
 * samtools sums the quality bytes. htslib prints byte q as the character (q + 33) & 0xff, so q is
 * (c - 33) & 0xff; it prints '*' when the first byte is 0xff (no QUAL: 255 per base, as samtools
 * counts it) and for a one-base read of Phred 9 (chr(9 + 33)), whose quality is its qual_sum.
 *
 * Every offset is checked against its buffer before it is used: a batch that breaks the Arrow
 * layout raises ValueError instead of reading outside memory.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#define BAM_FPAIRED 0x1
#define BAM_FREVERSE 0x10
#define BAM_FREAD1 0x40
#define BAM_FREAD2 0x80
#define BAM_FSECONDARY 0x100
#define BAM_FSUPPLEMENTARY 0x800

/* True when offsets[i] <= offsets[i + 1] <= limit for every i < count, and offsets[0] >= 0. */
static int offsets_valid(const int32_t *offsets, Py_ssize_t count, Py_ssize_t limit) {
    if (offsets[0] < 0) return 0;
    for (Py_ssize_t i = 0; i < count; i++)
        if (offsets[i + 1] < offsets[i]) return 0;
    return offsets[count] <= limit;
}

static const char *add_batch(const Py_buffer *flag, const Py_buffer *seq_offsets,
                             const Py_buffer *seq, const Py_buffer *qual_offsets,
                             const Py_buffer *qual, const Py_buffer *qual_sum, Py_buffer *reads,
                             Py_buffer *sums) {
    Py_ssize_t count = flag->len / 4;
    if (flag->len % 4 || seq_offsets->len < (count + 1) * 4 ||
        qual_offsets->len < (count + 1) * 4 || qual_sum->len != count * 8)
        return "the flag, offset and sum buffers do not describe the same number of records";
    if (sums->len % 16 || reads->len != sums->len)
        return "the reads and sums buffers are not both int64[2][capacity]";
    const int32_t *flags = flag->buf, *seq_at = seq_offsets->buf, *qual_at = qual_offsets->buf;
    const int64_t *qual_sums = qual_sum->buf;
    if (!offsets_valid(seq_at, count, seq->len) || !offsets_valid(qual_at, count, qual->len))
        return "an offset lies outside its string buffer";
    const uint8_t *seq_text = seq->buf, *qual_text = qual->buf;
    int64_t *read_counts = reads->buf, *character_sums = sums->buf;
    Py_ssize_t capacity = sums->len / 16;
    for (Py_ssize_t i = 0; i < count; i++) {
        int32_t f = flags[i];
        if (f & (BAM_FSECONDARY | BAM_FSUPPLEMENTARY)) continue;
        int order = (f & BAM_FPAIRED)
                        ? ((f & BAM_FREAD1) ? 1 : 0) + ((f & BAM_FREAD2) ? 2 : 0)
                        : 1;
        if (order != 1 && order != 2) continue;
        int64_t length = (int64_t)seq_at[i + 1] - seq_at[i];
        if (length == 1 && seq_text[seq_at[i]] == '*') length = 0;
        if (length == 0) continue;
        if (length > capacity) return "a sequence is longer than the cycle capacity";
        const uint8_t *q = qual_text + qual_at[i];
        int64_t q_length = (int64_t)qual_at[i + 1] - qual_at[i];
        int missing = q_length == 1 && q[0] == '*';
        if (!missing && q_length != length) return "a QUAL is not as long as its SEQ";
        read_counts[(order - 1) * capacity + length - 1] += 1;
        int64_t *row = character_sums + (order - 1) * capacity;
        if (missing && length == 1 && qual_sums[i] >= 0) {
            row[0] += qual_sums[i];
        } else if (missing) {
            for (int64_t k = 0; k < length; k++) row[k] += 255;
        } else if (f & BAM_FREVERSE) {
            for (int64_t k = 0; k < length; k++) row[length - 1 - k] += (uint8_t)(q[k] - 33);
        } else {
            for (int64_t k = 0; k < length; k++) row[k] += (uint8_t)(q[k] - 33);
        }
    }
    return NULL;
}

static PyObject *add(PyObject *self, PyObject *args) {
    Py_buffer flag, seq_offsets, seq, qual_offsets, qual, qual_sum, reads, sums;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*w*w*", &flag, &seq_offsets, &seq, &qual_offsets,
                          &qual, &qual_sum, &reads, &sums))
        return NULL;
    const char *problem =
        add_batch(&flag, &seq_offsets, &seq, &qual_offsets, &qual, &qual_sum, &reads, &sums);
    PyBuffer_Release(&flag);
    PyBuffer_Release(&seq_offsets);
    PyBuffer_Release(&seq);
    PyBuffer_Release(&qual_offsets);
    PyBuffer_Release(&qual);
    PyBuffer_Release(&qual_sum);
    PyBuffer_Release(&reads);
    PyBuffer_Release(&sums);
    if (problem) {
        PyErr_SetString(PyExc_ValueError, problem);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"add", add, METH_VARARGS,
     "add(flag, seq_offsets, seq, qual_offsets, qual, qual_sum, reads, sums) -> None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_cycle_sums", NULL, -1, methods};

PyMODINIT_FUNC PyInit__cycle_sums(void) { return PyModule_Create(&module); }
