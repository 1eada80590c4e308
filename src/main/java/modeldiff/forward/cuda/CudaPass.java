package modeldiff.forward.cuda;

import jcuda.Pointer;
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

import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;

import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

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
        modeldiff.forward.torch.TorchPass.refuseUnsupported(name(), model);
        CudaRuntime rt = runtime();
        DeviceModel dm = weights(model);
        int[] tokens = fixes.tokens(input.tokens(), model.config);
        Trace trace = new Trace("modeldiff " + name() + (fixes.isEmpty() ? "" : " fixes=" + fixes.ids()), dtype(),
                "cuda (" + rt.deviceName + ")", tokens, input.positionOffset());
        if (!fixes.isEmpty()) trace.putExtra("fixes", fixes.ids().toString());
        if (dm.streamed()) trace.putExtra("cuda_weights", "streamed layer by layer");
        forward(rt, dm, tokens, input.positionOffset(), level,
                (name, cols, data) -> trace.put(name, cols, widen(data)));
        return trace;
    }

    /** Test hook: stream the layers (maxWeightBytes applies only when not forced). */
    boolean forceStreamed;

    private synchronized DeviceModel weights(Model model) {
        synchronized (CudaPass.class) {
            if (cached != null && cached.key == model && cached.bf16 == bf16 && (!forceStreamed || cached.streamed())) return cached;
            if (cached != null) cached.close();
            cached = null;
            cached = DeviceModel.upload(model, bf16, DeviceModel.maxWeightBytes(), forceStreamed);
            return cached;
        }
    }

    /** Receives each probe as it reaches the host: name, width, [tokens × width] values (valid during the call only). */
    public interface ProbeSink {
        void accept(String name, int cols, FloatBuffer data);
    }

    /** Device buffers of one forward, kept with the model between runs (reallocated for more tokens). */
    static final class Workspace implements AutoCloseable {
        final int T;
        final List<CUdeviceptr> all = new ArrayList<>();
        CUdeviceptr ids, x, a, o, q, k, v, att, g, u, act, logits;
        CUdeviceptr aB, attB, actB, qB, kB, vB;   // bf16 copies (bf16 mode)
        final ProbeCopier copier;

        Workspace(CudaRuntime rt, ModelConfig c, int T, boolean bf16) {
            this.T = T;
            int H = c.hiddenSize, qd = c.qDim(), kvd = c.kvDim(), ff = c.intermediateSize;
            ids = f(T);
            x = f((long) T * H);
            a = f((long) T * H);
            o = f((long) T * H);
            q = f((long) T * qd);
            k = f((long) T * kvd);
            v = f((long) T * kvd);
            att = f((long) T * qd);
            g = f((long) T * ff);
            u = f((long) T * ff);
            act = f((long) T * ff);
            logits = f((long) T * c.vocabSize);
            if (bf16) {
                aB = h((long) T * H);
                attB = h((long) T * qd);
                actB = h((long) T * ff);
                qB = h((long) T * qd);
                kB = h((long) T * kvd);
                vB = h((long) T * kvd);
            }
            copier = new ProbeCopier(rt);
        }

        private CUdeviceptr f(long n) {
            CUdeviceptr p = CudaRuntime.alloc(n * 4);
            all.add(p);
            return p;
        }

        private CUdeviceptr h(long n) {
            CUdeviceptr p = CudaRuntime.alloc(n * 2);
            all.add(p);
            return p;
        }

        @Override
        public void close() {
            copier.close();
            CudaRuntime.sync();
            for (CUdeviceptr p : all) CudaRuntime.free(p);
            all.clear();
        }
    }

    private Workspace workspace(CudaRuntime rt, DeviceModel dm, int T) {
        if (dm.workspace instanceof Workspace w && w.T >= T) return w;
        if (dm.workspace != null) {
            try {
                dm.workspace.close();
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }
        Workspace w = new Workspace(rt, dm.config, T, dm.bf16);
        dm.workspace = w;
        return w;
    }

    /** Rows of the LM head computed (and copied back) per step, so the logits' copy overlaps the rest. */
    static final int LOGIT_CHUNKS = 4;

    /**
     * The forward pass over device weights; {@code sink} null = copy nothing back (timing). Kernels run on the legacy
     * default stream; probes are copied to page-locked host memory on a second stream while later layers compute
     * ({@link ProbeCopier}); every probe has reached the sink when this returns.
     */
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
        if (T == 0) throw new BadInputException("no tokens");
        boolean all = level == ProbeLevel.ALL;
        Workspace ws = workspace(rt, dm, T);
        ProbeCopier pc = ws.copier;
        long TH = 4L * T * H, logitBytes = 4L * T * V;
        long layerNeed = all ? 4L * T * (4L * H + 2L * qd + 2L * kvd + ff) : 0;
        long hostNeed = TH * (c.numLayers + 2) + logitBytes + c.numLayers * layerNeed;
        long largestStaged = all ? Math.max(TH, 4L * T * Math.max(ff, Math.max(qd, kvd))) : TH;
        pc.begin(sink, hostNeed, Math.max(logitBytes, largestStaged), TH * (c.numLayers + 1) + c.numLayers * layerNeed, largestStaged);
        List<CUdeviceptr> tmp = new ArrayList<>();
        try {
            cuMemcpyHtoD(ws.ids, Pointer.to(tokens), 4L * T);
            CUdeviceptr ids = ws.ids, x = ws.x, a = ws.a, o = ws.o, q = ws.q, kk = ws.k, v = ws.v, att = ws.att, g = ws.g,
                    u = ws.u, act = ws.act, logits = ws.logits;
            CUdeviceptr aB = ws.aB, attB = ws.attB, actB = ws.actB;
            dm.startForward();

            // embedding: Gemma scales by sqrt(hidden) rounded to the dtype (embed.scale_fp32: the fp32 constant)
            double scale = fixes.embedScale(c);
            float scaleF = bf && !fixes.embedScaleFp32 ? CudaRuntime.bf16Round((float) scale) : (float) scale;
            k.embed(x, dm.embedding, bf, ids, T, H, scaleF, scale != 1.0, bf);
            if (dm.positions != null) k.addPositions(x, dm.positions, T, H, pos0, bf);
            pc.probe("embed", x, T, H, false);

            float eps = (float) fixes.eps(c);
            boolean unit = fixes.unitOffset(f.norm), centered = f.norm.centered();
            boolean weightThenCast = f.normCast == Family.NormCast.WEIGHT_THEN_CAST && !fixes.normCastBeforeWeight;
            int actKind = fixes.activation(c).ordinal();
            boolean geluNew = !fixes.activationOverridden() && "gelu_new".equals(c.activationName);
            float attnCap = (float) fixes.attnSoftcap(c);
            boolean divide = bf && f.scoreScaleByDivision && !fixes.attnScaleOverridden();
            float scaleDiv = CudaRuntime.bf16Round((float) Math.sqrt(hd));

            // RoPE inverse frequencies, once per distinct spec (uploads before the layers: no host stalls inside)
            Map<RopeSpec, CUdeviceptr> invD = new HashMap<>();
            Map<RopeSpec, float[]> invH = new HashMap<>();
            Map<RopeSpec, Float> ropeScaling = new HashMap<>();
            if (!f.learnedPositions) {
                for (int i = 0; i < c.numLayers; i++) {
                    RopeSpec rope = fixes.rope(c.layers.get(i).rope());
                    if (invD.containsKey(rope)) continue;
                    int rot = Rope.rotaryDim(hd, rope.partialRotaryFactor());
                    Rope.Frequencies fr = Rope.frequencies(rope, rot, positionOffset + T);
                    float[] inv = bf ? Rope.invFreqFp32(rope, rot, positionOffset + T) : toFloat(fr.invFreq());
                    if (bf && fixes.ropeInvFreqLowp) for (int j = 0; j < inv.length; j++) inv[j] = CudaRuntime.bf16Round(inv[j]);
                    invD.put(rope, keep(tmp, CudaRuntime.upload(inv)));
                    invH.put(rope, inv);
                    ropeScaling.put(rope, (float) fr.attentionScaling());
                }
            }
            boolean tcAtt = bf && k.tcAttention(hd);

            for (int i = 0; i < c.numLayers; i++) {
                dm.acquire(i);
                DeviceModel.Layer w = dm.layers.get(i);
                LayerSpec spec = c.layers.get(i);
                String p = "layers." + i + ".";
                norm(k, a, aB, x, w.attnNorm(), T, H, eps, centered, unit, weightThenCast);
                if (all) pc.probe(p + "attn_norm", a, T, H, false);
                linear(k, dm, q, a, aB, w.q(), T);
                linear(k, dm, kk, a, aB, w.k(), T);
                linear(k, dm, v, a, aB, w.v(), T);
                if (f.qkNorm) {
                    norm(k, q, null, q, w.qNorm(), T * c.numHeads, hd, eps, centered, unit, weightThenCast);
                    norm(k, kk, null, kk, w.kNorm(), T * c.numKvHeads, hd, eps, centered, unit, weightThenCast);
                }
                if (!f.learnedPositions) {
                    RopeSpec rope = fixes.rope(spec.rope());
                    int half = invH.get(rope).length;
                    CUdeviceptr inv = invD.get(rope);
                    float sc = ropeScaling.get(rope);
                    k.rope(q, T, c.numHeads, hd, half, inv, pos0, sc, fixes.qkInterleaved, fixes.ropeBf16Angles, bf);
                    k.rope(kk, T, c.numKvHeads, hd, half, inv, pos0, sc, fixes.qkInterleaved, fixes.ropeBf16Angles, bf);
                }
                if (all) {
                    pc.probe(p + "q", q, T, qd, false);
                    pc.probe(p + "k", kk, T, kvd, false);
                    pc.probe(p + "v", v, T, kvd, false);
                }
                float attScale = (float) fixes.attnScale(spec);
                int window = fixes.window(spec);
                if (tcAtt) {
                    k.toBf16(ws.qB, q, (long) T * qd);
                    k.toBf16(ws.kB, kk, (long) T * kvd);
                    k.toBf16(ws.vB, v, (long) T * kvd);
                    k.attentionTc(att, attB, ws.qB, ws.kB, ws.vB, T, c.numHeads, c.numKvHeads, hd, window, attScale, divide,
                            scaleDiv, attnCap, bf);
                } else {
                    k.attention(att, q, kk, v, T, c.numHeads, c.numKvHeads, hd, window, attScale, divide, scaleDiv, attnCap, bf);
                    if (attB != null) k.toBf16(attB, att, (long) T * qd);
                }
                if (all) pc.probe(p + "attn", att, T, qd, false);
                linear(k, dm, o, att, attB, w.o(), T);
                if (all) pc.probe(p + "attn_out", o, T, H, false);
                if (w.postAttnNorm() != null) norm(k, o, null, o, w.postAttnNorm(), T, H, eps, centered, unit, weightThenCast);
                k.residualAdd(x, o, (long) T * H, bf);

                norm(k, a, aB, x, w.mlpNorm(), T, H, eps, centered, unit, weightThenCast);
                if (all) pc.probe(p + "mlp_norm", a, T, H, false);
                if (f.mlp == Family.Mlp.GATED) {
                    linear(k, dm, g, a, aB, fixes.swapGateUp ? w.up() : w.gate(), T);
                    linear(k, dm, u, a, aB, fixes.swapGateUp ? w.gate() : w.up(), T);
                    k.mlpAct(act, actB, g, u, (long) T * ff, actKind, geluNew, bf);
                } else {
                    linear(k, dm, g, a, aB, w.up(), T);
                    k.mlpAct(act, actB, g, null, (long) T * ff, actKind, geluNew, bf);
                }
                if (all) pc.probe(p + "mlp_act", act, T, ff, false);
                linear(k, dm, o, act, actB, w.down(), T);
                dm.release(i);
                if (all) pc.probe(p + "mlp_out", o, T, H, false);
                if (w.postMlpNorm() != null) norm(k, o, null, o, w.postMlpNorm(), T, H, eps, centered, unit, weightThenCast);
                k.residualAdd(x, o, (long) T * H, bf);
                pc.probe("layers." + i, x, T, H, false);
                pc.poll();
            }
            norm(k, a, aB, x, dm.finalNorm, T, H, eps, centered, unit, weightThenCast);
            pc.probe("final_norm", a, T, H, true);
            double cap = fixes.finalSoftcap(c);
            Object lh = pc.begin("logits", T, V);
            int chunk = sink == null ? T : Math.max(1, (T + LOGIT_CHUNKS - 1) / LOGIT_CHUNKS);
            for (int r0 = 0; r0 < T; r0 += chunk) {
                int n = Math.min(chunk, T - r0);
                CUdeviceptr lr = logits.withByteOffset(4L * r0 * V);
                k.gemm(lr, a.withByteOffset(4L * r0 * H), aB == null ? null : aB.withByteOffset(2L * r0 * H), dm.lmHead, bf,
                        null, n, V, H, bf);
                if (!Double.isNaN(cap)) k.softcap(lr, (long) n * V, (float) cap, bf);
                pc.rows(lh, logits, r0, n);
            }
            pc.end(lh, logits);
            pc.drain();
            CudaRuntime.sync();
        } finally {
            for (CUdeviceptr d : tmp) CudaRuntime.free(d);
        }
    }

    private void norm(Kernels k, CUdeviceptr out, CUdeviceptr outB, CUdeviceptr in, DeviceModel.Nrm n, int rows, int dim, float eps,
                      boolean centered, boolean unit, boolean weightThenCast) {
        k.norm(out, outB, in, n.w(), n.b(), rows, dim, eps, centered, unit, weightThenCast, bf16);
    }

    private void linear(Kernels k, DeviceModel dm, CUdeviceptr out, CUdeviceptr in, CUdeviceptr inB, DeviceModel.Lin l, int T) {
        k.gemm(out, in, inB, l.w(), dm.bf16, l.b(), T, l.out(), l.in(), bf16);
    }

    private static CUdeviceptr keep(List<CUdeviceptr> tmp, CUdeviceptr p) {
        tmp.add(p);
        return p;
    }

    static double[] widen(FloatBuffer f) {
        double[] d = new double[f.remaining()];
        for (int i = 0; i < d.length; i++) d[i] = f.get(i);
        return d;
    }

    private static float[] toFloat(double[] d) {
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) f[i] = (float) d[i];
        return f;
    }
}
