package modeldiff.forward.cuda;

import jcuda.Pointer;
import modeldiff.forward.Recorder;
import modeldiff.forward.cuda.DeviceKernels.Act;
import modeldiff.numeric.Precision;

import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;

/**
 * Teacher forcing on the device (forward/Recorder): after a probe has been queued for copying, the buffer the pass
 * continues from is overwritten with the teacher's value of that probe, rounded to the pass's dtype (fp32, or bf16 in
 * cuda:bf16), and its bf16 copy (the GEMM / attention operand) is remade from it. The upload is a synchronous
 * cuMemcpyHtoD on the legacy default stream, so it runs after the probe's snapshot and before the next kernel. A free
 * run ({@link #NONE}) does nothing here: one branch per probe.
 */
final class DeviceTeacher {
    static final DeviceTeacher NONE = new DeviceTeacher(null, null);

    private final Recorder rec;
    private final Precision dtype;

    private DeviceTeacher(Recorder rec, Precision dtype) {
        this.rec = rec;
        this.dtype = dtype;
    }

    /** Forcing by the recorder's teacher, or {@link #NONE} when the run is not forced. */
    static DeviceTeacher of(Recorder rec, boolean bf16) {
        return of(rec, bf16 ? Precision.BF16 : Precision.FP32);
    }

    /** As above, rounding to the pass's dtype p (fp32, bf16 or fp16). */
    static DeviceTeacher of(Recorder rec, Precision p) {
        return rec.forced() ? new DeviceTeacher(rec, p) : NONE;
    }

    boolean forced() {
        return rec != null;
    }

    /** Overwrites buf [rows, cols] (and its bf16 copy) with the teacher's probe, when the teacher recorded it. */
    void force(String probe, Act buf, int rows, int cols, DeviceKernels k) {
        if (rec == null) return;
        float[] v = values(probe, rows, cols);
        if (v == null) return;
        cuMemcpyHtoD(buf.f32(), Pointer.to(v), 4L * v.length);
        if (buf.bf16() != null) k.toBf16(buf.bf16(), buf.f32(), v.length);
    }

    /** The teacher's probe as recorded (fp32, not rounded to the dtype: fp32 router logits, expert ids), or null. */
    float[] exactValues(String probe, int rows, int cols) {
        double[] t = rec.teacherValue(probe, cols, Math.multiplyExact(rows, cols));
        if (t == null) return null;
        float[] v = new float[t.length];
        for (int i = 0; i < t.length; i++) v[i] = (float) t[i];
        return v;
    }

    /** The teacher's probe rounded to the pass's dtype, or null when it has none. */
    float[] values(String probe, int rows, int cols) {
        double[] t = rec.teacherValue(probe, cols, Math.multiplyExact(rows, cols));
        if (t == null) return null;
        float[] v = new float[t.length];
        for (int i = 0; i < t.length; i++) v[i] = (float) dtype.round(t[i]);
        return v;
    }
}
