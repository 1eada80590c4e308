package modeldiff.forward;

import modeldiff.model.BadInputException;
import modeldiff.numeric.Precision;
import modeldiff.trace.Trace;

import java.util.Arrays;

/**
 * Where a pass records its probes, and — in a teacher-forced run — where it learns what to continue with.
 * <p>
 * A pass calls {@link #put} right after computing each probe. In a free run that records the value and hands it back
 * unchanged. In a teacher-forced run (the input carries a {@link ForwardInput#teacher() teacher} trace) it records the
 * pass's own value and hands back the <em>teacher's</em> value of that probe, so every later operation starts from the
 * teacher's input to it: q/k/v from the teacher's attn_norm, attention from its q/k/v, layer i from its layers.{i-1}.
 * Each recorded probe then carries one operation's error (local error), not the sum of every earlier difference.
 * That is what makes reduced-precision verdicts possible: one rounding tie in layer 0 no longer spreads through every
 * later layer (docs/metrics.md, "Teacher forcing").
 * <p>
 * Probes the teacher lacks are computed and passed on as the pass computed them (a layers-only teacher forces the
 * residual stream between layers, nothing inside them). Sub-layer probes are neither recorded nor forced at
 * {@link ProbeLevel#LAYERS}.
 */
public final class Recorder {
    private final Trace trace;
    private final Trace teacher;
    private final boolean subLayers;

    private Recorder(Trace trace, Trace teacher, ProbeLevel level) {
        this.trace = trace;
        this.teacher = teacher;
        this.subLayers = level == ProbeLevel.ALL;
    }

    /**
     * @param trace  the trace the pass fills
     * @param input  its input; when it has a teacher, tokens and offset must be the teacher's (a fix that changes the
     *               tokens, such as input.add_bos, cannot be teacher-forced)
     */
    public static Recorder of(Trace trace, ForwardInput input, ProbeLevel level) {
        Trace t = input.teacher();
        if (t != null) {
            if (!Arrays.equals(t.tokens(), trace.tokens()) || t.positionOffset() != trace.positionOffset())
                throw new BadInputException("cannot teacher-force: the run's tokens " + Arrays.toString(trace.tokens())
                        + " @" + trace.positionOffset() + " are not the teacher's (a fix that changes the tokens cannot be forced)");
            trace.putExtra("teacher_forced", t.producer() + " (" + t.dtype() + ")");
        }
        return new Recorder(trace, t, level);
    }

    public Trace trace() {
        return trace;
    }

    public boolean forced() {
        return teacher != null;
    }

    /** Whether {@link #put} of this probe records anything: every probe at ALL, no sub-layer probe at LAYERS. */
    public boolean records(String probe) {
        return subLayers || !isSubLayer(probe);
    }

    /**
     * Records a float64 probe (a copy, so the caller may keep mutating {@code own}) and returns what the pass continues
     * with: the teacher's value (a fresh array) when it has this probe, else {@code own} itself.
     */
    public double[] put(String probe, int width, double[] own) {
        if (!records(probe)) return own;
        trace.put(probe, width, own.clone());
        double[] t = teacherValue(probe, width, own.length);
        return t == null ? own : t;
    }

    /**
     * Records a probe computed in {@code p} (float values representable in p) and returns what the pass continues with:
     * the teacher's value rounded to p (exact for a teacher of the same dtype) when it has this probe, else {@code own}.
     */
    public float[] put(String probe, int width, float[] own, Precision p) {
        if (!records(probe)) return own;
        double[] wide = new double[own.length];
        for (int i = 0; i < own.length; i++) wide[i] = own[i];
        trace.put(probe, width, wide);
        double[] t = teacherValue(probe, width, own.length);
        if (t == null) return own;
        float[] out = new float[t.length];
        for (int i = 0; i < t.length; i++) out[i] = (float) p.round(t[i]);
        return out;
    }

    /** The teacher's value of a probe (a copy), or null when there is no teacher or it did not record the probe. */
    public double[] teacherValue(String probe, int width, int length) {
        if (teacher == null || !records(probe)) return null;
        Trace.Probe tp = teacher.probe(probe);
        if (tp == null) return null;
        if (tp.cols() != width || tp.data().length != length)
            throw new BadInputException("cannot teacher-force probe '" + probe + "': the teacher's is [" + tp.rows() + ", "
                    + tp.cols() + "], this model's is [" + (length / Math.max(1, width)) + ", " + width + "]");
        return tp.data().clone();
    }

    static boolean isSubLayer(String probe) {
        if (!probe.startsWith("layers.")) return false;
        return probe.indexOf('.', 7) >= 0;
    }
}
