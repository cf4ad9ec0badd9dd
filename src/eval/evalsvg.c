/* qfit eval's chart: a standalone SVG (no scripts, no external references) with
 * quality (mean KLD, log scale) vs file size, its Pareto front, and speed vs size. */
#include "qfit/eval.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int qfit_eval_pareto(const qfit_eval_result *res, int *front)
{
    /* rows by size (then KLD); a row is on the front when no smaller-or-equal row has a
     * lower-or-equal KLD, i.e. when its KLD is below every KLD seen so far */
    int n = 0;
    for (int i = 1; i < res->n_rows; i++) front[n++] = i;
    for (int i = 1; i < n; i++)   /* insertion sort: a few rows */
        for (int j = i; j > 0; j--) {
            const qfit_eval_row *a = &res->rows[front[j - 1]], *b = &res->rows[front[j]];
            if (a->file_bytes < b->file_bytes || (a->file_bytes == b->file_bytes && a->kld_mean <= b->kld_mean)) break;
            const int t = front[j - 1];
            front[j - 1] = front[j];
            front[j] = t;
        }
    int k = 0;
    double best = INFINITY;
    for (int i = 0; i < n; i++)
        if (res->rows[front[i]].kld_mean < best) {
            best = res->rows[front[i]].kld_mean;
            front[k++] = front[i];
        }
    return k;
}

/* XML character data / attribute value: the five specials escaped; control
 * characters and non-ASCII bytes (a file name need not be UTF-8) become '?' */
static void xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        const unsigned char ch = (unsigned char)*s;
        switch (ch) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default: fputc(ch < 0x20 || ch >= 0x7f ? '?' : ch, f);
        }
    }
}

#define W      900.0
#define H      440.0
#define ML     90.0   /* margins of the plot area */
#define MR     30.0
#define MT     50.0
#define MB     60.0

typedef struct {
    double x0, x1;     /* data range, MiB */
    double l0, l1;     /* log10 range */
    double top;        /* chart's top in the document */
} frame;

static double px(const frame *fr, double x) { return ML + (x - fr->x0) / (fr->x1 - fr->x0) * (W - ML - MR); }
static double py(const frame *fr, double y)
{
    return fr->top + MT + (fr->l1 - log10(y)) / (fr->l1 - fr->l0) * (H - MT - MB);
}

/* axes, title, decade grid on y, about 6 steps on x */
static void axes(FILE *f, const frame *fr, const char *title, const char *ylabel)
{
    const double top = fr->top + MT, bottom = fr->top + H - MB;
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"16\" font-weight=\"bold\">", ML, fr->top + 28);
    xml_text(f, title);
    fprintf(f, "</text>\n<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#444\"/>\n",
            ML, top, W - ML - MR, bottom - top);
    for (int d = (int)fr->l0; d <= (int)fr->l1; d++) {
        const double y = py(fr, pow(10, d));
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n"
                   "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"end\">1e%d</text>\n",
                ML, y, W - MR, y, ML - 6, y + 4, d);
    }
    const double raw = (fr->x1 - fr->x0) / 6, mag = pow(10, floor(log10(raw)));
    const double step = mag * (raw / mag < 2 ? 2 : raw / mag < 5 ? 5 : 10);
    for (double x = ceil(fr->x0 / step) * step; x <= fr->x1; x += step)
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n"
                   "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\">%g</text>\n",
                px(fr, x), top, px(fr, x), bottom, px(fr, x), bottom + 18, x);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\" text-anchor=\"middle\">file size (MiB)</text>\n",
            (ML + W - MR) / 2, bottom + 42);
    fprintf(f, "<text x=\"20\" y=\"%.1f\" font-size=\"13\" text-anchor=\"middle\" transform=\"rotate(-90 20 %.1f)\">",
            (top + bottom) / 2, (top + bottom) / 2);
    xml_text(f, ylabel);
    fputs("</text>\n", f);
}

static double mib(const qfit_eval_row *w) { return (double)w->file_bytes / (1 << 20); }

/* the data frame of rows[1..) for values v (positive ones) */
static int make_frame(const qfit_eval_result *res, double (*v)(const qfit_eval_row *), double top, frame *fr)
{
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    int n = 0;
    for (int i = 1; i < res->n_rows; i++) {
        const double y = v(&res->rows[i]);
        if (!(y > 0) || !isfinite(y)) continue;
        n++;
        x0 = fmin(x0, mib(&res->rows[i]));
        x1 = fmax(x1, mib(&res->rows[i]));
        y0 = fmin(y0, y);
        y1 = fmax(y1, y);
    }
    if (!n) return 0;
    const double pad = x1 > x0 ? 0.08 * (x1 - x0) : fmax(0.1 * x0, 1.0);
    fr->x0 = fmax(0.0, x0 - pad);
    fr->x1 = x1 + pad;
    fr->l0 = floor(log10(y0));
    fr->l1 = ceil(log10(y1));
    if (fr->l1 <= fr->l0) fr->l1 = fr->l0 + 1;
    fr->top = top;
    return n;
}

static double v_kld(const qfit_eval_row *w) { return w->kld_mean; }
static double v_tg(const qfit_eval_row *w) { return w->has_speed ? w->tg_tps : 0.0; }
static double v_pp(const qfit_eval_row *w) { return w->has_speed ? w->pp_tps : 0.0; }
static double v_speed(const qfit_eval_row *w) { return fmax(v_tg(w), v_pp(w)); }
static double v_speed_min(const qfit_eval_row *w) { return v_tg(w) > 0 && v_pp(w) > 0 ? fmin(v_tg(w), v_pp(w)) : v_speed(w); }

/* one marker of a chart and its label (name NULL: none) */
typedef struct {
    double x, y;
    const char *color, *name;
} mark;

typedef struct {
    double x0, y0, x1, y1;
} box;

static bool overlaps(const box *a, const box *b)
{
    return a->x0 < b->x1 && b->x0 < a->x1 && a->y0 < b->y1 && b->y0 < a->y1;
}

/* Draws the markers, then places each label at the first of a few spots around its
 * marker that stays in the plot and clear of every marker and label placed so far
 * (greedy: crowded types, e.g. Q4_0 / IQ4_NL / Q4_K_S, would print over each other);
 * a label moved away from its marker gets a thin leader line. */
static void draw_marks(FILE *f, const frame *fr, const mark *m, int n, box *boxes)
{
    static const struct { double dx, dy; bool left; } spots[] = {
        { 7, -6, false }, { 7, 14, false }, { -7, -6, true }, { -7, 14, true }, { 7, -20, false },
        { 7, 28, false }, { -7, -20, true }, { -7, 28, true }, { 7, -34, false }, { 7, 42, false },
        { -7, -34, true }, { -7, 42, true },
    };
    const double top = fr->top + MT, bottom = fr->top + H - MB;
    int nb = 0;
    for (int i = 0; i < n; i++) {
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4.5\" fill=\"%s\"/>\n", m[i].x, m[i].y, m[i].color);
        boxes[nb++] = (box){ m[i].x - 5, m[i].y - 5, m[i].x + 5, m[i].y + 5 };
    }
    for (int i = 0; i < n; i++) {
        if (!m[i].name) continue;
        const double w = 7.2 * (double)strlen(m[i].name);   /* 12 px sans-serif, generous */
        int pick = 0;
        box b = { 0, 0, 0, 0 };
        for (int k = 0; k < (int)(sizeof spots / sizeof *spots); k++) {
            const double x = m[i].x + spots[k].dx, y = m[i].y + spots[k].dy;
            const box c = { spots[k].left ? x - w : x, y - 10, spots[k].left ? x : x + w, y + 2 };
            bool ok = c.x0 >= ML && c.x1 <= W - MR && c.y0 >= top && c.y1 <= bottom;
            for (int j = 0; ok && j < nb; j++) ok = !overlaps(&c, &boxes[j]);
            if (k == 0) b = c;
            if (ok) { pick = k; b = c; break; }
        }
        boxes[nb++] = b;
        const double x = m[i].x + spots[pick].dx, y = m[i].y + spots[pick].dy;
        if (fabs(spots[pick].dy) > 14)
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\" stroke-width=\"0.7\"/>\n",
                    m[i].x, m[i].y, x, spots[pick].dy < 0 ? y + 2 : y - 10);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\"%s>", x, y, spots[pick].left ? " text-anchor=\"end\"" : "");
        xml_text(f, m[i].name);
        fputs("</text>\n", f);
    }
}

static void write_charts(FILE *f, const qfit_eval_result *res, int *front, mark *marks, box *boxes)
{
    frame q, s;
    const int nq = make_frame(res, v_kld, 0, &q);
    const int ns = make_frame(res, v_speed, H, &s);
    frame lo;   /* the speed frame spans the smaller of pp / tg too */
    if (ns && make_frame(res, v_speed_min, H, &lo)) s.l0 = fmin(s.l0, lo.l0);
    const double height = ns ? 2 * H : H;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
               "font-family=\"sans-serif\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            W, height, W, height);
    if (!nq) {
        fprintf(f, "<text x=\"%.0f\" y=\"60\" font-size=\"14\">no quantized row with a positive mean KLD</text>\n", ML);
    } else {
        char title[160];
        snprintf(title, sizeof title, "Quality vs size: mean KLD against the base (log scale, lower is better), %d x %d tokens",
                 res->n_chunks, res->n_ctx);
        axes(f, &q, title, "mean KLD (nats)");
        const int nf = qfit_eval_pareto(res, front);
        fputs("<polyline class=\"pareto\" fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\" points=\"", f);
        for (int i = 0; i < nf; i++)
            if (res->rows[front[i]].kld_mean > 0)
                fprintf(f, "%s%.1f,%.1f", i ? " " : "", px(&q, mib(&res->rows[front[i]])), py(&q, res->rows[front[i]].kld_mean));
        fprintf(f, "\"/>\n<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" fill=\"#d62728\" text-anchor=\"end\">"
                   "red line: Pareto front (no other type is both smaller and better)</text>\n",
                W - MR - 6, q.top + MT + 16);
        int nm = 0;
        for (int i = 1; i < res->n_rows; i++)
            if (res->rows[i].kld_mean > 0)
                marks[nm++] = (mark){ px(&q, mib(&res->rows[i])), py(&q, res->rows[i].kld_mean), "#1f77b4", res->rows[i].name };
        draw_marks(f, &q, marks, nm, boxes);
        /* a log scale has no place for KLD 0 (a file identical to the base): say so */
        bool first = true;
        for (int i = 1; i < res->n_rows; i++) {
            if (res->rows[i].kld_mean > 0) continue;
            if (first) fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\">not drawn (mean KLD 0):", ML, q.top + H - 4);
            else fputc(',', f);
            fputc(' ', f);
            xml_text(f, res->rows[i].name);
            first = false;
        }
        if (!first) fputs("</text>\n", f);
    }
    if (ns) {
        axes(f, &s, "Speed vs size on this machine (tokens/s, log scale)", "tokens/s");
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"end\">"
                   "<tspan fill=\"#2ca02c\">&#9679; tg (%d single-token decodes)</tspan>  "
                   "<tspan fill=\"#9467bd\">&#9679; pp (one batch of %d)</tspan></text>\n",
                W - MR - 6, s.top + MT + 16, res->speed_tg, res->speed_pp);
        int nm = 0;
        for (int i = 1; i < res->n_rows; i++) {
            const qfit_eval_row *w = &res->rows[i];
            if (v_tg(w) > 0) marks[nm++] = (mark){ px(&s, mib(w)), py(&s, w->tg_tps), "#2ca02c", w->name };
            if (v_pp(w) > 0) marks[nm++] = (mark){ px(&s, mib(w)), py(&s, w->pp_tps), "#9467bd", v_tg(w) > 0 ? NULL : w->name };
        }
        draw_marks(f, &s, marks, nm, boxes);
    }
    fputs("</svg>\n", f);
}

/* buf[0..len) into path: temp file + fsync + rename + directory fsync (what: for messages) */
static int write_atomic(const char *path, const char *buf, size_t len, const char *what, char *err, size_t err_len)
{
    /* temp file + fsync + rename + directory fsync */
    const size_t pl = strlen(path);
    char *tmp = malloc(pl + 16);
    if (!tmp) { snprintf(err, err_len, "%s: out of memory", what); return -1; }
    snprintf(tmp, pl + 16, "%s.tmp.XXXXXX", path);
    int rc = -1;
    const int fd = mkstemp(tmp);
    if (fd < 0) { snprintf(err, err_len, "%s: cannot create %s: %s", what, tmp, strerror(errno)); goto out; }
    {   /* mkstemp makes it 0600: give the file an ordinary file's mode (reading the umask
         * means setting it: not thread-safe, like the rest of this writer) */
        const mode_t um = umask(022);
        umask(um);
        fchmod(fd, 0666 & ~um);
    }
    size_t off = 0;
    while (off < len) {
        const ssize_t k = write(fd, buf + off, len - off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        off += (size_t)k;
    }
    if (off < len || fsync(fd) != 0) {
        snprintf(err, err_len, "%s: write error on %s: %s", what, tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        goto out;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        snprintf(err, err_len, "%s: cannot write %s: %s", what, path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    {
        char *dir = strdup(path);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        const char *d = !dir ? NULL : slash == dir ? "/" : slash ? (*slash = 0, dir) : ".";
        const int dfd = d ? open(d, O_RDONLY | O_DIRECTORY) : -1;
        if (dfd >= 0) { fsync(dfd); close(dfd); }
        free(dir);
    }
    rc = 0;
out:
    free(tmp);
    return rc;
}

int qfit_eval_write_svg(const char *path, const qfit_eval_result *res, char *err, size_t err_len)
{
    char *buf = NULL;
    size_t len = 0;
    const size_t nr = (size_t)(res->n_rows > 0 ? res->n_rows : 1);
    int *front = malloc(sizeof *front * nr);
    mark *marks = malloc(sizeof *marks * 2 * nr);     /* tg and pp of each row */
    box *boxes = malloc(sizeof *boxes * 4 * nr);      /* a marker and a label each */
    FILE *m = front && marks && boxes ? open_memstream(&buf, &len) : NULL;
    if (m) write_charts(m, res, front, marks, boxes);
    free(front);
    free(marks);
    free(boxes);
    if (!m) { snprintf(err, err_len, "svg: out of memory"); return -1; }
    if (fclose(m) != 0 || !buf) { free(buf); snprintf(err, err_len, "svg: out of memory"); return -1; }

    const int rc = write_atomic(path, buf, len, "svg", err, err_len);
    free(buf);
    return rc;
}


int qfit_eval_write_json(const char *path, const qfit_eval_result *res, char *err, size_t err_len)
{
    char *j = qfit_eval_json(res);
    if (!j) { snprintf(err, err_len, "json: out of memory"); return -1; }
    const int rc = write_atomic(path, j, strlen(j), "json", err, err_len);
    free(j);
    return rc;
}
