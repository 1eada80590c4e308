"""Writes the demo model's tokenizer: byte b is id b, BOS=256, EOS=257, PAD=258 (as train_demo.py trained it).

A byte-level BPE with no merges: the ByteLevel pre-tokenizer (no split pattern) maps every byte to GPT-2's printable
stand-in character, and the vocabulary maps that character back to the byte's value. The post-processor puts BOS first,
as every training sequence began. Deterministic; no library needed.

Usage: python3 demo_tokenizer.py OUT_DIR
"""
import json
import os
import sys


def bytes_to_unicode():
    """GPT-2's byte -> printable character table (the one HF tokenizers' ByteLevel uses)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def added(i, s):
    return {"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}


def main(out):
    table = bytes_to_unicode()
    vocab = {table[b]: b for b in range(256)}
    bos = {"SpecialToken": {"id": "<bos>", "type_id": 0}}
    tok = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [added(256, "<bos>"), added(257, "<eos>"), added(258, "<pad>")],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [bos, {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [bos, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "<bos>", "type_id": 1}},
                                    {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {"<bos>": {"id": "<bos>", "ids": [256], "tokens": ["<bos>"]}}},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": False, "vocab": vocab, "merges": []},
    }
    cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>",
           "add_bos_token": True, "add_eos_token": False, "model_max_length": 8192}
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False, indent=1)
        f.write("\n")
    with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
