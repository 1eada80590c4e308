package modeldiff.model;

/**
 * Where a linear layer's weight lives: a tensor, or a block of rows of a fused tensor (Phi-3 qkv_proj), or a block of
 * columns of a GPT-2 Conv1D weight stored [in, out], or every {@code blockStride}-th block of {@code blockRows} rows
 * (GPT-NeoX's query_key_value, laid out [heads, 3, head_dim]: q is rows h·3d + [0, d) of each head h).
 * {@link #loadWeight()} always yields PyTorch's nn.Linear layout [out, in], so every pass sees one convention. The
 * bias, if any, is sliced the same way.
 */
public record LinearRef(TensorInfo weight, boolean conv1d, int outStart, int out, int in, TensorInfo bias,
                        int blockRows, int blockStride) {

    public LinearRef(TensorInfo weight, boolean conv1d, int outStart, int out, int in, TensorInfo bias) {
        this(weight, conv1d, outStart, out, in, bias, 0, 0);
    }

    /** Whether the rows are strided blocks (then {@link #row} maps an output to its stored row). */
    public boolean strided() {
        return blockRows > 0;
    }

    /** Stored row (nn.Linear layout) of output {@code o}. */
    public long row(int o) {
        return strided() ? outStart + (long) (o / blockRows) * blockStride + o % blockRows : outStart + (long) o;
    }

    /** Weight as [out, in] row-major, widened exactly to float64. */
    public double[] loadWeight() {
        if (strided()) {
            double[] w = new double[out * in];
            for (int o = 0; o < out; o++) System.arraycopy(TensorStore.readDoubles(weight, row(o) * in, in), 0, w, o * in, in);
            return w;
        }
        if (!conv1d) return TensorStore.readDoubles(weight, (long) outStart * in, (long) out * in);
        // Conv1D stores [in, totalOut]: read it whole (it is one layer's worth) and take our columns.
        int totalOut = (int) weight.shape()[1];
        double[] stored = TensorStore.readDoubles(weight, 0, (long) in * totalOut);
        double[] w = new double[out * in];
        for (int i = 0; i < in; i++)
            for (int o = 0; o < out; o++)
                w[o * in + i] = stored[i * totalOut + outStart + o];
        return w;
    }

    /** Weight as [out, in] row-major in float32 (see {@link TensorStore#readFloats}): for passes that load in fp32. */
    public float[] loadWeightFloats() {
        if (strided()) {
            float[] w = new float[out * in];
            for (int o = 0; o < out; o++) System.arraycopy(TensorStore.readFloats(weight, row(o) * in, in), 0, w, o * in, in);
            return w;
        }
        if (!conv1d) return TensorStore.readFloats(weight, (long) outStart * in, (long) out * in);
        int totalOut = (int) weight.shape()[1];
        float[] stored = TensorStore.readFloats(weight, 0, (long) in * totalOut);
        float[] w = new float[out * in];
        for (int i = 0; i < in; i++)
            for (int o = 0; o < out; o++)
                w[o * in + i] = stored[i * totalOut + outStart + o];
        return w;
    }

    /** Bias [out] in float32, or null. */
    public float[] loadBiasFloats() {
        if (bias != null && strided()) {
            float[] b = new float[out];
            for (int o = 0; o < out; o++) b[o] = TensorStore.readFloats(bias, row(o), 1)[0];
            return b;
        }
        return bias == null ? null : TensorStore.readFloats(bias, outStart, out);
    }

    /** Bias [out] or null when the layer has none. */
    public double[] loadBias() {
        if (bias != null && strided()) {
            double[] b = new double[out];
            for (int o = 0; o < out; o++) b[o] = TensorStore.readDoubles(bias, row(o), 1)[0];
            return b;
        }
        return bias == null ? null : TensorStore.readDoubles(bias, outStart, out);
    }

    public boolean hasBias() {
        return bias != null;
    }
}
