/*
 * feedscan: classify Adobe data feed hit rows and collect their visitor keys, in one pass.
 *
 * Called through ctypes from feedsync/datafeed/nativescan.py (no CPython API, so one build per
 * architecture serves every Python version). ctypes releases the GIL for the call, so this runs
 * in parallel with gzip inflation in another thread.
 *
 * Format: ISO-8859-1 bytes; TAB ends a field, LF ends a row, a backslash makes the next byte data.
 * The scanner handles escapes anywhere in a row. When a column it must interpret (visitor key,
 * CRM id, exclude_hit, hit_source) itself contains a backslash, it stops before that row and
 * returns FS_NEEDS_PYTHON: the Python scanner, which unescapes, takes that one row.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <limits.h>

#define FS_OK 0
#define FS_BAD_COLUMNS (-1)  /* a row has the wrong number of fields */
#define FS_NEEDS_PYTHON (-2) /* the next row has an escape inside a column we interpret */
#define FS_DANGLING (-3)     /* final data ends inside a backslash escape */

/* Column roles; roles[] has one entry per column. Visitor key parts are ROLE_VISITOR + k. */
#define ROLE_NONE 0
#define ROLE_CRM 1
#define ROLE_EXCLUDE 2
#define ROLE_SOURCE 3
#define ROLE_VISITOR 16
#define MAX_VISITOR_PARTS 8

/* SWAR: test 8 bytes at a time. zero_bytes() puts 0x80 in every byte of x that is 0x00. */
#define ONES 0x0101010101010101ULL
#define LOW7 0x7F7F7F7F7F7F7F7FULL
static inline uint64_t zero_bytes(uint64_t x) { return ~(((x & LOW7) + LOW7) | x | LOW7); }
static inline int64_t count_marks(uint64_t marks) { return (int64_t)(((marks >> 7) * ONES) >> 56); }

typedef struct {
    int64_t consumed;        /* bytes of buf fully processed (complete rows) */
    int64_t rows;            /* rows processed */
    int64_t excluded;        /* rows reports do not count */
    int64_t without_visitor; /* counted rows with an empty visitor key part */
    int64_t pending_len;     /* bytes written to pending_out: keys of counted rows without CRM id */
    int64_t known_len;       /* bytes written to known_out: keys of counted rows with a CRM id */
    int64_t bad_fields;      /* FS_BAD_COLUMNS: the offending row's field count */
} fs_result;

int fs_scan(const uint8_t *buf, int64_t len, int final, const uint8_t *roles, int32_t n_columns,
            int32_t n_visitor, uint8_t separator, uint8_t *pending_out, uint8_t *known_out,
            fs_result *res) {
    /* special[c]: 1 for TAB, LF, backslash; lets the inner loop skip plain bytes quickly */
    uint8_t special[256];
    memset(special, 0, sizeof special);
    special['\t'] = special['\n'] = special['\\'] = 1;
    /* next_wanted[c]: the first column >= c with a role; fields before it can be skipped whole */
    int32_t next_wanted[n_columns + 1];
    next_wanted[n_columns] = INT32_MAX;
    for (int32_t c = n_columns - 1; c >= 0; c--) next_wanted[c] = roles[c] ? c : next_wanted[c + 1];

    const uint8_t *field_start[ROLE_VISITOR + MAX_VISITOR_PARTS]; /* per call: thread-safe */
    int64_t field_len[ROLE_VISITOR + MAX_VISITOR_PARTS];
    const uint8_t *p = buf, *end = buf + len;
    int64_t pending_len = 0, known_len = 0;
    int rc = FS_OK;
    res->rows = res->excluded = res->without_visitor = 0;

    while (p < end) {
        const uint8_t *row = p, *fs = p;
        int32_t col = 0;
        int esc = 0, tainted = 0, complete = 0;
        for (int i = 0; i < ROLE_VISITOR + MAX_VISITOR_PARTS; i++) {
            field_start[i] = NULL;
            field_len[i] = 0;
        }
        for (;;) {
            /* Whole words with no LF or backslash, whose tabs all end fields we do not read. */
            int64_t target = col < n_columns ? next_wanted[col] : INT32_MAX;
            while (end - p >= 8) {
                uint64_t w;
                memcpy(&w, p, 8);
                if (zero_bytes(w ^ (ONES * '\n')) | zero_bytes(w ^ (ONES * '\\'))) break;
                int64_t tabs = count_marks(zero_bytes(w ^ (ONES * '\t')));
                if (col + tabs >= target) break;
                if (tabs) {
                    col += (int32_t)tabs;
                    esc = 0;
                    target = col < n_columns ? next_wanted[col] : INT32_MAX;
                }
                p += 8;
            }
            while (p < end && !special[*p]) p++;
            if (p >= end) break;
            uint8_t c = *p;
            if (c == '\\') {
                if (p + 1 >= end) break; /* the escaped byte is not here yet */
                esc = 1;
                p += 2;
                continue;
            }
            /* TAB or LF ends the field */
            if (col < n_columns) {
                uint8_t role = roles[col];
                if (role) {
                    field_start[role] = fs;
                    field_len[role] = p - fs;
                    tainted |= esc;
                }
            }
            col++;
            esc = 0;
            p++;
            fs = p;
            if (c == '\n') {
                complete = 1;
                break;
            }
        }
        if (!complete) {
            if (!final) { p = row; break; }
            if (p < end) { rc = FS_DANGLING; p = row; break; } /* backslash is the last byte */
            /* last row without a trailing newline */
            if (col < n_columns && roles[col]) {
                field_start[roles[col]] = fs;
                field_len[roles[col]] = end - fs;
                tainted |= esc;
            }
            col++;
            p = end;
        }
        if (col != n_columns) {
            res->bad_fields = col;
            rc = FS_BAD_COLUMNS;
            p = row;
            break;
        }
        if (tainted) {
            rc = FS_NEEDS_PYTHON;
            p = row;
            break;
        }
        res->rows++;
        /* exclude_hit: counted when empty or "0" */
        if (field_start[ROLE_EXCLUDE] &&
            !(field_len[ROLE_EXCLUDE] == 0 ||
              (field_len[ROLE_EXCLUDE] == 1 && field_start[ROLE_EXCLUDE][0] == '0'))) {
            res->excluded++;
            continue;
        }
        /* hit_source 5, 7, 8, 9: data source and summary hits */
        if (field_start[ROLE_SOURCE] && field_len[ROLE_SOURCE] == 1) {
            uint8_t s = field_start[ROLE_SOURCE][0];
            if (s == '5' || s == '7' || s == '8' || s == '9') {
                res->excluded++;
                continue;
            }
        }
        int missing = 0;
        for (int k = 0; k < n_visitor; k++) missing |= field_len[ROLE_VISITOR + k] == 0;
        if (missing) {
            res->without_visitor++;
            continue;
        }
        uint8_t *out = field_len[ROLE_CRM] ? known_out : pending_out;
        int64_t *out_len = field_len[ROLE_CRM] ? &known_len : &pending_len;
        for (int k = 0; k < n_visitor; k++) {
            if (k) out[(*out_len)++] = separator;
            memcpy(out + *out_len, field_start[ROLE_VISITOR + k], (size_t)field_len[ROLE_VISITOR + k]);
            *out_len += field_len[ROLE_VISITOR + k];
        }
        out[(*out_len)++] = '\n';
    }
    res->consumed = p - buf;
    res->pending_len = pending_len;
    res->known_len = known_len;
    return rc;
}

/*
 * The end of a row that started in an earlier chunk: the index just after the first newline of
 * buf that is not escaped, or 0 when no row ends in buf. `escaped` says the earlier data ended
 * with a pending backslash (so buf[0] is data). One linear pass, however many escaped newlines
 * the row holds.
 */
int64_t fs_row_end(const uint8_t *buf, int64_t len, int escaped) {
    int64_t i = escaped ? 1 : 0;
    while (i < len) {
        const uint8_t *nl = memchr(buf + i, '\n', (size_t)(len - i));
        const uint8_t *bs = memchr(buf + i, '\\', (size_t)((nl ? nl - buf : len) - i));
        if (!bs) return nl ? (nl - buf) + 1 : 0; /* no backslash before the newline */
        i = (bs - buf) + 2;                       /* the escaped byte is data */
    }
    return 0;
}
