package modeldiff.forward.cuda;

import jcuda.driver.CUdeviceptr;
import modeldiff.compare.Metrics;
import modeldiff.forward.cuda.DeviceKernels.Act;
import modeldiff.forward.cuda.DeviceKernels.AttentionVariant;
import modeldiff.forward.cuda.DeviceKernels.AttnArgs;
import modeldiff.util.AtomicFiles;

import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * Issue #18's attention timings ({@code CudaSelfTest attnbench}): the tensor-core attention at real shapes, the first
 * kernels (attention_tc*, v1) next to the current ones (attention_fa*, each form of the plain kernel: base, _occ,
 * _r32) on the same inputs in the same process, with how far each output is from v1's (log-L2; they differ only in the
 * exp's last ulps and the P roundings those flip) and whether each form gives base's bits (the same arithmetic in the
 * same order per element: it should, except _r32 with a window, whose key tiles start elsewhere; KernelChecks
 * .plainFormsIdentical). reference-impls/attn_bench.py times
 * torch's scaled_dot_product_attention on the same shapes ({@link #SHAPES}).
 */
final class AttentionBench {
    private AttentionBench() {
    }

    /** One timed shape: tokens, query / kv heads, head_dim, window (0: none). */
    record Shape(int T, int heads, int kvHeads, int hd, int window) {
        /** 4·hd·heads per visible (query, key) pair: Q·Kᵀ and P·V, a multiply-add each. Causal: T(T+1)/2 pairs. */
        double flops() {
            return 4.0 * hd * heads * pairs(T, window);
        }

        String key() {
            return "T" + T + "_h" + heads + "_" + kvHeads + "_d" + hd + (window > 0 ? "_w" + window : "");
        }
    }

    /** Visible (query, key) pairs of causal attention over T tokens with a window (≤ 0: none): Σ_t min(t + 1, window). */
    static long pairs(int T, int window) {
        if (window <= 0 || window >= T) return (long) T * (T + 1) / 2;
        return (long) window * (window + 1) / 2 + (long) (T - window) * window;
    }

    /** The shapes timed here and by reference-impls/attn_bench.py (keep the two lists the same). */
    static final List<Shape> SHAPES = List.of(new Shape(512, 32, 8, 128, 0), new Shape(2048, 32, 8, 128, 0),
            new Shape(4096, 32, 8, 128, 0), new Shape(2048, 32, 8, 64, 0), new Shape(4096, 32, 8, 64, 0),
            new Shape(4096, 32, 8, 128, 1024));

    static void run(CudaRuntime rt, Path json) {
        Locale.setDefault(Locale.ROOT);
        DeviceKernels k = new DeviceKernels(rt);
        StringBuilder js = new StringBuilder("{\n  \"device\": \"" + rt.deviceName + "\",\n  \"sms\": " + rt.smCount() + ",\n");
        for (Shape s : SHAPES) one(k, s, js);
        js.append("  \"flops\": \"4*hd*heads*visible pairs (causal: T(T+1)/2)\"\n}\n");
        if (json != null) AtomicFiles.writeString(json, js.toString());
    }

    private static void one(DeviceKernels k, Shape s, StringBuilder js) {
        long nq = (long) s.T() * s.heads() * s.hd(), nk = (long) s.T() * s.kvHeads() * s.hd();
        CUdeviceptr f = CudaRuntime.alloc(4L * nq), qB = CudaRuntime.alloc(2 * nq), kB = CudaRuntime.alloc(2 * nk),
                vB = CudaRuntime.alloc(2 * nk), o = CudaRuntime.alloc(4 * nq);
        k.fillF32(f, nq, 3, 1f, 0f);
        k.toBf16(qB, f, nq);
        k.fillF32(f, nk, 4, 1f, 0f);
        k.toBf16(kB, f, nk);
        k.fillF32(f, nk, 5, 1f, 0f);
        k.toBf16(vB, f, nk);
        AttnArgs a = new AttnArgs(s.T(), s.heads(), s.kvHeads(), s.hd(), s.window(), (float) (1 / Math.sqrt(s.hd())), 0, 1f,
                Float.NaN, true);
        double[] v1Out = null;
        float[] baseOut = null;
        StringBuilder line = new StringBuilder(String.format("attention %-22s", s.key()));
        double v1Ms = 0;
        List<String> runs = new java.util.ArrayList<>(List.of("v1"));
        for (DeviceKernels.FaPlain form : DeviceKernels.FaPlain.values()) runs.add("fa_" + form.name().toLowerCase(Locale.ROOT));
        for (String which : runs) {
            k.attention = which.equals("v1") ? AttentionVariant.TC_V1 : AttentionVariant.TC;
            if (!which.equals("v1")) k.faPlain = DeviceKernels.FaPlain.valueOf(which.substring(3).toUpperCase(Locale.ROOT));
            double ms = CudaSelfTest.time(() -> k.attentionTc(Act.of(o), qB, kB, vB, a), 20);
            float[] out = CudaRuntime.download(o, (int) nq);
            double tflops = s.flops() / (ms * 1e-3) / 1e12;
            line.append(String.format("  %s %.3f ms %.1f TFLOP/s", which, ms, tflops));
            js.append(String.format("  \"%s_%s_ms\": %.4f,\n  \"%s_%s_tflops\": %.2f,\n", s.key(), which, ms, s.key(), which, tflops));
            if (which.equals("v1")) {
                v1Ms = ms;
                v1Out = toDouble(out);
                continue;
            }
            double d = Metrics.logL2(v1Out, toDouble(out));
            line.append(String.format(" (x%.2f v1; log-L2 vs v1 %.2f)", v1Ms / ms, d));
            js.append(String.format("  \"%s_%s_log_l2_vs_v1\": %.3f,\n", s.key(), which, d));
            if (baseOut == null) baseOut = out;
            else {
                boolean same = java.util.Arrays.equals(baseOut, out);
                line.append(same ? " = fa_base bit for bit" : " DIFFERS from fa_base");
                js.append(String.format("  \"%s_%s_identical_to_fa_base\": %s,\n", s.key(), which, same));
            }
        }
        System.out.println(line);
        k.attention = DeviceKernels.defaultAttention();
        k.faPlain = DeviceKernels.FaPlain.fromProperty();
        for (CUdeviceptr p : new CUdeviceptr[]{f, qB, kB, vB, o}) CudaRuntime.free(p);
    }

    private static double[] toDouble(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) d[i] = f[i];
        return d;
    }
}
