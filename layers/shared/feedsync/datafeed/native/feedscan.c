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

/*
 * Blocks: 64 bytes classified at once into three bit masks (bit i = byte i): tabs, newlines,
 * backslashes. Rows are mostly plain bytes and tabs of fields we do not read, so whole blocks
 * are passed with a popcount; bit arithmetic finds the few tabs that bound a wanted field.
 * SSE2 is part of every x86-64 CPU; elsewhere the same masks come from SWAR words.
 */
#define BLOCK 64
typedef struct {
    uint64_t tab, lf, backslash;
} fs_masks;

#if defined(__SSE2__) && !defined(FEEDSCAN_PORTABLE)
#include <emmintrin.h>
static inline fs_masks block_masks(const uint8_t *p) {
    const __m128i tab = _mm_set1_epi8('\t'), lf = _mm_set1_epi8('\n'), bs = _mm_set1_epi8('\\');
    fs_masks m = {0, 0, 0};
    for (int i = 0; i < BLOCK; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(p + i));
        m.tab |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, tab)) << i;
        m.lf |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, lf)) << i;
        m.backslash |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, bs)) << i;
    }
    return m;
}
#else
/* SWAR: test 8 bytes at a time. zero_bytes() puts 0x80 in every byte of x that is 0x00. */
#define ONES 0x0101010101010101ULL
#define LOW7 0x7F7F7F7F7F7F7F7FULL
static inline uint64_t zero_bytes(uint64_t x) { return ~(((x & LOW7) + LOW7) | x | LOW7); }
/* 0x80 in byte j of marks -> bit j of the result (the multiply gathers the 8 flags). */
static inline uint64_t gather_marks(uint64_t marks) {
    return ((marks >> 7) * 0x0102040810204080ULL) >> 56;
}
static inline fs_masks block_masks(const uint8_t *p) {
    fs_masks m = {0, 0, 0};
    for (int i = 0; i < BLOCK; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        w = __builtin_bswap64(w);
#endif
        m.tab |= gather_marks(zero_bytes(w ^ (ONES * '\t'))) << i;
        m.lf |= gather_marks(zero_bytes(w ^ (ONES * '\n'))) << i;
        m.backslash |= gather_marks(zero_bytes(w ^ (ONES * '\\'))) << i;
    }
    return m;
}
#endif

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
            /* Blocks: tabs before the first LF or backslash are taken with bit arithmetic;
               that LF or backslash, and the last bytes of buf, go to the byte loop below. */
            while (end - p >= BLOCK) {
                fs_masks m = block_masks(p);
                uint64_t stop = m.lf | m.backslash;
                uint64_t tabs = m.tab & (stop ? (stop & -stop) - 1 : ~0ULL);
                int64_t target = col < n_columns ? next_wanted[col] : INT32_MAX;
                while (tabs) {
                    if (col < target) { /* unread fields: pass their tabs in bulk */
                        int64_t need = target - col, count = __builtin_popcountll(tabs);
                        if (count < need) {
                            col += (int32_t)count;
                            esc = 0;
                            break;
                        }
                        for (int64_t k = 1; k < need; k++) tabs &= tabs - 1;
                        col = (int32_t)target; /* the wanted field starts after this tab */
                    } else { /* this tab ends a wanted field */
                        uint8_t role = roles[col];
                        field_start[role] = fs;
                        field_len[role] = p + __builtin_ctzll(tabs) - fs;
                        tainted |= esc;
                        col++;
                        target = col < n_columns ? next_wanted[col] : INT32_MAX;
                    }
                    esc = 0;
                    fs = p + __builtin_ctzll(tabs) + 1;
                    tabs &= tabs - 1;
                }
                if (stop) {
                    p += __builtin_ctzll(stop);
                    break;
                }
                p += BLOCK;
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
