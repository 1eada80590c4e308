package modeldiff.compare;

import modeldiff.numeric.Precision;

/**
 * How much error a correct implementation is expected to show at a given precision: the upper bound of the log-L2
 * band that rounding alone explains. A probe above it has excess error, i.e. something other than precision differs.
 * <p>
 * {@link Comparison} only asks this interface, so a floor measured on the model at hand (run a known-good
 * reduced-precision pass against the reference and add a margin) can replace {@link TableNoiseFloor} without
 * touching the comparison.
 */
public interface NoiseFloor {
    /**
     * Upper bound of the expected log-L2 for {@code probe} when the comparison's coarser side computes in
     * {@code precision}.
     *
     * @throws modeldiff.model.BadInputException when this floor has no value for the precision
     */
    double upperBound(Precision precision, String probe);

    /**
     * Decades of error at this probe beyond what the precision explains: positive is excess. The default is log-L2
     * above {@link #upperBound}; a rule that counts rounding ties ({@link TieBudget}) judges the elements instead.
     */
    default double excess(Precision precision, String probe, double[] reference, double[] candidate, double logL2) {
        return logL2 - upperBound(precision, probe);
    }

    /** Whether verdicts count differing elements (same-precision, teacher-forced) rather than bound log-L2. */
    default boolean countsTies() {
        return false;
    }

    /** One line for reports: where the numbers come from. */
    String describe();

    /** True while the numbers are placeholders rather than measurements; reports say so next to every verdict. */
    boolean provisional();
}
