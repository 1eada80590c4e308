package modeldiff.compare;

/**
 * Optional second opinion per probe: the error a candidate makes in one step when that step is fed the reference's
 * input (replay layer i of the candidate on the reference's layer i−1 output), or, beside a teacher-forced comparison
 * whose main figures are already local, the propagated error of the free-running runs. Comparisons without a source
 * report null, never an estimate.
 */
public interface LocalError {
    /** log-L2 of the replayed step that produces {@code probe} for this candidate, or null when it cannot be replayed. */
    Double localLogL2(String candidateLabel, String probe);

    /** One line for reports: how the replay is done. */
    String describe();

    /** Column heading in reports. */
    default String label() {
        return "local error";
    }
}
