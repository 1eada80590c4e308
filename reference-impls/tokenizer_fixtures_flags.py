"""Second round of tokenizer fixtures: how transformers 5.x applies tokenizer_config.json's flags and special tokens.

Takes releases written by tokenizer_fixtures.py and changes only tokenizer_config.json, so that HF must rewrite the
post-processor (add_bos_token / add_eos_token set) or add a special token tokenizer.json lacks:

  bpe-add-eos        bpe, add_bos_token true, add_eos_token true        -> [BOS] text [EOS]
  bpe-no-bos         bpe, add_bos_token false                            -> no BOS although tokenizer.json adds it
  bpe-gpt2-new-bos   bpe-gpt2 (no post-processor), bos_token "<|endoftext|>" (not in tokenizer.json) and pad_token
                     "<|padding|>" (neither), add_bos_token true         -> new special ids, BOS first
  sp-bpe-flags       sp-bpe, add_bos_token true, add_eos_token true      -> both around the text, fast and slow

Each gets expected.json like the first round (fast ids from AutoTokenizer on the shared corpus, SentencePiece's own
ids where there is a tokenizer.model, chat text and ids where there is a template).

Usage (GPU box): python3 tokenizer_fixtures_flags.py --from DIR_OF_FIRST_ROUND --out DIR
"""
import argparse
import json
import os
import shutil
import sys

import tokenizer_fixtures as tf


def variant(src, dst, edit):
    shutil.copytree(src, dst)
    os.remove(os.path.join(dst, "expected.json"))
    path = os.path.join(dst, "tokenizer_config.json")
    cfg = json.load(open(path, encoding="utf-8"))
    edit(cfg)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=2, ensure_ascii=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--from", dest="src", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    import sentencepiece
    import tokenizers
    import transformers
    os.makedirs(a.out, exist_ok=True)
    strings = [json.loads(line) for line in open(os.path.join(a.src, "corpus.jsonl"), encoding="utf-8")]
    meta = {"versions": {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                         "sentencepiece": sentencepiece.__version__, "python": sys.version.split()[0]},
            "script": "reference-impls/tokenizer_fixtures_flags.py", "releases": {}}
    plans = {
        "bpe-add-eos": ("bpe", lambda c: c.update(add_bos_token=True, add_eos_token=True)),
        "bpe-no-bos": ("bpe", lambda c: c.update(add_bos_token=False)),
        "bpe-gpt2-new-bos": ("bpe-gpt2", lambda c: c.update(bos_token="<|endoftext|>", pad_token="<|padding|>", add_bos_token=True)),
        "sp-bpe-flags": ("sp-bpe", lambda c: c.update(add_bos_token=True, add_eos_token=True)),
    }
    for name, (src, edit) in plans.items():
        note = meta["releases"].setdefault(name, {"from": src})
        d = os.path.join(a.out, name)
        try:
            variant(os.path.join(a.src, src), d, edit)
            tf.dump(d, strings, meta, note)
            e = json.load(open(os.path.join(d, "expected.json"), encoding="utf-8"))
            note["ids_for_empty_string"] = e["fast"][strings.index("")]
            note["ids_for_hello"] = __import__("transformers").AutoTokenizer.from_pretrained(d).encode("Hello")
        except Exception as ex:
            note["error"] = "%s: %s" % (type(ex).__name__, ex)
        print(name, json.dumps(note), flush=True)
    with open(os.path.join(a.out, "meta.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2, ensure_ascii=False)


if __name__ == "__main__":
    main()
