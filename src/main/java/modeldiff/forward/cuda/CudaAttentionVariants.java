package modeldiff.forward.cuda;

import jcuda.driver.CUdeviceptr;
import modeldiff.forward.Fixes;
import modeldiff.forward.cuda.DeviceKernels.Act;
import modeldiff.forward.cuda.DeviceKernels.AttnArgs;
import modeldiff.forward.cuda.DeviceKernels.HeadCopy;
import modeldiff.forward.cuda.DeviceKernels.Linear;
import modeldiff.forward.cuda.DeviceKernels.Norm;
import modeldiff.forward.cuda.DeviceKernels.NormArgs;
import modeldiff.forward.cuda.DeviceKernels.RopeArgs;
import modeldiff.model.BadInputException;
import modeldiff.model.Family;
import modeldiff.model.LayerSpec;
import modeldiff.model.MlaSpec;
import modeldiff.model.MlaWeights;
import modeldiff.model.ModelConfig;

import java.util.function.LongFunction;

/**
 * The attention variants of the 2025–26 families on the GPU, kept apart from CudaPass's dense path (docs/cuda.md,
 * "Attention variants"), with the rounding points of lowp (LowpMla, LowpLlama4, docs/precision.md):
 * <ul>
 *   <li>gpt-oss's sinks and Llama 4's chunks are kernel arguments ({@link #attnExtras});</li>
 *   <li>Llama 4's weightless L2 q/k norm after RoPE and its temperature tuning on NoPE layers ({@link #llama4AfterRope});</li>
 *   <li>DeepSeek-V3's multi-head latent attention ({@link #mla}): the latent projections, the split nope/rope parts,
 *   rope_interleave, and attention over heads whose v width differs from the q/k width.</li>
 * </ul>
 * MLA runs the existing attention kernels at one padded head width P ≥ max(qk_head_dim, v_head_dim) (a tensor-core
 * width 16/32/64/128 where the kernel serves it): q and k get zero columns, v too, and the output's extra columns are
 * dropped. That is exact: a zero column adds 0·0 = 0 to each score's fp32 sum (and to each mma's), so the scores are
 * the same numbers, and the padded v columns only produce output columns nobody reads. The kernels stay as they are
 * (one head width), at the price of (P − qk)/qk more score work.
 */
final class CudaAttentionVariants {
    private CudaAttentionVariants() {
    }

    /**
     * The kernels the variants launch: {@link #of} DeviceKernels on the GPU; the tests run the same data flow on a
     * host emulation of these kernels (CudaAttentionVariantsTest) to check the MLA layout without a GPU.
     */
    interface Kernels {
        void gemm(CUdeviceptr c, Act a, Linear w, int M, boolean bf);

        void norm(Act out, CUdeviceptr x, Norm n, int rows, NormArgs a);

        void rope(CUdeviceptr x, int T, int heads, RopeArgs r);

        void copyHeads(CUdeviceptr dst, CUdeviceptr src, int T, HeadCopy c);

        void toBf16(CUdeviceptr out, CUdeviceptr in, long n);

        void attention(CUdeviceptr out, CUdeviceptr q, CUdeviceptr k, CUdeviceptr v, AttnArgs a);

        void attentionTc(Act out, CUdeviceptr qB, CUdeviceptr kB, CUdeviceptr vB, AttnArgs a);

        boolean tcAttention(int hd);

        void temperatureScale(CUdeviceptr x, int T, int width, int pos0, float attnScale, float floorScale, boolean bf);

        static Kernels of(DeviceKernels k) {
            return new Kernels() {
                public void gemm(CUdeviceptr c, Act a, Linear w, int M, boolean bf) {
                    k.gemm(c, a, w, M, bf);
                }

                public void norm(Act out, CUdeviceptr x, Norm n, int rows, NormArgs a) {
                    k.norm(out, x, n, rows, a);
                }

                public void rope(CUdeviceptr x, int T, int heads, RopeArgs r) {
                    k.rope(x, T, heads, r);
                }

                public void copyHeads(CUdeviceptr dst, CUdeviceptr src, int T, HeadCopy c) {
                    k.copyHeads(dst, src, T, c);
                }

                public void toBf16(CUdeviceptr out, CUdeviceptr in, long n) {
                    k.toBf16(out, in, n);
                }

                public void attention(CUdeviceptr out, CUdeviceptr q, CUdeviceptr kk, CUdeviceptr v, AttnArgs a) {
                    k.attention(out, q, kk, v, a);
                }

                public void attentionTc(Act out, CUdeviceptr qB, CUdeviceptr kB, CUdeviceptr vB, AttnArgs a) {
                    k.attentionTc(out, qB, kB, vB, a);
                }

                public boolean tcAttention(int hd) {
                    return k.tcAttention(hd);
                }

                public void temperatureScale(CUdeviceptr x, int T, int width, int pos0, float attnScale, float floorScale, boolean bf) {
                    k.temperatureScale(x, T, width, pos0, attnScale, floorScale, bf);
                }
            };
        }
    }

    /** Allocation of a workspace's buffers: n fp32 / bf16 elements, fp32 zeros, fp32 ones (owned by the workspace). */
    interface Alloc {
        CUdeviceptr f(long n);

        CUdeviceptr h(long n);

        CUdeviceptr zeros(long n);

        CUdeviceptr ones(long n);
    }

    /** The head widths the tensor-core attention kernels are built for. */
    static final int[] TC_WIDTHS = {16, 32, 64, 128};

    /** One MLA layer's weights on the device (see {@link MlaWeights}; qA / qANorm null without q_lora_rank). */
    record MlaLayer(Linear qA, Norm qANorm, Linear qNope, Linear qRope, Linear kvA, Linear kPe, Norm kvANorm, Linear kNope,
                    Linear v) {
        static MlaLayer upload(DeviceModel dm, MlaWeights w) {
            return new MlaLayer(w.qA() == null ? null : dm.residentLinear(w.qA()), dm.norm(w.qANorm()), dm.residentLinear(w.qNope()),
                    dm.residentLinear(w.qRope()), dm.residentLinear(w.kvA()), dm.residentLinear(w.kPe()), dm.norm(w.kvANorm()),
                    dm.residentLinear(w.kNope()), dm.residentLinear(w.v()));
        }
    }

    /**
     * The head width MLA's attention runs at: the smallest tensor-core width ≥ max(qk, v) where one exists (so the
     * bf16 pass can use the tensor-core kernel; the CUDA-core kernels run the same padded heads), else max(qk, v) (the
     * CUDA-core kernels only, e.g. DeepSeek-V3's 192).
     */
    static int mlaWidth(int qk, int v) {
        int need = Math.max(qk, v);
        for (int w : TC_WIDTHS) if (w >= need) return w;
        if (need > DeviceKernels.ATTN_MAX_HEAD_DIM)
            throw new BadInputException("cuda: MLA head width max(qk_head_dim, v_head_dim) = " + need + " > "
                    + DeviceKernels.ATTN_MAX_HEAD_DIM + " (the attention kernels' limit); use reference, lowp or torch");
        return need;
    }

    /** Per query t of a forward at absolute positions pos0 + t: the first key of its chunk (0 without chunks). */
    static int chunkFirst(int t, int chunk, long pos0) {
        if (chunk <= 0) return 0;
        long p = pos0 + t;
        return (int) Math.max(0, p - p % chunk - pos0);
    }

    /** The chunk size a layer's attention masks with: Llama 4's attention_chunk_size on its chunked layers, else 0. */
    static int chunk(LayerSpec spec, Fixes fixes) {
        return spec.llama4() == null || fixes.attnNoChunking ? 0 : Math.max(0, spec.llama4().chunk());
    }

    /** The layer's attention arguments with its sinks (null: none, or attn.no_sinks) and chunk. */
    static AttnArgs attnExtras(AttnArgs a, CUdeviceptr sinks, LayerSpec spec, Fixes fixes, int pos0) {
        CUdeviceptr s = fixes.attnNoSinks ? null : sinks;
        int chunk = chunk(spec, fixes);
        return s == null && chunk == 0 ? a : a.with(s, chunk, pos0);
    }

    /** Whether a layer applies Llama 4's L2 q/k norm / its temperature tuning, after the fixes. */
    static boolean l2Norm(LayerSpec spec, Fixes fixes) {
        return spec.llama4() != null && spec.llama4().l2Norm() && !fixes.qkNormOff;
    }

    static boolean temperature(LayerSpec spec, Fixes fixes) {
        return spec.llama4() != null && spec.llama4().tempScale() > 0 && !fixes.attnNoTemperatureTuning;
    }

    /** Which RoPE the dense path rotates with: Llama 4 rotates complex pairs with fp32 freqs_cis (LowpPass's ropePairs). */
    static boolean ropePairs(Family f, Fixes fixes) {
        return fixes.qkInterleaved != f.llama4Attention;
    }

    static boolean ropeCosSinFp32(Family f) {
        return f.ropeInFp32 || f.llama4Attention;
    }

    /**
     * Llama 4 after RoPE, in place on q [T, heads·hd] and k [T, kvHeads·hd]: the weightless L2 norm (an RMSNorm whose
     * weight is ones, weight-then-cast: x·rsqrt(mean(x²) + eps) in fp32, one rounding) on RoPE layers, q's temperature
     * on NoPE layers (LowpLlama4.afterRope).
     */
    static void llama4AfterRope(Kernels k, Buffers b, CUdeviceptr q, CUdeviceptr kk, int T, ModelConfig c, LayerSpec spec,
                                Fixes fixes, int pos0, boolean bf) {
        int hd = c.headDim;
        if (l2Norm(spec, fixes)) {
            NormArgs l2 = new NormArgs((float) fixes.eps(c), false, false, true, bf);
            Norm ones = new Norm(b.ones, null, hd);
            k.norm(Act.of(q), q, ones, T * c.numHeads, l2);
            k.norm(Act.of(kk), kk, ones, T * c.numKvHeads, l2);
        }
        if (temperature(spec, fixes))
            k.temperatureScale(q, T, c.qDim(), pos0, (float) spec.llama4().tempScale(), (float) spec.llama4().floorScale(), bf);
    }

    /** Device buffers of the variants for one workspace of T tokens (the MLA ones only for MLA models). */
    static final class Buffers {
        final CUdeviceptr ones;   // Llama 4's L2 norm weight
        final int P;              // MLA: padded head width (0 without MLA)
        CUdeviceptr qA, qIn, qInB, qNope, qRope, kv, latent, latentB, kPe, kNope, v, ropeTmp, kPeTmp, q, k, qP, kP, vP, qPB, kPB,
                vPB, outP, att, attB;

        Buffers(ModelConfig c, int T, boolean bf16, Alloc alloc) {
            LongFunction<CUdeviceptr> f = alloc::f, h = alloc::h, z = alloc::zeros;
            ones = c.family.llama4Attention ? alloc.ones(c.headDim) : null;
            MlaSpec m = c.mla;
            if (m == null) {
                P = 0;
                return;
            }
            int heads = c.numHeads, nope = m.qkNopeHeadDim(), rope = m.qkRopeHeadDim(), qk = m.qkHeadDim(), vd = m.vHeadDim();
            P = mlaWidth(qk, vd);
            long t = T;
            if (m.qLora()) {
                qA = f.apply(t * m.qLoraRank());
                qIn = f.apply(t * m.qLoraRank());
                if (bf16) qInB = h.apply(t * m.qLoraRank());
            }
            qNope = f.apply(t * heads * nope);
            qRope = f.apply(t * heads * rope);
            kv = f.apply(t * m.kvLoraRank());
            latent = f.apply(t * m.kvLoraRank());
            if (bf16) latentB = h.apply(t * m.kvLoraRank());
            kPe = f.apply(t * rope);
            kNope = f.apply(t * heads * nope);
            v = f.apply(t * heads * vd);
            ropeTmp = f.apply(t * heads * rope);
            kPeTmp = f.apply(t * rope);
            q = f.apply(t * heads * qk);
            k = f.apply(t * heads * qk);
            // the padded operands: zero columns written once here, never touched again
            qP = P == qk ? q : z.apply(t * heads * P);
            kP = P == qk ? k : z.apply(t * heads * P);
            vP = P == vd ? v : z.apply(t * heads * P);
            if (bf16 && P <= 128) {   // the tensor-core kernel's operands
                qPB = h.apply(t * heads * P);
                kPB = h.apply(t * heads * P);
                vPB = h.apply(t * heads * P);
            }
            outP = f.apply(t * heads * P);
            att = P == vd ? outP : f.apply(t * heads * vd);
            if (bf16) attB = h.apply(t * heads * vd);
        }
    }

    /** Records a probe (and, in a forced run, replaces the buffer's values by the teacher's). */
    interface Probe {
        void record(String name, Act buf, int cols);
    }

    /**
     * What one MLA layer needs from the pass: kernels, sizes, the latent norms' arguments (the family's RMSNorm with
     * eps 1e-6 or norm.eps), the layer's RoPE (null: none; rotated in halves, MLA's own interleave applied first), the
     * attention arguments for heads of the padded width, and the probe recorder.
     */
    record MlaStep(Kernels k, int T, boolean bf, NormArgs latentNorm, RopeArgs rope, AttnArgs attn, Probe probe) {
        /** The tensor-core kernel runs the padded heads (bf16, selected, a width it serves). */
        boolean tc() {
            return bf && k.tcAttention(attn.headDim());
        }
    }

    /** The latent norms' arguments: the family's RMSNorm without unit offset, at MLA's eps (LowpPass.latentNorm). */
    static NormArgs latentNorm(Family f, Fixes fixes, boolean bf) {
        boolean weightThenCast = f.normCast == Family.NormCast.WEIGHT_THEN_CAST && !fixes.normCastBeforeWeight;
        return new NormArgs((float) fixes.latentNormEps(), false, false, weightThenCast, bf);
    }

    /** The attention arguments of an MLA layer: heads of the padded width, the MLA scale (mscale² under YaRN). */
    static AttnArgs mlaAttnArgs(ModelConfig c, LayerSpec spec, Fixes fixes, int T, Buffers b, boolean bf) {
        return new AttnArgs(T, c.numHeads, c.numHeads, b.P, fixes.window(spec), (float) fixes.mlaScale(spec, c), 0, 1f,
                (float) fixes.attnSoftcap(c), bf);
    }

    /**
     * Multi-head latent attention of one layer from {@code a} (attn_norm's output), recording q, k [T, heads·qk] (each
     * head cat(nope, rope), rope in the halves layout) and v [T, heads·v] as LowpMla does; returns attn [T, heads·v]
     * with its bf16 copy (bf16 mode), the o_proj input.
     */
    static Act mla(MlaStep s, MlaLayer w, Act a, Buffers b, MlaSpec m, int heads, String pre) {
        Kernels k = s.k();
        int T = s.T(), nope = m.qkNopeHeadDim(), rope = m.qkRopeHeadDim(), qk = m.qkHeadDim(), vd = m.vHeadDim();
        boolean bf = s.bf();
        Act qIn = a;
        if (m.qLora()) {
            k.gemm(b.qA, a, w.qA(), T, bf);
            qIn = new Act(b.qIn, b.qInB);
            k.norm(qIn, b.qA, w.qANorm(), T, s.latentNorm());
        }
        k.gemm(b.qNope, qIn, w.qNope(), T, bf);
        k.gemm(b.qRope, qIn, w.qRope(), T, bf);
        k.gemm(b.kv, a, w.kvA(), T, bf);
        Act latent = new Act(b.latent, b.latentB);
        k.norm(latent, b.kv, w.kvANorm(), T, s.latentNorm());
        k.gemm(b.kPe, a, w.kPe(), T, bf);
        k.gemm(b.kNope, latent, w.kNope(), T, bf);
        k.gemm(b.v, latent, w.v(), T, bf);
        CUdeviceptr qRope = b.qRope, kPe = b.kPe;
        if (s.rope() != null) {
            if (m.ropeInterleave()) {   // pairs → halves (HF: view, transpose, reshape), then the rotate_half RoPE
                k.copyHeads(b.ropeTmp, b.qRope, T, new HeadCopy(heads * rope, rope, 0, heads * rope, rope, heads, rope, true));
                k.copyHeads(b.kPeTmp, b.kPe, T, new HeadCopy(rope, rope, 0, rope, rope, 1, rope, true));
                qRope = b.ropeTmp;
                kPe = b.kPeTmp;
            }
            k.rope(qRope, T, heads, s.rope());
            k.rope(kPe, T, 1, s.rope());
        }
        // q, k = cat(nope, rope) per head (k's rope part is the one shared head, broadcast)
        int row = heads * qk;
        k.copyHeads(b.q, b.qNope, T, new HeadCopy(row, qk, 0, heads * nope, nope, heads, nope, false));
        k.copyHeads(b.q, qRope, T, new HeadCopy(row, qk, nope, heads * rope, rope, heads, rope, false));
        k.copyHeads(b.k, b.kNope, T, new HeadCopy(row, qk, 0, heads * nope, nope, heads, nope, false));
        k.copyHeads(b.k, kPe, T, new HeadCopy(row, qk, nope, rope, 0, heads, rope, false));
        s.probe().record(pre + "q", Act.of(b.q), row);
        s.probe().record(pre + "k", Act.of(b.k), row);
        s.probe().record(pre + "v", Act.of(b.v), heads * vd);
        int P = b.P;
        if (P != qk) {
            k.copyHeads(b.qP, b.q, T, new HeadCopy(heads * P, P, 0, row, qk, heads, qk, false));
            k.copyHeads(b.kP, b.k, T, new HeadCopy(heads * P, P, 0, row, qk, heads, qk, false));
        }
        if (P != vd) k.copyHeads(b.vP, b.v, T, new HeadCopy(heads * P, P, 0, heads * vd, vd, heads, vd, false));
        long n = (long) T * heads * P;
        if (s.tc()) {
            k.toBf16(b.qPB, b.qP, n);
            k.toBf16(b.kPB, b.kP, n);
            k.toBf16(b.vPB, b.vP, n);
            k.attentionTc(Act.of(b.outP), b.qPB, b.kPB, b.vPB, s.attn());
        } else {
            k.attention(b.outP, b.qP, b.kP, b.vP, s.attn());
        }
        if (P != vd) k.copyHeads(b.att, b.outP, T, new HeadCopy(heads * vd, vd, 0, heads * P, P, heads, vd, false));
        if (b.attB != null) k.toBf16(b.attB, b.att, (long) T * heads * vd);
        return new Act(b.att, b.attB);   // the caller records it as "attn" (and a forced run replaces it, copy included)
    }
}
