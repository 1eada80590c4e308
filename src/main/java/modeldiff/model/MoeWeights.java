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
     * Experts stored fused and transposed: gateUp [E, H, 2·ff], down [E, ff, H]. gpt-oss ({@code interleaved}): gate
     * in even columns, up in odd, biases gateUpBias [E, 2·ff] and downBias [E, H], a clamped SwiGLU. Llama 4 (not
     * interleaved): gate the first ff columns, up the last ff, no biases (null), act(gate) · up.
     */
    public record Fused(TensorInfo gateUp, TensorInfo gateUpBias, TensorInfo down, TensorInfo downBias, int experts,
                        int hidden, int ff, boolean interleaved) {
        /** gpt-oss's layout: gate and up interleaved, with biases. */
        public Fused(TensorInfo gateUp, TensorInfo gateUpBias, TensorInfo down, TensorInfo downBias, int experts, int hidden, int ff) {
            this(gateUp, gateUpBias, down, downBias, experts, hidden, ff, true);
        }

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
