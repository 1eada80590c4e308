package modeldiff.forward.cuda;

import jcuda.driver.CUdeviceptr;
import modeldiff.forward.Fixes;
import modeldiff.forward.ForwardInput;
import modeldiff.forward.ForwardPass;
import modeldiff.forward.ProbeLevel;
import modeldiff.model.BadInputException;
import modeldiff.model.Family;
import modeldiff.model.LayerSpec;
import modeldiff.model.Model;
import modeldiff.model.ModelConfig;
import modeldiff.model.RopeSpec;
import modeldiff.numeric.Rope;
import modeldiff.trace.Trace;

import java.util.ArrayList;
import java.util.List;

/**
 * The forward pass on an NVIDIA GPU with modeldiff's own kernels (src/main/cuda), through JCuda's driver API.
 * cuda:fp32 computes in fp32 with FFMA GEMMs (a fast check against the float64 reference); cuda:bf16 stores weights
 * in bf16, runs GEMMs on tensor cores with fp32 accumulation and rounds each op's result to bf16 where HF's eager
 * path does (as forward/lowp does on the CPU), except inside attention, which is flash-style: probabilities are never
 * rounded. Same probes as every pass; they are copied back to the host per layer.
 */
public final class CudaPass implements ForwardPass {
    private final boolean bf16;
    private final Fixes fixes;

    private static DeviceModel cached;   // one model's weights stay on the GPU between runs

    public CudaPass(boolean bf16, Fixes fixes) {
        this.bf16 = bf16;
        this.fixes = fixes;
    }

    @Override
    public String name() {
        return bf16 ? "cuda:bf16" : "cuda:fp32";
    }

    @Override
    public String dtype() {
        return bf16 ? "bfloat16" : "float32";
    }

    /** The runtime, or a BadInputException "cuda:bf16 unavailable: reason". */
    CudaRuntime runtime() {
        CudaRuntime rt = CudaRuntime.get();
        if (rt == null) throw new BadInputException(name() + " unavailable: " + CudaRuntime.unavailableReason());
        return rt;
    }

    @Override
    public Trace run(Model model, ForwardInput input, ProbeLevel level) {
        CudaRuntime rt = runtime();
        DeviceModel dm = weights(model);
        int[] tokens = fixes.tokens(input.tokens(), model.config);
        Trace trace = new Trace("modeldiff " + name() + (fixes.isEmpty() ? "" : " fixes=" + fixes.ids()), dtype(),
                "cuda (" + rt.deviceName + ")", tokens, input.positionOffset());
        if (!fixes.isEmpty()) trace.putExtra("fixes", fixes.ids().toString());
        forward(rt, dm, tokens, input.positionOffset(), level,
                (name, cols, data) -> trace.put(name, cols, widen(data)));
        return trace;
    }

    private synchronized DeviceModel weights(Model model) {
        synchronized (CudaPass.class) {
            if (cached != null && cached.key == model && cached.bf16 == bf16) return cached;
            if (cached != null) cached.close();
            cached = null;
            cached = DeviceModel.upload(model, bf16);
            return cached;
        }
    }

    /** Receives each probe as it is copied back: name, width, [tokens × width] values. */
    public interface ProbeSink {
        void accept(String name, int cols, float[] data);
    }

    /** The forward pass over device weights; {@code sink} null = copy nothing back (timing). */
    public void forward(CudaRuntime rt, DeviceModel dm, int[] tokens, long positionOffset, ProbeLevel level, ProbeSink sink) {
        ModelConfig c = dm.config;
        Family f = c.family;
        Kernels k = new Kernels(rt);
        boolean bf = bf16;
        int T = tokens.length, H = c.hiddenSize, hd = c.headDim, qd = c.qDim(), kvd = c.kvDim(), ff = c.intermediateSize;
        int V = c.vocabSize;
        for (int t = 0; t < T; t++)
            if (tokens[t] < 0 || tokens[t] >= V)
                throw new BadInputException("token id " + tokens[t] + " at index " + t + " is outside the vocabulary [0, " + V + ")");
        if (positionOffset + T > Integer.MAX_VALUE) throw new BadInputException("positions beyond 2^31 are not supported on cuda");
        int pos0 = (int) positionOffset;
        if (dm.positions != null && pos0 + T > c.maxPositionEmbeddings)
            throw new BadInputException("position " + (pos0 + T - 1) + " is beyond the model's " + c.maxPositionEmbeddings + " learned positions");
        if (hd > Kernels.ATTN_MAX_HEAD_DIM) throw new BadInputException(name() + ": head_dim " + hd + " > " + Kernels.ATTN_MAX_HEAD_DIM);
        boolean all = level == ProbeLevel.ALL;
        List<CUdeviceptr> tmp = new ArrayList<>();
        try {
            CUdeviceptr ids = keep(tmp, CudaRuntime.upload(tokens));
            CUdeviceptr x = buf(tmp, (long) T * H), a = buf(tmp, (long) T * H), o = buf(tmp, (long) T * H);
            CUdeviceptr q = buf(tmp, (long) T * qd), kk = buf(tmp, (long) T * kvd), v = buf(tmp, (long) T * kvd);
            CUdeviceptr att = buf(tmp, (long) T * qd), g = buf(tmp, (long) T * ff), u = buf(tmp, (long) T * ff);
            CUdeviceptr act = buf(tmp, (long) T * ff), logits = buf(tmp, (long) T * V);

            // embedding: Gemma scales by sqrt(hidden) rounded to the dtype (embed.scale_fp32: the fp32 constant)
            double scale = fixes.embedScale(c);
            float scaleF = bf && !fixes.embedScaleFp32 ? CudaRuntime.bf16Round((float) scale) : (float) scale;
            k.embed(x, dm.embedding, bf, ids, T, H, scaleF, scale != 1.0, bf);
            if (dm.positions != null) k.addPositions(x, dm.positions, T, H, pos0, bf);
            probe(sink, "embed", x, T, H);

            float eps = (float) fixes.eps(c);
            boolean unit = fixes.unitOffset(f.norm), centered = f.norm.centered();
            boolean weightThenCast = f.normCast == Family.NormCast.WEIGHT_THEN_CAST && !fixes.normCastBeforeWeight;
            int actKind = fixes.activation(c).ordinal();
            boolean geluNew = !fixes.activationOverridden() && "gelu_new".equals(c.activationName);
            float attnCap = (float) fixes.attnSoftcap(c);
            boolean divide = bf && f.scoreScaleByDivision && !fixes.attnScaleOverridden();
            float scaleDiv = CudaRuntime.bf16Round((float) Math.sqrt(hd));

            for (int i = 0; i < c.numLayers; i++) {
                DeviceModel.Layer w = dm.layers.get(i);
                LayerSpec spec = c.layers.get(i);
                String p = "layers." + i + ".";
                norm(k, a, x, w.attnNorm(), T, H, eps, centered, unit, weightThenCast);
                linear(k, dm, q, a, w.q(), T);
                linear(k, dm, kk, a, w.k(), T);
                linear(k, dm, v, a, w.v(), T);
                if (f.qkNorm) {
                    norm(k, q, q, w.qNorm(), T * c.numHeads, hd, eps, centered, unit, weightThenCast);
                    norm(k, kk, kk, w.kNorm(), T * c.numKvHeads, hd, eps, centered, unit, weightThenCast);
                }
                if (!f.learnedPositions) {
                    RopeSpec rope = fixes.rope(spec.rope());
                    int rot = Rope.rotaryDim(hd, rope.partialRotaryFactor());
                    Rope.Frequencies fr = Rope.frequencies(rope, rot, positionOffset + T);
                    float[] inv = bf ? invFreqFp32(rope, rot, positionOffset + T) : toFloat(fr.invFreq());
                    if (bf && fixes.ropeInvFreqLowp) for (int j = 0; j < inv.length; j++) inv[j] = CudaRuntime.bf16Round(inv[j]);
                    CUdeviceptr invD = keep(tmp, CudaRuntime.upload(inv));
                    k.rope(q, T, c.numHeads, hd, inv.length, invD, pos0, (float) fr.attentionScaling(), fixes.qkInterleaved, fixes.ropeBf16Angles, bf);
                    k.rope(kk, T, c.numKvHeads, hd, inv.length, invD, pos0, (float) fr.attentionScaling(), fixes.qkInterleaved, fixes.ropeBf16Angles, bf);
                }
                k.attention(att, q, kk, v, T, c.numHeads, c.numKvHeads, hd, fixes.window(spec), (float) fixes.attnScale(spec),
                        divide, scaleDiv, attnCap, bf);
                linear(k, dm, o, att, w.o(), T);
                if (all) {
                    probe(sink, p + "attn_norm", a, T, H);
                    probe(sink, p + "q", q, T, qd);
                    probe(sink, p + "k", kk, T, kvd);
                    probe(sink, p + "v", v, T, kvd);
                    probe(sink, p + "attn", att, T, qd);
                    probe(sink, p + "attn_out", o, T, H);
                }
                if (w.postAttnNorm() != null) norm(k, o, o, w.postAttnNorm(), T, H, eps, centered, unit, weightThenCast);
                k.residualAdd(x, o, (long) T * H, bf);

                norm(k, a, x, w.mlpNorm(), T, H, eps, centered, unit, weightThenCast);
                if (f.mlp == Family.Mlp.GATED) {
                    linear(k, dm, g, a, fixes.swapGateUp ? w.up() : w.gate(), T);
                    linear(k, dm, u, a, fixes.swapGateUp ? w.gate() : w.up(), T);
                    k.mlpAct(act, g, u, (long) T * ff, actKind, geluNew, bf);
                } else {
                    linear(k, dm, g, a, w.up(), T);
                    k.mlpAct(act, g, null, (long) T * ff, actKind, geluNew, bf);
                }
                linear(k, dm, o, act, w.down(), T);
                if (all) {
                    probe(sink, p + "mlp_norm", a, T, H);
                    probe(sink, p + "mlp_act", act, T, ff);
                    probe(sink, p + "mlp_out", o, T, H);
                }
                if (w.postMlpNorm() != null) norm(k, o, o, w.postMlpNorm(), T, H, eps, centered, unit, weightThenCast);
                k.residualAdd(x, o, (long) T * H, bf);
                probe(sink, "layers." + i, x, T, H);
            }
            norm(k, a, x, dm.finalNorm, T, H, eps, centered, unit, weightThenCast);
            probe(sink, "final_norm", a, T, H);
            k.gemm(logits, a, dm.lmHead, bf, null, T, V, H, bf);
            double cap = fixes.finalSoftcap(c);
            if (!Double.isNaN(cap)) k.softcap(logits, (long) T * V, (float) cap, bf);
            probe(sink, "logits", logits, T, V);
            CudaRuntime.sync();
        } finally {
            for (CUdeviceptr d : tmp) CudaRuntime.free(d);
        }
    }

    private void norm(Kernels k, CUdeviceptr out, CUdeviceptr in, DeviceModel.Nrm n, int rows, int dim, float eps,
                      boolean centered, boolean unit, boolean weightThenCast) {
        k.norm(out, in, n.w(), n.b(), rows, dim, eps, centered, unit, weightThenCast, bf16);
    }

    private void linear(Kernels k, DeviceModel dm, CUdeviceptr out, CUdeviceptr in, DeviceModel.Lin l, int T) {
        k.gemm(out, in, l.w(), dm.bf16, l.b(), T, l.out(), l.in(), bf16);
    }

    private static void probe(ProbeSink sink, String name, CUdeviceptr d, int rows, int cols) {
        if (sink != null) sink.accept(name, cols, CudaRuntime.download(d, rows * cols));
    }

    private static CUdeviceptr buf(List<CUdeviceptr> tmp, long floats) {
        return keep(tmp, CudaRuntime.alloc(floats * 4));
    }

    private static CUdeviceptr keep(List<CUdeviceptr> tmp, CUdeviceptr p) {
        tmp.add(p);
        return p;
    }

    static double[] widen(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) d[i] = f[i];
        return d;
    }

    private static float[] toFloat(double[] d) {
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) f[i] = (float) d[i];
        return f;
    }

    /**
     * inv_freq as HF computes it at init, in fp32 (1 / base ** (arange(0, dim, 2).float() / dim), then the rope type's
     * adjustments in fp32); types other than default / linear / llama3 take the float64 formula rounded to fp32.
     */
    static float[] invFreqFp32(RopeSpec spec, int rot, long seqLen) {
        int half = rot / 2;
        float[] inv = new float[half];
        float base = (float) spec.theta();
        switch (spec.type()) {
            case "default", "linear", "llama3" -> {
                for (int j = 0; j < half; j++) inv[j] = 1.0f / (float) Math.pow(base, (float) (2 * j) / rot);
                if (spec.type().equals("linear")) for (int j = 0; j < half; j++) inv[j] = inv[j] / (float) spec.factor();
                if (spec.type().equals("llama3")) {
                    float factor = (float) spec.factor(), low = (float) spec.lowFreqFactor(), high = (float) spec.highFreqFactor();
                    float old = spec.originalMaxPositions();
                    float lowWavelen = (float) (spec.originalMaxPositions() / spec.lowFreqFactor());
                    float highWavelen = (float) (spec.originalMaxPositions() / spec.highFreqFactor());
                    for (int j = 0; j < half; j++) {
                        float wavelen = (float) (2 * Math.PI) / inv[j];
                        float scaled = wavelen > lowWavelen ? inv[j] / factor : inv[j];
                        float smooth = (old / wavelen - low) / (high - low);
                        float smoothed = (1 - smooth) * scaled / factor + smooth * scaled;
                        boolean medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
                        inv[j] = medium ? smoothed : scaled;
                    }
                }
            }
            default -> {
                double[] d = Rope.frequencies(spec, rot, seqLen).invFreq();
                for (int j = 0; j < half; j++) inv[j] = (float) d[j];
            }
        }
        return inv;
    }
}
