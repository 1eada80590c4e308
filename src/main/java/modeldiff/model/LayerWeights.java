package modeldiff.model;

/**
 * One decoder layer's parameters, named by role rather than by checkpoint key. Absent parts are null:
 * {@code postAttnNorm}/{@code postMlpNorm} exist only with sandwich norms, {@code qNorm}/{@code kNorm} only with q/k
 * norms, {@code gate} only for gated MLPs (for a plain MLP {@code up} is the input projection).
 */
public record LayerWeights(
        NormRef attnNorm, LinearRef q, LinearRef k, LinearRef v, LinearRef o, NormRef qNorm, NormRef kNorm,
        NormRef postAttnNorm, NormRef mlpNorm, LinearRef gate, LinearRef up, LinearRef down, NormRef postMlpNorm) {
}
