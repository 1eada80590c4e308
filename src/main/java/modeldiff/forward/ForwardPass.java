package modeldiff.forward;

import modeldiff.model.Model;
import modeldiff.trace.Trace;

/**
 * One independently coded implementation of a model's forward pass. Every pass records the same named probes
 * ({@link ProbeLevel#names}) as [tokens, width] tensors, so any two can be compared probe by probe.
 */
public interface ForwardPass {
    /** The spec users write on the command line: "reference", "lowp:bf16", ... */
    String name();

    /** The precision this pass computes in ("float64", "bfloat16", ...), recorded in its trace. */
    String dtype();

    Trace run(Model model, ForwardInput input, ProbeLevel level);

    /** Whether {@link #runLayers} works: the pass can start in the middle of the model (local error, hunt reuse). */
    default boolean canReplay() {
        return false;
    }

    /**
     * Runs decoder layers [from, to) starting from {@code residualIn}, the residual stream entering layer
     * {@code from} ([tokens, hidden]; a pass at reduced precision rounds it to its dtype first). Records the probes of
     * those layers, plus final_norm and logits when {@code to} is the number of layers. With a null
     * {@code residualIn} it starts from the embedding (from must be 0) and records "embed" too.
     */
    default Trace runLayers(Model model, ForwardInput input, ProbeLevel level, int from, int to, double[] residualIn) {
        throw new UnsupportedOperationException(name() + " cannot start in the middle of a model");
    }
}
