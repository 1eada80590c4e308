package modeldiff.forward;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/** How many probes a pass records: per layer only, or every sub-layer step too. */
public enum ProbeLevel {
    LAYERS, ALL;

    /** Sub-layer probe suffixes, in the order a layer computes them. */
    public static final List<String> SUB_LAYER = List.of(
            "attn_norm", "q", "k", "v", "attn", "attn_out", "mlp_norm", "mlp_act", "mlp_out");

    public static ProbeLevel parse(String s) {
        return switch (s.toLowerCase(Locale.ROOT)) {
            case "layers" -> LAYERS;
            case "all" -> ALL;
            default -> throw new IllegalArgumentException("--probes must be 'layers' or 'all', got '" + s + "'");
        };
    }

    /** The probe names a pass at this level records for a model of {@code numLayers}, in trace order. */
    public List<String> names(int numLayers) {
        List<String> out = new ArrayList<>();
        out.add("embed");
        for (int i = 0; i < numLayers; i++) {
            if (this == ALL) for (String s : SUB_LAYER) out.add("layers." + i + "." + s);
            out.add("layers." + i);
        }
        out.add("final_norm");
        out.add("logits");
        return out;
    }

    /** Layer index of a probe name ("layers.3.q" → 3), -1 for embed, numLayers for final_norm/logits. */
    public static int layerOf(String probe, int numLayers) {
        if (probe.equals("embed")) return -1;
        if (!probe.startsWith("layers.")) return numLayers;
        String rest = probe.substring(7);
        int dot = rest.indexOf('.');
        return Integer.parseInt(dot < 0 ? rest : rest.substring(0, dot));
    }
}
