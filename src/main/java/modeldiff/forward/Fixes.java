package modeldiff.forward;

import modeldiff.model.BadInputException;
import modeldiff.model.Family;
import modeldiff.model.LayerSpec;
import modeldiff.model.ModelConfig;
import modeldiff.model.RopeSpec;
import modeldiff.numeric.Activation;

import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Deviations from the released config, as a forward pass should apply them: the switches the hunt flips to
 * reproduce another implementation. Each pass asks this object at each decision point ("which activation?",
 * "which window?") instead of reading the config directly, so every pass honours a fix the same way while keeping
 * its own numerics. {@link #NONE} is the release as HF reads it.
 *
 * The ids are {@link Flag}s (no value) and {@link Key}s (written id=value), each knowing its id and meaning;
 * hunt/Catalog (`modeldiff fixes`) lists them with the real bug each mirrors, docs/fix-sources.md with sources.
 */
public final class Fixes {
    public static final Fixes NONE = new Fixes(List.of());

    /** The fixes that take no value, each with its id and what it does. */
    public enum Flag {
        ACT_GELU_EXACT("act.gelu_exact", "the activation computed as exact (erf) GELU"),
        ACT_GELU_TANH("act.gelu_tanh", "the activation computed as tanh-approximated GELU"),
        ROPE_BF16_ANGLES("rope.bf16_angles", "RoPE angles (position x inverse frequency) rounded to bfloat16"),
        ROPE_SCALING_IGNORED("rope.scaling_ignored", "the config's rope_scaling not applied"),
        ROPE_INV_FREQ_LOWP("rope.inv_freq_lowp", "RoPE inverse frequencies computed in the activation dtype"),
        QK_INTERLEAVED("qk.interleaved", "RoPE rotates interleaved pairs (GPT-J style) instead of halves (Llama 4, interleaved natively: halves)"),
        NORM_NO_UNIT_OFFSET("norm.no_unit_offset", "norm weight used as w, not (1 + w)"),
        NORM_UNIT_OFFSET("norm.unit_offset", "norm weight used as (1 + w), not w"),
        NORM_CAST_BEFORE_WEIGHT("norm.cast_before_weight", "normalised value cast to the dtype before the weight multiply"),
        EMBED_SCALE_FP32("embed.scale_fp32", "embedding scale sqrt(hidden) kept in float32, not rounded to the dtype"),
        EMBED_SCALE_NONE("embed.scale_none", "embeddings not scaled by sqrt(hidden)"),
        ATTN_NO_SOFTCAP("attn.no_softcap", "attention-score soft-capping not applied"),
        LOGITS_NO_SOFTCAP("logits.no_softcap", "final-logit soft-capping not applied"),
        SOFTMAX_LOWP("softmax.lowp", "attention softmax computed in the activation dtype"),
        MLP_SWAP_GATE_UP("mlp.swap_gate_up", "the MLP's gate and up projections swapped"),
        INPUT_ADD_BOS("input.add_bos", "a BOS token prepended to the input"),
        INPUT_DROP_BOS("input.drop_bos", "the input's leading BOS token dropped"),
        ROPE_NOPE_INVERTED("rope.nope_inverted", "the per-layer RoPE/NoPE polarity inverted"),
        BLOCK_SEQUENTIAL("block.sequential", "a parallel-residual block computed sequentially"),
        QK_NORM_PER_HEAD("qk_norm.per_head", "q/k norms applied per head instead of over all heads"),
        ROPE_SCALING_ALL_LAYERS("rope.scaling_all_layers", "sliding layers given the full-attention layers' RoPE scaling"),
        MOE_SOFTMAX_BEFORE_TOPK("moe.softmax_before_topk", "a top-k-then-softmax router computed as softmax over all experts, then top-k"),
        MOE_BIAS_IN_WEIGHTS("moe.bias_in_weights", "a sigmoid router's selection-only bias also added to the expert weights"),
        ATTN_NO_SINKS("attn.no_sinks", "gpt-oss's attention sinks left out of the softmax"),
        MLP_NO_CLAMP("mlp.no_clamp", "gpt-oss's SwiGLU clamp dropped"),
        QK_NORM_OFF("qk_norm.off", "the q/k norms not applied"),
        ATTN_NO_YARN_MSCALE("attn.no_yarn_mscale", "YaRN's attention factor (mscale) dropped (MLA: also the mscale² of the softmax scale)"),
        ATTN_NO_CHUNKING("attn.no_chunking", "Llama 4's chunked attention computed as full causal attention"),
        ATTN_NO_TEMPERATURE_TUNING("attn.no_temperature_tuning", "Llama 4's attention temperature tuning on NoPE layers not applied");

        public final String id, meaning;

        Flag(String id, String meaning) {
            this.id = id;
            this.meaning = meaning;
        }
    }

    /** How a valued fix's text is read. */
    private enum Value { POSITIVE, NON_NEGATIVE, BOOL, SHORT_LONG, SCALE }

    /** The fixes written id=value, each with its id, what it does and how its value is read. */
    public enum Key {
        ROPE_THETA("rope.theta", "RoPE base frequency V instead of the config's", Value.POSITIVE),
        ROPE_PARTIAL("rope.partial", "fraction F of each head rotated by RoPE", Value.POSITIVE),
        NORM_EPS("norm.eps", "norm epsilon V instead of the config's", Value.NON_NEGATIVE),
        ATTN_SCALE("attn.scale", "attention scores multiplied by S (1/sqrt(S) may be written as such)", Value.SCALE),
        ATTN_SCALAR("attn.scalar", "attention scores scaled by 1/sqrt(S), as HF's query_pre_attn_scalar", Value.POSITIVE),
        WINDOW("window", "sliding window W on the sliding layers", Value.POSITIVE),
        ROPE_LONGROPE_FACTORS("rope.longrope_factors", "LongRoPE's short or long factors whatever the input length", Value.SHORT_LONG),
        MOE_RENORMALIZE("moe.renormalize", "top-k routing weights renormalised (true) or not", Value.BOOL),
        MOE_ROUTED_SCALING("moe.routed_scaling", "routed experts' weights multiplied by V", Value.POSITIVE),
        ROPE_YARN_TRUNCATE("rope.yarn_truncate", "YaRN's correction range truncated (true) or not", Value.BOOL);

        public final String id, meaning;
        private final Value value;

        Key(String id, String meaning, Value value) {
            this.id = id;
            this.meaning = meaning;
            this.value = value;
        }
    }

    private static final Map<String, Flag> FLAG_BY_ID = index(Flag.values(), f -> f.id);
    private static final Map<String, Key> KEY_BY_ID = index(Key.values(), k -> k.id);
    /** Ids that take no value. */
    public static final Set<String> FLAGS = FLAG_BY_ID.keySet();
    /** Ids written id=value. */
    public static final Set<String> VALUED = KEY_BY_ID.keySet();

    /** Fixes that only mean something in MoE families or with attention sinks (passes without those refuse them). */
    public static final Set<String> MOE_ONLY = Set.of(Key.MOE_RENORMALIZE.id, Key.MOE_ROUTED_SCALING.id,
            Flag.MOE_SOFTMAX_BEFORE_TOPK.id, Flag.MOE_BIAS_IN_WEIGHTS.id, Flag.ATTN_NO_SINKS.id, Flag.MLP_NO_CLAMP.id);

    private final List<String> ids;
    private final EnumSet<Flag> flags = EnumSet.noneOf(Flag.class);
    /** Each valued fix's value, parsed once: a Double, a Boolean or (rope.longrope_factors) "short"/"long". */
    private final EnumMap<Key, Object> values = new EnumMap<>(Key.class);
    /** The flags the passes read as fields, so their code asks a plain question. */
    public final boolean ropeBf16Angles, ropeScalingIgnored, ropeInvFreqLowp, qkInterleaved, noUnitOffset, unitOffset,
            normCastBeforeWeight, embedScaleFp32, embedScaleNone, attnNoSoftcap, logitsNoSoftcap, softmaxLowp,
            swapGateUp, addBos, dropBos, nopeInverted, blockSequential, qkNormPerHead, scalingAllLayers,
            moeSoftmaxBeforeTopk, moeBiasInWeights, attnNoSinks, mlpNoClamp, qkNormOff, noYarnMscale, attnNoChunking,
            attnNoTemperatureTuning;

    private Fixes(List<String> ids) {
        this.ids = List.copyOf(ids);
        for (String id : ids) {
            int eq = id.indexOf('=');
            String name = eq < 0 ? id : id.substring(0, eq);
            Flag flag = eq < 0 ? FLAG_BY_ID.get(name) : null;
            Key key = eq < 0 ? null : KEY_BY_ID.get(name);
            if (flag == null && key == null) throw new BadInputException("unknown fix '" + id + "'; see `modeldiff fixes`");
            if (flag != null) flags.add(flag);
            else values.put(key, parse(key, id, id.substring(eq + 1)));
        }
        if (flags.contains(Flag.ACT_GELU_EXACT) && flags.contains(Flag.ACT_GELU_TANH))
            flags.remove(lastActivationIn(ids) == Flag.ACT_GELU_EXACT ? Flag.ACT_GELU_TANH : Flag.ACT_GELU_EXACT);
        ropeBf16Angles = has(Flag.ROPE_BF16_ANGLES);
        ropeScalingIgnored = has(Flag.ROPE_SCALING_IGNORED);
        ropeInvFreqLowp = has(Flag.ROPE_INV_FREQ_LOWP);
        qkInterleaved = has(Flag.QK_INTERLEAVED);
        noUnitOffset = has(Flag.NORM_NO_UNIT_OFFSET);
        unitOffset = has(Flag.NORM_UNIT_OFFSET);
        normCastBeforeWeight = has(Flag.NORM_CAST_BEFORE_WEIGHT);
        embedScaleFp32 = has(Flag.EMBED_SCALE_FP32);
        embedScaleNone = has(Flag.EMBED_SCALE_NONE);
        attnNoSoftcap = has(Flag.ATTN_NO_SOFTCAP);
        logitsNoSoftcap = has(Flag.LOGITS_NO_SOFTCAP);
        softmaxLowp = has(Flag.SOFTMAX_LOWP);
        swapGateUp = has(Flag.MLP_SWAP_GATE_UP);
        addBos = has(Flag.INPUT_ADD_BOS);
        dropBos = has(Flag.INPUT_DROP_BOS);
        nopeInverted = has(Flag.ROPE_NOPE_INVERTED);
        blockSequential = has(Flag.BLOCK_SEQUENTIAL);
        qkNormPerHead = has(Flag.QK_NORM_PER_HEAD);
        scalingAllLayers = has(Flag.ROPE_SCALING_ALL_LAYERS);
        moeSoftmaxBeforeTopk = has(Flag.MOE_SOFTMAX_BEFORE_TOPK);
        moeBiasInWeights = has(Flag.MOE_BIAS_IN_WEIGHTS);
        attnNoSinks = has(Flag.ATTN_NO_SINKS);
        mlpNoClamp = has(Flag.MLP_NO_CLAMP);
        qkNormOff = has(Flag.QK_NORM_OFF);
        noYarnMscale = has(Flag.ATTN_NO_YARN_MSCALE);
        attnNoChunking = has(Flag.ATTN_NO_CHUNKING);
        attnNoTemperatureTuning = has(Flag.ATTN_NO_TEMPERATURE_TUNING);
    }

    /** With both GELU ids given, the later one wins (as the old parser's last assignment did). */
    private static Flag lastActivationIn(List<String> ids) {
        Flag last = null;
        for (String id : ids) if (id.equals(Flag.ACT_GELU_EXACT.id) || id.equals(Flag.ACT_GELU_TANH.id)) last = FLAG_BY_ID.get(id);
        return last;
    }

    private static <E> Map<String, E> index(E[] all, java.util.function.Function<E, String> id) {
        Map<String, E> out = new LinkedHashMap<>();
        for (E e : all) out.put(id.apply(e), e);
        return Collections.unmodifiableMap(out);
    }

    private static Object parse(Key key, String id, String v) {
        return switch (key.value) {
            case POSITIVE -> {
                double d = positive(id, v);
                if (key == Key.ROPE_PARTIAL && d > 1) throw new BadInputException("fix '" + id + "': fraction must be in (0, 1]");
                yield d;
            }
            case NON_NEGATIVE -> nonNegative(id, v);
            case BOOL -> bool(id, v);
            case SHORT_LONG -> {
                if (!"short".equals(v) && !"long".equals(v)) throw new BadInputException("fix '" + id + "': value must be short or long");
                yield v;
            }
            case SCALE -> scale(id, v);
        };
    }

    /** attn.scale=S is the multiplier S; the old spelling attn.scale=1/sqrt(S) is read as what it says. */
    private static double scale(String id, String v) {
        String compact = v == null ? "" : v.replace(" ", "");
        if (compact.startsWith("1/sqrt(") && compact.endsWith(")"))
            return 1.0 / Math.sqrt(positive(id, compact.substring(7, compact.length() - 1)));
        return positive(id, v);
    }

    public boolean has(Flag f) {
        return flags.contains(f);
    }

    /** A numeric valued fix's value, or NaN when it was not given. */
    private double number(Key k) {
        return values.get(k) instanceof Double d ? d : Double.NaN;
    }

    /** A true/false valued fix's value, or null when it was not given. */
    private Boolean bool(Key k) {
        return (Boolean) values.get(k);
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
        if (has(Flag.ACT_GELU_EXACT)) return Activation.GELU_EXACT;
        if (has(Flag.ACT_GELU_TANH)) return Activation.GELU_TANH;
        return c.activation;
    }

    /** True when a fix replaces the config's activation (else lowp mirrors HF's exact kernel for the config's name). */
    public boolean activationOverridden() {
        return has(Flag.ACT_GELU_EXACT) || has(Flag.ACT_GELU_TANH);
    }

    public double eps(ModelConfig c) {
        double eps = number(Key.NORM_EPS);
        return Double.isNaN(eps) ? c.normEps : eps;
    }

    public boolean unitOffset(Family.NormKind kind) {
        if (noUnitOffset) return false;
        if (unitOffset) return true;
        return kind.unitOffset();
    }

    public int window(LayerSpec spec) {
        double window = number(Key.WINDOW);
        if (window > 0 && spec.sliding()) return (int) window;
        return spec.slidingWindow();
    }

    public double attnScale(LayerSpec spec) {
        if (values.containsKey(Key.ATTN_SCALAR)) return 1.0 / Math.sqrt(number(Key.ATTN_SCALAR));
        return values.containsKey(Key.ATTN_SCALE) ? number(Key.ATTN_SCALE) : spec.attnScale();
    }

    /**
     * MLA's softmax scale (DeepSeek-V3): attn.scale / attn.scalar when given, else qk_head_dim^-0.5 times the mscale²
     * of the RoPE the layer applies after the fixes (attn.no_yarn_mscale drops it: transformers#47435).
     */
    public double mlaScale(LayerSpec spec, ModelConfig c) {
        if (attnScaleOverridden()) return attnScale(spec);
        return c.mla.scoreScale(layerRope(spec, c), noYarnMscale);
    }

    /**
     * The eps of MLA's q_a_layernorm / kv_a_layernorm: HF builds them with DeepseekV3RMSNorm's default 1e-6 whatever
     * rms_norm_eps says; norm.eps=V sets every norm's eps, these included (as hf_trace's norm.eps plant does).
     */
    public double latentNormEps() {
        return values.containsKey(Key.NORM_EPS) ? number(Key.NORM_EPS) : modeldiff.model.MlaSpec.LATENT_NORM_EPS;
    }

    /** Whether the score scale was replaced (GPT-2's division by a rounded sqrt(d) then no longer applies). */
    public boolean attnScaleOverridden() {
        return values.containsKey(Key.ATTN_SCALAR) || values.containsKey(Key.ATTN_SCALE);
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
        if (c.mla != null && r.partialRotaryFactor() != spec.rope().partialRotaryFactor())
            throw new BadInputException("rope.partial: multi-head latent attention rotates its qk_rope_head_dim part whole; "
                    + "a rotary fraction does not apply (the " + c.family + " family)");
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
        Object longrope = values.get(Key.ROPE_LONGROPE_FACTORS);
        if (longrope != null && out.type().equals("longrope")) out = out.withLongropeFactors(longrope.equals("long"));
        if (values.containsKey(Key.ROPE_THETA)) out = out.withTheta(number(Key.ROPE_THETA));
        if (values.containsKey(Key.ROPE_PARTIAL)) out = out.withPartial(number(Key.ROPE_PARTIAL));
        Boolean yarnTruncate = bool(Key.ROPE_YARN_TRUNCATE);
        if (out.type().equals("yarn") && yarnTruncate != null) out = out.withTruncate(yarnTruncate);
        if (out.type().equals("yarn") && noYarnMscale) out = out.withAttentionFactor(1.0);
        return out;
    }

    /** Whether a MoE router renormalises its k weights. */
    public boolean renormalize(modeldiff.model.MoeSpec s) {
        Boolean renormalize = bool(Key.MOE_RENORMALIZE);
        return renormalize != null ? renormalize : s.renormalize;
    }

    /** The factor routed experts' weights are multiplied by. */
    public double routedScaling(modeldiff.model.MoeSpec s) {
        return values.containsKey(Key.MOE_ROUTED_SCALING) ? number(Key.MOE_ROUTED_SCALING) : s.routedScaling;
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
