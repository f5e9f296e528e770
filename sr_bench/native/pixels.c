/* Per-pixel conversions of sr_bench/imaging (quantize.py, color.py) in one pass each: the same float64 operations
   in the same order as their torch formulation, each rounded where torch rounds it, so the same bits. torch runs
   them as four to nine separate passes over image-sized temporaries; here each value is read once and written
   once. Per-element results do not depend on the order the elements are visited in, so any split of the index
   range over threads gives the same output. Compile with -ffp-contract=off: only the fma() written here fuses. */
#include <math.h>

static inline double clamp_u8(double v)
{
    /* torch.clamp(v, 0, 255): min(max(v, 0), 255), NaN passed through (no NaN reaches here from an image) */
    v = v < 0.0 ? 0.0 : v;
    return v > 255.0 ? 255.0 : v;
}

/* quantize.to_uint8_values: floor(x + 0.5) clamped to 0..255, for elements [i0, i1) of equally laid-out buffers
   (out may be x: each value is read before it is written) */
void srb_round_u8(const double *x, double *out, long i0, long i1)
{
    for (long i = i0; i < i1; i++)
        out[i] = clamp_u8(floor(x[i] + 0.5));
}

/* quantize.unit_to_uint8_values: (x * 255), + 0.5, floor, clamp; each step rounded on its own, as in torch */
void srb_unit_round_u8(const double *x, double *out, long i0, long i1)
{
    for (long i = i0; i < i1; i++) {
        const double y = x[i] * 255.0;
        out[i] = clamp_u8(floor(y + 0.5));
    }
}

/* Rows [r0, r1) of one (h, w) image whose planes r, g, b are x + c * sc (strides sh, sw). unit != 0: the values
   are first rounded as unit_round_u8 rounds them and written to q (plane stride qc, strides qh, qw). Then, for
   each output given (not NULL), its luma of the (rounded) values:
   ylin (strides lh, lw): color.rgb2y_linear, r l0 then two add_(alpha=l), which torch computes as fused
   multiply-adds; yu8 (strides uh, uw): color.rgb2y_matlab_uint8, r t0, + g t1, + b t2, + 16, + 0.5, floor,
   clamp, every product and sum rounded alone as the in-place torch ops round them. */
void srb_planes(const double *restrict x, long sc, long sh, long sw, long w, int unit,
                double *restrict q, long qc, long qh, long qw,
                double *restrict ylin, long lh, long lw, const double *restrict l,
                double *restrict yu8, long uh, long uw, const double *restrict t, long r0, long r1)
{
    for (long i = r0; i < r1; i++) {
        for (long j = 0; j < w; j++) {
            const double *p = x + i * sh + j * sw;
            double r = p[0], g = p[sc], b = p[2 * sc];
            if (unit) {
                r = clamp_u8(floor(r * 255.0 + 0.5));
                g = clamp_u8(floor(g * 255.0 + 0.5));
                b = clamp_u8(floor(b * 255.0 + 0.5));
                double *o = q + i * qh + j * qw;
                o[0] = r;
                o[qc] = g;
                o[2 * qc] = b;
            }
            if (ylin) {
                double y = r * l[0];
                y = fma(g, l[1], y);
                ylin[i * lh + j * lw] = fma(b, l[2], y);
            }
            if (yu8) {
                double y = r * t[0];
                y = y + g * t[1];
                y = y + b * t[2];
                y = y + 16.0;
                y = y + 0.5;
                yu8[i * uh + j * uw] = clamp_u8(floor(y));
            }
        }
    }
}
