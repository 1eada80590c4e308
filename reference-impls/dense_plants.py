"""Planted bugs for the dense families and RoPE variants of issue #15 (OLMo 2, SmolLM3, GPT-NeoX, LongRoPE,
Gemma 3 per-layer-type scaling). hf_trace.py asks this module at its three plant points: before the config is built
(config_overrides), while rope parameters are rewritten (rope_overrides), and after load (apply)."""

import torch

PLANTS = {
    "rope.nope_inverted": "SmolLM3 no_rope_layers read with the wrong polarity (1 taken as 'skip RoPE')",
    "rope.longrope_factors=short": "LongRoPE always uses short_factor, whatever the sequence length",
    "rope.longrope_factors=long": "LongRoPE always uses long_factor, whatever the sequence length",
    "block.sequential": "a parallel-residual block (GPT-NeoX use_parallel_residual) computed sequentially",
    "qk_norm.per_head": "OLMo 2's q/k RMSNorm taken per head instead of over the whole projection",
    "rope.scaling_all_layers": "the full-attention layers' rope scaling applied to the sliding layers too",
}


def config_overrides(plants):
    ov = {}
    for p in plants:
        if p == "block.sequential":
            ov["use_parallel_residual"] = False
    return ov


def rope_overrides(config, plants):
    rp = getattr(config, "rope_parameters", None)
    for p in plants:
        if p == "rope.nope_inverted":
            config.no_rope_layers = [0 if x else 1 for x in config.no_rope_layers]
        elif p.startswith("rope.longrope_factors="):
            which = p.split("=", 1)[1]
            src = rp if isinstance(rp, dict) else config.rope_scaling
            chosen = list(src["%s_factor" % which])
            config.rope_parameters = dict(src, short_factor=chosen, long_factor=chosen)
        elif p == "rope.scaling_all_layers":
            full, sliding = dict(rp["full_attention"]), rp["sliding_attention"]
            full["rope_theta"] = sliding["rope_theta"]
            config.rope_parameters = dict(rp, sliding_attention=full)


def _per_head_rms(norm, head_dim):
    def forward(self, x):
        dt = x.dtype
        h = x.to(torch.float32)
        shape = h.shape
        h = h.view(*shape[:-1], shape[-1] // head_dim, head_dim)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
        return (self.weight * h.view(shape)).to(dt)

    return forward.__get__(norm, type(norm))


def apply(p, model, parts, notes):
    """Post-load plants; True when p is one of ours."""
    if p in ("rope.nope_inverted", "block.sequential", "rope.scaling_all_layers") or p.startswith("rope.longrope_factors="):
        notes.append("%s applied at load" % p)
        if p == "rope.nope_inverted":
            flags = [getattr(pl["attn"], "use_rope", None) for pl in parts["per_layer"]]
            notes.append("per-layer use_rope now %s" % flags)
        if p == "block.sequential":
            notes.append("use_parallel_residual=%s" % [getattr(pl["layer"], "use_parallel_residual", None)
                                                      for pl in parts["per_layer"]])
        return True
    if p == "qk_norm.per_head":
        hd = model.config.head_dim if getattr(model.config, "head_dim", None) else \
            model.config.hidden_size // model.config.num_attention_heads
        n = 0
        for pl in parts["per_layer"]:
            for name in ("q_norm", "k_norm"):
                mod = getattr(pl["attn"], name)
                mod.forward = _per_head_rms(mod, hd)
                n += 1
        notes.append("%d q/k norms normalise per head of %d" % (n, hd))
        return True
    return False
