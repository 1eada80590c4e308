package modeldiff.model;

/** A norm's stored parameters: weight [dim] and, for LayerNorm, bias [dim] (else null). */
public record NormRef(TensorInfo weight, TensorInfo bias) {
    public double[] loadWeight() {
        return TensorStore.readDoubles(weight, 0, weight.elementCount());
    }

    public double[] loadBias() {
        return bias == null ? null : TensorStore.readDoubles(bias, 0, bias.elementCount());
    }
}
