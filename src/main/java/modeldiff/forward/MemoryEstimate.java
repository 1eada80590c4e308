package modeldiff.forward;

import modeldiff.forward.kernel.Gemm;
import modeldiff.model.BadInputException;
import modeldiff.model.ModelConfig;

import java.util.Locale;

/**
 * Peak Java heap of one forward of a streaming pass (the reference, lowp), from the shape, the input length and the
 * probe level alone, so a run that cannot fit is refused before it starts instead of dying with OutOfMemoryError an
 * hour in. Weights are not in it: they stay memory-mapped, outside the heap, one matrix at a time.
 * <ul>
 * <li>trace: every probe recorded, [tokens, width] of {@code bytesPerValue} each, kept until the run ends;</li>
 * <li>one layer's working set: the residual stream and the intermediates alive at once inside a layer (the MLP's
 * two [tokens, intermediate] arrays dominate), plus the probe copies the layer makes;</li>
 * <li>scratch: per thread a packed weight block and an output block of the matrix product, and attention scores;</li>
 * <li>a fixed allowance for the JVM's own objects (classes, the config, the tensor index).</li>
 * </ul>
 */
public record MemoryEstimate(long traceBytes, long layerBytes, long scratchBytes, long fixedBytes) {
    public static final long FIXED = 96L << 20;

    public long total() {
        return traceBytes + layerBytes + scratchBytes + fixedBytes;
    }

    /** @param bytesPerValue 8 for float64 activations (reference), 4 for float32 (lowp; its trace is still float64) */
    public static MemoryEstimate of(ModelConfig c, int tokens, ProbeLevel level, int threads, int bytesPerValue) {
        long T = tokens, H = c.hiddenSize, qd = c.qDim(), kvd = c.kvDim(), ff = c.intermediateSize, V = c.vocabSize;
        if (c.mla != null) {   // MLA: q and k are heads·qk_head_dim wide, v heads·v_head_dim (the latents are narrower)
            qd = c.mla.qkDim(c.numHeads);
            kvd = Math.max(qd, c.mla.vDim(c.numHeads));
        }
        long layerProbe = H + (level == ProbeLevel.ALL ? 4 * H + 2 * qd + 2 * kvd + ff : 0);
        long traceValues = T * (H + (long) c.numLayers * layerProbe + H + V);            // embed, layers, final_norm, logits
        // Alive together inside a layer: x, a, q, k, v, att, o (+ normed o), m, gate/act, up, mo (+ normed mo).
        long layerValues = T * (6 * H + 2 * qd + 2 * kvd + 2 * ff) + T * V;              // + logits being filled at the end
        long layerBytes = layerValues * bytesPerValue + (bytesPerValue != 8 ? T * Math.max(ff, V) * 8 : 0); // lowp widens a probe
        long scratch = (long) threads * ((long) Gemm.NB * Gemm.KC + T * Gemm.NB + T) * 8;
        return new MemoryEstimate(traceValues * 8, layerBytes, scratch, FIXED);
    }

    /** Throws a BadInputException naming the figures when the estimate exceeds {@code maxHeap} (Runtime.maxMemory()). */
    public void require(String what, long maxHeap) {
        if (total() <= maxHeap) return;
        throw new BadInputException(String.format(Locale.ROOT, "%s needs about %s of Java heap (trace %s, one layer's working set %s, "
                        + "scratch %s, JVM %s) but the maximum heap is %s: raise -Xmx (MODELDIFF_JAVA_OPTS), record fewer probes "
                        + "(--probes layers) or give fewer tokens", what, gib(total()), gib(traceBytes), gib(layerBytes),
                gib(scratchBytes), gib(fixedBytes), gib(maxHeap)));
    }

    public void require(String what) {
        require(what, Runtime.getRuntime().maxMemory());
    }

    static String gib(long bytes) {
        return bytes >= (1L << 30) ? String.format(Locale.ROOT, "%.2f GiB", bytes / (double) (1L << 30))
                : String.format(Locale.ROOT, "%.0f MiB", bytes / (double) (1L << 20));
    }
}
