package modeldiff.forward.cuda;

import modeldiff.forward.Fixes;
import modeldiff.forward.ProbeLevel;
import modeldiff.model.BadInputException;
import modeldiff.model.ModelConfig;
import modeldiff.numeric.Precision;
import modeldiff.synth.Shapes;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Issue #18's benchmark: a model of a real shape (default llama3-70b, optionally only its first {@code layers}
 * layers) with seeded weights generated on the devices ({@link SyntheticModel}: nothing is written to disk, so the full
 * 141 GB model needs no folder), its forward split over a device list, against today's fallback for a model larger
 * than one GPU, the same weights streamed layer by layer on device 0 ({@link StreamedModel}), on the same tokens.
 * Times are wall clock per forward (best and mean of the reps, after a warm-up), without probe copies and with the
 * layer outputs and logits copied to the host; the two runs' logits must be bit-identical (the same seeds, and a split
 * forward computes what one device computes).
 */
public final class MultiDeviceBench {
    private MultiDeviceBench() {
    }

    /**
     * What to measure: the shape and how many of its layers (null: all), tokens, the device list, how the layers are
     * split (even: by count over every listed slot, also when the model would fit one device, the one-GPU "0,0"
     * measurement; else the automatic {@link LayerPlacement} plan), timed reps, whether to run the streamed baseline.
     */
    public record Options(String shape, Integer layers, int tokens, int[] devices, boolean even, int reps, boolean streamed) {
    }

    /** The JSON text and whether the two runs' logits agree (true when there was nothing to compare). */
    public record Result(String json, boolean logitsAgree) {
    }

    /** The self-test's entry: llama3-70b's first {@code layers} layers, devices from -Dmodeldiff.cuda.devices or "0,0", even split. */
    static boolean run(CudaRuntime rt, int layers, int tokens, Path json, PrintStream out) throws java.io.IOException {
        int[] devices = LayerPlacement.parseDevices(System.getProperty(CudaPass.DEVICES));
        Result r = run(new Options("llama3-70b", layers, tokens, devices == null ? new int[]{0, 0} : devices, true, 3, true), out);
        if (json != null) java.nio.file.Files.writeString(json, r.json());
        out.print(r.json());
        return r.logitsAgree();
    }

    /** The shape's config with its layer count cut to {@code layers} (null: as released). */
    static ModelConfig config(String shape, Integer layers) {
        String text = Shapes.configJson(shape);
        if (layers != null) {
            if (layers < 1) throw new BadInputException("bench multigpu: --layers must be positive, got " + layers);
            text = text.replaceFirst("\"num_hidden_layers\":\\s*\\d+", "\"num_hidden_layers\": " + layers);
        }
        return ModelConfig.parse(Path.of(shape + ".json"), text.getBytes(StandardCharsets.UTF_8));
    }

    /** The planner's sizes for a synthetic model (its layers' linear weights + norms, embedding, head). */
    static LayerPlacement.Request request(ModelConfig c, Precision p, long[] budgets) {
        int es = p == Precision.FP32 ? 4 : 2;
        long[] layers = new long[c.numLayers];
        Arrays.fill(layers, SyntheticModel.layerElems(c) * es + 4L * 4 * c.hiddenSize);
        long matrix = (long) c.vocabSize * c.hiddenSize * es;
        return new LayerPlacement.Request(layers, matrix, matrix, c.tieWordEmbeddings, budgets);
    }

    public static Result run(Options o, PrintStream out) {
        Locale.setDefault(Locale.ROOT);
        if (o.tokens() < 1 || o.reps() < 1) throw new BadInputException("bench multigpu: --tokens and --reps must be positive");
        ModelConfig c = config(o.shape(), o.layers());
        Precision p = Precision.BF16;
        int[] ids = new int[o.tokens()];
        java.util.Random r = new java.util.Random(7);
        for (int i = 0; i < ids.length; i++) ids[i] = r.nextInt(c.vocabSize);
        List<CudaRuntime> rts = CudaRuntime.devices(o.devices());
        StringBuilder js = new StringBuilder("{\n  \"format\": \"modeldiff-bench-multigpu/1\",\n");
        js.append(String.format("  \"shape\": \"%s\",\n  \"layers\": %d,\n  \"tokens\": %d,\n  \"dtype\": \"bf16\",\n  \"devices\": \"%s\",\n",
                o.shape(), c.numLayers, o.tokens(), Arrays.toString(o.devices())));
        List<String> cards = new ArrayList<>();
        for (CudaRuntime rt : rts)
            cards.add(String.format("{\"ordinal\": %d, \"context\": \"%s\", \"card\": \"%s\"}", rt.ordinal, rt.created ? "created" : "primary",
                    rt.deviceName));
        js.append("  \"slots\": [").append(String.join(", ", cards)).append("],\n");
        js.append(String.format("  \"split_rule\": \"%s\",\n", o.even() ? "even" : "auto"));
        LayerPlacement.Result plan = o.even() ? LayerPlacement.even(c.numLayers, rts.size())
                : LayerPlacement.plan(request(c, p, DeviceModel.budgets(rts, o.devices())));
        float[] splitLogits = null, streamedLogits = null;
        double[] best = new double[1];
        double splitBest = -1, streamedBest = -1;
        if (plan instanceof LayerPlacement.Split s) {
            DeviceModel.Placement where = new DeviceModel.Placement(rts, s);
            out.println("split: " + where.describe());
            js.append(String.format("  \"split_layout\": \"%s\",\n", where.describe()));
            List<String> peers = new ArrayList<>();
            List<CudaRuntime> used = where.used();
            for (int j = 1; j < used.size(); j++) peers.add(String.valueOf(used.get(j - 1).peerAccess(used.get(j))));
            js.append("  \"peer_access_per_boundary\": [").append(String.join(", ", peers)).append("],\n");
            long t0 = System.nanoTime();
            try (DeviceModel dm = SyntheticModel.generate(c, p, 42, where)) {
                splitLogits = time("split", dm, ids, o.reps(), (System.nanoTime() - t0) / 1e9, js, out, best);
                splitBest = best[0];
            }
        } else {
            String why = ((LayerPlacement.Refused) plan).reason();
            out.println("split: not possible: " + why);
            js.append(String.format("  \"split_refused\": \"%s\",\n", why.replace("\"", "'")));
        }
        CudaPass.forgetWeights();
        if (o.streamed()) {
            CudaRuntime rt0 = CudaRuntime.get();
            long t0 = System.nanoTime();
            try (DeviceModel dm = StreamedModel.synthetic(c, p, 42, new DeviceKernels(rt0))) {
                streamedLogits = time("streamed", dm, ids, o.reps(), (System.nanoTime() - t0) / 1e9, js, out, best);
                streamedBest = best[0];
            } catch (RuntimeException | OutOfMemoryError e) {   // e.g. page-locked host memory for 141 GB
                String why = e.getClass().getSimpleName() + ": " + String.valueOf(e.getMessage()).lines().findFirst().orElse("");
                out.println("streamed: failed: " + why);
                js.append(String.format("  \"streamed_failed\": \"%s\",\n", why.replace("\"", "'")));
            }
        }
        if (splitBest > 0 && streamedBest > 0) {
            js.append(String.format(Locale.ROOT, "  \"streamed_over_split\": %.3f,\n", streamedBest / splitBest));
            out.printf(Locale.ROOT, "streamed / split forward time: %.2f%n", streamedBest / splitBest);
        }
        boolean agree = splitLogits == null || streamedLogits == null || Arrays.equals(splitLogits, streamedLogits);
        if (splitLogits != null && streamedLogits != null) {
            js.append(String.format("  \"logits_identical\": %s,\n", agree));
            out.println("logits split vs streamed: " + (agree ? "identical" : "DIFFER"));
        }
        js.setLength(js.length() - 2);
        js.append("\n}\n");
        return new Result(js.toString(), agree);
    }

    /**
     * Warm-up (also the logits), then reps forwards without copies and reps with the layer outputs and logits to
     * the host; appends "{label}_…" keys; returns the logits (bestMs[0]: the best time without copies).
     */
    private static float[] time(String label, DeviceModel dm, int[] ids, int reps, double made, StringBuilder js, PrintStream out,
                                double[] bestMs) {
        CudaPass pass = new CudaPass(Precision.BF16, Fixes.NONE);
        CudaRuntime rt = CudaRuntime.get();
        pass.forward(rt, dm, ids, 0, ProbeLevel.LAYERS, null);
        float[] logits = CudaPass.workspaceLogits(dm, ids.length);
        double[] bare = timed(() -> pass.forward(rt, dm, ids, 0, ProbeLevel.LAYERS, null), reps);
        long[] copied = {0};
        CudaPass.ProbeSink sink = (name, cols, data) -> copied[0] += data.remaining();
        double[] copies = timed(() -> pass.forward(rt, dm, ids, 0, ProbeLevel.LAYERS, sink), reps);
        out.printf(Locale.ROOT, "%s: %.2f GB of weights made in %.1f s; forward best %.1f ms, mean %.1f ms; with layer outputs + logits "
                + "to the host (%.2f GB) best %.1f ms%n", label, dm.bytes() / 1e9, made, bare[0], bare[1], copied[0] * 4.0 / reps / 1e9, copies[0]);
        js.append(String.format(Locale.ROOT, "  \"%s_weights_gb\": %.3f,\n  \"%s_made_s\": %.2f,\n  \"%s_forward_ms_best\": %.2f,\n"
                        + "  \"%s_forward_ms_mean\": %.2f,\n  \"%s_forward_with_copies_ms_best\": %.2f,\n", label, dm.bytes() / 1e9, label, made,
                label, bare[0], label, bare[1], label, copies[0]));
        bestMs[0] = bare[0];
        return logits;
    }

    /** {best, mean} wall ms of reps runs (each forward returns once every slot is synchronised). */
    private static double[] timed(Runnable r, int reps) {
        double best = Double.MAX_VALUE, sum = 0;
        for (int i = 0; i < reps; i++) {
            long t = System.nanoTime();
            r.run();
            double ms = (System.nanoTime() - t) / 1e6;
            best = Math.min(best, ms);
            sum += ms;
        }
        return new double[]{best, sum / reps};
    }
}
