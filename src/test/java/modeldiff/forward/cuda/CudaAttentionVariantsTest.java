package modeldiff.forward.cuda;

import modeldiff.forward.Fixes;
import modeldiff.forward.ForwardInput;
import modeldiff.forward.ProbeLevel;
import modeldiff.model.BadInputException;
import modeldiff.model.Family;
import modeldiff.model.LayerSpec;
import modeldiff.model.Model;
import modeldiff.model.ModelConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The host side of the cuda pass's attention variants, no GPU needed: MLA's padded head width, Llama 4's chunk
 * starts and per-layer switches, what the pass refuses, the self-test's synthetic models, and the float64 definition
 * KernelChecks holds the kernels to (sinks, chunks, v heads of their own width) against hand-computed values.
 */
class CudaAttentionVariantsTest {
    @TempDir
    Path tmp;

    @Test
    void mlaWidthIsTheSmallestTensorCoreWidthElseTheWiderHead() {
        assertEquals(16, CudaAttentionVariants.mlaWidth(16, 8));
        assertEquals(32, CudaAttentionVariants.mlaWidth(24, 16));    // the tiny models: qk 16 + 8, v 16
        assertEquals(64, CudaAttentionVariants.mlaWidth(40, 48));    // v wider than q/k
        assertEquals(128, CudaAttentionVariants.mlaWidth(128, 128));
        assertEquals(192, CudaAttentionVariants.mlaWidth(192, 128)); // DeepSeek-V3: 128 + 64, v 128 (CUDA cores)
        assertEquals(256, CudaAttentionVariants.mlaWidth(256, 64));
        BadInputException e = assertThrows(BadInputException.class, () -> CudaAttentionVariants.mlaWidth(288, 128));
        assertTrue(e.getMessage().contains("288"), e.getMessage());
    }

    /** A release whose MLA heads are wider than the kernels take is refused in one line before the GPU is touched. */
    @Test
    void mlaHeadsWiderThan256AreRefusedBeforeTheRuntime() {
        var d = new modeldiff.forward.TinyDeepseek.Dims(64, 2, 0, 32, 256, 64, 128, 1, 40, 96, 8, 2, 32, 4, 2, 1);
        Model m = Model.open(modeldiff.forward.TinyDeepseek.write(tmp.resolve("w"), modeldiff.forward.TinyDeepseek.config(d, false, 1e-6), d, 1));
        BadInputException e = assertThrows(BadInputException.class,
                () -> new CudaPass(false, Fixes.NONE).run(m, new ForwardInput(new int[]{1, 2}, 0), ProbeLevel.ALL));
        assertTrue(e.getMessage().contains("320 > 256"), e.getMessage());
        assertFalse(e.getMessage().contains("\n"));
    }

    /** Chunks of 16 with the run starting at position 13: chunk starts at positions 16, 32 are indices 3, 19. */
    @Test
    void chunkFirstIsTheStartOfTheQuerysChunkInAbsolutePositions() {
        int[] t = {0, 2, 3, 10, 18, 19, 30, 35};
        int[] expected = {0, 0, 3, 3, 3, 19, 19, 35};
        for (int i = 0; i < t.length; i++) assertEquals(expected[i], CudaAttentionVariants.chunkFirst(t[i], 16, 13), "t " + t[i]);
        for (int i = 0; i < 40; i++) {
            assertEquals(0, CudaAttentionVariants.chunkFirst(i, 0, 13), "no chunks");
            assertEquals(i - i % 8, CudaAttentionVariants.chunkFirst(i, 8, 0), "offset 0");
        }
    }

    @Test
    void chunkAndLlama4SwitchesFollowTheLayerAndTheFixes() {
        LayerSpec chunked = layer(new LayerSpec.Llama4(16, true, 0, 0));
        LayerSpec nope = layer(new LayerSpec.Llama4(0, false, 0.1, 8192));
        LayerSpec dense = layer(null);
        assertEquals(16, CudaAttentionVariants.chunk(chunked, Fixes.NONE));
        assertEquals(0, CudaAttentionVariants.chunk(chunked, Fixes.parse("attn.no_chunking")));
        assertEquals(0, CudaAttentionVariants.chunk(nope, Fixes.NONE));
        assertEquals(0, CudaAttentionVariants.chunk(dense, Fixes.NONE));
        assertTrue(CudaAttentionVariants.l2Norm(chunked, Fixes.NONE));
        assertFalse(CudaAttentionVariants.l2Norm(chunked, Fixes.parse("qk_norm.off")));
        assertFalse(CudaAttentionVariants.l2Norm(nope, Fixes.NONE));
        assertTrue(CudaAttentionVariants.temperature(nope, Fixes.NONE));
        assertFalse(CudaAttentionVariants.temperature(nope, Fixes.parse("attn.no_temperature_tuning")));
        assertFalse(CudaAttentionVariants.temperature(chunked, Fixes.NONE));
        assertFalse(CudaAttentionVariants.temperature(dense, Fixes.NONE));
    }

    private static LayerSpec layer(LayerSpec.Llama4 l4) {
        return new LayerSpec(0, 0, null, 0.25, l4 != null && l4.tempScale() > 0, l4);
    }

    /** The attention arguments carry the layer's sinks (unless attn.no_sinks) and chunk, with the run's first position. */
    @Test
    void attentionArgumentsCarrySinksAndChunks() {
        jcuda.driver.CUdeviceptr sinks = new jcuda.driver.CUdeviceptr();   // a handle only: nothing is allocated
        DeviceKernels.AttnArgs a = new DeviceKernels.AttnArgs(10, 4, 2, 16, 0, 0.25f, 0, 1f, Float.NaN, true);
        assertNull(a.sinks());
        assertEquals(0, a.chunk());
        LayerSpec chunked = layer(new LayerSpec.Llama4(16, true, 0, 0)), dense = layer(null);
        DeviceKernels.AttnArgs x = CudaAttentionVariants.attnExtras(a, sinks, chunked, Fixes.NONE, 13);
        assertTrue(x.sinks() == sinks);
        assertEquals(16, x.chunk());
        assertEquals(13, x.pos0());
        assertEquals(a.T(), x.T());
        assertEquals(a.scale(), x.scale());
        assertTrue(a.bf() && x.bf());
        DeviceKernels.AttnArgs noSinks = CudaAttentionVariants.attnExtras(a, sinks, dense, Fixes.parse("attn.no_sinks"), 13);
        assertTrue(noSinks == a, "no sinks, no chunk: the plain arguments");
        assertNull(CudaAttentionVariants.attnExtras(a, sinks, chunked, Fixes.parse("attn.no_sinks"), 0).sinks());
        assertEquals(0, CudaAttentionVariants.attnExtras(a, sinks, chunked, Fixes.parse("attn.no_chunking"), 0).chunk());
    }

    /** Llama 4 rotates complex pairs with fp32 cos/sin (HF's freqs_cis); qk.interleaved flips it back to halves. */
    @Test
    void llama4RotatesPairsInFp32() {
        Family l4 = Family.forModelType("llama4_text"), llama = Family.forModelType("llama");
        assertTrue(CudaAttentionVariants.ropePairs(l4, Fixes.NONE));
        assertFalse(CudaAttentionVariants.ropePairs(l4, Fixes.parse("qk.interleaved")));
        assertFalse(CudaAttentionVariants.ropePairs(llama, Fixes.NONE));
        assertTrue(CudaAttentionVariants.ropeCosSinFp32(l4));
        assertFalse(CudaAttentionVariants.ropeCosSinFp32(llama));
    }

    @Test
    void attnNoSinksIsHonouredNotRefusedMoeFixesAre() {
        assertNull(CudaPass.refusal(Fixes.parse("attn.no_sinks")));
        assertNull(CudaPass.refusal(Fixes.parse("attn.no_chunking,attn.no_temperature_tuning,attn.no_yarn_mscale,qk_norm.off")));
        assertNull(CudaPass.refusal(Fixes.parse("moe.softmax_before_topk,moe.renormalize=true,mlp.no_clamp")));   // CudaMoe
    }

    /**
     * The self-test's synthetic models are what it says: the MoE ones refused (so they get the forced check), the
     * dense ones run whole (cuda refuses nothing there, so the refusal stops before the runtime only for MoE), the
     * 192-wide one needs the CUDA-core kernels, and every one opens and runs in lowp.
     */
    @Test
    void syntheticModelsOfTheSelfTest() {
        Map<String, Model> m = new HashMap<>();
        for (CudaSelfTest.SynthModel s : CudaSelfTest.SYNTH) m.put(s.name(), Model.open(s.write(tmp.resolve(s.name()))));
        assertEquals(6, m.size());
        for (String all : new String[]{"ds3-moe", "l4-moe", "ds3-dense", "ds3-192", "l4-dense@0", "l4-dense@13"})
            assertDoesNotThrow(() -> CudaPass.refuseUnsupported("cuda:fp32", m.get(all), false), all);
        for (String dense : new String[]{"ds3-dense", "ds3-192", "l4-dense@0", "l4-dense@13"})
            assertDoesNotThrow(() -> CudaPass.refuseUnsupported("cuda:fp32", m.get(dense), false), dense);
        ModelConfig wide = m.get("ds3-192").config;
        assertEquals(192, wide.mla.qkHeadDim());
        assertEquals(192, CudaAttentionVariants.mlaWidth(wide.mla.qkHeadDim(), wide.mla.vHeadDim()));
        assertFalse(m.get("ds3-dense").config.mla.qLora());
        assertTrue(m.get("ds3-moe").config.mla.ropeInterleave());
        ModelConfig l4 = m.get("l4-dense@13").config;
        assertTrue(l4.layers.stream().anyMatch(l -> l.llama4() != null && l.llama4().chunk() == 16));
        assertTrue(l4.layers.stream().anyMatch(l -> l.llama4() != null && l.llama4().tempScale() > 0));
        for (CudaSelfTest.SynthModel s : CudaSelfTest.SYNTH)
            if (s.name().startsWith("l4-dense")) assertTrue(s.tokens() > 16 + s.offset() % 16, "the input crosses a chunk edge");
        int[] tokens = {1, 2, 3, 4, 5};
        for (Model model : m.values())
            assertDoesNotThrow(() -> new modeldiff.forward.lowp.LowpPass(modeldiff.numeric.Precision.BF16, Fixes.NONE)
                    .run(model, new ForwardInput(tokens, 0), ProbeLevel.ALL));
    }

    /**
     * Llama 4 after RoPE on a host emulation of the kernels: on RoPE layers every q and k head has mean square 1 (L2
     * norm, eps aside), on NoPE layers q is q · (log1p(floor((pos + 1) / floor_scale)) · attn_scale + 1) and k untouched;
     * qk_norm.off and attn.no_temperature_tuning leave them as they were.
     */
    @Test
    void llama4AfterRopeOnTheHost() {
        var d = modeldiff.forward.TinyLlama4.SMALL;
        Model m = Model.open(modeldiff.forward.TinyLlama4.write(tmp.resolve("l4"), modeldiff.forward.TinyLlama4.config(d, 16, 4), d, 5));
        ModelConfig c = m.config;
        int T = 9, pos0 = 6, hd = c.headDim;
        java.util.Random r = new java.util.Random(3);
        for (String fix : new String[]{"", "qk_norm.off", "attn.no_temperature_tuning"}) {
            Fixes fixes = fix.isEmpty() ? Fixes.NONE : Fixes.parse(fix);
            for (LayerSpec spec : c.layers) {
                HostKernels hk = new HostKernels();
                CudaAttentionVariants.Buffers b = new CudaAttentionVariants.Buffers(c, T, false, hk);
                float[] q = new float[T * c.qDim()], k = new float[T * c.kvDim()];
                for (int i = 0; i < q.length; i++) q[i] = (float) (3 * r.nextGaussian());
                for (int i = 0; i < k.length; i++) k[i] = (float) (3 * r.nextGaussian());
                float[] q0 = q.clone(), k0 = k.clone();
                CudaAttentionVariants.llama4AfterRope(hk, b, hk.put(q), hk.put(k), T, c, spec, fixes, pos0, false);
                boolean l2 = !spec.nope() && !fix.equals("qk_norm.off"), temp = spec.nope() && !fix.equals("attn.no_temperature_tuning");
                for (int t = 0; t < T; t++) {
                    double f = Math.log1p(Math.floor((pos0 + t + 1.0) / 4)) * 0.5 + 1;
                    for (int h = 0; h < c.numHeads; h++) {
                        int o = (t * c.numHeads + h) * hd;
                        if (l2) assertEquals(1.0, meanSquare(q, o, hd), 1e-4, "q L2, layer " + spec.index());
                        for (int j = 0; j < hd && !l2; j++)
                            assertEquals(temp ? q0[o + j] * f : q0[o + j], q[o + j], 1e-5 * Math.abs(q0[o + j] * f), "q, layer " + spec.index());
                    }
                    for (int h = 0; h < c.numKvHeads; h++) {
                        int o = (t * c.numKvHeads + h) * hd;
                        if (l2) assertEquals(1.0, meanSquare(k, o, hd), 1e-4, "k L2, layer " + spec.index());
                        else for (int j = 0; j < hd; j++) assertEquals(k0[o + j], k[o + j], "k untouched, layer " + spec.index());
                    }
                }
            }
        }
    }

    private static double meanSquare(float[] x, int o, int n) {
        double s = 0;
        for (int j = 0; j < n; j++) s += (double) x[o + j] * x[o + j];
        return s / n;
    }

    /** The forced checks judge what the pass computed: not a skipped MoE layer's output, not probes it does not record. */
    @Test
    void forcedChecksJudgeOnlyWhatThePassComputed() {
        var d = modeldiff.forward.TinyLlama4.SMALL;   // layers 1 and 3 route
        Model m = Model.open(modeldiff.forward.TinyLlama4.write(tmp.resolve("j"), modeldiff.forward.TinyLlama4.config(d, 16, 4), d, 5));
        modeldiff.trace.Trace teacher = new modeldiff.trace.Trace("t", "float32", "cpu", new int[]{1}, 0);
        modeldiff.trace.Trace pass = new modeldiff.trace.Trace("p", "float32", "cpu", new int[]{1}, 0);
        for (String p : new String[]{"embed", "layers.0.attn", "layers.0", "layers.1.attn", "layers.1.router_logits", "layers.1",
                "layers.2", "layers.3", "final_norm"}) {
            teacher.put(p, 1, new double[]{1});
            if (!p.endsWith("router_logits")) pass.put(p, 1, new double[]{1});
        }
        assertEquals(java.util.List.of("embed", "layers.0.attn", "layers.0", "layers.1.attn", "layers.2", "final_norm"),
                CudaSelfTest.judged(teacher, pass, m, true));
        assertEquals(java.util.List.of("embed", "layers.0.attn", "layers.0", "layers.1.attn", "layers.1", "layers.2", "layers.3",
                "final_norm"), CudaSelfTest.judged(teacher, pass, m, false));
    }

    // ---- the float64 definition the kernels are checked against ----

    /** One head, one dim: a query sees itself (score 1) and the sink (0): p = e / (e + 1). */
    @Test
    void referenceSinkJoinsTheDenominator() {
        float[] q = {1}, k = {1}, v = {3};
        double[] out = KernelChecks.attentionRef(new KernelChecks.RefArgs(1, 1, 1, 1, 1, 0, Float.NaN,
                new KernelChecks.Extras(new float[]{0f}, 0, 0)), q, k, v);
        assertEquals(3 * Math.E / (Math.E + 1), out[0], 1e-12);
    }

    /** Zero queries (uniform scores): each output is the mean of v over the keys of the query's chunk. */
    @Test
    void referenceChunksMaskEarlierChunks() {
        float[] q = new float[3], k = {1, 1, 1}, v = {2, 4, 8};
        // chunk 2 from position 1: positions 1 | 2 3 → t 0 sees {0}, t 1 sees {1}, t 2 sees {1, 2}
        double[] out = KernelChecks.attentionRef(new KernelChecks.RefArgs(3, 1, 1, 1, 1, 0, Float.NaN,
                new KernelChecks.Extras(null, 2, 1)), q, k, v);
        assertArrayEquals(new double[]{2, 4, 6}, out, 1e-12);
    }

    /** v heads of their own width: two heads of q/k width 1 and v width 2, one token: out = v. */
    @Test
    void referenceVWidthOfItsOwn() {
        float[] q = {1, 2}, k = {3, 4}, v = {1, 2, 3, 4};
        double[] out = KernelChecks.attentionRef(new KernelChecks.RefArgs(1, 2, 2, 1, 2, 0, Float.NaN, KernelChecks.Extras.NONE), q, k, v);
        assertArrayEquals(new double[]{1, 2, 3, 4}, out, 1e-12);
    }
}
