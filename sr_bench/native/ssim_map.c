/* The 'valid' SSIM map of two float64 planes, row by row: the same float64 operations, in the same order, as the
   torch path of sr_bench/metrics/ssim.py (products rounded, then for each of the 5 statistics a multiply by the
   first Gaussian tap and ten fused multiply-adds down the columns, ten more along the rows, then the SSIM ratio).
   torch's add_(x, alpha=t) is a fused multiply-add on every element, so fma() here gives the same bits; nothing
   else may be contracted (-ffp-contract=off) or reassociated (no -ffast-math). Fused, it keeps a row's statistics
   in cache instead of streaming five image-sized maps through memory twenty-two times. */
#include <math.h>

#define WIN 11

/* Rows [r0, r0 + n) of the map of x and y (h x w, rows contiguous, xs and ys values apart) into out (n rows of
   w - 10 values). work: 5 * w doubles of scratch. Returns 0, or -1 for rows outside the image. */
int srb_ssim_rows(const double *restrict x, long xs, const double *restrict y, long ys, long h, long w, long r0,
                  long n, const double *restrict taps, double c1, double c2, double *restrict out,
                  double *restrict work)
{
    const long ow = w - WIN + 1;
    double *restrict mx = work, *restrict my = work + w, *restrict mxx = work + 2 * w;
    double *restrict myy = work + 3 * w, *restrict mxy = work + 4 * w;
    if (r0 < 0 || n < 0 || w < WIN || r0 + n + WIN - 1 > h)
        return -1;
    for (long r = r0; r < r0 + n; r++) {
        const double *xr = x + r * xs, *yr = y + r * ys;
        for (long j = 0; j < w; j++) {
            const double a = xr[j], b = yr[j];
            mx[j] = a * taps[0];
            my[j] = b * taps[0];
            mxx[j] = (a * a) * taps[0];
            myy[j] = (b * b) * taps[0];
            mxy[j] = (a * b) * taps[0];
        }
        for (int k = 1; k < WIN; k++) {
            const double *xk = x + (r + k) * xs, *yk = y + (r + k) * ys;
            const double t = taps[k];
            for (long j = 0; j < w; j++) {
                const double a = xk[j], b = yk[j];
                const double aa = a * a, bb = b * b, ab = a * b;
                mx[j] = fma(a, t, mx[j]);
                my[j] = fma(b, t, my[j]);
                mxx[j] = fma(aa, t, mxx[j]);
                myy[j] = fma(bb, t, myy[j]);
                mxy[j] = fma(ab, t, mxy[j]);
            }
        }
        double *restrict o = out + (r - r0) * ow;
        for (long j = 0; j < ow; j++) {
            double mu1 = mx[j] * taps[0], mu2 = my[j] * taps[0];
            double xx = mxx[j] * taps[0], yy = myy[j] * taps[0], xy = mxy[j] * taps[0];
            for (int k = 1; k < WIN; k++) {
                const double t = taps[k];
                mu1 = fma(mx[j + k], t, mu1);
                mu2 = fma(my[j + k], t, mu2);
                xx = fma(mxx[j + k], t, xx);
                yy = fma(myy[j + k], t, yy);
                xy = fma(mxy[j + k], t, xy);
            }
            const double mu12 = mu1 * mu2, s1 = mu1 * mu1, s2 = mu2 * mu2;
            const double num = (2.0 * mu12 + c1) * ((xy - mu12) * 2.0 + c2);
            const double den = ((s1 + s2) + c1) * (((xx - s1) + (yy - s2)) + c2);
            o[j] = num / den;
        }
    }
    return 0;
}
