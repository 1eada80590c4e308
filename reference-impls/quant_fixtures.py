#!/usr/bin/env python3
"""Quantized-weight fixtures for modeldiff's loader tests, written from the format specs with numpy alone (no torch,
no transformers), so the Java dequantizer is checked against an independent implementation.

Specs:
  OCP Microscaling (MX) v1.0: e2m1 elements, e8m0 shared scale, blocks of 32
    https://www.opencompute.org/documents/ocp-microscaling-formats-mx-v1-0-spec-final-pdf
  OCP 8-bit floating point (OFP8) rev 1.0: E4M3 (bias 7, no inf, S.1111.111 = NaN, max 448)
    https://www.opencompute.org/documents/ocp-8-bit-floating-point-specification-ofp8-revision-1-0-2023-12-01-pdf-1
Layouts (what a release stores and what HF transformers makes of it):
  gpt-oss MXFP4: X_blocks uint8 [E, R, G, 16] (element 2j in the low nibble of byte j, 2j+1 in the high nibble),
    X_scales uint8 [E, R, G]; HF's convert_moe_packed_tensors gives [E, R, G*32] then transpose(1, 2): [E, G*32, R]
    https://github.com/huggingface/transformers/blob/main/src/transformers/integrations/mxfp4.py
  DeepSeek-V3 fp8: W float8_e4m3fn [R, C] (or [..., R, C]), W_scale_inv float32 [ceil(R/128), ceil(C/128)],
    w = fp8 * scale_inv per tile, edge tiles ragged
    https://github.com/deepseek-ai/DeepSeek-V3/blob/main/inference/kernel.py (weight_dequant)
    https://github.com/huggingface/transformers/blob/main/src/transformers/integrations/finegrained_fp8.py

Writes src/test/resources/quant/{mxfp4,fp8,gpt_oss_mxfp4,gpt_oss_dequant,llama_fp8,llama_fp8_dequant}/ (each a model.safetensors, plus
expected.safetensors with the float64 dequantized values where a test compares values). Deterministic (fixed seed).
Run from the repository root: python3 reference-impls/quant_fixtures.py
"""
import json
import os
import shutil
import struct

import numpy as np

OUT = "src/test/resources/quant"
FIXTURE = "src/test/resources/fixtures/gpt_oss/model"
rng = np.random.default_rng(16)


# ---------------------------------------------------------------- element formats, from the specs' bit layouts

def e2m1_value(code):
    """FP4 E2M1: 1 sign, 2 exponent (bias 1), 1 mantissa bit; exponent 0 is subnormal (0.m * 2^0)."""
    s = -1.0 if code & 0b1000 else 1.0
    e = (code >> 1) & 0b11
    m = code & 1
    return s * (m * 0.5 if e == 0 else 2.0 ** (e - 1) * (1 + m * 0.5))


def e8m0_value(b):
    """E8M0: 2^(b - 127); 0xFF is NaN."""
    return float("nan") if b == 0xFF else 2.0 ** (int(b) - 127)


def e4m3_value(b):
    """OFP8 E4M3: 1 sign, 4 exponent (bias 7), 3 mantissa bits; subnormals; S.1111.111 NaN; no infinities."""
    s = -1.0 if b & 0x80 else 1.0
    e = (b >> 3) & 0xF
    m = b & 7
    if e == 0xF and m == 7:
        return float("nan")
    return s * (m / 8.0 * 2.0 ** -6 if e == 0 else (1 + m / 8.0) * 2.0 ** (e - 7))


E2M1 = np.array([e2m1_value(c) for c in range(16)])
E4M3 = np.array([e4m3_value(b) for b in range(256)])


def nearest_code(x, table):
    """Round to nearest representable value (ties to the even code: the one with mantissa bit 0), saturating."""
    finite = [(v, c) for c, v in enumerate(table) if np.isfinite(v) and not (v == 0 and np.signbit(v))]
    vals = np.array([v for v, _ in finite])
    codes = np.array([c for _, c in finite])
    out = np.empty(x.shape, dtype=np.uint8)
    flat = x.reshape(-1)
    o = out.reshape(-1)
    for i, v in enumerate(flat):
        d = np.abs(vals - v)
        best = np.flatnonzero(d == d.min())
        o[i] = min(codes[best], key=lambda c: (c & 1, c))  # tie: even mantissa
    return out


# ---------------------------------------------------------------- quantizers (per the specs)

def mx_quantize(rows):
    """rows [N, K] (K a multiple of 32) -> (codes uint8 [N, K], scale bytes uint8 [N, K/32]) per OCP MX §6.3:
    shared exponent X = floor(log2(max |v|)) - emax(e2m1)=2, elements v / 2^X rounded to e2m1, saturating at 6."""
    n, k = rows.shape
    blocks = rows.reshape(n, k // 32, 32)
    amax = np.abs(blocks).max(axis=-1)
    x = np.where(amax > 0, np.floor(np.log2(np.where(amax > 0, amax, 1.0))) - 2, -127).astype(np.int64)
    x = np.clip(x, -127, 127)
    scaled = blocks / np.ldexp(1.0, x)[..., None]
    codes = nearest_code(np.clip(scaled, -6, 6), E2M1).reshape(n, k)
    return codes, (x + 127).astype(np.uint8)


def mx_pack(codes):
    """codes [..., K] -> bytes [..., K/32, 16]: element 2j in the low nibble of byte j, 2j+1 in the high nibble."""
    lo, hi = codes[..., 0::2], codes[..., 1::2]
    packed = (lo | (hi << 4)).astype(np.uint8)
    return packed.reshape(*codes.shape[:-1], codes.shape[-1] // 32, 16)


def mx_dequant_rows(codes, scale_bytes):
    """[N, K] codes and [N, K/32] scale bytes -> float64 [N, K] from the spec tables."""
    n, k = codes.shape
    scales = np.array([[e8m0_value(b) for b in row] for row in scale_bytes])
    return E2M1[codes] * np.repeat(scales, 32, axis=1)


def mxfp4_tensor(logical):
    """A [E, K, R] weight as HF holds it -> (blocks [E, R, K/32, 16], scales [E, R, K/32], dequantized [E, K, R])."""
    e, k, r = logical.shape
    stored = np.ascontiguousarray(logical.transpose(0, 2, 1)).reshape(e * r, k)  # HF transposes dims 1, 2 back
    codes, sb = mx_quantize(stored)
    deq = mx_dequant_rows(codes, sb).reshape(e, r, k).transpose(0, 2, 1)
    return mx_pack(codes.reshape(e, r, k)), sb.reshape(e, r, k // 32), np.ascontiguousarray(deq)


def fp8_quantize(w, br=128, bc=128):
    """DeepSeek-style: per br x bc tile, scale_inv = amax / 448 (float32), fp8 = nearest E4M3 of w / scale_inv."""
    r, c = w.shape
    sr, sc = -(-r // br), -(-c // bc)
    s = np.zeros((sr, sc), dtype=np.float32)
    q = np.zeros((r, c), dtype=np.uint8)
    for i in range(sr):
        for j in range(sc):
            tile = w[i * br:(i + 1) * br, j * bc:(j + 1) * bc]
            amax = np.abs(tile).max()
            s[i, j] = np.float32(amax / 448.0) if amax > 0 else np.float32(1.0)
            q[i * br:(i + 1) * br, j * bc:(j + 1) * bc] = nearest_code(tile / np.float64(s[i, j]), E4M3)
    return q, s


def fp8_dequant(q, s, br=128, bc=128):
    r, c = q.shape
    full = np.repeat(np.repeat(s.astype(np.float64), br, axis=0), bc, axis=1)[:r, :c]
    return E4M3[q] * full


# ---------------------------------------------------------------- safetensors, written by hand

DT = {np.dtype(np.uint8): "U8", np.dtype(np.float32): "F32", np.dtype(np.float64): "F64"}


def write_safetensors(path, tensors):
    """tensors: name -> (dtype string, shape, raw bytes); written in the given order."""
    header, blobs, off = {}, [], 0
    for name, (dt, shape, raw) in tensors.items():
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def arr(a, dt=None):
    a = np.ascontiguousarray(a)
    return (dt or DT[a.dtype], a.shape, a.astype(a.dtype.newbyteorder("<")).tobytes())


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        out[name] = (t["dtype"], t["shape"], data[b:e])
    return out


def bf16_to_f64(raw, shape):
    bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
    return bits.view(np.float32).astype(np.float64).reshape(shape)


def f64_to_bf16_exact(x):
    f = x.astype(np.float32)
    assert np.array_equal(f.astype(np.float64), x), "value not exact in float32"
    bits = f.view(np.uint32)
    assert np.all(bits & 0xFFFF == 0), "value not exact in bf16"
    return ("BF16", x.shape, (bits >> 16).astype("<u2").tobytes())


def config_with(src_dir, quant):
    with open(os.path.join(src_dir, "config.json")) as f:
        cfg = json.load(f)
    if quant is not None:
        cfg["quantization_config"] = quant
    return cfg


def write_config(d, cfg):
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")


# ---------------------------------------------------------------- the fixtures

def mxfp4_values():
    """Every e2m1 code and the scale extremes (2^-127 and 2^127) appear; the rest random."""
    e, k, r = 2, 64, 6
    blocks = rng.integers(0, 256, size=(e, r, k // 32, 16), dtype=np.uint8)
    blocks[0, 0, 0, :8] = np.arange(16, dtype=np.uint8)[0::2] | (np.arange(16, dtype=np.uint8)[1::2] << 4)
    scales = rng.integers(110, 140, size=(e, r, k // 32), dtype=np.uint8)
    scales[0, 0, 0], scales[0, 0, 1], scales[1, 5, 1] = 127, 0, 254
    codes = np.empty((e, r, k), dtype=np.uint8)
    flat = blocks.reshape(e, r, k // 2)
    codes[..., 0::2] = flat & 0xF
    codes[..., 1::2] = flat >> 4
    deq = mx_dequant_rows(codes.reshape(e * r, k), scales.reshape(e * r, k // 32)).reshape(e, r, k).transpose(0, 2, 1)
    d = os.path.join(OUT, "mxfp4")
    name = "model.layers.0.mlp.experts.gate_up_proj"
    write_safetensors(os.path.join(d, "model.safetensors"), {name + "_blocks": arr(blocks), name + "_scales": arr(scales)})
    write_config(d, {"model_type": "gpt_oss", "quantization_config": {"quant_method": "mxfp4"}})
    write_safetensors(os.path.join(d, "expected.safetensors"), {name: arr(np.ascontiguousarray(deq))})


def fp8_values():
    """A ragged 2-D weight (130 x 140 in 128 x 128 tiles: scale_inv [2, 2]) quantized from known values, and a fused
    3-D expert tensor with every finite e4m3 code; expected = e4m3 value x scale_inv, exact in float64."""
    d = os.path.join(OUT, "fp8")
    w = rng.normal(0, 0.02, size=(130, 140))
    q, s = fp8_quantize(w)
    # the quantizer is sane: within half the widest e4m3 step (32 at 448) of each tile's scale
    assert np.all(np.abs(fp8_dequant(q, s) - w) <= 16 * np.repeat(np.repeat(s.astype(np.float64), 128, 0), 128, 1)[:130, :140])
    codes = np.array([b for b in range(256) if np.isfinite(E4M3[b])], dtype=np.uint8)
    experts = np.resize(codes, (2, 129, 130)).astype(np.uint8)
    es = rng.uniform(1e-4, 1e-2, size=(2, 2, 2)).astype(np.float32)
    edeq = np.stack([fp8_dequant(experts[i], es[i]) for i in range(2)])
    wn = "model.layers.0.mlp.down_proj.weight"
    en = "model.layers.0.mlp.experts.gate_up_proj"
    write_safetensors(os.path.join(d, "model.safetensors"), {
        wn: arr(q, "F8_E4M3"), wn + "_scale_inv": arr(s),
        en: arr(experts, "F8_E4M3"), en + "_scales_inv": arr(es)})
    write_config(d, {"model_type": "deepseek_v3", "quantization_config": {
        "activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8", "weight_block_size": [128, 128]}})
    write_safetensors(os.path.join(d, "expected.safetensors"), {
        wn: arr(fp8_dequant(q, s)), en: arr(edeq)})


def gpt_oss_mxfp4():
    """The gpt_oss fixture with its experts quantized to MXFP4 (as the release ships them), and a bf16 copy holding
    the numpy-dequantized experts: a forward pass on the two must be identical."""
    src = read_safetensors(os.path.join(FIXTURE, "model.safetensors"))
    quant, plain = {}, {}
    for name, t in src.items():
        if name.endswith("experts.gate_up_proj") or name.endswith("experts.down_proj"):
            blocks, scales, deq = mxfp4_tensor(bf16_to_f64(t[2], t[1]))
            quant[name + "_blocks"] = arr(blocks)
            quant[name + "_scales"] = arr(scales)
            plain[name] = f64_to_bf16_exact(deq)
        else:
            quant[name] = t
            plain[name] = t
    qd, pd = os.path.join(OUT, "gpt_oss_mxfp4"), os.path.join(OUT, "gpt_oss_dequant")
    write_safetensors(os.path.join(qd, "model.safetensors"), quant)
    write_safetensors(os.path.join(pd, "model.safetensors"), plain)
    write_config(qd, config_with(FIXTURE, {"quant_method": "mxfp4", "modules_to_not_convert": [
        "model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"]}))
    write_config(pd, config_with(FIXTURE, None))


def llama_fp8():
    """The llama fixture with every linear layer stored fp8 in 32 x 48 blocks (ragged: 64 and 128 columns are not
    multiples of 48) as DeepSeek-V3 ships its weights, and an F64 copy holding numpy's dequantized values: a forward
    pass on the two must be identical in every pass (an fp8 weight is exact in float64 and rounds as HF's float32
    product when a pass rounds weights)."""
    br, bc = 32, 48
    src_dir = "src/test/resources/fixtures/llama/model"
    src = read_safetensors(os.path.join(src_dir, "model.safetensors"))
    quant, plain = {}, {}
    for name, t in src.items():
        if ".layers." in name and name.endswith("_proj.weight"):
            q, s = fp8_quantize(bf16_to_f64(t[2], t[1]), br, bc)
            quant[name] = arr(q, "F8_E4M3")
            quant[name + "_scale_inv"] = arr(s)
            plain[name] = arr(fp8_dequant(q, s, br, bc))
        else:
            quant[name] = t
            plain[name] = t
    qd, pd = os.path.join(OUT, "llama_fp8"), os.path.join(OUT, "llama_fp8_dequant")
    write_safetensors(os.path.join(qd, "model.safetensors"), quant)
    write_safetensors(os.path.join(pd, "model.safetensors"), plain)
    write_config(qd, config_with(src_dir, {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                                          "weight_block_size": [br, bc], "modules_to_not_convert": ["lm_head"]}))
    write_config(pd, config_with(src_dir, None))


if __name__ == "__main__":
    mxfp4_values()
    fp8_values()
    gpt_oss_mxfp4()
    llama_fp8()
    for root, _, files in sorted(os.walk(OUT)):
        for f in sorted(files):
            p = os.path.join(root, f)
            print(p, os.path.getsize(p))
