package modeldiff.model;

/**
 * How a weight a release ships quantized is turned back into the tensor HF transformers holds after loading: the
 * stored {@code data} tensor, its {@code scales}, and the scale block. A {@link TensorInfo} that carries one of these
 * describes the dequantized tensor (the name, shape and layout the family reads), and every reader
 * ({@link TensorStore#readDoubles}, {@link TensorStore#readFloats}, {@link MappedTensor}) yields its dequantized
 * values, so all passes see the same weights: the values are part of the model description, never of a pass.
 * <ul>
 * <li>{@link Format#MXFP4} (gpt-oss experts): {@code X_blocks} U8 [E, R, G, 16], two e2m1 values per byte (low nibble
 * first), and {@code X_scales} U8 [E, R, G], one e8m0 exponent (bias 127) per 32 values; HF's
 * {@code convert_moe_packed_tensors} dequantizes row (e, r) to G·32 values and transposes dims 1 and 2, so the
 * tensor is [E, G·32, R]. Every value is exact in float64, and in bf16 (the view's dtype, the one HF makes) unless a
 * scale of 2^127 meets |value| ≥ 2, which overflows bf16 (HF gets inf) but not float64. An e8m0 scale of 0xff (NaN)
 * is refused, naming the scale tensor.</li>
 * <li>{@link Format#FP8_BLOCK} (DeepSeek-V3): an F8_E4M3 tensor [..., R, C] and a float {@code weight_scale_inv}
 * [..., ⌈R/b0⌉, ⌈C/b1⌉], w = fp8 · scale_inv per b0×b1 tile (ragged edge tiles as DeepSeek's weight_dequant); the
 * product is exact in float64 (the view's dtype is F64: it may need 28 significant bits), and {@code (float)} of it
 * is what HF's and DeepSeek's float32 multiply gives before they cast to the model dtype.</li>
 * </ul>
 * Sources: https://www.opencompute.org/documents/ocp-microscaling-formats-mx-v1-0-spec-final-pdf (e2m1, e8m0),
 * https://www.opencompute.org/documents/ocp-8-bit-floating-point-specification-ofp8-revision-1-0-2023-12-01-pdf-1 (e4m3),
 * https://github.com/huggingface/transformers/blob/main/src/transformers/integrations/mxfp4.py,
 * https://github.com/huggingface/transformers/blob/main/src/transformers/integrations/finegrained_fp8.py,
 * https://github.com/deepseek-ai/DeepSeek-V3/blob/main/inference/kernel.py (weight_dequant).
 */
public record Quantized(Format format, TensorInfo data, TensorInfo scales, int blockRows, int blockCols) {

    public enum Format { MXFP4, FP8_BLOCK }

    /** Values per MXFP4 scale block (OCP MX: k = 32). */
    public static final int MX_BLOCK = 32;
    /** The e8m0 byte that encodes NaN (OCP MX §5.4). */
    public static final int E8M0_NAN = 0xff;

    private static final double[] E2M1 = {0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0};
    private static final double[] E4M3 = new double[256];

    static {
        for (int b = 0; b < 256; b++) E4M3[b] = e4m3(b);
    }

    /** An FP4 e2m1 code (low 4 bits): sign, 2 exponent bits (bias 1), 1 mantissa bit; no inf or NaN. */
    public static double e2m1(int code) {
        return E2M1[code & 0xf];
    }

    /** An e8m0 scale byte: 2^(b − 127); 0xff is NaN. */
    public static double e8m0(int b) {
        b &= 0xff;
        return b == E8M0_NAN ? Double.NaN : Math.scalb(1.0, b - 127);
    }

    /** An OCP fp8 E4M3 byte (torch.float8_e4m3fn): bias 7, subnormals, no inf, S.1111.111 is NaN; max 448. */
    public static double e4m3(int b) {
        b &= 0xff;
        int exp = (b >> 3) & 0xf, man = b & 7;
        double sign = (b & 0x80) != 0 ? -1 : 1;
        if (exp == 0xf && man == 7) return Double.NaN;
        if (exp == 0) return sign * Math.scalb(man / 8.0, -6);
        return sign * Math.scalb(1 + man / 8.0, exp - 7);
    }

    /** Elements [first, first + count) of a dequantized tensor, exact in float64. */
    static double[] read(TensorInfo t, long first, long count) {
        if (count > Integer.MAX_VALUE - 8)
            throw BadInputException.at(t.file(), "tensor '" + t.name() + "'", "slice of " + count + " elements is too large for one array");
        double[] out = new double[(int) count];
        try (MappedTensor m = MappedTensor.open(t)) {
            m.decode(first, (int) count, out, 0, 1, null);
        }
        return out;
    }

    /** Elements [first, first + count) as float32: each exact value rounded to nearest. */
    static float[] readFloats(TensorInfo t, long first, long count) {
        double[] d = read(t, first, count);
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) f[i] = (float) d[i];
        return f;
    }

    /** Reads dequantized elements from the mapped data and scale tensors. */
    static final class Reader implements AutoCloseable {
        /** Stored MXFP4 rows decoded together before they are written out transposed. */
        static final int TILE = 16;
        private final Quantized q;
        private final MappedTensor data, scales;
        private final long rows, cols, scaleRows, scaleCols, groups;

        Reader(TensorInfo logical) {
            this.q = logical.quantized();
            long[] s = logical.shape();
            rows = s[s.length - 2];
            cols = s[s.length - 1];
            scaleRows = q.format == Format.FP8_BLOCK ? ceilDiv(rows, q.blockRows) : 0;
            scaleCols = q.format == Format.FP8_BLOCK ? ceilDiv(cols, q.blockCols) : 0;
            groups = q.format == Format.MXFP4 ? q.scales.shape()[q.scales.rank() - 1] : 0;
            MappedTensor d = MappedTensor.openRaw(q.data);
            try {
                scales = MappedTensor.openRaw(q.scales);
            } catch (RuntimeException e) {
                d.close();
                throw e;
            }
            data = d;
        }

        /**
         * Elements [first, first + count) into {@code dst[off + j·stride]}, each rounded as a float first when
         * {@code rounding} is set: the values {@link #value} gives, a row at a time (fp8: one scale per tile run;
         * MXFP4 over at least a quarter of an expert: each stored row decoded once and scattered to its column).
         */
        void decode(long first, int count, double[] dst, int off, int stride, MappedTensor.FloatRounding rounding) {
            if (count == 0) return;
            if (q.format == Format.MXFP4 && count >= rows * cols / 4) mxfp4Rows(first, count, dst, off, stride, rounding);
            else if (q.format == Format.FP8_BLOCK) fp8Rows(first, count, dst, off, stride, rounding);
            else for (int j = 0; j < count; j++) put(dst, off + j * stride, value(first + j), rounding);
        }

        private static void put(double[] dst, int at, double v, MappedTensor.FloatRounding rounding) {
            dst[at] = rounding == null ? v : rounding.apply((float) v);
        }

        private void fp8Rows(long first, int count, double[] dst, int off, int stride, MappedTensor.FloatRounding rounding) {
            for (int j = 0; j < count; ) {
                long i = first + j, row = i / cols, c = i % cols, r = row % rows, lead = row / rows;
                int n = (int) Math.min(count - j, cols - c);
                long scaleRow = lead * scaleRows * scaleCols + (r / q.blockRows) * scaleCols;
                for (int x = 0; x < n; ) {
                    long tile = (c + x) / q.blockCols;
                    double s = scales.at(scaleRow + tile);
                    int end = (int) Math.min(n, (tile + 1) * q.blockCols - c);
                    for (; x < end; x++) put(dst, off + (j + x) * stride, E4M3[data.byteAt(i + x)] * s, rounding);
                }
                j += n;
            }
        }

        /** Stored rows are dequantized columns: decoded a tile of {@link #TILE} rows at a time, written k-major. */
        private void mxfp4Rows(long first, int count, double[] dst, int off, int stride, MappedTensor.FloatRounding rounding) {
            long end = first + count, perExpert = rows * cols;   // dequantized [E, K, R]: rows = K, cols = R
            int k = (int) rows;
            double[] tile = new double[TILE * k];
            for (long e = first / perExpert; e <= (end - 1) / perExpert; e++)
                for (long r0 = 0; r0 < cols; r0 += TILE) {
                    int n = (int) Math.min(TILE, cols - r0);
                    for (int t = 0; t < n; t++) storedRow(e * cols + r0 + t, tile, t * k);
                    for (int kk = 0; kk < k; kk++) {
                        long base = e * perExpert + kk * cols + r0;
                        for (int t = 0; t < n; t++) {
                            long idx = base + t;
                            if (idx >= first && idx < end) put(dst, off + (int) (idx - first) * stride, tile[t * k + kk], rounding);
                        }
                    }
                }
        }

        /** The G·32 values of stored row {@code stored} into out[at...]: e2m1 times a power of two, exact. */
        private void storedRow(long stored, double[] out, int at) {
            for (int g = 0; g < groups; g++) {
                int scale = scales.byteAt(stored * groups + g);
                if (scale == E8M0_NAN) throw nanScale(stored * groups + g);
                double pow = Math.scalb(1.0, scale - 127);
                long bytes = (stored * groups + g) * (MX_BLOCK / 2);
                int o = at + g * MX_BLOCK;
                for (int b = 0; b < MX_BLOCK / 2; b++) {
                    int v = data.byteAt(bytes + b);
                    out[o + 2 * b] = E2M1[v & 0xf] * pow;
                    out[o + 2 * b + 1] = E2M1[(v >> 4) & 0xf] * pow;
                }
            }
        }

        /** Element i (row-major over the dequantized shape). */
        double value(long i) {
            return q.format == Format.MXFP4 ? mxfp4(i) : fp8(i);
        }

        /** Dequantized [E, K, R] element (e, k, r) is stored row e·R + r, value k. */
        private double mxfp4(long i) {
            // logical shape [E, K, R]: rows = K, cols = R
            long k = (i / cols) % rows, r = i % cols, e = i / (rows * cols);
            long row = e * cols + r;
            int b = data.byteAt(row * groups * (MX_BLOCK / 2) + k / 2);
            int code = (k & 1) == 0 ? b & 0xf : (b >> 4) & 0xf;
            int scale = scales.byteAt(row * groups + k / MX_BLOCK);
            if (scale == E8M0_NAN) throw nanScale(row * groups + k / MX_BLOCK);
            return Math.scalb(e2m1(code), scale - 127);
        }

        private double fp8(long i) {
            long c = i % cols, r = (i / cols) % rows, lead = i / (rows * cols);
            double s = scales.at(lead * scaleRows * scaleCols + (r / q.blockRows) * scaleCols + c / q.blockCols);
            return e4m3(data.byteAt(i)) * s;
        }

        private BadInputException nanScale(long at) {
            return BadInputException.at(q.scales.file(), "tensor '" + q.scales.name() + "'",
                    "e8m0 scale " + at + " is 0xff (NaN): its block of " + MX_BLOCK + " values has no value");
        }

        @Override
        public void close() {
            data.close();
            scales.close();
        }
    }

    static long ceilDiv(long a, long b) {
        return (a + b - 1) / b;
    }
}
