package modeldiff.forward.cuda;

import modeldiff.forward.ForwardInput;
import modeldiff.forward.ProbeLevel;
import modeldiff.forward.Recorder;
import modeldiff.numeric.Precision;
import modeldiff.trace.Trace;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** CPU-only part of teacher forcing on the GPU: which values DeviceTeacher would upload (no native call). */
class DeviceTeacherTest {
    private static final int[] TOKENS = {3, 1, 4};

    private static Recorder recorder(Trace teacher, ProbeLevel level) {
        Trace own = new Trace("test", "bfloat16", "cuda", TOKENS, 0);
        return Recorder.of(own, teacher == null ? new ForwardInput(TOKENS, 0) : ForwardInput.forcedBy(teacher), level);
    }

    private static Trace teacher() {
        Trace t = new Trace("teacher", "float64", "cpu", TOKENS, 0);
        double[] v = new double[3 * 2];
        for (int i = 0; i < v.length; i++) v[i] = 1 + (i + 1) * 1e-4 / 3;   // between bf16 (and fp32) neighbours
        t.put("layers.0", 2, v);
        t.put("layers.0.q", 2, v);
        return t;
    }

    @Test
    void aFreeRunForcesNothing() {
        assertSame(DeviceTeacher.NONE, DeviceTeacher.of(recorder(null, ProbeLevel.ALL), true));
        assertFalse(DeviceTeacher.NONE.forced());
    }

    /** The teacher's values are rounded to the pass's dtype, as its own buffers hold them (independent: Precision). */
    @Test
    void valuesAreTheTeachersRoundedToThePassDtype() {
        Trace t = teacher();
        double[] exact = t.probe("layers.0").data();
        for (boolean bf16 : new boolean[]{true, false}) {
            DeviceTeacher d = DeviceTeacher.of(recorder(t, ProbeLevel.ALL), bf16);
            assertTrue(d.forced());
            float[] v = d.values("layers.0", 3, 2);
            Precision p = bf16 ? Precision.BF16 : Precision.FP32;
            for (int i = 0; i < v.length; i++) assertEquals((float) p.round(exact[i]), v[i], 0f, "element " + i);
            if (bf16) assertEquals(1f, v[0], 0f, "1 + 3.3e-5 is 1 in bf16");
            else assertTrue(v[0] > 1f, "but not in fp32");
            assertNull(d.values("layers.0.k", 3, 2), "a probe the teacher lacks is not forced");
        }
    }

    /** At ProbeLevel.LAYERS sub-layer probes are neither recorded nor forced. */
    @Test
    void subLayerProbesAreForcedOnlyAtAll() {
        DeviceTeacher d = DeviceTeacher.of(recorder(teacher(), ProbeLevel.LAYERS), true);
        assertNull(d.values("layers.0.q", 3, 2));
        assertEquals(6, d.values("layers.0", 3, 2).length);
    }
}
