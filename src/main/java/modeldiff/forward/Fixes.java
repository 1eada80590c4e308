package modeldiff.forward;

import modeldiff.model.BadInputException;
import modeldiff.model.Family;
import modeldiff.model.LayerSpec;
import modeldiff.model.ModelConfig;
import modeldiff.model.RopeSpec;
import modeldiff.numeric.Activation;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * Deviations from the released config, as a forward pass should apply them: the switches the hunt flips to
 * reproduce another implementation. Each pass asks this object at each decision point ("which activation?",
 * "which window?") instead of reading the config directly, so every pass honours a fix the same way while keeping
 * its own numerics. {@link #NONE} is the release as HF reads it.
 *
 * Ids (docs/fixes.md has the catalog with the real bug each mirrors):
 * act.gelu_exact, act.gelu_tanh, rope.bf16_angles, rope.theta=V, rope.scaling_ignored, rope.partial=F,
 * rope.inv_freq_lowp, qk.interleaved, norm.no_unit_offset, norm.unit_offset, norm.cast_before_weight, norm.eps=V,
 * embed.scale_fp32, embed.scale_none, attn.no_softcap, logits.no_softcap, attn.scale=S, window=W, softmax.lowp,
 * mlp.swap_gate_up, input.add_bos, input.drop_bos, rope.nope_inverted, rope.longrope_factors=short|long,
 * block.sequential, qk_norm.per_head, rope.scaling_all_layers; MoE routing: moe.renormalize=true|false,
 * moe.softmax_before_topk, moe.routed_scaling=V, moe.bias_in_weights; gpt-oss: attn.no_sinks, mlp.no_clamp;
 * qk_norm.off, rope.yarn_truncate=B, attn.no_yarn_mscale.
 */
public final class Fixes {
    public static final Fixes NONE = new Fixes(List.of());

    /** Ids that take no value. */
    public static final Set<String> FLAGS = Set.of("act.gelu_exact", "act.gelu_tanh", "rope.bf16_angles",
            "rope.scaling_ignored", "rope.inv_freq_lowp", "qk.interleaved", "norm.no_unit_offset", "norm.unit_offset",
            "norm.cast_before_weight", "embed.scale_fp32", "embed.scale_none", "attn.no_softcap", "logits.no_softcap",
            "softmax.lowp", "mlp.swap_gate_up", "input.add_bos", "input.drop_bos",
            "rope.nope_inverted", "block.sequential", "qk_norm.per_head", "rope.scaling_all_layers",
            "moe.softmax_before_topk", "moe.bias_in_weights", "attn.no_sinks", "mlp.no_clamp", "qk_norm.off",
            "attn.no_yarn_mscale");
    /** Ids written id=value. */
    public static final Set<String> VALUED = Set.of("rope.theta", "rope.partial", "norm.eps", "attn.scale", "window",
            "rope.longrope_factors", "moe.renormalize", "moe.routed_scaling", "rope.yarn_truncate");

    /** Fixes that only mean something in MoE families or with attention sinks (passes without those refuse them). */
    public static final Set<String> MOE_ONLY = Set.of("moe.renormalize", "moe.routed_scaling", "moe.softmax_before_topk",
            "moe.bias_in_weights", "attn.no_sinks", "mlp.no_clamp");

    private final List<String> ids;
    private Activation activation;
    public final boolean ropeBf16Angles, ropeScalingIgnored, ropeInvFreqLowp, qkInterleaved, noUnitOffset, unitOffset,
            normCastBeforeWeight, embedScaleFp32, embedScaleNone, attnNoSoftcap, logitsNoSoftcap, softmaxLowp,
            swapGateUp, addBos, dropBos;
    private final double theta, partial, eps, attnScaleDenominator;
    private final int window;
    /** rope.nope_inverted, block.sequential, qk_norm.per_head, rope.scaling_all_layers. */
    public final boolean nopeInverted, blockSequential, qkNormPerHead, scalingAllLayers;
    /** rope.longrope_factors: "short", "long" or null (chosen by the input's length, as HF does). */
    private final String longropeFactors;
    /** MoE: top-k renormalisation forced on/off (null: the config's), the routing-weight scale (NaN: the config's). */
    private final Boolean renormalize;
    private final double routedScaling;
    /**
     * moe.softmax_before_topk: a top-k→softmax router (gpt-oss) computed as softmax over all experts, then top-k;
     * moe.bias_in_weights: a sigmoid router's selection-only correction bias also added to the expert weights.
     */
    public final boolean moeSoftmaxBeforeTopk, moeBiasInWeights;
    /** attn.no_sinks: gpt-oss's attention sinks left out of the softmax; mlp.no_clamp: its SwiGLU clamp dropped. */
    public final boolean attnNoSinks, mlpNoClamp;
    /** qk_norm.off: the q/k norms not applied; attn.no_yarn_mscale: YaRN's attention factor (mscale) dropped. */
    public final boolean qkNormOff, noYarnMscale;
    /** rope.yarn_truncate=B: YaRN's correction range truncated (true) or not, against the config; null: the config's. */
    private final Boolean yarnTruncate;

    private Fixes(List<String> ids) {
        this.ids = List.copyOf(ids);
        boolean[] f = new boolean[15];
        double th = Double.NaN, pa = Double.NaN, ep = Double.NaN, sc = Double.NaN;
        int w = -1;
        Activation act = null;
        boolean[] g = new boolean[4];
        String lf = null;
        Boolean renorm = null;
        double scaling = Double.NaN;
        boolean softmaxFirst = false, biasInWeights = false, noSinks = false, noClamp = false, qkOff = false, noMscale = false;
        Boolean truncate = null;
        for (String id : ids) {
            int eq = id.indexOf('=');
            String key = eq < 0 ? id : id.substring(0, eq);
            String val = eq < 0 ? null : id.substring(eq + 1);
            if (eq < 0 ? !FLAGS.contains(key) : !VALUED.contains(key))
                throw new BadInputException("unknown fix '" + id + "'; see `modeldiff fixes`");
            switch (key) {
                case "act.gelu_exact" -> act = Activation.GELU_EXACT;
                case "act.gelu_tanh" -> act = Activation.GELU_TANH;
                case "rope.bf16_angles" -> f[0] = true;
                case "rope.scaling_ignored" -> f[1] = true;
                case "rope.inv_freq_lowp" -> f[2] = true;
                case "qk.interleaved" -> f[3] = true;
                case "norm.no_unit_offset" -> f[4] = true;
                case "norm.unit_offset" -> f[5] = true;
                case "norm.cast_before_weight" -> f[6] = true;
                case "embed.scale_fp32" -> f[7] = true;
                case "embed.scale_none" -> f[8] = true;
                case "attn.no_softcap" -> f[9] = true;
                case "logits.no_softcap" -> f[10] = true;
                case "softmax.lowp" -> f[11] = true;
                case "mlp.swap_gate_up" -> f[12] = true;
                case "input.add_bos" -> f[13] = true;
                case "input.drop_bos" -> f[14] = true;
                case "rope.theta" -> th = positive(id, val);
                case "rope.partial" -> pa = positive(id, val);
                case "norm.eps" -> ep = nonNegative(id, val);
                case "attn.scale" -> sc = positive(id, val);
                case "window" -> w = (int) positive(id, val);
                case "rope.nope_inverted" -> g[0] = true;
                case "block.sequential" -> g[1] = true;
                case "qk_norm.per_head" -> g[2] = true;
                case "rope.scaling_all_layers" -> g[3] = true;
                case "rope.longrope_factors" -> {
                    if (!"short".equals(val) && !"long".equals(val))
                        throw new BadInputException("fix '" + id + "': value must be short or long");
                    lf = val;
                }
                case "moe.renormalize" -> renorm = bool(id, val);
                case "moe.routed_scaling" -> scaling = positive(id, val);
                case "moe.softmax_before_topk" -> softmaxFirst = true;
                case "moe.bias_in_weights" -> biasInWeights = true;
                case "attn.no_sinks" -> noSinks = true;
                case "mlp.no_clamp" -> noClamp = true;
                case "qk_norm.off" -> qkOff = true;
                case "attn.no_yarn_mscale" -> noMscale = true;
                case "rope.yarn_truncate" -> truncate = bool(id, val);
                default -> throw new IllegalStateException(key);
            }
        }
        activation = act;
        nopeInverted = g[0];
        blockSequential = g[1];
        qkNormPerHead = g[2];
        scalingAllLayers = g[3];
        longropeFactors = lf;
        ropeBf16Angles = f[0];
        ropeScalingIgnored = f[1];
        ropeInvFreqLowp = f[2];
        qkInterleaved = f[3];
        noUnitOffset = f[4];
        unitOffset = f[5];
        normCastBeforeWeight = f[6];
        embedScaleFp32 = f[7];
        embedScaleNone = f[8];
        attnNoSoftcap = f[9];
        logitsNoSoftcap = f[10];
        softmaxLowp = f[11];
        swapGateUp = f[12];
        addBos = f[13];
        dropBos = f[14];
        theta = th;
        partial = pa;
        eps = ep;
        attnScaleDenominator = sc;
        window = w;
        renormalize = renorm;
        routedScaling = scaling;
        moeSoftmaxBeforeTopk = softmaxFirst;
        moeBiasInWeights = biasInWeights;
        attnNoSinks = noSinks;
        mlpNoClamp = noClamp;
        qkNormOff = qkOff;
        noYarnMscale = noMscale;
        yarnTruncate = truncate;
        if (pa > 1) throw new BadInputException("fix '" + "rope.partial=" + pa + "': fraction must be in (0, 1]");
    }

    public static Fixes of(List<String> ids) {
        return ids.isEmpty() ? NONE : new Fixes(ids);
    }

    public static Fixes parse(String commaSeparated) {
        if (commaSeparated == null || commaSeparated.isBlank()) return NONE;
        List<String> ids = new ArrayList<>();
        for (String s : commaSeparated.split(",")) if (!s.isBlank()) ids.add(s.trim().toLowerCase(Locale.ROOT));
        return of(ids);
    }

    private static double positive(String id, String v) {
        double d = number(id, v);
        if (!(d > 0)) throw new BadInputException("fix '" + id + "': value must be positive");
        return d;
    }

    private static double nonNegative(String id, String v) {
        double d = number(id, v);
        if (!(d >= 0)) throw new BadInputException("fix '" + id + "': value must be >= 0");
        return d;
    }

    private static boolean bool(String id, String v) {
        if ("true".equals(v)) return true;
        if ("false".equals(v)) return false;
        throw new BadInputException("fix '" + id + "': value must be true or false");
    }

    private static double number(String id, String v) {
        try {
            double d = Double.parseDouble(v);
            if (!Double.isFinite(d)) throw new NumberFormatException();
            return d;
        } catch (NumberFormatException | NullPointerException e) {
            throw new BadInputException("fix '" + id + "': '" + v + "' is not a number");
        }
    }

    /** The first of these fixes whose key (the part before '=') is in {@code keys}, or null. */
    public String firstWithKey(Set<String> keys) {
        for (String id : ids) if (keys.contains(id.contains("=") ? id.substring(0, id.indexOf('=')) : id)) return id;
        return null;
    }

    public List<String> ids() {
        return Collections.unmodifiableList(ids);
    }

    public boolean isEmpty() {
        return ids.isEmpty();
    }

    // ---- the questions a pass asks ----

    public Activation activation(ModelConfig c) {
        return activation != null ? activation : c.activation;
    }

    /** True when the activation is the one the config names (lowp then mirrors HF's exact kernel for that name). */
    public boolean activationOverridden() {
        return activation != null;
    }

    public double eps(ModelConfig c) {
        return Double.isNaN(eps) ? c.normEps : eps;
    }

    public boolean unitOffset(Family.NormKind kind) {
        if (noUnitOffset) return false;
        if (unitOffset) return true;
        return kind.unitOffset();
    }

    public int window(LayerSpec spec) {
        if (window > 0 && spec.sliding()) return window;
        return spec.slidingWindow();
    }

    public double attnScale(LayerSpec spec) {
        return Double.isNaN(attnScaleDenominator) ? spec.attnScale() : 1.0 / Math.sqrt(attnScaleDenominator);
    }

    /** Whether the score scale was replaced (GPT-2's division by a rounded sqrt(d) then no longer applies). */
    public boolean attnScaleOverridden() {
        return !Double.isNaN(attnScaleDenominator);
    }

    public double attnSoftcap(ModelConfig c) {
        return attnNoSoftcap ? Double.NaN : c.attnSoftcap;
    }

    public double finalSoftcap(ModelConfig c) {
        return logitsNoSoftcap ? Double.NaN : c.finalSoftcap;
    }

    /**
     * The RoPE a layer applies, or null when it applies none (SmolLM3's NoPE layers, learned positions):
     * rope.nope_inverted flips the per-layer polarity, rope.scaling_all_layers gives a sliding layer the full-attention
     * layers' scaling (with its own base), then {@link #rope} applies the spec-level fixes.
     */
    public RopeSpec layerRope(LayerSpec spec, ModelConfig c) {
        if (spec.rope() == null) return null;
        boolean usesRope = !spec.nope();
        if (nopeInverted && c.family.noRopeLayers) usesRope = !usesRope;
        if (!usesRope) return null;
        RopeSpec r = spec.rope();
        if (scalingAllLayers && spec.sliding() && c.fullAttentionRope != null && !c.fullAttentionRope.type().equals("default"))
            r = c.fullAttentionRope.withTheta(r.theta()).withPartial(r.partialRotaryFactor());
        r = rope(r);
        int pairs = modeldiff.numeric.Rope.rotaryDim(c.headDim, r.partialRotaryFactor()) / 2;
        if (r.type().equals("longrope") && (r.shortFactor().length != pairs || r.longFactor().length != pairs))
            throw new BadInputException("longrope has " + r.shortFactor().length + " factors but the rotary fraction "
                    + r.partialRotaryFactor() + " rotates " + pairs + " pairs");
        return r;
    }

    /** Whether the block is computed parallel (GPT-NeoX use_parallel_residual), after block.sequential. */
    public boolean parallelResidual(ModelConfig c) {
        return c.parallelResidual && !blockSequential;
    }

    public RopeSpec rope(RopeSpec r) {
        if (r == null) return null;
        RopeSpec out = ropeScalingIgnored ? r.unscaled() : r;
        if (longropeFactors != null && out.type().equals("longrope")) out = out.withLongropeFactors(longropeFactors.equals("long"));
        if (!Double.isNaN(theta)) out = out.withTheta(theta);
        if (!Double.isNaN(partial)) out = out.withPartial(partial);
        if (out.type().equals("yarn") && yarnTruncate != null) out = out.withTruncate(yarnTruncate);
        if (out.type().equals("yarn") && noYarnMscale) out = out.withAttentionFactor(1.0);
        return out;
    }

    /** Whether a MoE router renormalises its k weights. */
    public boolean renormalize(modeldiff.model.MoeSpec s) {
        return renormalize != null ? renormalize : s.renormalize;
    }

    /** The factor routed experts' weights are multiplied by. */
    public double routedScaling(modeldiff.model.MoeSpec s) {
        return Double.isNaN(routedScaling) ? s.routedScaling : routedScaling;
    }

    public double embedScale(ModelConfig c) {
        return embedScaleNone ? 1.0 : c.embedScale;
    }

    public int[] tokens(int[] tokens, ModelConfig c) {
        int bos = c.bosTokenIds.isEmpty() ? -1 : c.bosTokenIds.get(0);
        if (addBos && bos >= 0) {
            int[] out = new int[tokens.length + 1];
            out[0] = bos;
            System.arraycopy(tokens, 0, out, 1, tokens.length);
            return out;
        }
        if (dropBos && tokens.length > 1 && tokens[0] == bos) return java.util.Arrays.copyOfRange(tokens, 1, tokens.length);
        return tokens;
    }

    @Override
    public String toString() {
        return ids.isEmpty() ? "[]" : ids.toString();
    }
}
