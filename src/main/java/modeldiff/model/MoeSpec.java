package modeldiff.model;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.Arrays;

/**
 * A MoE release's routing as its config says it (the family's {@link Family.Moe} read against config.json): how many
 * experts, how many each token uses, their width, whether the k weights are renormalised, the factor they are scaled
 * by, and which layers route at all. Immutable.
 */
public final class MoeSpec {
    public final Family.Router router;
    public final int numExperts, topK, expertSize;
    public final boolean renormalize;
    /** routed_scaling_factor (DeepSeek / GLM); 1 for families without one. */
    public final double routedScaling;
    /** HF rounds the routing weights to the activation dtype before the expert product (see {@link Family.Moe}). */
    public final boolean weightsInDtype;
    private final boolean[] sparse;
    /** Sigmoid routers: expert groups and how many of them a token may use (1, 1 when ungrouped). */
    public final int nGroup, topkGroup;
    /** Width of the shared expert(s) every token also runs (moe_intermediate_size · n_shared_experts), 0 if none. */
    public final int sharedSize;

    private MoeSpec(Family.Moe m, int numExperts, int topK, int expertSize, boolean renormalize, double routedScaling,
                    boolean[] sparse) {
        this.router = m.router();
        this.numExperts = numExperts;
        this.topK = topK;
        this.expertSize = expertSize;
        this.renormalize = renormalize;
        this.routedScaling = routedScaling;
        this.weightsInDtype = m.weightsInDtype();
        this.sparse = sparse;
        this.nGroup = 1;
        this.topkGroup = 1;
        this.sharedSize = 0;
    }

    private MoeSpec(MoeSpec s, int nGroup, int topkGroup, int sharedSize) {
        this.router = s.router;
        this.numExperts = s.numExperts;
        this.topK = s.topK;
        this.expertSize = s.expertSize;
        this.renormalize = s.renormalize;
        this.routedScaling = s.routedScaling;
        this.weightsInDtype = s.weightsInDtype;
        this.sparse = s.sparse;
        this.nGroup = nGroup;
        this.topkGroup = topkGroup;
        this.sharedSize = sharedSize;
    }

    /** This routing with expert groups (sigmoid routers) and a shared expert of the given width. */
    public MoeSpec withGroups(int nGroup, int topkGroup, int sharedSize) {
        return new MoeSpec(this, nGroup, topkGroup, sharedSize);
    }

    /** A routing described in code (tests, synthetic models): every layer of {@code numLayers} routes. */
    public static MoeSpec of(Family.Router router, int numExperts, int topK, int expertSize, boolean renormalize,
                             double routedScaling, boolean weightsInDtype, int numLayers) {
        boolean[] all = new boolean[numLayers];
        Arrays.fill(all, true);
        return new MoeSpec(new Family.Moe("num_experts", "moe_intermediate_size", router, Family.Renormalize.NEVER,
                weightsInDtype, Family.SparseLayers.ALL, Family.QWEN_EXPERTS), numExperts, topK, expertSize, renormalize,
                routedScaling, all);
    }

    /** Llama 4: the routing weight multiplies each expert's input, not its output. */
    public boolean scalesInput() {
        return router == Family.Router.SIGMOID_TOPK;
    }

    /** Whether layer {@code i} routes through experts (else it runs the dense MLP of intermediate_size). */
    public boolean sparse(int layer) {
        return sparse[layer];
    }

    static MoeSpec read(ConfigReader r, Family.Moe m, int numLayers) {
        // transformers v5 writes every family's expert count as num_local_experts (its attribute map), v4 the family's key
        String expertsKey = !r.has(m.numExpertsKey()) && r.has("num_local_experts") ? "num_local_experts" : m.numExpertsKey();
        int experts = r.sizeOr(expertsKey, 0);
        if (experts <= 0) throw r.bad(expertsKey, "missing; a MoE family needs the number of experts");
        int topK = r.sizeOr("num_experts_per_tok", 0);
        if (topK <= 0) throw r.bad("num_experts_per_tok", "missing");
        if (topK > experts)
            throw r.bad("num_experts_per_tok", topK + " experts per token but only " + experts + " experts");
        int size = r.sizeOr(m.expertSizeKey(), 0);
        if (size <= 0) throw r.bad(m.expertSizeKey(), "missing; it must match the expert weights");
        if ((long) experts * 2 * size > Integer.MAX_VALUE)
            throw r.bad(m.expertSizeKey(), experts + " experts of width " + size + " overflow a weight dimension");
        boolean renorm = switch (m.renormalize()) {
            case ALWAYS -> true;
            case NEVER -> false;
            case FROM_CONFIG -> r.bool("norm_topk_prob");
        };
        // the family's HF default when absent (DeepSeek-V3: 2.5), else 1 (families without the key)
        double scaling = r.has("routed_scaling_factor") || r.hasDefault("routed_scaling_factor") ? r.number("routed_scaling_factor") : 1.0;
        if (!(scaling > 0)) throw r.bad("routed_scaling_factor", "must be positive, got " + scaling);
        MoeSpec spec = new MoeSpec(m, experts, topK, size, renorm, scaling, sparseLayers(r, m, numLayers));
        if (m.router() == Family.Router.SIGMOID_TOPK) return spec.withGroups(1, 1, size);   // Llama 4: one shared expert
        if (m.router() != Family.Router.SIGMOID_GROUPED) return spec;
        int groups = r.sizeOr("n_group", 1), top = r.sizeOr("topk_group", 1);
        if (experts % groups != 0) throw r.bad("n_group", groups + " groups do not divide " + experts + " experts");
        if (top > groups) throw r.bad("topk_group", top + " of only " + groups + " groups");
        if (topK > top * (experts / groups))
            throw r.bad("num_experts_per_tok", topK + " experts but " + top + " groups of " + experts / groups + " hold fewer");
        JsonNode shared = r.node("n_shared_experts");
        if (shared != null && (!shared.isIntegralNumber() || !shared.canConvertToInt() || shared.asInt() < 0))
            throw r.bad("n_shared_experts", "expected an integer >= 0, got " + ConfigReader.abbreviate(shared));
        // absent: the family's HF default (DeepSeek-V3, GLM-4.5: 1 shared expert), recorded as a default taken
        long sharedCount = shared != null ? shared.asInt() : r.hasDefault("n_shared_experts") ? (long) r.number("n_shared_experts") : 0;
        long sharedSize = sharedCount * size;
        if (sharedSize > Integer.MAX_VALUE / 2) throw r.bad("n_shared_experts", "shared experts " + sharedSize + " wide overflow a weight dimension");
        return spec.withGroups(groups, top, (int) sharedSize);
    }

    private static boolean[] sparseLayers(ConfigReader r, Family.Moe m, int numLayers) {
        boolean[] s = new boolean[numLayers];
        switch (m.sparseLayers()) {
            case ALL -> Arrays.fill(s, true);
            case QWEN -> {
                int step = r.sizeOr("decoder_sparse_step", 1);
                boolean[] denseOnly = layerList(r, "mlp_only_layers", numLayers);
                for (int i = 0; i < numLayers; i++) s[i] = !denseOnly[i] && (i + 1) % step == 0;
            }
            case INTERLEAVE -> {
                JsonNode list = r.node("moe_layers");
                if (list != null && !list.isNull()) return layerList(r, "moe_layers", numLayers);
                int step = r.sizeOr("interleave_moe_layer_step", 1);
                for (int i = step - 1; i < numLayers; i += step) s[i] = true;
            }
            case FIRST_K_DENSE -> {
                JsonNode n = r.node("first_k_dense_replace");
                if (n != null && (!n.isIntegralNumber() || !n.canConvertToInt() || n.asInt() < 0))
                    throw r.bad("first_k_dense_replace", "expected an integer >= 0");
                // absent: the family's HF default (DeepSeek-V3 3, GLM-4.5 1), recorded as a default taken
                int k = n != null ? n.asInt() : r.hasDefault("first_k_dense_replace") ? (int) r.number("first_k_dense_replace") : 0;
                for (int i = 0; i < numLayers; i++) s[i] = i >= k;
            }
        }
        return s;
    }

    /** A config list of layer indices as a per-layer flag (absent or null: none). */
    private static boolean[] layerList(ConfigReader r, String key, int numLayers) {
        boolean[] out = new boolean[numLayers];
        JsonNode n = r.node(key);
        if (n == null) return out;
        if (!n.isArray()) throw r.bad(key, "expected a list of layer indices");
        for (JsonNode e : n) {
            if (!e.isIntegralNumber() || e.asInt() < 0 || e.asInt() >= numLayers)
                throw r.bad(key, "entry " + ConfigReader.abbreviate(e) + " is not a layer index in [0, " + numLayers + ")");
            out[e.asInt()] = true;
        }
        return out;
    }

    @Override
    public String toString() {
        StringBuilder dense = new StringBuilder();
        for (int i = 0; i < sparse.length; i++) if (!sparse[i]) dense.append(dense.length() == 0 ? "" : ",").append(i);
        return router + " " + numExperts + " experts, top " + topK + ", width " + expertSize
                + (renormalize ? ", renormalised" : "") + (routedScaling != 1 ? ", scaled x" + routedScaling : "")
                + (nGroup > 1 ? ", " + nGroup + " groups (top " + topkGroup + ")" : "") + (sharedSize > 0 ? ", shared expert width " + sharedSize : "")
                + (dense.length() == 0 ? "" : ", dense layers [" + dense + "]");
    }
}
