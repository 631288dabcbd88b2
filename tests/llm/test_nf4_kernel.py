"""The AVX2 nf4 matrix x vector kernel (llm/nf4_kernel.py), compiled for real with gcc into a temp cache."""

import pytest
import torch

from chatdoc.llm import nf4_kernel

NF4 = torch.tensor([-1.0, -0.6961928, -0.52507305, -0.3949175, -0.28444138, -0.18477343, -0.09105004, 0.0,
                    0.0795803, 0.1609302, 0.2461123, 0.33791524, 0.44070983, 0.562617, 0.72295684, 1.0])


def _nf4_weight(n_out, n_in, seed=0):
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, 16, (n_out, n_in), generator=g)
    codes[:, ::64] = torch.randint(0, 2, (n_out, n_in // 64), generator=g) * 15  # each block holds a +-1, as nf4 does
    absmax = torch.rand(n_out, n_in // 64, generator=g) * 0.1
    return (NF4[codes].view(n_out, -1, 64) * absmax[..., None]).view(n_out, n_in)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    d = tmp_path_factory.mktemp("kernels")
    if nf4_kernel.library(d) is None:
        pytest.skip("no AVX2/FMA or no C compiler on this machine")
    return d


@pytest.mark.parametrize("shape", [(1536, 640), (640, 2048), (7, 128)])
def test_matches_float64_like_fp16_does(cache, shape):
    w = _nf4_weight(*shape)
    m = nf4_kernel.NF4Matrix(w, NF4, cache)
    x = torch.randn(1, shape[1], generator=torch.Generator().manual_seed(1))
    x[0, 5] = 40.0  # an activation outlier, as Gemma has: per-64-block activation scales keep the rest precise
    ref = x.double() @ w.double().T
    err = ((m.matvec(x).double() - ref).abs().max() / ref.abs().max()).item()
    fp16 = ((x.double() @ w.half().double().T - ref).abs().max() / ref.abs().max()).item()
    assert err < 5e-4 and err < 3 * fp16 + 1e-5, (err, fp16)
    assert m.nbytes < w.numel() * 2 / 3  # reads a quarter of fp16's bytes, plus the scales


def test_zero_blocks_and_zero_input(cache):
    w = _nf4_weight(64, 128)
    w[:, :64] = 0.0
    m = nf4_kernel.NF4Matrix(w, NF4, cache)
    assert torch.equal(m.matvec(torch.zeros(1, 128)), torch.zeros(1, 64))
    x = torch.randn(1, 128)
    assert torch.allclose(m.matvec(x), x @ w.T, rtol=1e-3, atol=1e-4)


def test_weights_that_are_not_nf4_are_refused(cache):
    with pytest.raises(ValueError, match="not nf4"):
        nf4_kernel.NF4Matrix(torch.randn(8, 128), NF4, cache)
    with pytest.raises(ValueError, match="multiple of 64"):
        nf4_kernel.NF4Matrix(_nf4_weight(8, 128)[:, :96], NF4, cache)


def test_compiled_once_per_cache(cache):
    assert nf4_kernel.library(cache) is nf4_kernel.library(cache)
    assert len(list(cache.glob("nf4_gemv_*.so"))) == 1
