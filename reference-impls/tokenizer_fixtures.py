"""Tokenizer fixtures for modeldiff's tokenizer tests, with HF transformers as the truth.

Trains small tokenizers here (no download: the text is the standard library's docstrings plus the
multilingual fragments below), writes each as a release folder the way HF saves it, and dumps what HF
and SentencePiece make of a deterministic corpus of strings:

  OUT/corpus.jsonl                 one JSON string per line (the `modeldiff tokenize --jsonl` input)
  OUT/<release>/tokenizer.json ...  the release's tokenizer files
  OUT/<release>/expected.json      {"fast": ids per corpus line from AutoTokenizer(release).encode(text),
                                    "slow": SentencePieceProcessor(tokenizer.model).encode(text) or null,
                                    "chats": apply_chat_template text and ids, ...}
  OUT/meta.json                    library versions, per-release notes (fast vs slow agreement, errors)

Releases:
  bpe               byte-level BPE, Llama-3 split pattern, BOS by post-processor, ChatML template (no BOS) -- clean
  bpe-bos-doubled   same tokenizer.json, Llama-3 style template that writes bos_token  -- planted tokenizer.bos_doubled
  bpe-gpt2          byte-level BPE trained with GPT-2's pattern and declaring it        -- clean for pretokenizer_regex
  bpe-regex-mismatch  bpe's vocabulary with GPT-2's pattern declared                    -- planted tokenizer.pretokenizer_regex
  sp-bpe            SentencePiece BPE, byte fallback, converted by HF (LlamaTokenizer)
  sp-unigram        SentencePiece unigram, byte fallback, converted by HF (LlamaTokenizer)
  sp-unigram-generic  the same unigram model converted through the generic TokenizersBackend path

Usage (GPU box, no network):  python3 tokenizer_fixtures.py --out DIR [--demo DIR_WITH_DEMO_TOKENIZER]
"""
import argparse
import ast
import copy
import io
import json
import os
import random
import shutil
import sys
import sysconfig
import traceback

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                  r"\s*[\r\n]+|\s+(?!\S)|\s+")

FRAGMENTS = {
    "code": ["def f(x):", "    return x + 1", "for i in range(10):", "if (a && b) { return -1; }", "x = [1, 2, 3]",
             "print(\"hello, world\")", "import numpy as np", "class Foo(Bar):", "self.assertEqual(a, b)",
             "#include <stdio.h>", "fn main() -> i32 {", "let v: Vec<u8> = vec![];", "SELECT * FROM t WHERE id=42;",
             "a->b.c[0]++", "{'key': \"value\"}", "x**2 // 3 % 7", "lambda y: y*2", "@decorator", "});"],
    "english": ["The quick brown fox jumps over the lazy dog.", "Return the number of items.", "It's", "they'll",
                "I'm sure we've", "Hello", "hello", "HELLO", "don't", "The model's tokenizer is broken.",
                "Mr. Smith went to Washington.", "e.g.", "state-of-the-art", "co-operate"],
    "whitespace": [" ", "  ", "   ", "    ", "\t", "\t\t", "\n", "\n\n", "\r\n", " \n ", "\n    ", "\t\n\t", "        "],
    "digits": ["0", "7", "42", "123", "1234", "12345", "3.14159", "1,000,000", "2026-12-06", "0x1F", "1e-5", "99%",
               "-17", "+3", "00012"],
    "cjk": ["日本語", "中文分词", "한국어", "東京タワー", "漢字かなカナ", "你好，世界！", "テスト"],
    "arabic": ["مرحبا بالعالم", "العربية", "كتاب", "السلام عليكم"],
    "devanagari": ["नमस्ते", "हिन्दी", "भारत", "संस्कृतम्"],
    "emoji": ["🙂", "👍🏽", "👩‍💻", "👨‍👩‍👧‍👦", "🏳️‍🌈", "❤️", "🇫🇷", "🙂‍↔️"],
    "accents": ["café", "naïve", "Zürich", "façade", "résumé", "Ångström", "ﬁ", "Ⅻ", "①", "ｆｕｌｌ"],
    "special": ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<s>", "</s>", "<unk>", "<|im_start|>",
                "<|endoftext|>", "<pad>", "[INST]"],
}
SEPARATORS = ["", " ", " ", " ", "\n", "\t", "  ", "\n\n", ". ", ", "]


def corpus_strings(n=2000, seed=17):
    """A deterministic, varied list of strings: every fragment alone, then random mixes."""
    rng = random.Random(seed)
    out = [""]
    cats = sorted(FRAGMENTS)
    for c in cats:
        out.extend(FRAGMENTS[c])
    while len(out) < n:
        k = rng.randint(1, 4)
        parts = []
        for _ in range(k):
            c = rng.choice(cats)
            if c == "digits" and rng.random() < 0.5:
                parts.append(str(rng.randint(0, 10 ** rng.randint(1, 9))))
            else:
                parts.append(rng.choice(FRAGMENTS[c]))
            parts.append(rng.choice(SEPARATORS))
        s = "".join(parts[:-1])
        r = rng.random()
        if r < 0.1:
            s = " " + s
        elif r < 0.2:
            s = s + " "
        elif r < 0.25:
            s = "  " + s + "\n"
        out.append(s)
    return out[:n]


def training_lines(limit_bytes=1_500_000):
    """Standard-library docstrings and code lines (fixed order) plus every fragment, repeated."""
    root = sysconfig.get_paths()["stdlib"]
    lines, total = [], 0
    for dirpath, dirnames, filenames in sorted(os.walk(root)):
        dirnames.sort()
        if "test" in dirpath.split(os.sep) or "site-packages" in dirpath:
            continue
        for fn in sorted(filenames):
            if not fn.endswith(".py") or total > limit_bytes:
                continue
            try:
                src = open(os.path.join(dirpath, fn), encoding="utf-8").read()
                tree = ast.parse(src)
            except Exception:
                continue
            for node in ast.walk(tree):
                if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)):
                    d = ast.get_docstring(node)
                    if d:
                        lines.append(d)
                        total += len(d)
            code = src[:4000]
            lines.append(code)
            total += len(code)
    for rep in range(30):
        for c in sorted(FRAGMENTS):
            if c != "special":
                lines.append(" ".join(FRAGMENTS[c]))
    return lines


CHATML = ("{%- for message in messages %}"
          "{%- if message['role'] not in ['system', 'user', 'assistant'] %}{{ raise_exception('unknown role ' + message['role']) }}{%- endif %}"
          "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] | trim + '<|im_end|>\\n' }}"
          "{%- endfor %}"
          "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}")
LLAMA3 = ("{{- bos_token }}"
          "{%- if messages[0]['role'] == 'system' %}{%- set system = messages[0]['content'] | trim %}{%- set rest = messages[1:] %}"
          "{%- else %}{%- set system = 'You are helpful.' %}{%- set rest = messages %}{%- endif %}"
          "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' + system + '<|eot_id|>' }}"
          "{%- for message in rest %}"
          "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
          "{%- endfor %}"
          "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}")
ZEPHYR = ("{% for message in messages %}\n"
          "{% if message['role'] == 'user' %}\n{{ '<|user|>\\n' + message['content'] + eos_token }}\n"
          "{% elif message['role'] == 'system' %}\n{{ '<|system|>\\n' + message['content'] + eos_token }}\n"
          "{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\\n'  + message['content'] + eos_token }}\n"
          "{% endif %}\n"
          "{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n"
          "{% endfor %}")
CHATS = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "def f(x):\n    return x"},
     {"role": "assistant", "content": "It returns x."}, {"role": "user", "content": "  spaces  and\ttabs "}],
    [{"role": "user", "content": "日本語とالعربية 🙂‍↔️ नमस्ते"}],
    [{"role": "user", "content": "say <|eot_id|> and </s> and <s> now"}, {"role": "assistant", "content": "<|im_end|> 42"}],
]

BPE_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
                "<|im_start|>", "<|im_end|>", "<|reserved_0|>", "<|reserved_1|>"]


def train_bpe(lines, pattern):
    from tokenizers import Tokenizer, Regex, decoders, models, pre_tokenizers, processors, trainers
    tok = Tokenizer(models.BPE())
    if pattern == "gpt2":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
                                                     pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1500, min_frequency=2, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(lines, trainer)
    return tok


def write_bpe_release(d, tok, post_bos, config):
    from tokenizers import AddedToken, processors
    os.makedirs(d, exist_ok=True)
    t = copy.deepcopy(tok)
    t.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in BPE_SPECIALS])
    if post_bos:
        bos = t.token_to_id("<|begin_of_text|>")
        t.post_processor = processors.Sequence([processors.ByteLevel(trim_offsets=False),
                                                processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                                                              special_tokens=[("<|begin_of_text|>", bos)])])
    t.save(os.path.join(d, "tokenizer.json"))
    with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2, ensure_ascii=False)


def train_sp(lines, model_type):
    import sentencepiece as spm
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=buf, vocab_size=1200, model_type=model_type,
                                   byte_fallback=True, character_coverage=0.9995, input_sentence_size=200000,
                                   shuffle_input_sentence=False, max_sentence_length=8000, num_threads=8,
                                   unk_id=0, bos_id=1, eos_id=2, pad_id=-1, minloglevel=2)
    return buf.getvalue()


def convert_sp(d, model_bytes, tokenizer_class, template):
    """tokenizer.model + tokenizer_config.json -> AutoTokenizer (HF's conversion) -> save_pretrained -> the release."""
    from transformers import AutoTokenizer
    src = d + ".src"
    os.makedirs(src, exist_ok=True)
    with open(os.path.join(src, "tokenizer.model"), "wb") as f:
        f.write(model_bytes)
    cfg = {"tokenizer_class": tokenizer_class, "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
           "add_bos_token": True, "add_eos_token": False, "chat_template": template}
    with open(os.path.join(src, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    tok = AutoTokenizer.from_pretrained(src)
    tok.save_pretrained(d)
    shutil.copy(os.path.join(src, "tokenizer.model"), os.path.join(d, "tokenizer.model"))
    shutil.rmtree(src)
    return type(tok).__name__


def dump(d, strings, meta, note):
    """HF's fast ids (AutoTokenizer of the saved release), SentencePiece's own ids, and the chat template's output."""
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer
    try:
        tok = AutoTokenizer.from_pretrained(d)
    except Exception as e:  # a class name this transformers lacks: say so, and load through the generic class
        note["autotokenizer_error"] = "%s: %s" % (type(e).__name__, e)
        cfg_path = os.path.join(d, "tokenizer_config.json")
        cfg = json.load(open(cfg_path, encoding="utf-8"))
        cfg["tokenizer_class"] = "TokenizersBackend"
        with open(cfg_path, "w", encoding="utf-8") as f:
            json.dump(cfg, f, indent=2, ensure_ascii=False)
        tok = AutoTokenizer.from_pretrained(d)
    note["class"] = type(tok).__name__
    note["files"] = sorted(os.listdir(d))
    fast = [tok.encode(s) for s in strings]
    raw = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    raw_ids = [e.ids for e in raw.encode_batch(strings)]
    note["raw_tokenizer_json_differs_from_autotokenizer"] = sum(a != b for a, b in zip(fast, raw_ids))
    exp = {"fast": fast, "slow": None, "chats": [], "bos_token": tok.bos_token, "eos_token": tok.eos_token,
           "add_bos_token": bool(getattr(tok, "add_bos_token", False)), "add_eos_token": bool(getattr(tok, "add_eos_token", False))}
    spm_path = os.path.join(d, "tokenizer.model")
    if os.path.exists(spm_path):
        import sentencepiece as spm
        sp = spm.SentencePieceProcessor(model_file=spm_path)
        exp["slow"] = [sp.encode(s) for s in strings]
        bos = [sp.bos_id()] if exp["add_bos_token"] else []
        eos = [sp.eos_id()] if exp["add_eos_token"] else []
        note["fast_vs_slow_agree"] = sum(f == bos + s + eos for f, s in zip(fast, exp["slow"]))
        note["strings"] = len(strings)
    if tok.chat_template:
        for msgs in CHATS:
            for agp in (False, True):
                text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=agp)
                ids = tok.apply_chat_template(msgs, tokenize=True, add_generation_prompt=agp)
                if not isinstance(ids, list):
                    ids = ids["input_ids"]
                exp["chats"].append({"messages": msgs, "add_generation_prompt": agp, "text": text, "ids": list(ids),
                                     "encode_rendered": tok.encode(text),
                                     "encode_rendered_no_special": tok.encode(text, add_special_tokens=False)})
    with open(os.path.join(d, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(exp, f, ensure_ascii=False, separators=(",", ":"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--demo", help="folder holding the demo model's tokenizer.json / tokenizer_config.json")
    a = ap.parse_args()
    import sentencepiece
    import tokenizers
    import transformers
    os.makedirs(a.out, exist_ok=True)
    meta = {"versions": {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                         "sentencepiece": sentencepiece.__version__, "python": sys.version.split()[0]},
            "script": "reference-impls/tokenizer_fixtures.py", "releases": {}}
    strings = corpus_strings()
    with open(os.path.join(a.out, "corpus.jsonl"), "w", encoding="utf-8") as f:
        for s in strings:
            f.write(json.dumps(s, ensure_ascii=False) + "\n")
    lines = training_lines()
    print("training lines %d, corpus strings %d" % (len(lines), len(strings)), flush=True)

    def release(name, build):
        note = meta["releases"].setdefault(name, {})
        try:
            build(os.path.join(a.out, name), note)
            dump(os.path.join(a.out, name), strings, meta, note)
        except Exception as e:
            note["error"] = "%s: %s" % (type(e).__name__, e)
            traceback.print_exc()
        print(name, json.dumps(note), flush=True)

    base = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>",
            "pad_token": "<|reserved_0|>", "model_max_length": 8192}
    state = {}

    def bpe(d, note):
        state["llama3"] = train_bpe(lines, "llama3")
        write_bpe_release(d, state["llama3"], True, dict(base, chat_template=CHATML))

    def bpe_bos_doubled(d, note):
        write_bpe_release(d, state["llama3"], True, dict(base, chat_template=LLAMA3))

    def bpe_gpt2(d, note):
        cfg = dict(base, bos_token="<|end_of_text|>")
        write_bpe_release(d, train_bpe(lines, "gpt2"), False, cfg)

    def bpe_regex_mismatch(d, note):
        from tokenizers import pre_tokenizers
        t = copy.deepcopy(state["llama3"])
        t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        write_bpe_release(d, t, True, dict(base))

    def sp(model_type, cls, template):
        def build(d, note):
            key = "sp-" + model_type
            if key not in state:
                state[key] = train_sp(lines, model_type)
            note["converted_by"] = convert_sp(d, state[key], cls, template)
        return build

    release("bpe", bpe)
    release("bpe-bos-doubled", bpe_bos_doubled)
    release("bpe-gpt2", bpe_gpt2)
    release("bpe-regex-mismatch", bpe_regex_mismatch)
    release("sp-bpe", sp("bpe", "LlamaTokenizer", ZEPHYR))
    release("sp-unigram", sp("unigram", "LlamaTokenizer", ZEPHYR))
    release("sp-unigram-generic", sp("unigram", "TokenizersBackend", None))

    if a.demo:
        from tokenizers import Tokenizer
        from transformers import AutoTokenizer
        note = meta["demo"] = {}
        try:
            raw = Tokenizer.from_file(os.path.join(a.demo, "tokenizer.json"))
            auto = AutoTokenizer.from_pretrained(a.demo)
            bad = []
            for s in strings:
                want = [256] + list(s.encode("utf-8"))
                if raw.encode(s).ids != want or auto.encode(s) != want:
                    bad.append(s)
            note["strings"] = len(strings)
            note["byte_ids_mismatch"] = len(bad)
            note["first_mismatches"] = bad[:5]
            note["decode_roundtrip_failures"] = sum(auto.decode(auto.encode(s), skip_special_tokens=True) != s for s in strings)
        except Exception as e:
            note["error"] = "%s: %s" % (type(e).__name__, e)
            traceback.print_exc()
        print("demo", json.dumps(note), flush=True)
    with open(os.path.join(a.out, "meta.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2, ensure_ascii=False)


if __name__ == "__main__":
    main()
