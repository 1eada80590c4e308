"""A Gemma-shaped model of real size (2.05B parameters: Gemma-2B's layers with a 32000-token vocabulary), random
weights, saved in bf16 with HF's save_pretrained. Norm weights are drawn N(0, 0.1) so that (1 + w) is not exactly 1
(with w = 0 a norm-cast bug would change nothing). Usage: python3 make_realscale.py OUT_DIR [LAYERS] (default 18;
9 layers of Gemma-2B's shape are 1.06B parameters)."""
import sys

import torch
from transformers import GemmaConfig, GemmaForCausalLM

out = sys.argv[1]
layers = int(sys.argv[2]) if len(sys.argv) > 2 else 18
kw = dict(vocab_size=32000, hidden_size=2048, intermediate_size=16384, num_hidden_layers=layers, num_attention_heads=8,
          num_key_value_heads=1, head_dim=256, max_position_embeddings=8192, rms_norm_eps=1e-6,
          hidden_activation="gelu_pytorch_tanh", bos_token_id=2, eos_token_id=1, pad_token_id=0, tie_word_embeddings=True)
try:
    cfg = GemmaConfig(rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, **kw)
except TypeError:
    cfg = GemmaConfig(rope_theta=10000.0, **kw)
torch.manual_seed(0)
with torch.device("cuda"):
    model = GemmaForCausalLM(cfg)
with torch.no_grad():
    for name, p in model.named_parameters():
        if "norm" in name:
            p.normal_(0.0, 0.1)
n = sum(p.numel() for p in model.parameters())
model.to(torch.bfloat16).save_pretrained(out, safe_serialization=True)
print("saved %s: %.3fB parameters" % (out, n / 1e9))
