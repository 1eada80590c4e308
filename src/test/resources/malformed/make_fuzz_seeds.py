#!/usr/bin/env python3
"""Seeds the fuzz tests' input directories from the malformed corpus and the fixtures (run after make_corpus.py).
Jazzer runs every file there in regression mode (plain `mvn test`), and starts from them when fuzzing."""
import hashlib
import json
import os
import random
import shutil
import struct

ROOT = os.path.dirname(os.path.abspath(__file__))
RES = os.path.dirname(ROOT)
FIX = os.path.join(RES, "fixtures")


def seed_dir(cls, method):
    d = os.path.join(RES, "modeldiff", cls[0], cls[1] + "Inputs", method)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def put(d, content, name=None):
    name = name or hashlib.sha1(content).hexdigest()[:16]
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(content)


def read(p):
    with open(p, "rb") as f:
        return f.read()


models = sorted(os.listdir(os.path.join(ROOT, "models")))

d = seed_dir(("model", "SafeTensorsFuzzTest"), "header")
put(d, read(os.path.join(ROOT, "outside", "outside.safetensors")), "valid-tiny-llama")
for m in models:
    p = os.path.join(ROOT, "models", m, "model.safetensors")
    if m.startswith("st-") and os.path.isfile(p) and os.path.getsize(p) < 100000:
        put(d, read(p), m)

d = seed_dir(("model", "ConfigFuzzTest"), "rawJson")
for f in sorted(os.listdir(FIX)):
    p = os.path.join(FIX, f, "model", "config.json")
    if os.path.isfile(p):
        put(d, read(p), "fixture-" + f)
for m in models:
    p = os.path.join(ROOT, "models", m, "config.json")
    if m.startswith("cfg-") and os.path.isfile(p):
        put(d, read(p), m)

rnd = random.Random(1)
for cls, method in ((("model", "ConfigFuzzTest"), "mutatedConfig"), (("trace", "TraceFuzzTest"), "traceMetadata")):
    d = seed_dir(cls, method)
    for i in range(12):
        put(d, bytes(rnd.randrange(256) for _ in range(rnd.choice([8, 32, 128, 512]))), "random-%02d" % i)

d = seed_dir(("trace", "TraceFuzzTest"), "traceFile")
for f in sorted(os.listdir(os.path.join(ROOT, "traces"))):
    put(d, read(os.path.join(ROOT, "traces", f)), f[:-len(".safetensors")])
# one valid trace: 2 tokens, probes embed [2,3] F32 and logits [2,2] F64
meta = {"format": "modeldiff-trace/1", "producer": "seed", "dtype": "float32", "device": "cpu", "tokens": "[1, 2]",
        "position_offset": "5", "probes": json.dumps(["embed", "logits"])}
body = struct.pack("<6f", 1, 2, 3, 4, 5, 6) + struct.pack("<4d", 0.5, -1, 2, 3)
header = {"__metadata__": meta,
          "embed": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
          "logits": {"dtype": "F64", "shape": [2, 2], "data_offsets": [24, 56]}}
hb = json.dumps(header).encode()
put(d, struct.pack("<Q", len(hb)) + hb + body, "valid-trace")
