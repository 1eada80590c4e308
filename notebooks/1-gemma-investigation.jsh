//md # 1. The Gemma investigation, replayed on the shipped model
//md When Gemma was released, its implementations disagreed in four small ways: exact vs tanh GELU, RoPE angles computed in bfloat16, the (1+w) RMSNorm cast at the wrong moment, and the sqrt(hidden) embedding normaliser rounded to bfloat16 (transformers PR 29402 and 29285; Unsloth's "Fixing all Gemma bugs"). Each bug was found by hand, one line per fix on a per-layer error chart. This walkthrough does the same with modeldiff on the small Gemma-family model that ships with it, against traces HF transformers made of that model on an H200 with each bug planted.
import modeldiff.demo.*;
import modeldiff.model.*;
import modeldiff.forward.*;
import modeldiff.trace.*;
import modeldiff.hunt.*;
import modeldiff.numeric.*;
import modeldiff.compare.*;
import modeldiff.report.*;
import modeldiff.notebook.Nb;
import java.nio.file.*;
Path dir = DemoAssets.extract(Nb.tempDir("nb-gemma"));
Model model = Model.open(dir.resolve("model"));
Path traces = dir.resolve("traces");
System.out.println(model.config.modelType + ": " + model.config.numLayers + " layers, hidden " + model.config.hiddenSize + ", activation " + model.config.activationName);
//md ## Exact vs tanh GELU
//md How far apart are the two functions? Small, but not nothing: at bf16 resolution some activations round differently.
var ops = OpsComparison.compare(Activation.GELU_EXACT, Activation.GELU_TANH, -10, 10);
System.out.printf("max |gelu_exact - gelu_tanh| = %.2e at x = %.2f; integral of |difference| = %.2e%n", ops.maxAbsDiff(), ops.argMax(), ops.integralAbsDiff());
//md A trace from "another implementation" that uses exact GELU. Against the float64 reference both it and the clean HF bf16 run look like ordinary bf16 noise; against lowp:bf16, which rounds where PyTorch rounds, the hunt names the cause.
Trace suspect = TraceFiles.read(traces.resolve(DemoAssets.GELU_BUG));
Hunt.Result gelu = Hunt.run(model, suspect, null, null, s -> { });
System.out.println(gelu.sentence());
System.out.printf("%d runs, %.1f forwards' time%n", gelu.runs(), gelu.costInForwards());
//md The chart of that hunt, one line per tried fix set (error of our pass with the fixes against the suspect trace, per layer): the chosen set drops to the floor.
Nb.show(Charts.layerChart(HuntReport.chartComparison(gelu, "suspect", suspect)));
//md ## RoPE angles in bfloat16
//md bfloat16 has 8 significant bits: above 4096, positions are multiples of 32 apart, so 8189, 8190 and 8191 all become 8192, and every rotary angle computed from them is wrong.
for (float p : new float[]{8189, 8190, 8191, 8192}) System.out.println((int) p + " -> " + (int) Precision.BF16.round(p));
Trace rope = TraceFiles.read(traces.resolve(DemoAssets.ROPE_BUG));
Hunt.Result ropeHunt = Hunt.run(model, rope, null, null, s -> { });
System.out.println("positions " + rope.positionOffset() + "+: " + ropeHunt.sentence());
//md ## The (1+w) RMSNorm cast
//md Llama computes w * x̂.to(bf16); Gemma computes (x̂ * (1 + w)).to(bf16). A Gemma implementation that casts first differs only by rounding, which is why it needs a faithful bf16 pass to see.
Trace norm = TraceFiles.read(traces.resolve(DemoAssets.NORM_BUG));
Hunt.Result normHunt = Hunt.run(model, norm, null, null, s -> { });
System.out.println(normHunt.sentence());
//md ## The embedding normaliser
//md Gemma multiplies embeddings by sqrt(hidden) as a tensor of the activation dtype, so the constant itself is rounded. For Gemma 7B, sqrt(3072) = 55.4256 becomes 55.5.
System.out.println("sqrt(3072) = " + Math.sqrt(3072) + " -> bf16 " + Precision.BF16.round(Math.sqrt(3072)));
System.out.println("this model: sqrt(" + model.config.hiddenSize + ") = " + Math.sqrt(model.config.hiddenSize) + " -> bf16 " + Precision.BF16.round(Math.sqrt(model.config.hiddenSize)));
