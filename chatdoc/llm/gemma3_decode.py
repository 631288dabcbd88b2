"""Our own generation loop for Gemma 3 text models on the CPU fast path (``model.decode_loop: auto``).

Why not ``model.generate``: at one token per step on a 2-core CPU, transformers' per-token Python work
(mask building, cache bookkeeping, rotary tables, ~1,000 modules and small ops per token through peft's
wrappers) cost about as much as the matrix products themselves. llama.cpp avoids that in C; using it would mean a
second model format and no peft adapters. This loop runs the same weights with a few fused steps per layer:

* q/k/v and gate/up are one product each (weights concatenated once at load). One-token steps run them with
  :mod:`chatdoc.llm.nf4_kernel` on the nf4 codes where it is available (a quarter of fp16's bytes), else with
  fbgemm fp16 like the prompt (prefill) always does; o/down's fp16 packs are :mod:`chatdoc.llm.cpu_decode`'s.
  The LM head is the model's own (int8 + exact top-k) head.
* q and k heads are normalized in one RMSNorm with the attention scale folded into the q weights; rotary
  embeddings come from tables built once; K/V live in preallocated per-layer buffers; a decode step's
  attention is two small matrix products.
* LoRA adapters stay peft's: for the adapter a generation asks for, each layer's A/B matrices are read from
  the peft modules and applied as two extra products per fused projection (concatenated A, block-diagonal
  B with the scaling folded in), so switching adapters costs nothing and no weights are merged.

Anything it does not cover (another architecture, DoRA or other LoRA variants, LoRA on embeddings or the head,
``modules_to_save``) returns None from :func:`build` / :meth:`Gemma3Decoder.lora_for`, and the backend uses
``model.generate``. Outputs match the transformers path to float rounding (tested token by token).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from loguru import logger

from chatdoc.llm import cpu_decode

_ATTN = ("q_proj", "k_proj", "v_proj")
_MLP = ("gate_proj", "up_proj")
_ALL = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
_GROUPS = (("qkv", _ATTN), ("o", ("o_proj",)), ("gate_up", _MLP), ("down", ("down_proj",)))  # one product each


def _projections(attn, mlp) -> dict:
    """A decoder layer's 7 projection modules by name (peft's LoRA wrappers, where an adapter is loaded)."""
    return {n: getattr(attn if n in (*_ATTN, "o_proj") else mlp, n) for n in _ALL}


@dataclass
class _Layer:
    sliding: bool
    qkv: object  # fbgemm packed fp16 weights (prefill; decode steps too without the nf4 kernel)
    o: object
    gate_up: object
    down: object
    nf4: dict | None  # "qkv"/"o"/"gate_up"/"down" -> nf4_kernel.NF4Matrix for one-token steps
    in_w: torch.Tensor  # RMSNorm scales (Gemma's 1 + w), fp32
    attn_w: torch.Tensor
    pre_w: torch.Tensor
    post_w: torch.Tensor
    qk_w: torch.Tensor  # [n_heads + n_kv, head_dim]: q_norm * attention scale, then k_norm
    modules: dict = field(default_factory=dict)  # projection name -> module path parent (for LoRA lookup)


def _lin(x: torch.Tensor, packed, lora, nf4=None) -> torch.Tensor:
    y = nf4.matvec(x) if nf4 is not None and x.shape[0] == 1 else torch.ops.quantized.linear_dynamic_fp16(x, packed)
    if lora is not None:
        a_t, b_t = lora
        y = torch.addmm(y, x @ a_t, b_t)
    return y


def _normed(x: torch.Tensor, eps: float) -> torch.Tensor:
    # hand-written: F.rms_norm is not one fused kernel on CPU either (the same ops), and measured no faster
    return x * torch.rsqrt(x.square().mean(-1, keepdim=True).add_(eps))


def _rms(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    return _normed(x, eps) * w


def build(model, max_ctx: int, nf4_kernel_cache=None) -> Gemma3Decoder | None:
    """A decoder for a CPU fast-path Gemma 3 text model, or None (the caller keeps ``model.generate``)."""
    cfg = getattr(model, "config", None)
    why = None
    if getattr(cfg, "model_type", None) != "gemma3_text":
        why = f"model type {getattr(cfg, 'model_type', None)!r}"
    elif cfg.attn_logit_softcapping is not None or cfg.final_logit_softcapping is not None:
        why = "logit soft-capping"
    elif getattr(cfg, "use_bidirectional_attention", False):
        why = "bidirectional attention"
    elif any((cfg.rope_parameters.get(t) or {}).get("rope_type", "default") != "default" for t in set(cfg.layer_types)):
        why = "scaled rotary embeddings"
    if why:
        logger.info("own decode loop not used: {}", why)
        return None
    try:
        return Gemma3Decoder(model, max_ctx, nf4_kernel_cache)
    except Exception as e:  # noqa: BLE001 - never take the backend down: model.generate still works
        logger.warning("own decode loop not used: {!r}", e)
        return None


class Gemma3Decoder:
    def __init__(self, model, max_ctx: int, nf4_kernel_cache=None):
        """``nf4_kernel_cache``: where the nf4 kernel is compiled (None: one-token steps use fbgemm fp16)."""
        cfg = model.config
        self.nf4_cache = nf4_kernel_cache
        self.model = model
        self.eps = float(cfg.rms_norm_eps)
        self.n_heads, self.n_kv, self.head_dim = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        if self.n_kv != 1:  # the attention below shares one K/V head across all q heads (Gemma 3 270M/1B)
            raise ValueError(f"{self.n_kv} key/value heads")
        self.window = int(cfg.sliding_window)
        self.embed = model.get_input_embeddings()
        self.head = model.get_output_embeddings()
        self.final_norm = model.model.norm
        self.layers = [self._layer(i, layer) for i, layer in enumerate(model.model.layers)]
        self._rope_tables(max_ctx)
        self._kv = None
        self._lora: dict[str, list | None] = {}
        self.nf4_layers = sum(L.nf4 is not None for L in self.layers)
        self.extra_bytes = sum(m.nbytes for L in self.layers if L.nf4 for m in L.nf4.values()) + sum(
            4 * (p.numel()) for L in self.layers for p in (L.in_w, L.attn_w, L.pre_w, L.post_w, L.qk_w)
        ) + 2 * sum(n * cfg.hidden_size for n in (
            (self.n_heads + 2 * self.n_kv) * self.head_dim, 2 * cfg.intermediate_size)) * len(self.layers)

    # ------------------------------------------------------------------ weights
    def _layer(self, i: int, layer) -> _Layer:
        attn, mlp = layer.self_attn, layer.mlp
        mods = {n: getattr(m, "base_layer", m) for n, m in _projections(attn, mlp).items()}  # under LoRA, if any
        for n in ("o_proj", "down_proj"):
            if not hasattr(mods[n].forward, "packed"):
                raise ValueError(f"layer {i} {n} has no fast-path weights")

        deq = {n: cpu_decode.dequantized(mods[n]).float() for n in _ALL}  # once, for the fp16 packs and nf4

        def pack(names):
            return torch.ops.quantized.linear_prepack_fp16(torch.cat([deq[n] for n in names]).contiguous(), None)

        def scale(norm):
            return (1.0 + norm.weight.detach().float()).contiguous()

        if any(getattr(mods[n], "bias", None) is not None for n in _ALL):
            raise ValueError("projection biases")
        nf4 = self._nf4(mods, deq)
        q_scale = scale(attn.q_norm) * float(attn.scaling)  # query_pre_attn_scalar ** -0.5
        qk_w = torch.cat([q_scale.expand(self.n_heads, -1), scale(attn.k_norm).expand(self.n_kv, -1)]).contiguous()
        return _Layer(
            sliding=getattr(attn, "is_sliding", False),
            qkv=pack(_ATTN), o=mods["o_proj"].forward.packed,
            gate_up=pack(_MLP), down=mods["down_proj"].forward.packed,
            in_w=scale(layer.input_layernorm), attn_w=scale(layer.post_attention_layernorm),
            pre_w=scale(layer.pre_feedforward_layernorm), post_w=scale(layer.post_feedforward_layernorm),
            qk_w=qk_w, nf4=nf4, modules={"attn": attn, "mlp": mlp},
        )

    def _nf4(self, mods: dict, deq: dict) -> dict | None:
        """nf4 kernel matrices for the layer's projections, or None (bnb nf4 weights and the kernel needed)."""
        from chatdoc.llm import nf4_kernel

        if self.nf4_cache is None:
            return None
        qs = [getattr(mods[n].weight, "quant_state", None) for n in _ALL]
        if any(q is None or getattr(q, "quant_type", None) != "nf4" or q.blocksize != nf4_kernel.BLOCK for q in qs):
            return None
        if nf4_kernel.library(self.nf4_cache) is None:
            return None
        lut = qs[0].code
        try:
            return {
                key: nf4_kernel.NF4Matrix(torch.cat([deq[n] for n in names]), lut, self.nf4_cache)
                for key, names in _GROUPS
            }
        except ValueError as e:
            logger.info("nf4 kernel not used for a layer: {}", e)
            return None

    def _rope_tables(self, n: int) -> None:
        """cos and sign-folded sin per layer type: rope(x) = x*cos + roll(x, d/2)*sin_signed."""
        rotary = self.model.model.rotary_emb
        pos = torch.arange(n, dtype=torch.float32)
        self.rope = {}
        half = self.head_dim // 2
        for kind in {"sliding" if L.sliding else "full" for L in self.layers}:
            layer_type = "sliding_attention" if kind == "sliding" else "full_attention"
            inv = getattr(rotary, f"{layer_type}_inv_freq").float()
            att = float(getattr(rotary, f"{layer_type}_attention_scaling"))
            freqs = pos[:, None] * inv[None, :]
            emb = torch.cat((freqs, freqs), dim=-1)
            cos, sin = emb.cos() * att, emb.sin() * att
            sin[:, :half] = -sin[:, :half]  # rotate_half(x) = cat(-x2, x1) = roll(x, half) * [-1.., +1..]
            self.rope[kind] = (cos.contiguous(), sin.contiguous())
        self.max_ctx = n

    def _cache(self, n: int):
        if self._kv is None or self._kv[0][0].shape[0] < n:
            size = max(n, self.max_ctx)
            if size > self.max_ctx:
                self._rope_tables(size)
            self._kv = [(torch.empty(size, self.head_dim), torch.empty(size, self.head_dim)) for _ in self.layers]
        return self._kv

    # ------------------------------------------------------------------ adapters
    def forget(self, name: str) -> None:
        self._lora.pop(name, None)

    def lora_for(self, peft_model, name: str | None):
        """Per-layer LoRA products for adapter ``name`` ([] for the base model), or None if not covered."""
        if name is None:
            return []
        if name not in self._lora:
            self._lora[name] = self._read_lora(peft_model, name)
        return self._lora[name]

    def _read_lora(self, peft_model, name: str):
        pc = getattr(peft_model, "peft_config", {}).get(name)
        if pc is None or getattr(pc, "modules_to_save", None) or getattr(pc, "trainable_token_indices", None):
            return None
        covered = set()
        out = []
        for L in self.layers:
            mods = _projections(L.modules["attn"], L.modules["mlp"])
            parts = {}
            for n, m in mods.items():
                if name not in getattr(m, "lora_A", {}):
                    continue
                if name in getattr(m, "lora_variant", {}) or m.lora_B[name].bias is not None or m.merged:
                    return None
                covered.add(id(m))
                a = m.lora_A[name].weight.detach().float()
                b = m.lora_B[name].weight.detach().float() * float(m.scaling[name])
                parts[n] = (a, b)
            out.append({key: _fuse(parts, names, [self._out(mods[n]) for n in names]) for key, names in _GROUPS})
        for mod_name, m in peft_model.named_modules():  # LoRA anywhere else (embeddings, head): not ours
            if name in getattr(m, "lora_A", {}) and id(m) not in covered:
                logger.info("own decode loop not used for adapter {}: LoRA on {}", name, mod_name)
                return None
            if name in getattr(m, "lora_embedding_A", {}):
                return None
        return out

    @staticmethod
    def _out(m) -> int:
        return getattr(m, "out_features", None) or m.base_layer.out_features

    # ------------------------------------------------------------------ forward
    @torch.inference_mode()
    def forward(self, ids: torch.Tensor, start: int, lora: list) -> torch.Tensor:
        """Logits of the last of ``ids`` (1-D) at positions start.. given the cache below start."""
        t = ids.shape[0]
        end = start + t
        kv = self._cache(end)
        h = self.embed(ids)  # [t, hidden], scaled by Gemma's embedding normalizer
        nq, d, eps = self.n_heads, self.head_dim, self.eps
        for i, L in enumerate(self.layers):
            lo = lora[i] if lora else {}
            k4 = L.nf4 or {}
            cos, sin = self.rope["sliding" if L.sliding else "full"]
            x = _rms(h, L.in_w, eps)
            qkv = _lin(x, L.qkv, lo.get("qkv"), k4.get("qkv"))
            qk = _rms(qkv[:, : (nq + 1) * d].view(t, nq + 1, d), L.qk_w, eps)
            qk = torch.addcmul(qk * cos[start:end, None], qk.roll(d // 2, -1), sin[start:end, None])
            kc, vc = kv[i]
            kc[start:end] = qk[:, nq]
            vc[start:end] = qkv[:, (nq + 1) * d :]
            lo_pos = max(0, end - self.window) if L.sliding else 0
            if t == 1:
                keys, vals = kc[lo_pos:end], vc[lo_pos:end]
                att = torch.softmax(qk[0, :nq] @ keys.T, dim=-1) @ vals  # [nq, d]; scale is in qk_w
            else:
                att = self._attend_many(qk[:, :nq], kc[:end], vc[:end], start, L.sliding)
            a = _lin(att.reshape(t, nq * d), L.o, lo.get("o"), k4.get("o"))
            h = torch.addcmul(h, _normed(a, eps), L.attn_w)  # residual + post-attention norm
            x = _rms(h, L.pre_w, eps)
            gu = _lin(x, L.gate_up, lo.get("gate_up"), k4.get("gate_up"))
            half = gu.shape[-1] // 2
            m = F.gelu(gu[:, :half], approximate="tanh") * gu[:, half:]
            dn = _lin(m, L.down, lo.get("down"), k4.get("down"))
            h = torch.addcmul(h, _normed(dn, eps), L.post_w)
        return self.head(self.final_norm(h[-1:]))[0]

    def _attend_many(self, q, keys, vals, start: int, sliding: bool) -> torch.Tensor:
        t, n = q.shape[0], keys.shape[0]
        qpos = torch.arange(start, start + t)[:, None]
        kpos = torch.arange(n)[None, :]
        mask = kpos <= qpos
        if sliding:
            mask &= (qpos - kpos) < self.window
        out = F.scaled_dot_product_attention(
            q.transpose(0, 1), keys.expand(q.shape[1], n, -1), vals.expand(q.shape[1], n, -1), attn_mask=mask, scale=1.0
        )
        return out.transpose(0, 1)  # [t, nq, d]

    # ------------------------------------------------------------------ generate
    @torch.inference_mode()
    def generate(self, input_ids, max_new_tokens, streamer=None, stopping_criteria=(), lora=(),
                 repetition_penalty=1.0, do_sample=False, temperature=None, top_p=None, top_k=None,
                 eos_token_id=None, **_ignored):
        """``model.generate`` for one sequence: same arguments, streamer and stopping-criteria protocol."""
        from transformers.generation import (
            LogitsProcessorList,
            RepetitionPenaltyLogitsProcessor,
            TemperatureLogitsWarper,
            TopPLogitsWarper,
        )

        prompt = input_ids[0]
        n0 = prompt.shape[0]
        seq = torch.empty(n0 + max_new_tokens, dtype=torch.long)
        seq[:n0] = prompt
        procs = LogitsProcessorList()  # on the whole vocabulary
        if repetition_penalty and repetition_penalty != 1.0:
            procs.append(RepetitionPenaltyLogitsProcessor(repetition_penalty))
        warpers = LogitsProcessorList()  # on the top-k candidates only (see _sample)
        if do_sample:
            if temperature and temperature != 1.0:
                warpers.append(TemperatureLogitsWarper(temperature))
            if top_p is not None and top_p < 1.0:
                warpers.append(TopPLogitsWarper(top_p))
        eos = eos_token_id if eos_token_id is not None else self.model.generation_config.eos_token_id
        eos = set(eos if isinstance(eos, (list, tuple)) else [] if eos is None else [eos])
        if streamer is not None:
            streamer.put(prompt[None])
        logits = self.forward(prompt, 0, lora)
        n = n0
        for step in range(max_new_tokens):
            scores = procs(seq[None, :n], logits[None].float())
            tok = _sample(scores, seq[None, :n], warpers, top_k) if do_sample else cpu_decode.argmax(scores[0])
            seq[n] = tok
            n += 1
            if streamer is not None:
                streamer.put(tok.reshape(1))
            stop = any([bool(c(seq[None, :n], scores)) for c in stopping_criteria])  # a list: each sees each token
            if stop or int(tok) in eos or step == max_new_tokens - 1:
                break
            logits = self.forward(seq[n - 1 : n], n - 1, lora)
        if streamer is not None:
            streamer.end()
        return seq[None, :n]


def candidates(scores: torch.Tensor, ids: torch.Tensor, warpers, top_k: int | None):
    """(token ids or None for all, probabilities) that transformers' sampling (temperature, top-k, top-p, in that
    order) would draw from, computed on the top-k only: softmax over the vocabulary with everything outside the
    top k at -inf is softmax over the k. Sorting and normalizing 50 values instead of 262,144 saves ~10 ms/token."""
    if top_k:
        idx = cpu_decode.topk_indices(scores, min(top_k, scores.shape[-1]))
        vals = torch.gather(scores, -1, idx)
    else:
        idx, vals = None, scores
    return idx, torch.softmax(warpers(ids, vals), dim=-1)


def _sample(scores: torch.Tensor, ids: torch.Tensor, warpers, top_k: int | None) -> torch.Tensor:
    idx, probs = candidates(scores, ids, warpers, top_k)
    choice = torch.multinomial(probs, 1)
    return (choice if idx is None else torch.gather(idx, -1, choice)).reshape(())


def _fuse(parts: dict, names: tuple, outs: list[int]):
    """(A^T, B^T) for several projections of the same input: A stacked, B block-diagonal; None if none."""
    if not any(n in parts for n in names):
        return None
    a_rows, b_blocks = [], []
    rank_total = sum(parts[n][0].shape[0] for n in names if n in parts)
    col = 0
    for n, out in zip(names, outs):
        block = torch.zeros(out, rank_total)
        if n in parts:
            a, b = parts[n]
            a_rows.append(a)
            block[:, col : col + a.shape[0]] = b
            col += a.shape[0]
        b_blocks.append(block)
    return torch.cat(a_rows).T.contiguous(), torch.cat(b_blocks).T.contiguous()
