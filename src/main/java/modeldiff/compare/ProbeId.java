package modeldiff.compare;

/**
 * What a probe name means: embed, a layer's output ("layers.3"), a step inside a layer ("layers.3.mlp_act"),
 * final_norm, logits, or something else. Names come from trace files, so anything unexpected is OTHER, never an
 * exception.
 */
public record ProbeId(String name, Kind kind, int layer, String subLayer) {
    public enum Kind {EMBED, LAYER, SUB_LAYER, FINAL_NORM, LOGITS, OTHER}

    public static ProbeId parse(String name) {
        switch (name) {
            case "embed":
                return new ProbeId(name, Kind.EMBED, -1, null);
            case "final_norm":
                return new ProbeId(name, Kind.FINAL_NORM, -1, null);
            case "logits":
                return new ProbeId(name, Kind.LOGITS, -1, null);
            default:
                break;
        }
        if (name.startsWith("layers.")) {
            String rest = name.substring(7);
            int dot = rest.indexOf('.');
            String idx = dot < 0 ? rest : rest.substring(0, dot);
            if (!idx.isEmpty() && idx.length() <= 9 && idx.chars().allMatch(ch -> ch >= '0' && ch <= '9')) {
                int i = Integer.parseInt(idx);
                if (dot < 0) return new ProbeId(name, Kind.LAYER, i, null);
                String sub = rest.substring(dot + 1);
                if (!sub.isEmpty()) return new ProbeId(name, Kind.SUB_LAYER, i, sub);
            }
        }
        return new ProbeId(name, Kind.OTHER, -1, null);
    }

    /** Probes drawn on the per-layer chart: one point per layer plus the ends of the network. */
    public boolean isLayerLevel() {
        return kind == Kind.EMBED || kind == Kind.LAYER || kind == Kind.FINAL_NORM || kind == Kind.LOGITS;
    }

    /**
     * Position on the layer axis: embed −1, layer i (and its sub-layer steps) i, final_norm L, logits L+1, where L
     * is the number of layers; null for OTHER.
     */
    public Integer axis(int numLayers) {
        return switch (kind) {
            case EMBED -> -1;
            case LAYER, SUB_LAYER -> layer;
            case FINAL_NORM -> numLayers;
            case LOGITS -> numLayers + 1;
            case OTHER -> null;
        };
    }

    /** How a sentence names it: "embed", "layer 3", "layer 3, sub-layer mlp_act", "final_norm". */
    public String describe() {
        return switch (kind) {
            case LAYER -> "layer " + layer;
            case SUB_LAYER -> "layer " + layer + ", sub-layer " + subLayer;
            case OTHER -> "probe '" + name + "'";
            default -> name;
        };
    }
}
