"""Train the small model that `modeldiff demo` ships, briefly, on real English text.

Why: the demo compares implementations by their logits, so the logits should mean something. A random
model's probe values are noise; a model that has learnt some English makes a divergence's effect on
predictions (top-1 agreement, KL) readable.

The text is the docstrings of Python's standard library (always present where Python is; no download).
Tokens are bytes (0-255) plus BOS=256, EOS=257, PAD=258, so no tokenizer files are needed.
Architecture: Gemma (the family whose release bugs the demo retells), tiny.

Usage (on the GPU box):  python3 train_demo.py --out DIR [--steps 1500]
"""
import argparse
import ast
import math
import os
import sys
import sysconfig
import time

import torch

BOS, EOS, PAD, VOCAB = 256, 257, 258, 260


def corpus(limit_bytes=8_000_000):
    """Docstrings of the standard library, in a fixed order."""
    root = sysconfig.get_paths()["stdlib"]
    parts, total = [], 0
    for dirpath, dirnames, filenames in sorted(os.walk(root)):
        dirnames.sort()
        if "test" in dirpath.split(os.sep) or "site-packages" in dirpath:
            continue
        for fn in sorted(filenames):
            if not fn.endswith(".py"):
                continue
            try:
                tree = ast.parse(open(os.path.join(dirpath, fn), encoding="utf-8").read())
            except Exception:
                continue
            for node in ast.walk(tree):
                if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                    doc = ast.get_docstring(node)
                    if doc and len(doc) > 80:
                        b = doc.encode("utf-8", "ignore")
                        parts.append(b)
                        total += len(b)
            if total > limit_bytes:
                return parts
    return parts


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--batch", type=int, default=64)
    a = ap.parse_args()
    from transformers import GemmaConfig, GemmaForCausalLM

    torch.manual_seed(0)
    docs = corpus()
    stream = []
    for d in docs:
        stream.append(BOS)
        stream.extend(d)
        stream.append(EOS)
    data = torch.tensor(stream, dtype=torch.long)
    print("corpus: %d docstrings, %d tokens" % (len(docs), len(data)), flush=True)
    cfg = GemmaConfig(vocab_size=VOCAB, hidden_size=128, intermediate_size=384, num_hidden_layers=4,
                      num_attention_heads=4, num_key_value_heads=1, head_dim=32, max_position_embeddings=8192,
                      hidden_activation="gelu_pytorch_tanh", bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD,
                      rope_theta=10000.0, tie_word_embeddings=True)
    model = GemmaForCausalLM(cfg).cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01, betas=(0.9, 0.95))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1, (s + 1) / 100) * 0.5 * (1 + math.cos(math.pi * s / a.steps)))
    t0 = time.time()
    for step in range(a.steps):
        idx = torch.randint(0, len(data) - a.seq - 1, (a.batch,))
        x = torch.stack([data[i:i + a.seq] for i in idx]).cuda()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 250 == 0 or step == a.steps - 1:
            print("step %d loss %.3f (%.0f s)" % (step, loss.item(), time.time() - t0), flush=True)
    model = model.float().eval()
    prompt = b"Return the number of "
    ids = torch.tensor([[BOS] + list(prompt)]).cuda()
    with torch.no_grad():
        for _ in range(40):
            nxt = model(input_ids=ids).logits[0, -1].argmax()
            ids = torch.cat([ids, nxt.view(1, 1)], dim=1)
    text = bytes(t for t in ids[0, 1:].tolist() if t < 256).decode("utf-8", "replace")
    print("greedy sample: %r" % text, flush=True)
    model.to(torch.bfloat16).save_pretrained(a.out, safe_serialization=True)
    with open(os.path.join(a.out, "TRAINING.txt"), "w") as f:
        f.write("Trained by reference-impls/train_demo.py: %d steps, batch %d x %d bytes, final loss %.3f.\n"
                "Text: docstrings of Python %s's standard library. Tokens: bytes 0-255, BOS=256, EOS=257, PAD=258.\n"
                "Greedy continuation of %r: %r\n" % (a.steps, a.batch, a.seq, loss.item(), sys.version.split()[0], prompt.decode(), text))


if __name__ == "__main__":
    main()
