package modeldiff.forward.cuda;

import jcuda.driver.CUdeviceptr;
import modeldiff.forward.cuda.DeviceKernels.AttentionVariant;
import modeldiff.forward.cuda.DeviceKernels.AttnArgs;
import modeldiff.forward.cuda.DeviceKernels.FaPlain;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Which tensor-core attention kernel a launch gets (DeviceKernels.tcKernel), host side: the plain kernel only when
 * nothing but scale / causal / window / GQA is asked, every name one the compiled module defines, shared memory within
 * an H100's 227 KB per block; and the FLOP count of AttentionBench. The kernels themselves are checked on the GPU
 * (KernelChecks.attentionTcOnly, CudaSelfTest attncheck / attnbench).
 */
class TcAttentionChoiceTest {
    static final CUdeviceptr SINKS = new CUdeviceptr();

    private static AttnArgs args(int hd, float cap, int divide, boolean bf, CUdeviceptr sinks, int chunk) {
        return new AttnArgs(100, 4, 2, hd, 0, 0.125f, divide, 8f, cap, bf, sinks, chunk, 0);
    }

    private static String name(AttentionVariant v, boolean fp16, boolean occ, AttnArgs a) {
        return name(v, fp16, occ ? FaPlain.OCC : FaPlain.BASE, a);
    }

    private static String name(AttentionVariant v, boolean fp16, FaPlain plain, AttnArgs a) {
        return DeviceKernels.tcKernel(v, fp16, plain, a).name();
    }

    @Test
    void thePlainKernelCarriesNothingElse() {
        assertEquals("attention_fa128", name(AttentionVariant.TC, false, false, args(128, Float.NaN, 0, true, null, 0)));
        assertEquals("attention_fa64_f16", name(AttentionVariant.TC, true, false, args(64, Float.NaN, 0, true, null, 0)));
        // a window is plain (the mask test runs on the tiles that need it)
        assertEquals("attention_fa32", name(AttentionVariant.TC, false, false,
                new AttnArgs(100, 4, 2, 32, 50, 0.125f, 0, 1f, Float.NaN, true)));
        // each optional feature, and fp32 mode, takes the general kernel
        assertEquals("attention_fa128_gen", name(AttentionVariant.TC, false, false, args(128, 30f, 0, true, null, 0)));
        assertEquals("attention_fa64_gen", name(AttentionVariant.TC, false, false, args(64, Float.NaN, 1, true, null, 0)));
        assertEquals("attention_fa16_gen", name(AttentionVariant.TC, false, false, args(16, Float.NaN, 0, true, SINKS, 0)));
        assertEquals("attention_fa32_gen_f16", name(AttentionVariant.TC, true, false, args(32, Float.NaN, 0, true, null, 8)));
        assertEquals("attention_fa128_gen", name(AttentionVariant.TC, false, false, args(128, Float.NaN, 0, false, null, 0)));
        // cap 0 (what a NaN cap is passed as) is no cap
        assertEquals("attention_fa128", name(AttentionVariant.TC, false, false, args(128, 0f, 0, true, null, 0)));
    }

    @Test
    void occOnlyForThePlainKernelAtHeadDim64And128() {
        assertEquals("attention_fa128_occ", name(AttentionVariant.TC, false, true, args(128, Float.NaN, 0, true, null, 0)));
        assertEquals("attention_fa64_occ_f16", name(AttentionVariant.TC, true, true, args(64, Float.NaN, 0, true, null, 0)));
        assertEquals("attention_fa32", name(AttentionVariant.TC, false, true, args(32, Float.NaN, 0, true, null, 0)));
        assertEquals("attention_fa128_gen", name(AttentionVariant.TC, false, true, args(128, 30f, 0, true, null, 0)));
    }

    /** _r32 takes 128 queries per block and Q's own 128 rows of shared memory; other forms and v1 take 64. */
    @Test
    void rows32KernelsTakeTwiceTheQueriesPerBlock() {
        DeviceKernels.TcKernel r = DeviceKernels.tcKernel(AttentionVariant.TC, false, FaPlain.R32, args(128, Float.NaN, 0, true, null, 0));
        assertEquals("attention_fa128_r32", r.name());
        assertEquals(128, r.rows());
        DeviceKernels.TcKernel b = DeviceKernels.tcKernel(AttentionVariant.TC, false, FaPlain.BASE, args(128, Float.NaN, 0, true, null, 0));
        assertEquals(64, b.rows());
        assertEquals(128 * 128 * 2, r.smem() - b.smem());   // Q: 128 rows of 128 bf16
        assertEquals("attention_fa64_r32_f16", name(AttentionVariant.TC, true, FaPlain.R32, args(64, Float.NaN, 0, true, null, 0)));
        assertEquals("attention_fa32", name(AttentionVariant.TC, false, FaPlain.R32, args(32, Float.NaN, 0, true, null, 0)));
        assertEquals(64, DeviceKernels.tcKernel(AttentionVariant.TC, false, FaPlain.R32, args(64, 3f, 0, true, null, 0)).rows());
        assertEquals(null, FaPlain.fromProperty());   // auto
        assertEquals("attention_fa64_occ", name(AttentionVariant.TC, false, (FaPlain) null, args(64, Float.NaN, 0, true, null, 0)));
        // auto is _occ at 128 too: the fastest form there on an H100 (docs/gpu-runs/2026-12-06-d/fa)
        assertEquals("attention_fa128_occ", name(AttentionVariant.TC, false, (FaPlain) null, args(128, Float.NaN, 0, true, null, 0)));
        assertEquals("attention_fa32", name(AttentionVariant.TC, false, (FaPlain) null, args(32, Float.NaN, 0, true, null, 0)));
        assertEquals("attention_fa64_gen", name(AttentionVariant.TC, false, (FaPlain) null, args(64, 5f, 0, true, null, 0)));
    }

    @Test
    void v1RemainsSelectableAndHandsSinksAndChunksToTheGeneralKernel() {
        assertEquals("attention_tc128", name(AttentionVariant.TC_V1, false, false, args(128, Float.NaN, 0, true, null, 0)));
        assertEquals("attention_tc64_f16", name(AttentionVariant.TC_V1, true, true, args(64, 5f, 1, false, null, 0)));
        assertEquals("attention_fa64_gen", name(AttentionVariant.TC_V1, false, false, args(64, Float.NaN, 0, true, SINKS, 0)));
        assertEquals(AttentionVariant.TC_V1, AttentionVariant.valueOf("tc_v1".toUpperCase(java.util.Locale.ROOT)));
    }

    @Test
    void otherHeadDimsAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> DeviceKernels.tcKernel(AttentionVariant.TC, false, FaPlain.BASE,
                args(96, Float.NaN, 0, true, null, 0)));
        assertThrows(IllegalArgumentException.class, () -> DeviceKernels.tcKernel(AttentionVariant.TC, false, FaPlain.BASE,
                args(256, Float.NaN, 0, true, null, 0)));
    }

    /** Every kernel the chooser can name is an entry of the PTX the build made (skipped where nvcc is absent). */
    @Test
    void everyChosenNameIsInTheModule() throws IOException {
        String ptx;
        try (InputStream in = CudaRuntime.class.getResourceAsStream(CudaRuntime.PTX_RESOURCE)) {
            Assumptions.assumeTrue(in != null, "no PTX built here (no nvcc)");
            ptx = new String(in.readAllBytes(), StandardCharsets.US_ASCII);
        }
        Set<String> entries = new HashSet<>();
        Matcher m = Pattern.compile("\\.entry (\\w+)\\(").matcher(ptx);
        while (m.find()) entries.add(m.group(1));
        int checked = 0;
        for (AttentionVariant v : new AttentionVariant[]{AttentionVariant.TC, AttentionVariant.TC_V1})
            for (boolean fp16 : new boolean[]{false, true})
                for (FaPlain occ : FaPlain.values())
                    for (int hd : new int[]{16, 32, 64, 128})
                        for (AttnArgs a : new AttnArgs[]{args(hd, Float.NaN, 0, true, null, 0), args(hd, 5f, 0, true, null, 0),
                                args(hd, Float.NaN, 3, true, null, 0), args(hd, Float.NaN, 0, true, SINKS, 0),
                                args(hd, Float.NaN, 0, true, null, 16), args(hd, Float.NaN, 0, false, null, 0)}) {
                            DeviceKernels.TcKernel k = DeviceKernels.tcKernel(v, fp16, occ, a);
                            assertTrue(entries.contains(k.name()), k.name() + " is not in " + CudaRuntime.PTX_RESOURCE);
                            assertTrue(k.smem() <= 227 * 1024, k.name() + ": " + k.smem() + " bytes of shared memory");
                            checked++;
                        }
        assertEquals(2 * 2 * 3 * 4 * 6, checked);
    }

    /** The visible (query, key) pairs the bench's FLOP count uses, against counting them one by one. */
    @Test
    void visiblePairsAreCounted() {
        for (int T : new int[]{1, 2, 63, 64, 65, 300})
            for (int w : new int[]{0, 1, 5, 64, 299, 300, 1000}) {
                long n = 0;
                for (int t = 0; t < T; t++)
                    for (int s = 0; s <= t; s++) if (w <= 0 || t - s < w) n++;
                assertEquals(n, AttentionBench.pairs(T, w), "T " + T + " window " + w);
            }
        assertEquals(4.0 * 128 * 32 * 2048 * 2049 / 2, new AttentionBench.Shape(2048, 32, 8, 128, 0).flops());
    }
}
