package modeldiff.forward.cuda;

import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;
import modeldiff.compare.Metrics;
import modeldiff.forward.Fixes;
import modeldiff.forward.ForwardInput;
import modeldiff.forward.ProbeLevel;
import modeldiff.forward.lowp.LowpPass;
import modeldiff.forward.reference.ReferencePass;
import modeldiff.model.Model;
import modeldiff.model.ModelConfig;
import modeldiff.numeric.Precision;
import modeldiff.trace.Trace;
import modeldiff.trace.TraceFiles;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import static jcuda.driver.JCudaDriver.*;

/**
 * The GPU self-test and benchmark, runnable where there is no Maven (the GPU box):
 * <pre>
 *   java -cp ... modeldiff.forward.cuda.CudaSelfTest selftest FIXTURES_DIR      # kernels + every fixture family
 *   java -cp ... modeldiff.forward.cuda.CudaSelfTest bench llama3-8b 2048 OUT.json
 * </pre>
 * Exit code 0 when every check passes.
 */
public final class CudaSelfTest {
    private CudaSelfTest() {
    }

    public static void main(String[] args) throws Exception {
        Locale.setDefault(Locale.ROOT);
        String mode = args.length > 0 ? args[0] : "selftest";
        CudaRuntime rt = CudaRuntime.get();
        if (rt == null) {
            System.out.println("CUDA unavailable: " + CudaRuntime.unavailableReason());
            System.exit(3);
        }
        System.out.println("device: " + rt.deviceName);
        boolean ok = true;
        if (mode.equals("selftest")) {
            ok = kernels(rt, System.out);
            ok &= fixtures(Path.of(args.length > 1 ? args[1] : "src/test/resources/fixtures"), System.out);
        } else if (mode.equals("bench")) {
            bench(rt, args.length > 1 ? args[1] : "llama3-8b", args.length > 2 ? Integer.parseInt(args[2]) : 2048,
                    args.length > 3 ? Path.of(args[3]) : null);
        }
        System.out.println(ok ? "ALL OK" : "FAILURES");
        System.exit(ok ? 0 : 1);
    }

    public static boolean kernels(CudaRuntime rt, PrintStream out) {
        List<KernelChecks.Result> rs = new KernelChecks(rt).runAll();
        out.println("== kernels vs float64 CPU (" + rs.size() + " checks, " + KernelChecks.GUARD + " guard words each side)");
        KernelChecks.print(rs, out::println);
        long bad = rs.stream().filter(r -> !r.ok()).count();
        out.println("kernel checks: " + (rs.size() - bad) + "/" + rs.size() + " ok");
        return bad == 0;
    }

    /** Per family: worst log-L2 over every probe (ProbeLevel.ALL) of the GPU passes against the others. */
    public static boolean fixtures(Path root, PrintStream out) throws IOException {
        List<String> names;
        try (var s = Files.list(root)) {
            names = s.filter(p -> Files.isDirectory(p.resolve("model"))).map(p -> p.getFileName().toString()).sorted().toList();
        }
        out.println("== fixtures: worst log-L2 over all probes (logits in brackets)");
        out.println(String.format("%-14s %17s %17s %17s %17s %17s %17s", "family", "fp32 vs ref", "bf16 vs ref",
                "lowp:bf16 vs ref", "bf16 vs lowp", "bf16 vs HF bf16", "lowp vs HF bf16"));
        boolean ok = true;
        for (String name : names) {
            Model model = Model.open(root.resolve(name).resolve("model"));
            Path hfPath = root.resolve(name).resolve("traces").resolve("hf-bfloat16.safetensors");
            Trace hf = Files.exists(hfPath) ? TraceFiles.read(hfPath) : null;
            int[] tokens = hf != null ? hf.tokens() : TraceFiles.read(root.resolve(name).resolve("traces").resolve("hf-float64.safetensors")).tokens();
            ForwardInput in = new ForwardInput(tokens, 0);
            Trace ref = new ReferencePass().run(model, in, ProbeLevel.ALL);
            Trace low = new LowpPass(Precision.BF16, Fixes.NONE).run(model, in, ProbeLevel.ALL);
            Trace f32 = new CudaPass(false, Fixes.NONE).run(model, in, ProbeLevel.ALL);
            Trace b16 = new CudaPass(true, Fixes.NONE).run(model, in, ProbeLevel.ALL);
            double[] fp32Ref = worst(ref, f32, ref), b16Ref = worst(ref, b16, ref), lowRef = worst(ref, low, ref),
                    b16Low = worst(low, b16, ref), b16Hf = hf == null ? null : worst(hf, b16, hf), lowHf = hf == null ? null : worst(hf, low, hf);
            boolean famOk = fp32Ref[0] <= -5;
            // bf16 within the bf16 noise: at every probe no farther from the reference than lowp:bf16 / HF bf16 are, + 0.5
            for (String p : ref.probeNames()) {
                double c = lg(ref, b16, p), l = lg(ref, low, p), h = hf != null && hf.has(p) ? lg(ref, hf, p) : l;
                if (c > Math.max(l, h) + 0.5) {
                    famOk = false;
                    out.println("  " + name + " " + p + ": cuda:bf16 vs ref " + f(c) + " beyond lowp " + f(l) + " / HF " + f(h));
                }
            }
            ok &= famOk;
            out.println(String.format("%-14s %17s %17s %17s %17s %17s %17s %s", name, fmt(fp32Ref), fmt(b16Ref), fmt(lowRef),
                    fmt(b16Low), fmt(b16Hf), fmt(lowHf), famOk ? "ok" : "FAIL"));
        }
        return ok;
    }

    private static double lg(Trace a, Trace b, String p) {
        return Metrics.logL2(a.probe(p).data(), b.probe(p).data());
    }

    /** {worst over probes of `base`, logits}. */
    private static double[] worst(Trace a, Trace b, Trace probesOf) {
        double w = -99;
        for (String p : probesOf.probeNames()) if (a.has(p) && b.has(p)) w = Math.max(w, lg(a, b, p));
        return new double[]{w, lg(a, b, "logits")};
    }

    private static String fmt(double[] v) {
        return v == null ? "-" : f(v[0]) + " [" + f(v[1]) + "]";
    }

    private static String f(double v) {
        return String.format("%.2f", v);
    }

    // ---------------------------------------------------------------- benchmarks

    static final String LLAMA3_8B = """
            {"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
             "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256, "hidden_act": "silu",
             "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "max_position_embeddings": 131072,
             "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                              "original_max_position_embeddings": 8192},
             "tie_word_embeddings": false, "bos_token_id": 128000, "eos_token_id": 128001, "torch_dtype": "bfloat16"}
            """;

    public static void bench(CudaRuntime rt, String shape, int tokens, Path json) throws IOException {
        if (!shape.equals("llama3-8b")) throw new IllegalArgumentException("known shapes: llama3-8b");
        Kernels k = new Kernels(rt);
        StringBuilder js = new StringBuilder("{\n  \"device\": \"" + rt.deviceName + "\",\n");
        // GEMM 4096³
        int n = 4096;
        for (boolean bf : new boolean[]{true, false}) {
            CUdeviceptr a = CudaRuntime.alloc(4L * n * n), w = CudaRuntime.alloc((bf ? 2L : 4L) * n * n), c = CudaRuntime.alloc(4L * n * n);
            k.fillF32(a, (long) n * n, 1, 1f, 0f);
            if (bf) k.fillBf16(w, (long) n * n, 2, 1f, 0f);
            else k.fillF32(w, (long) n * n, 2, 1f, 0f);
            int reps = bf ? 20 : 3;
            double ms = time(() -> k.gemm(c, a, w, bf, null, n, n, n, false), reps);
            double tflops = 2.0 * n * n * n / (ms * 1e-3) / 1e12;
            System.out.printf("gemm %s 4096^3: %.3f ms, %.1f TFLOP/s%n", bf ? "bf16 (wmma)" : "fp32 (ffma)", ms, tflops);
            js.append(String.format("  \"gemm_%s_4096_ms\": %.4f,\n  \"gemm_%s_4096_tflops\": %.2f,\n", bf ? "bf16" : "fp32", ms, bf ? "bf16" : "fp32", tflops));
            CudaRuntime.free(a);
            CudaRuntime.free(w);
            CudaRuntime.free(c);
        }
        // full forward, synthetic bf16 weights of the real shape, every layer output copied to the host
        Path dir = Files.createTempDirectory("modeldiff-bench");
        Files.writeString(dir.resolve("config.json"), LLAMA3_8B, StandardCharsets.UTF_8);
        ModelConfig c = ModelConfig.load(dir);
        long t0 = System.nanoTime();
        try (DeviceModel dm = DeviceModel.synthetic(c, true, 42, k)) {
            System.out.printf("synthetic weights: %.2f GB in %.1f s%n", dm.bytes() / 1e9, (System.nanoTime() - t0) / 1e9);
            int[] ids = new int[tokens];
            java.util.Random r = new java.util.Random(7);
            for (int i = 0; i < tokens; i++) ids[i] = r.nextInt(c.vocabSize);
            CudaPass pass = new CudaPass(true, Fixes.NONE);
            long[] copied = {0};
            CudaPass.ProbeSink sink = (name, cols, data) -> copied[0] += data.length;
            pass.forward(rt, dm, ids, 0, ProbeLevel.LAYERS, sink);   // warm-up
            int reps = 3;
            double best = Double.MAX_VALUE, sum = 0;
            for (int i = 0; i < reps; i++) {
                long s = System.nanoTime();
                pass.forward(rt, dm, ids, 0, ProbeLevel.LAYERS, sink);
                double ms = (System.nanoTime() - s) / 1e6;
                best = Math.min(best, ms);
                sum += ms;
            }
            double noCopy = Double.MAX_VALUE;
            for (int i = 0; i < reps; i++) {
                long s = System.nanoTime();
                pass.forward(rt, dm, ids, 0, ProbeLevel.LAYERS, null);
                noCopy = Math.min(noCopy, (System.nanoTime() - s) / 1e6);
            }
            System.out.printf("forward llama3-8b bf16 T=%d: best %.1f ms, mean %.1f ms (layer outputs copied to host); %.1f ms without copies%n",
                    tokens, best, sum / reps, noCopy);
            js.append(String.format("  \"shape\": \"%s\",\n  \"tokens\": %d,\n  \"forward_ms_best\": %.2f,\n  \"forward_ms_mean\": %.2f,\n  \"forward_ms_no_copies\": %.2f,\n  \"weights_gb\": %.3f\n}\n",
                    shape, tokens, best, sum / reps, noCopy, dm.bytes() / 1e9));
        }
        if (json != null) Files.writeString(json, js.toString());
        System.out.print(js);
    }

    private static double time(Runnable r, int reps) {
        r.run();
        CudaRuntime.sync();
        CUevent a = new CUevent(), b = new CUevent();
        cuEventCreate(a, 0);
        cuEventCreate(b, 0);
        cuEventRecord(a, null);
        for (int i = 0; i < reps; i++) r.run();
        cuEventRecord(b, null);
        cuEventSynchronize(b);
        float[] ms = new float[1];
        cuEventElapsedTime(ms, a, b);
        cuEventDestroy(a);
        cuEventDestroy(b);
        return ms[0] / reps;
    }
}
