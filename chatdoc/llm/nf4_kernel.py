"""A 4-bit (nf4) matrix x vector kernel for AVX2 CPUs, compiled with the system C compiler on first use.

Why our own: a decode step multiplies one activation vector by every weight, so its speed is mostly how many
bytes it reads, and on a shared machine memory bandwidth is what neighbours take first. The fbgemm path reads
fp16 weights (200 MB a token for Gemma 3 270M); nf4 codes are a quarter of that. No installed library does
nf4 x vector on this CPU: bitsandbytes' CPU kernel needs AVX512 (SIGILL here), torch's
``_weight_int4pack_mm_for_cpu`` is uniform int4 (not nf4) and measured slower than fbgemm fp16 here, and
fbgemm has no 4-bit path. A float lookup-table kernel (permute + blend per 8 weights) measured slower than
fbgemm too, so this one works in integers, as llama.cpp does:

* weights: the nf4 code of each weight (re-encoded from the dequantized values, checked to give them back
  exactly) and the block's absmax; the 16 nf4 levels become int16 (level * 8191, error <= 6e-5 of the block's
  absmax, below fp16's 4.9e-4 relative);
* the activation vector is quantized per 64-block to int16 the same way (not per tensor: Gemma's activations
  have outliers), products are summed with ``madd_epi16`` in int32 (at most 8 * 8191^2 per lane, no overflow)
  and scaled per block in fp32. Measured end-to-end error vs float64 is 1.5-3e-4 relative, like fp16's.

The source is compiled once per source hash into ``~/.cache/chatdoc/kernels`` (about a second) and called
with ctypes (which releases the GIL); rows are split over OpenMP threads, sharing torch's runtime. Anything
missing (no compiler, no AVX2, a weight that is not nf4 with 64-blocks) leaves the caller on fbgemm.
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import os
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

import torch
from loguru import logger

BLOCK = 64
QMAX = 8191  # int16 levels and activations: 8 products of two 13-bit values fit an int32 lane

_SOURCE = r"""#include <immintrin.h>
#include <stdint.h>
#include <math.h>

/* codes: per row, per 64-block 32 bytes: byte k = code[k] | code[k+32] << 4.
   lut16: 16 int16 levels (round(level * 8191)), as lo-byte table and hi-byte table (16 bytes each).
   wscale: per row per block, absmax / 8191.  y = W x. */
#define QMAX 8191.0f
void nf4_gemv16(const uint8_t *codes, const float *wscale, const uint8_t *lut_lo, const uint8_t *lut_hi,
                const float *x, float *y, int64_t n_out, int64_t n_in, int threads)
{
    const int64_t blocks = n_in / 64;
    int16_t xq[n_in] __attribute__((aligned(32)));
    float xs[blocks];
    static const int perm[32] = {0,1,2,3,4,5,6,7,16,17,18,19,20,21,22,23,8,9,10,11,12,13,14,15,24,25,26,27,28,29,30,31};
    for (int64_t b = 0; b < blocks; b++) {
        const float *xb = x + b * 64;
        float m = 0.f;
        for (int k = 0; k < 64; k++) { float a = fabsf(xb[k]); if (a > m) m = a; }
        float d = m / QMAX, inv = m > 0.f ? QMAX / m : 0.f;
        xs[b] = d;
        for (int h = 0; h < 2; h++)
            for (int k = 0; k < 32; k++)
                xq[b * 64 + h * 32 + k] = (int16_t)lrintf(xb[h * 32 + perm[k]] * inv);
    }
    const __m256i tlo = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)lut_lo));
    const __m256i thi = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)lut_hi));
    const __m256i m4 = _mm256_set1_epi8(15);
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t r = 0; r < n_out; r++) {
        const uint8_t *c = codes + r * blocks * 32;
        const float *s = wscale + r * blocks;
        __m256 acc = _mm256_setzero_ps();
        for (int64_t b = 0; b < blocks; b++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(c + b * 32));
            __m256i clo = _mm256_and_si256(v, m4), chi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            __m256i l0 = _mm256_shuffle_epi8(tlo, clo), h0 = _mm256_shuffle_epi8(thi, clo);
            __m256i l1 = _mm256_shuffle_epi8(tlo, chi), h1 = _mm256_shuffle_epi8(thi, chi);
            const __m256i *xv = (const __m256i *)(xq + b * 64);
            __m256i sum = _mm256_madd_epi16(_mm256_unpacklo_epi8(l0, h0), _mm256_load_si256(xv));
            sum = _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_unpackhi_epi8(l0, h0), _mm256_load_si256(xv + 1)));
            sum = _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_unpacklo_epi8(l1, h1), _mm256_load_si256(xv + 2)));
            sum = _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_unpackhi_epi8(l1, h1), _mm256_load_si256(xv + 3)));
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_set1_ps(s[b] * xs[b]), acc);
        }
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
        y[r] = _mm_cvtss_f32(h);
    }
}
"""


def _cpu_flags() -> set[str]:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


DEFAULT_CACHE = Path("~/.cache/chatdoc/kernels")


@lru_cache(maxsize=4)
def library(cache: Path = DEFAULT_CACHE):
    """The compiled kernel function (ctypes), or None with the reason logged. Once per process and cache."""
    if not {"avx2", "fma"} <= _cpu_flags():
        logger.info("nf4 kernel not used: this CPU lacks AVX2/FMA")
        return None
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if not cc:
        logger.info("nf4 kernel not used: no C compiler found")
        return None
    tag = hashlib.sha256((_SOURCE + cc).encode()).hexdigest()[:16]
    cache = Path(cache).expanduser()
    so = cache / f"nf4_gemv_{tag}.so"
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with open(cache / ".lock", "w") as lock:  # processes starting together compile once
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not so.exists():
                src = cache / f"nf4_gemv_{tag}.c"
                src.write_text(_SOURCE)
                tmp = cache / f"nf4_gemv_{tag}.{os.getpid()}.tmp"
                cmd = [cc, "-O3", "-mavx2", "-mfma", "-fopenmp", "-shared", "-fPIC", str(src), "-o", str(tmp)]
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
                if proc.returncode != 0:
                    logger.warning("nf4 kernel not used: compile failed: {}", proc.stderr.strip()[-400:])
                    return None
                tmp.replace(so)
        fn = ctypes.CDLL(str(so)).nf4_gemv16
    except (OSError, subprocess.SubprocessError) as e:
        logger.warning("nf4 kernel not used: {!r}", e)
        return None
    fn.argtypes = [ctypes.c_void_p] * 6 + [ctypes.c_int64, ctypes.c_int64, ctypes.c_int]
    fn.restype = None
    return fn


class NF4Matrix:
    """Stacked nf4 weight rows for the kernel; :meth:`matvec` is ``x @ W.T`` for one row of x."""

    def __init__(self, weight: torch.Tensor, lut: torch.Tensor, cache: Path = DEFAULT_CACHE):
        self._fn = library(cache)
        if self._fn is None:
            raise RuntimeError("nf4 kernel unavailable")
        w = weight.detach().float().contiguous()
        n_out, n_in = w.shape
        if n_in % BLOCK:
            raise ValueError(f"input size {n_in} is not a multiple of {BLOCK}")
        blocks = w.view(n_out, n_in // BLOCK, BLOCK)
        absmax = blocks.abs().amax(-1)  # the nf4 codebook spans [-1, 1]: a block's absmax is its scale
        lut = lut.float()
        order = torch.argsort(lut)  # nearest code: bucketize against the midpoints of the sorted levels
        mids = (lut[order][1:] + lut[order][:-1]) / 2
        codes = order[torch.bucketize(blocks / absmax.clamp_min(1e-30)[..., None], mids)].to(torch.uint8)
        if not torch.equal(lut[codes.long()] * absmax[..., None], blocks):
            raise ValueError("weights are not nf4 with 64-wide blocks")
        self.codes = (codes[..., :32] | (codes[..., 32:] << 4)).contiguous()  # byte k: codes k and k+32
        self.scales = (absmax / QMAX).contiguous()
        levels = torch.round(lut * QMAX).to(torch.int32)
        self.lut_lo = (levels & 0xFF).to(torch.uint8).contiguous()
        self.lut_hi = ((levels >> 8) & 0xFF).to(torch.uint8).contiguous()
        self.shape = (n_out, n_in)
        self.nbytes = self.codes.numel() + self.scales.numel() * 4
        self._args = (self.codes.data_ptr(), self.scales.data_ptr(), self.lut_lo.data_ptr(), self.lut_hi.data_ptr())

    def matvec(self, x: torch.Tensor) -> torch.Tensor:
        """[1, n_in] fp32 -> [1, n_out] fp32."""
        x = x.float().contiguous()
        y = torch.empty(1, self.shape[0])
        self._fn(*self._args, x.data_ptr(), y.data_ptr(), self.shape[0], self.shape[1], torch.get_num_threads())
        return y
