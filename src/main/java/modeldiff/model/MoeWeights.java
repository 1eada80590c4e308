package modeldiff.model;

import java.util.List;

/**
 * One MoE layer's parameters: the router [experts, hidden] (with its bias, gpt-oss) and either each expert's gated MLP
 * by role ({@code experts}) or, for gpt-oss, the fused transposed tensors ({@code fused}, experts empty); sigmoid
 * routers' selection-only {@code correctionBias} [experts] and the {@code shared} expert every token runs (or null).
 */
public record MoeWeights(LinearRef router, List<Expert> experts, Fused fused, TensorInfo correctionBias, Expert shared) {

    public MoeWeights(LinearRef router, List<Expert> experts) {
        this(router, experts, null, null, null);
    }

    public MoeWeights(LinearRef router, List<Expert> experts, Fused fused) {
        this(router, experts, fused, null, null);
    }

    /** down(act(gate(x)) · up(x)) of one expert. */
    public record Expert(LinearRef gate, LinearRef up, LinearRef down) {
    }

    /**
     * gpt-oss's experts: gateUp [E, H, 2·ff] (gate in even columns, up in odd), gateUpBias [E, 2·ff], down [E, ff, H],
     * downBias [E, H]; y = x·gateUp[e] + b, then (clamped) SwiGLU, then ·down[e] + b.
     */
    public record Fused(TensorInfo gateUp, TensorInfo gateUpBias, TensorInfo down, TensorInfo downBias, int experts,
                        int hidden, int ff) {
        /** Expert e's [rows, cols] block as float64, row-major. */
        public double[] block(TensorInfo t, int e, int rows, int cols) {
            return TensorStore.readDoubles(t, (long) e * rows * cols, (long) rows * cols);
        }

        public int count() {
            return experts;
        }
    }

    /** Number of experts. */
    public int count() {
        return fused != null ? fused.count() : experts.size();
    }
}
