package modeldiff.model;

import java.util.List;

/** One MoE layer's parameters: the router [experts, hidden] and each expert's gated MLP, by role. */
public record MoeWeights(LinearRef router, List<Expert> experts) {

    /** down(act(gate(x)) · up(x)) of one expert. */
    public record Expert(LinearRef gate, LinearRef up, LinearRef down) {
    }
}
