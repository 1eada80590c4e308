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
}
