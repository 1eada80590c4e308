#!/usr/bin/env python3
"""Writes the malformed-input corpus: one small model folder (models/NAME/) or trace file (traces/NAME.safetensors)
per way a stranger's release can be broken, and MANIFEST.json naming each with the substring its one-line error must
contain. MalformedCorpusTest runs every case through the CLI. Re-run after changing a case:

    python3 src/test/resources/malformed/make_corpus.py

Deterministic: the same script writes the same bytes. Only the standard library is used."""
import json
import os
import shutil
import struct

ROOT = os.path.dirname(os.path.abspath(__file__))
for _sub in ("models", "traces", "outside"):
    shutil.rmtree(os.path.join(ROOT, _sub), ignore_errors=True)
CASES = []  # (kind, name, expected substring, what it checks)

# ---- a valid tiny llama: hidden 8, 1 layer, 2 heads (1 kv), head_dim 4, ffn 16, vocab 16, tied embeddings ----
H, FF, V, HD, NH, NKV = 8, 16, 16, 4, 2, 1
CONFIG = {
    "model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": H, "num_hidden_layers": 1,
    "num_attention_heads": NH, "num_key_value_heads": NKV, "head_dim": HD, "intermediate_size": FF,
    "vocab_size": V, "hidden_act": "silu", "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
    "max_position_embeddings": 64, "tie_word_embeddings": True, "bos_token_id": 1, "eos_token_id": 2,
}


def shapes():
    p = "model.layers.0."
    return [
        ("model.embed_tokens.weight", [V, H]),
        (p + "input_layernorm.weight", [H]),
        (p + "self_attn.q_proj.weight", [NH * HD, H]),
        (p + "self_attn.k_proj.weight", [NKV * HD, H]),
        (p + "self_attn.v_proj.weight", [NKV * HD, H]),
        (p + "self_attn.o_proj.weight", [H, NH * HD]),
        (p + "post_attention_layernorm.weight", [H]),
        (p + "mlp.gate_proj.weight", [FF, H]),
        (p + "mlp.up_proj.weight", [FF, H]),
        (p + "mlp.down_proj.weight", [H, FF]),
        ("model.norm.weight", [H]),
    ]


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def f32(values):
    return b"".join(struct.pack("<f", v) for v in values)


def tensors_bytes(entries):
    """entries: [(name, dtype, shape, bytes)] -> (header dict, data)"""
    header, data = {}, b""
    for name, dtype, shape, raw in entries:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    return header, data


def valid_entries():
    out = []
    for i, (name, shape) in enumerate(shapes()):
        n = numel(shape)
        vals = [1.0] * n if len(shape) == 1 else [((k * 7 + i) % 11 - 5) / 20.0 for k in range(n)]
        out.append((name, "F32", shape, f32(vals)))
    return out


def st_file(header, data, header_text=None, length=None):
    text = header_text if header_text is not None else json.dumps(header, separators=(",", ":"))
    hb = text.encode("utf-8") if isinstance(text, str) else text
    hb += b" " * ((8 - len(hb) % 8) % 8)
    return struct.pack("<Q", len(hb) if length is None else length) + hb + data


def write(path, content):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    mode = "wb" if isinstance(content, bytes) else "w"
    with open(path, mode) as f:
        f.write(content)


def model(name, expect, what, config=None, config_text=None, weights=None, files=None):
    """A model folder: config.json (dict or raw text), model.safetensors bytes (None: the valid tiny model;
    False: none), extra files."""
    d = os.path.join(ROOT, "models", name)
    if config_text is None:
        config_text = json.dumps(CONFIG if config is None else config, indent=1)
    write(os.path.join(d, "config.json"), config_text)
    if weights is None:
        weights = st_file(*tensors_bytes(valid_entries()))
    if weights is not False:
        write(os.path.join(d, "model.safetensors"), weights)
    for fname, content in (files or {}).items():
        write(os.path.join(d, fname), content)
    CASES.append(("model", name, expect, what))
    return d


def cfg(**changes):
    c = dict(CONFIG)
    for k, v in changes.items():
        if v is DELETE:
            c.pop(k, None)
        else:
            c[k] = v
    return c


DELETE = object()


def header_with(mutate):
    header, data = tensors_bytes(valid_entries())
    mutate(header)
    return header, data


# ---- safetensors header and entries ----
model("st-empty-file", "too short for safetensors", "a zero-byte weights file", weights=b"")
model("st-header-length-huge", "is impossible for a file of", "header length 2^40",
      weights=struct.pack("<Q", 1 << 40) + b"{}      ")
model("st-header-length-past-eof", "is impossible for a file of", "header length one past the end",
      weights=struct.pack("<Q", 17) + b'{"a":1}         ')
model("st-header-length-negative", "is impossible for a file of", "header length with the top bit set",
      weights=struct.pack("<Q", (1 << 64) - 8) + b"{}      ")
model("st-header-not-json", "not valid JSON", "header is not JSON", weights=st_file(None, b"", header_text="{not json"))
model("st-header-not-object", "must be a JSON object", "header is a JSON array", weights=st_file(None, b"", header_text="[1,2]"))
model("st-header-not-utf8", "not UTF-8", "header bytes are not UTF-8",
      weights=st_file(None, b"", header_text=b'{"\xff\xfe":{}}'))
model("st-header-trailing-garbage", "not valid JSON", "a second JSON value after the header object",
      weights=st_file(None, b"", header_text='{} {"x":1}'))
model("st-header-deep-nesting", "not valid JSON", "10000 nested arrays in the header",
      weights=st_file(None, b"", header_text='{"a":' + "[" * 10000 + "]" * 10000 + "}"))
model("st-unknown-dtype", "unknown dtype 'Q7'", "a dtype safetensors does not define",
      weights=st_file(*header_with(lambda h: h["model.norm.weight"].update(dtype="Q7"))))
model("st-missing-dtype", "missing dtype", "an entry without dtype",
      weights=st_file(*header_with(lambda h: h["model.norm.weight"].pop("dtype"))))
model("st-entry-not-object", "entry must be an object", "a tensor entry that is a number",
      weights=st_file(*header_with(lambda h: h.update({"model.norm.weight": 3}))))
model("st-offsets-reversed", "are reversed or negative", "data_offsets [end, begin]",
      weights=st_file(*header_with(lambda h: h["model.norm.weight"].update(
          data_offsets=list(reversed(h["model.norm.weight"]["data_offsets"]))))))
model("st-offsets-negative", "are reversed or negative", "a negative begin offset",
      weights=st_file(*header_with(lambda h: h["model.norm.weight"].update(data_offsets=[-32, 0]))))
model("st-offsets-past-end", "past the data section", "an end offset past the file",
      weights=st_file(*header_with(lambda h: h["model.norm.weight"].update(
          data_offsets=[h["model.norm.weight"]["data_offsets"][0] + 4096, h["model.norm.weight"]["data_offsets"][1] + 4096]))))
model("st-offsets-not-pair", "data_offsets must be [begin, end]", "three offsets",
      weights=st_file(*header_with(lambda h: h["model.norm.weight"].update(data_offsets=[0, 4, 8]))))
model("st-offsets-float", "data_offsets must be [begin, end]", "fractional offsets",
      weights=st_file(*header_with(lambda h: h["model.norm.weight"].update(data_offsets=[0.5, 32.5]))))


def overlap(h):
    # the final norm re-uses the first 32 bytes of the embedding
    h["model.norm.weight"]["data_offsets"] = [0, 32]


model("st-offsets-overlap", "data overlaps tensor", "two tensors sharing bytes", weights=st_file(*header_with(overlap)))


def overlap_behind_empty(h):
    # a long range, an empty tensor at its start, then a short range inside the long one: a check comparing only
    # neighbours misses it
    h["empty"] = {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}
    emb = h["model.embed_tokens.weight"]["data_offsets"]
    h["model.norm.weight"]["data_offsets"] = [emb[0] + 64, emb[0] + 96]


model("st-offsets-overlap-nested", "data overlaps tensor", "a range nested inside another, behind an empty tensor",
      weights=st_file(*header_with(overlap_behind_empty)))
model("st-shape-bytes-mismatch", "needs 64 bytes but data_offsets span 32", "shape x dtype != byte range",
      weights=st_file(*header_with(lambda h: h["model.norm.weight"].update(shape=[16]))))
model("st-shape-overflow", "overflows", "a shape whose product overflows 64 bits",
      weights=st_file(*header_with(lambda h: h["model.norm.weight"].update(shape=[4294967296, 4294967296, 16]))))
model("st-shape-overflow-bytes", "overflows", "element count fits, bytes do not",
      weights=st_file(*header_with(lambda h: h["model.norm.weight"].update(shape=[1 << 62]))))
model("st-shape-negative", "is not a non-negative integer", "a negative dimension",
      weights=st_file(*header_with(lambda h: h["model.norm.weight"].update(shape=[-8]))))
model("st-shape-float", "is not a non-negative integer", "a fractional dimension",
      weights=st_file(*header_with(lambda h: h["model.norm.weight"].update(shape=[8.0]))))
model("st-shape-string", "is not a non-negative integer", "a dimension written as a string",
      weights=st_file(*header_with(lambda h: h["model.norm.weight"].update(shape=["8"]))))
model("st-shape-missing", "missing shape", "an entry without shape",
      weights=st_file(*header_with(lambda h: h["model.norm.weight"].pop("shape"))))
_h, _d = tensors_bytes(valid_entries())
_text = json.dumps(_h, separators=(",", ":"))
_dup = '"model.norm.weight":' + json.dumps(_h["model.norm.weight"], separators=(",", ":"))
model("st-duplicate-name", "duplicate entry: 'model.norm.weight'", "the same tensor name twice",
      weights=st_file(None, _d, header_text=_text[:-1] + "," + _dup + "}"))
model("st-metadata-not-string", "__metadata__.format: value must be a string", "a non-string metadata value",
      weights=st_file(*header_with(lambda h: h.update({"__metadata__": {"format": 3}}))))
model("st-metadata-not-object", "__metadata__: must be an object of strings", "metadata that is a list",
      weights=st_file(*header_with(lambda h: h.update({"__metadata__": ["pt"]}))))


def newline_name(h):
    h["evil\nname\u001b[31m"] = {"dtype": "Q7", "shape": [1], "data_offsets": [0, 4]}


model("st-control-chars-in-name", "tensor 'evil\\nname\\u001b[31m': unknown dtype", "a name with a line break and an ANSI escape",
      weights=st_file(*header_with(newline_name)))
model("st-truncated-data", "past the data section", "a file cut short after the header",
      weights=st_file(*tensors_bytes(valid_entries()))[:-40])

# ---- tensors against the config ----
_missing = [e for e in valid_entries() if e[0] != "model.layers.0.mlp.down_proj.weight"]
model("model-missing-tensor", "tensor 'model.layers.0.mlp.down_proj.weight': missing", "a weight the family needs is absent",
      weights=st_file(*tensors_bytes(_missing)))
_wrong = [(n, t, ([NKV * HD * 2, H] if n.endswith("k_proj.weight") else s),
           (f32([0.0] * (NKV * HD * 2 * H)) if n.endswith("k_proj.weight") else b)) for n, t, s, b in valid_entries()]
model("model-wrong-shape", "shape [8, 8] but the config implies [4, 8]", "k_proj shaped for 2 kv heads, config says 1",
      weights=st_file(*tensors_bytes(_wrong)))
_int = [(n, ("I32" if n == "model.norm.weight" else t), s, b) for n, t, s, b in valid_entries()]
model("model-integer-weights", "dtype I32 cannot hold weights", "a norm weight stored as int32",
      weights=st_file(*tensors_bytes(_int)))
model("model-untied-no-head", "tensor 'lm_head.weight': missing and tie_word_embeddings is false",
      "untied embeddings without lm_head", config=cfg(tie_word_embeddings=False))
model("model-no-weights", "no model.safetensors or model.safetensors.index.json", "a config without weights", weights=False)
model("model-no-config", "config.json: missing from the model folder", "weights without a config", config_text="")
os.remove(os.path.join(ROOT, "models", "model-no-config", "config.json"))

# ---- config.json ----
model("cfg-not-json", "not valid JSON", "config.json is not JSON", config_text='{"model_type": "llama",')
model("cfg-array", "must hold a JSON object", "config.json is a list", config_text="[]")
model("cfg-trailing-garbage", "not valid JSON", "two JSON objects", config_text=json.dumps(CONFIG) + "\n{}")
model("cfg-duplicate-key", "Duplicate field 'hidden_size'", "a key given twice",
      config_text=json.dumps(CONFIG)[:-1] + ', "hidden_size": 16}')
model("cfg-no-model-type", "key 'model_type': missing; supported: ", "no model_type", config=cfg(model_type=DELETE))
model("cfg-unknown-model-type", "unsupported model type 'mamba'; supported: ", "a family modeldiff does not implement",
      config=cfg(model_type="mamba"))
model("cfg-model-type-number", "key 'model_type': missing; supported:", "model_type is a number", config=cfg(model_type=7))
model("cfg-hidden-string", "key 'hidden_size': expected an integer, got \"8\"", "a size written as a string", config=cfg(hidden_size="8"))
model("cfg-hidden-float", "key 'hidden_size': expected an integer, got 8.5", "a fractional size", config=cfg(hidden_size=8.5))
model("cfg-hidden-zero", "key 'hidden_size': must be positive, got 0", "a zero size", config=cfg(hidden_size=0))
model("cfg-layers-negative", "key 'num_hidden_layers': must be positive, got -1", "a negative layer count", config=cfg(num_hidden_layers=-1))
model("cfg-layers-huge", "key 'num_hidden_layers': 2000000000 layers; more than 4096 is refused", "a layer count that would exhaust memory",
      config=cfg(num_hidden_layers=2000000000))
model("cfg-size-beyond-int", "key 'vocab_size': expected an integer, got 99999999999", "a size past 2^31",
      config=cfg(vocab_size=99999999999))
model("cfg-missing-vocab", "key 'vocab_size': missing, and it has no default", "a required size absent", config=cfg(vocab_size=DELETE))
model("cfg-kv-heads-not-dividing", "key 'num_key_value_heads': 3 does not divide num_attention_heads 2", "GQA groups that do not divide",
      config=cfg(num_key_value_heads=3))
model("cfg-heads-not-dividing-hidden", "key 'num_attention_heads': 3 does not divide hidden_size 8 and no head_dim is given",
      "no head_dim and hidden_size % heads != 0", config=cfg(head_dim=DELETE, num_attention_heads=3, num_key_value_heads=1))
model("cfg-dims-overflow", "overflow a weight dimension", "heads x head_dim past 2^31",
      config=cfg(num_attention_heads=65536, num_key_value_heads=65536, head_dim=65536))
model("cfg-eps-string", "key 'rms_norm_eps': expected a number, got \"1e-5\"", "a number written as a string", config=cfg(rms_norm_eps="1e-5"))
model("cfg-eps-infinite", "key 'rms_norm_eps': must be finite", "a number too large for a double", config_text=json.dumps(cfg(rms_norm_eps=1.0))
      .replace('"rms_norm_eps": 1.0', '"rms_norm_eps": 1e999'))
model("cfg-eps-negative", "key 'rms_norm_eps': must be a finite non-negative number", "a negative epsilon", config=cfg(rms_norm_eps=-1e-5))
model("cfg-bool-wrong", "key 'tie_word_embeddings': expected true or false, got \"yes\"", "a flag written as a string",
      config=cfg(tie_word_embeddings="yes"))
model("cfg-unknown-activation", "key 'hidden_act': unknown activation 'swiglu9'", "an activation modeldiff does not know",
      config=cfg(hidden_act="swiglu9"))
model("cfg-rope-theta-zero", "key 'rope_theta': must be positive, got 0.0", "RoPE base 0", config=cfg(rope_theta=0))
model("cfg-rope-type-unknown", "unsupported rope type 'quantum'", "a RoPE scaling type modeldiff does not know",
      config=cfg(rope_scaling={"rope_type": "quantum", "factor": 2.0}))
model("cfg-rope-factor-missing", "rope type linear needs a positive factor", "linear scaling without a factor",
      config=cfg(rope_scaling={"rope_type": "linear"}))
model("cfg-partial-rotary-out-of-range", "key 'partial_rotary_factor': must be in (0, 1], got 1.5", "more rotary dims than head_dim",
      config=cfg(partial_rotary_factor=1.5))
model("cfg-layer-types-wrong-length", "key 'layer_types': must list one type per layer (1)", "layer_types of the wrong length",
      config=cfg(layer_types=["full_attention", "full_attention"]))
model("cfg-sliding-without-window", "key 'sliding_window': layers are sliding but the window is null", "sliding layers, no window",
      config=cfg(layer_types=["sliding_attention"], sliding_window=None))

# ---- sharded index ----
_h1, _d1 = tensors_bytes(valid_entries())
SHARD = st_file(_h1, _d1)
WEIGHT_MAP = {n: "model-00001-of-00001.safetensors" for n, _ in shapes()}


def sharded(name, expect, what, weight_map=None, index_text=None, shards=None):
    text = index_text if index_text is not None else json.dumps({"metadata": {}, "weight_map": weight_map or WEIGHT_MAP}, indent=1)
    files = {"model.safetensors.index.json": text}
    files.update(shards if shards is not None else {"model-00001-of-00001.safetensors": SHARD})
    return model(name, expect, what, weights=False, files=files)


sharded("idx-dotdot", "shard '../outside.safetensors': shard names must be plain file names", "a shard name climbing out",
        weight_map=dict(WEIGHT_MAP, **{"model.norm.weight": "../outside.safetensors"}))
sharded("idx-absolute-path", "shard '/etc/passwd': shard names must be plain file names", "an absolute shard path",
        weight_map=dict(WEIGHT_MAP, **{"model.norm.weight": "/etc/passwd"}))
sharded("idx-missing-shard", "shard 'model-00002-of-00002.safetensors': file is missing", "a shard not shipped",
        weight_map=dict(WEIGHT_MAP, **{"model.norm.weight": "model-00002-of-00002.safetensors"}))
d = sharded("idx-symlink-outside", "shard 'linked.safetensors': resolves outside the model folder", "a shard that is a link out of the folder",
            weight_map=dict(WEIGHT_MAP, **{"model.norm.weight": "linked.safetensors"}))
write(os.path.join(ROOT, "outside", "outside.safetensors"), SHARD)
os.symlink("../../outside/outside.safetensors", os.path.join(d, "linked.safetensors"))
sharded("idx-not-json", "model.safetensors.index.json: file: not valid JSON", "an index that is not JSON", index_text="{weight_map")
sharded("idx-no-weight-map", "weight_map: missing or not an object", "an index without weight_map", index_text='{"metadata": {}}')
sharded("idx-shard-name-not-string", "weight_map['model.norm.weight']: shard name must be a string", "a shard named by a number",
        weight_map=dict(WEIGHT_MAP, **{"model.norm.weight": 1}))
sharded("idx-shard-lacks-tensor", "weight_map['model.extra.weight']: shard model-00001-of-00001.safetensors has no such tensor",
        "an index naming a tensor its shard lacks", weight_map=dict(WEIGHT_MAP, **{"model.extra.weight": "model-00001-of-00001.safetensors"}))
sharded("idx-bad-shard", "model-00001-of-00001.safetensors: header: declared header length", "a shard with a broken header",
        shards={"model-00001-of-00001.safetensors": struct.pack("<Q", 1 << 40)})

# ---- traces (read by compare before any pass runs) ----
TOKENS = [1, 5, 9]


def trace(name, expect, what, meta=None, probes=None, drop_meta=(), header_text=None):
    """A trace of the llama fixture's shape (hidden 64): probes [(name, dtype, shape)]."""
    if probes is None:
        probes = [("embed", "F32", [len(TOKENS), 64]), ("logits", "F32", [len(TOKENS), 256])]
    m = {"format": "modeldiff-trace/1", "producer": "corpus", "dtype": "float32", "device": "cpu",
         "tokens": json.dumps(TOKENS), "position_offset": "0", "probes": json.dumps([p[0] for p in probes])}
    m.update(meta or {})
    for k in drop_meta:
        m.pop(k)
    entries = []
    for pname, dtype, shape in probes:
        width = {"F32": 4, "F64": 8, "I32": 4, "BF16": 2}[dtype]
        entries.append((pname, dtype, shape, b"\0" * (numel(shape) * width)))
    header, data = tensors_bytes(entries)
    header["__metadata__"] = m
    write(os.path.join(ROOT, "traces", name + ".safetensors"), st_file(header, data, header_text=header_text))
    CASES.append(("trace", name, expect, what))


trace("tr-wrong-format", "__metadata__.format: expected 'modeldiff-trace/1', got 'pt'", "a plain checkpoint, not a trace",
      meta={"format": "pt"})
trace("tr-no-format", "__metadata__.format: expected 'modeldiff-trace/1', got nothing", "no format key", drop_meta=("format",))
trace("tr-duplicate-probe", "probe 'embed': listed twice in __metadata__.probes", "the same probe named twice",
      meta={"probes": json.dumps(["embed", "logits", "embed"])})
trace("tr-probe-absent", "probe 'layers.0': listed in __metadata__.probes but absent", "a listed probe without a tensor",
      meta={"probes": json.dumps(["embed", "layers.0"])})
trace("tr-probe-int-dtype", "probe 'embed': dtype I32; traces hold F32 or F64", "a probe stored as int32",
      probes=[("embed", "I32", [3, 64])])
trace("tr-probe-bf16", "probe 'embed': dtype BF16; traces hold F32 or F64", "a probe stored as bfloat16",
      probes=[("embed", "BF16", [3, 64])])
trace("tr-rows-not-tokens", "probe 'embed': shape [4, 64] is not [3 tokens, width]", "more rows than tokens",
      probes=[("embed", "F32", [4, 64])])
trace("tr-rank-3", "probe 'embed': shape [3, 8, 8] is not [3 tokens, width]", "a probe of rank 3",
      probes=[("embed", "F32", [3, 8, 8])])
trace("tr-width-zero", "probe 'embed': width 0", "a probe with no columns", probes=[("embed", "F32", [3, 0])])
trace("tr-tokens-empty", "__metadata__.tokens: must be a non-empty JSON array of token ids", "no tokens",
      meta={"tokens": "[]"}, probes=[])
trace("tr-tokens-negative", "__metadata__.tokens: must be a non-empty JSON array of token ids", "a negative token id",
      meta={"tokens": "[1, -5, 9]"})
trace("tr-tokens-not-json", "__metadata__.tokens: must be a non-empty JSON array of token ids", "tokens that are not JSON",
      meta={"tokens": "1,5,9"})
trace("tr-tokens-strings", "__metadata__.tokens: must be a non-empty JSON array of token ids", "token ids as strings",
      meta={"tokens": '["1", "5", "9"]'})
trace("tr-tokens-missing", "__metadata__.tokens: missing", "no tokens key", drop_meta=("tokens",))
trace("tr-offset-negative", "__metadata__.position_offset: negative", "a negative position offset", meta={"position_offset": "-3"})
trace("tr-offset-not-integer", "__metadata__.position_offset: not an integer", "a fractional position offset",
      meta={"position_offset": "1.5"})
trace("tr-offset-huge", "__metadata__.position_offset: 9223372036854775807 is past", "a position offset that would overflow",
      meta={"position_offset": str((1 << 63) - 1)})
trace("tr-token-out-of-vocabulary", "__metadata__.tokens: token id 9999 at index 1 is outside the vocabulary [0, 256)",
      "a token id past the model's vocabulary", meta={"tokens": "[1, 9999, 3]"})
trace("tr-probes-not-array", "__metadata__.probes: must be a JSON array of probe names", "probes as a string",
      meta={"probes": "embed,logits"})
trace("tr-probes-missing", "__metadata__.probes: missing", "no probes key", drop_meta=("probes",))
trace("tr-dtype-missing", "__metadata__.dtype: missing", "no dtype key", drop_meta=("dtype",))
write(os.path.join(ROOT, "traces", "tr-not-safetensors.safetensors"), b"this is a text file, not a trace\n")
CASES.append(("trace", "tr-not-safetensors", "declared header length", "a text file named .safetensors"))


def main_manifest():
    cases = [{"case": n, "kind": k, "error": e, "checks": w} for k, n, e, w in CASES]
    with open(os.path.join(ROOT, "MANIFEST.json"), "w") as f:
        json.dump({"about": "Malformed inputs: each must fail with exit code 2 and one line containing 'error'. "
                            "kind model: models/CASE/ via `modeldiff trace --model`; kind trace: traces/CASE.safetensors "
                            "via `modeldiff compare --candidate`. Written by make_corpus.py.",
                   "cases": cases}, f, indent=1)
        f.write("\n")


main_manifest()
