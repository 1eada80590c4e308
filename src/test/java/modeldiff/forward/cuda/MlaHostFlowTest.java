package modeldiff.forward.cuda;

import modeldiff.compare.Metrics;
import modeldiff.forward.Fixes;
import modeldiff.forward.ForwardInput;
import modeldiff.forward.ProbeLevel;
import modeldiff.forward.TinyDeepseek;
import modeldiff.forward.cuda.DeviceKernels.Act;
import modeldiff.forward.cuda.DeviceKernels.Linear;
import modeldiff.forward.cuda.DeviceKernels.Norm;
import modeldiff.forward.cuda.DeviceKernels.RopeArgs;
import modeldiff.forward.reference.ReferencePass;
import modeldiff.model.LayerSpec;
import modeldiff.model.LinearRef;
import modeldiff.model.MlaWeights;
import modeldiff.model.Model;
import modeldiff.model.ModelConfig;
import modeldiff.model.NormRef;
import modeldiff.model.RopeSpec;
import modeldiff.trace.Trace;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The cuda pass's MLA data flow ({@link CudaAttentionVariants#mla}: latent projections, q/k assembly with the shared
 * k_rope head, rope_interleave, padding to one head width and compaction, the MLA scale) run on {@link HostKernels}
 * (a host emulation of the kernels' contracts, fp32) from the float64 reference's attn_norm, and held to the
 * reference's q, k, v and attn probes at every layer: ≤ −5.5 log-L2 (fp32 arithmetic against float64). No GPU: the
 * kernels' arithmetic is checked on the GPU by KernelChecks; this checks what the pass asks of them.
 */
class MlaHostFlowTest {
    @TempDir
    Path tmp;

    @Test
    void qLoraInterleaveYarnPaddedTo32() {
        var d = new TinyDeepseek.Dims(64, 4, 24, 32, 16, 8, 16, 3, 40, 96, 8, 2, 32, 4, 2, 1);
        var c = TinyDeepseek.config(d, true, 1e-6);
        TinyDeepseek.yarn(c, 4.0, 64);
        check(Model.open(TinyDeepseek.write(tmp.resolve("a"), c, d, 7)), 21, 0, Fixes.NONE);
    }

    @Test
    void qProjHalvesAtAnOffsetVWiderThanQk() {
        var d = new TinyDeepseek.Dims(64, 3, 0, 32, 24, 16, 48, 2, 40, 96, 8, 2, 32, 4, 2, 2);   // qk 40, v 48 → 64
        var c = TinyDeepseek.config(d, false, 1e-6);
        TinyDeepseek.yarn(c, 4.0, 64);
        check(Model.open(TinyDeepseek.write(tmp.resolve("b"), c, d, 9)), 17, 5, Fixes.NONE);
    }

    @Test
    void releaseWidths192NoPaddingOfQk() {
        var d = new TinyDeepseek.Dims(96, 2, 32, 48, 128, 64, 128, 1, 40, 96, 8, 2, 32, 4, 2, 1);
        check(Model.open(TinyDeepseek.write(tmp.resolve("c"), TinyDeepseek.config(d, true, 1e-6), d, 11)), 9, 0, Fixes.NONE);
    }

    /** The fixes that act through MLA's scale and RoPE are the reference's too: same flow, same probes. */
    @Test
    void yarnFixes() {
        var d = new TinyDeepseek.Dims(64, 4, 24, 32, 16, 8, 16, 1, 40, 96, 8, 2, 32, 4, 2, 1);
        var c = TinyDeepseek.config(d, true, 1e-6);
        TinyDeepseek.yarn(c, 4.0, 64);
        Model m = Model.open(TinyDeepseek.write(tmp.resolve("d"), c, d, 3));
        check(m, 12, 70, Fixes.parse("attn.no_yarn_mscale"));
        check(m, 12, 70, Fixes.parse("rope.yarn_truncate=false"));
    }

    private static void check(Model m, int T, int offset, Fixes fixes) {
        ModelConfig c = m.config;
        int[] tokens = new int[T];
        for (int t = 0; t < T; t++) tokens[t] = (7 * t + 3) % c.vocabSize;
        Trace ref = new ReferencePass(fixes).run(m, new ForwardInput(tokens, offset), ProbeLevel.ALL);
        HostKernels hk = new HostKernels();
        CudaAttentionVariants.Buffers b = new CudaAttentionVariants.Buffers(c, T, false, hk);
        assertEquals(CudaAttentionVariants.mlaWidth(c.mla.qkHeadDim(), c.mla.vHeadDim()), b.P);
        for (int i = 0; i < c.numLayers; i++) {
            LayerSpec spec = c.layers.get(i);
            String pre = "layers." + i + ".";
            Map<String, double[]> got = new HashMap<>();
            var step = new CudaAttentionVariants.MlaStep(hk, T, false, CudaAttentionVariants.latentNorm(m.family, fixes, false),
                    rope(hk, fixes.layerRope(spec, c), c, T, offset), CudaAttentionVariants.mlaAttnArgs(c, spec, fixes, T, b, false),
                    (name, buf, cols) -> got.put(name, widen(hk.get(buf.f32()), T * cols)));
            Act a = Act.of(hk.put(ref.probe(pre + "attn_norm").data()));
            Act att = CudaAttentionVariants.mla(step, weights(hk, m.mla(i)), a, b, c.mla, c.numHeads, pre);
            got.put(pre + "attn", widen(hk.get(att.f32()), T * c.mla.vDim(c.numHeads)));
            for (String p : new String[]{"q", "k", "v", "attn"}) {
                double[] r = ref.probe(pre + p).data();
                assertTrue(got.containsKey(pre + p), pre + p + " recorded");
                double e = Metrics.logL2(r, got.get(pre + p));
                assertTrue(e <= -5.5, pre + p + " " + fixes.ids() + ": log-L2 " + e);
            }
        }
    }

    /** The layer's RoPE as the pass uploads it (fp32 table of lowp.RopeTable), rotated in halves (MLA de-interleaves). */
    private static RopeArgs rope(HostKernels hk, RopeSpec r, ModelConfig c, int T, int pos0) {
        if (r == null) return null;
        int rot = modeldiff.numeric.Rope.rotaryDim(c.headDim, r.partialRotaryFactor());
        var table = modeldiff.forward.lowp.RopeTable.of(r, rot, (long) pos0 + T);
        return new RopeArgs(c.headDim, table.invFreq().length, hk.put(table.invFreq().clone()), pos0,
                (float) table.attentionScaling(), false, false, false, false);
    }

    private static CudaAttentionVariants.MlaLayer weights(HostKernels hk, MlaWeights w) {
        return new CudaAttentionVariants.MlaLayer(w.qA() == null ? null : linear(hk, w.qA()), norm(hk, w.qANorm()),
                linear(hk, w.qNope()), linear(hk, w.qRope()), linear(hk, w.kvA()), linear(hk, w.kPe()), norm(hk, w.kvANorm()),
                linear(hk, w.kNope()), linear(hk, w.v()));
    }

    private static Linear linear(HostKernels hk, LinearRef r) {
        return new Linear(hk.put(r.loadWeight()), hk.put(r.loadBias()), r.out(), r.in(), false);
    }

    private static Norm norm(HostKernels hk, NormRef r) {
        return r == null ? null : new Norm(hk.put(r.loadWeight()), null, (int) r.weight().elementCount());
    }

    private static double[] widen(float[] f, int n) {
        double[] d = new double[n];
        for (int i = 0; i < n; i++) d[i] = f[i];
        return d;
    }
}
