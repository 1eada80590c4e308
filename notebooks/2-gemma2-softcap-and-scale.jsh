//md # 2. Gemma 2: soft-capping and the attention scale
//md Gemma 2 caps attention scores with cap·tanh(s/cap) and the final logits the same way, and scales scores by query_pre_attn_scalar^-0.5 instead of head_dim^-0.5. Early SDPA/flash paths skipped the cap (transformers PR 32865) and the 9B shipped with a scalar that did not match the original (transformers issue 31891). This walkthrough uses the tiny Gemma 2 fixture (attention cap 5, final cap 3, query_pre_attn_scalar 24 with head_dim 16) and fp32 traces HF made with each bug planted.
import modeldiff.model.*;
import modeldiff.forward.*;
import modeldiff.trace.*;
import modeldiff.hunt.*;
import modeldiff.compare.*;
import modeldiff.report.*;
import modeldiff.notebook.Nb;
import java.nio.file.*;
import java.util.*;
Path fx = Path.of("src/test/resources/fixtures/gemma2");
Model model = Model.open(fx.resolve("model"));
System.out.println("attention soft-cap " + model.config.attnSoftcap + ", final soft-cap " + model.config.finalSoftcap + ", score scale " + model.config.layers.get(0).attnScale());
//md Against the float64 reference, each planted trace diverges; the verdict names where.
for (String name : List.of("planted-attn.no_softcap-float32", "planted-logits.no_softcap-float32", "planted-attn.scale16-float32")) {
    Trace t = TraceFiles.read(fx.resolve("traces").resolve(name + ".safetensors"));
    Comparison c = CompareRunner.compare(model, new ForwardInput(t.tokens(), t.positionOffset()), ProbeLevel.ALL,
            CompareRunner.Spec.of(Implementations.create("reference")), List.of(CompareRunner.Spec.of(name, t)),
            CompareRunner.FloorMode.MEASURED, s -> { });
    System.out.println(name + ": " + c.candidates().get(0).verdict());
}
//md The hunt turns each divergence into a cause. The missing final cap changes only the logits; the attention cap and the scale change every layer from the first attention on.
for (String name : List.of("planted-attn.no_softcap-float32", "planted-logits.no_softcap-float32", "planted-attn.scale16-float32", "planted-attn.no_softcap+logits.no_softcap-bfloat16")) {
    Trace t = TraceFiles.read(fx.resolve("traces").resolve(name + ".safetensors"));
    Hunt.Result r = Hunt.run(model, t, null, null, s -> { });
    System.out.println(name + ": " + r.sentence());
}
//md The bf16 trace with both caps missing, hunted: one line per tried fix set. Only the pair brings our bf16 pass onto the target.
Trace both = TraceFiles.read(fx.resolve("traces").resolve("planted-attn.no_softcap+logits.no_softcap-bfloat16.safetensors"));
Hunt.Result pair = Hunt.run(model, both, null, null, s -> { });
Nb.show(Charts.layerChart(HuntReport.chartComparison(pair, "HF bf16, caps removed", both)));
