"""Checks hf_trace.py's refusal of plants that change nothing, on the committed fixtures' configs.

Run: python3 reference-impls/test_noop_plants.py   (no torch needed: only the plant-checking functions are loaded)
"""
import ast
import json
import os
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "src", "test", "resources", "fixtures")


def load_plant_checks():
    """The plant-checking definitions of hf_trace.py, without importing torch."""
    tree = ast.parse(open(os.path.join(HERE, "hf_trace.py")).read())
    wanted = {"PLANT_CONFIG_KEYS", "config_value", "reject_noop_plants"}
    nodes = [n for n in tree.body if (isinstance(n, ast.FunctionDef) and n.name in wanted)
             or (isinstance(n, ast.Assign) and any(getattr(t, "id", None) in wanted for t in n.targets))]
    ns = {"os": os, "json": json}
    exec(compile(ast.Module(nodes, []), "hf_trace.py", "exec"), ns)
    return ns["reject_noop_plants"]


class NoopPlants(unittest.TestCase):
    reject = staticmethod(load_plant_checks())

    def model(self, name):
        return os.path.join(FIXTURES, name, "model")

    def test_a_plant_equal_to_the_config_is_refused(self):
        # mistral's rms_norm_eps is 1e-5, its sliding_window 5; qwen3's rope_theta 1e6; gemma2's query_pre_attn_scalar 24
        for model, plant in [("mistral", "norm.eps=1e-5"), ("mistral", "window=5"), ("qwen3", "rope.theta=1000000"),
                             ("gemma2", "attn.scalar=24"), ("llama", "rope.partial=1.0")]:
            with self.assertRaises(ValueError, msg=model + " " + plant):
                self.reject(self.model(model), [plant])

    def test_plants_that_change_the_config_pass(self):
        for model, plants in [("mistral", ["window=4"]), ("qwen2", ["rope.theta=10000", "norm.eps=1e-5"]),
                              ("qwen3", ["rope.theta=10000"]), ("phi3", ["rope.partial=1.0"]), ("gemma2", ["attn.scalar=16"]),
                              ("gemma", ["act.gelu_exact"])]:
            self.reject(self.model(model), plants)


if __name__ == "__main__":
    unittest.main()
