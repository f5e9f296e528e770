/* Copies of strided float64 tensors into a new layout: only moves values, so any visiting order gives the same
   result. torch's copy reads a transposed source one element per cache line; here the two axes that are
   contiguous in the source and in the destination are walked in square tiles, so each line fetched is used whole. */

#define TILE 16

/* out[e * oe + d * od + b] = x[e * se + d * sd + b * sb] for e in [e0, e1), d in [d0, d1), b in [0, nb):
   the destination is contiguous along b, the source (ideally) along d. */
void srb_copy_tiled(const double *restrict x, long sd, long se, long sb, long nb, double *restrict out, long od,
                    long oe, long e0, long e1, long d0, long d1)
{
    for (long e = e0; e < e1; e++) {
        const double *restrict xe = x + e * se;
        double *restrict oute = out + e * oe;
        for (long dt = d0; dt < d1; dt += TILE) {
            const long dn = d1 - dt < TILE ? d1 - dt : TILE;
            for (long bt = 0; bt < nb; bt += TILE) {
                const long bn = nb - bt < TILE ? nb - bt : TILE;
                for (long d = dt; d < dt + dn; d++) {
                    const double *restrict src = xe + d * sd + bt * sb;
                    double *restrict dst = oute + d * od + bt;
                    for (long b = 0; b < bn; b++)
                        dst[b] = src[b * sb];
                }
            }
        }
    }
}
