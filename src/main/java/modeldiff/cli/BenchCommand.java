package modeldiff.cli;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import modeldiff.compare.Metrics;
import modeldiff.forward.Fixes;
import modeldiff.forward.ForwardInput;
import modeldiff.forward.ForwardPass;
import modeldiff.forward.ProbeLevel;
import modeldiff.forward.cuda.CudaRuntime;
import modeldiff.forward.cuda.CudaSelfTest;
import modeldiff.forward.kernel.Gemm;
import modeldiff.forward.kernel.PanelKernel;
import modeldiff.forward.kernel.PanelSource;
import modeldiff.forward.kernel.Parallel;
import modeldiff.forward.reference.ReferencePass;
import modeldiff.forward.torch.TorchPass;
import modeldiff.forward.torch.TorchRuntime;
import modeldiff.model.BadInputException;
import modeldiff.model.DType;
import modeldiff.model.Family;
import modeldiff.model.Model;
import modeldiff.model.ModelConfig;
import modeldiff.numeric.Precision;
import modeldiff.synth.SyntheticModel;
import modeldiff.trace.Trace;
import modeldiff.util.AtomicFiles;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.stream.Stream;

@Command(name = "bench", mixinStandardHelpOptions = true, sortOptions = false, description = "Benchmarks (docs/benchmarks.md).",
        subcommands = {BenchCommand.Cpu.class, BenchCommand.HuntCost.class, BenchCommand.Gpu.class, BenchCommand.MultiGpu.class})
final class BenchCommand implements Runnable {
    @Override
    public void run() {
        throw new BadInputException("bench: give a subcommand: cpu, hunt, gpu or multigpu");
    }

    /**
     * The float64 reference against torch:fp32 on one model of a real shape, in one process: a warm-up of each, then
     * R rounds alternating which pass goes first (so drift in machine load hits both alike); medians, never means.
     */
    @Command(name = "cpu", mixinStandardHelpOptions = true, sortOptions = false,
            description = "Time the float64 reference and torch:fp32 side by side on a model of a real shape.")
    static final class Cpu implements Callable<Integer> {
        @Option(names = "--shape", paramLabel = "NAME", description = "Synthesize a model of this shape (deleted afterwards).")
        String shape;

        @Option(names = "--model", paramLabel = "DIR|ORG/NAME[@REV]", converter = ModelLocator.Converter.class,
                description = "Use this model instead of synthesizing one. " + ModelLocator.HELP)
        Path model;

        @Option(names = "--tokens", defaultValue = "64", description = "Input length (default: ${DEFAULT-VALUE}).")
        int tokens;

        @Option(names = "--runs", defaultValue = "5", description = "Timed runs of each pass (default: ${DEFAULT-VALUE}).")
        int runs;

        @Option(names = "--probes", defaultValue = "layers", description = "layers | all (default: ${DEFAULT-VALUE}).")
        String probes;

        @Option(names = "--json", paramLabel = "FILE", description = "Write the figures as JSON.")
        Path json;

        @Option(names = "--seed", defaultValue = "0", description = "Seed of the synthesized weights (default: ${DEFAULT-VALUE}).")
        long seed;

        @picocli.CommandLine.Mixin
        GlobalOptions global;

        @Override
        public Integer call() throws IOException {
            if ((shape == null) == (model == null)) throw new BadInputException("bench cpu: give --shape or --model");
            if (tokens < 1 || runs < 1) throw new BadInputException("--tokens and --runs must be positive");
            ProbeLevel level = ProbeLevel.parse(probes);
            TorchRuntime.require();
            Path dir = model, tmp = null;
            Progress p = Progress.stderr();
            try {
                if (dir == null) {
                    tmp = Files.createTempDirectory("modeldiff-bench-");
                    dir = tmp.resolve(shape);
                    SyntheticModel.write(shape, dir, seed, null, DType.BF16, false, p::show);
                }
                Model m = Model.open(dir);
                return bench(m, level, p);
            } finally {
                p.done();
                if (tmp != null) deleteTree(tmp);
            }
        }

        private int bench(Model m, ProbeLevel level, Progress p) {
            ModelConfig c = m.config;
            ForwardInput in = new ForwardInput(ForwardInput.defaultTokens(c, tokens), 0);
            ReferencePass ref = new ReferencePass(Fixes.NONE, Parallel.defaultThreads());
            TorchPass torch = new TorchPass(Precision.FP32, Fixes.NONE);
            double gflop = forwardFlops(c, tokens) / 1e9;

            p.show("warming up");
            Trace r0 = ref.run(m, in, level);
            Trace t0 = torch.run(m, in, level);
            double agreement = Metrics.logL2(r0.probe("logits").data(), t0.probe("logits").data());
            double[] refTimes = new double[runs], torchTimes = new double[runs];
            p.done();
            try (Progress.Counter bar = p.counter("bench rounds", runs)) {
                for (int i = 0; i < runs; i++) {
                    // Alternate which pass goes first so slow drift in the machine's load lands on both.
                    if (i % 2 == 0) {
                        refTimes[i] = time(ref, m, in, level);
                        torchTimes[i] = time(torch, m, in, level);
                    } else {
                        torchTimes[i] = time(torch, m, in, level);
                        refTimes[i] = time(ref, m, in, level);
                    }
                    bar.step();
                }
            }
            p.show("timing one GEMM of each");
            double[] gemm = gemmRates(c, tokens);
            p.done();

            double rs = median(refTimes), ts = median(torchTimes);
            ObjectMapper om = new ObjectMapper();
            ObjectNode o = om.createObjectNode();
            o.put("format", "modeldiff-bench-cpu/1");
            o.put("shape", shape != null ? shape : m.name());
            o.put("model_type", c.modelType);
            o.put("layers", c.numLayers);
            o.put("tokens", tokens);
            o.put("probes", level.name().toLowerCase(Locale.ROOT));
            o.put("runs", runs);
            o.put("gflop_per_forward", gflop);
            o.put("reference_seconds", rs);
            o.put("torch_fp32_seconds", ts);
            o.put("ratio_reference_over_torch", rs / ts);
            o.put("reference_gflops", gflop / rs);
            o.put("torch_fp32_gflops", gflop / ts);
            o.put("gemm_shape", "[" + tokens + ", " + c.hiddenSize + "] x [" + c.intermediateSize + ", " + c.hiddenSize + "]^T");
            o.put("reference_gemm_gflops", gemm[0]);
            o.put("torch_fp32_gemm_gflops", gemm[1]);
            o.put("logits_log_l2_torch_vs_reference", agreement);
            ArrayNode a = o.putArray("reference_runs_seconds");
            for (double v : refTimes) a.add(v);
            a = o.putArray("torch_fp32_runs_seconds");
            for (double v : torchTimes) a.add(v);
            o.put("reference_threads", ref.threads());
            o.put("torch_threads", torch.threads());
            o.put("reference_kernel", PanelKernel.best().name());
            o.put("cores", Runtime.getRuntime().availableProcessors());
            o.put("cpu_model", cpuModel());
            o.put("java", System.getProperty("java.vm.name") + " " + System.getProperty("java.version"));
            o.put("max_heap_bytes", Runtime.getRuntime().maxMemory());
            System.out.printf("%s, %d tokens, %s probes: reference %.3f s, torch:fp32 %.3f s (medians of %d, alternating); "
                            + "ratio %.2f; %.1f vs %.1f GFLOP/s (%.1f GFLOP per forward)%n", o.get("shape").asText(), tokens,
                    o.get("probes").asText(), rs, ts, runs, rs / ts, gflop / rs, gflop / ts, gflop);
            System.out.printf("one GEMM %s: reference kernel %.1f GFLOP/s (float64), torch %.1f GFLOP/s (fp32); %d cores, %s%n",
                    o.get("gemm_shape").asText(), gemm[0], gemm[1], Runtime.getRuntime().availableProcessors(), cpuModel());
            if (json != null) {
                try {
                    AtomicFiles.writeString(json, om.writerWithDefaultPrettyPrinter().writeValueAsString(o) + "\n");
                } catch (IOException e) {
                    throw new IllegalStateException(e);
                }
                System.out.println("wrote " + json);
            }
            return 0;
        }

        private static double time(ForwardPass pass, Model m, ForwardInput in, ProbeLevel level) {
            long t = System.nanoTime();
            pass.run(m, in, level);
            return (System.nanoTime() - t) / 1e9;
        }

        static double medianOf(double[] v) {
            return median(v);
        }

        /**
         * GFLOP/s of one MLP-shaped product with the weights already in memory (no decoding): what each side's kernel
         * does on this machine, apart from everything else a forward pass does. Medians of 5 after a warm-up.
         */
        private static double[] gemmRates(ModelConfig c, int T) {
            int k = c.hiddenSize, n = c.intermediateSize;
            double flop = 2.0 * T * k * n;
            java.util.SplittableRandom r = new java.util.SplittableRandom(1);
            double[] x = new double[T * k], w = new double[n * k], y = new double[T * n];
            for (int i = 0; i < x.length; i++) x[i] = r.nextDouble() - 0.5;
            for (int i = 0; i < w.length; i++) w[i] = r.nextDouble() - 0.5;
            Parallel par = Parallel.of(Parallel.defaultThreads());
            PanelSource src = PanelSource.ofRows(w, 0, k);
            double[] ours = new double[5], theirs = new double[5];
            Gemm.multiply(x, T, k, src, n, null, y, par);
            try (NDManager mgr = NDManager.newBaseManager()) {
                NDArray xt = mgr.create(x, new Shape(T, k)).toType(DataType.FLOAT32, false);
                NDArray wt = mgr.create(w, new Shape(n, k)).toType(DataType.FLOAT32, false);
                JniUtils.linear((PtNDArray) xt, (PtNDArray) wt, null).close();
                for (int i = 0; i < 5; i++) {
                    long t = System.nanoTime();
                    Gemm.multiply(x, T, k, src, n, null, y, par);
                    ours[i] = (System.nanoTime() - t) / 1e9;
                    t = System.nanoTime();
                    JniUtils.linear((PtNDArray) xt, (PtNDArray) wt, null).close();
                    theirs[i] = (System.nanoTime() - t) / 1e9;
                }
            }
            return new double[]{flop / median(ours) / 1e9, flop / median(theirs) / 1e9};
        }
    }

    /**
     * A full hunt as a multiple of one warm forward of its base pass, both timed in this process: forwards before and
     * after the hunt (median of all of them), so the ratio is not flattered by the hunt's own first, cold run.
     */
    @Command(name = "hunt", mixinStandardHelpOptions = true, sortOptions = false,
            description = "Time a full hunt against the median of warm forwards of its base pass, in one process.")
    static final class HuntCost implements Callable<Integer> {
        @Option(names = "--model", required = true, paramLabel = "DIR|ORG/NAME[@REV]", converter = ModelLocator.Converter.class,
                description = ModelLocator.HELP)
        Path model;

        @Option(names = "--target", required = true, paramLabel = "TRACE", description = "Target trace of the hunt.")
        Path target;

        @Option(names = "--runs", defaultValue = "4", description = "Warm forwards timed, half before and half after the hunt (default: ${DEFAULT-VALUE}).")
        int runs;

        @Option(names = "--no-prune", description = "Also run the hunt without pruning and report both.")
        boolean alsoUnpruned;

        @Option(names = "--json", paramLabel = "FILE", description = "Write the figures as JSON.")
        Path json;

        @picocli.CommandLine.Mixin
        GlobalOptions global;

        @Override
        public Integer call() {
            Model m = Model.open(model);
            Trace t = modeldiff.trace.TraceFiles.read(target);
            ForwardInput in = new ForwardInput(t.tokens(), t.positionOffset());
            ProbeLevel level = t.has("layers.0.q") ? ProbeLevel.ALL : ProbeLevel.LAYERS;
            Precision p;
            try {
                p = Precision.parse(t.dtype());
            } catch (IllegalArgumentException e) {
                throw new BadInputException("target trace dtype '" + t.dtype() + "' is not a precision modeldiff knows");
            }
            String base = modeldiff.hunt.Hunt.defaultBase(p);
            ForwardPass pass = modeldiff.forward.Implementations.create(base);
            Progress pr = Progress.stderr();
            pr.show("warming up " + base);
            pass.run(m, in, level);
            double[] fw = new double[Math.max(2, runs)];
            int half = fw.length / 2;
            for (int i = 0; i < half; i++) fw[i] = time(pass, m, in, level);
            pr.show("hunting");
            long t0 = System.nanoTime();
            modeldiff.hunt.Hunt.Result r = modeldiff.hunt.Hunt.run(m, t, null, null, true, pr::show);
            double huntSeconds = (System.nanoTime() - t0) / 1e9;
            double unpruned = Double.NaN;
            int unprunedRuns = 0;
            if (alsoUnpruned) {
                pr.show("hunting without pruning");
                t0 = System.nanoTime();
                modeldiff.hunt.Hunt.Result u = modeldiff.hunt.Hunt.run(m, t, null, null, false, pr::show);
                unpruned = (System.nanoTime() - t0) / 1e9;
                unprunedRuns = u.runs();
                if (u.verdict() != r.verdict() || !u.best().fixes().equals(r.best().fixes()))
                    System.out.println("note: without pruning: " + u.sentence());
            }
            for (int i = half; i < fw.length; i++) fw[i] = time(pass, m, in, level);
            pr.done();
            double forward = Cpu.medianOf(fw);
            ObjectMapper om = new ObjectMapper();
            ObjectNode o = om.createObjectNode();
            o.put("format", "modeldiff-bench-hunt/1");
            o.put("model", m.name());
            o.put("target", target.toString());
            o.put("tokens", in.length());
            o.put("probes", level.name().toLowerCase(Locale.ROOT));
            o.put("base", base);
            o.put("verdict", r.verdict().id());
            o.put("sentence", r.sentence());
            o.put("candidates", r.candidates().size());
            o.put("runs", r.runs());
            o.put("stopped_early", r.pruned());
            o.put("hunt_seconds", huntSeconds);
            o.put("forward_seconds_median", forward);
            o.put("hunt_in_forwards", huntSeconds / forward);
            if (alsoUnpruned) {
                o.put("unpruned_runs", unprunedRuns);
                o.put("unpruned_hunt_seconds", unpruned);
                o.put("unpruned_hunt_in_forwards", unpruned / forward);
            }
            ArrayNode a = o.putArray("forward_runs_seconds");
            for (double v : fw) a.add(v);
            o.put("cores", Runtime.getRuntime().availableProcessors());
            o.put("cpu_model", cpuModel());
            System.out.println(r.sentence());
            System.out.printf("hunt: %d runs (%d stopped early) in %.1f s = %.1f forwards (warm %s forward: median %.2f s of %d)%n",
                    r.runs(), r.pruned(), huntSeconds, huntSeconds / forward, base, forward, fw.length);
            if (alsoUnpruned)
                System.out.printf("without pruning: %d runs in %.1f s = %.1f forwards%n", unprunedRuns, unpruned, unpruned / forward);
            if (json != null) {
                try {
                    AtomicFiles.writeString(json, om.writerWithDefaultPrettyPrinter().writeValueAsString(o) + "\n");
                } catch (IOException e) {
                    throw new IllegalStateException(e);
                }
                System.out.println("wrote " + json);
            }
            return 0;
        }

        private static double time(ForwardPass pass, Model m, ForwardInput in, ProbeLevel level) {
            long t = System.nanoTime();
            pass.run(m, in, level);
            return (System.nanoTime() - t) / 1e9;
        }
    }

    @Command(name = "gpu", mixinStandardHelpOptions = true, sortOptions = false,
            description = "The CUDA benchmark (modeldiff.forward.cuda.CudaSelfTest bench): GEMMs at every forward shape (split-K"
                    + " off and on), attention and a full llama3-8b-shaped forward per dtype, and HF transformers' side"
                    + " (reference-impls/hf_bench.py) in the same call when python3 has torch and transformers; one JSON.")
    static final class Gpu implements Callable<Integer> {
        @Option(names = "--shape", defaultValue = "llama3-8b", description = "Shape (default: ${DEFAULT-VALUE}; the only one).")
        String shape;

        @Option(names = "--tokens", defaultValue = "2048", description = "Input length (default: ${DEFAULT-VALUE}).")
        int tokens;

        @Option(names = "--dtypes", defaultValue = "bf16,fp16", description = "16-bit dtypes to run (default: ${DEFAULT-VALUE}).")
        String dtypes;

        @Option(names = "--hf", defaultValue = "auto", description = "HF's side: auto (when python has transformers) or off (default: ${DEFAULT-VALUE}).")
        String hf;

        @Option(names = "--hf-script", defaultValue = "reference-impls/hf_bench.py", description = "HF's side (default: ${DEFAULT-VALUE}).")
        Path hfScript;

        @Option(names = "--python", defaultValue = "python3", description = "Python for HF's side (default: ${DEFAULT-VALUE}).")
        String python;

        @Option(names = "--hf-timeout", defaultValue = "600", description = "Seconds HF's side may take (default: ${DEFAULT-VALUE}).")
        int hfTimeout;

        @Option(names = "--no-streamed", description = "Skip the streamed-layers run.")
        boolean noStreamed;

        @Option(names = "--json", paramLabel = "FILE", description = "Write both sides' figures and their ratios as one JSON.")
        Path json;

        @picocli.CommandLine.Mixin
        GlobalOptions global;

        @Override
        public Integer call() throws IOException {
            return GpuBench.run(new GpuBench.Options(shape, tokens, GpuBench.parseDtypes(dtypes), hf, hfScript, python, !noStreamed,
                    hfTimeout), json);
        }
    }

    /**
     * Issue #18: the cuda forward split over several GPUs of this host against today's layer streaming on one, on a
     * real shape with seeded weights generated on the devices (forward/cuda/MultiDeviceBench). Exit 1 when the two
     * runs' logits differ (they must be bit-identical).
     */
    @Command(name = "multigpu", mixinStandardHelpOptions = true, sortOptions = false,
            description = "Time the cuda:bf16 forward split over --devices against the same weights streamed on device 0.")
    static final class MultiGpu implements Callable<Integer> {
        @Option(names = "--shape", defaultValue = "llama3-70b", description = "Shape (default: ${DEFAULT-VALUE}).")
        String shape;

        @Option(names = "--layers", paramLabel = "N", description = "Only the shape's first N layers (default: all).")
        Integer layers;

        @Option(names = "--tokens", defaultValue = "2048", description = "Input length (default: ${DEFAULT-VALUE}).")
        int tokens;

        @Option(names = "--devices", defaultValue = "0,0", paramLabel = "LIST",
                description = "CUDA devices, comma-separated; a repeated one is another context on it (default: ${DEFAULT-VALUE}).")
        String devices;

        @Option(names = "--split", defaultValue = "auto", paramLabel = "auto|even",
                description = "auto: the planner's ranges (one device when the model fits it); even: equal layer counts on every listed device (default: ${DEFAULT-VALUE}).")
        String split;

        @Option(names = "--reps", defaultValue = "3", description = "Timed forwards of each run (default: ${DEFAULT-VALUE}).")
        int reps;

        @Option(names = "--no-streamed", description = "Skip the streamed baseline.")
        boolean noStreamed;

        @Option(names = "--json", paramLabel = "FILE", description = "Write the figures as JSON.")
        Path json;

        @picocli.CommandLine.Mixin
        GlobalOptions global;

        @Override
        public Integer call() throws IOException {
            if (!split.equals("auto") && !split.equals("even"))
                throw new BadInputException("bench multigpu: --split must be auto or even, got '" + split + "'");
            int[] list = modeldiff.forward.cuda.LayerPlacement.parseDevices(devices);
            if (list == null) throw new BadInputException("bench multigpu: --devices is empty");
            modeldiff.synth.Shapes.configJson(shape);   // an unknown shape is bad input before the GPU is touched
            if (CudaRuntime.get() == null) throw new BadInputException("bench multigpu: CUDA unavailable: " + CudaRuntime.unavailableReason());
            var r = modeldiff.forward.cuda.MultiDeviceBench.run(new modeldiff.forward.cuda.MultiDeviceBench.Options(shape, layers, tokens,
                    list, split.equals("even"), reps, !noStreamed), System.out);
            System.out.print(r.json());
            if (json != null) {
                AtomicFiles.writeString(json, r.json());
                System.out.println("wrote " + json);
            }
            return r.logitsAgree() ? 0 : 1;
        }
    }

    /**
     * Multiply-adds ×2 of one forward: the projections, the LM head and causal attention (T(T+1)/2 query-key pairs
     * per head, for scores and for the weighted sum). Norms, RoPE and softmax are left out (a few per cent at most).
     */
    static double forwardFlops(ModelConfig c, int T) {
        double h = c.hiddenSize, qd = c.qDim(), kvd = c.kvDim(), ff = c.intermediateSize;
        double perLayer = 2.0 * T * (h * qd + 2 * h * kvd + qd * h + (c.family.mlp == Family.Mlp.GATED ? 3 : 2) * h * ff)
                + 2.0 * 2 * c.numHeads * c.headDim * (T * (T + 1) / 2.0);
        return c.numLayers * perLayer + 2.0 * T * h * c.vocabSize;
    }

    static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    static String cpuModel() {
        try (Stream<String> lines = Files.lines(Path.of("/proc/cpuinfo"))) {
            return lines.filter(l -> l.startsWith("model name")).map(l -> l.substring(l.indexOf(':') + 1).trim()).findFirst().orElse("unknown");
        } catch (IOException | RuntimeException e) {
            return System.getProperty("os.arch");
        }
    }

    static void deleteTree(Path root) {
        try (Stream<Path> s = Files.walk(root)) {
            List<Path> all = new ArrayList<>(s.toList());
            all.sort(Comparator.reverseOrder());
            for (Path q : all) Files.deleteIfExists(q);
        } catch (IOException e) {
            System.err.println("modeldiff: could not delete " + root + ": " + e.getMessage());
        }
    }
}
