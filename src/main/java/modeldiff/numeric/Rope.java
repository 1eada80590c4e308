package modeldiff.numeric;

/**
 * What every pass agrees on about RoPE: how many dimensions rotate, and the shape of a frequency table. The tables
 * themselves are computed by each pass on its own (forward.reference.RopeFormulas in float64 from the formulas,
 * forward.lowp.RopeTable and the torch pass in fp32 as HF does), so that a wrong formula shows up as a diff.
 */
public final class Rope {
    private Rope() {
    }

    /** Inverse frequencies and the factor cos/sin are multiplied by ("attention scaling": yarn, longrope). */
    public record Frequencies(double[] invFreq, double attentionScaling) {
    }

    /** Number of leading head dimensions rotated: int(head_dim · partial_rotary_factor), as HF truncates. */
    public static int rotaryDim(int headDim, double partialFactor) {
        return (int) (headDim * partialFactor);
    }
}
