package modeldiff.compare;

/**
 * Optional second opinion per probe: the error a candidate makes in one step when that step is fed the reference's
 * input (replay layer i of the candidate on the reference's layer i−1 output). Accumulated error says where a
 * divergence shows; local error says which step causes it. Not implemented yet: comparisons without a source
 * report null, never an estimate.
 */
public interface LocalError {
    /** log-L2 of the replayed step that produces {@code probe} for this candidate, or null when it cannot be replayed. */
    Double localLogL2(String candidateLabel, String probe);

    /** One line for reports: how the replay is done. */
    String describe();
}
