"""Checks hf_trace.py's llama4_offset_inputs (the cache_position and masks it passes Llama 4 at a position offset)
against the masks written out by hand, without torch: the function is loaded alone and run on a numpy stand-in for the
few torch calls it makes.

Run: python3 reference-impls/test_llama4_offset.py
"""
import ast
import os
import types
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


class _T(np.ndarray):
    """An ndarray with torch's masked_fill."""

    def masked_fill(self, mask, value):
        out = np.array(self, copy=True).view(_T)
        out[np.asarray(mask)] = value
        return out


def fake_torch():
    t = types.SimpleNamespace()
    t.finfo = np.finfo
    t.zeros = lambda shape, dtype=None, device=None: np.zeros(shape, dtype=dtype).view(_T)
    return t


def load():
    tree = ast.parse(open(os.path.join(HERE, "hf_trace.py")).read())
    nodes = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "llama4_offset_inputs"]
    ns = {"torch": fake_torch()}
    exec(compile(ast.Module(nodes, []), "hf_trace.py", "exec"), ns)
    return ns["llama4_offset_inputs"]


class FakeModel:
    def __init__(self, model_type, chunk):
        self.config = types.SimpleNamespace(model_type=model_type, attention_chunk_size=chunk)

    def parameters(self):
        return iter([np.zeros(1, dtype=np.float32)])


class Llama4OffsetInputs(unittest.TestCase):
    fn = staticmethod(load())

    def run_at(self, offset, n, chunk, ctx=None):
        pos = (np.arange(offset, offset + n)[None, :]).view(_T)
        return self.fn(FakeModel("llama4_text", chunk), pos, ctx or {})

    def test_other_families_get_nothing(self):
        pos = np.arange(3, 6)[None, :]
        self.assertEqual({}, self.fn(FakeModel("llama", 8), pos, {}))

    def test_masks_follow_absolute_positions(self):
        out = self.run_at(6, 5, 4)   # positions 6..10: chunks [4, 8) and [8, 12)
        np.testing.assert_array_equal(np.arange(6, 11), out["cache_position"])
        neg = np.finfo(np.float32).min
        full = out["attention_mask"]["full_attention"][0, 0]
        chunked = out["attention_mask"]["chunked_attention"][0, 0]
        want_full = np.array([[0 if k <= q else neg for k in range(5)] for q in range(5)], dtype=np.float32)
        # query at position 6 + q sees keys at 6 + k with k <= q and (6 + k) // 4 == (6 + q) // 4
        want_chunked = np.array([[0 if k <= q and (6 + k) // 4 == (6 + q) // 4 else neg for k in range(5)]
                                 for q in range(5)], dtype=np.float32)
        np.testing.assert_array_equal(want_full, full)
        np.testing.assert_array_equal(want_chunked, chunked)
        self.assertEqual(0, chunked[2, 2])      # position 8 starts a chunk: it sees only itself
        self.assertEqual(neg, chunked[2, 1])

    def test_no_chunking_plant_gives_the_causal_mask(self):
        out = self.run_at(6, 5, 4, {"no_chunking": True})
        np.testing.assert_array_equal(out["attention_mask"]["full_attention"], out["attention_mask"]["chunked_attention"])


if __name__ == "__main__":
    unittest.main()
