"""Independent NumPy model of the calibration semantics qcal implements
(those of NVIDIA's pytorch-quantization, as spelled out in issue 2),
written directly from the specification, one candidate at a time, with no
prefix sums. Used as a test oracle only."""
import numpy as np

F32 = np.float32


def histc_edges(xmax, nbins):
    """torch.linspace(0, xmax, nbins + 1) in float32, scalar formula."""
    xmax = F32(xmax)
    step = F32(xmax / F32(nbins))
    steps = nbins + 1
    half = steps // 2
    return np.array([F32(step * F32(k)) if k < half else F32(xmax - F32(step * F32(steps - k - 1)))
                     for k in range(steps)], dtype=F32)


def collect(x, nbins=2048, skip_zeros=False):
    """Histogram of |x| over [0, max|x|] with torch.histc binning."""
    a = np.abs(np.asarray(x, dtype=F32).ravel())
    xmax = a.max()
    edges = histc_edges(xmax, nbins)
    counts = np.zeros(nbins, dtype=np.int64)
    if xmax == 0:
        counts[0] = 0 if skip_zeros else a.size
        return counts, edges
    if skip_zeros:
        a = a[a != 0]
    v = (a * F32(nbins)) / xmax  # float32 arithmetic, as histc
    idx = np.where(v < F32(nbins), np.floor(v), nbins - 1).astype(np.int64)
    np.add.at(counts, idx, 1)
    return counts, edges


def amax_entropy(counts, edges, bits=8, unsigned=False, start_bin=128, stride=1):
    bins = counts.astype(np.float64).copy()
    bins[0] = bins[1]
    L = 1 << (bits - 1 + int(unsigned))
    n = len(bins)
    divs, args = [], []
    for i in range(start_bin, n + 1, stride):
        p = bins[:i].copy()
        p[-1] += bins[i:].sum()
        # numpy digitize over linspace(0, i, L+1), exactly as specified
        group = np.digitize(np.arange(i), np.linspace(0, i, num=L + 1)) - 1
        nonzero = bins[:i] != 0
        gsum = np.bincount(group, weights=bins[:i], minlength=L)
        gcnt = np.bincount(group, weights=nonzero.astype(np.float64), minlength=L)
        q = np.where(nonzero, gsum[group] / np.maximum(gcnt[group], 1), 0.0)
        if q.sum() == 0 or np.any((p > 0) & (q == 0)):
            divs.append(np.inf)
        else:
            pn, qn = p / p.sum(), q / q.sum()
            m = pn > 0
            divs.append(float(np.sum(pn[m] * np.log(pn[m] / qn[m]))))
        args.append(i)
    divs = np.array(divs)
    best = divs.min()
    tol = 1e-12 * abs(best) + 1e-15
    last = max(k for k in range(len(divs)) if divs[k] <= best + tol)
    return edges[args[last]], divs


def fake_quant(c, amax, bits, unsigned):
    qmax = F32(2.0 ** (bits - 1 + int(unsigned)) - 1)
    qmin = F32(0) if unsigned else -qmax
    s = F32(qmax / F32(amax))
    v = np.clip(c * s, qmin, qmax)
    return (np.rint(v) / s).astype(F32)


def amax_mse(counts, edges, bits=8, unsigned=False, start_bin=128, stride=1):
    centers = ((edges[1:] + edges[:-1]) / F32(2)).astype(F32)
    best, arg = np.inf, None
    for i in range(start_bin, len(centers), stride):
        e = (fake_quant(centers, centers[i], bits, unsigned) - centers).astype(np.float64)
        mse = float((counts * e * e).sum())
        if mse < best:
            best, arg = mse, i
    return centers[arg]


def amax_percentile(counts, edges, percentile=99.99):
    total = counts.sum()
    cdf = np.cumsum(counts / total)
    idx = np.searchsorted(cdf, percentile / 100)
    return edges[idx]
