#!/usr/bin/env python3
"""Record a modeldiff trace (format ``modeldiff-trace/1``) of one HF transformers forward pass.

The Java side of modeldiff records the same probes from its own, independently coded forward
pass; diffing the two traces probe by probe shows where (layer, sub-step) two implementations
first disagree.  This script is the *reference* side: it runs the model exactly as HF
transformers runs it (``attn_implementation="eager"``, no cache, batch 1, no attention mask)
and captures intermediate tensors with forward hooks, without changing the computation.

Trace file: a safetensors file, one 2-D tensor ``[tokens, width]`` per probe (batch removed,
heads flattened), F64 when the run computed in float64, else F32 (bf16/fp16 values are exact
in F32).  ``__metadata__`` holds format, producer, dtype, device, tokens, position_offset,
probes (in order) and, when bugs were planted, planted.

Probes (``--probes all``), in order::

    embed,
    for each layer i: layers.i.attn_norm, .q, .k, .v, .attn, .attn_out, .mlp_norm,
                      [MoE layers: .router_logits, .experts], .mlp_act (dense MLPs only), .mlp_out, layers.i
    final_norm, logits

MoE families load with ``experts_implementation="eager"`` (``--experts default`` for HF's own choice, a grouped
GEMM): the per-expert loop is the only one with a float64 path.  ``router_logits`` is the router module's first
output, ``experts`` its chosen ids (third output, or the experts module's ``top_k_index`` argument).

MLA (deepseek_v3): q, k and v are what DeepseekV3Attention hands to eager_attention_forward: q and k per head
cat(nope, rope) after RoPE, [tokens, heads * qk_head_dim], with the rope part in the halves layout that
apply_rotary_pos_emb_interleave leaves when rope_interleave is set and k's rope part the same in every head; v is
[tokens, heads * v_head_dim], as is attn (o_proj's input).

``--probes layers`` keeps embed, layers.i, final_norm, logits.  A probe that cannot be
captured for a family is left out of the file and of ``probes`` (and the reason is printed):
it is never synthesised.

``--plant BUG_ID`` deliberately reproduces a known class of implementation bug on top of the
HF model (same weights), so that the Java diff tool can be tested on a divergence whose ground
truth is known.  See PLANTS below.

Example::

    python3 hf_trace.py --model fixtures/llama/model --dtype float64 --device cpu \\
        --tokens 1,5,9 --position-offset 0 --probes all --out /tmp/t.safetensors
"""

import argparse
import contextlib
import json
import math
import os
import sys
import traceback

import torch
import torch.nn.functional as F

import dense_plants

FORMAT = "modeldiff-trace/1"

DTYPES = {
    "float64": torch.float64,
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}

# Per-layer sub-probes in trace order; "layers.i" itself follows them.
SUB_PROBES = ["attn_norm", "q", "k", "v", "attn", "attn_out", "mlp_norm", "mlp_act", "mlp_out"]

# Decoder layers a plant acts in (--plant-layers A-B); None: everywhere.  Honoured by norm.cast_before_weight,
# rope.inv_freq_lowp and rope.bf16_angles (the two RoPE plants then replace the cos/sin those layers receive).
PLANT_LAYERS = None
LAYERED_PLANTS = ("norm.cast_before_weight", "rope.inv_freq_lowp", "rope.bf16_angles")

# Planted bugs: id -> one-line description.  Parametric ids use "name=value".
PLANTS = {
    "perturb.layerN": "layer N's mlp down-projection weight multiplied by 1.02 (e.g. perturb.layer1)",
    "act.gelu_exact": "MLP activation replaced by exact erf GELU (instead of the tanh approximation)",
    "norm.cast_before_weight": "Gemma (1+w) RMSNorm computes x_hat.to(dtype) * (1 + w) in the model dtype "
    "(Llama style) instead of (x_hat * (1 + w.float())).to(dtype)",
    "embed.scale_fp32": "embedding normaliser sqrt(hidden) applied in fp32 then cast, instead of being "
    "rounded to the model dtype first",
    "rope.bf16_angles": "RoPE positions and inv_freq rounded to bf16 before computing the angles",
    "attn.no_softcap": "attention logit soft-capping dropped",
    "window=N": "sliding window N instead of the config's value (config override at load)",
    "rope.theta=X": "RoPE base X instead of the config's base (inv_freq recomputed)",
    "norm.eps=X": "every norm's epsilon set to X instead of the config's value",
    "rope.scaling_ignored": "the config's rope scaling dropped (plain RoPE with the same base)",
    "rope.partial=F": "rotary fraction F instead of the config's",
    "rope.inv_freq_lowp": "model loaded in float32 then cast with .to(dtype), which rounds the inv_freq buffer",
    "norm.no_unit_offset": "a (1+w) RMSNorm computed as w*x_hat (Gemma-style cast kept)",
    "norm.unit_offset": "a w*x_hat RMSNorm computed as (1+w)*x_hat (Llama-style cast kept)",
    "embed.scale_none": "the sqrt(hidden) embedding normaliser not applied",
    "logits.no_softcap": "final logit soft-capping dropped",
    "attn.scalar=S": "attention scores scaled by 1/sqrt(S) (query_pre_attn_scalar)",
    "attn.scale=S": "old name of attn.scalar=S (the fixtures planted before the rename carry it)",
    "mlp.swap_gate_up": "fused gate_up_proj halves swapped (act applied to the up half)",
    "qk.interleaved": "RoPE applied to interleaved pairs (GPT-J / Meta layout) instead of rotate_half",
    "softmax.lowp": "attention softmax computed step by step in the activation dtype",
    "moe.renormalize=true": "MoE routing weights renormalised over the top-k (whatever norm_topk_prob says)",
    "moe.renormalize=false": "MoE routing weights left as softmax-over-all probabilities (no top-k renormalisation)",
    "moe.routed_scaling=V": "MoE routing weights multiplied by V (routed_scaling_factor applied with the wrong value)",
    "moe.softmax_before_topk": "top-k->softmax router (gpt-oss) computed as softmax over all experts, then top-k",
    "attn.no_sinks": "attention sinks not applied (each sink logit set to -inf)",
    "qk_norm.off": "every attention's q_norm / k_norm (Llama 4: its weightless qk_norm) replaced by the identity",
    "mlp.no_clamp": "gpt-oss clamped SwiGLU computed without its clamp (limit = inf)",
    "moe.bias_in_weights": "DeepSeek/GLM expert weights taken from the bias-corrected selection scores",
    "rope.yarn_truncate=B": "YaRN correction range truncated (B=true) or not (false) against the config",
    "attn.no_yarn_mscale": "YaRN's mscale dropped: cos/sin attention_scaling 1, and MLA's softmax scale without mscale**2",
    "attn.no_chunking": "Llama 4's chunked_attention layers given the full causal mask (attention_type = full_attention)",
    "attn.no_temperature_tuning": "Llama 4's attention temperature tuning off (attn_temperature_tuning = False per layer)",
}
PLANTS.update(dense_plants.PLANTS)

# MoE probes, recorded after mlp_norm in layers that route: the router's logits [tokens, experts] and the chosen
# expert ids [tokens, k] (as float values of integer ids, in HF's top-k order).
MOE_PROBES = ["router_logits", "experts"]


def log(*a):
    print(*a, flush=True)


def parse_tokens(s):
    return [int(x) for x in s.split(",") if x.strip()]


def producer_string():
    import transformers

    return "hf-transformers %s torch %s" % (transformers.__version__, torch.__version__)


def _first_module(obj, names):
    """First attribute among `names` that is an nn.Module (families name their parts differently)."""
    if obj is None:
        return None
    for n in names:
        m = getattr(obj, n, None)
        if isinstance(m, torch.nn.Module):
            return m
    return None


def find_parts(model):
    """Locate decoder layers, final norm, embedding and the per-layer submodules we hook."""
    base = getattr(model, "model", None)
    if base is not None and hasattr(base, "layers"):
        layers, final_norm, embed = base.layers, base.norm, base.embed_tokens
    elif hasattr(model, "transformer") and hasattr(model.transformer, "h"):  # gpt2
        layers, final_norm, embed = model.transformer.h, model.transformer.ln_f, model.transformer.wte
    elif hasattr(model, "gpt_neox"):  # gpt_neox / pythia
        g = model.gpt_neox
        layers, final_norm, embed = g.layers, g.final_layer_norm, g.embed_in
    else:
        raise RuntimeError("unsupported model layout: %s" % type(model).__name__)
    per_layer = []
    for layer in layers:
        attn = _first_module(layer, ["self_attn", "attn", "self_attention", "attention"])
        mlp = _first_module(layer, ["mlp", "feed_forward", "block_sparse_moe"])
        per_layer.append(
            dict(
                layer=layer,
                attn=attn,
                mlp=mlp,
                # gpt2: attn.c_proj / mlp.c_proj are the output / down projections (Conv1D).
                o_proj=_first_module(attn, ["o_proj", "c_proj", "dense", "out_proj"]),
                down=_first_module(mlp, ["down_proj", "c_proj", "fc2", "dense_4h_to_h"]),
                v_proj=_first_module(attn, ["v_proj"]),
                router=find_router(mlp),
            )
        )
    return dict(layers=layers, final_norm=final_norm, embed=embed, per_layer=per_layer)


def find_router(mlp):
    """The router of a MoE block (v5: a TopKRouter module with a [experts, hidden] weight, next to `experts`)."""
    if mlp is None or _first_module(mlp, ["experts"]) is None:
        return None
    r = _first_module(mlp, ["gate", "router"])
    w = getattr(r, "weight", None)
    return r if isinstance(w, torch.Tensor) and w.dim() == 2 else None


def router_logits_of(router, h):
    """The router's logits for the hidden states it was given: the same F.linear the router computes first
    (recomputed from its input and weight, because v5 routers return probabilities, not logits)."""
    w = router.weight
    b = getattr(router, "bias", None)
    return F.linear(h.reshape(-1, w.shape[-1]), w, b if isinstance(b, torch.Tensor) else None)


def _hidden_arg(args, kwargs, names=("hidden_states", "x", "input")):
    if args:
        return args[0]
    for n in names:
        if n in kwargs:
            return kwargs[n]
    return None


def _out0(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def to2d(t):
    """[1,H,T,d] -> [T,H*d]; [1,T,W] -> [T,W]."""
    t = t.detach()
    if t.dim() == 4:
        b, h, n, d = t.shape
        if b != 1:
            raise ValueError("batch must be 1, got shape %s" % (tuple(t.shape),))
        return t[0].transpose(0, 1).reshape(n, h * d)
    if t.dim() == 3:
        if t.shape[0] != 1:
            raise ValueError("batch must be 1, got shape %s" % (tuple(t.shape),))
        return t[0]
    if t.dim() == 2:
        return t
    raise ValueError("unexpected probe rank %d" % t.dim())


def mask_summary(mask):
    """Describe what an attention mask lets each query see: 'full' causal, {'window': W} (W most
    recent keys including the query itself), or something unexpected.  Used to report how HF
    interprets sliding_window, not for the trace itself."""
    if mask is None:
        return "none"
    m = mask.detach()
    while m.dim() > 2:
        m = m[0]
    if m.dtype == torch.bool:
        allowed = m
    else:
        allowed = m > (torch.finfo(m.dtype).min / 2)
    allowed = allowed.cpu()
    widths = []
    for q in range(allowed.shape[0]):
        ks = allowed[q].nonzero().flatten().tolist()
        if not ks:
            return "row %d sees nothing" % q
        if max(ks) > q:
            return "non-causal (row %d sees key %d)" % (q, max(ks))
        if ks != list(range(min(ks), q + 1)):
            return "non-contiguous row %d: %s" % (q, ks)
        widths.append(q - min(ks) + 1)
    if all(w == q + 1 for q, w in enumerate(widths)):
        return "full"
    return {"window": max(widths)}


class Recorder:
    """Installs hooks + module-level wrappers and collects probe tensors for one forward."""

    def __init__(self, model, probes):
        self.model = model
        self.mode = probes
        self.parts = find_parts(model)
        self.rec = {}
        self.extra = {}  # fallback captures (rope outputs, v_proj outputs)
        self.masks = {}
        self.current = None  # index of the attention layer currently running
        self.handles = []
        self.patched = []  # (module_obj, attr, original)
        self.attn_index = {}
        self.notes = []

    def _put(self, name, t):
        if name in self.rec:
            self.notes.append("probe %s recorded twice; keeping the first" % name)
            return
        self.rec[name] = t.detach().clone()

    def install(self):
        P = self.parts
        full = self.mode == "all"

        def embed_pre(mod, args, kwargs):
            h = _hidden_arg(args, kwargs)
            if h is not None:
                self._put("embed", h)

        self.handles.append(P["layers"][0].register_forward_pre_hook(embed_pre, with_kwargs=True))

        for i, pl in enumerate(P["per_layer"]):
            def layer_out(mod, args, out, i=i):
                self._put("layers.%d" % i, _out0(out))

            self.handles.append(pl["layer"].register_forward_hook(layer_out))
            if pl["attn"] is not None:
                self.attn_index[id(pl["attn"])] = i

                def attn_pre(mod, args, kwargs, i=i):
                    self.current = i
                    if full:
                        h = _hidden_arg(args, kwargs)
                        if h is not None:
                            self._put("layers.%d.attn_norm" % i, h)

                def attn_post(mod, args, out, i=i):
                    self.current = None
                    if full:
                        self._put("layers.%d.attn_out" % i, _out0(out))

                self.handles.append(pl["attn"].register_forward_pre_hook(attn_pre, with_kwargs=True))
                self.handles.append(pl["attn"].register_forward_hook(attn_post))
            if not full:
                continue
            if pl["o_proj"] is not None:
                self.handles.append(
                    pl["o_proj"].register_forward_pre_hook(
                        lambda mod, args, i=i: self._put("layers.%d.attn" % i, args[0])
                    )
                )
            if pl["v_proj"] is not None:
                self.handles.append(
                    pl["v_proj"].register_forward_hook(
                        lambda mod, args, out, i=i: self.extra.setdefault("v_proj.%d" % i, out.detach().clone())
                    )
                )
            if pl["mlp"] is not None:
                def mlp_pre(mod, args, kwargs, i=i):
                    h = _hidden_arg(args, kwargs)
                    if h is not None:
                        self._put("layers.%d.mlp_norm" % i, h)

                self.handles.append(pl["mlp"].register_forward_pre_hook(mlp_pre, with_kwargs=True))
                self.handles.append(
                    pl["mlp"].register_forward_hook(
                        lambda mod, args, out, i=i: self._put("layers.%d.mlp_out" % i, _out0(out))
                    )
                )
            if pl.get("router") is not None:
                def router_post(mod, args, kwargs, out, i=i):
                    h = _hidden_arg(args, kwargs)
                    first = out[0] if isinstance(out, (tuple, list)) else out
                    w = mod.weight
                    if type(mod).__name__ == "Llama4Router":
                        # Llama4Router returns (sigmoid scores scattered over -inf, logits); the chosen ids are the
                        # same torch.topk of the logits it took (its experts see only the scaled input, no ids)
                        logits = out[1].reshape(-1, out[1].shape[-1])
                        self._put("layers.%d.router_logits" % i, logits)
                        self._put("layers.%d.experts" % i, torch.topk(logits, mod.top_k, dim=1)[1].to(torch.float64))
                    elif isinstance(first, torch.Tensor) and first.is_floating_point() and first.shape[-1] == w.shape[0]:
                        # transformers 5.17 routers return their logits first, in the dtype they computed them in
                        # (DeepSeek / GLM: float32 even in a bf16 run)
                        self._put("layers.%d.router_logits" % i, first.reshape(-1, first.shape[-1]))
                    elif h is not None:
                        self._put("layers.%d.router_logits" % i, router_logits_of(mod, h))
                    if isinstance(out, (tuple, list)) and len(out) >= 3 and not out[2].is_floating_point():
                        self._put("layers.%d.experts" % i, out[2].to(torch.float64))

                def experts_pre(mod, args, kwargs, i=i):
                    # the chosen ids as the experts receive them, where the router does not return them
                    idx = args[1] if len(args) > 1 else kwargs.get("top_k_index")
                    if idx is not None and "layers.%d.experts" % i not in self.rec:
                        self._put("layers.%d.experts" % i, idx.to(torch.float64))

                self.handles.append(pl["router"].register_forward_hook(router_post, with_kwargs=True))
                ex = _first_module(pl["mlp"], ["experts"])
                if ex is not None:
                    self.handles.append(ex.register_forward_pre_hook(experts_pre, with_kwargs=True))
            if pl["down"] is not None:
                self.handles.append(
                    pl["down"].register_forward_pre_hook(
                        lambda mod, args, i=i: self._put("layers.%d.mlp_act" % i, args[0])
                    )
                )

        self.handles.append(
            P["final_norm"].register_forward_hook(lambda mod, args, out: self._put("final_norm", _out0(out)))
        )

        # q/k/v exactly as handed to the attention kernel: wrap the module-level
        # eager_attention_forward of each attention class's own module.  With
        # attn_implementation="eager" the attention forward looks this global up at call time.
        mods = {}
        for pl in P["per_layer"]:
            if pl["attn"] is not None:
                mods[type(pl["attn"]).__module__] = sys.modules[type(pl["attn"]).__module__]
        for modname, m in mods.items():
            orig = getattr(m, "eager_attention_forward", None)
            if orig is not None:
                def eager_wrap(module, query, key, value, *args, _orig_fn=orig, **kwargs):
                    i = self.attn_index.get(id(module), self.current)
                    if i is not None:
                        mask = args[0] if args else kwargs.get("attention_mask")
                        self.masks.setdefault(i, mask_summary(mask))
                        if full:
                            self._put("layers.%d.q" % i, query)
                            self._put("layers.%d.k" % i, key)
                            self._put("layers.%d.v" % i, value)
                    return _orig_fn(module, query, key, value, *args, **kwargs)

                setattr(m, "eager_attention_forward", eager_wrap)
                self.patched.append((m, "eager_attention_forward", orig))
            # Fallback for attention classes that do not go through eager_attention_forward:
            # the outputs of apply_rotary_pos_emb are q/k after RoPE, before the GQA repeat.
            orig_rope = getattr(m, "apply_rotary_pos_emb", None)
            if orig_rope is not None and full:
                def rope_wrap(*args, _orig_fn=orig_rope, **kwargs):
                    out = _orig_fn(*args, **kwargs)
                    i = self.current
                    if i is not None and isinstance(out, tuple) and len(out) == 2:
                        self.extra.setdefault("rope_q.%d" % i, out[0].detach().clone())
                        self.extra.setdefault("rope_k.%d" % i, out[1].detach().clone())
                    return out

                setattr(m, "apply_rotary_pos_emb", rope_wrap)
                self.patched.append((m, "apply_rotary_pos_emb", orig_rope))

    def remove(self):
        for h in self.handles:
            h.remove()
        self.handles = []
        for m, attr, orig in reversed(self.patched):
            setattr(m, attr, orig)
        self.patched = []

    def ordered(self, logits):
        """Return (ordered probe names, {name: 2-D tensor}, missing-probe reasons)."""
        n_layers = len(self.parts["per_layer"])
        names = ["embed"]
        for i in range(n_layers):
            if self.mode == "all":
                for s in SUB_PROBES:
                    names.append("layers.%d.%s" % (i, s))
                    if s == "mlp_norm" and self.parts["per_layer"][i].get("router") is not None:
                        names += ["layers.%d.%s" % (i, m) for m in MOE_PROBES]
            names.append("layers.%d" % i)
        names += ["final_norm", "logits"]
        self.rec["logits"] = logits.detach().clone()
        methods = set()
        # Fill q/k/v from the fallback captures only where the eager wrapper saw nothing.
        for i in range(n_layers):
            if self.mode != "all":
                break
            if "layers.%d.q" % i in self.rec:
                methods.add("eager_attention_forward")
                continue
            if "rope_q.%d" % i in self.extra:
                self.rec["layers.%d.q" % i] = self.extra["rope_q.%d" % i]
                self.rec["layers.%d.k" % i] = self.extra["rope_k.%d" % i]
                methods.add("apply_rotary_pos_emb outputs")
                if "v_proj.%d" % i in self.extra:
                    self.rec["layers.%d.v" % i] = self.extra["v_proj.%d" % i]
                    methods.add("v_proj output")
        out, order, missing = {}, [], {}
        for n in names:
            if n not in self.rec:
                missing[n] = "not captured (no hook point found for this family)"
                continue
            try:
                out[n] = to2d(self.rec[n])
                order.append(n)
            except Exception as e:  # noqa: BLE001 - report and leave the probe out
                missing[n] = "could not flatten: %s" % e
        self.capture_methods = sorted(methods)
        return order, out, missing


# ----------------------------------------------------------------------------------------------
# Planted bugs
# ----------------------------------------------------------------------------------------------


# Numeric plants and the config keys whose value they replace (the first key present wins; the default applies when
# none is). A plant equal to the config's own value changes nothing and would make a fixture claim a bug it lacks.
PLANT_CONFIG_KEYS = {
    "window": (("sliding_window",), None),
    "norm.eps": (("rms_norm_eps", "layer_norm_eps", "layer_norm_epsilon", "norm_eps", "norm_epsilon"), None),
    "rope.theta": (("rope_theta",), 10000.0),
    "rope.partial": (("partial_rotary_factor",), 1.0),
    "attn.scalar": (("query_pre_attn_scalar",), None),
    "attn.scale": (("query_pre_attn_scalar",), None),
}


def config_value(config, keys, default):
    for k in keys:
        if k in config and config[k] is not None:
            return config[k]
        rp = config.get("rope_parameters") or config.get("rope_scaling")
        if isinstance(rp, dict) and rp.get(k) is not None:
            return rp[k]
    return default


def reject_noop_plants(model_dir, plants):
    """Raise when a numeric plant sets a value the config already has (e.g. norm.eps=1e-5 on a model whose eps is 1e-5)."""
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    for p in plants:
        if "=" not in p:
            continue
        key, value = p.split("=", 1)
        if key not in PLANT_CONFIG_KEYS:
            continue
        keys, default = PLANT_CONFIG_KEYS[key]
        current = config_value(config, keys, default)
        if current is not None and float(current) == float(value):
            raise ValueError("plant %r changes nothing: the config's %s is already %r" % (p, "/".join(keys), current))


def plant_config_overrides(plants):
    """Plants that must act on the config before the model is built."""
    ov = {}
    for p in plants:
        if p.startswith("window="):
            ov["sliding_window"] = int(p.split("=", 1)[1])
        elif p == "logits.no_softcap":
            ov["final_logit_softcapping"] = None
        elif p.startswith(("attn.scalar=", "attn.scale=")):
            v = float(p.split("=", 1)[1])
            ov["query_pre_attn_scalar"] = int(v) if v == int(v) else v  # the v5 config field is typed int
    ov.update(dense_plants.config_overrides(plants))
    return ov


def plant_rope_overrides(config, plants):
    """RoPE plants rewrite rope_parameters (transformers v5) before the model is built."""
    rp = getattr(config, "rope_parameters", None)
    for p in plants:
        if p == "rope.scaling_ignored":
            theta = rp.get("rope_theta") if isinstance(rp, dict) else config.rope_theta
            config.rope_parameters = {"rope_type": "default", "rope_theta": theta}
        elif p.startswith("rope.yarn_truncate="):
            config.rope_parameters = dict(rp, truncate=p.split("=", 1)[1].lower() == "true")
        elif p.startswith("rope.partial="):
            f = float(p.split("=", 1)[1])
            config.partial_rotary_factor = f
            if isinstance(config.rope_parameters, dict):
                config.rope_parameters = dict(config.rope_parameters, partial_rotary_factor=f)
    dense_plants.rope_overrides(config, plants)


def apply_plants(model, plants, ctx):
    """Apply post-load plants.  Returns hook handles (kept for the whole run) and notes."""
    handles, notes = [], []
    parts = find_parts(model)
    for p in plants:
        if p.startswith("window="):
            w = int(p.split("=", 1)[1])
            # Some attention classes copy the window at init; keep them in line with the config.
            for pl in parts["per_layer"]:
                if pl["attn"] is not None and getattr(pl["attn"], "sliding_window", None) is not None:
                    pl["attn"].sliding_window = w
            notes.append("config.sliding_window=%s" % model.config.sliding_window)
        elif p.startswith("perturb.layer"):
            i = int(p[len("perturb.layer"):])
            down = parts["per_layer"][i]["down"]
            with torch.no_grad():
                down.weight.mul_(1.02)
            notes.append("layers[%d] down projection weight *= 1.02" % i)
        elif p == "act.gelu_exact":
            n = 0
            for pl in parts["per_layer"]:
                mlp = pl["mlp"]
                for attr in ("act_fn", "act", "activation_fn"):
                    if isinstance(getattr(mlp, attr, None), torch.nn.Module):
                        setattr(mlp, attr, torch.nn.GELU(approximate="none"))
                        n += 1
                        break
            if n != len(parts["per_layer"]):
                raise RuntimeError("act.gelu_exact: replaced the activation in %d of %d layers" % (n, len(parts["per_layer"])))
            notes.append("mlp activation -> nn.GELU(approximate='none') in %d layers" % n)
        elif p == "norm.cast_before_weight":
            norm_cls = type(parts["final_norm"])

            def llama_style(self, x):
                xf = x.float()
                eps = getattr(self, "eps", getattr(self, "variance_epsilon", 1e-6))
                xhat = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
                return xhat.to(x.dtype) * (1.0 + self.weight)  # (1 + w) rounded in the model dtype

            n = 0
            # PLANT_LAYERS restricts the plant to the norms inside those decoder layers (a bug in some layers only).
            scope = (model.modules() if PLANT_LAYERS is None else
                     (m for i in PLANT_LAYERS for m in parts["per_layer"][i]["layer"].modules()))
            for mod in scope:
                if type(mod) is norm_cls:
                    mod.forward = llama_style.__get__(mod, type(mod))
                    n += 1
            notes.append("%d %s modules compute x_hat.to(dtype) * (1 + w)" % (n, norm_cls.__name__))
        elif p == "embed.scale_fp32":
            emb = parts["embed"]
            hidden = model.config.hidden_size

            def embed_pre(mod, args, kwargs):
                raw = F.embedding(ctx["input_ids"], emb.weight)
                planted = (raw.float() * math.sqrt(hidden)).to(raw.dtype)
                if args:
                    return (planted,) + tuple(args[1:]), kwargs
                kwargs = dict(kwargs)
                kwargs["hidden_states"] = planted
                return args, kwargs

            handles.append(parts["layers"][0].register_forward_pre_hook(embed_pre, with_kwargs=True))
            notes.append("layer-0 input replaced by (embedding.float() * sqrt(%d)).to(dtype)" % hidden)
        elif p in ("rope.bf16_angles", "rope.inv_freq_lowp") and PLANT_LAYERS is not None:
            handles += plant_rope_in_layers(model, parts, p, ctx, notes)
        elif p == "rope.bf16_angles":
            rot = model.model.rotary_emb

            def bf16_angles(self, x, position_ids, *a, **k):
                inv = self.inv_freq.to(torch.bfloat16).float().to(x.device)
                pos = position_ids.to(torch.bfloat16).float()
                freqs = pos[:, :, None] * inv[None, None, :]
                emb_ = torch.cat((freqs, freqs), dim=-1)
                sc = getattr(self, "attention_scaling", 1.0)
                return (emb_.cos() * sc).to(x.dtype), (emb_.sin() * sc).to(x.dtype)

            rot.forward = bf16_angles.__get__(rot, type(rot))
            notes.append("rotary_emb.forward rounds positions and inv_freq to bf16")
        elif p.startswith("rope.theta="):
            theta = float(p.split("=", 1)[1])
            rot = model.model.rotary_emb
            dim = rot.inv_freq.numel() * 2
            inv = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.int64).to(dtype=torch.float) / dim))
            with torch.no_grad():
                rot.inv_freq.copy_(inv.to(rot.inv_freq.device, rot.inv_freq.dtype))
                if hasattr(rot, "original_inv_freq"):
                    rot.original_inv_freq = rot.inv_freq.clone()
            notes.append("inv_freq recomputed with base %g (dim %d)" % (theta, dim))
        elif p.startswith("norm.eps="):
            eps = float(p.split("=", 1)[1])
            n = 0
            for mod in model.modules():
                if "norm" in type(mod).__name__.lower():
                    for attr in ("variance_epsilon", "eps"):
                        if hasattr(mod, attr) and isinstance(getattr(mod, attr), float):
                            setattr(mod, attr, eps)
                            n += 1
            notes.append("eps=%g set on %d norm attributes" % (eps, n))
        elif p == "attn.no_softcap":
            model.config.attn_logit_softcapping = None
            n = 0
            for pl in parts["per_layer"]:
                if hasattr(pl["attn"], "attn_logit_softcapping"):
                    pl["attn"].attn_logit_softcapping = None
                    n += 1
            notes.append("attn_logit_softcapping=None (config and %d attention modules)" % n)
        elif p in ("logits.no_softcap", "rope.scaling_ignored", "rope.inv_freq_lowp") or p.startswith("rope.partial=") \
                or p.startswith("rope.yarn_truncate="):
            notes.append("%s applied at load" % p)
        elif p.startswith(("attn.scalar=", "attn.scale=")):
            sc = float(p.split("=", 1)[1]) ** -0.5
            for pl in parts["per_layer"]:
                pl["attn"].scaling = sc
            notes.append("attention scaling = %g on every layer" % sc)
        elif p in ("norm.no_unit_offset", "norm.unit_offset"):
            norm_cls = type(parts["final_norm"])

            def gemma_no_offset(self, x):
                xf = x.float()
                eps = getattr(self, "eps", getattr(self, "variance_epsilon", 1e-6))
                xhat = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
                return (xhat * self.weight.float()).type_as(x)

            def llama_unit_offset(self, x):
                xf = x.to(torch.float32)
                eps = getattr(self, "variance_epsilon", getattr(self, "eps", 1e-6))
                xhat = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
                return (1.0 + self.weight) * xhat.to(x.dtype)

            fn = gemma_no_offset if p == "norm.no_unit_offset" else llama_unit_offset
            n = 0
            for mod in model.modules():
                if type(mod) is norm_cls:
                    mod.forward = fn.__get__(mod, type(mod))
                    n += 1
            notes.append("%d %s modules patched for %s" % (n, norm_cls.__name__, p))
        elif p == "embed.scale_none":
            emb = parts["embed"]

            def embed_raw(mod, args, kwargs):
                raw = F.embedding(ctx["input_ids"], emb.weight)
                if args:
                    return (raw,) + tuple(args[1:]), kwargs
                kwargs = dict(kwargs)
                kwargs["hidden_states"] = raw
                return args, kwargs

            handles.append(parts["layers"][0].register_forward_pre_hook(embed_raw, with_kwargs=True))
            notes.append("layer-0 input replaced by the unscaled embedding")
        elif p == "mlp.swap_gate_up":
            n = 0
            for pl in parts["per_layer"]:
                gu = getattr(pl["mlp"], "gate_up_proj", None)
                if gu is None:
                    raise RuntimeError("mlp.swap_gate_up needs a fused gate_up_proj")
                with torch.no_grad():
                    half = gu.weight.shape[0] // 2
                    gu.weight.copy_(torch.cat([gu.weight[half:], gu.weight[:half]], dim=0))
                n += 1
            notes.append("gate_up_proj halves swapped in %d layers" % n)
        elif p == "qk.interleaved":
            mods = {sys.modules[type(pl["attn"]).__module__] for pl in parts["per_layer"]}

            def interleaved(q, k, cos, sin, *a, unsqueeze_dim=1, **kw):
                # cos/sin arrive as cat(f, f); GPT-J pairs dims (2j, 2j+1) with frequency j.
                half = cos.shape[-1] // 2
                c = cos[..., :half].repeat_interleave(2, dim=-1).unsqueeze(unsqueeze_dim)
                s_ = sin[..., :half].repeat_interleave(2, dim=-1).unsqueeze(unsqueeze_dim)

                def rot2(x):
                    return torch.stack((-x[..., 1::2], x[..., ::2]), dim=-1).flatten(-2)

                return (q * c) + (rot2(q) * s_), (k * c) + (rot2(k) * s_)

            for m in mods:
                if not hasattr(m, "apply_rotary_pos_emb"):
                    raise RuntimeError("qk.interleaved: %s has no apply_rotary_pos_emb" % m.__name__)
                ctx.setdefault("restore", []).append((m, "apply_rotary_pos_emb", m.apply_rotary_pos_emb))
                m.apply_rotary_pos_emb = interleaved
            notes.append("apply_rotary_pos_emb replaced by the interleaved (GPT-J) layout")
        elif p == "softmax.lowp":
            orig_softmax = torch.nn.functional.softmax

            def lowp_softmax(x, dim=None, *a, dtype=None, **kw):
                if x.dim() == 4 and dim in (-1, 3):  # attention probabilities only
                    e = (x - x.amax(dim=-1, keepdim=True)).exp()
                    return e / e.sum(dim=-1, keepdim=True)
                return orig_softmax(x, dim, *a, dtype=dtype, **kw)

            ctx.setdefault("restore", []).append((torch.nn.functional, "softmax", orig_softmax))
            torch.nn.functional.softmax = lowp_softmax
            notes.append("attention softmax computed in the activation dtype, op by op")
        elif dense_plants.apply(p, model, parts, notes):
            pass
        elif p == "moe.bias_in_weights":
            handles += plant_bias_in_weights(parts, notes)
        elif p.startswith("moe."):
            handles += plant_moe(parts, p, notes)
        elif p == "attn.no_sinks":
            n = 0
            for pl in parts["per_layer"]:
                sinks = getattr(pl["attn"], "sinks", None)
                if isinstance(sinks, torch.Tensor):
                    with torch.no_grad():
                        sinks.fill_(float("-inf"))
                    n += 1
            if n == 0:
                raise RuntimeError("attn.no_sinks: no attention module has sinks")
            notes.append("sinks = -inf in %d attention modules" % n)
        elif p == "attn.no_chunking":
            n = 0
            for pl in parts["per_layer"]:
                if getattr(pl["layer"], "attention_type", None) == "chunked_attention":
                    pl["layer"].attention_type = "full_attention"
                    n += 1
            # transformers 5.x: the decoder picks each layer's mask from config.layer_types, not from the layer
            configs = {id(c): c for c in (getattr(m, "config", None) for m in model.modules()) if c is not None}
            for c in configs.values():
                types = getattr(c, "layer_types", None)
                if types and "chunked_attention" in types:
                    n = max(n, sum(t == "chunked_attention" for t in types))
                    c.layer_types = ["full_attention" if t == "chunked_attention" else t for t in types]
            if n == 0:
                raise RuntimeError("attn.no_chunking: no chunked_attention layer")
            ctx["no_chunking"] = True
            notes.append("%d chunked_attention layers given the full causal mask" % n)
        elif p == "attn.no_temperature_tuning":
            n = 0
            for pl in parts["per_layer"]:
                a = pl["attn"]
                if getattr(a, "attn_temperature_tuning", False) and not getattr(a, "use_rope", True):
                    a.attn_temperature_tuning = False
                    n += 1
            if n == 0:
                raise RuntimeError("attn.no_temperature_tuning: no NoPE layer tunes its temperature")
            notes.append("attn_temperature_tuning = False on %d NoPE layers" % n)
        elif p == "qk_norm.off":
            n = 0
            for pl in parts["per_layer"]:
                for attr in ("q_norm", "k_norm", "qk_norm"):
                    if isinstance(getattr(pl["attn"], attr, None), torch.nn.Module):
                        setattr(pl["attn"], attr, torch.nn.Identity())
                        n += 1
            if n == 0:
                raise RuntimeError("qk_norm.off: no q_norm / k_norm modules in the attention layers")
            notes.append("%d q/k norm modules replaced by the identity" % n)
        elif p == "attn.no_yarn_mscale":
            handles += plant_no_yarn_mscale(model, parts, notes)
        elif p == "mlp.no_clamp":
            n = 0
            for pl in parts["per_layer"]:
                ex = _first_module(pl["mlp"], ["experts"])
                if ex is not None and hasattr(ex, "limit"):
                    ex.limit = float("inf")
                    n += 1
            if n == 0:
                raise RuntimeError("mlp.no_clamp: no experts module with a limit")
            notes.append("experts.limit = inf in %d layers" % n)
        else:
            raise ValueError("unknown plant %r; known: %s" % (p, ", ".join(PLANTS)))
    return handles, notes


def plant_no_yarn_mscale(model, parts, notes):
    """YaRN's mscale dropped (transformers#47435): every rotary module's attention_scaling (the factor cos/sin are
    multiplied by) set to 1, and in MLA attention (DeepSeek-V3: modules with qk_head_dim) the softmax scale reset to
    qk_head_dim ** -0.5, without the mscale**2 HF multiplies in.  Applied after the float64 rebuild of the rotary
    buffers (run_trace rebuilds first), which would otherwise restore attention_scaling.  Refused when it changes
    nothing (every factor already 1 and no MLA scale carrying an mscale**2)."""
    rots = [m for m in model.modules() if hasattr(m, "attention_scaling") and hasattr(m, "inv_freq")]
    mlas = [pl["attn"] for pl in parts["per_layer"]
            if pl["attn"] is not None and hasattr(pl["attn"], "qk_head_dim") and hasattr(pl["attn"], "scaling")]
    changes = sum(float(m.attention_scaling) != 1.0 for m in rots) + sum(a.scaling != a.qk_head_dim ** -0.5 for a in mlas)
    if changes == 0:
        raise RuntimeError("attn.no_yarn_mscale: no rotary module with an attention factor other than 1 and no MLA "
                           "softmax scale with an mscale**2")
    for m in rots:
        m.attention_scaling = 1.0
    notes.append("attention_scaling = 1 on %d rotary module(s)" % len(rots))
    for a in mlas:
        if a is mlas[0]:
            notes.append("MLA softmax scale %r -> %r (qk_head_dim ** -0.5)" % (a.scaling, a.qk_head_dim ** -0.5))
        a.scaling = a.qk_head_dim ** -0.5
    if mlas:
        notes.append("MLA softmax scale reset in %d attention modules" % len(mlas))
    return []


def plant_rope_in_layers(model, parts, p, ctx, notes):
    """A RoPE plant acting only in PLANT_LAYERS: the model's rotary module stays as it is; a hook on it computes the
    planted cos/sin from the same inputs, and the planted layers receive those instead (HF computes cos/sin once per
    forward and passes them to every layer as position_embeddings)."""
    rot = model.model.rotary_emb

    def planted(mod, args, kwargs, out):
        x = args[0] if args else kwargs["x"]
        position_ids = args[1] if len(args) > 1 else kwargs["position_ids"]
        if p == "rope.inv_freq_lowp":  # what model.to(dtype) does to the buffer; positions stay exact
            inv, pos = mod.inv_freq.to(x.dtype).float(), position_ids.float()
        else:  # rope.bf16_angles: positions and inv_freq rounded to bf16 before the angles
            inv, pos = mod.inv_freq.to(torch.bfloat16).float(), position_ids.to(torch.bfloat16).float()
        freqs = pos[:, :, None] * inv.to(pos.device)[None, None, :]
        emb_ = torch.cat((freqs, freqs), dim=-1)
        sc = getattr(mod, "attention_scaling", 1.0)
        ctx["planted_rope"] = ((emb_.cos() * sc).to(x.dtype), (emb_.sin() * sc).to(x.dtype))
        return out

    def swap(mod, args, kwargs):
        if "position_embeddings" not in kwargs:
            raise RuntimeError("%s in some layers: the decoder layer gets no position_embeddings keyword" % p)
        kwargs = dict(kwargs)
        kwargs["position_embeddings"] = ctx["planted_rope"]
        return args, kwargs

    handles = [rot.register_forward_hook(planted, with_kwargs=True)]
    for i in PLANT_LAYERS:
        handles.append(parts["per_layer"][i]["layer"].register_forward_pre_hook(swap, with_kwargs=True))
    notes.append("%s in layers %d-%d only (their position_embeddings replaced)" % (p, PLANT_LAYERS[0], PLANT_LAYERS[-1]))
    return handles


def block_attr(mlp, router, name, default):
    """A MoE block's routing setting: on the block (GLM-4.5) or on its router (DeepSeek-V3 in transformers 5.x)."""
    for m in (mlp, router):
        if m is not None and getattr(m, name, None) is not None:
            return getattr(m, name)
    return default


def plant_bias_in_weights(parts, notes):
    """DeepSeek/GLM: the weights taken from sigmoid(logits) + e_score_correction_bias (the selection scores) instead
    of sigmoid(logits), then renormalised and scaled as the block does; the chosen experts stay HF's."""
    handles = []
    for pl in parts["per_layer"]:
        r, mlp = pl.get("router"), pl["mlp"]
        if r is None or not hasattr(r, "e_score_correction_bias"):
            continue
        seen = {}

        def router_post(mod, args, kwargs, out, seen=seen):
            seen["logits"] = out[0] if isinstance(out, tuple) else out  # DeepSeek-V3's router returns (logits, w, idx)

        def experts_pre(mod, args, kwargs, seen=seen, r=r, mlp=mlp):
            idx, w = args[1], args[2]
            scores = seen["logits"].reshape(-1, seen["logits"].shape[-1]).sigmoid() + r.e_score_correction_bias
            new = scores.gather(-1, idx)
            if block_attr(mlp, r, "norm_topk_prob", True):
                new = new / (new.sum(dim=-1, keepdim=True) + 1e-20)
            new = new * block_attr(mlp, r, "routed_scaling_factor", 1.0)
            return (args[0], idx, new.to(w.dtype)) + tuple(args[3:]), kwargs

        handles.append(r.register_forward_hook(router_post, with_kwargs=True))
        handles.append(_first_module(mlp, ["experts"]).register_forward_pre_hook(experts_pre, with_kwargs=True))
    if not handles:
        raise RuntimeError("moe.bias_in_weights: no router with e_score_correction_bias")
    notes.append("moe.bias_in_weights: weights from the biased scores in %d layers" % (len(handles) // 2))
    return handles


def plant_moe(parts, p, notes):
    """MoE routing plants, as a forward hook on each router that replaces the routing weights it returns (the
    chosen experts stay HF's): renormalise or not from the router's own probabilities, or scale them."""
    key, _, val = p.partition("=")
    if key == "moe.renormalize":
        renorm = val.lower() == "true"
    elif key == "moe.routed_scaling":
        scale = float(val)
    elif key == "moe.softmax_before_topk":
        pass
    else:
        raise ValueError("unknown plant %r" % p)

    def hook(mod, args, kwargs, out):
        idx, weights = out[2], out[1]
        if key == "moe.routed_scaling":
            new = weights * scale
        elif key == "moe.softmax_before_topk":
            logits = router_logits_of(mod, _hidden_arg(args, kwargs))
            new = torch.softmax(logits, dim=-1, dtype=weights.dtype).gather(-1, idx)  # gpt-oss softmaxes in the dtype
        else:
            logits = router_logits_of(mod, _hidden_arg(args, kwargs))
            probs = torch.softmax(logits.float(), dim=-1)  # HF's router softmax dtype (float64 in strict runs)
            new = probs.gather(-1, idx)
            if renorm:
                new = new / new.sum(dim=-1, keepdim=True)
        return (out[0], new.to(weights.dtype), idx) + tuple(out[3:])

    handles = []
    for pl in parts["per_layer"]:
        if pl.get("router") is None:
            continue
        if key == "moe.routed_scaling":
            # on the experts' input, so routers that return only logits (DeepSeek, GLM) are covered too: V replaces
            # the block's routed_scaling_factor (1 where the family has none)
            mlp, router = pl["mlp"], pl["router"]

            def ex_pre(mod, args, kwargs, mlp=mlp, router=router):
                factor = block_attr(mlp, router, "routed_scaling_factor", None) or 1.0
                return (args[0], args[1], args[2] * (scale / factor)) + tuple(args[3:]), kwargs

            handles.append(_first_module(mlp, ["experts"]).register_forward_pre_hook(ex_pre, with_kwargs=True))
        else:
            handles.append(pl["router"].register_forward_hook(hook, with_kwargs=True))
    if not handles:
        raise RuntimeError("%s: no MoE router found" % p)
    notes.append("%s: routing weights replaced in %d routers" % (p, len(handles)))
    return handles


# ----------------------------------------------------------------------------------------------
# Strict float64
# ----------------------------------------------------------------------------------------------
# HF's modeling code upcasts to float32 on purpose in a few places (RMSNorm's variance, softmax
# dtype=torch.float32, RoPE's inv_freq and angle matmul under "Force float32"). In a float64 run those
# upcasts are *downcasts*, so HF "float64" is really ~float32 there (measured: about 1e-7 relative at
# every probe after the first norm, 2e-5 on q/k at position 3000). To get a true float64 computation of
# HF's modeling code we make torch.float32 / torch.float / Tensor.float() mean float64 while the model
# runs, and rebuild the rotary buffers under the same rule. Only the precision changes, not the code path.


# Strict float64 also makes float64 the default dtype (False reproduces the earlier dumper, for the evidence in
# docs/reference.md).
STRICT_DEFAULT_DTYPE = True


@contextlib.contextmanager
def float32_means_float64():
    saved = (torch.float32, torch.float, torch.Tensor.float)
    orig_float = torch.Tensor.float

    def as_f64(self, *args, **kwargs):
        return self.to(torch.float64, *args, **kwargs) if not args else orig_float(self, *args, **kwargs)

    torch.float32 = torch.float64
    torch.float = torch.float64
    torch.Tensor.float = as_f64
    # Python scalars times integer tensors land in the *default* dtype: HF's dynamic NTK computes its scaled base as
    # factor * seq_len (an int64 tensor) / max_position_embeddings, a float32 tensor unless the default is float64
    # (docs/reference.md, "dynamic NTK").
    saved_default = torch.get_default_dtype()
    if STRICT_DEFAULT_DTYPE:
        torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.float32, torch.float, torch.Tensor.float = saved
        torch.set_default_dtype(saved_default)


def rebuild_rotary_in_float64(model):
    """Recompute every *inv_freq buffer in float64 by re-running each rotary module's constructor."""
    rebuilt = []
    for name, mod in model.named_modules():
        if not type(mod).__name__.endswith("RotaryEmbedding"):
            continue
        with float32_means_float64():
            try:
                fresh = type(mod)(config=mod.config)
            except TypeError:
                fresh = type(mod)(mod.config)
        for bname, buf in fresh.named_buffers(recurse=False):
            if "inv_freq" in bname:
                mod.register_buffer(bname, buf.to(torch.float64), persistent=False)
                rebuilt.append("%s.%s" % (name, bname))
        for attr in ("attention_scaling",):
            if hasattr(fresh, attr):
                setattr(mod, attr, getattr(fresh, attr))
    return rebuilt

# ----------------------------------------------------------------------------------------------
# The trace
# ----------------------------------------------------------------------------------------------


def load_model(model_dir, dtype, plants=(), experts="eager"):
    """`experts`: HF's experts_implementation for MoE families ("eager": the per-expert loop, the only one with a
    float64 path; None: HF's default, a grouped GEMM)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg0 = AutoConfig.from_pretrained(model_dir)
    moe = any(getattr(cfg0, k, None) for k in ("num_local_experts", "num_experts", "n_routed_experts"))
    moe = moe and cfg0.model_type != "llama4_text"   # Llama4TextExperts is always a bmm: no implementation to choose
    extra = {"experts_implementation": experts} if moe and experts else {}

    def from_pretrained(*a, **k):
        return AutoModelForCausalLM.from_pretrained(*a, **k, **extra)

    ov = plant_config_overrides(plants)
    if "rope.inv_freq_lowp" in plants and PLANT_LAYERS is None:
        # Load in float32, then cast the whole module: .to() also rounds the inv_freq buffer.
        model = from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager")
        return model.to(DTYPES[dtype]).eval()
    if ov or any(p.startswith("rope.") for p in plants):  # (rope.yarn_truncate too)
        # Plant that needs a different config: load the config, override, build from it.
        config = AutoConfig.from_pretrained(model_dir)
        for k, v in ov.items():
            setattr(config, k, v)
        plant_rope_overrides(config, plants)
        model = from_pretrained(
            model_dir, config=config, dtype=DTYPES[dtype], attn_implementation="eager"
        )
    else:
        # The reference path: let HF load and cast the stored weights itself.
        model = from_pretrained(model_dir, dtype=DTYPES[dtype], attn_implementation="eager")
    return model.eval()


def llama4_offset_inputs(model, pos, ctx):
    """Llama 4 at a position offset: its temperature tuning reads the cache's length (OffsetCache) and its masks are
    built from cache_position, while a run without a cache starts both at 0 whatever position_ids say. Pass
    cache_position = the positions, a cache that reports the offset, and
    the two masks HF would build for them in a cached run (causal; chunked: same pos // attention_chunk_size), as
    additive [1, 1, T, T] masks (HF's eager format), so a trace at an offset means what it means in generation.
    Other families: nothing."""
    config = model.config
    if getattr(config, "model_type", None) != "llama4_text":
        return {}
    p = pos[0]
    dtype = next(model.parameters()).dtype
    neg = torch.finfo(dtype).min
    causal = p[None, :] <= p[:, None]
    chunk = getattr(config, "attention_chunk_size", None)
    chunked = causal & ((p[None, :] // chunk) == (p[:, None] // chunk)) if chunk and not ctx.get("no_chunking") else causal

    def additive(allowed):
        m = torch.zeros(allowed.shape, dtype=dtype, device=p.device)
        return m.masked_fill(~allowed, neg)[None, None]

    return {"cache_position": p, "past_key_values": OffsetCache(int(p[0])),
            "attention_mask": {"full_attention": additive(causal), "chunked_attention": additive(chunked)}}


class OffsetCache:
    """What Llama 4 asks of a cache in a run at an offset: transformers 5.17's temperature tuning takes its positions
    from past_key_values.get_seq_length() (not from cache_position or position_ids), so without a cache it starts at 0
    whatever the offset. This stands for `offset` earlier tokens that are not attended to (the premise of every trace at
    an offset here): it reports their count and hands each layer's keys and values back unchanged."""

    def __init__(self, offset):
        self.offset = offset

    def get_seq_length(self, layer_idx=0):
        return self.offset

    def update(self, key_states, value_states, layer_idx, *args, **kwargs):
        return key_states, value_states


def run_trace(model_dir, dtype, device, tokens, position_offset=0, probes="all", out=None,
              plants=(), check_hooks=False, model=None, strict_float64=True, experts="eager"):
    """Run one forward and return a dict with the ordered probe tensors and diagnostics.
    Writes the safetensors trace to `out` when given."""
    plants = list(plants)
    reject_noop_plants(model_dir, plants)
    if model is None:
        model = load_model(model_dir, dtype, plants, experts)
    if device != "cpu":
        model = model.to(device)
    ctx = {}
    strict = dtype == "float64" and strict_float64
    rebuilt = rebuild_rotary_in_float64(model) if strict else []
    plant_handles, plant_notes = apply_plants(model, plants, ctx)
    ids = torch.tensor([tokens], dtype=torch.long, device=device)
    pos = torch.arange(position_offset, position_offset + len(tokens), dtype=torch.long, device=device)[None, :]
    ctx["input_ids"] = ids
    extra = llama4_offset_inputs(model, pos, ctx) if position_offset else {}
    info = {"plant_notes": plant_notes}
    info["param_dtypes"] = sorted({str(p.dtype) for p in model.parameters()})
    with torch.no_grad(), (float32_means_float64() if strict else contextlib.nullcontext()):
        if check_hooks:
            ref = model(input_ids=ids, position_ids=pos, use_cache=False, **extra).logits.detach().clone()
        rec = Recorder(model, probes)
        rec.install()
        try:
            logits = model(input_ids=ids, position_ids=pos, use_cache=False, **extra).logits
        finally:
            rec.remove()
            for h in plant_handles:
                h.remove()
            for obj, attr, orig in ctx.get("restore", []):
                setattr(obj, attr, orig)
    order, tensors, missing = rec.ordered(logits)
    if check_hooks:
        info["hooks_bitwise_equal"] = bool(torch.equal(ref, logits))
        info["hooks_max_abs_diff"] = float((ref.double() - logits.double()).abs().max())
    store = torch.float64 if dtype == "float64" else torch.float32
    tensors = {k: v.to(store).cpu().contiguous() for k, v in tensors.items()}
    dev_name = "cpu" if device == "cpu" else torch.cuda.get_device_name(torch.device(device))
    meta = {
        "format": FORMAT,
        "producer": producer_string(),
        "dtype": dtype,
        "device": dev_name,
        "tokens": json.dumps([int(t) for t in tokens]),
        "position_offset": str(int(position_offset)),
        "probes": json.dumps(order),
    }
    if plants:
        meta["planted"] = json.dumps(plants)
        if PLANT_LAYERS is not None:
            meta["plant_layers"] = json.dumps(list(PLANT_LAYERS))
    if strict:
        meta["float64_strict"] = json.dumps({"float32_upcasts": "made float64", "rotary_rebuilt": rebuilt})
    info.update(
        order=order,
        tensors=tensors,
        missing=missing,
        meta=meta,
        masks={int(k): v for k, v in rec.masks.items()},
        capture_methods=getattr(rec, "capture_methods", []),
        recorder_notes=rec.notes,
    )
    if out:
        from safetensors.torch import save_file

        save_file(tensors, out, metadata=meta)
    return info


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="model directory written by save_pretrained")
    ap.add_argument("--dtype", choices=sorted(DTYPES), help="default: the --like trace's dtype")
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    ap.add_argument("--tokens", help="comma-separated token ids, e.g. 1,2,3")
    ap.add_argument("--like", help="take tokens, position offset and plants from this existing trace")
    ap.add_argument("--no-strict-float64", action="store_true",
                    help="in float64 runs keep HF's float32 upcasts as they are (see float32_means_float64)")
    ap.add_argument("--position-offset", type=int, default=0, help="position_ids = arange(offset, offset+n)")
    ap.add_argument("--probes", choices=["layers", "all"], default="all")
    ap.add_argument("--out", required=True, help="output .safetensors trace")
    ap.add_argument("--plant", action="append", default=[], metavar="BUG_ID",
                    help="plant a known bug (repeatable): " + "; ".join("%s: %s" % kv for kv in PLANTS.items()))
    ap.add_argument("--experts", default="eager",
                    help="experts_implementation for MoE families (default eager; 'default' = HF's own choice)")
    ap.add_argument("--check-hooks", action="store_true", help="also run a hook-free forward and compare logits")
    ap.add_argument("--plant-layers", help="A-B: decoder layers the plant acts in (%s only)" % ", ".join(LAYERED_PLANTS))
    a = ap.parse_args(argv)
    if a.plant_layers:
        if not a.plant or any(p not in LAYERED_PLANTS for p in a.plant):
            ap.error("--plant-layers takes only these plants: " + ", ".join(LAYERED_PLANTS))
        global PLANT_LAYERS
        lo, hi = (int(x) for x in a.plant_layers.split("-"))
        PLANT_LAYERS = range(lo, hi + 1)
    if a.like:
        from safetensors import safe_open

        with safe_open(a.like, "pt") as f:
            meta = f.metadata()
        a.tokens = a.tokens or ",".join(str(t) for t in json.loads(meta["tokens"]))
        a.position_offset = a.position_offset or int(meta["position_offset"])
        a.dtype = a.dtype or meta["dtype"]
        a.plant = a.plant or json.loads(meta.get("planted", "[]"))
    if not a.tokens or not a.dtype:
        ap.error("--tokens and --dtype are required unless --like gives them")
    try:
        info = run_trace(a.model, a.dtype, a.device, parse_tokens(a.tokens), a.position_offset, a.probes,
                         a.out, a.plant, a.check_hooks, strict_float64=not a.no_strict_float64,
                         experts=None if a.experts == "default" else a.experts)
    except Exception:
        traceback.print_exc()
        return 1
    log("wrote %s: %d probes" % (a.out, len(info["order"])))
    for k, v in info["missing"].items():
        log("  left out %s: %s" % (k, v))
    for n in info["plant_notes"]:
        log("  plant: %s" % n)
    if a.check_hooks:
        log("  hooks vs no hooks: bitwise equal=%s max|diff|=%g" % (info["hooks_bitwise_equal"], info["hooks_max_abs_diff"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
