package modeldiff.forward.kernel;

import modeldiff.model.LinearRef;
import modeldiff.model.MappedTensor;
import modeldiff.model.TensorInfo;

/**
 * A stored weight matrix as a {@link PanelSource}: tiles are decoded from the memory-mapped tensor as {@link Gemm}
 * asks for them, so a pass holds only a few tiles (per thread) widened to float64, never the matrix. Covers the
 * layouts {@link LinearRef} describes: [out, in] row-major (a block of rows of a fused tensor) and GPT-2's Conv1D
 * [in, out] (a block of columns). Closing unmaps the tensor.
 */
public final class WeightPanels implements PanelSource {
    private final MappedTensor tensor;
    private final long base, oStride, kStride;
    private final MappedTensor.FloatRounding rounding;
    /** Non-null for strided row blocks (GPT-NeoX's fused qkv): maps an output to its stored row. */
    private final LinearRef strided;

    private WeightPanels(TensorInfo t, long base, long oStride, long kStride, MappedTensor.FloatRounding rounding) {
        this(t, base, oStride, kStride, rounding, null);
    }

    private WeightPanels(TensorInfo t, long base, long oStride, long kStride, MappedTensor.FloatRounding rounding, LinearRef strided) {
        this.strided = strided;
        this.tensor = MappedTensor.open(t);
        this.base = base;
        this.oStride = oStride;
        this.kStride = kStride;
        this.rounding = rounding;
    }

    /** A linear layer's weight in nn.Linear layout; {@code rounding} null for exact float64 values. */
    public static WeightPanels of(LinearRef ref, MappedTensor.FloatRounding rounding) {
        if (ref.strided()) return new WeightPanels(ref.weight(), 0, ref.in(), 1, rounding, ref);
        if (!ref.conv1d()) return new WeightPanels(ref.weight(), (long) ref.outStart() * ref.in(), ref.in(), 1, rounding);
        long totalOut = ref.weight().shape()[1];
        return new WeightPanels(ref.weight(), ref.outStart(), 1, totalOut, rounding);
    }

    /** A whole [rows, cols] row-major tensor (the LM head). */
    public static WeightPanels ofMatrix(TensorInfo t, MappedTensor.FloatRounding rounding) {
        return new WeightPanels(t, 0, t.shape()[1], 1, rounding);
    }

    @Override
    public void pack(int o0, int n, int k0, int kc, double[] dst) {
        int nr = PanelKernel.NR;
        if (kStride == 1) {
            // Row-major: each output's inputs are contiguous; they land NR apart in the panel.
            for (int j = 0; j < n; j++)
                tensor.decode((strided != null ? strided.row(o0 + j) * oStride : base + (o0 + j) * oStride) + k0, kc, dst,
                        (j / nr) * kc * nr + j % nr, nr, rounding);
        } else {
            // Conv1D: for one input the outputs are contiguous, a panel row at a time.
            for (int k = 0; k < kc; k++)
                for (int j = 0; j < n; j += nr)
                    tensor.decode(base + (k0 + k) * kStride + o0 + j, Math.min(nr, n - j), dst, ((j / nr) * kc + k) * nr, 1, rounding);
        }
        PanelSource.zeroPad(n, kc, dst);
    }

    @Override
    public void close() {
        tensor.close();
    }
}
